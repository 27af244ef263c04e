"""The boundaries of ARCHITECTURE.md, checked on the source: the domain stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

import trader

PACKAGE = Path(trader.__file__).parent
FORBIDDEN_IN_DOMAIN = {
    "trio",
    "trio_websocket",
    "httpx",
    "structlog",
    "msgspec",
    "asyncio",
    "socket",
    "redis",
}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_imports_no_io_or_concurrency() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imported_roots(path) & FORBIDDEN_IN_DOMAIN)
        for path in (PACKAGE / "domain").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_domain_imports_nothing_from_venues_or_engine() -> None:
    for path in (PACKAGE / "domain").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("trader.venues", "trader.engine", "trader.integrations")), path

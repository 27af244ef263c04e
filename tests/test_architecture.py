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


WIRE_MODULES = ("trader.venues.polymarket.schemas", "trader.venues.polymarket.user_schemas", "trader.venues.sim.wire")


def test_engines_and_strategies_never_see_wire_types() -> None:
    """Wire structs (msgspec, venue field names) stop at the venue adapters: engines get parsed domain values."""
    offenders = []
    for folder in ("engine", "strategies"):
        for path in (PACKAGE / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(WIRE_MODULES):
                    offenders.append(f"{path.relative_to(PACKAGE)}: {node.module}")
                if isinstance(node, ast.Import | ast.ImportFrom) and "msgspec" in _imported_roots_of(node):
                    offenders.append(f"{path.relative_to(PACKAGE)}: msgspec")
    assert offenders == []


def _imported_roots_of(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    return {node.module.split(".")[0]} if node.module and node.level == 0 else set()


def test_importing_the_engine_leaves_the_recursion_limit_sane() -> None:
    """eth-account's py_ecc raises the recursion limit to 100,000 on import, after which a deeply nested frame
    overflows the C stack instead of raising. The engine must not import it (signing uses coincurve)."""
    import subprocess
    import sys

    code = "import sys, trader.app, trader.commands.run; print(sys.getrecursionlimit(), 'py_ecc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    limit, has_py_ecc = out.split()
    assert int(limit) <= 10_000
    assert has_py_ecc == "False"


def test_production_code_does_not_import_trio_testing() -> None:
    """In-memory sockets and MockClock helpers live in trader.testing, the one package meant for tests."""
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "testing" not in path.relative_to(PACKAGE).parts
        and any(
            isinstance(node, ast.Import | ast.ImportFrom)
            and any(name.startswith("trio.testing") for name in _module_names(node))
            for node in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert offenders == []


def _module_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""]

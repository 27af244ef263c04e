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


#: Production modules that use trio.testing on purpose: the backtest's virtual clock is Trio's MockClock.
TRIO_TESTING_ALLOWED = {"app/backtest.py"}


def test_production_code_does_not_import_trio_testing() -> None:
    """In-memory sockets and MockClock helpers live in trader.testing, the one package meant for tests."""
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "testing" not in path.relative_to(PACKAGE).parts
        and str(path.relative_to(PACKAGE)) not in TRIO_TESTING_ALLOWED
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


# -- the layer order (docs/architecture.md): a module imports its own floor and the floors below, never above -------

#: (package, floor), most specific first. `trader` itself (its `__init__`, `__main__`) is the top.
FLOORS: tuple[tuple[str, int], ...] = (
    ("trader.errors", 0),
    ("trader.config", 0),
    ("trader.infra", 0),
    ("trader.domain", 1),
    ("trader.strategies", 2),
    ("trader.venues", 2),
    ("trader.integrations", 2),
    ("trader.engine", 3),
    ("trader.app", 4),
    ("trader.testing", 4),
    ("trader.settings_doc", 5),
    ("trader.settings", 5),
    ("trader.commands", 5),
    ("trader.cli", 5),
    ("trader.__main__", 5),
)
#: What the engine may see of the venues: the ports and the error tree, never an implementation.
VENUE_PORTS = ("trader.venues.base", "trader.venues.errors")


def _floor(module: str) -> tuple[str, int]:
    for package, floor in FLOORS:
        if module == package or module.startswith(package + "."):
            return package, floor
    return "trader", 5


def _is_port(module: str) -> bool:
    return any(module == port or module.startswith(port + ".") for port in VENUE_PORTS)


def import_allowed(source: str, target: str) -> bool:
    """The rule of the house for one import of `target` by `source` (both dotted module names inside trader)."""
    src_package, src_floor = _floor(source)
    dst_package, dst_floor = _floor(target)
    if target == "trader" or src_package == dst_package:
        return True
    if src_package == "trader.strategies":
        return dst_floor <= 1  # strategies see the floor and the domain only
    if src_package == "trader.engine" and dst_package == "trader.venues":
        return _is_port(target)  # the engine sees venues through their ports only
    if src_floor == dst_floor == 2:
        # Siblings on floor 2 stay apart; integrations (stores, sinks) may read the venue-neutral port types.
        return src_package == "trader.integrations" and dst_package == "trader.venues" and _is_port(target)
    return dst_floor < src_floor or (dst_floor == src_floor and src_floor in (0, 4, 5))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _trader_imports(path: Path) -> list[tuple[str, int]]:
    """Every `trader.*` import of a file: top-level, in functions and under TYPE_CHECKING alike."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend((f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}") else node.module,
                          node.lineno) for a in node.names)  # fmt: skip
        elif isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
    return [(name, line) for name, line in found if name == "trader" or name.startswith("trader.")]


def _is_module(dotted: str) -> bool:
    """`from trader.integrations import logging` imports a module: judge the module, not its package."""
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative / "__init__.py").exists()


def test_no_import_runs_against_the_layer_order() -> None:
    offenders = {
        f"{_module_name(path)} -> {target} (line {line})"
        for path in sorted(PACKAGE.rglob("*.py"))
        for target, line in _trader_imports(path)
        if not import_allowed(_module_name(path), target)
    }
    assert sorted(offenders) == []


def test_the_layer_rule_refuses_what_the_house_forbids() -> None:
    """The checker itself: each kind of import the plan forbids is refused, and the allowed ones pass."""
    refused = [
        ("trader.integrations.metrics", "trader.engine.books"),  # up a floor
        ("trader.venues.polymarket.gamma", "trader.integrations.ticks"),  # venues never import integrations
        ("trader.engine.market_data", "trader.venues.polymarket.parse"),  # the engine sees only the ports
        ("trader.engine.market_data", "trader.venues.sim.venue"),
        ("trader.integrations.espn", "trader.strategies.games"),  # siblings on floor 2
        ("trader.strategies.sniper", "trader.integrations.espn"),  # strategies: floor and domain only
        ("trader.strategies.sniper", "trader.venues.base"),
        ("trader.engine.execution", "trader.settings"),  # nothing below the top reads the settings loader
        ("trader.app.supervisor", "trader.settings"),
        ("trader.domain.book", "trader.engine.books"),
        ("trader.infra.ticks", "trader.domain.numbers"),
    ]
    allowed = [
        ("trader.engine.market_data", "trader.venues.base"),
        ("trader.engine.order_manager.submit", "trader.venues.errors"),
        ("trader.engine.order_manager.submit", "trader.integrations.store.base"),
        ("trader.integrations.store.base", "trader.venues.base"),
        ("trader.app.venue", "trader.venues.polymarket.gamma"),
        ("trader.app.config", "trader.engine.risk"),
        ("trader.commands.run", "trader.app"),
        ("trader.strategies.sniper", "trader.domain.games"),
        ("trader.venues.polymarket.user_ws", "trader.infra.backoff"),
    ]
    assert [pair for pair in refused if import_allowed(*pair)] == []
    assert [pair for pair in allowed if not import_allowed(*pair)] == []

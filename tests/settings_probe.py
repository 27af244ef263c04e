"""Which settings a run of the engine consumes: the machinery of `tests/test_every_setting.py`.

A probe gives every section of a `Settings` (every frozen dataclass in the tree but the root) a tracked twin: the same
class, subclassed, whose instances note each read of a field. A leaf (one documented variable) is CONSUMED when, during
a run of the composition root:

- code read the field of its section (or of a copy made by `dataclasses.replace` that kept the field's value): a
  read by generic code that looks at every field (dataclasses' own `replace`, `asdict`, generated `__repr__` and
  `__eq__`; `trader.app.sinks.as_json`) does not count, or a `/status` dump or a log line would consume everything;
- or a component of the running engine holds its section (or such a copy): found by walking the engine's objects from
  its `RunningEngine`, never through the root `Settings` (every part of the engine that holds the whole of it, such as
  `Control`, would otherwise hold every section).

A field the composition root replaces before handing its section over (`dataclasses.replace(section, field=...)`) is
neither read nor held with its value, and a section that never reaches a component is neither: both stay unconsumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import types
import typing
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trader.settings import Settings
from trader.settings_doc import _readable

__all__ = ["Leaf", "Probe", "leaves_of"]

_GENERIC_READERS: frozenset[str] = frozenset({"as_json", "__repr__", "__eq__", "__hash__", "asdict", "astuple"})
_DATACLASSES_FILE = dataclasses.__file__
#: Objects of these modules are not walked into (the engine's own objects are `trader.*`): bounded, and fast.
_NOT_WALKED = ("trader.venues.sim", "trader.domain.book", "trader.engine.books")


@dataclass(frozen=True, slots=True)
class Leaf:
    """One documented variable: `path` of field names from the root, its section (the original tracked instance)."""

    path: tuple[str, ...]
    section: object
    name: str

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def variable(self) -> str:
        return "TRADER_" + "__".join(p.upper() for p in self.path)


def leaves_of(settings: Settings) -> list[Leaf]:
    """Every variable of the generated settings table, in its order (`trader.settings_doc.rows`' walk)."""

    def walk(section: object, path: tuple[str, ...]) -> Iterator[Leaf]:
        hints = typing.get_type_hints(type(section))
        for f in dataclasses.fields(section):  # type: ignore[arg-type]
            annotation = hints[f.name]
            value = object.__getattribute__(section, f.name)
            if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
                yield from walk(value, (*path, f.name))
            elif _readable(annotation):
                yield Leaf((*path, f.name), section, f.name)

    return list(walk(settings, ()))


def _is_tracked(obj: object) -> bool:
    return getattr(type(obj), "__probe__", None) is not None


class Probe:
    """Tracked settings and what a run consumed of them. One probe per test; `active` only while a run goes on."""

    def __init__(self) -> None:
        self.active = False
        self._classes: dict[type, type] = {}
        self._originals: dict[int, object] = {}  # id -> a section of the settings given to `track`
        self._sources: dict[int, tuple[object, object]] = {}  # id of a copy -> (the copy, what it was copied from)
        self._replacing: object | None = None
        self.consumed: set[tuple[int, str]] = set()  # (id of an original section, field)
        self.read_by: dict[tuple[int, str], str] = {}  # how each was consumed first, for messages

    # -- building tracked settings ---------------------------------------------------------------------------------

    def track(self, settings: Settings) -> Settings:
        """`settings` with every section replaced by a tracked twin (the root stays a plain `Settings`)."""
        changes = {f.name: self._tracked(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
        return dataclasses.replace(settings, **changes)

    def _tracked(self, section: Any) -> Any:
        if not (dataclasses.is_dataclass(section) and not isinstance(section, type)):
            return section
        values = {f.name: self._tracked(getattr(section, f.name)) for f in dataclasses.fields(section) if f.init}
        twin = self._twin_class(type(section))(**values)
        self._originals[id(twin)] = twin
        return twin

    def _twin_class(self, cls: type) -> type:
        twin = self._classes.get(cls)
        if twin is not None:
            return twin
        probe = self
        names = frozenset(f.name for f in dataclasses.fields(cls))

        def __getattribute__(obj: object, name: str) -> object:
            value = object.__getattribute__(obj, name)
            if probe.active:
                if name in names:
                    probe._read(obj, name, sys._getframe(1))
                elif name == "__dataclass_fields__" and _called_from_replace(sys._getframe(1)):
                    probe._replacing = obj
            return value

        def __init__(obj: object, *args: object, **kwargs: object) -> None:
            source, probe._replacing = probe._replacing, None
            cls.__init__(obj, *args, **kwargs)  # type: ignore[misc]
            if source is not None:
                probe._sources[id(obj)] = (obj, source)

        twin = type(cls.__name__, (cls,), {"__getattribute__": __getattribute__, "__init__": __init__, "__slots__": ()})
        twin.__probe__ = self  # type: ignore[attr-defined]
        twin.__qualname__ = cls.__qualname__
        self._classes[cls] = twin
        return twin

    # -- what a run consumed -----------------------------------------------------------------------------------------

    def _read(self, obj: object, name: str, frame: types.FrameType) -> None:
        code = frame.f_code
        if code.co_filename in (_DATACLASSES_FILE, "<string>") or code.co_name in _GENERIC_READERS:
            return
        self._credit(obj, name, f"read in {code.co_name} ({code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno})")

    def _credit(self, obj: object, name: str, how: str) -> None:
        """Credit the original section `obj`'s field came from, if its value is still the original's."""
        current: object = obj
        while True:
            if id(current) in self._originals:
                key = (id(current), name)
                if key not in self.consumed:
                    self.consumed.add(key)
                    self.read_by[key] = how
                return
            found = self._sources.get(id(current))
            if found is None:
                return
            source = found[1]
            if object.__getattribute__(current, name) != object.__getattribute__(source, name):
                return  # replaced on the way: the original value did not get here
            current = source

    def credit_held(self, roots: list[object], *, limit: int = 500_000) -> int:
        """Walk the engine's objects from `roots` (never through a `Settings`): every tracked section found credits
        its fields. Returns how many objects were walked."""
        seen: set[int] = set()
        todo: deque[object] = deque(roots)
        while todo and len(seen) < limit:
            obj = todo.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, (Settings, *_ATOMS)):
                continue
            if _is_tracked(obj):
                for f in dataclasses.fields(obj):  # type: ignore[arg-type]
                    self._credit(obj, f.name, f"held by the engine as {type(obj).__name__}")
                    todo.append(object.__getattribute__(obj, f.name))
                continue
            todo.extend(_children(obj))
        return len(seen)


_ATOMS = (str, bytes, int, float, Decimal, bool, type(None), type, types.ModuleType, types.CodeType, types.FrameType)


def _called_from_replace(frame: types.FrameType) -> bool:
    return frame.f_code.co_filename == _DATACLASSES_FILE and frame.f_code.co_name in ("replace", "_replace")


def _children(obj: object) -> list[object]:
    """What an object refers to, for the walk: containers' items, functions' closures and defaults, and the
    attributes of the engine's own objects (`trader.*`, not the sim's or the books')."""
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, list | tuple | set | frozenset | deque):
        return list(obj)
    if isinstance(obj, types.MethodType):
        return [obj.__self__, obj.__func__]
    if isinstance(obj, types.FunctionType):
        cells = [c.cell_contents for c in obj.__closure__ or () if _filled(c)]
        return [*cells, *(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values()]
    if isinstance(obj, functools.partial):
        return [obj.func, *obj.args, *obj.keywords.values()]
    module = type(obj).__module__ or ""
    if not module.startswith(("trader.", "tests.")) or module.startswith(_NOT_WALKED):
        return []
    out: list[object] = []
    with contextlib.suppress(TypeError):  # no __dict__: slots only
        out.extend(vars(obj).values())
    for cls in type(obj).__mro__:
        for name in cls.__dict__.get("__slots__", ()):
            with contextlib.suppress(AttributeError):  # a slot never set
                out.append(object.__getattribute__(obj, name))
    return out


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True

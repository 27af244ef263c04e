"""The recording format: market-channel frames as received, in compressed, rotating files with bounded disk use.

A recording is a directory of files `rec-000001.jsonl.gz`, `rec-000002.jsonl.gz`, ...: gzip'd JSON lines, each a
record with a `kind`:

- `header`: `format` ("trader-recording"), `version` (1), `file_index`, `started_ns`, `source`, `meta`: the first
  line of every file; `meta` is the market metadata as the file starts (opaque here);
- `frame`: `t` (receive time, unix ns), `c` (connection number), `s` (sequence within the connection), `f` (the
  text frame, verbatim): one market-channel frame;
- `gap`: `c`, `from_ns`, `to_ns`, `reason`: no frames could be received between the two times (a disconnect, a
  restart of the recorder);
- `meta`: `t`, `meta`: the market metadata changed (a discovery refresh);
- `end`: `t`, `frames`: the file was closed cleanly (a file without it was cut short: a crash, a copy in progress).

Every file starts with the metadata, so each one can be read on its own. `RecordingWriter` rotates to a new file
after `max_file_bytes` of compressed output, deletes the oldest files while the directory holds more than
`max_total_bytes`, flushes (a gzip sync point) when asked, and resumes after a restart with the next file number and a
`gap` record from the last frame the previous files hold. `read_recording(paths)` reads files back in order and
counts what it had to leave out (`ReadStats`): a truncated or corrupt file ends there, a corrupt line is skipped, a
frame older than the one before it is dropped; a file of another format or version is a `RecordingError`.

This module knows nothing of markets or venues: `meta` and the frames' text are opaque to it.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from trader.errors import TraderError

__all__ = [
    "FORMAT",
    "VERSION",
    "Frame",
    "Gap",
    "MetaChange",
    "ReadStats",
    "RecordingError",
    "RecordingWriter",
    "read_recording",
    "recording_files",
]

FORMAT = "trader-recording"
VERSION = 1
_NAME = re.compile(r"^rec-(\d{6,})\.jsonl\.gz$")


class RecordingError(TraderError):
    """A recording that cannot be read at all (not a recording, another format version, unreadable)."""


@dataclass(frozen=True, slots=True)
class Frame:
    t_ns: int
    conn: int
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class Gap:
    conn: int
    from_ns: int
    to_ns: int
    reason: str


@dataclass(frozen=True, slots=True)
class MetaChange:
    t_ns: int
    meta: Mapping[str, Any]


@dataclass(slots=True)
class ReadStats:
    """What reading a recording found; anything but `files`, `frames`, `gaps` and `meta` is input left out."""

    files: int = 0
    frames: int = 0
    gaps: int = 0
    meta: int = 0
    truncated_files: list[str] = field(default_factory=list)  # cut short (no `end`, or the gzip stream ends early)
    corrupt_lines: int = 0
    out_of_order: int = 0

    def dropped(self) -> int:
        return self.corrupt_lines + self.out_of_order

    def to_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "frames": self.frames,
            "gaps": self.gaps,
            "meta_changes": self.meta,
            "truncated_files": list(self.truncated_files),
            "corrupt_lines": self.corrupt_lines,
            "out_of_order_frames": self.out_of_order,
        }


def recording_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, a directory standing for its `rec-*.jsonl.gz` files, in recording order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if _NAME.match(p.name))
            if not found:
                raise RecordingError(f"{path}: no recording files (rec-*.jsonl.gz) in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise RecordingError(f"{path}: no such file or directory")
    return files


def _header(path: Path, line: bytes) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("kind") != "header" or header.get("format") != FORMAT:
        raise RecordingError(f"{path}: not a trader recording (its first line is not a {FORMAT} header)")
    version = header.get("version")
    if version != VERSION:
        raise RecordingError(
            f"{path}: recording format version {version!r}; this trader reads version {VERSION} only "
            "(record it again with this version)"
        )
    return header


def read_recording(
    paths: Iterable[str | Path], stats: ReadStats | None = None
) -> Iterator[tuple[Mapping[str, Any], Frame | Gap | MetaChange]]:
    """(the metadata in force, the record) for every frame, gap and metadata change of the files, in order.

    A file is read to its end or to where it was cut short (counted in `stats.truncated_files`); a line that is not a
    record is counted and skipped; a frame received before the frame that precedes it is counted and dropped."""
    stats = stats if stats is not None else ReadStats()
    last_t = 0
    for path in recording_files(paths):
        stats.files += 1
        meta: Mapping[str, Any] = {}
        ended = False
        try:
            with gzip.open(path, "rb") as stream:
                first = stream.readline()
                header = _header(path, first)
                meta = header.get("meta") or {}
                for line in stream:
                    try:
                        record = json.loads(line)
                        kind = record["kind"]
                    except (ValueError, TypeError, KeyError):
                        stats.corrupt_lines += 1
                        continue
                    if kind == "frame":
                        try:
                            frame = Frame(int(record["t"]), int(record["c"]), int(record["s"]), str(record["f"]))
                        except (KeyError, TypeError, ValueError):
                            stats.corrupt_lines += 1
                            continue
                        if frame.t_ns < last_t:
                            stats.out_of_order += 1
                            continue
                        last_t = frame.t_ns
                        stats.frames += 1
                        yield meta, frame
                    elif kind == "gap":
                        stats.gaps += 1
                        yield (
                            meta,
                            Gap(int(record["c"]), int(record["from_ns"]), int(record["to_ns"]), record["reason"]),
                        )
                    elif kind == "meta":
                        stats.meta += 1
                        meta = record["meta"]
                        yield meta, MetaChange(int(record["t"]), meta)
                    elif kind == "end":
                        ended = True
                    else:
                        stats.corrupt_lines += 1
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            if stats.files == 1 and not meta and isinstance(exc, gzip.BadGzipFile):
                raise RecordingError(f"{path}: not a gzip file ({exc})") from None
        except OSError as exc:
            raise RecordingError(f"{path}: {exc.strerror or exc}") from None
        if not ended:
            stats.truncated_files.append(path.name)


def read_meta(path: Path) -> Mapping[str, Any]:
    """The metadata a recording file starts with."""
    try:
        with gzip.open(path, "rb") as stream:
            header = _header(path, stream.readline())
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise RecordingError(f"{path}: {exc}") from None
    meta = header.get("meta")
    return meta if isinstance(meta, dict) else {}


def _last_frame_ns(path: Path) -> int | None:
    """The receive time of the last frame a file holds (read to where it was cut short)."""
    last: int | None = None
    try:
        with gzip.open(path, "rb") as stream:
            for line in stream:
                if line.startswith(b'{"kind":"frame"'):
                    try:
                        last = int(json.loads(line)["t"])
                    except (ValueError, KeyError, TypeError):
                        continue
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        pass
    return last


@dataclass(slots=True)
class WriterStats:
    frames: int = 0
    gaps: int = 0
    files_written: int = 0
    files_deleted: int = 0
    bytes_written: int = 0  # compressed, over the files of this run
    resumed_after_ns: int | None = None


class RecordingWriter:
    """Writes a recording into `directory` (see the module docstring). Synchronous and cheap per call (a gzip
    write); the caller flushes every second or so and `close()`s at the end."""

    def __init__(
        self,
        directory: Path,
        *,
        source: str,
        meta: Mapping[str, Any],
        now_ns: int,
        max_file_bytes: int = 64 * 1024 * 1024,
        max_total_bytes: int = 1024 * 1024 * 1024,
    ) -> None:
        if max_file_bytes <= 0 or max_total_bytes < max_file_bytes:
            raise ValueError("max_total_bytes must be at least max_file_bytes, and both positive")
        self.directory = directory
        self.source = source
        self.meta: Mapping[str, Any] = meta
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.stats = WriterStats()
        directory.mkdir(parents=True, exist_ok=True)
        existing = self._files()
        self._index = max((int(m.group(1)) for p in existing if (m := _NAME.match(p.name))), default=0)
        self._raw: IO[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        self._frames_in_file = 0
        self._open(now_ns)
        if existing:  # resumed: the time since the last frame recorded is a gap
            last = _last_frame_ns(existing[-1])
            if last is not None and last < now_ns:
                self.stats.resumed_after_ns = last
                self.gap(-1, last, now_ns, "recorder restarted")

    def _files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))

    @property
    def path(self) -> Path:
        return self.directory / f"rec-{self._index:06d}.jsonl.gz"

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._files())

    def _write(self, record: Mapping[str, Any]) -> None:
        assert self._gz is not None
        self._gz.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def _open(self, now_ns: int) -> None:
        self._index += 1
        self._raw = self.path.open("xb")
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6, mtime=0)
        self._frames_in_file = 0
        self.stats.files_written += 1
        self._write(
            {
                "kind": "header",
                "format": FORMAT,
                "version": VERSION,
                "file_index": self._index,
                "started_ns": now_ns,
                "source": self.source,
                "meta": self.meta,
            }
        )

    def _close_file(self, now_ns: int) -> None:
        if self._gz is None or self._raw is None:
            return
        self._write({"kind": "end", "t": now_ns, "frames": self._frames_in_file})
        self._gz.close()
        self.stats.bytes_written += self._raw.tell()
        self._raw.close()
        self._gz = self._raw = None

    def frame(self, t_ns: int, conn: int, seq: int, text: str) -> None:
        self._write({"kind": "frame", "t": t_ns, "c": conn, "s": seq, "f": text})
        self.stats.frames += 1
        self._frames_in_file += 1
        assert self._raw is not None
        if self._raw.tell() >= self.max_file_bytes:
            self.rotate(t_ns)

    def gap(self, conn: int, from_ns: int, to_ns: int, reason: str) -> None:
        self._write({"kind": "gap", "c": conn, "from_ns": from_ns, "to_ns": to_ns, "reason": reason})
        self.stats.gaps += 1

    def set_meta(self, t_ns: int, meta: Mapping[str, Any]) -> None:
        if meta != self.meta:
            self.meta = meta
            self._write({"kind": "meta", "t": t_ns, "meta": meta})

    def rotate(self, now_ns: int) -> None:
        self._close_file(now_ns)
        self._open(now_ns)
        self._prune()

    def _prune(self) -> None:
        files = self._files()
        total = sum(p.stat().st_size for p in files)
        for old in files[:-1]:  # never the file being written
            if total <= self.max_total_bytes:
                break
            total -= old.stat().st_size
            old.unlink()
            self.stats.files_deleted += 1

    def flush(self) -> None:
        """A gzip sync point: what was written so far can be read back even if the process dies now."""
        if self._gz is not None:
            self._gz.flush(zlib.Z_SYNC_FLUSH)
            self._prune()

    def written_bytes(self) -> int:
        """Compressed bytes written by this run (closed files and the open one so far)."""
        return self.stats.bytes_written + (self._raw.tell() if self._raw is not None else 0)

    def close(self, now_ns: int) -> None:
        self._close_file(now_ns)

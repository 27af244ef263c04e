"""The recording format: what `trader record` writes and what replay and backtest read back."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from trader.infra.recording import Frame, Gap, MetaChange, ReadStats, RecordingError, RecordingWriter, read_recording

META = {"markets": [{"condition_id": "0xabc"}], "events": []}


def _writer(directory: Path, **kwargs: int) -> RecordingWriter:
    return RecordingWriter(directory, source="ws://test", meta=META, now_ns=1_000, **kwargs)


def test_frames_gaps_and_metadata_come_back_in_order(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.frame(2_000, 1, 1, '{"event_type":"book"}')
    writer.gap(1, 2_000, 5_000, "disconnected")
    writer.set_meta(5_000, {"markets": [], "events": []})
    writer.frame(6_000, 2, 1, "[]")
    writer.close(7_000)
    records = [record for _meta, record in read_recording([tmp_path])]
    assert records == [
        Frame(2_000, 1, 1, '{"event_type":"book"}'),
        Gap(1, 2_000, 5_000, "disconnected"),
        MetaChange(5_000, {"markets": [], "events": []}),
        Frame(6_000, 2, 1, "[]"),
    ]


def test_files_rotate_and_the_oldest_go_beyond_the_disk_bound(tmp_path: Path) -> None:
    writer = _writer(tmp_path, max_file_bytes=2_000, max_total_bytes=6_000)
    for n in range(3_000):
        writer.frame(10_000 + n, 1, n, json.dumps({"n": n, "pad": str(n) * 20}))
        if n % 100 == 0:
            writer.flush()
    writer.close(99_999)
    files = sorted(tmp_path.iterdir())
    assert writer.stats.files_written > 3
    assert writer.stats.files_deleted > 0
    assert sum(p.stat().st_size for p in files) <= 6_000 + 2_500  # the bound, plus the file being written
    stats = ReadStats()
    frames = [r for _m, r in read_recording([tmp_path], stats) if isinstance(r, Frame)]
    assert frames[-1].seq == 2_999  # the newest are kept, in order, each file readable on its own
    assert [f.seq for f in frames] == list(range(frames[0].seq, 3_000))
    assert stats.truncated_files == []


def test_a_restart_continues_with_the_next_file_and_records_the_gap(tmp_path: Path) -> None:
    first = _writer(tmp_path)
    first.frame(2_000, 1, 1, "{}")
    first.flush()  # then the process dies: no `end`, the file left as the sync point wrote it
    first._raw.close()  # type: ignore[union-attr]
    resumed = RecordingWriter(tmp_path, source="ws://test", meta=META, now_ns=9_000)
    resumed.frame(9_500, 1, 1, "{}")
    resumed.close(10_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec-000001.jsonl.gz", "rec-000002.jsonl.gz"]
    stats = ReadStats()
    records = [r for _m, r in read_recording([tmp_path], stats)]
    assert Gap(-1, 2_000, 9_000, "recorder restarted") in records
    assert stats.truncated_files == ["rec-000001.jsonl.gz"]


def test_a_truncated_file_is_read_to_where_it_ends_and_said(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    for n in range(500):
        writer.frame(2_000 + n, 1, n, json.dumps({"n": n}))
    writer.close(9_000)
    path = tmp_path / "rec-000001.jsonl.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    stats = ReadStats()
    frames = [r for _m, r in read_recording([path], stats)]
    assert 0 < len(frames) < 500
    assert stats.truncated_files == ["rec-000001.jsonl.gz"]


def test_corrupt_lines_and_frames_out_of_order_are_counted_drops(tmp_path: Path) -> None:
    path = tmp_path / "rec-000001.jsonl.gz"
    lines = [
        {"kind": "header", "format": "trader-recording", "version": 1, "meta": META},
        {"kind": "frame", "t": 5, "c": 1, "s": 1, "f": "a"},
        {"kind": "frame", "t": 3, "c": 1, "s": 2, "f": "late"},
        {"kind": "frame", "t": 6, "c": 1, "s": 3, "f": "b"},
        {"kind": "end", "t": 7, "frames": 3},
    ]
    text = "\n".join(json.dumps(line) for line in lines[:2]) + "\nnot json\n"
    text += "\n".join(json.dumps(line) for line in lines[2:]) + "\n"
    path.write_bytes(gzip.compress(text.encode()))
    stats = ReadStats()
    frames = [r.text for _m, r in read_recording([path], stats) if isinstance(r, Frame)]
    assert frames == ["a", "b"]
    assert (stats.corrupt_lines, stats.out_of_order) == (1, 1)


def test_another_format_version_or_a_non_recording_is_a_clear_error(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl.gz"
    old.write_bytes(gzip.compress(b'{"kind":"header","format":"trader-recording","version":0}\n'))
    with pytest.raises(RecordingError, match="version 0"):
        list(read_recording([old]))
    other = tmp_path / "other.jsonl.gz"
    other.write_bytes(gzip.compress(b'{"event_type":"book"}\n'))
    with pytest.raises(RecordingError, match="not a trader recording"):
        list(read_recording([other]))
    with pytest.raises(RecordingError, match="no such file"):
        list(read_recording([tmp_path / "missing"]))

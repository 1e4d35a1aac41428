"""Run records on disk: one JSON file per run, `<out>/records/<key>.json`, written atomically.

A record is written to a temporary file in the same directory and renamed into place, so a
process killed at any moment leaves either no record or a complete one (at worst a stray
`.tmp-*.partial`, which readers ignore). Files that still fail to
parse (e.g. edited or truncated by hand) are reported as corrupt and their runs are redone.

`slabench pack` folds a records/ folder's files into one `records/packed.jsonl.gz` (a record a
line, sorted by key, gzip without a timestamp): about a tenth of the size, for folders that are
committed. Readers take packed and loose records
alike; a loose file overrides the packed record of its key (a rerun written after the pack),
and packing again folds it in.

What a record holds, and what older records lack, is `slabench.record`. Reading checks only the
keys every record has always had, so older records load as they are.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from slabench.errors import SlabenchError
from slabench.record import STATUSES, RunRecord

PACK = "packed.jsonl.gz"


def record_path(out: Path, key: str) -> Path:
    return out / "records" / f"{key}.json"


def _write_atomically(path: Path, mode: str, write: Callable[[IO[Any]], object]) -> None:
    """`write(f)` into a temporary beside `path`, then rename it into place. The temporary is
    not named *.json: a writer killed mid-write leaves a file that no reader takes for a record
    (nor reports as a corrupt one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".partial")
    with os.fdopen(fd, mode) as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_record(out: Path, record: RunRecord) -> Path:
    path = record_path(out, record["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, "w", lambda f: json.dump(record, f, indent=1, default=str))
    return path


def write_grid(out: Path, name: str, specs: list[Any]) -> Path:
    """`<out>/grid.json`: the expanded grid (every RunSpec with its key) beside its records, so
    a folder of results says what was asked for, not only what finished."""
    path = out / "grid.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"name": name, "runs": [{"key": s.key(), **s.to_dict()} for s in specs]}
    path.write_text(json.dumps(blob, indent=1, default=str) + "\n")
    return path


@dataclass
class RecordSet:
    records: dict[str, RunRecord] = field(default_factory=dict)  # key -> record
    corrupt: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)


def _check(record: Any, key: str | None) -> str | None:
    """Why `record` is not a record (None if it is); `key`: the one its file name gives, if any."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for k in ("key", "spec", "status", "metrics"):
        if k not in record:
            return f"missing '{k}'"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} not in {STATUSES}"
    if key is not None and record["key"] != key:
        return f"key {record['key']!r} does not match the file name"
    if record["status"] == "ok" and "test_acc" not in record["metrics"]:
        return "status ok but no test_acc"
    return None


def _parse(text: str, key: str | None) -> tuple[RunRecord | None, str | None]:
    """(record, None) or (None, why it is not one)."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        return None, f"unreadable: {type(e).__name__}"
    reason = _check(record, key)
    return (None, reason) if reason else (record, None)


def _read_folder(folder: Path, result: RecordSet) -> tuple[dict[str, RunRecord], list[Path]]:
    """One records/ folder: key -> record (its pack first, its loose files over it), and the
    loose files that held a record. Corrupt lines and files go to `result.corrupt`."""
    found: dict[str, RunRecord] = {}
    pack = folder / PACK
    if pack.exists():
        try:
            lines = gzip.decompress(pack.read_bytes()).decode().splitlines()
        except (OSError, EOFError, UnicodeDecodeError) as e:
            result.corrupt.append((pack, f"unreadable: {type(e).__name__}"))
            lines = []
        for n, line in enumerate(lines, 1):
            record, reason = _parse(line, None)
            if record is None:
                result.corrupt.append((pack, f"line {n}: {reason}"))
            else:
                found[record["key"]] = record
    loose = []
    for path in sorted(folder.glob("*.json")):
        try:
            record, reason = _parse(path.read_text(), path.stem)
        except (OSError, UnicodeDecodeError) as e:
            record, reason = None, f"unreadable: {type(e).__name__}"
        if record is None:
            result.corrupt.append((path, reason))
        else:
            found[record["key"]] = record
            loose.append(path)
    return found, loose


def load_records(out: Path) -> RecordSet:
    """All readable records under `out` (records/ folders searched recursively, packed and loose),
    in folder then key order, plus the corrupt ones."""
    result = RecordSet()
    folders = {p.parent for p in Path(out).rglob("records/*") if p.suffix == ".json" or p.name == PACK}
    for folder in sorted(folders):
        found, _ = _read_folder(folder, result)
        result.records.update((k, found[k]) for k in sorted(found))
    return result


def pack_records(out: Path) -> list[tuple[Path, int, int, int]]:
    """Fold every records/ folder under `out` into its pack and delete the loose files folded in.
    Returns (folder, records, bytes before, bytes after) per folder; corrupt files stay loose."""
    packed = []
    for folder in sorted({p.parent for p in Path(out).rglob("records/*.json")}):
        pack = folder / PACK
        read = RecordSet()
        found, loose = _read_folder(folder, read)
        if bad := [reason for path, reason in read.corrupt if path == pack]:
            raise SlabenchError(f"{pack}: {bad[0]}; not repacking {folder} (its records would be lost)")
        before = sum(p.stat().st_size for p in loose) + (pack.stat().st_size if pack.exists() else 0)
        lines = "".join(json.dumps(found[k], separators=(",", ":"), default=str) + "\n" for k in sorted(found))
        data = gzip.compress(lines.encode(), compresslevel=9, mtime=0)
        _write_atomically(pack, "wb", lambda f, data=data: f.write(data))
        for path in loose:
            path.unlink()
        packed.append((folder, len(found), before, pack.stat().st_size))
    return packed

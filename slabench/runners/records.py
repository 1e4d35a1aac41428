"""Run records on disk: one JSON file per run, `<out>/records/<key>.json`, written atomically.

A record is written to a temporary file in the same directory and renamed into place, so a
process killed at any moment leaves either no record or a complete one (at worst a stray
`.tmp-*.partial`, which readers ignore). Files that still fail to
parse (e.g. edited or truncated by hand) are reported as corrupt and their runs are redone.

What a record holds, and what older records lack, is `slabench.record`. Reading checks only the
keys every record has always had, so older records load as they are.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slabench.record import STATUSES, RunRecord


def record_path(out: Path, key: str) -> Path:
    return out / "records" / f"{key}.json"


def write_record(out: Path, record: RunRecord) -> Path:
    path = record_path(out, record["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not named *.json: a writer killed mid-write leaves a temporary that no reader takes for
    # a record (nor reports as a corrupt one).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".partial")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
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


def _check(record: Any, path: Path) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    for k in ("key", "spec", "status", "metrics"):
        if k not in record:
            return f"missing '{k}'"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} not in {STATUSES}"
    if record["key"] != path.stem:
        return f"key {record['key']!r} does not match the file name"
    if record["status"] == "ok" and "test_acc" not in record["metrics"]:
        return "status ok but no test_acc"
    return None


def load_records(out: Path) -> RecordSet:
    """All readable records under `out` (searched recursively), plus the corrupt ones."""
    result = RecordSet()
    for path in sorted(Path(out).rglob("records/*.json")):
        try:
            record = json.loads(path.read_text())
            reason = _check(record, path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            reason = f"unreadable: {type(e).__name__}"
        if reason:
            result.corrupt.append((path, reason))
        else:
            result.records[record["key"]] = record
    return result

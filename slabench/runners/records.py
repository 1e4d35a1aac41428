"""Run records on disk: one JSON file per run, `<out>/records/<key>.json`, written atomically.

A record is written to a temporary file in the same directory and renamed into place, so a
process killed at any moment leaves either no record or a complete one (at worst a stray
`.tmp-*.partial`, which readers ignore). Files that still fail to parse (e.g. edited or
truncated by hand), or hold a field of the wrong type or a newer schema, are reported as corrupt
(naming the field) and skipped, so one bad file never stops a table; `run` redoes their runs.

`slabench pack` folds a records/ folder's files into one `records/packed.jsonl.gz` (a record a
line, sorted by key, gzip without a timestamp): about a tenth of the size, for folders that are
committed. Readers take packed and loose records
alike; a loose file overrides the packed record of its key (a rerun written after the pack),
and packing again folds it in.

What a record holds, and what older records lack, is `slabench.record`. Reading requires only the
keys every record has always had, and of an `ok` record the fields the tables read; it checks
the type of each of those it finds and that `RunSpec.from_dict` reads the spec, so older
records load as they are.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from slabench.errors import SlabenchError
from slabench.record import SCHEMA_VERSION, STATUSES, RunRecord

PACK = "packed.jsonl.gz"
NEWER_SCHEMA = "is newer than this slabench reads"  # in a corrupt record's reason: written by a newer slabench


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


# JSON types of the fields below; a JSON true/false is never taken for a number.
_NUMBER = (int, float)
_NONE = type(None)

# The keys every record has always had (`record._RecordRequired`), in the order they are checked.
_REQUIRED: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "spec": (dict,),
    "status": (str,),
    "metrics": (dict,),
    "schema": (int,),
    "seed": (int,),
    "error": (str, _NONE),
    "environment": (dict,),
    "timestamp": (str,),
}
# What the tables read with `[...]` from an `ok` record (`record.Metrics`, `ModelInfo`, `Timings`),
# so an `ok` record needs every one. A diverged or failed record may lack them (and its model and
# timings), but what it has must be of the right type.
_TABLE_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "metrics": {"test_acc": _NUMBER, "test_exact": _NUMBER, "val_acc": _NUMBER, "steps": (int,), "curve": (list,)},
    "model": {"params": (int,), "state_size": (int, _NONE)},
    "timings": {"train_seconds": _NUMBER, "tokens_per_s": _NUMBER},
}
# `record.RecordSpec`: what `RunSpec.from_dict` reads.
_SPEC: dict[str, tuple[type, ...]] = {
    "grid": (str,),
    "task": (dict,),
    "model": (dict,),
    "train": (dict,),
    "seed": (int,),
}


def _is(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


def _wrong(field: str, value: Any, types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", dict: "an object", list: "a list", _NONE: "null"}
    allowed = " or ".join(names[t] for t in types if not (t is int and float in types))  # an int is a number
    return f"{field} is {json.dumps(value, default=str)[:40]}, not {allowed}"


def _spec_problem(spec: dict[str, Any]) -> str | None:
    """Why `RunSpec.from_dict(spec)` cannot read `spec`, naming the field (None if it can)."""
    from slabench.config import RunSpec, TrainSpec

    for name, types in _SPEC.items():
        if name not in spec:
            return f"missing 'spec.{name}'"
        if not _is(spec[name], types):
            return _wrong(f"spec.{name}", spec[name], types)
    for part, lists in (("task", ("params", "test")), ("model", ("params",))):
        if not isinstance(spec[part].get("name"), str):
            return f"spec.{part}.name is {spec[part].get('name')!r}, not a string"
        for name in lists:
            pairs = spec[part].get(name)
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                return f"spec.{part}.{name} is not a list of (name, value) pairs"
    # Each training setting must be one TrainSpec has, of its default's type (an int is a float too);
    # older records lack the newer settings, which read as their defaults.
    defaults = {f.name: f.default for f in fields(TrainSpec)}
    for name, value in spec["train"].items():
        if name not in defaults:
            return f"spec.train.{name} is not a training setting (see `slabench train-options`)"
        types = _NUMBER if isinstance(defaults[name], float) else (type(defaults[name]),)
        if not _is(value, types):
            return _wrong(f"spec.train.{name}", value, types)
    try:
        RunSpec.from_dict(spec)
    except SlabenchError as e:  # a value out of its range, e.g. solve_at 2: the message names it
        return f"spec.{e}"
    return None


def _check(record: Any, key: str | None) -> str | None:
    """Why `record` is not a record that every table can read (None if it is), naming the field;
    `key`: the one its file name gives, if any."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for name, types in _REQUIRED.items():
        if name not in record:
            return f"missing '{name}'"
        if not _is(record[name], types):
            return _wrong(name, record[name], types)
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} not in {STATUSES}"
    if record["schema"] > SCHEMA_VERSION:
        return f"schema {record['schema']} {NEWER_SCHEMA} ({SCHEMA_VERSION}); upgrade slabench"
    if key is not None and record["key"] != key:
        return f"key {record['key']!r} does not match the file name"
    ok = record["status"] == "ok"
    for part, names in _TABLE_FIELDS.items():
        if part not in record and not ok:
            continue
        if not isinstance(record.get(part), dict):
            return _wrong(part, record.get(part), (dict,))
        for name, types in names.items():
            if name not in record[part]:
                if ok:
                    return f"status ok but no {name} in {part}"
            elif not _is(record[part][name], types):
                return _wrong(f"{part}.{name}", record[part][name], types)
    for name in ("test_acc", "test_exact", "val_acc"):  # a fraction: NaN or 1e308 would skew every mean
        value = record["metrics"].get(name)
        if ok and not 0.0 <= value <= 1.0:
            return f"metrics.{name} is {value!r}, not a fraction in [0, 1]"
    if not _is(record.get("kernel_paths", {}), (dict,)):
        return _wrong("kernel_paths", record["kernel_paths"], (dict,))
    for point in record["metrics"].get("curve", []):
        if not isinstance(point, dict) or not _is(point.get("step"), (int,)):
            return f"metrics.curve has a point without an integer step: {json.dumps(point, default=str)[:40]}"
        if not _is(point.get("val_acc", 0.0), _NUMBER + (_NONE,)):
            return _wrong("metrics.curve val_acc", point["val_acc"], _NUMBER + (_NONE,))
    if not isinstance(record["environment"].get("device"), str):
        return f"environment.device is {record['environment'].get('device')!r}, not a string"
    try:
        datetime.fromisoformat(record["timestamp"])
    except ValueError:
        return f"timestamp {record['timestamp']!r} is not an ISO 8601 time"
    return _spec_problem(record["spec"])


def _parse(text: str, key: str | None) -> tuple[RunRecord | None, str | None]:
    """(record, None) or (None, why it is not one)."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as e:  # not JSON, an integer of thousands of digits, nesting too deep
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

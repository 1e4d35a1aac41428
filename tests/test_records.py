"""Run records on disk: a write that fails part-way never damages the record already there and
never leaves a partial `<key>.json` that a reader would take for a record (or report as corrupt).

The failures are real ones at the two places a write can stop: while the JSON is being written
(half of the text is on disk, then the writer dies) and at the final rename.

Packed records (`slabench pack`) read as the loose ones did, in the same order, with a later
loose record over its packed one; a pack that cannot be read is reported and never overwritten.
"""

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from slabench.errors import SlabenchError
from slabench.record import Environment, Metrics, ModelInfo, RunRecord, Timings
from slabench.runners import records
from slabench.runners.records import load_records, record_path, write_record


def _record(key: str, acc: float) -> dict:
    """An ok record with every field the reader requires (`slabench.record`), under a made-up key."""
    from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec

    spec = RunSpec("t", TaskSpec("mqar"), ModelSpec("attention"), TrainSpec(), 0)
    return {
        "schema": 1,
        "key": key,
        "spec": json.loads(json.dumps(spec.to_dict())),  # as read back: tuples become lists
        "seed": 0,
        "status": "ok",
        "error": None,
        "metrics": {"test_acc": acc, "test_exact": acc, "val_acc": acc, "steps": 10, "curve": [{"step": 10}]},
        "model": {"params": 10, "state_size": 4},
        "timings": {"train_seconds": 1.0, "tokens_per_s": 100.0},
        "environment": {"device": "cpu"},
        "timestamp": "2026-01-01T00:00:00+00:00",
    }


def _dump_half_then_die(obj, f, **kw):
    """Write the first half of the JSON text to the file, then fail as a killed writer would."""
    text = json.dumps(obj, **kw)
    f.write(text[: len(text) // 2])
    f.flush()
    raise OSError("disk full")


def _json_files(out: Path) -> list[Path]:
    return sorted((out / "records").glob("*.json"))


@pytest.mark.parametrize("failure", ["mid-dump", "rename"])
def test_failed_overwrite_keeps_the_old_record(tmp_path, monkeypatch, failure):
    path = write_record(tmp_path, _record("abc", 0.25))
    before = path.read_bytes()
    if failure == "mid-dump":
        monkeypatch.setattr(records.json, "dump", _dump_half_then_die)
    else:
        monkeypatch.setattr(records.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("rename failed")))
    with pytest.raises(OSError):
        write_record(tmp_path, _record("abc", 0.75))
    monkeypatch.undo()
    assert path.read_bytes() == before  # byte for byte: the old record was never opened for writing
    assert _json_files(tmp_path) == [path]
    loaded = load_records(tmp_path)
    assert not loaded.corrupt and loaded.records["abc"]["metrics"]["test_acc"] == 0.25


@pytest.mark.parametrize("failure", ["mid-dump", "rename"])
def test_failed_first_write_leaves_no_record(tmp_path, monkeypatch, failure):
    """No `<key>.json` at all after a failed first write: a resumed grid reruns the run rather
    than skipping it or reporting a corrupt file."""
    write_record(tmp_path, _record("other", 0.5))
    if failure == "mid-dump":
        monkeypatch.setattr(records.json, "dump", _dump_half_then_die)
    else:
        monkeypatch.setattr(records.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("rename failed")))
    with pytest.raises(OSError):
        write_record(tmp_path, _record("new", 0.75))
    monkeypatch.undo()
    assert not record_path(tmp_path, "new").exists()
    assert _json_files(tmp_path) == [record_path(tmp_path, "other")]
    loaded = load_records(tmp_path)
    assert set(loaded.records) == {"other"} and not loaded.corrupt


def test_record_round_trips_and_overwrites(tmp_path):
    """What is written is what is read back, and a second write of a key replaces the first."""
    rec = _record("k1", 0.5)
    rec["metrics"]["curve"] = [{"step": 5, "val_acc": 0.125}]
    path = write_record(tmp_path, rec)
    assert path == tmp_path / "records" / "k1.json"
    assert json.loads(path.read_text()) == rec
    write_record(tmp_path, _record("k1", 1.0))
    assert load_records(tmp_path).records["k1"]["metrics"] == _record("k1", 1.0)["metrics"]
    assert _json_files(tmp_path) == [path]


def test_load_records_flags_each_kind_of_bad_file(tmp_path):
    """The reader's checks, one bad file per rule: each is reported corrupt with its reason, and
    the good record is still read."""
    write_record(tmp_path, _record("good", 0.5))
    folder = tmp_path / "records"
    bad = {
        "trunc": ('{"key": "trunc", "spec"', "unreadable"),
        "list": ("[1, 2]", "not a JSON object"),
        "nokey": (json.dumps({"spec": {}, "status": "ok", "metrics": {}}), "missing 'key'"),
        "status": (json.dumps({**_record("status", 0.1), "status": "done"}), "status 'done'"),
        "renamed": (json.dumps(_record("elsewhere", 0.1)), "does not match"),
        "noacc": (json.dumps({**_record("noacc", 0.1), "metrics": {}}), "no test_acc"),
        # Each of these was read in and crashed a table (kernel_paths.items()) or skewed its means.
        "nan": (json.dumps(_record("nan", float("nan"))), "metrics.test_acc is nan, not a fraction in [0, 1]"),
        "over": (json.dumps(_record("over", 1.5)), "metrics.test_acc is 1.5, not a fraction"),
        "paths": (json.dumps({**_record("paths", 0.1), "kernel_paths": "x"}), 'kernel_paths is "x", not an object'),
        "bigint": ('{"key": ' + "9" * 5000 + "}", "unreadable: ValueError"),  # past Python's int-parsing limit
        "deep": ("[" * 100_000 + "]" * 100_000, "unreadable: RecursionError"),
    }
    for key, (text, _) in bad.items():
        (folder / f"{key}.json").write_text(text)
    (folder / ".tmp-x.partial").write_text('{"key": ')  # a killed writer's temporary: not a record
    loaded = load_records(tmp_path)
    assert set(loaded.records) == {"good"}
    reasons = {p.stem: why for p, why in loaded.corrupt}
    assert set(reasons) == set(bad)
    for key, (_, why) in bad.items():
        assert why in reasons[key], (key, reasons[key])


# --- packed records (`slabench pack`) --------------------------------------------------------------


def test_pack_keeps_every_record_and_its_order_and_later_runs_override_it(tmp_path):
    for key, acc in [("b", 0.2), ("a", 0.1), ("c", 0.3)]:
        write_record(tmp_path / "g1", _record(key, acc))
    write_record(tmp_path / "g2", _record("d", 0.4))
    (tmp_path / "g1" / "records" / "zz.json").write_text("{")  # corrupt: reported, left loose
    before = load_records(tmp_path)

    packed = records.pack_records(tmp_path)
    assert [(f.parent.name, n) for f, n, _, _ in packed] == [("g1", 3), ("g2", 1)]
    assert sorted(p.name for p in (tmp_path / "g1" / "records").iterdir()) == ["packed.jsonl.gz", "zz.json"]
    after = load_records(tmp_path)
    assert list(after.records.items()) == list(before.records.items())  # same records, same order
    assert [p.name for p, _ in after.corrupt] == ["zz.json"]

    write_record(tmp_path / "g1", _record("a", 0.9))  # a rerun after the pack: the loose file wins
    write_record(tmp_path / "g1", _record("e", 0.5))
    assert {k: r["metrics"]["test_acc"] for k, r in load_records(tmp_path / "g1").records.items()} == {
        "a": 0.9,
        "b": 0.2,
        "c": 0.3,
        "e": 0.5,
    }
    pack = tmp_path / "g1" / "records" / records.PACK
    records.pack_records(tmp_path / "g1")  # folds them in
    assert sorted(p.name for p in pack.parent.iterdir()) == ["packed.jsonl.gz", "zz.json"]
    first = pack.read_bytes()
    assert first[4:8] == bytes(4)  # gzip's MTIME field: no timestamp
    assert [json.loads(line)["key"] for line in gzip.decompress(first).decode().splitlines()] == ["a", "b", "c", "e"]
    write_record(tmp_path / "g1", _record("e", 0.5))  # the same record again: the same bytes
    records.pack_records(tmp_path / "g1")
    assert pack.read_bytes() == first


def test_a_bad_pack_line_is_reported_and_a_bad_pack_is_never_repacked(tmp_path):
    write_record(tmp_path, _record("a", 0.1))
    records.pack_records(tmp_path)
    pack = tmp_path / "records" / records.PACK
    lines = gzip.decompress(pack.read_bytes()).decode() + json.dumps({**_record("x", 0.1), "status": "done"}) + "\n"
    pack.write_bytes(gzip.compress(lines.encode()))
    loaded = load_records(tmp_path)
    assert set(loaded.records) == {"a"} and loaded.corrupt == [
        (pack, "line 2: status 'done' not in ('ok', 'diverged', 'failed')")
    ]

    write_record(tmp_path, _record("b", 0.2))
    pack.write_bytes(pack.read_bytes()[:20])  # truncated: nothing in it can be read
    assert [why for _, why in load_records(tmp_path).corrupt] == ["unreadable: EOFError"]
    with pytest.raises(SlabenchError, match="not repacking"):
        records.pack_records(tmp_path)
    assert (tmp_path / "records" / "b.json").exists()  # the loose record stays


def test_leaderboard_and_resume_read_packed_records_as_loose_ones(tmp_path):
    """The committed smoke records, packed: the same leaderboard byte for byte, and a resumed grid
    finds every run recorded."""
    import shutil

    from click.testing import CliRunner

    from slabench.cli import main
    from slabench.config import expand_grid, load_preset
    from slabench.runners.grid import plan

    loose, packed = tmp_path / "loose", tmp_path / "packed"
    shutil.copytree(Path(__file__).parents[1] / "leaderboards/records/smoke", loose)
    shutil.copytree(loose, packed)
    result = CliRunner().invoke(main, ["pack", str(packed)])
    assert result.exit_code == 0 and "records, " in result.output
    assert [p.name for p in packed.rglob("*.json") if p.parent.name == "records"] == []
    for d in (loose, packed):
        assert CliRunner().invoke(main, ["leaderboard", str(d), "--name", "board"]).exit_code == 0
    assert (packed / "board.md").read_text() == (loose / "board.md").read_text()
    _, specs = expand_grid(load_preset("smoke"))
    assert plan(specs, packed)[0] == plan(specs, loose)[0] == []


# --- resume plan and failure isolation (slabench.runners.grid) --------------------------------------


def _specs(n: int):
    from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec

    task = TaskSpec("mqar", (("num_kv_pairs", 2), ("seq_len", 16), ("vocab_size", 32)))
    model = ModelSpec("attention", (("d_model", 16), ("n_heads", 2), ("n_layers", 1)))
    return [
        RunSpec("t", task, model, TrainSpec(steps=4, batch_size=4, eval_every=2, val_size=4, test_size=4), s)
        for s in range(n)
    ]


def test_plan_skips_recorded_runs_and_retries_only_failed_ones(tmp_path):
    from slabench.runners.grid import plan

    specs = _specs(4)
    for spec, status in zip(specs[:3], ["ok", "failed", "diverged"]):
        rec = {**_record(spec.key(), 0.5), "status": status}
        if status != "ok":
            rec["metrics"] = {}
        write_record(tmp_path, rec)
    (tmp_path / "records" / "zz.json").write_text("{")  # a corrupt file is listed, never planned around
    pending, recorded, corrupt = plan(specs, tmp_path)
    assert pending == specs[3:] and recorded == specs[:3] and [p.name for p, _ in corrupt] == ["zz.json"]
    pending, recorded, _ = plan(specs, tmp_path, retry_failed=True)
    assert pending == [specs[1], specs[3]] and recorded == [specs[0], specs[2]]  # diverged is a result
    # A newer slabench's record is not redone: that would overwrite its result with this one's.
    newer = tmp_path / "records" / f"{specs[3].key()}.json"
    newer.write_text(json.dumps({**_record(specs[3].key(), 0.5), "schema": 99}))
    with pytest.raises(SlabenchError, match="written by a newer slabench"):
        plan(specs, tmp_path)
    assert json.loads(newer.read_text())["schema"] == 99


def test_a_run_that_raises_becomes_a_failed_record_and_the_grid_goes_on(tmp_path, monkeypatch):
    from slabench.runners import train as train_mod
    from slabench.runners.grid import run_grid

    real = train_mod.train

    def flaky(spec, device, on_step=None, **kw):
        if spec.seed == 1:
            raise RuntimeError("boom in run 1")
        return real(spec, device, on_step, **kw)

    monkeypatch.setattr(train_mod, "train", flaky)
    specs = _specs(3)
    run_grid(specs, tmp_path, device="cpu", workers=1)
    got = load_records(tmp_path)
    assert not got.corrupt and set(got.records) == {s.key() for s in specs}
    statuses = {r["seed"]: r["status"] for r in got.records.values()}
    assert statuses == {0: "ok", 1: "failed", 2: "ok"}
    failed = got.records[specs[1].key()]
    assert "RuntimeError" in failed["error"] and "boom in run 1" in failed["error"]
    assert type(specs[1]).from_dict(failed["spec"]) == specs[1]


def test_committed_records_load_and_lack_only_what_the_schema_says():
    """Every record under leaderboards/records loads; older ones lack only the keys slabench.record
    lists as absent from older records."""
    loaded = load_records(Path(__file__).parents[1] / "leaderboards/records")
    assert not loaded.corrupt and len(loaded.records) > 100
    lacking: Counter = Counter()
    for r in loaded.records.values():
        parts = [("", r, RunRecord)] + [
            (p + ".", r[p], t)
            for p, t in (("metrics", Metrics), ("model", ModelInfo), ("timings", Timings), ("environment", Environment))
            if p in r
        ]
        for prefix, d, schema in parts:
            every = schema.__required_keys__ | schema.__optional_keys__
            assert schema.__required_keys__ <= set(d) <= every, (r["key"], prefix)
            lacking.update(prefix + k for k in every - set(d))
    absent_ok = {"traceback", "checkpoint", "fold", "model.mixer_source", "environment.mps", "environment.device_index"}
    absent_ok.add("metrics.train_examples")  # written only by runs with a finite training set
    assert set(lacking) <= absent_ok, lacking


# --- records of the wrong shape: skipped, named, never a traceback ----------------------------------


def _set(path: str, value):
    """A change to a record: set the field at dotted `path` to `value`."""

    def change(r: dict) -> None:
        *parts, last = path.split(".")
        for p in parts:
            r = r[p]
        r[last] = value

    return change


def _drop(path: str):
    def change(r: dict) -> None:
        *parts, last = path.split(".")
        for p in parts:
            r = r[p]
        del r[last]

    return change


# Valid JSON of the wrong shape, each of which once crashed the tables, and the field the
# skip message names.
MALFORMED = {
    "metrics-null": (_set("metrics", None), "metrics is null, not an object"),
    "spec-string": (_set("spec", "x"), 'spec is "x", not an object'),
    "spec-no-task": (_drop("spec.task"), "missing 'spec.task'"),
    "acc-string": (_set("metrics.test_acc", "high"), 'metrics.test_acc is "high", not a number'),
    "timings-null": (_set("timings", None), "timings is null, not an object"),
    "seed-string": (_set("seed", "x"), 'seed is "x", not an integer'),
    "grid-null": (_set("spec.grid", None), "spec.grid is null, not a string"),
    "curve-string": (_set("metrics.curve", "x"), 'metrics.curve is "x", not a list'),
    "curve-point": (_set("metrics.curve", [1]), "metrics.curve has a point without an integer step"),
    "solve-at-string": (_set("spec.train.solve_at", "x"), 'spec.train.solve_at is "x", not a number'),
    "solve-at-range": (_set("spec.train.solve_at", 2), "spec.train: solve_at=2 must be in (0, 1]"),
    "train-extra": (_set("spec.train.bogus", 1), "spec.train.bogus is not a training setting"),
    "task-params": (_set("spec.task.params", "x"), "spec.task.params is not a list of (name, value) pairs"),
    "schema-newer": (_set("schema", 99), "schema 99 is newer than this slabench reads (1)"),
    "steps-bool": (_set("metrics.steps", True), "metrics.steps is true, not an integer"),
    "no-timestamp": (_drop("timestamp"), "missing 'timestamp'"),
    "bad-timestamp": (_set("timestamp", "yesterday"), "timestamp 'yesterday' is not an ISO 8601 time"),
    "no-device": (_set("environment", {}), "environment.device is None, not a string"),
    "ok-no-val-acc": (_drop("metrics.val_acc"), "status ok but no val_acc in metrics"),
    "ok-no-model": (_drop("model"), "model is null, not an object"),
}


def test_each_malformed_record_is_skipped_naming_its_field(tmp_path):
    write_record(tmp_path, _record("good", 0.5))
    for key, (change, _) in MALFORMED.items():
        record = _record(key, 0.5)
        change(record)
        (tmp_path / "records" / f"{key}.json").write_text(json.dumps(record))
    loaded = load_records(tmp_path)
    assert set(loaded.records) == {"good"}
    reasons = {p.stem: why for p, why in loaded.corrupt}
    assert set(reasons) == set(MALFORMED)
    for key, (_, why) in MALFORMED.items():
        assert reasons[key].startswith(why), (key, reasons[key])


def test_older_and_unfinished_records_still_load(tmp_path):
    """What slabench.record says a record may lack: an older record's newer fields, and the metrics,
    model and timings of a diverged or failed run."""
    older = _record("older", 0.5)
    for key in ("solve_at", "min_seeds", "epochs", "train_examples"):
        del older["spec"]["train"][key]
    older["seed"] = older["spec"]["seed"] = 3
    diverged = {**_record("diverged", 0.0), "status": "diverged", "error": "loss is nan"}
    diverged["metrics"] = {"steps": 4, "curve": [{"step": 2, "val_acc": None, "train_loss": float("nan")}]}
    failed = {**_record("failed", 0.0), "status": "failed", "error": "boom", "traceback": None, "metrics": {}}
    del failed["model"], failed["timings"]
    for record in (older, diverged, failed):
        write_record(tmp_path, record)
    loaded = load_records(tmp_path)
    assert not loaded.corrupt and set(loaded.records) == {"older", "diverged", "failed"}


def test_malformed_records_leave_leaderboard_and_pack_working(tmp_path):
    """`slabench leaderboard` and `slabench pack` on the committed smoke records plus every malformed
    record: each bad file is named with its field, no traceback, the same leaderboard as without them,
    and pack folds the good records in and leaves the bad ones loose."""
    import shutil

    from click.testing import CliRunner

    from slabench.cli import main

    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    shutil.copytree(Path(__file__).parents[1] / "leaderboards/records/smoke", clean)
    shutil.copytree(clean, dirty)
    template = json.loads(min((clean / "records").glob("*.json")).read_text())
    for n, (change, _) in enumerate(MALFORMED.values()):
        record = json.loads(json.dumps(template))
        record["key"] = f"{n:016x}"
        change(record)
        (dirty / "records" / f"{record['key']}.json").write_text(json.dumps(record))

    result = CliRunner().invoke(main, ["leaderboard", str(dirty), "--name", "board"])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "Traceback" not in result.output
    said = "".join(result.stderr.split())  # rich wraps long lines, paths included
    for n, (_, why) in enumerate(MALFORMED.values()):
        assert "".join(f"{n:016x}.json: {why}".split()) in said, why
    assert CliRunner().invoke(main, ["leaderboard", str(clean), "--name", "board"]).exit_code == 0
    assert (dirty / "board.md").read_text() == (clean / "board.md").read_text()

    good = load_records(dirty).records
    result = CliRunner().invoke(main, ["pack", str(dirty)])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert sorted(p.name for p in (dirty / "records").glob("*.json")) == [
        f"{n:016x}.json" for n in range(len(MALFORMED))
    ]
    assert load_records(dirty).records == good


def test_run_skips_a_malformed_record_and_redoes_its_run(tmp_path, tiny_grid):
    """`slabench run` over records of which one has a field of the wrong type: that run is named and
    redone, another grid's malformed record is left as it was, and the leaderboard is written."""
    from click.testing import CliRunner

    from slabench.cli import main

    grid, out = tiny_grid(), tmp_path / "out"
    args = ["run", str(grid), "--out", str(out), "--device", "cpu", "--workers", "1", "--json"]
    assert CliRunner().invoke(main, args).exit_code == 0
    victim = min((out / "records").glob("*.json"))
    record = json.loads(victim.read_text())
    victim.write_text(json.dumps({**record, "metrics": {**record["metrics"], "test_acc": "high"}}))
    stranger = out / "records" / f"{'0' * 16}.json"
    stranger.write_text(json.dumps({**record, "key": "0" * 16, "timings": None}))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "metrics.test_acc" in result.stderr and "timings is null" in result.stderr
    assert json.loads(result.stdout)["ran"] == 1
    assert isinstance(json.loads(victim.read_text())["metrics"]["test_acc"], float)  # rerun, rewritten
    assert json.loads(stranger.read_text())["timings"] is None  # not this grid's: never touched
    assert len(load_records(out).records) == 3 and (out / "tiny.md").is_file()

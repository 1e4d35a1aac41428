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
    return {"schema": 1, "key": key, "spec": {"name": "t"}, "seed": 0, "status": "ok", "metrics": {"test_acc": acc}}


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
    assert load_records(tmp_path).records["k1"]["metrics"] == {"test_acc": 1.0}
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

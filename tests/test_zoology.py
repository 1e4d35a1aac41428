"""Zoology's protocol: the finite training set, dropout, and `slabench report zoology`."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from slabench.cli import main
from slabench.config import RunSpec, TrainSpec, expand_grid
from slabench.errors import SlabenchError
from slabench.models import build_model
from slabench.runners.data import hash_multipliers, row_hashes, training_batches
from slabench.runners.data import seeded_generator as _generator
from slabench.runners.train import TEST_SEED, VAL_SEED, evaluate, train
from slabench.runners.zoology import Point, best_points, checks, grid_specs, write_zoology
from slabench.tasks import build_task

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def _rows(task, cfg: TrainSpec, seed: int, n_batches: int, held_out: torch.Tensor | None = None) -> torch.Tensor:
    """[n_batches * B, T] the first training rows of a run."""
    mult = hash_multipliers(task.seq_len, CPU)
    held = held_out if held_out is not None else torch.empty(0, dtype=torch.long)
    batches, _ = training_batches(task, cfg, seed, CPU, held, mult)
    return torch.cat([next(batches).inputs for _ in range(n_batches)])


def test_finite_set_cycles_the_same_examples_each_epoch_and_is_reproducible():
    task = build_task("mqar", vocab_size=64, seq_len=16, num_kv_pairs=2)
    cfg = TrainSpec(train_examples=40, batch_size=16)  # 16 does not divide 40: batches straddle epochs
    rows = _rows(task, cfg, seed=3, n_batches=10)  # 160 rows: four epochs of 40
    epochs = rows.view(4, 40, 16)
    assert all(torch.equal(epochs[0], epochs[e]) for e in (1, 2, 3))  # same examples, same order (no shuffle)
    assert len({tuple(r) for r in epochs[0].tolist()}) > 30  # 40 examples, not a few repeated
    assert torch.equal(rows, _rows(task, cfg, seed=3, n_batches=10))  # reproducible from the seed
    assert not torch.equal(rows, _rows(task, cfg, seed=4, n_batches=10))
    fresh = _rows(task, replace(cfg, train_examples=0), seed=3, n_batches=10)
    assert len({tuple(r) for r in fresh.tolist()}) > 150  # the default stream never repeats a set


def test_epochs_budget_and_zero_overlap_on_a_task_with_many_rows(one_thread):
    grid = {
        "name": "t",
        "train": {"train_examples": 50, "epochs": 3, "batch_size": 16, "eval_every": 5, "val_size": 16},
        "tasks": [{"name": "mqar", "vocab_size": 64, "seq_len": 16, "num_kv_pairs": 2}],
        "models": [{"name": "attention", "d_model": 16, "n_layers": 1, "n_heads": 1}],
    }
    record = train(expand_grid(grid)[1][0])
    assert record["metrics"]["steps"] == 10  # ceil(3 epochs * 50 / 16)
    assert record["metrics"]["train_examples"] == 50  # no collisions among 64^16-ish rows
    assert record["metrics"]["train_test_overlap"] == 0.0


def test_rows_equal_to_validation_or_test_rows_never_train(one_thread):
    """Parity at 6 bits has 64 possible rows: 40 validation and 40 test draws cover most of
    them, and a training set of 200 draws meets them often. Checked against plain row sets."""
    task = build_task("parity", seq_len=6)
    cfg = TrainSpec(train_examples=200, batch_size=8, val_size=40, test_size=40, steps=6, eval_every=3)
    val = task.sample(40, _generator(VAL_SEED, CPU), CPU)
    test = task.sample(40, _generator(TEST_SEED, CPU), CPU)
    mult = hash_multipliers(6, CPU)
    held = torch.cat([row_hashes(val.inputs, mult), row_hashes(test.inputs, mult)])
    held_rows = {tuple(r) for r in torch.cat([val.inputs, test.inputs]).tolist()}
    batches, kept = training_batches(task, cfg, 0, CPU, held, mult)
    assert 0 < kept < 200  # collisions happened and were dropped
    trained = {tuple(r) for _ in range(60) for r in next(batches).inputs.tolist()}  # 480 rows: every kept one
    assert trained and not trained & held_rows
    never_drawn = {tuple(r) for r in _rows(task, replace(cfg, train_examples=200), 0, 25).tolist()}
    assert never_drawn & held_rows  # the same draws without the filter do meet held-out rows

    grid = {
        "name": "t",
        "train": {"train_examples": 200, "steps": 6, "batch_size": 8, "eval_every": 3, "val_size": 40, "test_size": 40},
        "tasks": [{"name": "parity", "seq_len": 6}],
        "models": [{"name": "attention", "d_model": 8, "n_layers": 1, "n_heads": 1}],
    }
    record = train(expand_grid(grid)[1][0])
    assert record["metrics"]["train_test_overlap"] == 0.0 and record["metrics"]["train_examples"] == kept


def test_a_set_that_only_holds_held_out_rows_is_one_clear_error():
    task = build_task("parity", seq_len=2)  # 4 possible rows, all among 64 validation draws
    val = task.sample(64, _generator(VAL_SEED, CPU), CPU)
    mult = hash_multipliers(2, CPU)
    with pytest.raises(SlabenchError, match="train_examples=10: every drawn example"):
        training_batches(task, TrainSpec(train_examples=10), 0, CPU, row_hashes(val.inputs, mult), mult)


def test_new_train_options_keep_old_keys_and_validate():
    records = sorted((ROOT / "leaderboards" / "records").glob("*/records/*.json"))
    assert len(records) > 50
    for path in records:  # runs recorded before train_examples / epochs existed keep their keys
        r = json.loads(path.read_text())
        assert RunSpec.from_dict(r["spec"]).key() == r["key"], path
    spec = RunSpec.from_dict(json.loads(records[0].read_text())["spec"])
    assert replace(spec, train=replace(spec.train, train_examples=100)).key() != spec.key()
    with pytest.raises(SlabenchError, match=r"^train: epochs=2 needs a finite training set"):
        TrainSpec(epochs=2)
    grid = {"name": "t", "tasks": [{"name": "mqar"}], "models": [{"name": "attention"}]}
    with pytest.raises(SlabenchError, match="steps and epochs are each a budget"):
        expand_grid({**grid, "train": {"steps": 5, "epochs": 2, "train_examples": 10}})


def test_dropout_is_on_in_training_and_off_in_evaluation(one_thread):
    torch.manual_seed(0)
    model = build_model(
        "attention", vocab_size=32, d_model=16, n_heads=1, n_layers=2, dropout=0.1, attn_dropout=0.1, mlp=False
    )
    tokens = torch.randint(32, (4, 12))
    model.train()
    assert not torch.equal(model(tokens), model(tokens))  # embedding and attention masks drawn anew
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(tokens), model(tokens))
    task = build_task("mqar", vocab_size=32, seq_len=12, num_kv_pairs=2)
    data = task.sample(64, _generator(1, CPU), CPU)
    model.train()
    first, second = evaluate(model, data, None), evaluate(model, data, None)
    assert first == second and model.training  # evaluation switches to eval mode and back
    plain = build_model("attention", vocab_size=32, d_model=16, n_heads=1, n_layers=2)
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain.modules())  # the default adds nothing
    with pytest.raises(SlabenchError, match=r"dropout=1\.5 must be in"):
        build_model("gla", vocab_size=32, dropout=1.5)


def _point(mixer: str, t: int, d: int, acc: float) -> tuple[tuple[str, int, int], Point]:
    return (mixer, t, d), Point(mixer, t, d, 1e-3, acc, (acc,))


def test_checks_follow_the_stated_rules():
    shape = {(64, 64): 0.9, (64, 128): 1.0, (256, 64): 0.2, (256, 128): 0.6}  # falls with T, rises with d
    points = dict(_point("attention", t, d, 1.0) for t, d in shape)
    points |= dict(_point("gla", t, d, a) for (t, d), a in shape.items())
    points |= dict(_point("sla-gla", t, d, 0.5) for t, d in shape)  # flat: fails both
    verdicts = {(m, c.split(":")[0]): ok for m, c, _, ok in checks(points, {"attention", "gla", "sla-gla", "gdn"})}
    assert verdicts[("attention", "test accuracy >= 99.0% at every (seq_len, d_model)")]
    assert verdicts[("gla", "d_model 64")] and verdicts[("gla", "seq_len 256")]
    assert not verdicts[("sla-gla", "d_model 64")] and not verdicts[("sla-gla", "seq_len 256")]
    assert not verdicts[("gdn", "d_model 64")]  # in the grid but never recorded: fails
    points[("attention", 256, 64)] = Point("attention", 256, 64, 1e-3, 0.98, (0.98,))
    assert not checks(points, {"attention"})[0][3]


def test_best_point_takes_the_lr_best_on_validation_not_test():
    spec = next(s for s in grid_specs("tiny")[0][1] if s.model.name == "gla")

    def record(lr: float, val: float, test: float) -> dict:
        s = replace(spec, train=replace(spec.train, lr=lr))
        return {"spec": s.to_dict(), "status": "ok", "metrics": {"val_acc": val, "test_acc": test}}

    points = best_points([record(1e-3, 0.9, 0.5), record(1e-2, 0.4, 0.8)])
    (point,) = points.values()
    assert point.lr == 1e-3 and point.acc == 0.5


def test_tiny_report_runs_end_to_end_and_rebuilds_from_records(tmp_path, one_thread):
    report = tmp_path / "zoology-mqar.md"
    args = ["report", "zoology", "--scale", "tiny", "--out", str(tmp_path / "runs"), "--report", str(report)]
    result = CliRunner().invoke(main, [*args, "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "| attention |" in text and "| sla-gla |" in text and "acc rises with d_model" in text
    assert (tmp_path / "zoology-mqar.png").stat().st_size > 10_000
    assert "2 epochs of 256 examples" in text  # the scale is stated
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/records/*.json")]
    assert len(records) == 12 and all(r["metrics"]["train_test_overlap"] == 0.0 for r in records)
    again = CliRunner().invoke(main, [*args, "--from-records"])
    assert again.exit_code == 0 and report.read_text() == text
    # Without --report a tiny report goes under --out: it never overwrites the committed one.
    committed = (ROOT / "leaderboards" / "zoology-mqar.md").stat().st_mtime_ns
    default = CliRunner().invoke(main, [*args[:-2], "--from-records"])
    assert default.exit_code == 0 and (tmp_path / "runs" / "zoology-mqar.md").read_text() == text
    assert (ROOT / "leaderboards" / "zoology-mqar.md").stat().st_mtime_ns == committed
    assert "from 12 of the grids' 12 runs" in text and "**incomplete**" not in text
    next(iter((tmp_path / "runs").glob("*/records/*.json"))).unlink()  # a run not recorded yet
    partial = CliRunner().invoke(main, [*args, "--from-records"])
    assert partial.exit_code == 0 and "acceptance: incomplete" in partial.output
    text = report.read_text()
    assert "from 11 of the grids' 12 runs" in text and "**incomplete** (" in text and "1 runs not recorded yet" in text


def test_committed_report_regenerates_from_committed_records(tmp_path):
    """leaderboards/zoology-mqar.md is exactly what leaderboards/records/zoology-mqar gives."""
    report = tmp_path / "zoology-mqar.md"
    out = ROOT / "leaderboards" / "records" / "zoology-mqar"
    args = ["report", "zoology", "--from-records", "--out", str(out), "--report", str(report)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert report.read_text() == (ROOT / "leaderboards" / "zoology-mqar.md").read_text()


def test_a_point_with_unrecorded_lrs_is_marked(tmp_path):
    """The full grids plan four lrs a point; with one recorded, the cell shows that run, marked."""
    spec = next(s for s in grid_specs("full")[0][1] if s.model.name == "gla" and dict(s.model.params)["d_model"] == 64)
    record = {
        "spec": spec.to_dict(),
        "status": "ok",
        "metrics": {"val_acc": 0.5, "test_acc": 0.25},
        "environment": {"device": "cpu"},
    }
    assert write_zoology([record], "full", tmp_path / "z.md") == "incomplete"
    text = (tmp_path / "z.md").read_text()
    assert "| gla | 25.0* |" in text and "*: some of the point's runs are not recorded yet" in text


def test_attention_biases_start_at_zero_and_learn():
    """`bias = true` (Zoology's MHA) adds biases to the qkv and output projections, zero at
    initialisation like Zoology's, and they receive gradients; the default has none."""
    torch.manual_seed(0)
    model = build_model("attention", vocab_size=32, d_model=16, n_heads=1, n_layers=1, bias=True, mlp=False)
    attention = model.mixers[0]
    biases = [attention.qkv.bias, attention.out.bias]
    assert [tuple(b.shape) for b in biases] == [(48,), (16,)]
    assert all(torch.equal(b, torch.zeros_like(b)) for b in biases)
    model(torch.randint(32, (2, 8))).square().sum().backward()
    assert all(b.grad is not None and b.grad.abs().sum() > 0 for b in biases)
    plain = build_model("attention", vocab_size=32, d_model=16, n_heads=1, n_layers=1, mlp=False).mixers[0]
    assert plain.qkv.bias is None and plain.out.bias is None

"""Leaderboard maths against hand-computed values, and records on disk."""

import json
import math

import pytest

from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec
from slabench.runners.leaderboard import aggregate, mean_ci, tie_ranks, write_leaderboard
from slabench.runners.records import load_records, write_record

TASK = TaskSpec("mqar", (("num_kv_pairs", 2), ("seq_len", 16), ("vocab_size", 32)))


def test_mean_ci_by_hand():
    # mean 0.8, sample sd 0.1, t(0.975, df=2) = 4.303: half-width 4.303 * 0.1 / sqrt(3)
    mean, half = mean_ci([0.7, 0.8, 0.9])
    assert mean == pytest.approx(0.8)
    assert half == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert math.isnan(mean_ci([0.5])[1])


def test_ties_when_intervals_overlap():
    rows = [{"acc": 0.9, "acc_ci": 0.05}, {"acc": 0.86, "acc_ci": 0.02}, {"acc": 0.5, "acc_ci": 0.1}]
    # [0.85, 0.95] and [0.84, 0.88] overlap -> both rank 1; [0.4, 0.6] is below both -> rank 3
    assert tie_ranks(rows) == [1, 1, 3]


def test_a_wide_interval_at_the_bottom_ties_with_its_neighbours_not_the_top():
    """The quick preset's MQAR table (H100): intervals as wide as sla-gla's 47 +- 112 used to earn
    rank 1 at the bottom, above a tight 97.5 +- 1.3."""
    rows = [{"acc": 99.9, "acc_ci": 0.0}, {"acc": 99.8, "acc_ci": 0.2}, {"acc": 99.0, "acc_ci": 2.4},
            {"acc": 97.5, "acc_ci": 1.3}, {"acc": 47.1, "acc_ci": 112.3}, {"acc": 38.2, "acc_ci": 90.8}]
    # [99.6, 100.0] and [96.6, 101.4] overlap [99.9, 99.9]: rank 1;
    # [96.2, 98.8] is below 99.9: a new group at position 4; the wide ones overlap [96.2, 98.8]: 4
    assert tie_ranks(rows) == [1, 1, 1, 4, 4, 4]
    # a NaN interval (one seed) is a point: 0.7 is below 0.8 (rank 2); [0.4, 0.8] reaches 0.7 (rank 2)
    assert tie_ranks([{"acc": 0.8, "acc_ci": float("nan")}, {"acc": 0.7, "acc_ci": float("nan")},
                      {"acc": 0.6, "acc_ci": 0.2}]) == [1, 2, 2]


def _record(model: str, lr: float, seed: int, val: float, test: float, status: str = "ok") -> dict:
    spec = RunSpec("g", TASK, ModelSpec(model, (("d_model", 16),)), TrainSpec(steps=1, lr=lr), seed)
    metrics = {} if status == "failed" else {"test_acc": test, "val_acc": val, "test_exact": test, "steps": 1}
    return {
        "key": spec.key(), "spec": spec.to_dict(), "seed": seed, "status": status, "metrics": metrics,
        "model": {"params": 10, "state_size": 4}, "error": "boom" if status != "ok" else None,
        "timings": {"train_seconds": 1.0, "tokens_per_s": 100.0},
        "environment": {"device": "cpu"}, "kernel_paths": {},
    }


def test_best_lr_is_chosen_on_validation_not_test():
    records = [
        # lr 1e-3: better on validation (0.9) though worse on test -> chosen
        *[_record("a", 1e-3, s, 0.9, t) for s, t in enumerate([0.70, 0.80, 0.90])],
        *[_record("a", 3e-3, s, 0.5, 0.99) for s in range(3)],
        *[_record("b", 1e-3, s, 0.2, t) for s, t in enumerate([0.1, 0.2, 0.3])],
    ]
    board = aggregate(records)
    rows = board["tasks"][TASK.label()]
    a = next(r for r in rows if r["mixer"] == "a")
    assert a["best_lr"] == 1e-3 and a["acc"] == pytest.approx(0.8)
    assert a["acc_ci"] == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert [r["mixer"] for r in rows] == ["a", "b"] and [r["rank"] for r in rows] == [1, 2]
    assert len(board["fixed_lr"]) == 3  # the full sweep is kept
    assert board["overall"][0]["mixer"] == "a" and board["overall"][0]["mean_rank"] == 1


def test_diverged_scores_zero_and_failed_is_excluded_but_listed():
    records = [_record("a", 1e-3, 0, 0.8, 0.8), _record("a", 1e-3, 1, 0, 0, "diverged"),
               _record("a", 1e-3, 2, 0, 0, "failed")]
    row = aggregate(records)["tasks"][TASK.label()][0]
    assert row["acc"] == pytest.approx(0.4) and row["seeds"] == 2 and row["diverged"] == 1 and row["failed"] == 1
    assert {f["status"] for f in aggregate(records)["failures"]} == {"diverged", "failed"}


def test_records_roundtrip_and_corruption_is_reported(tmp_path):
    good = _record("a", 1e-3, 0, 0.8, 0.8)
    write_record(tmp_path, good)
    bad = _record("a", 1e-3, 1, 0.8, 0.8)
    path = write_record(tmp_path, bad)
    path.write_text(path.read_text()[:50])  # truncated
    found = load_records(tmp_path)
    assert list(found.records) == [good["key"]]
    assert len(found.corrupt) == 1 and found.corrupt[0][0] == path
    assert not list(tmp_path.glob("records/.tmp-*"))  # atomic writes leave no temporaries


def test_write_leaderboard_files(tmp_path):
    records = [_record(m, 1e-3, s, 0.5, 0.5 + 0.1 * s) for m in ("a", "b") for s in range(3)]
    paths = write_leaderboard(aggregate(records), tmp_path, "demo")
    md = paths["md"].read_text()
    assert "| 1 | a(d_model=16)" in md and "| 1 | b(d_model=16)" in md  # identical results tie
    data = json.loads(paths["json"].read_text())
    assert data["ranked_by"].startswith("mean test accuracy")
    assert paths["csv"].read_text().count("\n") == 3


def test_terminal_table_keeps_essential_columns_when_narrow(monkeypatch):
    """At 80 columns the full table truncates every cell to '…'; the narrow one keeps its cells whole."""
    from rich.console import Console

    from slabench import cli

    rows = [{"rank": 1, "mixer": "sla-gla", "model": "sla-gla", "model_params": {"d_model": 128, "n_heads": 4},
             "params": 207800, "state_size": 5600, "acc": 0.405, "acc_ci": 1.272, "exact": 0.306, "best_lr": 1e-3,
             "seeds": 3, "diverged": 0, "failed": 0, "steps": 1400, "train_seconds": 5.0, "tokens_per_s": 4.7e6}]
    for width, columns in ((80, list(cli.NARROW_COLUMNS)), (160, None)):
        console = Console(width=width, record=True)
        monkeypatch.setattr(cli, "out_console", console)
        (table,) = cli._board_table({"tasks": {"mqar": rows}})
        console.print(table)
        text = console.export_text()
        assert [c.header for c in table.columns] == (columns or [c.header for c in table.columns])
        assert "40.5 ± 127.2" in text and "sla-gla" in text and "…" not in text
    assert len(table.columns) == 11

"""Leaderboard maths against hand-computed values, and records on disk."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec
from slabench.errors import SlabenchError
from slabench.runners.leaderboard import aggregate, device_time, device_time_line, rank_rows
from slabench.runners.leaderboard_files import to_markdown, write_leaderboard
from slabench.runners.records import load_records, write_record

TASK = TaskSpec("mqar", (("num_kv_pairs", 2), ("seq_len", 16), ("vocab_size", 32)))
ROOT = Path(__file__).resolve().parents[1]


def row(name: str, accs: list[float], seeds: list[int] | None = None) -> dict:
    """A leaderboard row with per-seed accuracies (solve_at 0.9)."""
    seeds = list(range(len(accs))) if seeds is None else seeds
    return {
        "model": name,
        "seeds": len(accs),
        "seed_ids": seeds,
        "seed_accs": accs,
        "acc": sum(accs) / len(accs),
        "solve_rate": sum(a >= 0.9 for a in accs) / len(accs),
    }


def ranks(rows: list[dict], min_seeds: int = 2) -> list[tuple[str, int | None]]:
    return [(r["model"], r["rank"]) for r in rank_rows(rows, min_seeds)]


def test_rank_rule_sorts_by_solve_rate_then_accuracy_and_ties_only_when_the_test_cannot_separate():
    top = row("top", [0.999] * 6)
    close = row("close", [0.97, 0.975, 0.98, 0.97, 0.975, 0.98])  # lower in every seed: p = 2/64, separable
    same = row("same", [0.97, 0.975, 0.98, 0.97, 0.975, 0.981])  # 5 zero differences: not separable from close
    low = row("low", [0.5] * 6)
    assert ranks([low, same, top, close]) == [("top", 1), ("same", 2), ("close", 2), ("low", 4)]
    # Solve rate first: 3 of 6 solved (mean 0.525) above 0 of 6 at a higher mean (0.85).
    half, near = row("half", [0.95, 0.95, 0.95, 0.1, 0.1, 0.1]), row("near", [0.85] * 6)
    assert [r["model"] for r in rank_rows([near, half], 2)] == ["half", "near"]


def test_ties_are_judged_against_the_group_top_not_the_row_above():
    # b ties with a (p = 1), c ties with b (p = 4/64) but not with a (every seed lower: p = 2/64)
    a, b, c = row("a", [0.99] * 6), row("b", [0.99] * 5 + [0.5]), row("c", [0.5] * 6)
    assert ranks([c, b, a]) == [("a", 1), ("b", 1), ("c", 3)]


def test_a_wide_bimodal_row_never_ranks_above_a_tight_better_one():
    """The quick preset's needle table: sla-retnet at 34.1 +- 141.4 (seeds 99.8, 1.2, 1.4) was rank 1
    beside linear at 99.5, and 47 +- 112 ranked above 97.5 +- 1.3."""
    tight = row("tight", [0.970, 0.975, 0.980])
    wide = row("wide", [0.99, 0.01, 0.41])
    assert ranks([wide, tight]) == [("tight", 1), ("wide", 1)]  # 3 seeds cannot separate: a tie, listed below
    assert ranks([wide, tight], min_seeds=5) == [("tight", None), ("wide", None)]  # too few seeds: unranked
    # With 8 seeds, 2 of them solved, the test separates it (p = 8/256): strictly below.
    tight8, wide8 = (
        row("tight", [0.97, 0.975, 0.98, 0.97, 0.975, 0.98, 0.97, 0.975]),
        row("wide", [0.99] + [0.01] * 6 + [0.99]),
    )
    assert ranks([wide8, tight8]) == [("tight", 1), ("wide", 2)]
    # A row ranked below can never carry a better rank than one above it, whatever the spreads.
    rows = [
        row(f"m{i}", accs)
        for i, accs in enumerate(
            [[0.99, 0.01, 0.99, 0.01, 0.99, 0.01], [0.95] * 6, [0.9, 0.3, 0.8, 0.2, 0.6, 0.4], [0.02] * 6, [0.99] * 6]
        )
    ]
    got = [r["rank"] for r in rank_rows(rows, 2)]
    assert got == sorted(got)


def test_too_few_seeds_are_shown_unranked_below_the_ranked_rows():
    assert ranks([row("three", [1.0, 1.0, 1.0]), row("five", [0.5] * 5)], min_seeds=5) == [("five", 1), ("three", None)]


def _record(model: str, lr: float, seed: int, val: float, test: float, status: str = "ok") -> dict:
    spec = RunSpec("g", TASK, ModelSpec(model, (("d_model", 16),)), TrainSpec(steps=1, lr=lr), seed)
    metrics = {} if status == "failed" else {"test_acc": test, "val_acc": val, "test_exact": test, "steps": 1}
    return {
        "key": spec.key(),
        "spec": spec.to_dict(),
        "seed": seed,
        "status": status,
        "metrics": metrics,
        "model": {"params": 10, "state_size": 4},
        "error": "boom" if status != "ok" else None,
        "timings": {"train_seconds": 1.0, "tokens_per_s": 100.0},
        "environment": {"device": "cpu"},
        "kernel_paths": {},
    }


def test_best_lr_is_chosen_on_validation_not_test():
    records = [
        # lr 1e-3: better on validation (0.9) though worse on test -> chosen
        *[_record("a", 1e-3, s, 0.9, t) for s, t in enumerate([0.70, 0.80, 0.90])],
        *[_record("a", 3e-3, s, 0.5, 0.99) for s in range(3)],
        *[_record("b", 1e-3, s, 0.2, t) for s, t in enumerate([0.1, 0.2, 0.3])],
    ]
    board = aggregate(records, min_seeds=2)
    rows = board["tasks"][TASK.label()]
    a = next(r for r in rows if r["mixer"] == "a")
    assert a["best_lr"] == 1e-3 and a["acc"] == pytest.approx(0.8) and a["acc_median"] == pytest.approx(0.8)
    assert a["seed_accs"] == [0.70, 0.80, 0.90] and a["solved"] == 1 and a["solve_rate"] == pytest.approx(1 / 3)
    assert a["lr_edge"] and any("at the edge of the sweep" in w for w in board["warnings"])
    assert [r["mixer"] for r in rows] == ["a", "b"] and [r["rank"] for r in rows] == [1, 1]  # p = 0.25: a tie
    assert len(board["fixed_lr"]) == 3  # the full sweep is kept
    assert board["overall"][0]["mixer"] == "a" and board["overall"][0]["solved"] == 1


def test_equal_validation_picks_the_smaller_lr_and_a_middle_choice_is_no_edge():
    records = [_record("a", lr, s, val, 0.5) for lr, val in ((1e-4, 0.3), (1e-3, 0.8), (1e-2, 0.8)) for s in range(2)]
    (row,) = aggregate(records)["tasks"][TASK.label()]
    assert row["best_lr"] == 1e-3 and not row["lr_edge"] and row["lrs"] == [1e-4, 1e-3, 1e-2]


def test_an_lr_with_failed_runs_is_chosen_only_when_every_lr_has_some():
    """One seed that survived two crashes does not outbid three complete seeds on validation."""
    from slabench.runners import report

    crashed = [_record("a", 1e-3, 0, 0.9, 0.9)] + [_record("a", 1e-3, s, 0, 0, "failed") for s in (1, 2)]
    complete = [_record("a", 3e-3, s, 0.5, 0.5) for s in range(3)]
    (row,) = aggregate(crashed + complete)["tasks"][TASK.label()]
    assert row["best_lr"] == 3e-3 and row["seeds"] == 3
    ((_, chosen),) = report.chosen_lrs(crashed + complete).items()  # the SLA report's stage 1 alike
    assert chosen["lr"] == 3e-3 and chosen["val"] == {1e-3: 0.9, 3e-3: 0.5}
    # Failures at every lr: the best on validation again, as without the rule.
    also = [_record("a", 3e-3, 3, 0, 0, "failed")]
    assert aggregate(crashed + complete + also)["tasks"][TASK.label()][0]["best_lr"] == 1e-3
    ((_, again),) = report.chosen_lrs(crashed + complete + also).items()
    assert again["lr"] == 1e-3


def test_diverged_scores_zero_and_failed_is_excluded_but_listed():
    records = [
        _record("a", 1e-3, 0, 0.8, 0.8),
        _record("a", 1e-3, 1, 0, 0, "diverged"),
        _record("a", 1e-3, 2, 0, 0, "failed"),
    ]
    row = aggregate(records)["tasks"][TASK.label()][0]
    assert row["acc"] == pytest.approx(0.4) and row["seeds"] == 2 and row["diverged"] == 1 and row["failed"] == 1
    assert row["seed_accs"] == [0.8, 0.0] and row["rank"] is None  # 2 seeds < min_seeds 5
    assert {f["status"] for f in aggregate(records)["failures"]} == {"diverged", "failed"}
    # Listed with their lr: in a sweep the same model and seed run at several.
    md = to_markdown("g", aggregate(records), {})
    assert "| seed | lr | status |" in md and "| 2 | 0.001 | failed |" in md
    # A model whose every run failed has no row: the warnings say so, where a reader looks for it.
    board = aggregate(records + [_record("b", lr, s, 0, 0, "failed") for lr in (1e-3, 3e-3) for s in range(2)])
    assert [r["mixer"] for r in board["tasks"][TASK.label()]] == ["a"]
    assert any(w.startswith("b(d_model=16) on ") and "all 4 runs failed" in w for w in board["warnings"])


def test_time_to_solve_comes_from_the_validation_curve_and_censors_runs_that_never_solve():
    def curved(seed: int, vals: list[float]) -> dict:
        r = _record("a", 1e-3, seed, vals[-1], vals[-1])
        r["metrics"]["curve"] = [{"step": 10 * (i + 1), "val_acc": v} for i, v in enumerate(vals)]
        return r

    records = [curved(0, [0.1, 0.95, 0.99]), curved(1, [0.1, 0.5, 0.92]), curved(2, [0.1, 0.2, 0.3])]
    (row,) = aggregate(records)["tasks"][TASK.label()]
    assert row["solve_step"] == 30  # solved at 20 and 30, one censored at 30: S = 2/3, then 1/3
    assert row["curve"]["step"] == [10, 20, 30] and row["curve"]["median"] == [0.1, 0.5, 0.92]
    assert row["curve"]["hi"] == [0.1, 0.95, 0.99] and row["curve"]["lo"] == [0.1, 0.2, 0.3]
    (row,) = aggregate(records[2:])["tasks"][TASK.label()]
    assert row["solve_step"] is None


def test_records_of_different_train_settings_are_different_cells():
    """Runs of the same grid at 400 steps and at 60 steps into one directory were pooled ("seeds 6")."""
    short = [_record("a", 1e-3, s, 0.5, 0.5) for s in range(2)]
    long = []
    for s in range(2):
        spec = RunSpec("g", TASK, ModelSpec("a", (("d_model", 16),)), TrainSpec(steps=400, lr=1e-3), s)
        long.append({**_record("a", 1e-3, s, 0.9, 0.9), "key": spec.key(), "spec": spec.to_dict()})
    rows = aggregate(short + long)["tasks"][TASK.label()]
    assert sorted(r["model"] for r in rows) == ["a(d_model=16) [steps=1]", "a(d_model=16) [steps=400]"]
    assert [r["seeds"] for r in rows] == [2, 2]


def test_leaderboard_settings_come_from_the_records_and_must_agree():
    records = [_record("a", 1e-3, s, 0.85, 0.85) for s in range(2)]
    assert aggregate(records)["solve_at"] == 0.9 and aggregate(records)["tasks"][TASK.label()][0]["solved"] == 0
    assert aggregate(records, solve_at=0.8)["tasks"][TASK.label()][0]["solved"] == 2
    assert aggregate(records, solve_at=0.85)["tasks"][TASK.label()][0]["solved"] == 2  # reaching it counts
    spec = RunSpec("g", TASK, ModelSpec("b"), TrainSpec(steps=1, solve_at=0.5), 0)
    records.append({**_record("b", 1e-3, 0, 0.5, 0.5), "spec": spec.to_dict()})
    with pytest.raises(SlabenchError, match="solve_at: the records disagree"):
        aggregate(records)
    with pytest.raises(SlabenchError, match=r"solve_at=1.5 must be in \(0, 1\]"):
        aggregate(records, solve_at=1.5)
    # The leaderboard settings change no run: the record key stays the same.
    assert spec.key() == RunSpec("g", TASK, ModelSpec("b"), TrainSpec(steps=1), 0).key()


def test_quick_records_rebuild_with_bounded_intervals_monotone_ranks_and_plots(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "leaderboard",
            str(ROOT / "leaderboards" / "records" / "quick"),
            "--out-dir",
            str(tmp_path),
            "--name",
            "q",
            "--min-seeds",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "q.json").read_text())
    keys = (
        "acc",
        "acc_lo",
        "acc_hi",
        "acc_median",
        "solved",
        "solve_rate",
        "solve_lo",
        "solve_hi",
        "seed_accs",
        "rank",
    )
    for rows in data["tasks"].values():
        for r in rows:
            assert all(k in r for k in keys)
            for k in ("acc", "acc_lo", "acc_hi", "acc_median", "solve_rate", "solve_lo", "solve_hi", *r["seed_accs"]):
                value = r[k] if isinstance(k, str) else k
                assert value is None or 0.0 <= value <= 1.0, (r["model"], k, value)
            assert r["acc_lo"] is None or r["acc_lo"] <= r["acc"] <= r["acc_hi"]
        ranked = [r for r in rows if r["rank"] is not None]
        order = [(-r["solve_rate"], -r["acc"]) for r in ranked]
        assert order == sorted(order) and [r["rank"] for r in ranked] == sorted(r["rank"] for r in ranked)
        assert rows[: len(ranked)] == ranked  # unranked cells (sla-gdn lost a run: 2 seeds) come last
    needle = next(rows for task, rows in data["tasks"].items() if task.startswith("needle"))
    linear, sla_retnet = (next(r for r in needle if r["mixer"] == m) for m in ("linear", "sla-retnet"))
    assert linear["rank"] <= sla_retnet["rank"] and needle.index(linear) < needle.index(sla_retnet)
    for o in data["overall"]:
        assert all(o[k] is None or 0 <= o[k] <= 1 for k in ("solve_lo", "solve_hi", "acc_lo", "acc_hi"))
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert {"q-task1-mqar.png", "q-task1-mqar-curves.png", "q-task2-needle.png", "q-task2-needle-curves.png"} <= pngs
    md = (tmp_path / "q.md").read_text()
    assert "](q-task1-mqar-curves.png)" in md and "3/3 [44, 100]" in md


@pytest.mark.parametrize("per_mixer", [1, 6])
def test_a_plot_of_many_series_gets_a_panel_per_mixer(tmp_path, monkeypatch, per_mixer):
    """Two series share one axes, labelled by mixer; twelve (more than a legend inside the axes
    holds) go on one panel per mixer, titled by it, each legend beside its panel (a panel is too
    short to hold one) naming only what differs there."""
    import matplotlib.pyplot as plt

    from slabench.runners import plots

    drawn = []

    def capture(fig, path, crop=False):
        legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]
        drawn.append(([ax.get_title(loc="left") for ax in fig.axes], fig.axes[0].get_title(), legends, crop))
        plt.close(fig)
        return path

    monkeypatch.setattr(plots, "save_figure", capture)
    rows = [
        {
            "model": f"{mixer}(n_heads={h})",
            "mixer": mixer,
            "model_params": {"d_model": 64, "n_heads": h},
            "task_name": "mqar",
            "task_params": {"num_kv_pairs": n, "seq_len": 256},
            "acc": 0.5,
            "acc_lo": 0.4,
            "acc_hi": 0.6,
        }
        for mixer in ("sla-gla", "gla")
        for h in range(per_mixer)
        for n in (16, 32)
    ]
    assert plots.param_plots(rows, tmp_path, "t") == [tmp_path / "t-mqar-acc-vs-num_kv_pairs.png"]
    ((panels, title, legends, beside),) = drawn
    heads = [f"n_heads={h}" for h in range(per_mixer)]
    if per_mixer == 1:
        assert (panels, title, legends, beside) == ([""], "mqar: accuracy vs num_kv_pairs", [["gla", "sla-gla"]], False)
    else:
        assert panels == ["gla", "sla-gla"] and title == "mqar: accuracy vs num_kv_pairs" and legends == [heads, heads]
        assert beside


def _written(*args) -> dict:
    """`_record` with what a run writes besides (the keys `load_records` requires)."""
    r = _record(*args)
    return {**r, "schema": 1, "timestamp": "2026-01-01T00:00:00+00:00", "metrics": {**r["metrics"], "curve": []}}


def test_records_roundtrip_and_corruption_is_reported(tmp_path):
    good = _written("a", 1e-3, 0, 0.8, 0.8)
    write_record(tmp_path, good)
    bad = _written("a", 1e-3, 1, 0.8, 0.8)
    path = write_record(tmp_path, bad)
    path.write_text(path.read_text()[:50])  # truncated
    found = load_records(tmp_path)
    assert list(found.records) == [good["key"]]
    assert len(found.corrupt) == 1 and found.corrupt[0][0] == path
    assert not list(tmp_path.glob("records/.tmp-*"))  # atomic writes leave no temporaries


def test_leaderboard_of_only_malformed_records_says_so_in_one_line(tmp_path):
    """Every record skipped (each named with its field): exit 2 and the no-records line, no traceback."""
    write_record(tmp_path, {**_written("a", 1e-3, 0, 0.8, 0.8), "metrics": None})
    write_record(tmp_path, {**_written("a", 1e-3, 1, 0.8, 0.8), "seed": "x"})
    result = CliRunner().invoke(main, ["leaderboard", str(tmp_path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    said = " ".join(result.stderr.split())
    assert said.count("; skipped") == 2 and "metrics is null" in said and 'seed is "x"' in said
    assert "holds no run records" in said and "Traceback" not in said
    assert not list(tmp_path.glob("*.md"))


def test_write_leaderboard_files(tmp_path):
    records = [_record(m, 1e-3, s, 0.5, 0.5 + 0.1 * s) for m in ("a", "b") for s in range(3)]
    paths = write_leaderboard(aggregate(records, min_seeds=2), tmp_path, "demo")
    md = paths["md"].read_text()
    assert "| 1 | a(d_model=16)" in md and "| 1 | b(d_model=16)" in md  # identical results tie
    assert "50.0 60.0 70.0" in md  # every seed's accuracy
    data = json.loads(paths["json"].read_text())
    assert data["ranked_by"].startswith("solve rate") and data["min_seeds"] == 2
    assert paths["csv"].read_text().count("\n") == 3


def test_committed_leaderboards_rebuild_byte_identical(tmp_path):
    """The committed leaderboards are exactly what their committed records give."""
    lb = ROOT / "leaderboards"
    for records, committed, name in (
        (lb / "records" / "smoke", lb, "smoke"),
        (lb / "records" / "quick", lb, "quick"),
        *(
            (lb / "records" / "sla-report" / s, lb / "records" / "sla-report" / s, f"report-{s}-full")
            for s in ("noise", "mqar", "heads")
        ),
    ):
        result = CliRunner().invoke(main, ["leaderboard", str(records), "--out-dir", str(tmp_path), "--name", name])
        assert result.exit_code == 0, result.output
        for suffix in ("md", "json", "csv"):
            assert (tmp_path / f"{name}.{suffix}").read_text() == (committed / f"{name}.{suffix}").read_text(), name


def test_terminal_table_keeps_essential_columns_when_narrow(monkeypatch):
    """At 80 columns the full table truncates every cell to '…'; the narrow one keeps its cells whole."""
    from rich.console import Console

    from slabench.cli import render

    rows = [
        {
            "rank": 1,
            "mixer": "sla-gla",
            "model": "sla-gla",
            "model_params": {"d_model": 128, "n_heads": 4},
            "params": 207800,
            "state_size": 5600,
            "acc": 0.405,
            "acc_lo": 0.011,
            "acc_hi": 0.99,
            "acc_median": 0.2,
            "seed_accs": [0.011, 0.2, 0.99],
            "solved": 1,
            "solve_lo": 0.06,
            "solve_hi": 0.79,
            "solve_step": None,
            "exact": 0.306,
            "best_lr": 1e-3,
            "seeds": 3,
            "diverged": 0,
            "failed": 0,
            "steps": 1400,
            "train_seconds": 5.0,
            "tokens_per_s": 4.7e6,
        }
    ]
    from slabench.runners.leaderboard_files import TASK_COLUMNS

    narrow = ["rank", "model", "solved (95% CI)", "acc % (95% CI)", "seeds' acc %"]
    for width, columns in ((80, narrow), (160, list(TASK_COLUMNS))):
        console = Console(width=width, record=True)
        monkeypatch.setattr(render, "out_console", console)
        (table,) = render.board_tables({"tasks": {"mqar": rows}})
        console.print(table)
        text = console.export_text()
        assert [c.header for c in table.columns] == columns
        assert "40.5 [1.1, 99.0]" in text and "1/3 [6, 79]" in text and "sla-gla" in text and "…" not in text
    assert len(table.columns) == 14


@pytest.mark.parametrize(
    "setting, message",
    [
        ("solve_at = 0", "train: solve_at=0.0 must be in (0, 1]"),
        ("solve_at = 1.5", "train: solve_at=1.5 must be in (0, 1]"),
        ("min_seeds = 0", "train: min_seeds=0 must be >= 2"),
        ("min_seeds = 1", "train: min_seeds=1 must be >= 2 (a rank needs a test, a test two seeds)"),
    ],
)
def test_bad_leaderboard_settings_are_one_line_errors(tmp_path, setting, message):
    grid = tmp_path / "g.toml"
    grid.write_text(
        f'name = "g"\n[train]\nsteps = 1\n{setting}\n[[tasks]]\nname = "mqar"\n[[models]]\nname = "attention"\n'
    )
    result = CliRunner().invoke(main, ["run", str(grid), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    bad = CliRunner().invoke(
        main,
        [
            "leaderboard",
            str(ROOT / "leaderboards" / "records" / "smoke"),
            "--out-dir",
            str(tmp_path),
            "--min-seeds",
            "1",
        ],
    )
    assert bad.exit_code == 2 and "min_seeds=1 must be >= 2" in bad.output


def test_device_time_merges_packed_runs_into_sittings_by_hand():
    """A run holds the device from its record's timestamp less its training time (evaluations
    included) to its record; overlapping runs share it, gaps under a minute stay in the sitting."""

    def rec(end: str, train_s: float) -> dict:
        return {
            "timestamp": f"2026-12-03T{end}+00:00",
            "timings": {"train_seconds": train_s, "eval_seconds": 1.0},
            "environment": {"device": "NVIDIA H200"},
        }

    first = [rec("10:00:10", 10.0), rec("10:00:15", 10.0), rec("10:01:30", 30.0)]  # 10:00:00 .. 10:01:30, a 45 s gap
    second = [rec("10:03:30", 30.0)]  # starts 90 s after: another sitting (another call), 30 s
    assert device_time(first + second) == (90.0 + 30.0, 2)
    assert device_time([{"timestamp": None, "status": "failed"}]) == (0.0, 0)
    line = device_time_line(first + second)
    assert line.startswith("Device time: 120 s (2 min) of NVIDIA H200 in 2 sittings")
    assert device_time_line([]) == ""
    # The second sitting on another machine: the total stays the union, and each machine's share
    # is its own runs' device time.
    moved = [{**second[0], "environment": {"device": "NVIDIA H100"}}]
    assert device_time_line(first + moved).startswith(
        "Device time: 120 s (2 min) in 2 sittings (30 s of NVIDIA H100 in 1; 90 s of NVIDIA H200 in 1), from"
    )


def test_points_of_more_mixers_than_colours_still_differ(tmp_path, monkeypatch):
    """The accuracy-vs-state plot of 13 mixers repeated three colours (attention and sla-linear
    both blue circles); past ten series the marker changes, so no two share colour and marker."""
    import matplotlib.pyplot as plt

    from slabench.runners import plots

    styles = []

    def capture(fig, path, crop=False):
        if path.name.endswith("acc-vs-state.png"):
            points = [line for line in fig.axes[0].lines if line.get_marker() not in (None, "None", "", "_")]
            styles.extend((line.get_color(), line.get_marker()) for line in points)
        plt.close(fig)
        return path

    monkeypatch.setattr(plots, "save_figure", capture)
    row = {"acc": 0.5, "acc_lo": 0.4, "acc_hi": 0.6}
    rows = [{**row, "mixer": f"m{i:02d}", "state_size": 100 + i} for i in range(13)]
    assert plots.state_plot(rows, tmp_path, "t") == [tmp_path / "t-acc-vs-state.png"]
    assert len(styles) == 13 and len(set(styles)) == 13, styles

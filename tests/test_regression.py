"""The accuracy-regression check: `slabench ci` on the ci preset against leaderboards/ci/baseline.json.

Runs the preset once per session (15 runs, about 2-4 minutes on 2 cores); the other tests reuse its
records (`--out`), so checking against a raised baseline retrains nothing.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec
from slabench.runners import regression
from slabench.runners.records import load_records

pytestmark = pytest.mark.regression
ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "leaderboards" / "ci" / "baseline.json"


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ci-records")
    result = CliRunner().invoke(main, ["ci", "--out", str(out), "--baseline", str(BASELINE), "--workers", "2"])
    return out, result


def test_ci_matches_the_baseline(ci_run):
    out, result = ci_run
    assert result.exit_code == 0, result.output
    records = list(load_records(out).records.values())
    assert len(records) == 15 and all(r["status"] == "ok" for r in records)
    rows = regression.check(records, regression.load_baseline(BASELINE))
    assert {r["verdict"] for r in rows} == {"ok"}, rows


def test_baseline_separates_mechanisms():
    cells = {c["mixer"]: c for c in json.loads(BASELINE.read_text())["cells"]}
    assert all(a >= cells["attention"]["solve_at"] for a in cells["attention"]["accs"])  # 5 of 5 solved
    assert all(a < cells["linear"]["solve_at"] for a in cells["linear"]["accs"])  # 0 of 5
    assert len(cells["linear"]["accs"]) == 5 and "sla-linear" in cells  # the SLA twin is checked beside its base


def test_ci_fails_when_the_baseline_is_raised(ci_run, tmp_path):
    out, _ = ci_run
    raised = json.loads(BASELINE.read_text())
    for cell in raised["cells"]:
        if cell["mixer"] == "attention":
            cell["accs"] = [a + 0.05 for a in cell["accs"]]  # every seed out of reach by more than the floor
    path = tmp_path / "raised.json"
    path.write_text(json.dumps(raised))
    result = CliRunner().invoke(main, ["ci", "--out", str(out), "--baseline", str(path)])
    assert result.exit_code == 1, result.output
    assert "0 to run" in result.output  # reused the session's records
    assert "accuracy regression" in result.output and "attention" in result.output


def _record(acc: float, seed: int, status: str = "ok") -> dict:
    spec = RunSpec("g", TaskSpec("mqar", (("num_kv_pairs", 4),)), ModelSpec("attention"), TrainSpec(), seed)
    return {"spec": spec.to_dict(), "status": status, "seed": seed, "metrics": {"test_acc": acc}}


def test_cells_keep_every_seed_and_leave_failed_runs_out():
    records = [_record(0.70, 0), _record(0.72, 1), _record(0.0, 2, "failed"), _record(0.0, 3, "diverged")]
    ((_key, c),) = regression.cells(records).items()
    assert c["n"] == 3 and c["failed"] == 1 and c["seeds"] == [0, 1, 3] and c["accs"] == [0.70, 0.72, 0.0]
    assert c["mean"] == pytest.approx(1.42 / 3) and c["solve_at"] == 0.9


def test_update_writes_a_baseline_that_checks_its_own_runs_ok(tmp_path):
    """`ci --update` (make_baseline, write_baseline) had no test: its file must pass the baseline
    check, hold each cell's seeds and accuracies as run (failed runs left out), and judge the
    same records ok."""
    records = [_record(0.70, 0), _record(0.95, 1), _record(0.0, 2, "failed"), _record(0.91, 3)]
    for r in records:
        r["environment"] = {"torch": "2.13.0", "device": "AMD EPYC (1 threads)"}
    path = tmp_path / "ci" / "baseline.json"
    regression.write_baseline(path, regression.make_baseline(records, "ci"))
    baseline = regression.load_baseline(path)
    (cell,) = baseline["cells"]
    assert (cell["seeds"], cell["accs"], cell["n"], cell["mixer"]) == ([0, 1, 3], [0.70, 0.95, 0.91], 3, "attention")
    assert cell["mean"] == pytest.approx((0.70 + 0.95 + 0.91) / 3) and baseline["versions"] == ["torch 2.13.0"]
    assert [r["verdict"] for r in regression.check(records, baseline)] == ["ok"]


BASE = {0: 0.60, 1: 0.45, 2: 0.70, 3: 0.55, 4: 0.95}


def verdict(now: dict[int, float], base: dict[int, float] = BASE) -> str:
    return regression.judge(now, base, solve_at=0.9)["verdict"]


def test_regression_rule_on_hand_built_cells():
    assert verdict(BASE) == "ok"
    assert verdict({s: a - 0.03 for s, a in BASE.items() if s != 4} | {4: 0.93}) == "regressed"  # all 5 lower: p = 1/32
    assert verdict({s: a - 0.01 for s, a in BASE.items()} | {4: 0.94}) == "ok"  # all lower, by less than the floor
    # four seeds 0.1 lower, one a hair higher: p = 2/32 (the hair is the smallest difference) -> not a drop
    assert verdict({0: 0.50, 1: 0.35, 2: 0.60, 3: 0.45, 4: 0.951}) == "ok"
    assert verdict(BASE | {4: 0.85}) == "regressed"  # one solved seed no longer solves: the solve rate fell
    assert verdict(BASE | {0: 0.91}) == "improved"  # one more seed solves
    assert verdict({s: a + 0.05 for s, a in BASE.items() if s != 4} | {4: 0.99}) == "improved"
    # seeds that differ from the baseline's: the unpaired permutation test (1 of 252 splits as low)
    moved = {s + 10: a - 0.3 for s, a in BASE.items() if s != 4} | {14: 0.40}
    out = regression.judge(moved, BASE, 0.9)
    assert out["test"] == "unpaired" and out["p_below"] == pytest.approx(1 / 252) and out["verdict"] == "regressed"


def test_check_rows_missing_and_new():
    records = [_record(0.70, s) for s in range(5)]
    ((key, _),) = regression.cells(records).items()
    base = {
        "cells": [
            {
                "task": key[0],
                "model": key[1],
                "mixer": "attention",
                "solve_at": 0.9,
                "seeds": list(range(5)),
                "accs": [0.75] * 5,
            }
        ]
    }
    (row,) = regression.check(records, base)
    assert row["verdict"] == "regressed" and row["p_below"] == 1 / 32 and row["delta"] == pytest.approx(-0.05)
    assert regression.failed([row])
    missing = {"cells": [{"task": "t", "model": "m", "seeds": [0], "accs": [0.5]}]}
    rows = regression.check(records, missing)
    assert sorted(r["verdict"] for r in rows) == ["missing", "new"] and regression.failed(rows)
    # Seeds that crashed now: the one that survives solves, but a rate over survivors would hide
    # the crashes, so the cell is missing (and fails), not ok at 1 of 1.
    solved = {**base["cells"][0], "accs": [0.95] * 5}
    crashed = [_record(0.95, 0)] + [_record(0.0, s, "failed") for s in range(1, 5)]
    (row,) = regression.check(crashed, {"cells": [solved]})
    assert row["verdict"] == "missing" and row["failed"] == 4 and row["now"] == 0.95 and regression.failed([row])


# ---- a bad baseline fails before the preset trains ----------------------------------------------

GOOD_CELL = {"task": "t", "model": "m", "mixer": "attention", "solve_at": 0.9, "seeds": [0, 1], "accs": [0.5, 0.6]}


def _ci_error(tmp_path, monkeypatch, baseline: str | None) -> str:
    """`slabench ci` against `baseline` (text; None: no file), training forbidden: its one-line error."""

    def no_training(*args, **kwargs):
        raise AssertionError("ci trained before checking its baseline")

    monkeypatch.setattr("slabench.cli.grid.run_pending", no_training)
    path, out = tmp_path / "baseline.json", tmp_path / "out"
    if baseline is not None:
        path.write_text(baseline)
    result = CliRunner().invoke(main, ["ci", "--baseline", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --baseline: '{path}'") and not out.exists()
    return line


def test_ci_checks_a_missing_baseline_before_training(tmp_path, monkeypatch):
    assert "does not exist; create it with `slabench ci --update`" in _ci_error(tmp_path, monkeypatch, None)


def _cell(**changes) -> str:
    """A baseline of one cell, GOOD_CELL with `changes` (None: the key left out)."""
    cell = {k: v for k, v in (GOOD_CELL | changes).items() if v is not None}
    return json.dumps({"cells": [cell]})


@pytest.mark.parametrize(
    "baseline, words",
    [
        ("{not json", ["is not JSON"]),
        ('["cells"]', ["is not a baseline file (no 'cells')"]),
        ('{"cells": "x"}', ["'cells' must be a list"]),
        ('{"cells": []}', ["'cells' is empty", "check nothing"]),
        ('{"cells": [5]}', ["cells[0] must be an object"]),
        (_cell(task=5), ["cells[0]: 'task' must be a non-empty string", "got 5"]),
        (_cell(model=None), ["cells[0]: 'model' must be a non-empty string"]),
        (_cell(mixer=3), ["'mixer' must be a string"]),
        (_cell(solve_at="high"), ["'solve_at' must be a number in [0, 1]"]),
        (_cell(accs="x"), ["'accs' must be a list of finite numbers", "got 'x'"]),
        (_cell(accs=[None, 0.5]), ["'accs' must be a list of finite numbers", "got [None, 0.5]"]),
        (_cell(accs=[0.5, True]), ["'accs' must be a list of finite numbers"]),
        (_cell(accs=[0.5, float("nan")]), ["'accs' must be a list of finite numbers"]),
        (_cell(accs=[0.5]), ["'accs' must hold one accuracy per seed (2); got 1"]),
        (_cell(seeds=[]), ["'seeds' must be a non-empty list of ints"]),
        (_cell(seeds=[0, "1"]), ["'seeds' must be a non-empty list of ints"]),
        (_cell(seeds=[0, -1]), ["'seeds' must be a non-empty list of ints in [0, 2**31)", "got [0, -1]"]),
        (_cell(seeds=[0, 2**31]), ["'seeds' must be a non-empty list of ints in [0, 2**31)"]),
        (_cell(seeds=[1, 1]), ["'seeds' must not repeat a seed"]),
        (json.dumps({"cells": [GOOD_CELL, GOOD_CELL]}), ["cells[1]: task and model repeat an earlier cell"]),
    ],
)
def test_ci_rejects_a_malformed_baseline_in_one_line(tmp_path, monkeypatch, baseline, words):
    """Each would crash `check` with a TypeError after training, or pass checking nothing."""
    line = _ci_error(tmp_path, monkeypatch, baseline)
    for w in words:
        assert w in line, line


def test_committed_baseline_passes_its_own_check():
    assert regression.load_baseline(BASELINE)["cells"]

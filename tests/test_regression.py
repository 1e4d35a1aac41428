"""The accuracy-regression check: `slabench ci` on the ci preset against leaderboards/ci/baseline.json.

Runs the preset once per session (about 1.5-3 minutes on 2 cores); the other tests reuse its
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
    assert len(records) == 9 and all(r["status"] == "ok" for r in records)
    rows = regression.check(records, regression.load_baseline(BASELINE))
    assert {r["verdict"] for r in rows} == {"ok"}, rows


def test_baseline_separates_mechanisms():
    cells = {c["mixer"]: c for c in json.loads(BASELINE.read_text())["cells"]}
    assert cells["attention"]["mean"] >= 0.95
    assert cells["linear"]["mean"] + regression.tolerance(cells["linear"]["std"], cells["linear"]["n"]) < 0.95
    assert "sla-linear" in cells  # the SLA twin is checked beside its base


def test_ci_fails_when_the_baseline_is_raised(ci_run, tmp_path):
    out, _ = ci_run
    raised = json.loads(BASELINE.read_text())
    for cell in raised["cells"]:
        if cell["mixer"] == "attention":
            cell["mean"] = 1.05  # beyond any accuracy by more than the 0.02 floor
    path = tmp_path / "raised.json"
    path.write_text(json.dumps(raised))
    result = CliRunner().invoke(main, ["ci", "--out", str(out), "--baseline", str(path)])
    assert result.exit_code == 1, result.output
    assert "0 to run" in result.output  # reused the session's records
    assert "accuracy regression" in result.output and "attention" in result.output


def _record(acc: float, seed: int, status: str = "ok") -> dict:
    spec = RunSpec("g", TaskSpec("mqar", (("num_kv_pairs", 4),)), ModelSpec("attention"), TrainSpec(), seed)
    return {"spec": spec.to_dict(), "status": status, "seed": seed, "metrics": {"test_acc": acc}}


def test_tolerance_rule_and_verdicts():
    assert regression.tolerance(0.0, 3) == regression.FLOOR
    assert regression.tolerance(0.1, 9) == pytest.approx(0.1)  # 3 * 0.1 / sqrt(9)
    records = [_record(0.70, 0), _record(0.72, 1), _record(0.0, 2, "failed")]
    cell = regression.cells(records)
    (key, c), = cell.items()
    assert c["n"] == 2 and c["failed"] == 1 and c["mean"] == pytest.approx(0.71)

    def verdict(mean: float, std: float = 0.0) -> str:
        base = {"cells": [{"task": key[0], "model": key[1], "mixer": "attention", "mean": mean, "std": std, "n": 3}]}
        rows = regression.check(records, base)
        return rows[0]["verdict"]

    assert verdict(0.72) == "ok"  # within the 0.02 floor
    assert verdict(0.74) == "regressed"
    assert verdict(0.74, std=0.05) == "ok"  # 3 * 0.05 / sqrt(3) = 0.087
    assert verdict(0.60) == "improved"
    assert regression.check([], {"cells": [{"task": "t", "model": "m", "mean": 0.5, "std": 0, "n": 3}]})[0]["verdict"] == "missing"

"""The Ray backend on a local CPU Ray instance (runs when the `ray` extra is installed)."""

import json

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.runners.records import load_records

ray = pytest.importorskip("ray")


def test_ray_backend_runs_the_grid_and_the_driver_writes_records(tmp_path, monkeypatch, tiny_grid):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    grid, out = tiny_grid(name="tiny-ray", steps=5, seeds=(0, 1), models=("attention", "sla-gla")), tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        args = ["run", str(grid), "--out", str(out), "--device", "cpu", "--backend", "ray", "--json"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["ran"] == 4
        records = load_records(out).records
        assert len(records) == 4 and {r["status"] for r in records.values()} == {"ok"}
        assert json.loads(CliRunner().invoke(main, args).stdout)["skipped"] == 4  # resumes like local
    finally:
        ray.shutdown()

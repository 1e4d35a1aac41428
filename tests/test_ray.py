"""The Ray backend on a local CPU Ray instance (runs when the `ray` extra is installed)."""

import json

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.runners.records import load_records

ray = pytest.importorskip("ray")

GRID = """
name = "tiny-ray"
[train]
steps = 5
batch_size = 8
eval_every = 5
val_size = 16
test_size = 16
seeds = [0, 1]
[[tasks]]
name = "mqar"
vocab_size = 32
seq_len = 16
num_kv_pairs = 2
[[models]]
name = ["attention", "sla-gla"]
d_model = 16
n_layers = 1
n_heads = 2
"""


def test_ray_backend_runs_the_grid_and_the_driver_writes_records(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    grid, out = tmp_path / "g.toml", tmp_path / "out"
    grid.write_text(GRID)
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

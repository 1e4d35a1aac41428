"""The Ray backend on a local CPU Ray instance (runs when the `ray` extra is installed)."""

import json

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.runners.records import load_records

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """One local CPU Ray instance for the module: its workers, once started, serve every test."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RAY_ADDRESS", raising=False)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield
        ray.shutdown()


def test_ray_backend_runs_the_grid_and_the_driver_writes_records(tmp_path, local_ray, tiny_grid):
    grid, out = tiny_grid(name="tiny-ray", steps=5, seeds=(0, 1), models=("attention", "sla-gla")), tmp_path / "out"
    args = ["run", str(grid), "--out", str(out), "--device", "cpu", "--backend", "ray", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ran"] == 4
    records = load_records(out).records
    assert len(records) == 4 and {r["status"] for r in records.values()} == {"ok"}
    assert json.loads(CliRunner().invoke(main, args).stdout)["skipped"] == 4  # resumes like local


KILLER = '''
import os, signal
from pathlib import Path
from slabench.models.attention import Attention


class {name}(Attention):
    """Attention whose worker process is killed in its first forward, {times} time(s) in all."""

    def forward(self, x):
        if x.shape[-1] != 16:  # the plugin check's probe (d_model 32) in the driver: not a run
            return super().forward(x)
        deaths = Path({marker!r})
        with deaths.open("a") as f:
            f.write("x")
        if len(deaths.read_text()) <= {times}:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)
'''


def test_a_killed_ray_worker_requeues_its_run(tmp_path, local_ray, tiny_grid):
    """A run's worker is SIGKILLed mid-run (its first forward): the run is queued again and
    trains; the grid ends with exactly one ok record per run."""
    plugin = tmp_path / "killer.py"
    plugin.write_text(KILLER.format(name="DiesOnce", times=1, marker=str(tmp_path / "deaths")))
    grid = tiny_grid("kill", steps=2, seeds=(0,), models=("attention", f"{plugin}:DiesOnce"))
    out = tmp_path / "out"
    args = ["run", str(grid), "--out", str(out), "--device", "cpu", "--backend", "ray", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "deaths").read_text().startswith("xx")  # killed once, then its retry trained
    records = load_records(out).records
    assert len(list((out / "records").glob("*.json"))) == 2 and len(records) == 2
    assert sorted(r["spec"]["model"]["name"].rsplit(":", 1)[-1] for r in records.values()) == ["DiesOnce", "attention"]
    assert {r["status"] for r in records.values()} == {"ok"}
    assert {r["environment"]["device_index"] for r in records.values()} == {None}  # CPU

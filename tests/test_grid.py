"""Grid execution: resume after SIGKILL, corrupt records, divergence and failure isolation."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.errors import SlabenchError
from slabench.runners.records import load_records


def test_run_then_rerun_skips_everything(tmp_path, tiny_grid):
    grid, out = tiny_grid(), tmp_path / "out"
    args = ["run", str(grid), "--out", str(out), "--device", "cpu", "--workers", "1", "--json"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["ran"] == 3 and summary["skipped"] == 0
    assert len(load_records(out).records) == 3
    second = json.loads(CliRunner().invoke(main, args).stdout)
    assert second["ran"] == 0 and second["skipped"] == 3
    assert (out / "tiny.md").is_file()  # the leaderboard, named after the grid


def test_corrupt_record_is_reported_and_rerun(tmp_path, tiny_grid):
    grid, out = tiny_grid(), tmp_path / "out"
    args = ["run", str(grid), "--out", str(out), "--device", "cpu", "--workers", "1", "--json"]
    CliRunner().invoke(main, args)
    victim = sorted((out / "records").glob("*.json"))[0]
    victim.write_text(victim.read_text()[:100])
    result = CliRunner().invoke(main, args)
    assert "corrupt record" in result.stderr
    assert json.loads(result.stdout)["ran"] == 1
    assert len(load_records(out).records) == 3 and not load_records(out).corrupt


def test_diverging_run_is_recorded_and_grid_completes(tmp_path, tiny_grid):
    grid, out = tiny_grid(steps=10, lr=1e30), tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(grid), "--out", str(out), "--device", "cpu", "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output  # diverged is a result, not a failure
    records = load_records(out).records.values()
    assert len(records) == 3 and {r["status"] for r in records} == {"diverged"}
    assert all("non-finite" in r["error"] for r in records)


def test_bad_input_is_one_line_without_traceback(tmp_path):
    for args, words in [
        (["run", "--preset", "nope"], ["unknown preset 'nope'", "smoke"]),
        (["run", str(tmp_path / "missing.toml")], ["does not exist"]),
        (["run", "--preset", "smoke", "--device", "tpu"], ["--device", "cpu"]),
    ]:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output
        for w in words:
            assert w in lines[0]


def test_sigkill_mid_grid_then_resume(tmp_path, tiny_grid):
    """A real SIGKILL of a running grid, then a rerun: exactly the expected records, no duplicates."""
    grid, out = tiny_grid(steps=150), tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "slabench",
        "run",
        str(grid),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--workers",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("records/*.json"))) < 1:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = load_records(out)
    assert 1 <= len(before.records) < 3 and not before.corrupt  # killed mid-grid, nothing half-written
    rerun = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == len(before.records) and summary["ran"] == 3 - len(before.records)
    after = load_records(out)
    assert len(after.records) == 3 and not after.corrupt
    assert len(list((out / "records").glob("*.json"))) == 3  # no duplicates, no temporaries left
    for key, record in before.records.items():  # finished records were not redone
        assert after.records[key]["timestamp"] == record["timestamp"]


def test_mps_detection_follows_the_control_pipe(tmp_path, monkeypatch):
    """Records say whether a GPU run could use NVIDIA MPS (packing speed depends on it): MPS
    clients find the daemon through `control` in CUDA_MPS_PIPE_DIRECTORY."""
    from slabench.runners.environment import environment, mps_active

    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path))
    assert not mps_active()
    (tmp_path / "control").touch()
    assert mps_active()
    assert environment("cpu")["mps"] is None  # a CPU run has no MPS to speak of


def test_device_names_a_gpu_this_machine_has(monkeypatch):
    """`--device cuda:N` must name a GPU that exists (checked with two pretend GPUs, so on any machine)."""
    import torch

    from slabench.runners.grid import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cuda") == "cuda"
    for bad, says in (("cuda:2", "has 2 GPU(s)"), ("cuda:abc", "not allowed"), ("cuda:", "not allowed")):
        with pytest.raises(SlabenchError, match=re.escape(says)):
            resolve_device(bad)

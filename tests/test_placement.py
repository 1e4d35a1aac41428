"""Placement of groups of runs over devices (runners/placement.py), and the local runner on
simulated GPUs: a monkeypatched device count and free memory, CPU training underneath."""

from collections import Counter

import pytest
import torch

from slabench.config import expand_grid, load_grid_file
from slabench.errors import SlabenchError
from slabench.runners import grid as grid_mod
from slabench.runners.placement import Placement, spread_first_uses

GB = 2**30


def place_all(placement: Placement, free: dict[int, int]) -> dict[int, list[list[str]]]:
    """Place every waiting group at once (free memory as given): device -> its groups."""
    where: dict[int, list[list[str]]] = {d: [] for d in placement.devices}
    while (item := placement.next(free)) is not None:
        where[item[1]].append(item[0].runs)
    return where


def test_runs_go_where_memory_is_and_every_device_is_used():
    free = {0: 80 * GB, 1: 40 * GB, 2: 20 * GB, 3: 10 * GB}
    folds = [[f"f{i}-{j}" for j in range(n)] for i, n in enumerate([6, 6, 6, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1])]
    where = place_all(Placement(folds, list(free), workers_per_device=100), free)
    runs = {d: sum(len(g) for g in groups) for d, groups in where.items()}
    assert sum(runs.values()) == 35 and all(runs[d] > 0 for d in free)  # every run placed, every device used
    assert runs[0] > runs[1] > runs[2] >= runs[3]  # more memory, more runs
    assert where[0][0] == folds[0]  # the first fold goes to the freest device
    # Balanced by memory per run: no device ends with more than twice another's share.
    per_run = [free[d] / runs[d] for d in free]
    assert max(per_run) / min(per_run) < 2


def test_a_fold_weighs_its_size():
    free = {0: 30 * GB, 1: 20 * GB}
    where = place_all(Placement([list("abcdef"), ["x"], ["y"]], [0, 1], workers_per_device=10), free)
    assert where[0] == [list("abcdef")] and where[1] == [["x"], ["y"]]  # 30/6 = 5 GB a run < 20/2


def test_worker_limit_and_memory_reserve_hold_groups_back():
    placement = Placement([["a"], ["b"], ["c"], ["d"]], [0, 1, 2], workers_per_device=1)
    free = {0: 50 * GB, 1: 40 * GB, 2: 1 * GB}  # device 2 is below the 2 GB reserve
    first = [placement.next(free) for _ in range(3)]
    assert [d for _, d in first[:2]] == [0, 1] and first[2] is None  # one group per device, none on 2
    placement.done(first[0][0], 0)
    assert placement.next(free)[1] == 0 and placement.in_flight == 2


def test_out_of_memory_on_one_device_retries_on_another_then_gives_up():
    free = {0: 10 * GB, 1: 40 * GB, 2: 20 * GB, 3: 30 * GB}
    placement = Placement([["a", "b"]], list(free), workers_per_device=4, attempts=3)
    tried = []
    while (item := placement.next(free)) is not None:
        group, device = item
        tried.append(device)
        # the fold recorded "a" before the fault: only "b" waits for a retry
        again = placement.fault(group, device, f"OutOfMemoryError on cuda:{device}", ["b"])
    assert tried == [1, 3, 2]  # never twice on one device, freest untried first
    assert again is False and group.runs == ["b"] and len(group.reasons) == 3
    assert placement.in_flight == 0 and placement.load == {d: 0 for d in free}


def test_a_single_device_retries_on_itself():
    placement = Placement([["a"]], [0], workers_per_device=1, attempts=2)
    group, device = placement.next({0: 8 * GB})
    assert placement.fault(group, device, "worker process died on cpu", ["a"]) is True
    assert placement.next({0: 8 * GB})[1] == 0


def test_local_runner_spreads_over_simulated_gpus_and_retries_out_of_memory(tmp_path, tiny_grid, monkeypatch):
    """Four fake GPUs, cuda:2 the freest and out of memory on every run: a run placed there
    trains on another device; the grid ends with one ok record per run."""
    free = {0: 30 * GB, 1: 20 * GB, 2: 60 * GB, 3: 10 * GB}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (free[i], 80 * GB))
    from slabench.runners import train as train_mod

    calls, real_train = [], train_mod.train

    def fake_train(spec, device, on_step=None, outputs=None):
        calls.append((spec.seed, device))
        if device == "cuda:2":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        record = real_train(spec, "cpu", on_step, outputs=outputs)
        record["environment"]["device_index"] = int(device.removeprefix("cuda:"))
        return record

    monkeypatch.setattr(train_mod, "train", fake_train)
    _, specs = expand_grid(load_grid_file(tiny_grid(steps=2, seeds=(0, 1))))
    ends = []
    grid_mod.run_grid(specs, tmp_path, device="cuda", workers=1, on_event=lambda k, s, r: k == "end" and ends.append(r))
    # seed 0 goes to cuda:2 (60 GB); seed 1, placed while seed 0 still counts there, to cuda:0
    # (30 GB a run either way, the lower index); seed 0 retries on cuda:0, the freest untried.
    assert calls == [(0, "cuda:2"), (1, "cuda:0"), (0, "cuda:0")]
    ended = sorted((r["seed"], r["status"], r["environment"]["device_index"]) for r in ends)
    assert ended == [(0, "ok", 0), (1, "ok", 0)]
    assert len(list((tmp_path / "records").glob("*.json"))) == 2


@pytest.mark.parametrize("address", ["auto", "10.0.0.5:6379", "head-node.cluster:6379", None])
def test_ray_address_accepts_auto_and_host_port(address):
    assert grid_mod.check_address(address) == address


@pytest.mark.parametrize("address", ["head:99999", "head:0", "head:", ":6379", "http://head"])
def test_ray_address_refuses_a_port_out_of_range_or_missing(address):
    with pytest.raises(SlabenchError, match=r"give auto or HOST:PORT, the port in \[1, 65535\]"):
        grid_mod.check_address(address)


def test_a_malformed_ray_address_is_one_line(tmp_path, tiny_grid):
    from click.testing import CliRunner

    from slabench.cli import main

    args = ["run", str(tiny_grid()), "--out", str(tmp_path / "o"), "--device", "cpu", "--backend", "ray"]
    result = CliRunner().invoke(main, [*args, "--address", "http://head"])
    assert result.exit_code == 2 and "--address 'http://head'" in result.output and "HOST:PORT" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()
    local = CliRunner().invoke(main, [*args[:-2], "--address", "auto"])
    assert local.exit_code == 2 and "needs --backend ray" in local.output
    assert Counter(line for line in local.output.splitlines() if line.strip()).total() == 1


def test_first_uses_spread_over_the_first_wave_and_the_rest_keep_their_order():
    # grid order: mixer a's three seeds, then b's two, then c's one (key = the mixer)
    groups = [["a0"], ["a1"], ["a2"], ["b0"], ["b1"], ["c0"]]
    spread = spread_first_uses(groups, key=lambda run: run[0])
    assert spread == [["a0"], ["b0"], ["c0"], ["a1"], ["a2"], ["b1"]]
    assert spread_first_uses([], key=len) == []

"""Packing measurement: do N training processes on one GPU overlap?

N worker processes each train the same quick-preset run (model and task chosen below) exactly as
`runners.train.train` steps it (fresh batches from the task's stream, lr set, CUDA-graph step),
start together after warm-up and capture, and time STEPS steps. Printed per N: ms per step of
each process, and aggregate steps per second relative to one process. Then, for one process
alone, torch.profiler splits a step's device time into the graph replay and the data draws.

    python scripts/packing-probe.py --model gla --task mqar --procs 1,2,4,8
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

import torch

WARM = 20  # eager steps, capture and first replays before timing


def warmed_up(model_name: str, task_name: str, device: torch.device):
    """(step, batches) of the quick preset's run, past its eager steps, capture and first replays."""
    from slabench.config import expand_grid, load_preset
    from slabench.runners.train import TrainStep, make_optimizer

    _, specs = expand_grid(load_preset("quick"))
    spec = next(s for s in specs if s.model.name == model_name and s.task.name == task_name)
    task = spec.task.build()
    torch.manual_seed(0)
    model = spec.model.build(task.vocab_size, task.seq_len).to(device)
    opt = make_optimizer(model, spec.train, device, capturable=True)
    step = TrainStep(model, opt, spec.train, device, torch.bfloat16, "cuda-graph")
    gen = torch.Generator(device=device).manual_seed(0)
    batches = task.stream(spec.train.batch_size, gen, device)
    train_steps(step, batches, WARM)
    torch.cuda.synchronize()
    return step, batches


def train_steps(step, batches, n: int) -> torch.Tensor:
    """n steps as `runners.train.train` takes them: lr set, fresh batch, CUDA-graph step."""
    for _ in range(n):
        step.set_lr(1e-3)
        b = next(batches)
        loss = step(b.inputs, b.labels)
    return loss


def worker(model_name, task_name, steps, barrier, queue):
    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    torch.set_num_threads(1)
    step, batches = warmed_up(model_name, task_name, device)
    barrier.wait()
    t0 = time.perf_counter()
    train_steps(step, batches, steps).item()
    queue.put(1e3 * (time.perf_counter() - t0) / steps)


def profile_alone(model_name, task_name):
    from torch.profiler import DeviceType, ProfilerActivity, profile

    device = torch.device("cuda", 0)
    step, batches = warmed_up(model_name, task_name, device)
    n = 64  # a multiple of the stream's block, so data draws are counted in proportion
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        train_steps(step, batches, n)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
    total = sum(e.self_device_time_total for e in kernels)
    top = sorted(kernels, key=lambda e: -e.self_device_time_total)[:12]
    return {
        "wall_ms_per_step": 1e3 * wall / n,
        "device_ms_per_step": total / 1e3 / n,
        "kernels_per_step": sum(e.count for e in kernels) / n,
        "top": [(e.key[:80], e.count / n, round(e.self_device_time_total / n, 1)) for e in top],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gla")
    ap.add_argument("--task", default="mqar")
    ap.add_argument("--procs", default="1,2,4,8")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    base = None
    for n in (int(p) for p in args.procs.split(",")):
        barrier, queue = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=worker, args=(args.model, args.task, args.steps, barrier, queue)) for _ in range(n)]
        for p in procs:
            p.start()
        ms = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        rate = sum(1e3 / m for m in ms)
        base = base or rate
        print(
            json.dumps(
                {
                    "model": args.model,
                    "task": args.task,
                    "procs": n,
                    "ms_per_step": [round(m, 2) for m in ms],
                    "steps_per_s": round(rate, 1),
                    "vs_one": round(rate / base, 2),
                }
            ),
            flush=True,
        )
    print(json.dumps({"profile_alone": profile_alone(args.model, args.task)}), flush=True)


if __name__ == "__main__":
    main()

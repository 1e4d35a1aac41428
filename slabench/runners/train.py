"""Train one model on one task and return its run record.

Fresh training batches every step from a generator seeded with the run's seed, or a finite
set drawn once from it and cycled for epochs (`runners/data.py`); a fixed
validation set (early stopping / best checkpoint / lr choice) and a fixed test set (reported),
both drawn from seeds above any training seed, so the three streams never share a seed. The
fraction of test examples that also occurred in training is measured, not assumed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from slabench import kernels
from slabench.config import SEED_LIMIT, RunSpec
from slabench.errors import SlabenchError
from slabench.models.sla import recall_diagnostics, recall_positions
from slabench.plugins import source_digest
from slabench.record import SCHEMA_VERSION, CurvePoint, Metrics, RunRecord
from slabench.runners.data import hash_multipliers, row_hashes, seeded_generator, total_steps, training_batches
from slabench.runners.environment import environment, peak_memory_bytes
from slabench.runners.step import TrainStep, lr_at, make_optimizer, scored_positions
from slabench.tasks import IGNORE, Batch

VAL_SEED, TEST_SEED = SEED_LIMIT + 1, SEED_LIMIT + 2
EVAL_CHUNK = 256  # examples per evaluation forward pass (bounds memory)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Batch, autocast: torch.dtype | None) -> dict[str, Any]:
    """Micro accuracy over scored positions and per-example exact match, overall and per slice, and
    whether every logit was finite."""
    model.eval()
    # The head only at the scored positions: as many per row as the most any row has (one host
    # sync per evaluation; it is not captured).
    k = int((data.labels != IGNORE).sum(1).max())
    correct_rows, scored_rows = [], []
    finite = torch.ones((), dtype=torch.bool, device=data.inputs.device)
    for i in range(0, data.inputs.shape[0], EVAL_CHUNK):
        inputs, labels = data.inputs[i : i + EVAL_CHUNK], data.labels[i : i + EVAL_CHUNK]
        positions, labels = scored_positions(labels, k)  # [b, k] each, or None and [b, T]
        with torch.autocast(inputs.device.type, dtype=autocast, enabled=autocast is not None):
            logits = model(inputs, positions)  # [b, k or T, V]
        # argmax of NaN logits is class 0, a real label on some tasks: such a model scores, so say so.
        finite &= torch.isfinite(logits).all()
        pred = logits.argmax(-1)  # [b, k or T]
        mask = labels != IGNORE
        correct_rows.append(((pred == labels) & mask).sum(1))  # [b]
        scored_rows.append(mask.sum(1))  # [b]
    model.train()
    correct, scored = torch.cat(correct_rows).double(), torch.cat(scored_rows).double()  # [B]

    def summary(sel: torch.Tensor) -> dict[str, float]:
        return {
            "acc": float(correct[sel].sum() / scored[sel].sum().clamp(min=1)),
            "exact": float((correct[sel] == scored[sel]).double().mean()),
            "n": int(sel.sum()),
        }

    out: dict[str, Any] = summary(torch.ones_like(correct, dtype=torch.bool))
    out["finite"] = bool(finite)  # every logit finite; else the accuracies mean nothing
    out["slices"] = {
        f"{name}={v:g}": summary(values == v)
        for name, values in data.slices.items()
        for v in sorted(values.unique().tolist())
    }
    return out


def recall_focus(data: Batch) -> torch.Tensor:
    """[b, T] bool: the recall positions of the last chunk `evaluate(model, data)` runs, the
    rows whose gates the model's diagnostics then describe (fixed per run: computed once)."""
    start = (data.inputs.shape[0] - 1) // EVAL_CHUNK * EVAL_CHUNK
    return recall_positions(data.inputs[start:], data.labels[start:], IGNORE)


def diagnostics(model: torch.nn.Module, focus: torch.Tensor) -> dict[str, float]:
    """After `evaluate`: the model's diagnostics of its last forward pass, and the SLA gates'
    share peaked at the recall positions `focus` (`recall_focus` of the evaluated data)."""
    return {**model.diagnostics(), **recall_diagnostics(model.mixers, focus)}


@dataclass(frozen=True)
class RunOutputs:
    """What a run writes besides its record, on request (`slabench run --log-dir`, `--save-checkpoints`)."""

    log_dir: str | None = None  # TensorBoard event files of the run under <log_dir>/<key>/
    checkpoint_dir: str | None = None  # the best-validation weights at <checkpoint_dir>/<key>.pt


NO_OUTPUTS = RunOutputs()


def check_tensorboard() -> None:
    """TensorBoard logging needs the `tensorboard` package (the `tb` extra): say so in one line."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise SlabenchError("--log-dir needs the tensorboard package: pip install 'slabench[tb]'")


def tensorboard_writer(log_dir: str | Path):
    check_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(log_dir))


def train(
    spec: RunSpec,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, int], None] | None = None,
    train_path: str = "auto",
    outputs: RunOutputs = NO_OUTPUTS,
) -> RunRecord:
    """Train `spec` on `device`; return its run record (`slabench.record.RunRecord`).

    on_step(step, total) is called after every optimizer step (for progress bars).
    train_path: 'eager', 'cuda-graph' (see `TrainStep`) or 'auto' (CUDA graphs on CUDA, else
    eager); the path that actually ran is recorded as record['train_path'].
    outputs: TensorBoard scalars (training loss and lr every step; validation accuracy and the
    mixer's diagnostics at every evaluation; test accuracy at the end) and a checkpoint.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    cfg = spec.train
    task, test_task = spec.task.build(), spec.task.build_test()
    autocast = torch.bfloat16 if (cfg.dtype == "bfloat16" and device.type == "cuda") else None
    if device.type == "cuda":
        # Select the device first: resetting the stats of a device that has no context yet
        # raises "Invalid device argument" (seen on the first run of a fresh process).
        torch.cuda.set_device(device)
        torch.cuda.reset_peak_memory_stats(device)
    kernels.reset_paths_used()  # the record names the paths of this run only

    torch.manual_seed(spec.seed)
    model = spec.model.build(max(task.vocab_size, test_task.vocab_size), max(task.seq_len, test_task.seq_len))
    model = model.to(device)
    val = task.sample(cfg.val_size, seeded_generator(VAL_SEED, device), device)
    test = test_task.sample(cfg.test_size, seeded_generator(TEST_SEED, device), device)
    focus = recall_focus(val)
    mult = hash_multipliers(task.seq_len, device)
    test_hashes = row_hashes(test.inputs, mult) if test_task.seq_len == task.seq_len else None
    held_out = torch.cat([row_hashes(val.inputs, mult), *([test_hashes] if test_hashes is not None else [])])
    batches, train_rows = training_batches(task, cfg, spec.seed, device, held_out, mult)
    seen_test = torch.zeros(cfg.test_size, dtype=torch.bool, device=device)
    train_hashes: list[torch.Tensor] = []  # [B] per step since the last fold_overlap()

    def fold_overlap() -> None:
        """Mark the test rows drawn in training since the last call: one isin per evaluation,
        not per step (each is a sort on the device)."""
        if train_hashes:
            seen_test.logical_or_(torch.isin(test_hashes, torch.cat(train_hashes)))
            train_hashes.clear()

    if train_path == "auto":
        train_path = "cuda-graph" if device.type == "cuda" else "eager"
    opt = make_optimizer(model, cfg, device, capturable=train_path == "cuda-graph")
    train_step = TrainStep(model, opt, cfg, device, autocast, train_path, task.scored_per_row())
    total = total_steps(cfg, task.seq_len, train_rows) if not cfg.seconds else 10**9
    writer = tensorboard_writer(Path(outputs.log_dir) / spec.key()) if outputs.log_dir else None
    step_losses: list[torch.Tensor] = []  # device scalars since the last flush: no sync per step

    def flush_losses(last_step: int) -> None:
        for i, value in enumerate(torch.stack(step_losses).tolist() if step_losses else []):
            writer.add_scalar("train/loss", value, last_step - len(step_losses) + 1 + i)
        step_losses.clear()

    curve: list[CurvePoint] = []
    best_val, best_state, status, error = -1.0, None, "ok", None
    train_loss, eval_seconds, step = float("nan"), 0.0, 0
    start = time.perf_counter()
    while step < total:
        elapsed = time.perf_counter() - start
        if cfg.seconds and elapsed >= cfg.seconds:
            break
        progress = elapsed / cfg.seconds if cfg.seconds else step / total
        lr = lr_at(cfg, progress)
        train_step.set_lr(lr)
        batch = next(batches)
        if test_hashes is not None:
            train_hashes.append(row_hashes(batch.inputs, mult))
        loss = train_step(batch.inputs, batch.labels)
        step += 1
        if writer is not None:
            step_losses.append(loss.detach().clone())  # a CUDA graph reuses its loss tensor
            writer.add_scalar("train/lr", lr, step)
        if on_step:
            on_step(step, total)
        if step % cfg.eval_every == 0 or step == total:
            fold_overlap()
            if writer is not None:
                flush_losses(step)
            # Checked here rather than every step: reading the loss forces a GPU sync.
            train_loss = loss.item()
            if not math.isfinite(train_loss):
                status, error = "diverged", f"non-finite training loss ({train_loss}) by step {step}"
                break
            t0 = time.perf_counter()
            v = evaluate(model, val, autocast)
            eval_seconds += time.perf_counter() - t0
            if not v["finite"]:
                status, error = "diverged", f"non-finite logits at the evaluation of step {step}"
                break
            curve.append({"step": step, "train_loss": train_loss, "val_acc": v["acc"], **diagnostics(model, focus)})
            if writer is not None:
                for name, value in curve[-1].items():
                    if name not in ("step", "train_loss"):
                        writer.add_scalar("val/acc" if name == "val_acc" else f"diagnostics/{name}", value, step)
            if v["acc"] > best_val:
                best_val = v["acc"]
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            if cfg.stop_at and v["acc"] >= cfg.stop_at:
                break
    fold_overlap()  # the steps after the last evaluation (a seconds budget)
    if writer is not None:
        flush_losses(step)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    ended = Ended(
        step,
        curve,
        status,
        error,
        best_val,
        best_state,
        train_loss,
        float(seen_test.double().mean()) if test_hashes is not None else None,
        time.perf_counter() - start,
        eval_seconds,
        train_step.path,
        train_step.fallback,
        train_rows,
    )
    return run_record(spec, model, val, test, autocast, device, ended, outputs, writer)


@dataclass
class Ended:
    """How a run's training loop ended: what its record needs besides the model and the data."""

    steps: int
    curve: list[CurvePoint]
    status: str  # 'ok' or 'diverged'
    error: str | None
    best_val: float  # -1 before the first evaluation
    best_state: dict[str, torch.Tensor] | None  # the weights at best_val
    train_loss: float  # at the last evaluation
    overlap: float | None  # fraction of test examples seen in training; None when the lengths differ
    train_seconds: float
    eval_seconds: float  # of which validation
    train_path: str  # that ran: 'eager' or 'cuda-graph'
    fallback: str | None  # why CUDA-graph capture fell back to eager
    train_rows: int | None = None  # examples in the finite training set; None: a fresh stream


def run_record(
    spec: RunSpec,
    model: torch.nn.Module,
    val: Batch,
    test: Batch,
    autocast: torch.dtype | None,
    device: torch.device,
    ended: Ended,
    outputs: RunOutputs = NO_OUTPUTS,
    writer=None,
    fold: int = 1,
) -> RunRecord:
    """The record of a finished run: its best checkpoint (loaded into `model`) tested; `fold`: the
    runs it trained with as one batched model (runners/batched.py), 1 alone."""
    seq_len, step, best_val = val.inputs.shape[1], ended.steps, ended.best_val
    step_seconds = max(ended.train_seconds - ended.eval_seconds, 1e-9)
    metrics: Metrics = {"steps": step, "curve": ended.curve}
    if ended.status == "ok":
        finite = True
        if ended.best_state is None:  # a seconds budget that ended before the first evaluation
            first = evaluate(model, val, autocast)
            best_val, finite = first["acc"], first["finite"]
        else:
            model.load_state_dict(ended.best_state)
        result = evaluate(model, test, autocast)
        if not (finite and result["finite"]):
            ended = replace(ended, status="diverged", error="non-finite logits at the final evaluation")
    if ended.status == "ok":
        metrics.update(
            test_acc=result["acc"],
            test_exact=result["exact"],
            val_acc=best_val,
            slices=result["slices"],
            final_train_loss=ended.train_loss,
            train_test_overlap=ended.overlap,
        )
        if ended.train_rows is not None:
            metrics["train_examples"] = ended.train_rows
        if writer is not None:
            writer.add_scalar("test/acc", result["acc"], step)
            writer.add_scalar("test/exact", result["exact"], step)
    if writer is not None:
        writer.close()
    checkpoint = None
    if outputs.checkpoint_dir and ended.status == "ok":  # the weights the test accuracy was measured with
        checkpoint = Path(outputs.checkpoint_dir) / f"{spec.key()}.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"spec": spec.to_dict(), "state_dict": model.state_dict()}, checkpoint)
    return {
        "schema": SCHEMA_VERSION,
        "key": spec.key(),
        "spec": spec.to_dict(),
        "seed": spec.seed,
        "status": ended.status,
        "error": ended.error,
        "metrics": metrics,
        "model": {
            "params": model.num_params(),
            "state_size": model.state_size(seq_len),
            "mixer_source": source_digest(spec.model.name),
        },
        "timings": {
            "train_seconds": ended.train_seconds,
            "eval_seconds": ended.eval_seconds,
            "step_ms": 1000 * step_seconds / max(step, 1),
            "tokens_per_s": step * spec.train.batch_size * seq_len / step_seconds,
            "peak_memory_bytes": peak_memory_bytes(device),
        },
        "environment": environment(device),
        "kernel_paths": kernels.paths_used(),
        "train_path": ended.train_path,
        "train_path_fallback": ended.fallback,
        "fold": fold,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }

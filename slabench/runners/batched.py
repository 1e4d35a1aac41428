"""Train several runs as one batched model: runs that differ only in seed and learning rate.

Deciding a mechanism question takes hundreds of runs that differ only in seed and lr; folding
them was built on the premise that at synthetic-task sizes one run's step is launch-bound, so N
runs folded into one step would cost less than N steps. On an H200 a captured step is GPU work
already, and folds measured 0.85-1.14x one at a time (`resolve_fold`, docs/batched.md).
Each member of a fold is the run it stands for:

- its own initialisation: its model is built under its own seed exactly as `train` builds it,
  then its values move into the fold's stacked [N, ...] parameters, the leaves the fold trains;
- its own training stream, from its own seed: the batches its single run would see;
- one forward for all: `torch.func.vmap` of `functional_call` over the stacked parameters and
  the stacked batches [N, B, T]. Kernel ops under vmap run outside it on the members' rows
  (kernels/fold.py), so the Triton kernels need no vmap support. The loss is the sum of the
  members' losses: each member's rows get exactly its own loss's gradient, and a member whose
  loss is not finite does not reach the others;
- the project's AdamW with its own lr schedule, weight decay and gradient clipping, for all
  members at once (`FoldedAdamW`: per-member lr, step count and clipping norm, on device);
- its own evaluations (its values loaded into its own model, evaluated unbatched: the same
  numbers and gate diagnostics as a single run), its own early stop and divergence, and its
  own record, handed to `on_record` the moment it finishes. A finished member stays in the
  stack, masked (`FoldedAdamW.active`): the shapes never change, so one captured CUDA graph
  (`FoldStep`, the single run's recipe) serves the whole fold.

Member records match single runs' up to float rounding (the batched matrix products add in
another order): equal steps and early stops, test accuracy within 1e-6 in the tests. Timings
are the fold's: a member's wall time is that of the fold it ran in (`fold` in its record).
Never folded: runs with a `seconds` budget (the budget counts steps of wall time, which
folding changes), an `epochs` budget (its steps depend on the rows each member's finite set
keeps) or dropout (vmap would draw one mask for all members, or refuse).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch.func import functional_call, vmap

from slabench import kernels
from slabench.config import RunSpec
from slabench.runners.data import hash_multipliers, row_hashes, seeded_generator, total_steps, training_batches
from slabench.runners.step import CapturedStep, FoldedAdamW, lr_at, scored_positions, token_loss
from slabench.runners.train import (
    NO_OUTPUTS,
    TEST_SEED,
    VAL_SEED,
    Ended,
    RunOutputs,
    diagnostics,
    evaluate,
    recall_focus,
    run_record,
    train,
)


def resolve_fold(fold: int | Literal["auto"], device: str) -> int:
    """'auto': the fold measured fastest, 1 today on both CPU and GPU. On two H200s, quick's gla
    MQAR model, captured folds of 4 to 16 ran 0.85-1.14x the runs per hour of one at a time on the
    CUDA-graph step (docs/batched.md): at that size a step is GPU work, and N members cost about
    N steps."""
    return 1 if fold == "auto" else fold


def fold_key(spec: RunSpec) -> Any:
    """Runs with equal keys can train as one: equal task, model and training settings but lr, and
    the same grid (a fold's records go to one grid's directory)."""
    params = dict(spec.model.params)
    if spec.train.seconds or spec.train.epochs or params.get("dropout") or params.get("attn_dropout"):
        return spec  # never folded (see the module doc)
    return spec.grid, spec.task, spec.model, replace(spec.train, lr=1.0)


def fold_groups(specs: list[RunSpec], fold: int) -> list[list[RunSpec]]:
    """specs in groups of at most `fold` that can train as one, in the order they come."""
    buckets: dict[Any, list[RunSpec]] = {}
    for spec in specs:
        buckets.setdefault(fold_key(spec), []).append(spec)
    return [runs[i : i + fold] for runs in buckets.values() for i in range(0, len(runs), fold)]


@dataclass
class Member:
    """One run of a fold and its bookkeeping (the loop variables of `train`)."""

    spec: RunSpec
    model: torch.nn.Module  # its values at its evaluations, then its record's checkpoint
    batches: Any  # its training batches (runners/data.py)
    seen_test: torch.Tensor  # [test_size] bool: test rows met in training
    curve: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = -1.0
    best_state: dict[str, torch.Tensor] | None = None
    status: str = "ok"
    error: str | None = None
    train_loss: float = float("nan")
    done: bool = False
    train_rows: int | None = None  # examples in its finite training set; None: a fresh stream


def _member(
    spec: RunSpec, task, vocab: int, max_len: int, device: torch.device, held_out: torch.Tensor, mult: torch.Tensor
) -> Member:
    torch.manual_seed(spec.seed)  # the init its single run gets (train() seeds the same way)
    model = spec.model.build(vocab, max_len).to(device)
    batches, train_rows = training_batches(task, spec.train, spec.seed, device, held_out, mult)
    seen_test = torch.zeros(spec.train.test_size, dtype=torch.bool, device=device)
    return Member(spec, model, batches, seen_test, train_rows=train_rows)


class FoldStep(CapturedStep):
    """One optimizer step of every member: `step(inputs [N, B, T], labels [N, B, T]) -> losses [N]`
    (not synced), eager or captured in a CUDA graph as a single run's step is (`CapturedStep`).
    `base` is the module functional_call runs: every member has its structure."""

    def __init__(
        self,
        base: torch.nn.Module,
        opt: FoldedAdamW,
        device: torch.device,
        autocast: torch.dtype | None,
        path: str,
        scored: int | None = None,
    ):
        super().__init__(device, autocast, path, scored)
        self.base, self.opt = base, opt
        self.leaves = dict(zip((name for name, _ in base.named_parameters()), opt.params))  # [N, ...] each

    def _zero_grad(self) -> None:
        self.opt.zero_grad()

    def _step(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        def loss_of(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            positions, y = scored_positions(y, self.scored)  # [B, k] each, or None and [B, T]
            with self.autocast_context():
                logits = functional_call(self.base, params, (x, positions))  # [B, k or T, V]
            return token_loss(logits, y)

        losses = vmap(loss_of)(self.leaves, inputs, labels)  # [N]
        self._zero_grad()
        losses.sum().backward()  # d(sum)/d(loss_i) = 1: member i's rows get its own loss's gradient
        self.opt.step()
        return losses.detach()


def train_batched(
    specs: list[RunSpec],
    device: str | torch.device = "cpu",
    on_record: Callable[[dict[str, Any]], None] = lambda record: None,
    outputs: RunOutputs = NO_OUTPUTS,
    train_path: str = "auto",
    rerun_diverged: bool | None = None,
) -> list[dict[str, Any]]:
    """Train `specs` (one `fold_key`) as one batched model; return their records, each also
    handed to `on_record` as soon as its run ends. train_path: as `train`'s, for the folded step.
    rerun_diverged (default: on a GPU): a member that diverges is trained again alone after the
    fold, and that single run's record stands (`fold` 1), since bf16 folds on a GPU have
    diverged where their single runs did not (docs/batched.md)."""
    if len({fold_key(s) for s in specs}) != 1 or fold_key(specs[0]) == specs[0]:
        raise ValueError("a fold takes runs that differ only in seed and lr, on a steps or tokens budget, no dropout")
    device = torch.device(device)
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device()) if device.index is None else device
        torch.cuda.set_device(device)
        torch.cuda.reset_peak_memory_stats(device)
    kernels.reset_paths_used()
    cfg = specs[0].train  # every setting but lr is shared
    task, test_task = specs[0].task.build(), specs[0].task.build_test()
    autocast = torch.bfloat16 if (cfg.dtype == "bfloat16" and device.type == "cuda") else None
    vocab, max_len = max(task.vocab_size, test_task.vocab_size), max(task.seq_len, test_task.seq_len)
    val = task.sample(cfg.val_size, seeded_generator(VAL_SEED, device), device)
    focus = recall_focus(val)
    test = test_task.sample(cfg.test_size, seeded_generator(TEST_SEED, device), device)
    mult = hash_multipliers(task.seq_len, device)
    test_hashes = row_hashes(test.inputs, mult) if test_task.seq_len == task.seq_len else None
    held_out = torch.cat([row_hashes(val.inputs, mult), *([test_hashes] if test_hashes is not None else [])])
    members = [_member(s, task, vocab, max_len, device, held_out, mult) for s in specs]
    opt = FoldedAdamW([list(m.model.parameters()) for m in members], cfg)
    if train_path == "auto":
        train_path = "cuda-graph" if device.type == "cuda" else "eager"
    fold_step = FoldStep(members[0].model, opt, device, autocast, train_path, task.scored_per_row())
    total = total_steps(cfg, task.seq_len, members[0].train_rows)
    # Every member's lr at every step, on the device: one row copied in place per step, no sync.
    lrs = torch.tensor([[lr_at(m.spec.train, s / total) for m in members] for s in range(total)], device=device)

    if rerun_diverged is None:
        rerun_diverged = device.type == "cuda"
    records: list[dict[str, Any]] = []
    rerun: list[RunSpec] = []  # diverged members, trained alone after the fold
    train_hashes: list[torch.Tensor] = []  # [N, B] per step since the last evaluation
    step, eval_seconds, start = 0, 0.0, time.perf_counter()
    while not all(m.done for m in members):
        opt.lr.copy_(lrs[step])
        batches = [next(m.batches) for m in members]  # a stopped member's row still runs, masked
        inputs = torch.stack([b.inputs for b in batches])  # [N, B, T]
        labels = torch.stack([b.labels for b in batches])  # [N, B, T]
        if test_hashes is not None:
            train_hashes.append(row_hashes(inputs.flatten(0, 1), mult).view(len(members), -1))  # [N, B]
        losses = fold_step(inputs, labels)  # [N]
        step += 1
        if step % cfg.eval_every and step != total:
            continue
        t0 = time.perf_counter()
        seen = torch.cat(train_hashes, dim=1) if train_hashes else None  # [N, steps * B]
        train_hashes.clear()
        finished = []
        for i, (m, loss) in enumerate(zip(members, losses.tolist())):  # one sync per evaluation, as in train()
            if m.done:
                continue
            opt.load_member(i, list(m.model.parameters()))
            _evaluate(m, loss, step, total, val, focus, test_hashes, None if seen is None else seen[i], autocast)
            if m.done:
                opt.active[i] = False  # in place: the captured step reads this mask
                finished.append(m)
        eval_seconds += time.perf_counter() - t0
        for m in finished:
            if m.status == "diverged" and rerun_diverged:
                rerun.append(m.spec)
                continue
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            overlap = float(m.seen_test.double().mean()) if test_hashes is not None else None
            ended = Ended(
                step,
                m.curve,
                m.status,
                m.error,
                m.best_val,
                m.best_state,
                m.train_loss,
                overlap,
                time.perf_counter() - start,
                eval_seconds,
                fold_step.path,
                fold_step.fallback,
                m.train_rows,
            )
            record = run_record(m.spec, m.model, val, test, autocast, device, ended, outputs, fold=len(specs))
            records.append(record)
            on_record(record)
    for spec in rerun:
        record = train(spec, device, train_path=train_path, outputs=outputs)
        records.append(record)
        on_record(record)
    return records


def _evaluate(
    m: Member,
    loss: float,
    step: int,
    total: int,
    val,
    focus: torch.Tensor,
    test_hashes: torch.Tensor | None,
    seen: torch.Tensor | None,
    autocast: torch.dtype | None,
) -> None:
    """A member's evaluation: train()'s, on the member's own model. seen: [steps * B] hashes of
    its training rows since the last evaluation; focus: `recall_focus(val)`."""
    if seen is not None:
        m.seen_test.logical_or_(torch.isin(test_hashes, seen))
    m.train_loss = loss
    if not math.isfinite(loss):
        m.status, m.error, m.done = "diverged", f"non-finite training loss ({loss}) by step {step}", True
        return
    v = evaluate(m.model, val, autocast)
    if not v["finite"]:
        m.status, m.error, m.done = "diverged", f"non-finite logits at the evaluation of step {step}", True
        return
    m.curve.append({"step": step, "train_loss": loss, "val_acc": v["acc"], **diagnostics(m.model, focus)})
    if v["acc"] > m.best_val:
        m.best_val = v["acc"]
        m.best_state = {k: t.detach().clone() for k, t in m.model.state_dict().items()}
    m.done = step == total or bool(m.spec.train.stop_at and v["acc"] >= m.spec.train.stop_at)

"""A run's training data and budget: a fresh stream, or a finite set cycled for epochs.

Fresh stream (`train_examples = 0`, the default): every batch is new, drawn from the run's seed.

Finite set (`train_examples = N`, Zoology's protocol): N examples drawn once from the run's seed
on the training device, then cycled in a fixed order. Zoology's training loader does not
shuffle (`DataLoader(..., shuffle=False)`), so neither does this: batch i holds rows
i*B .. i*B+B-1 of the set taken cyclically, and every epoch is the same examples in the same
order. Where B does not divide N a batch straddles two epochs instead of being cut short, so
every batch has one shape (a CUDA graph replays it) and every example is seen equally often.
Rows equal to a validation or test row are dropped from the set before training (Zoology
draws its sets from different seeds and does not check), so the measured train/test overlap
of such a run is 0; the record keeps how many rows remained (`metrics.train_examples`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from slabench.config import TrainSpec
from slabench.errors import SlabenchError
from slabench.tasks import Batch, Task

DRAW_CHUNK = 8192  # examples per sampler call when drawing a finite set (bounds the sampler's memory)


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """The generator a run draws `seed`'s data from, on the data's device."""
    return torch.Generator(device=device).manual_seed(seed)


def hash_multipliers(seq_len: int, device: torch.device) -> torch.Tensor:
    """[T] random int64 multipliers for `row_hashes`, drawn once per run (not per step)."""
    g = torch.Generator(device="cpu").manual_seed(seq_len)
    return torch.randint(1, 2**61 - 1, (seq_len,), generator=g, dtype=torch.int64).to(device)


def row_hashes(inputs: torch.Tensor, mult: torch.Tensor) -> torch.Tensor:
    """[B, T] -> [B] int64 hash of each row: equal rows hash equal; unequal ones collide ~2^-60."""
    return (inputs * mult).sum(dim=1)  # wraps mod 2^64: a fine hash


def finite_set(
    task: Task, n: int, generator: torch.Generator, device: torch.device, held_out: torch.Tensor, mult: torch.Tensor
) -> Batch:
    """n examples of `task` drawn from `generator`, less those whose row hash is in `held_out` [M]
    (the validation and test rows): a hash match drops the row, so no row equal to a held-out
    one can remain (a collision would only drop one row too many)."""
    parts = [task.sample(min(DRAW_CHUNK, n - i), generator, device) for i in range(0, n, DRAW_CHUNK)]
    data = Batch(
        torch.cat([p.inputs for p in parts]),  # [n, T]
        torch.cat([p.labels for p in parts]),  # [n, T]
        {k: torch.cat([p.slices[k] for p in parts]) for k in parts[0].slices},
    )
    keep = ~torch.isin(row_hashes(data.inputs, mult), held_out)  # [n]
    if not bool(keep.any()):
        raise SlabenchError(
            f"[train] train_examples={n}: every drawn example equals a validation or test example; "
            "the task has too few distinct examples for a disjoint training set"
        )
    return Batch(data.inputs[keep], data.labels[keep], {k: v[keep] for k, v in data.slices.items()})


def cycle(data: Batch, batch_size: int) -> Iterator[Batch]:
    """Endless batches of `batch_size` rows of `data`, in order, wrapping around at the end."""
    n, start = data.inputs.shape[0], 0
    while True:
        idx = torch.arange(start, start + batch_size, device=data.inputs.device) % n  # [B]
        yield Batch(data.inputs[idx], data.labels[idx], {k: v[idx] for k, v in data.slices.items()})
        start = (start + batch_size) % n


def training_batches(
    task: Task, cfg: TrainSpec, seed: int, device: torch.device, held_out: torch.Tensor, mult: torch.Tensor
) -> tuple[Iterator[Batch], int | None]:
    """The run's training batches and the size of its finite set (None for a fresh stream)."""
    generator = seeded_generator(seed, device)
    if not cfg.train_examples:
        return task.stream(cfg.batch_size, generator, device), None
    data = finite_set(task, cfg.train_examples, generator, device, held_out, mult)
    return cycle(data, cfg.batch_size), data.inputs.shape[0]


def total_steps(cfg: TrainSpec, seq_len: int, train_rows: int | None) -> int:
    """Optimizer steps of a steps, tokens or epochs budget (at least 1); an epoch is one pass
    over the finite set as it remains after dropping held-out rows."""
    if cfg.epochs:
        return max(math.ceil(cfg.epochs * train_rows / cfg.batch_size), 1)
    if cfg.tokens:
        return max(cfg.tokens // (cfg.batch_size * seq_len), 1)
    return max(cfg.steps, 1)

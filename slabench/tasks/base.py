"""The task contract shared by every task family.

A task is a frozen dataclass of its parameters (validated in `validate`, one-line errors naming
the field) with a `sample` method that draws a fresh batch from a local generator on the
training device, vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch

IGNORE = -100  # label value for positions that are not scored (torch cross-entropy's default)
STREAM_BLOCK, STREAM_BLOCK_TOKENS = 16, 2**22  # GPU training batches per sampler call, and a token cap


@dataclass(frozen=True)
class Batch:
    """One batch of a task.

    inputs: [B, T] long token ids.
    labels: [B, T] long; the token the model must predict at each position, IGNORE where
        nothing is scored.
    slices: per-example metadata, name -> [B] tensor (e.g. number of pairs, depth bucket,
        noise level); accuracy is reported per value of each slice.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    slices: dict[str, torch.Tensor]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.inputs.to(device), self.labels.to(device), {k: v.to(device) for k, v in self.slices.items()})

    def rows(self, start: int, stop: int) -> Batch:
        """Examples start..stop-1 (views, no copy)."""
        return Batch(
            self.inputs[start:stop], self.labels[start:stop], {k: v[start:stop] for k, v in self.slices.items()}
        )


@dataclass(frozen=True)
class Task:
    """Base class: subclasses are frozen dataclasses with `vocab_size` and `seq_len` fields."""

    version: ClassVar[int] = 1  # bump whenever the distribution of `sample` changes

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `SlabenchError` (via `params.require`) naming the first invalid field."""

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        raise NotImplementedError

    def scored_per_row(self) -> int | None:
        """The most scored (labelled) positions any row of `sample` can hold, or None for no bound
        below seq_len. Training computes the head and loss only at that many positions per row
        (`runners.step.scored_positions`), so it must never be below a row's count."""
        return None

    def token_names(self) -> dict[int, str]:
        """Names of the task's reserved special tokens (id -> name), for display."""
        return {}

    def stream_block(self, batch_size: int, device: torch.device | str) -> int:
        """Batches per `sample` call in `stream`: STREAM_BLOCK on a GPU (at most
        STREAM_BLOCK_TOKENS tokens a call), 1 on CPU.

        On a GPU the samplers are launch-bound (a few dozen small kernels whatever the batch
        size: ~1 ms for MQAR B256 T256 on an H100, 5% of a training step), so one call per
        block divides that cost by the block; on CPU the cost is arithmetic and 1 loses nothing.
        """
        if torch.device(device).type == "cpu":
            return 1
        return max(1, min(STREAM_BLOCK, STREAM_BLOCK_TOKENS // (batch_size * self.seq_len)))

    def stream(
        self, batch_size: int, generator: torch.Generator, device: torch.device | str, block: int | None = None
    ) -> Iterator[Batch]:
        """Endless fresh batches of `batch_size`, drawn `block` batches per `sample` call
        (default `stream_block`). Rows are i.i.d., so a block is `block` batches of the same
        distribution."""
        block = block or self.stream_block(batch_size, device)
        while True:
            drawn = self.sample(batch_size * block, generator, device)
            for i in range(block):
                yield drawn.rows(i * batch_size, (i + 1) * batch_size)

    @property
    def name(self) -> str:
        from slabench.tasks import TASKS

        return next(n for n in TASKS.names() if TASKS.get(n) is type(self))

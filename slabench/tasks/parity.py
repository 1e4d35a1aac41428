"""Parity of a bit stream: the label is the number of 1s so far, mod 2.

Layout of one example (T = seq_len): T uniform random bits, tokens 0 and 1.

    1 0 1 1 0 0 1 ...
    1 1 0 1 1 1 0 ...   labels with `label=every`: the parity of the prefix ending there

With `label=end` only the last position is scored (the parity of the whole stream). Parity is
the smallest state-tracking problem (the word problem of the group Z_2): a fixed-size state
solves it at any length, yet a mixer whose state transitions have only non-negative
eigenvalues cannot represent it at long lengths (Grazzi et al., 2024). Zoology and MAD have no
parity task; the every-position form follows the state-tracking literature (Merrill et al., 2024).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task


@dataclass(frozen=True)
class Parity(Task):
    seq_len: int = field(default=32, metadata={"help": "bits per example"})
    label: Literal["every", "end"] = field(
        default="every", metadata={"help": "score the running parity at every position, or only at the end"}
    )

    version = 1

    @property
    def vocab_size(self) -> int:
        return 2

    def validate(self) -> None:
        require(self.seq_len >= 1, "parity", f"seq_len={self.seq_len} must be >= 1")

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T = batch_size, self.seq_len
        bits = torch.randint(2, (B, T), generator=generator, device=device)  # [B, T]
        labels = bits.cumsum(dim=1) % 2  # [B, T]
        if self.label == "end":
            labels[:, :-1] = IGNORE
        slices = {"seq_len": torch.full((B,), T, device=device)}
        return Batch(bits, labels, slices)

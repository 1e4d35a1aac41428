"""Majority of a bit stream: is there more 1s than 0s so far, fewer, or as many?

Layout of one example (T = seq_len): T uniform random bits, tokens 0 and 1.

    1 0 0 0 1 1 1 ...
    1 = 0 0 0 = 1 ...   labels with `label=every`: the majority bit of the prefix ending there,
                        = (token 2) where the prefix has as many 1s as 0s

With `label=end` only the last position is scored. Majority needs a counter that grows with
the length (log T bits of state), where parity needs one bit. A tie is a label of its own
(token 2, never an input) so that every prefix has one right answer; MAD and Zoology have no
majority task.

Slice `margin`: |#1s - #0s| over the whole stream, capped at MARGIN_CAP (close calls are hard).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task

TIE = 2
MARGIN_CAP = 4


@dataclass(frozen=True)
class Majority(Task):
    seq_len: int = field(default=32, metadata={"help": "bits per example"})
    label: Literal["every", "end"] = field(
        default="every", metadata={"help": "score the running majority at every position, or only at the end"}
    )

    version = 1

    @property
    def vocab_size(self) -> int:
        return 3

    def token_names(self) -> dict[int, str]:
        return {TIE: "="}

    def validate(self) -> None:
        require(self.seq_len >= 1, "majority", f"seq_len={self.seq_len} must be >= 1")

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T = batch_size, self.seq_len
        bits = torch.randint(2, (B, T), generator=generator, device=device)  # [B, T]
        lead = (2 * bits - 1).cumsum(dim=1)  # [B, T] #1s - #0s of each prefix
        labels = torch.where(lead == 0, TIE, (lead > 0).long())  # [B, T]
        if self.label == "end":
            labels[:, :-1] = IGNORE
        slices = {
            "seq_len": torch.full((B,), T, device=device),
            "margin": lead[:, -1].abs().clamp(max=MARGIN_CAP),
        }
        return Batch(bits, labels, slices)

"""The mixer contract.

A mixer is an `nn.Module` built as `Mixer(d_model, n_heads, options)`, where `options` is an
instance of the class's `Options`, a frozen dataclass whose fields (each with a default, a type
and help text) are the mixer's parameters in grid files and in `slabench models`. Its
`forward(x [B, T, D]) -> [B, T, D]` is causal: output t depends on inputs <= t only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class NoOptions:
    """The options of a mixer that has none."""


class Mixer(nn.Module):
    """Base class for sequence mixers; subclasses set `Options` and override `forward` and `state_size`."""

    Options: ClassVar[type] = NoOptions

    def __init__(self, d_model: int, n_heads: int, options: Any = None):
        super().__init__()
        self.d_model, self.n_heads = d_model, n_heads
        self.options = self.Options() if options is None else options

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T, D]
        raise NotImplementedError

    def state_size(self, seq_len: int) -> int:
        """Elements of state one sequence carries at inference after `seq_len` tokens
        (the KV cache for attention, the recurrent matrix state for linear mixers)."""
        raise NotImplementedError

    def diagnostics(self) -> dict[str, float]:
        """Scalars about the last forward pass (e.g. SLA gate entropy); empty by default."""
        return {}

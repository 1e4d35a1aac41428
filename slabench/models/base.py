"""The mixer contract.

A mixer is an `nn.Module` built as `Mixer(d_model, n_heads, **options)` whose
`forward(x [B, T, D]) -> [B, T, D]` is causal: output t depends on inputs <= t only.
"""

from __future__ import annotations

import torch
from torch import nn


class Mixer(nn.Module):
    """Base class for sequence mixers; subclasses override `forward` and `state_size`."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.d_model, self.n_heads = d_model, n_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T, D]
        raise NotImplementedError

    def state_size(self, seq_len: int) -> int:
        """Elements of state one sequence carries at inference after `seq_len` tokens
        (the KV cache for attention, the recurrent matrix state for linear mixers)."""
        raise NotImplementedError

    def diagnostics(self) -> dict[str, float]:
        """Scalars about the last forward pass (e.g. SLA gate entropy); empty by default."""
        return {}

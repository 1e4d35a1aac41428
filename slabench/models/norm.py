"""RMSNorm, optionally gated, through `kernels.rms_norm_gated` (one fused kernel on CUDA).

At synthetic-task sizes ATen's RMSNorm is several kernels forward and a slow weight-gradient
reduction backward (~35 us per call at the quick preset's size on an H100); fla's fused kernel
replaces them on CUDA, and the torch reference keeps the CPU numerics of `nn.RMSNorm`.
"""

from __future__ import annotations

import torch
from torch import nn

from slabench import kernels


class RMSNorm(nn.RMSNorm):
    """nn.RMSNorm (same parameters and default eps) whose forward can also apply a swish gate."""

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """x [..., D] -> x / rms(x) * weight, times silu(gate [..., D]) when given."""
        eps = self.eps or torch.finfo(torch.float32).eps  # what nn.RMSNorm uses when eps is None
        return kernels.rms_norm_gated(x, gate, self.weight, eps)

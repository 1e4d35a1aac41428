"""RMSNorm, optionally gated, through `kernels.rms_norm_gated` (one fused kernel on CUDA).

At synthetic-task sizes ATen's RMSNorm is several kernels forward and a slow weight-gradient
reduction backward (~35 us per call at the quick preset's size on an H100); on CUDA one Triton
kernel each way replaces them (`slabench/kernels/norm/`), and the torch reference keeps the CPU
numerics of `nn.RMSNorm`.
"""

from __future__ import annotations

import torch
from torch import nn

from slabench import kernels


class RMSNorm(nn.RMSNorm):
    """nn.RMSNorm (same parameters and default eps) whose forward can also apply a swish gate."""

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """x [..., D] -> x / rms(x) * weight, times silu(gate [..., D]) when given; under autocast
        in its dtype."""
        eps = self.eps or torch.finfo(torch.float32).eps  # what nn.RMSNorm uses when eps is None
        # Every norm here feeds linear layers (a mixer's projections, the MLP, the head, o_proj),
        # which under autocast cast their input to its dtype: once per layer that reads it, and
        # the gradient back, each a pass over [B, T, D]. Writing that dtype here gives them the
        # same values without those passes.
        device = x.device.type
        out_dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        return kernels.rms_norm_gated(x, gate, self.weight, eps, out_dtype)

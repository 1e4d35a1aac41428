"""Retention (RetNet, Sun et al. 2023): linear attention with a fixed decay per head.

    S_t = gamma_h S_{t-1} + k_t^T v_t,   o_t = q_t S_t,   gamma_h = 1 - 2^(-5 - h), h = 0..H-1

so head 0 forgets fastest (~32 tokens) and each further head remembers twice as long.
Rotary positions on q and k as in RetNet's xPos (without its extra length scaling), a swish
output gate and a per-head norm, like fla's MultiScaleRetention.
"""

from __future__ import annotations

from typing import Literal

import torch

from slabench import kernels
from slabench.models.attention import rotary as rotate
from slabench.models.linear import LinearMixer


class RetNet(LinearMixer):
    """rotary: rotate q and k (applied after the SLA gates read them, it keeps their norm)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        rotary: bool = True,
        expand_k: float = 1.0,
        expand_v: float = 2.0,
        conv_size: int = 4,
        output_gate: bool = True,
        output_norm: Literal["head", "layer", "none"] = "head",
    ):
        super().__init__(d_model, n_heads, expand_k=expand_k, expand_v=expand_v, conv_size=conv_size,
                         output_gate=output_gate, output_norm=output_norm)
        self.rotary = rotary
        log_gamma = torch.log1p(-(2.0 ** (-5.0 - torch.arange(n_heads, dtype=torch.float32))))  # [H]
        self.register_buffer("log_gamma", log_gamma, persistent=False)

    def feature_map(self, q, k):
        if not self.rotary:
            return q, k
        return rotate(q.transpose(1, 2)).transpose(1, 2), rotate(k.transpose(1, 2)).transpose(1, 2)

    def mix(self, q, k, v, extras, output_final_state=False):
        B, T, H, _ = q.shape
        g = self.log_gamma.expand(B, T, H).contiguous()  # [B, T, H]
        return kernels.gla(q, k, v, g, output_final_state=output_final_state)

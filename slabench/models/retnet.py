"""Retention (RetNet, Sun et al. 2023): linear attention with a fixed decay per head.

    S_t = gamma_h S_{t-1} + k_t^T v_t,   o_t = q_t S_t,   gamma_h = 1 - 2^(-5 - h), h = 0..H-1

so head 0 forgets fastest (~32 tokens) and each further head remembers twice as long.
Rotary positions on q and k as in RetNet's xPos (without its extra length scaling), a swish
output gate and a per-head norm, like fla's MultiScaleRetention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from slabench import kernels
from slabench.models.attention import rotary as rotate
from slabench.models.linear_base import LinearMixer, shared_option


@dataclass(frozen=True)
class RetNetOptions:
    # Applied after the SLA gates read q and k; a rotation keeps their norm.
    rotary: bool = field(default=True, metadata={"help": "rotary positions on q and k"})
    expand_k: float = shared_option("expand_k", 1.0)
    expand_v: float = shared_option("expand_v", 2.0)
    conv_size: int = shared_option("conv_size", 4)
    output_gate: bool = shared_option("output_gate", True)
    output_norm: Literal["head", "layer", "none"] = shared_option("output_norm", "head")


class RetNet(LinearMixer):
    Options = RetNetOptions

    def __init__(self, d_model: int, n_heads: int, options: RetNetOptions | None = None):
        super().__init__(d_model, n_heads, options)
        self.rotary = self.options.rotary
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

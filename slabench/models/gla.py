"""Gated Linear Attention (Yang et al. 2024): a data-dependent decay per key channel.

    alpha_t = exp(logsigmoid(W2 W1 x_t) / 16)          [H, Dk], W1: d_model -> 16 (low rank)
    S_t = diag(alpha_t) S_{t-1} + k_t^T v_t,   o_t = q_t S_t

as fla's GatedLinearAttention layer (gate_logit_normalizer 16 keeps decays near one at
init), with its swish output gate and per-head norm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch.nn.functional as F
from torch import nn

from slabench import kernels
from slabench.models.linear_base import LinearMixer, shared_option
from slabench.params import require


@dataclass(frozen=True)
class GLAOptions:
    gate_low_rank_dim: int = field(default=16, metadata={"help": "rank of the decay projection"})
    gate_logit_normalizer: float = field(default=16.0, metadata={"help": "divides the decay's logsigmoid"})
    expand_k: float = shared_option("expand_k", 0.5)
    expand_v: float = shared_option("expand_v", 1.0)
    conv_size: int = shared_option("conv_size", 4)
    output_gate: bool = shared_option("output_gate", True)
    output_norm: Literal["head", "layer", "none"] = shared_option("output_norm", "head")


class GLA(LinearMixer):
    Options = GLAOptions

    def __init__(self, d_model: int, n_heads: int, options: GLAOptions | None = None):
        super().__init__(d_model, n_heads, options)
        rank, normalizer = self.options.gate_low_rank_dim, self.options.gate_logit_normalizer
        require(rank >= 1, "gla", f"gate_low_rank_dim={rank} must be >= 1")
        require(normalizer > 0, "gla", f"gate_logit_normalizer={normalizer} must be > 0")
        self.normalizer = normalizer
        self.gk_proj = nn.Sequential(nn.Linear(d_model, rank, bias=False), nn.Linear(rank, self.key_dim))

    def qkv(self, x):
        q, k, v = self.project(x)
        gk = F.logsigmoid(self.gk_proj(x).float()) / self.normalizer  # [B, T, Dk_all], <= 0
        return q, k, v, {"g": gk.view(*q.shape)}  # [B, T, H, Dk]

    def mix(self, q, k, v, extras, output_final_state=False):
        return kernels.gla(q, k, v, extras["g"], output_final_state=output_final_state)

"""Gated Linear Attention (Yang et al. 2024): a data-dependent decay per key channel.

    alpha_t = exp(logsigmoid(W2 W1 x_t) / 16)          [H, Dk], W1: d_model -> 16 (low rank)
    S_t = diag(alpha_t) S_{t-1} + k_t^T v_t,   o_t = q_t S_t

as fla's GatedLinearAttention layer (gate_logit_normalizer 16 keeps decays near one at
init), with its swish output gate and per-head norm.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import nn

from slabench import kernels
from slabench.models.linear import LinearMixer
from slabench.params import require


class GLA(LinearMixer):
    """gate_low_rank_dim: rank of the decay projection; gate_logit_normalizer: divides logsigmoid."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        gate_low_rank_dim: int = 16,
        gate_logit_normalizer: float = 16.0,
        expand_k: float = 0.5,
        expand_v: float = 1.0,
        conv_size: int = 4,
        output_gate: bool = True,
        output_norm: Literal["head", "layer", "none"] = "head",
    ):
        super().__init__(d_model, n_heads, expand_k=expand_k, expand_v=expand_v, conv_size=conv_size,
                         output_gate=output_gate, output_norm=output_norm)
        require(gate_low_rank_dim >= 1, "gla", f"gate_low_rank_dim={gate_low_rank_dim} must be >= 1")
        require(gate_logit_normalizer > 0, "gla", f"gate_logit_normalizer={gate_logit_normalizer} must be > 0")
        self.normalizer = gate_logit_normalizer
        self.gk_proj = nn.Sequential(nn.Linear(d_model, gate_low_rank_dim, bias=False),
                                     nn.Linear(gate_low_rank_dim, self.key_dim))

    def qkv(self, x):
        q, k, v = self.project(x)
        gk = F.logsigmoid(self.gk_proj(x).float()) / self.normalizer  # [B, T, Dk_all], <= 0
        return q, k, v, {"g": gk.view(*q.shape)}  # [B, T, H, Dk]

    def mix(self, q, k, v, extras, output_final_state=False):
        return kernels.gla(q, k, v, extras["g"], output_final_state=output_final_state)

"""Mamba-2 (Dao & Gu 2024): the SSD layer in its linear-attention form.

    S_t = exp(g_t) S_{t-1} + dt_t B_t^T x_t,   y_t = C_t S_t + D x_t
    g_t = -exp(A_log) * softplus(W_dt x_t + dt_bias)            per head, [B, T, H]
    dt_t = softplus(W_dt x_t + dt_bias)

so C is the query, B the key and dt_t x_t the value, on the `simple_gla` op (a scalar
log decay per head). B, C and x go through the short causal conv with SiLU, the output through
a norm and the swish gate on z = W_g x, then o_proj, as in Mamba-2's block. A and dt start as
Mamba-2's: A ~ U(1, 16), dt log-uniform in [1e-3, 0.1].

Where it differs from Mamba-2:
- B and C are per head (each head has its own key slice, like the other mixers here); Mamba-2
  shares one B and C across all heads (ngroups = 1).
- The output is normed, then gated (the op 'rms_norm_gated', shared with every LinearMixer); Mamba-2 gates
  before its norm. The norm spans all heads by default ('layer'), as Mamba-2's does.
- Scores are C B^T without the 1/sqrt(Dk) scale of attention, as in Mamba-2; the key width is
  `expand_k * d_model` split over heads where Mamba-2 has a fixed state size (d_state).
- The short conv has no bias (fla's ShortConvolution); Mamba-2's conv1d has one.

At Mamba-2's init the recurrent read C_t S_t starts 10 to 100 times smaller than the skip D x_t
(the write is scaled by dt <= 0.1, and A up to 16 forgets within a few tokens), with Mamba-2's
own d_state 128, shared B and C and conv bias as well as here. Recall is then slow to learn on
short budgets: on the smoke preset's MQAR (d_model 64, 400 steps) the layer trails GLA, and
`d_skip=false` closes much of the gap. The defaults stay Mamba-2's; `d_skip` is the switch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from slabench import kernels
from slabench.models.linear_base import LinearMixer, shared_option


@dataclass(frozen=True)
class Mamba2Options:
    d_skip: bool = field(default=True, metadata={"help": "add D * x per head (Mamba-2's skip connection)"})
    expand_k: float = shared_option("expand_k", 1.0)
    expand_v: float = shared_option("expand_v", 2.0)
    conv_size: int = shared_option("conv_size", 4)
    output_gate: bool = shared_option("output_gate", True)
    output_norm: Literal["head", "layer", "none"] = shared_option("output_norm", "layer")


class Mamba2(LinearMixer):
    Options = Mamba2Options

    def __init__(self, d_model: int, n_heads: int, options: Mamba2Options | None = None):
        super().__init__(d_model, n_heads, options)
        H = n_heads
        self.dt_proj = nn.Linear(d_model, H, bias=False)
        # Mamba-2's A_init_range (1, 16); dt log-uniform in [1e-3, 0.1], dt_bias = softplus^-1(dt).
        self.A_log = nn.Parameter(torch.empty(H).uniform_(1, 16).log())
        dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp_min(1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.D = nn.Parameter(torch.ones(H)) if self.options.d_skip else None

    def qkv(self, x):
        q, k, xs = self.project(x)  # C, B [B, T, H, Dk], x [B, T, H, Dv]
        dt = F.softplus(self.dt_proj(x).float() + self.dt_bias)  # [B, T, H]
        v = xs * dt.unsqueeze(-1).to(xs.dtype)  # Mamba-2's discretisation: the write is dt_t B_t^T x_t
        return q, k, v, {"g": -self.A_log.float().exp() * dt, "x": xs}

    def mix(self, q, k, v, extras, output_final_state=False):
        o, state = kernels.gla(q, k, v, extras["g"], scale=1.0, output_final_state=output_final_state)
        if self.D is not None:
            o = o + self.D.view(-1, 1).to(o.dtype) * extras["x"]  # [B, T, H, Dv]
        return o, state

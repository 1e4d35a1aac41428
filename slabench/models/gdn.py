"""Gated DeltaNet (Yang et al. 2025): the delta rule with a learned scalar decay per head; and
DeltaNet (Yang et al. 2024), the same rule without the decay.

    S_t = exp(g_t) (I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t,   o_t = q_t S_t
    g_t = -exp(A_log) * softplus(W_a x_t + dt_bias),   beta_t = sigmoid(W_b x_t)   (op 'gdn_gates')

with q, k L2-normalised per head, as fla's GatedDeltaNet layer (Mamba-2 style A and dt
initialisation, swish-gated output norm).

SLA on GDN: the gates scale q and k AFTER the L2 normalisation. A key gate g <= 1 keeps the
transition I - beta g^2 k k^T contractive, so the delta rule stays stable; it changes the
effective write strength from beta to beta * g^2 (and the value written to beta * g * v).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from slabench import kernels
from slabench.models.linear_base import LinearMixer, shared_option

L2_EPS = 1e-6  # the feature map: q / sqrt(|q|^2 + eps) per head, fla's l2norm (`feature_l2_eps`)


def delta_rule(q, k, v, extras, output_final_state):
    q, k = q.to(v.dtype), k.to(v.dtype)  # [B, T, H, Dk]: the SLA gates may have promoted them
    return kernels.delta_rule(q, k, v, extras["g"], extras["beta"], output_final_state=output_final_state)


@dataclass(frozen=True)
class GatedDeltaNetOptions:
    expand_k: float = shared_option("expand_k", 1.0)
    expand_v: float = shared_option("expand_v", 2.0)
    conv_size: int = shared_option("conv_size", 4)
    output_gate: bool = shared_option("output_gate", True)
    output_norm: Literal["head", "layer", "none"] = shared_option("output_norm", "head")


class GatedDeltaNet(LinearMixer):
    Options = GatedDeltaNetOptions
    feature_l2_eps = L2_EPS

    def __init__(self, d_model: int, n_heads: int, options: GatedDeltaNetOptions | None = None):
        super().__init__(d_model, n_heads, options)
        H = n_heads
        # fla's a_proj and b_proj (d_model -> H each) as one matmul: a in the first H outputs, b in the last H
        # (the same initial values as the two at a seed where H * d_model is a multiple of 16: torch
        # draws normals 16 at a time)
        self.ab_proj = nn.Linear(d_model, 2 * H, bias=False)
        # A ~ U(0, 16) and dt log-uniform in [1e-3, 0.1], dt_bias = softplus^-1(dt): fla/Mamba-2.
        self.A_log = nn.Parameter(torch.empty(H).uniform_(0, 16).clamp_min(1e-4).log())
        dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp_min(1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))

    def qkv(self, x):
        q, k, v = self.project(x)
        g, beta = kernels.gdn_gates(self.ab_proj(x), self.A_log, self.dt_bias)  # [B, T, H] each, g float32
        return q, k, v, {"g": g, "beta": beta}

    def mix(self, q, k, v, extras, output_final_state=False):
        return delta_rule(q, k, v, extras, output_final_state)


@dataclass(frozen=True)
class DeltaNetOptions:
    expand_k: float = shared_option("expand_k", 1.0)
    expand_v: float = shared_option("expand_v", 1.0)
    conv_size: int = shared_option("conv_size", 4)
    output_gate: bool = shared_option("output_gate", False)
    output_norm: Literal["head", "layer", "none"] = shared_option("output_norm", "head")


class DeltaNet(LinearMixer):
    """DeltaNet (Yang et al. 2024): the delta rule without a decay, on the same kernel.

        S_t = (I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t,   o_t = q_t S_t,   beta_t = sigmoid(W_b x_t)

    q, k L2-normalised per head; fla's DeltaNet layer defaults (expand_v 1, no output gate).
    The kernel op takes a log decay: zeros here (g = 0 is plain DeltaNet).
    """

    Options = DeltaNetOptions
    feature_l2_eps = L2_EPS

    def __init__(self, d_model: int, n_heads: int, options: DeltaNetOptions | None = None):
        super().__init__(d_model, n_heads, options)
        self.b_proj = nn.Linear(d_model, n_heads, bias=False)

    def qkv(self, x):
        q, k, v = self.project(x)
        beta = torch.sigmoid(self.b_proj(x))  # [B, T, H]
        return q, k, v, {"g": beta.new_zeros(beta.shape, dtype=torch.float32), "beta": beta}  # g: no decay

    def mix(self, q, k, v, extras, output_final_state=False):
        return delta_rule(q, k, v, extras, output_final_state)

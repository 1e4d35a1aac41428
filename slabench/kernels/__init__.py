"""Sequence-mixing ops on fla's layout ([B, T, H, D], head_first=False), dispatched per device.

    gla(q, k, v, g=None, scale=None, output_final_state=False) -> (o, state)
        S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,  o_t = scale * q_t S_t
        g: None (linear attention), [B, T, H] (per-head decay: RetNet) or [B, T, H, Dk] (GLA).
    delta_rule(q, k, v, g, beta, scale=None, output_final_state=False) -> (o, state)
        gated delta rule (Gated DeltaNet), fla's convention; q, k already L2-normalised.
    sla_gate(src, x, w_down, w_up, b_up, tau) -> (x * softmax(low-rank logits of src / tau)[..., None], gates)
    short_conv(x, weight) -> silu(causal depthwise conv of x [B, T, C] over time), weight [C, W]
    rms_norm_gated(x, g, weight, eps) -> x / rms(x) * weight * silu(g), g optional

state: [B, H, Dk, Dv] when output_final_state, else None. Which implementation runs is chosen
by `dispatch` (project Triton where it suits the shape -> fla -> reference, probed once per
process): gla on sequences up to 1024 tokens runs `gla_fused` (one program per batch and head),
longer ones fla's chunk kernels. `paths_used()` names the paths that ran and `doctor()` explains
the choices.
"""

from __future__ import annotations

import torch

from slabench.kernels.delta_rule import delta_rule_chunk, delta_rule_recurrent
from slabench.kernels.dispatch import OPS, call, doctor, paths_used, reset_paths_used, select
from slabench.kernels.gla import gla_chunk, gla_recurrent
from slabench.kernels.layers import rms_norm_gated_reference, short_conv_reference
from slabench.kernels.sla_gate import sla_gate_reference


def gla(q, k, v, g=None, scale: float | None = None, output_final_state: bool = False):
    """Gated linear attention; per-channel g runs op 'gla', per-head or no decay op 'simple_gla'."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    op = "gla" if g is not None and g.dim() == 4 else "simple_gla"
    return call(op, q, k, v, g, scale, output_final_state)


def delta_rule(q, k, v, g, beta, scale: float | None = None, output_final_state: bool = False):
    """Gated delta rule (fla's chunk_gated_delta_rule with use_qk_l2norm_in_kernel=False)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return call("delta_rule", q, k, v, g, beta, scale, output_final_state)


def sla_gate(src: torch.Tensor, x: torch.Tensor | None, w_down: torch.Tensor, w_up: torch.Tensor, b_up: torch.Tensor,
             tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SLA head gate: gates = softmax((src W_down^T W_up^T + b_up) / tau over H), y = x * gates.

    src [B, T, C], x [B, T, H, D] (None: src split into H heads), W_down [R, C], W_up [H, R],
    b_up [H] -> (y [B, T, H, D], gates [B, T, H] float32)."""
    return call("sla_gate", src, x, w_down, w_up, b_up, tau=tau)


def short_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """silu(causal depthwise conv over time): x [B, T, C], weight [C, W] -> [B, T, C]."""
    return call("short_conv", x, weight)


def rms_norm_gated(x: torch.Tensor, g: torch.Tensor | None, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim of x [..., D] times weight [D], times silu(g [..., D]) if g is given."""
    return call("rms_norm_gated", x, g, weight, eps=eps)


__all__ = [
    "OPS",
    "delta_rule",
    "delta_rule_chunk",
    "delta_rule_recurrent",
    "doctor",
    "gla",
    "gla_chunk",
    "gla_recurrent",
    "paths_used",
    "reset_paths_used",
    "rms_norm_gated",
    "rms_norm_gated_reference",
    "select",
    "short_conv",
    "short_conv_reference",
    "sla_gate",
    "sla_gate_reference",
]

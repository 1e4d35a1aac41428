"""Sequence-mixing ops on fla's layout ([B, T, H, D], head_first=False), dispatched per device.

    gla(q, k, v, g=None, scale=None, output_final_state=False) -> (o, state)
        S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,  o_t = scale * q_t S_t
        g: None (linear attention), [B, T, H] (per-head decay: RetNet) or [B, T, H, Dk] (GLA).
    delta_rule(q, k, v, g, beta, scale=None, output_final_state=False) -> (o, state)
        gated delta rule (Gated DeltaNet), fla's convention; q, k already L2-normalised.
    sla_gate(src, x, w_down, w_up, b_up, tau) -> (x * softmax(low-rank logits of src / tau)[..., None], gates)
        kind="sigmoid": an independent sigmoid per head instead (op 'sla_gate_sigmoid', reference only)
    short_conv(x, weight) -> silu(causal depthwise conv of x [B, T, C] over time), weight [C, W]
    rms_norm_gated(x, g, weight, eps) -> x / rms(x) * weight * silu(g), g optional
    l2norm(x, eps) -> x / sqrt(sum(x^2) + eps) over the last dim (q and k of the delta rule)
    gdn_gates(ab, A_log, dt_bias) -> (g, beta): Gated DeltaNet's decay and write strength
    embedding(weight, idx) -> weight[idx]: the token embedding (its backward, on CUDA)

state: [B, H, Dk, Dv] when output_final_state, else None. Each op has a folder (`gla/`,
`delta_rule/`, `sla_gate/`, `conv/`, `norm/`, `gdn_gates/`, `embedding/`): its pure-torch
reference, the project's Triton kernel where there is one, fla's kernels as adapters, and in
`__init__.py` the op's declaration (candidates in order, probe inputs, the dims it specialises
on) and its public function.
`dispatch` picks a path per device, dtype and dims (project Triton where it suits the shape ->
fla -> reference, probed once per process); `paths_used()` names the paths that ran and
`doctor()` explains the choices. `slabench.kernels.gla` is the op function: import the folder's
modules by their full name (`from slabench.kernels.gla.short import gla_short`).
"""

from __future__ import annotations

import os

# fla autotunes its kernels anew in every process, whether or not Triton's cache holds them
# compiled: the first use of fla's chunk kernels in each grid worker paid it again. With this,
# Triton keeps the winning configs on disk beside the compiled kernels (keyed by kernel, GPU
# and Triton version), so later processes on the machine reuse them. Triton reads it when a
# kernel is decorated, so it is set before anything here imports fla; a user's own value wins.
os.environ.setdefault("TRITON_CACHE_AUTOTUNING", "1")

from slabench.kernels.conv import SHORT_CONV, short_conv, short_conv_reference
from slabench.kernels.delta_rule import DELTA_RULE, delta_rule, delta_rule_chunk, delta_rule_recurrent
from slabench.kernels.dispatch import OPS, doctor, paths_used, register, reset_paths_used, select
from slabench.kernels.embedding import EMBEDDING, embedding, embedding_reference
from slabench.kernels.gdn_gates import GDN_GATES, gdn_gates, gdn_gates_reference
from slabench.kernels.gla import GLA, SIMPLE_GLA, gla, gla_chunk, gla_recurrent
from slabench.kernels.norm import (
    L2NORM,
    RMS_NORM_GATED,
    l2norm,
    l2norm_reference,
    rms_norm_gated,
    rms_norm_gated_reference,
)
from slabench.kernels.sla_gate import SLA_GATE, SLA_GATE_L2, SLA_GATE_SIGMOID, sla_gate, sla_gate_reference

# Every op, in the order `doctor` lists them; a new op's folder adds its declaration here.
register(
    GLA,
    SIMPLE_GLA,
    DELTA_RULE,
    GDN_GATES,
    SLA_GATE,
    SLA_GATE_L2,
    SLA_GATE_SIGMOID,
    SHORT_CONV,
    RMS_NORM_GATED,
    L2NORM,
    EMBEDDING,
)

__all__ = [
    "OPS",
    "delta_rule",
    "delta_rule_chunk",
    "delta_rule_recurrent",
    "doctor",
    "embedding",
    "embedding_reference",
    "gdn_gates",
    "gdn_gates_reference",
    "gla",
    "gla_chunk",
    "gla_recurrent",
    "l2norm",
    "l2norm_reference",
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

"""fla's fused norms as a candidate of the op 'rms_norm_gated' (its own arguments: x, g, weight, eps)."""

from __future__ import annotations


def fla_rms_norm_gated(x, g, weight, eps):
    from fla.modules.norm.fused_norm_gate import rms_norm_gated
    from fla.modules.norm.layernorm import rms_norm

    if g is None:
        return rms_norm(x, weight, None, eps=eps)
    return rms_norm_gated(x, g, weight, None, activation="swish", eps=eps)

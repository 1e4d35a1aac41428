"""fla's fused norms as candidates of the ops 'rms_norm_gated' (x, g, weight, eps) and 'l2norm' (x, eps)."""

from __future__ import annotations


def fla_rms_norm_gated(x, g, weight, eps, out_dtype=None):
    from fla.modules.norm.fused_norm_gate import rms_norm_gated
    from fla.modules.norm.layernorm import rms_norm

    if g is None:
        y = rms_norm(x, weight, None, eps=eps)
    else:
        y = rms_norm_gated(x, g, weight, None, activation="swish", eps=eps)
    return y if out_dtype is None else y.to(out_dtype)


def fla_l2norm(x, eps):
    from fla.modules.norm.l2norm import l2norm

    return l2norm(x.contiguous(), eps=eps)  # it views x as rows: q and k arrive as strided slices

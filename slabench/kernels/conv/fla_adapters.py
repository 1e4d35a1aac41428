"""fla's causal conv1d as a candidate of the op 'short_conv' (its own arguments: x, weight)."""

from __future__ import annotations


def fla_short_conv(x, weight):
    from fla.modules.causal_conv1d import causal_conv1d

    return causal_conv1d(x, weight=weight, activation="silu", backend="triton")[0]

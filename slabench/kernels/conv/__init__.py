"""The short convolution before a recurrent kernel, op 'short_conv'.

    short_conv(x, weight) -> silu(causal depthwise conv of x [B, T, C] over time), weight [C, W]

At synthetic-task sizes this costs more than the recurrence itself when built from ATen ops
(on an H100 the depthwise conv alone took 125 us of gla's 1088 us fwd+bwd at B64 T256 H8 D16,
`slabench profile gla`), and fla's fused kernel still took 118 us per backward call on an H200
in a quick-preset gla training step, on tensors one pass reads in a few microseconds.
Candidates on CUDA, in order: the project's Triton kernel (`fused.py`: one kernel forward,
two backward by default, any channels and lengths, widths up to 8), fla's causal_conv1d (`fla_adapters.py`)
for wider convs or if the project's kernel fails its probe, and the reference (`reference.py`),
which is all the CPU runs. The dims a call specialises on are (channels, width).
"""

from __future__ import annotations

import torch

from slabench.kernels.conv.fla_adapters import fla_short_conv
from slabench.kernels.conv.fused import short_conv_triton, unsuited
from slabench.kernels.conv.reference import short_conv_reference
from slabench.kernels.dispatch import PROBE_T, Op, call


def _probe(device, dtype, dims):
    """Small inputs, PROBE_T long; a float32 weight, as under autocast."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    C, W = dims
    x, weight = torch.randn(2, PROBE_T, C, generator=gen), torch.randn(C, W, generator=gen) / W**0.5
    return [x.to(device, dtype), weight.to(device, torch.float32)], {}


SHORT_CONV = Op(
    "short_conv",
    [
        ("triton_short_conv", short_conv_triton),
        ("fla_causal_conv1d", fla_short_conv),
        ("reference", short_conv_reference),
    ],
    _probe,
    dims_of=lambda args: (args[0].shape[-1], args[1].shape[-1]),  # (channels, width)
    default_dims=(48, 4),
    returns_state=False,
    only={"triton_short_conv": unsuited},
)


def short_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """silu(causal depthwise conv over time): x [B, T, C], weight [C, W] -> [B, T, C]."""
    return call("short_conv", x, weight)


__all__ = ["SHORT_CONV", "short_conv", "short_conv_reference"]

"""The norms around a recurrent kernel: ops 'rms_norm_gated' (after it) and 'l2norm' (q and k
before the delta rule).

    rms_norm_gated(x, g, weight, eps, out_dtype) -> x / rms(x) * weight * silu(g), g optional
    l2norm(x, eps) -> x / sqrt(sum(x^2) + eps) over the last dim

As with the short conv (`slabench/kernels/conv/`), ATen builds each from several small kernels
per call, which at synthetic-task sizes cost as much as the work. On CUDA the project's Triton
norms come first (`fused.py`: one kernel each way, a tile of whole rows a program; the l2norm
reads the strided q and k slices in place), then fla's fused ones (`fla_adapters.py`: their
backward walks rows one at a time, and the l2norm adapter copies the slices first), then the
reference (`reference.py`). The dims a call specialises on are (D, gated) and (D,).
`F.normalize` under bf16 autocast takes eight ATen kernels forward and backward and returns
float32; both fused l2norms keep the input's dtype, which the delta rule's bf16 path wants.
"""

from __future__ import annotations

import torch

from slabench.kernels.dispatch import PROBE_T, Op, call
from slabench.kernels.norm.fla_adapters import fla_l2norm, fla_rms_norm_gated
from slabench.kernels.norm.fused import l2norm_triton, rms_norm_gated_triton, unsuited
from slabench.kernels.norm.reference import l2norm_reference, rms_norm_gated_reference


def _probe(device, dtype, dims):
    """Small inputs, PROBE_T long; a float32 weight, as under autocast."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    D, gated = dims
    x, g, weight = (
        torch.randn(2, PROBE_T, D, generator=gen),
        torch.randn(2, PROBE_T, D, generator=gen),
        1 + torch.rand(D, generator=gen),
    )
    return [x.to(device, dtype), g.to(device, dtype) if gated else None, weight.to(device, torch.float32)], {
        "eps": 1e-6
    }


RMS_NORM_GATED = Op(
    "rms_norm_gated",
    [
        ("triton_rms_norm_gated", rms_norm_gated_triton),
        ("fla_fused_norm_gate", fla_rms_norm_gated),
        ("reference", rms_norm_gated_reference),
    ],
    _probe,
    dims_of=lambda args: (args[0].shape[-1], int(args[1] is not None)),  # (D, gated)
    default_dims=(32, 1),
    returns_state=False,
    only={"triton_rms_norm_gated": unsuited},
)


def _probe_l2norm(device, dtype, dims):
    """q of two heads as the mixers pass it: a slice of a wider projection [2, PROBE_T, 6 D]."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    (D,) = dims
    h = torch.randn(2, PROBE_T, 6 * D, generator=gen).to(device, dtype)
    return [h[..., : 2 * D].view(2, PROBE_T, 2, D)], {"eps": 1e-6}


L2NORM = Op(
    "l2norm",
    [("triton_l2norm", l2norm_triton), ("fla_l2norm", fla_l2norm), ("reference", l2norm_reference)],
    _probe_l2norm,
    dims_of=lambda args: (args[0].shape[-1],),  # (D,)
    default_dims=(16,),
    returns_state=False,
    only={"triton_l2norm": unsuited},
)


def rms_norm_gated(
    x: torch.Tensor, g: torch.Tensor | None, weight: torch.Tensor, eps: float, out_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """RMSNorm over the last dim of x [..., D] times weight [D], times silu(g [..., D]) if g is given;
    in out_dtype if given (else x's, promoted with g's)."""
    return call("rms_norm_gated", x, g, weight, eps=eps, out_dtype=out_dtype)


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x [..., D] / sqrt(sum(x^2) + eps) over the last dim, in x's dtype."""
    return call("l2norm", x, eps=eps)


__all__ = ["L2NORM", "RMS_NORM_GATED", "l2norm", "l2norm_reference", "rms_norm_gated", "rms_norm_gated_reference"]

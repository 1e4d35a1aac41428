"""The SLA head gate: softmax over heads, then scale each head of q (or k) by its gate.

    gates = softmax(logits / tau, over H)     logits: [B, T, H]
    y     = x * gates[..., None]              x: [B, T, H, D]

`sla_gate_reference` is plain torch. `SLAGateTriton` does the softmax and the scaling in one
pass over x, forward and backward, so gating q and k costs one read and one write of each
(the speed target is sla-X within 10% of X). x may be a strided view (q or k split from one
projection): it is read in place, not copied. Gates come back in float32 for diagnostics.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None


def sla_gate_reference(logits: torch.Tensor, x: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x * softmax(logits / tau)[..., None], gates): [B, T, H], [B, T, H, D] -> [B, T, H, D], [B, T, H]."""
    gates = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)) / tau, dim=-1)  # [B, T, H]
    return x * gates[..., None].to(x.dtype), gates


if triton is not None:

    @triton.jit
    def _sla_gate_fwd(logits, x, y, gates, N, inv_tau, sx_n, sx_h, H: tl.constexpr, D: tl.constexpr,
                      BN: tl.constexpr, BH: tl.constexpr, BD: tl.constexpr):
        n = tl.program_id(0) * BN + tl.arange(0, BN)[:, None, None]  # rows (b, t)
        h = tl.arange(0, BH)[None, :, None]
        d = tl.arange(0, BD)[None, None, :]
        row_h = (n < N) & (h < H)  # [BN, BH, 1]
        s = tl.load(logits + n * H + h, mask=row_h, other=float("-inf")).to(tl.float32) * inv_tau
        s = tl.where(row_h, s, float("-inf"))
        e = tl.exp(s - tl.max(s, axis=1, keep_dims=True))
        e = tl.where(row_h, e, 0.0)
        G = e / tl.maximum(tl.sum(e, axis=1, keep_dims=True), 1e-30)  # [BN, BH, 1]
        tl.store(gates + n * H + h, G, mask=row_h)
        mask = row_h & (d < D)
        xv = tl.load(x + n * sx_n + h * sx_h + d, mask=mask, other=0.0)
        tl.store(y + (n * H + h) * D + d, (xv.to(tl.float32) * G).to(xv.dtype), mask=mask)

    @triton.jit
    def _sla_gate_bwd(x, gates, dy, dgates, dlogits, dx, N, inv_tau, sx_n, sx_h, HAS_DG: tl.constexpr,
                      H: tl.constexpr, D: tl.constexpr, BN: tl.constexpr, BH: tl.constexpr, BD: tl.constexpr):
        n = tl.program_id(0) * BN + tl.arange(0, BN)[:, None, None]
        h = tl.arange(0, BH)[None, :, None]
        d = tl.arange(0, BD)[None, None, :]
        row_h = (n < N) & (h < H)
        mask = row_h & (d < D)
        G = tl.load(gates + n * H + h, mask=row_h, other=0.0)  # [BN, BH, 1] float32
        xv = tl.load(x + n * sx_n + h * sx_h + d, mask=mask, other=0.0)
        dyv = tl.load(dy + (n * H + h) * D + d, mask=mask, other=0.0)
        tl.store(dx + (n * H + h) * D + d, (dyv.to(tl.float32) * G).to(xv.dtype), mask=mask)
        dG = tl.sum(dyv.to(tl.float32) * xv.to(tl.float32), axis=2, keep_dims=True)  # [BN, BH, 1]
        if HAS_DG:
            dG += tl.load(dgates + n * H + h, mask=row_h, other=0.0).to(tl.float32)
        ds = G * (dG - tl.sum(G * dG, axis=1, keep_dims=True)) * inv_tau
        tl.store(dlogits + n * H + h, ds, mask=row_h)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """x [B, T, H, D] as is if its (b, t) rows have one stride and d is contiguous, else a copy."""
    B, T = x.shape[:2]
    return x if x.stride(-1) == 1 and (B == 1 or x.stride(0) == T * x.stride(1)) else x.contiguous()


def _blocks(H: int, D: int) -> tuple[int, int, int]:
    BH, BD = triton.next_power_of_2(H), triton.next_power_of_2(D)
    return max(1, 4096 // (BH * BD)), BH, BD


class SLAGateTriton(torch.autograd.Function):
    """Fused softmax-over-heads gate; same contract as `sla_gate_reference`."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor, tau: float):
        x, logits = _rows(x), logits.contiguous()
        B, T, H, D = x.shape
        N = B * T
        y = torch.empty(x.shape, device=x.device, dtype=x.dtype)  # contiguous, whatever x's strides
        gates = torch.empty(B, T, H, device=x.device, dtype=torch.float32)
        BN, BH, BD = _blocks(H, D)
        _sla_gate_fwd[(triton.cdiv(N, BN),)](logits, x, y, gates, N, 1.0 / tau, x.stride(1), x.stride(2),
                                             H, D, BN, BH, BD)
        ctx.save_for_backward(x, gates)
        ctx.tau, ctx.logits_dtype = tau, logits.dtype
        return y, gates

    @staticmethod
    def backward(ctx, dy: torch.Tensor, dgates: torch.Tensor | None):
        x, gates = ctx.saved_tensors
        B, T, H, D = x.shape
        N = B * T
        dy = dy.contiguous()
        dx = torch.empty(x.shape, device=x.device, dtype=x.dtype)
        dlogits = torch.empty(B, T, H, device=x.device, dtype=torch.float32)
        has_dg = dgates is not None
        dg = dgates.contiguous() if has_dg else gates  # a placeholder pointer when absent
        BN, BH, BD = _blocks(H, D)
        _sla_gate_bwd[(triton.cdiv(N, BN),)](x, gates, dy, dg, dlogits, dx, N, 1.0 / ctx.tau, x.stride(1), x.stride(2),
                                             has_dg, H, D, BN, BH, BD)
        return dlogits.to(ctx.logits_dtype), dx, None


def sla_gate_triton(logits: torch.Tensor, x: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    return SLAGateTriton.apply(logits, x, tau)

"""The norms in Triton, forward and backward: the L2 norm of q and k (same op as
`l2norm_reference`) and the gated RMS norm (same op as `rms_norm_gated_reference`).

L2 norm.
Per row (one token and head) x [D], with r = (sum x^2 + eps)^-1/2:

    y = x r,    dx = r (dy - y sum(dy y))

The delta-rule mixers normalise q and k, which are strided slices of one projection (after its
short conv): [B, T, H, D] with the channels of q, k and v interleaved per token. fla's l2norm
views its input as contiguous rows, so its adapter copies each slice first (two 4 MB copies a
call at B64 T256 H8 D16, about as long as the two norms themselves). Here the forward reads the
slice in place (a row's offset from its batch, time and head strides) and writes y contiguous,
with r in float32 for the backward; the backward reads y, dy and r and writes dx contiguous.
A program takes BR rows of D columns, whole rows, so each sum is one in-register reduction.

Gated RMS norm. Per row x [D], with r = (mean x^2 + eps)^-1/2, n = x r, a = n w and s = silu(g)
(s = 1 without a gate):

    y = a s,   dg = dy a silu'(g),   dw = sum_rows dy s n,   dx = r (dn - n mean(dn n)), dn = dy s w

fla's fused norm walks its rows one at a time in as many programs as the GPU has SMs (each
program's share of dw accumulates across its rows), so at synthetic-task sizes, tens of thousands
of rows of 16 to 128 columns, its backward is a serial loop of hundreds of tiny steps per program:
33 us per call for 65,536 rows of 32 in a quick-preset step on an H200, where one pass over them
takes a few. Here a program takes [BR, D] tiles of whole rows at once, a run of consecutive tiles in
the backward, adding its rows' terms of dw elementwise in registers; its share of dw (one sum over
the rows at the end) goes into a float32 buffer [programs, D] that one torch sum finishes
(deterministic, no atomics). With one tile a program and the sum per tile, the backward at 65,536
rows of 128 (the SLA twins' norm over all heads, B16 T4096) took 168 us on an H200 against 45 us at
rows of 16 (the same elements), and the [8192, 128] buffer's torch sum came on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None

MAX_DIM = 1024  # widest row one program holds


@dataclass(frozen=True)
class NormConfig:
    """Launch settings of both norms: about 1024 elements a tile (64 rows of 16: 2048 tiles at B64
    T256 H8), 4 warps, and at most `programs` programs in the RMS norm's backward (runs of tiles
    each). Compiled for sm_90 (ptxas), the four kernels use 23-72 registers a thread at D 16 to
    1024, no spills; at 4096 elements the gated backward used 255 and spilled 88-148 bytes."""

    block_elements: int = 1024
    num_warps: int = 4
    programs: int = 1024


def unsuited(dims: tuple[int]) -> str | None:
    """Why this path does not suit a call of dispatch dims (D,), or None if it does."""
    return None if dims[0] <= MAX_DIM else f"only for rows <= {MAX_DIM} wide"


if triton is not None:

    @triton.jit
    def _l2norm_fwd(x, y, rstd, R, T, H, sx_b, sx_t, sx_h, eps, D: tl.constexpr, BR: tl.constexpr, BD: tl.constexpr):
        """y [R, D] contiguous and rstd [R] (float32) for rows program_id(0) of x [B, T, H, D] (strided,
        rows in (b, t, h) order)."""
        r = tl.program_id(0) * BR + tl.arange(0, BR)  # [BR]
        d = tl.arange(0, BD)  # [BD]
        b, t, h = r // (T * H), (r // H) % T, r % H
        row = b.to(tl.int64) * sx_b + t.to(tl.int64) * sx_t + h.to(tl.int64) * sx_h  # [BR]
        mask = (r[:, None] < R) & (d[None, :] < D)
        xr = tl.load(x + row[:, None] + d[None, :], mask=mask, other=0.0).to(tl.float32)  # [BR, BD]
        rs = tl.rsqrt(tl.sum(xr * xr, axis=1) + eps)  # [BR]
        tl.store(y + r[:, None].to(tl.int64) * D + d[None, :], (xr * rs[:, None]).to(y.dtype.element_ty), mask=mask)
        tl.store(rstd + r, rs, mask=r < R)

    @triton.jit
    def _l2norm_bwd(y, dy, dx, rstd, R, D: tl.constexpr, BR: tl.constexpr, BD: tl.constexpr):
        """dx [R, D] for rows program_id(0), from y, dy [R, D] (contiguous) and rstd [R]."""
        r = tl.program_id(0) * BR + tl.arange(0, BR)  # [BR]
        d = tl.arange(0, BD)  # [BD]
        mask = (r[:, None] < R) & (d[None, :] < D)
        at = r[:, None].to(tl.int64) * D + d[None, :]
        yr = tl.load(y + at, mask=mask, other=0.0).to(tl.float32)  # [BR, BD]
        g = tl.load(dy + at, mask=mask, other=0.0).to(tl.float32)
        rs = tl.load(rstd + r, mask=r < R, other=0.0)  # [BR]
        tl.store(dx + at, (rs[:, None] * (g - yr * tl.sum(g * yr, axis=1)[:, None])).to(dx.dtype.element_ty), mask=mask)

    @triton.jit
    def _rms_fwd(x, g, w, y, rstd, R, eps, D: tl.constexpr, BR: tl.constexpr, BD: tl.constexpr, GATED: tl.constexpr):
        """y [R, D] and rstd [R] (float32) for rows program_id(0) of x (and g) [R, D], all contiguous."""
        r = tl.program_id(0) * BR + tl.arange(0, BR)  # [BR]
        d = tl.arange(0, BD)  # [BD]
        mask = (r[:, None] < R) & (d[None, :] < D)
        at = r[:, None].to(tl.int64) * D + d[None, :]
        xr = tl.load(x + at, mask=mask, other=0.0).to(tl.float32)  # [BR, BD]
        rs = tl.rsqrt(tl.sum(xr * xr, axis=1) / D + eps)  # [BR]
        out = xr * rs[:, None] * tl.load(w + d, mask=d < D, other=0.0).to(tl.float32)[None, :]
        if GATED:
            gr = tl.load(g + at, mask=mask, other=0.0).to(tl.float32)
            out *= gr * tl.sigmoid(gr)
        tl.store(y + at, out.to(y.dtype.element_ty), mask=mask)
        tl.store(rstd + r, rs, mask=r < R)

    @triton.jit(do_not_specialize=["steps"])  # one compile whatever the number of rows
    def _rms_bwd(
        x,
        g,
        w,
        rstd,
        dy,
        dx,
        dg,
        dw,
        R,
        steps,
        D: tl.constexpr,
        BR: tl.constexpr,
        BD: tl.constexpr,
        GATED: tl.constexpr,
    ):
        """dx (and dg) [R, D] for the `steps` tiles of BR rows from program_id(0) * steps, and their
        share of dw into dw[program_id(0)] [D]."""
        d = tl.arange(0, BD)  # [BD]
        wr = tl.load(w + d, mask=d < D, other=0.0).to(tl.float32)  # [BD]
        acc = tl.zeros([BR, BD], dtype=tl.float32)  # dw's terms; summed over rows once, at the end
        for s in range(steps):
            r = (tl.program_id(0) * steps + s) * BR + tl.arange(0, BR)  # [BR]
            mask = (r[:, None] < R) & (d[None, :] < D)
            at = r[:, None].to(tl.int64) * D + d[None, :]
            xr = tl.load(x + at, mask=mask, other=0.0).to(tl.float32)  # [BR, BD]
            rs = tl.load(rstd + r, mask=r < R, other=0.0)  # [BR]
            n = xr * rs[:, None]
            da = tl.load(dy + at, mask=mask, other=0.0).to(tl.float32)  # dy, then the gradient of a = n w
            if GATED:
                gr = tl.load(g + at, mask=mask, other=0.0).to(tl.float32)
                sg = tl.sigmoid(gr)
                dgr = da * n * wr[None, :] * sg * (1.0 + gr * (1.0 - sg))
                tl.store(dg + at, dgr.to(dg.dtype.element_ty), mask=mask)
                da *= gr * sg
            acc += da * n  # masked rows add 0
            dn = da * wr[None, :]
            dxr = rs[:, None] * (dn - n * (tl.sum(dn * n, axis=1) / D)[:, None])
            tl.store(dx + at, dxr.to(dx.dtype.element_ty), mask=mask)
        tl.store(dw + tl.program_id(0) * D + d, tl.sum(acc, axis=0), mask=d < D)


def _meta(D: int, config: NormConfig) -> dict:
    BD = triton.next_power_of_2(D)
    return {"D": D, "BD": BD, "BR": max(1, config.block_elements // BD), "num_warps": config.num_warps}


class L2NormTriton(torch.autograd.Function):
    """`l2norm` in one Triton kernel per direction; same contract as `l2norm_reference`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float, config: NormConfig):
        shape, D = x.shape, x.shape[-1]
        x4 = x if x.dim() == 4 else x.reshape(1, 1, -1, D)  # [B, T, H, D]
        if x4.stride(-1) != 1:
            x4 = x4.contiguous()
        B, T, H, _ = x4.shape
        R = B * T * H
        meta = _meta(D, config)
        y = torch.empty(R, D, device=x.device, dtype=x.dtype)
        rstd = torch.empty(R, device=x.device, dtype=torch.float32)
        if R:
            _l2norm_fwd[(triton.cdiv(R, meta["BR"]),)](
                x4, y, rstd, R, T, H, x4.stride(0), x4.stride(1), x4.stride(2), eps, **meta
            )
        ctx.save_for_backward(y, rstd)
        ctx.config = config
        return y.view(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        y, rstd = ctx.saved_tensors
        R, D = y.shape
        dy2 = dy.reshape(R, D).contiguous()
        meta = _meta(D, ctx.config)
        dx = torch.empty(R, D, device=y.device, dtype=y.dtype)
        if R:
            _l2norm_bwd[(triton.cdiv(R, meta["BR"]),)](y, dy2, dx, rstd, R, **meta)
        return dx.view(dy.shape), None, None


def l2norm_triton(x: torch.Tensor, eps: float = 1e-6, config: NormConfig = NormConfig()) -> torch.Tensor:
    """x [..., D] / sqrt(sum(x^2) + eps) over the last dim, in x's dtype, through `L2NormTriton`."""
    return L2NormTriton.apply(x, eps, config)


class RMSNormGatedTriton(torch.autograd.Function):
    """`rms_norm_gated` in one Triton kernel per direction; same contract as `rms_norm_gated_reference`."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        g: torch.Tensor | None,
        weight: torch.Tensor,
        eps: float,
        out_dtype: torch.dtype | None,
        config: NormConfig,
    ):
        shape, D = x.shape, x.shape[-1]
        x2 = x.reshape(-1, D).contiguous()  # [R, D]
        g2 = None if g is None else g.reshape(-1, D).contiguous()
        R = x2.shape[0]
        meta = _meta(D, config)
        dtype = out_dtype or (x.dtype if g is None else torch.promote_types(x.dtype, g.dtype))  # as the reference
        y = torch.empty(R, D, device=x.device, dtype=dtype)
        rstd = torch.empty(R, device=x.device, dtype=torch.float32)
        if R:
            _rms_fwd[(triton.cdiv(R, meta["BR"]),)](
                x2, x2 if g2 is None else g2, weight, y, rstd, R, eps, GATED=g2 is not None, **meta
            )
        ctx.save_for_backward(x2, g2, weight, rstd)
        ctx.config, ctx.gated = config, g2 is not None
        return y.view(shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x2, g2, weight, rstd = ctx.saved_tensors
        R, D = x2.shape
        dy2 = dy.reshape(R, D).contiguous()
        meta = _meta(D, ctx.config)
        tiles = triton.cdiv(R, meta["BR"])
        steps = max(1, triton.cdiv(tiles, ctx.config.programs))  # tiles a program
        grid = (triton.cdiv(tiles, steps),)
        dx = torch.empty_like(x2)
        dg = torch.empty_like(g2) if ctx.gated else None
        dw = torch.empty(grid[0], D, device=x2.device, dtype=torch.float32)  # every program writes its share
        if R:
            _rms_bwd[grid](
                x2,
                x2 if g2 is None else g2,
                weight,
                rstd,
                dy2,
                dx,
                dx if dg is None else dg,
                dw,
                R,
                steps,
                GATED=ctx.gated,
                **meta,
            )
        dweight = dw.sum(0).to(weight.dtype)  # no rows: an empty sum, zeros
        return dx.view(dy.shape), None if dg is None else dg.view(dy.shape), dweight, None, None, None


def rms_norm_gated_triton(
    x: torch.Tensor,
    g: torch.Tensor | None,
    weight: torch.Tensor,
    eps: float,
    out_dtype: torch.dtype | None = None,
    config: NormConfig = NormConfig(),
) -> torch.Tensor:
    """x / rms(x) * weight (* silu(g)) over the last dim, in out_dtype if given, else x's dtype
    (promoted with g's), through `RMSNormGatedTriton`."""
    return RMSNormGatedTriton.apply(x, g, weight, eps, out_dtype, config)

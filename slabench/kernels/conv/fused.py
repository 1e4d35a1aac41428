"""The short convolution in Triton, forward and backward; same op as `short_conv_reference`.

x [B, T, C], weight [C, W] (a few taps: 4 by default in every mixer), per channel c and time t:

    a[t, c]  = sum_{j < W} w[c, j] * x[t - (W-1) + j, c]      (x is zero before t = 0)
    y[t, c]  = silu(a[t, c])

which is the reference's F.conv1d (a cross-correlation) over x padded by W - 1 zeros in front,
cut to its first T outputs: tap W - 1 weighs the current step, tap 0 the oldest. Backward, with
da = dy * silu'(a) and silu'(a) = s (1 + a (1 - s)), s = sigmoid(a):

    dx[t, c] = sum_{j < W} w[c, j] * da[t + (W-1) - j, c]     (da is zero from t = T on)
    dw[c, j] = sum_{b, t} da[t, c] * x[t - (W-1) + j, c]

fla's causal_conv1d took 118 us per backward call in a quick-preset gla training step on an H200
(B128 T128, 256 channels: 8 MB of x in bf16), where one pass over x and dy takes a few
microseconds. Here the forward is one kernel, and the backward one or two, over a grid of
(batch x blocks of BT steps, blocks of BC channels). A program loads its x tile once per tap, each
load shifted one step back (a halo of W - 1 earlier rows; the repeats should hit the cache, so x
is read about once from memory), and works in float32.

The backward recomputes a rather than saving it: saving would write and read back a float32
copy of the activation (twice x's bytes in bf16), while recomputing costs W multiply-adds per
element and re-reads x rows already in cache. dx at rows t needs da at rows t .. t + W - 1, so
the one-kernel form recomputes a at each of those W shifts (W^2 cached tile loads, 16 at W = 4).
dw sums over batch and time: each program writes its share for its own rows into a float32 buffer
[B x time blocks, C, W] and one torch sum finishes it, deterministically (no atomics). By
default the backward runs as two kernels (`ShortConvConfig.split_backward`): da once per element
into a float32 buffer, with dw's shares, then dx from W shifted reads of da: one sigmoid and
2 W + W tile loads per element instead of W sigmoids and W^2 loads, for a float32 round trip of da
(measured faster in a whole mixer layer on an H200).

Inputs may be strided in batch and time (only the channel dim must be contiguous); y and dx
come back contiguous in x's dtype, dw in the weight's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None

MAX_WIDTH = 8  # widest conv the kernels unroll (the backward unrolls W^2 tile loads); the mixers use 4


@dataclass(frozen=True)
class ShortConvConfig:
    """Launch settings, chosen by timing a whole mixer layer in CUDA-graph replay on an H200
    (`scripts/glue-bench.py`; docs/speed.md): 64 x 32 tiles (steps x channels) at 4 warps were the
    fastest of six (32 x 64, 16 x 64, 32 x 32, 64 x 32, 64 x 16, 16 x 32 at 4 and 8 warps) for gla,
    gdn and sla-gdn at B64 T256 and B16 T4096, 0.09 ms under 16 x 32 on gdn at B16 T4096.
    Compiled for sm_90 (ptxas), the one-kernel backward at 64 x 32 uses 255 registers a thread and
    spills 396 bytes (16 x 32: 96, no spills) and is still the fastest one-kernel form: its W x W
    recomputed tiles reuse more rows a program, and the spills stay in cache."""

    block_t: int = 64  # time steps per program
    block_c: int = 32  # channels per program (at least 16: a 32-channel row of bf16 is one 64-byte load)
    num_warps: int = 4
    # The backward as two kernels: da = dy silu'(a) once per element into a float32 buffer, then
    # dx from W shifted loads of it; one kernel instead recomputes a at W shifts (W^2 tile loads
    # and W sigmoids per element). Two kernels at 64 x 32 were the fastest layer of all nine conv
    # settings timed on an H200: gdn 0.645 vs 0.665 ms at B64 T256 and 2.115 vs 2.173 ms at
    # B16 T4096, gla 0.435 vs 0.446 and 2.841 vs 2.880 (`leaderboards/speed/raw/glue-bench-split-h200.jsonl`).
    split_backward: bool = True


def unsuited(dims: tuple[int, int]) -> str | None:
    """Why this path does not suit a call of dispatch dims (channels, width), or None if it does."""
    return None if dims[1] <= MAX_WIDTH else f"only for widths <= {MAX_WIDTH}"


if triton is not None:

    @triton.jit
    def _conv(x, w, t, T, c, C, sx_t, W: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
        """a [BT, BC] in float32 at rows t of one sequence x [T, C]: sum_j w[c, j] x[t - (W-1) + j, c],
        with x zero outside [0, T) (rows from T on come out wrong; callers mask them)."""
        a = tl.zeros([BT, BC], dtype=tl.float32)
        for j in tl.static_range(W):
            r = t - (W - 1) + j  # [BT] the rows tap j reads
            mask = (r[:, None] >= 0) & (r[:, None] < T) & (c[None, :] < C)
            xj = tl.load(x + r[:, None] * sx_t + c[None, :], mask=mask, other=0.0).to(tl.float32)  # [BT, BC]
            wj = tl.load(w + c * W + j, mask=c < C, other=0.0).to(tl.float32)  # [BC]
            a += wj[None, :] * xj
        return a

    @triton.jit
    def _block(T, BT: tl.constexpr, BC: tl.constexpr):
        """This program's batch, rows t [BT] and channels c [BC], from a grid of (B x time blocks,
        channel blocks)."""
        n_t = tl.cdiv(T, BT)
        t = (tl.program_id(0) % n_t) * BT + tl.arange(0, BT)  # [BT]
        return tl.program_id(0) // n_t, t, tl.program_id(1) * BC + tl.arange(0, BC)  # batch, [BT], [BC]

    @triton.jit
    def _silu_grad(g, a):
        """dy silu'(a) in float32 for dy tile g: silu'(a) = s (1 + a (1 - s)), s = sigmoid(a)."""
        s = tl.sigmoid(a)
        return g.to(tl.float32) * s * (1.0 + a * (1.0 - s))

    @triton.jit
    def _dw_share(x, da, dw, t, T, c, C, sx_t, W: tl.constexpr, BT: tl.constexpr):
        """This program's share of dw, sum over rows t of da[t] x[t - (W-1) + i] for each tap i, into
        row program_id(0) of dw [B x time blocks, C, W]; da [BT, BC] is zero at rows from T on."""
        for i in tl.static_range(W):
            r = t - (W - 1) + i  # [BT] rows tap i read for outputs t
            mask = (r[:, None] >= 0) & (r[:, None] < T) & (c[None, :] < C)
            xi = tl.load(x + r[:, None] * sx_t + c[None, :], mask=mask, other=0.0).to(tl.float32)
            tl.store(dw + (tl.program_id(0) * C + c) * W + i, tl.sum(da * xi, axis=0), mask=c < C)

    @triton.jit
    def _conv_fwd(x, w, y, T, C, sx_b, sx_t, W: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
        """y = silu(a) for one (batch, time block, channel block); y contiguous [B, T, C]."""
        i_b, t, c = _block(T, BT, BC)
        x += i_b.to(tl.int64) * sx_b  # 64-bit: B T C may pass 2^31 elements
        a = _conv(x, w, t, T, c, C, sx_t, W, BT, BC)  # [BT, BC]
        y += i_b.to(tl.int64) * T * C
        mask = (t[:, None] < T) & (c[None, :] < C)
        tl.store(y + t[:, None] * C + c[None, :], (a * tl.sigmoid(a)).to(y.dtype.element_ty), mask=mask)

    @triton.jit
    def _conv_bwd(
        x, w, dy, dx, dw, T, C, sx_b, sx_t, sdy_b, sdy_t, W: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr
    ):
        """dx for one (batch, time block, channel block), and this block's share of dw into row
        program_id(0) of dw [B x time blocks, C, W] (float32); dx contiguous [B, T, C]."""
        i_b, t, c = _block(T, BT, BC)
        x += i_b.to(tl.int64) * sx_b
        dy += i_b.to(tl.int64) * sdy_b
        dxt = tl.zeros([BT, BC], dtype=tl.float32)
        for j in tl.static_range(W):  # dx[t] += w[c, j] da[t + s], s = W - 1 - j: tap j of a later output
            u = t + (W - 1 - j)  # [BT] the output rows whose tap j reads rows t
            a = _conv(x, w, u, T, c, C, sx_t, W, BT, BC)  # recomputed: [BT, BC]
            g = tl.load(dy + u[:, None] * sdy_t + c[None, :], mask=(u[:, None] < T) & (c[None, :] < C), other=0.0)
            da = _silu_grad(g, a)  # [BT, BC], zero from row T on (dy masked)
            dxt += tl.load(w + c * W + j, mask=c < C, other=0.0).to(tl.float32)[None, :] * da
            if j == W - 1:  # u = t: da at this program's own rows, so each row's share of dw is counted once
                _dw_share(x, da, dw, t, T, c, C, sx_t, W, BT)
        dx += i_b.to(tl.int64) * T * C
        mask = (t[:, None] < T) & (c[None, :] < C)
        tl.store(dx + t[:, None] * C + c[None, :], dxt.to(dx.dtype.element_ty), mask=mask)

    @triton.jit
    def _conv_bwd_da(
        x, w, dy, da, dw, T, C, sx_b, sx_t, sdy_b, sdy_t, W: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr
    ):
        """da = dy silu'(a) for one (batch, time block, channel block) into da [B, T, C] (float32,
        contiguous), and this block's share of dw into row program_id(0) of dw [B x time blocks, C, W]."""
        i_b, t, c = _block(T, BT, BC)
        x += i_b.to(tl.int64) * sx_b
        dy += i_b.to(tl.int64) * sdy_b
        mask = (t[:, None] < T) & (c[None, :] < C)
        a = _conv(x, w, t, T, c, C, sx_t, W, BT, BC)  # [BT, BC]
        d = _silu_grad(tl.load(dy + t[:, None] * sdy_t + c[None, :], mask=mask, other=0.0), a)  # zero from row T on
        tl.store(da + i_b.to(tl.int64) * T * C + t[:, None] * C + c[None, :], d, mask=mask)
        _dw_share(x, d, dw, t, T, c, C, sx_t, W, BT)

    @triton.jit
    def _conv_bwd_dx(da, w, dx, T, C, W: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
        """dx[t] = sum_j w[c, j] da[t + (W-1) - j] for one (batch, time block, channel block); da (float32)
        and dx contiguous [B, T, C]."""
        i_b, t, c = _block(T, BT, BC)
        da += i_b.to(tl.int64) * T * C
        dx += i_b.to(tl.int64) * T * C
        dxt = tl.zeros([BT, BC], dtype=tl.float32)
        for j in tl.static_range(W):
            u = t + (W - 1 - j)  # [BT] the output rows whose tap j reads rows t
            m = (u[:, None] < T) & (c[None, :] < C)
            d = tl.load(da + u[:, None] * C + c[None, :], mask=m, other=0.0)  # [BT, BC]
            dxt += tl.load(w + c * W + j, mask=c < C, other=0.0).to(tl.float32)[None, :] * d
        mask = (t[:, None] < T) & (c[None, :] < C)
        tl.store(dx + t[:, None] * C + c[None, :], dxt.to(dx.dtype.element_ty), mask=mask)


def _meta(C: int, W: int, config: ShortConvConfig) -> dict:
    """Block sizes (powers of two, at least 16 channels for whole-row loads) and warps."""
    return {
        "W": W,
        "BT": config.block_t,
        "BC": max(16, min(config.block_c, triton.next_power_of_2(C))),
        "num_warps": config.num_warps,
    }


def _rows_contiguous(t: torch.Tensor) -> torch.Tensor:
    """t itself when its channel dim is contiguous (a slice of a wider projection is), else a copy."""
    return t if t.stride(-1) == 1 else t.contiguous()


class ShortConvTriton(torch.autograd.Function):
    """`short_conv` in one Triton kernel per direction; same contract as `short_conv_reference`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, config: ShortConvConfig):
        x, w = _rows_contiguous(x), weight.contiguous()  # x [B, T, C], w [C, W] (a view of [C, 1, W])
        B, T, C = x.shape
        meta = _meta(C, w.shape[-1], config)
        y = torch.empty(B, T, C, device=x.device, dtype=x.dtype)  # contiguous
        grid = (B * triton.cdiv(T, meta["BT"]), triton.cdiv(C, meta["BC"]))
        if y.numel():
            _conv_fwd[grid](x, w, y, T, C, x.stride(0), x.stride(1), **meta)
        ctx.save_for_backward(x, w)
        ctx.config, ctx.weight_dtype = config, weight.dtype
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, w = ctx.saved_tensors
        dy = _rows_contiguous(dy)  # [B, T, C]
        B, T, C = x.shape
        W = w.shape[-1]
        meta = _meta(C, W, ctx.config)
        grid = (B * triton.cdiv(T, meta["BT"]), triton.cdiv(C, meta["BC"]))
        dx = torch.empty(B, T, C, device=x.device, dtype=x.dtype)  # contiguous
        dw = torch.empty(grid[0], C, W, device=x.device, dtype=torch.float32)  # every program writes its share
        strides = (x.stride(0), x.stride(1), dy.stride(0), dy.stride(1))
        if dx.numel() and ctx.config.split_backward:
            da = torch.empty(B, T, C, device=x.device, dtype=torch.float32)
            _conv_bwd_da[grid](x, w, dy, da, dw, T, C, *strides, **meta)
            _conv_bwd_dx[grid](da, w, dx, T, C, **meta)
        elif dx.numel():
            _conv_bwd[grid](x, w, dy, dx, dw, T, C, *strides, **meta)
        return dx, dw.sum(0).to(ctx.weight_dtype), None


def short_conv_triton(
    x: torch.Tensor, weight: torch.Tensor, config: ShortConvConfig = ShortConvConfig()
) -> torch.Tensor:
    """silu(causal depthwise conv over time) through `ShortConvTriton`: x [B, T, C], weight [C, W] -> [B, T, C]."""
    return ShortConvTriton.apply(x, weight, config)

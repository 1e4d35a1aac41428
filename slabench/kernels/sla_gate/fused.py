"""The SLA head gate fused in Triton; same op as `sla_gate_reference` (`reference.py`).

`SLAGateTriton` does the whole gate in one pass over the rows (b, t), forward and backward: the two projections, the
softmax and the scaling, and in the backward the gradients of src, x and the three weights. The
unfused gate was about twenty small kernels per mixer (projections, weight casts, their
gradients, the softmax and the scaling); at synthetic-task sizes those launches, not the
arithmetic, were the SLA overhead. Weight gradients are summed per block of rows and the blocks
reduced by one torch sum, so they are deterministic (no atomics). When x is None (the gate reads
the very q it scales, as with an identity feature map) the two gradients of that tensor are
added in the kernel. With an L2 feature map (GDN, DeltaNet) the kernel also normalises src's heads
before scaling them (`sla_gate_l2_triton`): the separate L2 norm's kernels, its normalised copy of
src and the sum of src's two gradients drop out. src and x may be strided views (splits of one
projection): they are read in place. Gates come back in float32 for diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None


if triton is not None:

    @triton.jit
    def _down(src, wd, rows, s_src, N, C: tl.constexpr, R: tl.constexpr, BN: tl.constexpr, BC: tl.constexpr,
              BR: tl.constexpr, PREC: tl.constexpr):
        """r = src[rows] @ W_down^T: [BN, BR] float32, over column blocks of BC."""
        r_ = tl.arange(0, BR)
        acc = tl.zeros([BN, BR], dtype=tl.float32)
        for c0 in range(0, C, BC):
            c = c0 + tl.arange(0, BC)
            s = tl.load(src + rows[:, None] * s_src + c[None, :], mask=(rows[:, None] < N) & (c[None, :] < C), other=0.0)
            w = tl.load(wd + r_[None, :] * C + c[:, None], mask=(r_[None, :] < R) & (c[:, None] < C), other=0.0)
            acc += tl.dot(s, w.to(s.dtype), input_precision=PREC)  # [BN, BC] @ [BC, BR]
        return acc

    @triton.jit
    def _gates(src, wd, wu, bu, rows, s_src, N, inv_tau, C: tl.constexpr, H: tl.constexpr, R: tl.constexpr,
               BN: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr, BH: tl.constexpr, PREC: tl.constexpr):
        """(r [BN, BR], G [BN, BH]): the down projection and the softmax over heads (0 on padding).

        The head-sized products are a head at a time, not tl.dot: H and R are a few, below the 16 a
        dot needs. Not as [BN, H, R] broadcast sums either: on the H100 (Triton 3.6) the sum over
        the heads axis of such a tile came out wrong for H <= 4, exact in the interpreter."""
        r = _down(src, wd, rows, s_src, N, C, R, BN, BC, BR, PREC)  # [BN, BR]
        h_, r_ = tl.arange(0, BH), tl.arange(0, BR)
        logits = tl.zeros([BN, BH], dtype=tl.float32)
        for h in range(H):
            wu_h = tl.load(wu + h * R + r_, mask=r_ < R, other=0.0).to(tl.float32)  # [BR]
            logits += tl.where(h_[None, :] == h, tl.sum(r * wu_h[None, :], axis=1)[:, None], 0.0)
        logits += tl.load(bu + h_, mask=h_ < H, other=0.0).to(tl.float32)[None, :]
        logits = tl.where(h_[None, :] < H, logits * inv_tau, float("-inf"))
        e = tl.exp(logits - tl.max(logits, axis=1)[:, None])
        return r, e / tl.sum(e, axis=1)[:, None]

    @triton.jit
    def _head(G, h, BH: tl.constexpr):
        """Column h of G [BN, BH] as [BN, 1] (registers cannot be indexed: a masked sum picks it)."""
        return tl.sum(tl.where(tl.arange(0, BH)[None, :] == h, G, 0.0), axis=1)[:, None]

    @triton.jit
    def _l2(xf, eps):
        """(the float32 head tile xf [BN, BD] normalised per row, its rows' 1 / norms [BN, 1])."""
        rs = tl.rsqrt(tl.sum(xf * xf, axis=1) + eps)[:, None]
        return xf * rs, rs

    @triton.jit
    def _sla_gate_fwd(src, x, wd, wu, bu, y, gates, N, inv_tau, eps, s_src, s_x, C: tl.constexpr, H: tl.constexpr,
                      D: tl.constexpr, R: tl.constexpr, L2: tl.constexpr, BN: tl.constexpr, BC: tl.constexpr,
                      BR: tl.constexpr, BH: tl.constexpr, BD: tl.constexpr, PREC: tl.constexpr):
        """y = x * G per head and the gates G for this program's rows (x is src itself when Python got x None;
        L2: x's heads normalised first)."""
        rows = tl.program_id(0) * BN + tl.arange(0, BN)  # (b, t) rows
        h_, d_ = tl.arange(0, BH), tl.arange(0, BD)
        _, G = _gates(src, wd, wu, bu, rows, s_src, N, inv_tau, C, H, R, BN, BC, BR, BH, PREC)  # [BN, BH]
        tl.store(gates + rows[:, None] * H + h_[None, :], G, mask=(rows[:, None] < N) & (h_[None, :] < H))
        mask = (rows[:, None] < N) & (d_[None, :] < D)
        for h in range(H):  # one head's [BN, D] columns at a time
            xv = tl.load(x + rows[:, None] * s_x + h * D + d_[None, :], mask=mask, other=0.0)  # [BN, BD]
            xf = xv.to(tl.float32)
            if L2:
                xf = _l2(xf, eps)[0]
            yv = xf * _head(G, h, BH)
            tl.store(y + rows[:, None] * (H * D) + h * D + d_[None, :], yv.to(xv.dtype), mask=mask)

    @triton.jit
    def _sla_gate_bwd(src, x, wd, wu, bu, dy, dgates, dsrc, dx, dw, N, inv_tau, eps, s_src, s_x, C: tl.constexpr,
                      H: tl.constexpr, D: tl.constexpr, R: tl.constexpr, L2: tl.constexpr, SAME: tl.constexpr,
                      HAS_DG: tl.constexpr, BN: tl.constexpr, BC: tl.constexpr, BR: tl.constexpr, BH: tl.constexpr,
                      BD: tl.constexpr, PREC: tl.constexpr):
        """dsrc, dx per row; this block's sums of dW_down [R, C], dW_up [H, R], db [H] into its row of dw.
        L2 (with SAME): y_h = n_h G_h with n_h = s_h / |s_h|, so dG_h = dy_h . n_h and the scaling's share of
        dsrc_h is G_h (dy_h - n_h (dy_h . n_h)) / |s_h|."""
        pid = tl.program_id(0)
        rows = pid * BN + tl.arange(0, BN)
        r_, h_, d_ = tl.arange(0, BR), tl.arange(0, BH), tl.arange(0, BD)
        r, G = _gates(src, wd, wu, bu, rows, s_src, N, inv_tau, C, H, R, BN, BC, BR, BH, PREC)  # [BN, BR], [BN, BH]
        mask = (rows[:, None] < N) & (d_[None, :] < D)
        dG = tl.zeros([BN, BH], dtype=tl.float32)
        for h in range(H):  # dG_h = sum_d dy * x over head h; dx = dy * G_h (folded into dsrc below when SAME)
            xv = tl.load(x + rows[:, None] * s_x + h * D + d_[None, :], mask=mask, other=0.0).to(tl.float32)
            if L2:
                xv = _l2(xv, eps)[0]
            dyv = tl.load(dy + rows[:, None] * (H * D) + h * D + d_[None, :], mask=mask, other=0.0).to(tl.float32)
            dG += tl.where(h_[None, :] == h, tl.sum(dyv * xv, axis=1)[:, None], 0.0)
            if not SAME:
                tl.store(dx + rows[:, None] * (H * D) + h * D + d_[None, :],
                         (dyv * _head(G, h, BH)).to(dx.dtype.element_ty), mask=mask)
        if HAS_DG:
            dG += tl.load(dgates + rows[:, None] * H + h_[None, :], mask=(rows[:, None] < N) & (h_[None, :] < H), other=0.0)
        ds = G * (dG - tl.sum(G * dG, axis=1)[:, None]) * inv_tau  # dlogits [BN, BH]; 0 on padding
        P = R * C + H * R + H  # this block's row of dw: dW_down, dW_up, db
        tl.store(dw + pid * P + R * C + H * R + h_, tl.sum(ds, axis=0), mask=h_ < H)
        dr = tl.zeros([BN, BR], dtype=tl.float32)
        for h in range(H):  # dW_up[h] = ds_h^T r and dr = sum_h ds_h W_up[h]
            ds_h = _head(ds, h, BH)  # [BN, 1]
            tl.store(dw + pid * P + R * C + h * R + r_, tl.sum(ds_h * r, axis=0), mask=r_ < R)
            dr += ds_h * tl.load(wu + h * R + r_, mask=r_ < R, other=0.0).to(tl.float32)[None, :]
        dr = dr.to(dsrc.dtype.element_ty)  # [BN, BR]
        # dsrc = dr @ W_down (+ dy * G when src is x) and dW_down = dr^T @ src, a block of columns at a
        # time: one head's when SAME, else BC of src's C.
        BW: tl.constexpr = BD if SAME else BC
        for c0 in range(0, C, D if SAME else BC):
            c = c0 + tl.arange(0, BW)
            c_ok = tl.arange(0, BW) < (D if SAME else C - c0)
            row_c = (rows[:, None] < N) & c_ok[None, :]
            s = tl.load(src + rows[:, None] * s_src + c[None, :], mask=row_c, other=0.0)  # [BN, BW]
            rc = (r_[:, None] < R) & c_ok[None, :]
            w = tl.load(wd + r_[:, None] * C + c[None, :], mask=rc, other=0.0)  # [BR, BW]
            tl.store(dw + pid * P + r_[:, None] * C + c[None, :], tl.dot(tl.trans(dr), s.to(dr.dtype), input_precision=PREC),
                     mask=rc)
            ds_c = tl.dot(dr, w.to(dr.dtype), input_precision=PREC)  # [BN, BW]
            if SAME:
                dyv = tl.load(dy + rows[:, None] * C + c[None, :], mask=row_c, other=0.0).to(tl.float32)
                if L2:
                    n, rs = _l2(s.to(tl.float32), eps)  # [BN, BW], [BN, 1]
                    dyv = (dyv - n * tl.sum(dyv * n, axis=1)[:, None]) * rs
                ds_c += dyv * _head(G, c0 // D, BH)
            tl.store(dsrc + rows[:, None] * C + c[None, :], ds_c.to(dsrc.dtype.element_ty), mask=row_c)


@dataclass(frozen=True)
class SLAGateConfig:
    """Launch settings; scripts/gate-bench.py measured the defaults on an H100 (docs/speed.md)."""

    block_rows: int = 64  # (b, t) rows per program
    num_warps: int = 4


def _rows(t: torch.Tensor) -> torch.Tensor:
    """t [B, T, ...] as [B, T, cols], a view if each (b, t) row is contiguous and the rows share
    one stride (a split of one projection is), else a copy."""
    t = t.flatten(2)
    B, T = t.shape[:2]
    return t if t.stride(-1) == 1 and (B == 1 or t.stride(0) == T * t.stride(1)) else t.contiguous()


def blocks(C: int, H: int, D: int, R: int, config: SLAGateConfig = SLAGateConfig()) -> dict[str, int]:
    """Block sizes: rows per program, columns of src per step, padded rank, heads and head dim
    (tl.dot needs 16 or more along every dim)."""
    p2 = triton.next_power_of_2
    return {"BN": config.block_rows, "BC": max(16, min(64, p2(C))), "BR": max(16, p2(R)), "BH": p2(H), "BD": max(16, p2(D)),
            "num_warps": config.num_warps}


def _precision(dtype: torch.dtype) -> str:
    # float32 inputs get float32 products (a tf32 product would cost ~1e-3 of the logits);
    # bf16 and fp16 products accumulate in float32 either way.
    return "ieee" if dtype == torch.float32 else "tf32"


class SLAGateTriton(torch.autograd.Function):
    """The fused gate; same contract as `sla_gate_reference` (eps None) or `sla_gate_l2_reference`."""

    @staticmethod
    def forward(ctx, src, x, w_down, w_up, b_up, tau: float, eps: float | None, config: SLAGateConfig):
        B, T, C = src.shape
        H, R = w_up.shape
        D = C // H if x is None else x.shape[-1]
        if eps is not None and x is not None:
            raise ValueError("the L2 gate scales src's own heads: x must be None")
        src2 = _rows(src)  # [B, T, C]
        x2 = None if x is None else _rows(x)  # [B, T, H * D]
        xd = src2 if x is None else x2
        N = B * T
        y = torch.empty(B, T, H, D, device=src.device, dtype=xd.dtype)
        gates = torch.empty(B, T, H, device=src.device, dtype=torch.float32)
        meta = blocks(C, H, D, R, config)
        _sla_gate_fwd[(triton.cdiv(N, meta["BN"]),)](src2, xd, w_down, w_up, b_up, y, gates, N, 1.0 / tau, eps or 0.0,
                                                    src2.stride(1), xd.stride(1), C, H, D, R, eps is not None,
                                                    PREC=_precision(src.dtype), **meta)
        ctx.save_for_backward(src2, x2, w_down, w_up, b_up)
        ctx.set_materialize_grads(False)  # gates are mostly unused: no zeros for their gradient
        ctx.tau, ctx.eps, ctx.D, ctx.config = tau, eps, D, config
        return y, gates

    @staticmethod
    def backward(ctx, dy: torch.Tensor, dgates: torch.Tensor | None):
        src, x, w_down, w_up, b_up = ctx.saved_tensors
        B, T, C = src.shape
        H, R = w_up.shape
        N, D, same = B * T, ctx.D, x is None
        xd = src if same else x
        dy = torch.zeros(B, T, H, D, device=src.device, dtype=xd.dtype) if dy is None else dy.contiguous()
        dsrc = torch.empty(B, T, C, device=src.device, dtype=src.dtype)
        dx = dsrc if same else torch.empty(B, T, H, D, device=src.device, dtype=x.dtype)  # unused when same
        meta = blocks(C, H, D, R, ctx.config)
        grid = triton.cdiv(N, meta["BN"])
        dw = torch.empty(grid, R * C + H * R + H, device=src.device, dtype=torch.float32)  # per block of rows
        has_dg = dgates is not None
        dg = dgates.contiguous() if has_dg else dw  # a placeholder pointer when absent
        _sla_gate_bwd[(grid,)](src, xd, w_down, w_up, b_up, dy, dg, dsrc, dx, dw, N, 1.0 / ctx.tau, ctx.eps or 0.0,
                               src.stride(1), xd.stride(1), C, H, D, R, ctx.eps is not None, same, has_dg,
                               PREC=_precision(src.dtype), **meta)
        dwd, dwu, db = dw.sum(0).split([R * C, H * R, H])
        return (dsrc, None if same else dx, dwd.view(R, C).to(w_down.dtype), dwu.view(H, R).to(w_up.dtype),
                db.to(b_up.dtype), None, None, None)


def sla_gate_triton(src, x, w_down, w_up, b_up, tau: float,
                    config: SLAGateConfig = SLAGateConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    return SLAGateTriton.apply(src, x, w_down, w_up, b_up, tau, None, config)


def sla_gate_l2_triton(src, x, w_down, w_up, b_up, tau: float, eps: float,
                       config: SLAGateConfig = SLAGateConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """The gate scaling src's heads L2-normalised (`sla_gate_l2_reference`), in the same one pass."""
    return SLAGateTriton.apply(src, x, w_down, w_up, b_up, tau, eps, config)

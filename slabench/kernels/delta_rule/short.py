"""Gated delta rule for short sequences: one Triton program per (batch, head) in each direction.

Same op and math as `fused.py` (the chunked WY / UT form, chunks of C = 32 tokens, Tinv blocked in
16 x 16 blocks; its docstring has the derivation), arranged as gla's short kernel is. At
synthetic-task sizes the six-kernel form spends its time in per-chunk kernels that pass Tinv, u, w
and v_new through memory in float32 (docs/speed.md: ~0.39 ms fwd+bwd at B64 T256 H8 Dk16 Dv32 on
an H200, against ~0.13 for gla's short op); here there are two launches and no such round trips,
and each program walks its sequence chunk by chunk with the state [Dk, Dv] in registers:

- `_short_forward` [B*H]: per chunk Tinv (two 16 x 16 substitutions, `_ut_blocks`), u = Tinv (beta V),
  w = Tinv (beta K e^b), v_new = u - w S, o = (scale Q e^b) S + A v_new with A = tril(scale Q K^T *
  Gamma), and S <- e^{b_C} S + (K e^{b_C - b})^T v_new. It stores the state entering each chunk,
  h [B*H, N, Dk, Dv] float32, and nothing else.
- `_short_backward` [B*H]: walks the chunks in reverse carrying dS, the gradient of the state
  leaving the chunk. Per chunk it reloads S from h, recomputes Tinv, u, w, v_new and A from the
  inputs (all local to the chunk once S is known), takes dv_new = A^T dO + (K e^{b_C - b}) dS, the
  chunk's dq, dk, dv, dg, dbeta (`_chunk_grads`, shared with `fused.py`), then
  dS <- (scale Q e^b)^T dO + e^{b_C} dS - w^T dv_new.

Why the forward stores the chunk-entering states: the reverse walk needs S at every chunk, and the
delta rule's transition cannot be run backwards stably (I - beta k^T k is singular at beta = 1
for a unit key), so S comes either from the forward or from a second forward sweep inside the backward,
which would still have to write S per chunk to memory for its reverse loop. The forward holds S in
registers anyway, so storing it there costs one [Dk, Dv] write per chunk and keeps the backward a
single reverse loop; the memory is T / C states per (batch, head), O(T), and less than the
six-kernel form keeps (h there too, plus Tinv, w and v_new). Everything else is recomputed.

The walk is sequential in T, so the op offers this path for short sequences only (`SHORT_T`). q, k,
v, g, beta and dO may be strided views (only the last dim of q, k, v, dO contiguous). The final
state is returned without a gradient; there is no initial state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from slabench.kernels.delta_rule.fused import C, _meta, _strides

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None

SHORT_T = 1024  # longest T the op offers this path for (gla's): the walk is serial in T, the six kernels chunk-parallel
SHORT_HEAD_DIM = 64  # widest head the op offers it for: S and dS [Dk, Dv] float32 live in one program's registers


@dataclass(frozen=True)
class DeltaRuleShortConfig:
    """Launch settings of the two kernels (scripts/delta-short-bench.py times them)."""

    forward_warps: int = 4
    backward_warps: int = 4


def unsuited(dims: tuple[int, int, bool]) -> str | None:
    """Why this path does not suit a call of dispatch dims (Dk, Dv, T <= SHORT_T), or None if it does."""
    if dims[2] and max(dims[:2]) <= SHORT_HEAD_DIM:
        return None
    return f"only for T <= {SHORT_T} and head dims <= {SHORT_HEAD_DIM}"


if triton is not None:

    from slabench.kernels.delta_rule.fused import _chunk_grads, _decay, _load_row, _ut_blocks
    from slabench.kernels.tiles import load_tile as _load

    @triton.jit
    def _join_rows(top, bottom):
        """[2R, X] from top, bottom [R, X]."""
        return tl.reshape(tl.permute(tl.join(top, bottom), (2, 0, 1)), (2 * top.shape[0], top.shape[1]))

    @triton.jit
    def _join_cols(left, right):
        """[R, 2X] from left, right [R, X]."""
        return tl.reshape(tl.permute(tl.join(left, right), (0, 2, 1)), (left.shape[0], 2 * left.shape[1]))

    @triton.jit
    def _tinv(k, sk_t, g, sg_t, beta, sb_t, t0, T, kk, Dk, BT: tl.constexpr, PREC: tl.constexpr):
        """Tinv [BT, BT] = (I + M)^-1 of the chunk from token t0 (k, g, beta: one (batch, head) slice),
        solved in its two halves as `_prepare` does and assembled from the blocks."""
        r = tl.arange(0, BT // 2)
        t1 = t0 + r
        t2 = t1 + BT // 2
        k1, k2 = _load(k, sk_t, t1, T, kk, Dk), _load(k, sk_t, t2, T, kk, Dk)  # [BT/2, BK]
        g1, g2 = _load_row(g, sg_t, t1, T), _load_row(g, sg_t, t2, T)
        b1 = tl.cumsum(g1, axis=0)  # [BT/2]
        b2 = tl.sum(g1, axis=0) + tl.cumsum(g2, axis=0)
        be1, be2 = _load_row(beta, sb_t, t1, T), _load_row(beta, sb_t, t2, T)
        T11, T21, T22 = _ut_blocks(k1, k2, b1, b2, be1, be2, PREC)  # [BT/2, BT/2]
        return _join_rows(_join_cols(T11, tl.zeros_like(T11)), _join_cols(T21, T22))

    @triton.jit
    def _short_forward(q, k, v, g, beta, o, h, ht, T, H, scale,
                       sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                       so_b, so_t, so_h,
                       Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                       PREC: tl.constexpr, STORE_STATE: tl.constexpr):
        """o [B, T, H, Dv], h [B*H, N, Dk, Dv] (the state entering each chunk) and the final state ht [B*H, Dk, Dv]."""
        i_bh = tl.program_id(0)
        i_b, i_h = i_bh // H, i_bh % H
        q, k, v = q + i_b * sq_b + i_h * sq_h, k + i_b * sk_b + i_h * sk_h, v + i_b * sv_b + i_h * sv_h
        g, beta, o = g + i_b * sg_b + i_h * sg_h, beta + i_b * sb_b + i_h * sb_h, o + i_b * so_b + i_h * so_h
        N = tl.cdiv(T, BT)
        h += i_bh * N * Dk * Dv
        kk, vv, c = tl.arange(0, BK), tl.arange(0, BV), tl.arange(0, BT)
        mS = (kk[:, None] < Dk) & (vv[None, :] < Dv)
        S = tl.zeros([BK, BV], dtype=tl.float32)
        for n in range(N):
            t = n * BT + c
            qc, kc, vc = _load(q, sq_t, t, T, kk, Dk), _load(k, sk_t, t, T, kk, Dk), _load(v, sv_t, t, T, vv, Dv)
            gc, bc = _load_row(g, sg_t, t, T), _load_row(beta, sb_t, t, T)  # [BT]
            b, bC = tl.cumsum(gc, axis=0), tl.sum(gc, axis=0)
            # the chunk's own terms, independent of S
            Tinv = _tinv(k, sk_t, g, sg_t, beta, sb_t, n * BT, T, kk, Dk, BT, PREC)  # [BT, BT]
            u = tl.dot(Tinv, vc * bc[:, None], input_precision=PREC)  # [BT, BV]
            wc = tl.dot(Tinv, kc * (bc * tl.exp(b))[:, None], input_precision=PREC)  # [BT, BK]
            A = scale * tl.dot(qc, tl.trans(kc), input_precision=PREC) * _decay(b, False)  # [BT, BT]
            tl.store(h + n * Dk * Dv + kk[:, None] * Dv + vv[None, :], S, mask=mS)
            # the serial path: two products per chunk
            v_new = u - tl.dot(wc, S, input_precision=PREC)  # [BT, BV]
            oc = tl.dot(qc * (scale * tl.exp(b))[:, None], S, input_precision=PREC) + tl.dot(A, v_new, input_precision=PREC)
            tl.store(o + t[:, None] * so_t + vv[None, :], oc.to(o.dtype.element_ty), mask=(t[:, None] < T) & (vv[None, :] < Dv))
            S = S * tl.exp(bC) + tl.dot(tl.trans(kc * tl.exp(bC - b)[:, None]), v_new, input_precision=PREC)
        if STORE_STATE:
            tl.store(ht + i_bh * Dk * Dv + kk[:, None] * Dv + vv[None, :], S, mask=mS)

    @triton.jit
    def _short_backward(q, k, v, g, beta, do, h, dq, dk, dv, dg, dbeta, T, H, scale,
                        sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                        so_b, so_t, so_h,
                        Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                        PREC: tl.constexpr):
        """Reverse walk: dq, dk, dv [B, T, H, D] and dg, dbeta [B, T, H] (contiguous)."""
        i_bh = tl.program_id(0)
        i_b, i_h = i_bh // H, i_bh % H
        q, k, v = q + i_b * sq_b + i_h * sq_h, k + i_b * sk_b + i_h * sk_h, v + i_b * sv_b + i_h * sv_h
        g, beta, do = g + i_b * sg_b + i_h * sg_h, beta + i_b * sb_b + i_h * sb_h, do + i_b * so_b + i_h * so_h
        N = tl.cdiv(T, BT)
        h += i_bh * N * Dk * Dv
        row_k, row_v = (i_b * T * H + i_h) * Dk, (i_b * T * H + i_h) * Dv  # outputs: [B, T, H, D] contiguous
        dq, dk, dv = dq + row_k, dk + row_k, dv + row_v
        dg, dbeta = dg + i_b * T * H + i_h, dbeta + i_b * T * H + i_h
        kk, vv, c = tl.arange(0, BK), tl.arange(0, BV), tl.arange(0, BT)
        mS = (kk[:, None] < Dk) & (vv[None, :] < Dv)
        dS = tl.zeros([BK, BV], dtype=tl.float32)  # gradient of the state leaving the chunk
        for m in range(N):
            n = N - 1 - m
            t = n * BT + c
            qc, kc, vc = _load(q, sq_t, t, T, kk, Dk), _load(k, sk_t, t, T, kk, Dk), _load(v, sv_t, t, T, vv, Dv)
            doc = _load(do, so_t, t, T, vv, Dv)  # [BT, BV]
            gc, bc = _load_row(g, sg_t, t, T), _load_row(beta, sb_t, t, T)  # [BT]
            b, bC = tl.cumsum(gc, axis=0), tl.sum(gc, axis=0)
            S = tl.load(h + n * Dk * Dv + kk[:, None] * Dv + vv[None, :], mask=mS, other=0.0)  # [BK, BV]
            # the chunk's forward, recomputed from its inputs and S
            Tinv = _tinv(k, sk_t, g, sg_t, beta, sb_t, n * BT, T, kk, Dk, BT, PREC)  # [BT, BT]
            u = tl.dot(Tinv, vc * bc[:, None], input_precision=PREC)  # [BT, BV]
            wc = tl.dot(Tinv, kc * (bc * tl.exp(b))[:, None], input_precision=PREC)  # [BT, BK]
            v_new = u - tl.dot(wc, S, input_precision=PREC)
            A = scale * tl.dot(qc, tl.trans(kc), input_precision=PREC) * _decay(b, False)  # [BT, BT]
            # o = (scale Q e^b) S + A v_new and S' = e^{b_C} S + (K e^{b_C - b})^T v_new give v_new its gradient
            dv_new = tl.dot(tl.trans(A), doc, input_precision=PREC) + tl.dot(kc * tl.exp(bC - b)[:, None], dS, input_precision=PREC)
            dqc, dkc, dvc, dgc, dbc = _chunk_grads(qc, kc, vc, doc, gc, bc, A, S, dS, Tinv, u, wc, v_new, dv_new, scale, PREC)
            # the gradient of the state entering the chunk: through o, the decay of S, and v_new = u - w S
            dS = (dS * tl.exp(bC) + tl.dot(tl.trans(qc * (scale * tl.exp(b))[:, None]), doc, input_precision=PREC)
                  - tl.dot(tl.trans(wc), dv_new, input_precision=PREC))
            mk, mv = (t[:, None] < T) & (kk[None, :] < Dk), (t[:, None] < T) & (vv[None, :] < Dv)
            tl.store(dq + t[:, None] * H * Dk + kk[None, :], dqc.to(dq.dtype.element_ty), mask=mk)
            tl.store(dk + t[:, None] * H * Dk + kk[None, :], dkc.to(dk.dtype.element_ty), mask=mk)
            tl.store(dv + t[:, None] * H * Dv + vv[None, :], dvc.to(dv.dtype.element_ty), mask=mv)
            tl.store(dg + t * H, dgc.to(dg.dtype.element_ty), mask=t < T)
            tl.store(dbeta + t * H, dbc.to(dbeta.dtype.element_ty), mask=t < T)


class DeltaRuleShort(torch.autograd.Function):
    """`delta_rule` for short sequences in two Triton kernels; same contract as `delta_rule_chunk`."""

    @staticmethod
    def forward(ctx, q, k, v, g, beta, scale: float, output_final_state: bool, config: DeltaRuleShortConfig):
        q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
        B, T, H, Dk = q.shape
        Dv = v.shape[-1]
        meta = _meta(Dk, Dv, q.dtype)
        h = torch.empty(B * H, triton.cdiv(T, C), Dk, Dv, device=q.device, dtype=torch.float32)
        o = torch.empty(B, T, H, Dv, device=q.device, dtype=q.dtype)
        ht = torch.empty(B, H, Dk, Dv, device=q.device, dtype=torch.float32) if output_final_state else None
        _short_forward[(B * H,)](q, k, v, g, beta, o, h, h if ht is None else ht, T, H, scale,
                                 *_strides(q), *_strides(k), *_strides(v), *_strides(g), *_strides(beta), *_strides(o),
                                 STORE_STATE=output_final_state, num_warps=config.forward_warps, **meta)
        ctx.save_for_backward(q, k, v, g, beta, h)
        ctx.scale, ctx.config = scale, config
        if ht is not None:
            ctx.mark_non_differentiable(ht)
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, g, beta, h = ctx.saved_tensors
        do = do if do.stride(-1) == 1 else do.contiguous()
        B, T, H, Dk = q.shape
        Dv = v.shape[-1]
        dq, dk = (torch.empty(B, T, H, Dk, device=q.device, dtype=x.dtype) for x in (q, k))  # contiguous
        dv = torch.empty(B, T, H, Dv, device=q.device, dtype=v.dtype)
        dg, dbeta = torch.empty(B, T, H, device=q.device, dtype=g.dtype), torch.empty(B, T, H, device=q.device, dtype=beta.dtype)
        _short_backward[(B * H,)](q, k, v, g, beta, do, h, dq, dk, dv, dg, dbeta, T, H, ctx.scale,
                                  *_strides(q), *_strides(k), *_strides(v), *_strides(g), *_strides(beta), *_strides(do),
                                  num_warps=ctx.config.backward_warps, **_meta(Dk, Dv, q.dtype))
        return dq, dk, dv, dg, dbeta, None, None, None


def delta_rule_short(q, k, v, g, beta, scale=None, output_final_state=False,
                     config: DeltaRuleShortConfig = DeltaRuleShortConfig()):
    """`delta_rule` through `DeltaRuleShort`: (o [B, T, H, Dv] in q's dtype, final state [B, H, Dk, Dv] float32 or None)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return DeltaRuleShort.apply(q, k, v, g, beta, scale, output_final_state, config)

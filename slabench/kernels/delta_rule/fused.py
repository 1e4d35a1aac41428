"""Gated delta rule in Triton: the chunked WY / UT form, forward and backward in four kernels.

Same op as `delta_rule_chunk` (fla's layout: q, k [B, T, H, Dk], v [B, T, H, Dv], log decay g
and write strength beta [B, T, H]); g = 0 is plain DeltaNet. Per chunk of C tokens, with b the
cumulative log decay from the chunk start (inclusive), b_C its total, Gamma_ij = e^{b_i - b_j}
(j <= i; every exponent <= 0 since g <= 0) and S the state entering the chunk:

    M     = strictly lower part of diag(beta) K K^T * Gamma       the chunk's Householder products
    Tinv  = (I + M)^-1                                           the UT transform, by substitution
    u     = Tinv (beta V),  w = Tinv (beta K e^b)                pseudo-values and decayed keys
    v_new = u - w S                                             what each token still has to write
    o     = scale (Q e^b) S + tril(scale Q K^T * Gamma) v_new
    S    <- e^{b_C} S + (K e^{b_C - b})^T v_new

Tinv is built row by row (row i = e_i - sum_{j<i} M_ij row_j): forward substitution stays as
well conditioned as the solve itself, where the nilpotent product (I - M)(I + M^2)(I + M^4)...
sums terms that grow like binomials when keys align, and cancels them in floating point.

Kernels (grid in brackets): `_prepare` [chunks, B*H] computes u and w in parallel over chunks;
`_forward` [B*H, value blocks] walks the chunks carrying S (the columns of S evolve
independently, so value blocks run as separate programs), writes o and keeps each chunk's
entering state for the backward. `_backward_state` [B*H, value blocks] walks the chunks in
reverse carrying dS, the gradient of the state leaving a chunk:

    dv_new = A^T dO + (K e^{b_C - b}) dS,   dS <- (scale Q e^b)^T dO + e^{b_C} dS - w^T dv_new

and `_backward_chunk` [chunks, B*H] then has everything a chunk needs (S, dS, dv_new) to give
dq, dk, dv, dbeta and dg in parallel, recomputing Tinv, u, w and v_new (derivation in
docs/speed.md). The final state is returned without a gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None

MAX_HEAD_DIM = 128  # widest head the kernels hold in registers (the backward holds S and dS whole)


@dataclass(frozen=True)
class DeltaRuleConfig:
    """Tuning of the four kernels (scripts/delta-paths.py sweeps them)."""

    chunk_size: int = 32  # 64 measured 1.6-1.9x slower fwd+bwd on an H200 (the substitution is serial in C)


def unsuited(dims: tuple[int, int]) -> str | None:
    """Why this path does not suit head dims (Dk, Dv), or None if it does."""
    return None if max(dims) <= MAX_HEAD_DIM else f"only for head dims <= {MAX_HEAD_DIM}"


if triton is not None:

    @triton.jit
    def _load(ptr, stride_t, t, T, d, D):
        """A [C, BD] chunk of a [T, D] slice (rows t, columns d; zero outside) in float32."""
        return tl.load(ptr + t[:, None] * stride_t + d[None, :], mask=(t[:, None] < T) & (d[None, :] < D),
                       other=0.0).to(tl.float32)

    @triton.jit
    def _load_row(ptr, stride_t, t, T):
        """A [C] chunk of a [T] slice (g or beta; zero outside) in float32."""
        return tl.load(ptr + t * stride_t, mask=t < T, other=0.0).to(tl.float32)

    @triton.jit
    def _decay(b, STRICT: tl.constexpr):
        """Gamma [C, C]: e^{b_i - b_j} for j <= i (j < i if STRICT), else 0."""
        i = tl.arange(0, b.shape[0])
        keep = (i[:, None] > i[None, :]) if STRICT else (i[:, None] >= i[None, :])
        return tl.exp(tl.where(keep, b[:, None] - b[None, :], float("-inf")))

    @triton.jit
    def _ut(kc, b, bc, PREC: tl.constexpr):
        """(Tinv = (I + M)^-1, M, K K^T), M = strictly lower diag(beta) K K^T * Gamma, all [C, C]."""
        KK = tl.dot(kc, tl.trans(kc), input_precision=PREC)
        M = bc[:, None] * KK * _decay(b, True)
        r = tl.arange(0, kc.shape[0])
        Tinv = tl.where(r[:, None] == r[None, :], 1.0, 0.0)
        for i in range(1, kc.shape[0]):  # rows j < i are final; row i is still e_i
            m_i = tl.sum(tl.where(r[:, None] == i, M, 0.0), axis=0)  # [C]: M_ij, zero for j >= i
            Tinv -= tl.where(r[:, None] == i, tl.sum(m_i[:, None] * Tinv, axis=0)[None, :], 0.0)
        return Tinv, M, KK

    @triton.jit
    def _prepare(k, v, g, beta, u, w, T, H,
                 sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                 Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                 PREC: tl.constexpr):
        """u = Tinv (beta V) [B*H, T, Dv] and w = Tinv (beta K e^b) [B*H, T, Dk], float32."""
        i_n, i_bh = tl.program_id(0), tl.program_id(1)
        i_b, i_h = i_bh // H, i_bh % H
        kk, vv, t = tl.arange(0, BK), tl.arange(0, BV), i_n * BT + tl.arange(0, BT)
        kc = _load(k + i_b * sk_b + i_h * sk_h, sk_t, t, T, kk, Dk)  # [BT, BK]
        vc = _load(v + i_b * sv_b + i_h * sv_h, sv_t, t, T, vv, Dv)  # [BT, BV]
        b = tl.cumsum(_load_row(g + i_b * sg_b + i_h * sg_h, sg_t, t, T), axis=0)  # [BT]
        bc = _load_row(beta + i_b * sb_b + i_h * sb_h, sb_t, t, T)  # [BT]
        Tinv, _, _ = _ut(kc, b, bc, PREC)
        uc = tl.dot(Tinv, vc * bc[:, None], input_precision=PREC)
        wc = tl.dot(Tinv, kc * (bc * tl.exp(b))[:, None], input_precision=PREC)
        tl.store(u + i_bh * T * Dv + t[:, None] * Dv + vv[None, :], uc, mask=(t[:, None] < T) & (vv[None, :] < Dv))
        tl.store(w + i_bh * T * Dk + t[:, None] * Dk + kk[None, :], wc, mask=(t[:, None] < T) & (kk[None, :] < Dk))

    @triton.jit
    def _forward(q, k, g, u, w, o, h, ht, T, H, scale,
                 sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                 Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                 PREC: tl.constexpr, STORE_STATE: tl.constexpr):
        """o for value columns of block program_id(1); h [B*H, N, Dk, Dv]: the state entering each chunk."""
        i_bh = tl.program_id(0)
        i_b, i_h = i_bh // H, i_bh % H
        q, k, g = q + i_b * sq_b + i_h * sq_h, k + i_b * sk_b + i_h * sk_h, g + i_b * sg_b + i_h * sg_h
        o += i_b * so_b + i_h * so_h
        u, w = u + i_bh * T * Dv, w + i_bh * T * Dk
        N = tl.cdiv(T, BT)
        h += i_bh * N * Dk * Dv
        kk, c = tl.arange(0, BK), tl.arange(0, BT)
        vv = tl.program_id(1) * BV + tl.arange(0, BV)
        mS = (kk[:, None] < Dk) & (vv[None, :] < Dv)
        S = tl.zeros([BK, BV], dtype=tl.float32)
        for n in range(N):
            t = n * BT + c
            qc, kc = _load(q, sq_t, t, T, kk, Dk), _load(k, sk_t, t, T, kk, Dk)
            gc = _load_row(g, sg_t, t, T)
            b, bC = tl.cumsum(gc, axis=0), tl.sum(gc, axis=0)
            wc, uc = _load(w, Dk, t, T, kk, Dk), _load(u, Dv, t, T, vv, Dv)
            tl.store(h + n * Dk * Dv + kk[:, None] * Dv + vv[None, :], S, mask=mS)
            v_new = uc - tl.dot(wc, S, input_precision=PREC)  # [BT, BV]
            A = tl.dot(qc, tl.trans(kc), input_precision=PREC) * _decay(b, False)  # [BT, BT]
            oc = scale * (tl.dot(qc * tl.exp(b)[:, None], S, input_precision=PREC) + tl.dot(A, v_new, input_precision=PREC))
            tl.store(o + t[:, None] * so_t + vv[None, :], oc.to(o.dtype.element_ty), mask=(t[:, None] < T) & (vv[None, :] < Dv))
            S = S * tl.exp(bC) + tl.dot(tl.trans(kc * tl.exp(bC - b)[:, None]), v_new, input_precision=PREC)
        if STORE_STATE:
            tl.store(ht + i_bh * Dk * Dv + kk[:, None] * Dv + vv[None, :], S, mask=mS)

    @triton.jit
    def _backward_state(q, k, g, w, do, dvn, dh, T, H, scale,
                        sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                        Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                        PREC: tl.constexpr):
        """Reverse walk: dv_new [B*H, T, Dv] and dh [B*H, N, Dk, Dv], the gradient of the state leaving each chunk."""
        i_bh = tl.program_id(0)
        i_b, i_h = i_bh // H, i_bh % H
        q, k, g = q + i_b * sq_b + i_h * sq_h, k + i_b * sk_b + i_h * sk_h, g + i_b * sg_b + i_h * sg_h
        do += i_b * so_b + i_h * so_h
        w, dvn = w + i_bh * T * Dk, dvn + i_bh * T * Dv
        N = tl.cdiv(T, BT)
        dh += i_bh * N * Dk * Dv
        kk, c = tl.arange(0, BK), tl.arange(0, BT)
        vv = tl.program_id(1) * BV + tl.arange(0, BV)
        dS = tl.zeros([BK, BV], dtype=tl.float32)
        for m in range(N):
            n = N - 1 - m
            t = n * BT + c
            qc, kc = _load(q, sq_t, t, T, kk, Dk), _load(k, sk_t, t, T, kk, Dk)
            gc = _load_row(g, sg_t, t, T)
            b, bC = tl.cumsum(gc, axis=0), tl.sum(gc, axis=0)
            wc, doc = _load(w, Dk, t, T, kk, Dk), _load(do, so_t, t, T, vv, Dv)
            tl.store(dh + n * Dk * Dv + kk[:, None] * Dv + vv[None, :], dS, mask=(kk[:, None] < Dk) & (vv[None, :] < Dv))
            A = scale * tl.dot(qc, tl.trans(kc), input_precision=PREC) * _decay(b, False)  # [BT, BT]
            dv_new = tl.dot(tl.trans(A), doc, input_precision=PREC) + tl.dot(kc * tl.exp(bC - b)[:, None], dS, input_precision=PREC)
            tl.store(dvn + t[:, None] * Dv + vv[None, :], dv_new, mask=(t[:, None] < T) & (vv[None, :] < Dv))
            dS = (dS * tl.exp(bC) + tl.dot(tl.trans(qc * (scale * tl.exp(b))[:, None]), doc, input_precision=PREC)
                  - tl.dot(tl.trans(wc), dv_new, input_precision=PREC))

    @triton.jit
    def _backward_chunk(q, k, v, g, beta, do, h, dh, dvn, dq, dk, dv, dg, dbeta, T, H, scale,
                        sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                        so_b, so_t, so_h,
                        Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                        PREC: tl.constexpr):
        """dq, dk, dv [B, T, H, D] and dg, dbeta [B, T, H] (contiguous) of one chunk."""
        i_n, i_bh = tl.program_id(0), tl.program_id(1)
        i_b, i_h = i_bh // H, i_bh % H
        kk, vv, c = tl.arange(0, BK), tl.arange(0, BV), tl.arange(0, BT)
        t = i_n * BT + c
        qc = _load(q + i_b * sq_b + i_h * sq_h, sq_t, t, T, kk, Dk)  # [BT, BK]
        kc = _load(k + i_b * sk_b + i_h * sk_h, sk_t, t, T, kk, Dk)
        vc = _load(v + i_b * sv_b + i_h * sv_h, sv_t, t, T, vv, Dv)  # [BT, BV]
        doc = _load(do + i_b * so_b + i_h * so_h, so_t, t, T, vv, Dv)
        gc = _load_row(g + i_b * sg_b + i_h * sg_h, sg_t, t, T)  # [BT]
        bc = _load_row(beta + i_b * sb_b + i_h * sb_h, sb_t, t, T)
        b, bC = tl.cumsum(gc, axis=0), tl.sum(gc, axis=0)
        eb, ed = tl.exp(b), tl.exp(bC - b)  # decay from the chunk start, and to its end
        N = tl.cdiv(T, BT)
        mS = (kk[:, None] < Dk) & (vv[None, :] < Dv)
        state = (i_bh * N + i_n) * Dk * Dv + kk[:, None] * Dv + vv[None, :]
        S, dS = tl.load(h + state, mask=mS, other=0.0), tl.load(dh + state, mask=mS, other=0.0)  # [BK, BV]
        dv_new = _load(dvn + i_bh * T * Dv, Dv, t, T, vv, Dv)  # [BT, BV]
        # forward quantities of the chunk
        Tinv, M, KK = _ut(kc, b, bc, PREC)  # [BT, BT]
        Kb = kc * (bc * eb)[:, None]
        u = tl.dot(Tinv, vc * bc[:, None], input_precision=PREC)
        wc = tl.dot(Tinv, Kb, input_precision=PREC)
        v_new = u - tl.dot(wc, S, input_precision=PREC)  # [BT, BV]
        causal = c[:, None] >= c[None, :]
        A = scale * tl.dot(qc, tl.trans(kc), input_precision=PREC) * _decay(b, False)  # [BT, BT]
        # o = (scale Q e^b) S + A v_new
        dA = tl.where(causal, tl.dot(doc, tl.trans(v_new), input_precision=PREC), 0.0)
        dAG = scale * dA * _decay(b, False)  # gradient of the Q K^T entries
        dQd = tl.dot(doc, tl.trans(S), input_precision=PREC)  # [BT, BK]
        dqc = dQd * (scale * eb)[:, None] + tl.dot(dAG, kc, input_precision=PREC)
        dkc = tl.dot(tl.trans(dAG), qc, input_precision=PREC)
        # S' = e^{b_C} S + (K e^{b_C - b})^T v_new
        dKd = tl.dot(v_new, tl.trans(dS), input_precision=PREC)  # [BT, BK]
        dkc += dKd * ed[:, None]
        # v_new = u - w S, with [u, w] = Tinv [beta V, beta K e^b]
        dw = -tl.dot(dv_new, tl.trans(S), input_precision=PREC)  # [BT, BK]
        TinvT = tl.trans(Tinv)
        dVb = tl.dot(TinvT, dv_new, input_precision=PREC)  # [BT, BV]
        dKb = tl.dot(TinvT, dw, input_precision=PREC)  # [BT, BK]
        dvc = dVb * bc[:, None]
        dkc += dKb * (bc * eb)[:, None]
        dM = -tl.where(c[:, None] > c[None, :], tl.dot(dVb, tl.trans(u), input_precision=PREC)
                       + tl.dot(dKb, tl.trans(wc), input_precision=PREC), 0.0)  # [BT, BT]
        G = dM * _decay(b, True)  # gradient of the K K^T entries, over beta_i
        dkc += tl.dot(G * bc[:, None], kc, input_precision=PREC) + tl.dot(tl.trans(G), kc * bc[:, None], input_precision=PREC)
        dbc = tl.sum(dVb * vc, axis=1) + tl.sum(dKb * kc * eb[:, None], axis=1) + tl.sum(G * KK, axis=1)
        # the log decays: b_i enters Q e^b, K e^{b_C - b}, beta K e^b, Gamma in A and M; b_C the state
        dMM, dAA = dM * M, dA * A
        db = (tl.sum(dQd * qc * (scale * eb)[:, None], axis=1) - tl.sum(dKd * kc * ed[:, None], axis=1)
              + tl.sum(dKb * Kb, axis=1) + tl.sum(dAA, axis=1) - tl.sum(dAA, axis=0) + tl.sum(dMM, axis=1) - tl.sum(dMM, axis=0))
        dbC = tl.sum(tl.sum(dKd * kc * ed[:, None], axis=1), axis=0) + tl.exp(bC) * tl.sum(tl.sum(S * dS, axis=1), axis=0)
        db += tl.where(c == BT - 1, dbC, 0.0)
        dgc = tl.cumsum(db, axis=0, reverse=True)  # b = cumsum(g)
        row_k, row_v = (i_b * T * H + i_h) * Dk, (i_b * T * H + i_h) * Dv  # outputs: [B, T, H, D] contiguous
        mk, mv = (t[:, None] < T) & (kk[None, :] < Dk), (t[:, None] < T) & (vv[None, :] < Dv)
        tl.store(dq + row_k + t[:, None] * H * Dk + kk[None, :], dqc.to(dq.dtype.element_ty), mask=mk)
        tl.store(dk + row_k + t[:, None] * H * Dk + kk[None, :], dkc.to(dk.dtype.element_ty), mask=mk)
        tl.store(dv + row_v + t[:, None] * H * Dv + vv[None, :], dvc.to(dv.dtype.element_ty), mask=mv)
        tl.store(dg + i_b * T * H + i_h + t * H, dgc.to(dg.dtype.element_ty), mask=t < T)
        tl.store(dbeta + i_b * T * H + i_h + t * H, dbc.to(dbeta.dtype.element_ty), mask=t < T)


def _strides(x: torch.Tensor) -> tuple[int, int, int]:
    """(batch, time, head) strides of x [B, T, H, ...] (the last dim, if any, is contiguous)."""
    return x.stride(0), x.stride(1), x.stride(2)


def _meta(Dk: int, Dv: int, dtype: torch.dtype, config: DeltaRuleConfig = DeltaRuleConfig()) -> dict:
    """Block sizes; float32 inputs get tf32x3 products, near float32 (tf32 would cost them ~1e-3
    relative; ieee products did not compile the backward at Dv 128 within 5 minutes)."""
    BK, BV = max(16, triton.next_power_of_2(Dk)), max(16, triton.next_power_of_2(Dv))
    return {"Dk": Dk, "Dv": Dv, "BK": BK, "BV": BV, "BT": config.chunk_size, "PREC": "tf32x3" if dtype == torch.float32 else "tf32"}


def _value_block(BV: int) -> int:
    """Value columns per program of the two walks (the state's columns evolve independently)."""
    return min(BV, 32)


class DeltaRuleFused(torch.autograd.Function):
    """`delta_rule` in four Triton kernels; same contract as `delta_rule_chunk`."""

    @staticmethod
    def forward(ctx, q, k, v, g, beta, scale: float, output_final_state: bool, config: DeltaRuleConfig):
        q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
        B, T, H, Dk = q.shape
        Dv = v.shape[-1]
        N = triton.cdiv(T, config.chunk_size)
        meta = _meta(Dk, Dv, q.dtype, config)
        BVw = _value_block(meta["BV"])
        f32 = {"device": q.device, "dtype": torch.float32}
        u, w = torch.empty(B * H, T, Dv, **f32), torch.empty(B * H, T, Dk, **f32)
        h = torch.empty(B * H, N, Dk, Dv, **f32)
        o = torch.empty(B, T, H, Dv, device=q.device, dtype=q.dtype)
        ht = torch.empty(B, H, Dk, Dv, **f32) if output_final_state else None
        _prepare[(N, B * H)](k, v, g, beta, u, w, T, H, *_strides(k), *_strides(v), *_strides(g), *_strides(beta), **meta)
        _forward[(B * H, triton.cdiv(Dv, BVw))](
            q, k, g, u, w, o, h, h if ht is None else ht, T, H, scale,
            *_strides(q), *_strides(k), *_strides(g), *_strides(o), STORE_STATE=output_final_state, **{**meta, "BV": BVw})
        ctx.save_for_backward(q, k, v, g, beta, w, h)
        ctx.scale, ctx.config = scale, config
        if ht is not None:
            ctx.mark_non_differentiable(ht)
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, g, beta, w, h = ctx.saved_tensors
        do = do if do.stride(-1) == 1 else do.contiguous()
        B, T, H, Dk = q.shape
        Dv = v.shape[-1]
        N = triton.cdiv(T, ctx.config.chunk_size)
        meta = _meta(Dk, Dv, q.dtype, ctx.config)
        BVw = _value_block(meta["BV"])
        dvn = torch.empty(B * H, T, Dv, device=q.device, dtype=torch.float32)
        dh = torch.empty(B * H, N, Dk, Dv, device=q.device, dtype=torch.float32)
        _backward_state[(B * H, triton.cdiv(Dv, BVw))](
            q, k, g, w, do, dvn, dh, T, H, ctx.scale, *_strides(q), *_strides(k), *_strides(g), *_strides(do),
            **{**meta, "BV": BVw})
        dq, dk = (torch.empty(B, T, H, Dk, device=q.device, dtype=x.dtype) for x in (q, k))  # contiguous
        dv = torch.empty(B, T, H, Dv, device=q.device, dtype=v.dtype)
        dg, dbeta = torch.empty(B, T, H, device=q.device, dtype=g.dtype), torch.empty(B, T, H, device=q.device, dtype=beta.dtype)
        _backward_chunk[(N, B * H)](
            q, k, v, g, beta, do, h, dh, dvn, dq, dk, dv, dg, dbeta, T, H, ctx.scale,
            *_strides(q), *_strides(k), *_strides(v), *_strides(g), *_strides(beta), *_strides(do), **meta)
        return dq, dk, dv, dg, dbeta, None, None, None


def delta_rule_fused(q, k, v, g, beta, scale=None, output_final_state=False, config: DeltaRuleConfig = DeltaRuleConfig()):
    """`delta_rule` through `DeltaRuleFused`: (o [B, T, H, Dv] in q's dtype, final state [B, H, Dk, Dv] float32 or None)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return DeltaRuleFused.apply(q, k, v, g, beta, scale, output_final_state, config)

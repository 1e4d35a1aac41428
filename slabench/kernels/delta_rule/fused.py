"""Gated delta rule in Triton: the chunked WY / UT form, forward and backward in seven kernels.

Same op as `delta_rule_chunk` (fla's layout: q, k [B, T, H, Dk], v [B, T, H, Dv], log decay g
and write strength beta [B, T, H]); g = 0 is plain DeltaNet. Per chunk of C tokens, with b the
cumulative log decay from the chunk start (inclusive), b_C its total, Gamma_ij = e^{b_i - b_j}
(j <= i; every exponent <= 0 since g <= 0) and S the state entering the chunk:

    M     = strictly lower part of diag(beta) K K^T * Gamma       the chunk's Householder products
    Tinv  = (I + M)^-1                                           the UT transform
    u     = Tinv (beta V),  w = Tinv (beta K e^b)                pseudo-values and decayed keys
    v_new = u - w S                                             what each token still has to write
    o     = scale (Q e^b) S + tril(scale Q K^T * Gamma) v_new
    S    <- e^{b_C} S + (K e^{b_C - b})^T v_new

Tinv is built by doubling diagonal blocks. With X the inverse of (I + M)'s diagonal blocks of size
s and L the blocks of M below them within blocks of 2s, (I + M)'s diagonal blocks of size 2s are
D + L with D^-1 = X and L X L = 0, so

    their inverse is (I + X L)^-1 X = X - X L X

(the lower block is the familiar T21 = -T22 M21 T11). From blocks of 2 (X = I - M on them),
log2(C) - 1 steps of two tensor-core products give Tinv. Each X is an exact inverse, so no entry
grows beyond Tinv's own, unlike the nilpotent product (I - M)(I + M^2)(I + M^4)..., whose terms
grow like binomial coefficients when keys align and cancel in floating point; and it replaces
forward substitution's C - 1 serial row steps (two cross-thread sums each).

Kernels (grid in brackets). Forward: `_prepare` [chunks, B*H] stores Tinv, u and w; `_forward`
[B*H, value blocks] walks the chunks carrying S (the columns of S evolve independently, so value
blocks run as separate programs), keeps each chunk's entering state and overwrites u with v_new;
`_output` [chunks, B*H] computes o from them. Backward: `_backward_local` [chunks, B*H] computes the
parts of the reverse walk that need no state, A^T dO and (scale Q e^b)^T dO (A = tril(scale Q K^T *
Gamma)); `_backward_state` [B*H, value blocks] walks the chunks in reverse carrying dS, the
gradient of the state leaving a chunk:

    dv_new = A^T dO + (K e^{b_C - b}) dS,   dS <- (scale Q e^b)^T dO + e^{b_C} dS - w^T dv_new

and `_backward_chunk` [chunks, B*H] then has everything a chunk needs (S, dS, dv_new, Tinv, w,
v_new) to give dq, dk, dv, dbeta and dg in parallel (derivation in docs/speed.md), by default as
two kernels, `_backward_chunk_first` and `_backward_chunk_second` (`DeltaRuleConfig.split_backward`).
The walks hold two products per chunk on their serial path. The final state is returned without a
gradient.

Segmented walks (`DeltaRuleConfig.walk_segment`), for few programs and many chunks: a chunk maps
the state affinely, S <- A S + (K e^{b_C - b})^T u with A = e^{b_C} I - (K e^{b_C - b})^T w, so a
segment of chunks maps it as S <- P S + Q. `_segment_maps` [segments, B*H, value blocks] computes
each segment's P and Q, `_segment_scan` [B*H, value blocks] chains them into the state entering
each segment, and `_forward` then walks each segment from its entering state, one program per
segment. The gradient's walk is the transpose: dS <- A^T dS + (terms of the chunk), so a segment
maps it as dS <- P^T dS + Q' with the forward's P (`_segment_maps_backward` gives Q', the same scan
runs in reverse, then `_backward_state` per segment).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None

C = 32  # chunk length, a power of two: `_ut_inverse` doubles blocks up to it


@dataclass(frozen=True)
class DeltaRuleConfig:
    """Launch settings (scripts/delta-paths.py sweeps them). On an H200 1 or 2 warps for the walks and
    8 for `_backward_chunk` measured slower than 4; 2 for `_prepare` 0.05-0.20 ms faster at every
    shape swept (docs/speed.md), timed when it solved the UT transform by substitution, before the
    doubling products; not timed again since."""

    prepare_warps: int = 2
    walk_warps: int = 4
    chunk_warps: int = 4
    # `_backward_chunk` as two kernels through a float32 scratch: 161 and 180 registers a thread
    # at Dk 16, Dv 32 (sm_90, 4 warps) against the one kernel's 255 with spills. On an H200 the op's
    # fwd+bwd in graph replay took 12-13% less than with the one kernel at B64 T256 and B16 T4096
    # (scripts/delta-paths.py, docs/speed.md)
    split_backward: bool = True
    walk_block: int = 32  # value columns per program of the two walks (the state's columns evolve independently)
    # Chunks per segment of the two walks; None: automatic (`_walks`), 0: one segment. A
    # walk is serial over chunks, one program per (batch x head, value block): at B1 H8 T65536 that is
    # 8 programs walking 2,048 chunks while the other SMs idle. Segmented, each segment's map of the
    # state (S -> P S + Q: every chunk's map is affine in S) comes from one program per segment, a
    # short walk over segments chains them, and the chunk walk runs per segment from its entering state.
    walk_segment: int | None = None

MAX_HEAD_DIM = 128  # widest head the kernels hold in registers (the backward holds S and dS whole)


def unsuited(dims: tuple[int, int, bool]) -> str | None:
    """Why this path does not suit dispatch dims (Dk, Dv, walks in segments), or None if it does."""
    return None if max(dims[:2]) <= MAX_HEAD_DIM else f"only for head dims <= {MAX_HEAD_DIM}"


if triton is not None:

    from slabench.kernels.tiles import load_tile as _load

    LOG2_C = tl.constexpr(C.bit_length() - 1)

    @triton.jit
    def _load_row(ptr, stride_t, t, T):
        """A [len(t)] block of a [T] slice (g or beta; zero outside) in float32."""
        return tl.load(ptr + t * stride_t, mask=t < T, other=0.0).to(tl.float32)

    @triton.jit
    def _decay(b, STRICT: tl.constexpr):
        """Gamma [C, C]: e^{b_i - b_j} for j <= i (j < i if STRICT), else 0."""
        i = tl.arange(0, b.shape[0])
        keep = (i[:, None] > i[None, :]) if STRICT else (i[:, None] >= i[None, :])
        return tl.exp(tl.where(keep, b[:, None] - b[None, :], float("-inf")))

    @triton.jit
    def _to_chunk_end(kc, gc):
        """(b_C, K e^{b_C - b} [BT, BK]) of a chunk's keys kc and log decays gc [BT]: its total log
        decay and its keys decayed to its end, as every walk over chunks uses them."""
        bC = tl.sum(gc, axis=0)
        return bC, kc * tl.exp(bC - tl.cumsum(gc, axis=0))[:, None]

    @triton.jit
    def _entering(hs, i_bh, i_s, N, SEG, kk, vv, mS, Dk: tl.constexpr, Dv: tl.constexpr,
                  BK: tl.constexpr, BV: tl.constexpr, SEGMENTED: tl.constexpr):
        """What a walk over segment i_s starts from [BK, BV]: hs [B*H, NS, Dk, Dv] at it (the state, or
        the gradient, `_segment_scan` left there) when SEGMENTED, else zero."""
        if SEGMENTED:
            S = tl.load(hs + (i_bh * tl.cdiv(N, SEG) + i_s) * Dk * Dv + kk[:, None] * Dv + vv[None, :], mask=mS, other=0.0)
        else:
            S = tl.zeros([BK, BV], dtype=tl.float32)
        return S

    @triton.jit
    def _ut_inverse(M, PREC: tl.constexpr):
        """Tinv = (I + M)^-1 [C, C] of a chunk's strictly lower M, by doubling diagonal blocks."""
        r = tl.arange(0, M.shape[0])
        X = tl.where(r[:, None] == r[None, :], 1.0, 0.0) - tl.where((r[:, None] ^ 1) == r[None, :], M, 0.0)  # [C, C]: blocks of 2
        for i in tl.static_range(1, LOG2_C):  # blocks of 2^i -> 2^(i+1)
            L = tl.where(((r[:, None] >> i) ^ 1) == (r[None, :] >> i), M, 0.0)  # below the blocks, within their pairs
            X -= tl.dot(X, tl.dot(L, X, input_precision=PREC), input_precision=PREC)
        return X

    @triton.jit
    def _prepare(k, v, g, beta, tinv, u, w, T, H,
                 sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                 Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                 PREC: tl.constexpr):
        """Tinv [B*H, N*C, C], u = Tinv (beta V) [B*H, T, Dv] and w = Tinv (beta K e^b) [B*H, T, Dk], float32."""
        i_n, i_bh = tl.program_id(0), tl.program_id(1)
        i_b, i_h = i_bh // H, i_bh % H
        kk, vv, c = tl.arange(0, BK), tl.arange(0, BV), tl.arange(0, BT)
        t = i_n * BT + c
        kc = _load(k + i_b * sk_b + i_h * sk_h, sk_t, t, T, kk, Dk)  # [BT, BK]
        vc = _load(v + i_b * sv_b + i_h * sv_h, sv_t, t, T, vv, Dv)  # [BT, BV]
        b = tl.cumsum(_load_row(g + i_b * sg_b + i_h * sg_h, sg_t, t, T), axis=0)  # [BT]
        bc = _load_row(beta + i_b * sb_b + i_h * sb_h, sb_t, t, T)
        M = bc[:, None] * tl.dot(kc, tl.trans(kc), input_precision=PREC) * _decay(b, True)  # [BT, BT]
        Tinv = _ut_inverse(M, PREC)
        tl.store(tinv + ((i_bh * tl.cdiv(T, BT) + i_n) * BT + c[:, None]) * BT + c[None, :], Tinv)
        uc = tl.dot(Tinv, vc * bc[:, None], input_precision=PREC)  # [BT, BV]
        wc = tl.dot(Tinv, kc * (bc * tl.exp(b))[:, None], input_precision=PREC)  # [BT, BK]
        mt = t[:, None] < T
        tl.store(u + i_bh * T * Dv + t[:, None] * Dv + vv[None, :], uc, mask=mt & (vv[None, :] < Dv))
        tl.store(w + i_bh * T * Dk + t[:, None] * Dk + kk[None, :], wc, mask=mt & (kk[None, :] < Dk))

    @triton.jit(do_not_specialize=["SEG"])  # SEG = N unsegmented: no compile per length class
    def _forward(k, g, uv, w, h, ht, hs, T, H, SEG, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h,
                 Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                 PREC: tl.constexpr, STORE_STATE: tl.constexpr, SEGMENTED: tl.constexpr):
        """The state walk for value columns of block program_id(1) over the SEG chunks of segment
        program_id(2): h [B*H, N, Dk, Dv], the state entering each chunk, and uv [B*H, T, Dv]: u in, v_new
        out (each element read before it is written). SEGMENTED: the walk starts from the segment's
        entering state in hs [B*H, NS, Dk, Dv] (`_segment_scan`), else from zero."""
        i_bh, i_s = tl.program_id(0), tl.program_id(2)
        i_b, i_h = i_bh // H, i_bh % H
        k, g = k + i_b * sk_b + i_h * sk_h, g + i_b * sg_b + i_h * sg_h
        uv, w = uv + i_bh * T * Dv, w + i_bh * T * Dk
        N = tl.cdiv(T, BT)
        h += i_bh * N * Dk * Dv
        kk, c = tl.arange(0, BK), tl.arange(0, BT)
        vv = tl.program_id(1) * BV + tl.arange(0, BV)
        mS = (kk[:, None] < Dk) & (vv[None, :] < Dv)
        S = _entering(hs, i_bh, i_s, N, SEG, kk, vv, mS, Dk, Dv, BK, BV, SEGMENTED)  # [BK, BV]
        n0 = i_s * SEG
        t = n0 * BT + c
        kn, gn = _load(k, sk_t, t, T, kk, Dk), _load_row(g, sg_t, t, T)
        wn, un = _load(w, Dk, t, T, kk, Dk), _load(uv, Dv, t, T, vv, Dv)
        for n in range(n0, tl.minimum(n0 + SEG, N)):
            t = n * BT + c
            kc, gc, wc, uc = kn, gn, wn, un
            # the next chunk's inputs, loaded while this chunk computes (they do not depend on S)
            kn, gn = _load(k, sk_t, t + BT, T, kk, Dk), _load_row(g, sg_t, t + BT, T)
            wn, un = _load(w, Dk, t + BT, T, kk, Dk), _load(uv, Dv, t + BT, T, vv, Dv)
            bC, kd = _to_chunk_end(kc, gc)
            tl.store(h + n * Dk * Dv + kk[:, None] * Dv + vv[None, :], S, mask=mS)
            v_new = uc - tl.dot(wc, S, input_precision=PREC)  # [BT, BV]
            tl.store(uv + t[:, None] * Dv + vv[None, :], v_new, mask=(t[:, None] < T) & (vv[None, :] < Dv))
            S = S * tl.exp(bC) + tl.dot(tl.trans(kd), v_new, input_precision=PREC)
        if STORE_STATE:
            tl.store(ht + i_bh * Dk * Dv + kk[:, None] * Dv + vv[None, :], S, mask=mS)

    @triton.jit
    def _segment_maps(k, g, uv, w, P, Q, T, H, SEG, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h,
                      Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                      PREC: tl.constexpr):
        """A segment's map of the state, S_out = P S_in + Q, for segment program_id(0) and value block
        program_id(2): per chunk S <- A S + (K e^{b_C - b})^T u with A = e^{b_C} I - (K e^{b_C - b})^T w, so
        P <- A P and Q <- A Q + (K e^{b_C - b})^T u over its chunks. P [B*H, NS, Dk, Dk] (stored by value
        block 0), Q [B*H, NS, Dk, Dv]."""
        i_s, i_bh = tl.program_id(0), tl.program_id(1)
        i_b, i_h = i_bh // H, i_bh % H
        k, g = k + i_b * sk_b + i_h * sk_h, g + i_b * sg_b + i_h * sg_h
        uv, w = uv + i_bh * T * Dv, w + i_bh * T * Dk
        N = tl.cdiv(T, BT)
        kk, kj, c = tl.arange(0, BK), tl.arange(0, BK), tl.arange(0, BT)
        vv = tl.program_id(2) * BV + tl.arange(0, BV)
        Pm = tl.where(kk[:, None] == kj[None, :], 1.0, 0.0)  # [BK, BK]
        Qm = tl.zeros([BK, BV], dtype=tl.float32)
        for n in range(i_s * SEG, tl.minimum(i_s * SEG + SEG, N)):
            t = n * BT + c
            kc, gc = _load(k, sk_t, t, T, kk, Dk), _load_row(g, sg_t, t, T)
            wc, uc = _load(w, Dk, t, T, kk, Dk), _load(uv, Dv, t, T, vv, Dv)
            bC, kd = _to_chunk_end(kc, gc)
            kdT = tl.trans(kd)  # [BK, BT]
            Pm = Pm * tl.exp(bC) - tl.dot(kdT, tl.dot(wc, Pm, input_precision=PREC), input_precision=PREC)
            Qm = Qm * tl.exp(bC) - tl.dot(kdT, tl.dot(wc, Qm, input_precision=PREC) - uc, input_precision=PREC)
        NS = tl.cdiv(N, SEG)
        mP = (kk[:, None] < Dk) & (kj[None, :] < Dk)
        if tl.program_id(2) == 0:
            tl.store(P + (i_bh * NS + i_s) * Dk * Dk + kk[:, None] * Dk + kj[None, :], Pm, mask=mP)
        tl.store(Q + (i_bh * NS + i_s) * Dk * Dv + kk[:, None] * Dv + vv[None, :], Qm,
                 mask=(kk[:, None] < Dk) & (vv[None, :] < Dv))

    @triton.jit
    def _segment_scan(P, Q, hs, ht, NS, Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                      PREC: tl.constexpr, STORE_STATE: tl.constexpr, REVERSE: tl.constexpr):
        """The walk over segments for value block program_id(1): hs [B*H, NS, Dk, Dv] gets the state
        entering each segment, S <- P S + Q from S = 0 (`_segment_maps`). REVERSE: the backward's walk
        over the gradient leaving each segment, dS <- P^T dS + Q from the last segment (the map of dS
        through a segment is the transpose of the state's, in reverse order)."""
        i_bh = tl.program_id(0)
        kk, kj = tl.arange(0, BK), tl.arange(0, BK)
        vv = tl.program_id(1) * BV + tl.arange(0, BV)
        mS, mP = (kk[:, None] < Dk) & (vv[None, :] < Dv), (kk[:, None] < Dk) & (kj[None, :] < Dk)
        S = tl.zeros([BK, BV], dtype=tl.float32)
        for m in range(NS):
            s = NS - 1 - m if REVERSE else m
            tl.store(hs + (i_bh * NS + s) * Dk * Dv + kk[:, None] * Dv + vv[None, :], S, mask=mS)
            Pm = tl.load(P + (i_bh * NS + s) * Dk * Dk + kk[:, None] * Dk + kj[None, :], mask=mP, other=0.0)
            if REVERSE:
                Pm = tl.trans(Pm)  # the gradient's map: P^T
            Qm = tl.load(Q + (i_bh * NS + s) * Dk * Dv + kk[:, None] * Dv + vv[None, :], mask=mS, other=0.0)
            S = tl.dot(Pm, S, input_precision=PREC) + Qm
        if STORE_STATE:
            tl.store(ht + i_bh * Dk * Dv + kk[:, None] * Dv + vv[None, :], S, mask=mS)

    @triton.jit
    def _output(q, k, g, vn, h, o, T, H, scale, sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                PREC: tl.constexpr):
        """o [B, T, H, Dv] of one chunk from its entering state and v_new."""
        i_n, i_bh = tl.program_id(0), tl.program_id(1)
        i_b, i_h = i_bh // H, i_bh % H
        kk, vv, t = tl.arange(0, BK), tl.arange(0, BV), i_n * BT + tl.arange(0, BT)
        qc = _load(q + i_b * sq_b + i_h * sq_h, sq_t, t, T, kk, Dk)  # [BT, BK]
        kc = _load(k + i_b * sk_b + i_h * sk_h, sk_t, t, T, kk, Dk)
        b = tl.cumsum(_load_row(g + i_b * sg_b + i_h * sg_h, sg_t, t, T), axis=0)  # [BT]
        v_new = _load(vn + i_bh * T * Dv, Dv, t, T, vv, Dv)  # [BT, BV]
        state = (i_bh * tl.cdiv(T, BT) + i_n) * Dk * Dv + kk[:, None] * Dv + vv[None, :]
        S = tl.load(h + state, mask=(kk[:, None] < Dk) & (vv[None, :] < Dv), other=0.0)  # [BK, BV]
        A = tl.dot(qc, tl.trans(kc), input_precision=PREC) * _decay(b, False)  # [BT, BT]
        oc = scale * (tl.dot(qc * tl.exp(b)[:, None], S, input_precision=PREC) + tl.dot(A, v_new, input_precision=PREC))
        o += i_b * so_b + i_h * so_h
        tl.store(o + t[:, None] * so_t + vv[None, :], oc.to(o.dtype.element_ty), mask=(t[:, None] < T) & (vv[None, :] < Dv))

    @triton.jit
    def _backward_local(q, k, g, do, dvn, dhl, T, H, scale,
                        sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                        Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                        PREC: tl.constexpr):
        """The reverse walk's terms that need no state: dvn = A^T dO [B*H, T, Dv] and
        dhl = (scale Q e^b)^T dO [B*H, N, Dk, Dv] of one chunk."""
        i_n, i_bh = tl.program_id(0), tl.program_id(1)
        i_b, i_h = i_bh // H, i_bh % H
        kk, vv, t = tl.arange(0, BK), tl.arange(0, BV), i_n * BT + tl.arange(0, BT)
        qc = _load(q + i_b * sq_b + i_h * sq_h, sq_t, t, T, kk, Dk)  # [BT, BK]
        kc = _load(k + i_b * sk_b + i_h * sk_h, sk_t, t, T, kk, Dk)
        b = tl.cumsum(_load_row(g + i_b * sg_b + i_h * sg_h, sg_t, t, T), axis=0)  # [BT]
        doc = _load(do + i_b * so_b + i_h * so_h, so_t, t, T, vv, Dv)  # [BT, BV]
        A = scale * tl.dot(qc, tl.trans(kc), input_precision=PREC) * _decay(b, False)  # [BT, BT]
        tl.store(dvn + i_bh * T * Dv + t[:, None] * Dv + vv[None, :], tl.dot(tl.trans(A), doc, input_precision=PREC),
                 mask=(t[:, None] < T) & (vv[None, :] < Dv))
        dS = tl.dot(tl.trans(qc * (scale * tl.exp(b))[:, None]), doc, input_precision=PREC)  # [BK, BV]
        state = (i_bh * tl.cdiv(T, BT) + i_n) * Dk * Dv + kk[:, None] * Dv + vv[None, :]
        tl.store(dhl + state, dS, mask=(kk[:, None] < Dk) & (vv[None, :] < Dv))

    @triton.jit(do_not_specialize=["SEG"])  # SEG = N unsegmented: no compile per length class
    def _backward_state(k, g, w, dvn, dhl, dh, dhs, T, H, SEG, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h,
                        Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                        PREC: tl.constexpr, SEGMENTED: tl.constexpr):
        """Reverse walk over the SEG chunks of segment program_id(2): dvn [B*H, T, Dv] (A^T dO in,
        dv_new out) and dh [B*H, N, Dk, Dv], the gradient of the state leaving each chunk. SEGMENTED:
        the walk starts from the gradient leaving the segment, dhs [B*H, NS, Dk, Dv], else from zero."""
        i_bh, i_s = tl.program_id(0), tl.program_id(2)
        i_b, i_h = i_bh // H, i_bh % H
        k, g = k + i_b * sk_b + i_h * sk_h, g + i_b * sg_b + i_h * sg_h
        w, dvn = w + i_bh * T * Dk, dvn + i_bh * T * Dv
        N = tl.cdiv(T, BT)
        dh, dhl = dh + i_bh * N * Dk * Dv, dhl + i_bh * N * Dk * Dv
        kk, c = tl.arange(0, BK), tl.arange(0, BT)
        vv = tl.program_id(1) * BV + tl.arange(0, BV)
        mS = (kk[:, None] < Dk) & (vv[None, :] < Dv)
        dS = _entering(dhs, i_bh, i_s, N, SEG, kk, vv, mS, Dk, Dv, BK, BV, SEGMENTED)  # [BK, BV]
        first, last = i_s * SEG, tl.minimum(i_s * SEG + SEG, N) - 1
        t = last * BT + c
        kn, gn, wn = _load(k, sk_t, t, T, kk, Dk), _load_row(g, sg_t, t, T), _load(w, Dk, t, T, kk, Dk)
        dvln, dSln = _load(dvn, Dv, t, T, vv, Dv), tl.load(dhl + last * Dk * Dv + kk[:, None] * Dv + vv[None, :], mask=mS, other=0.0)
        for m in range(last - first + 1):
            n = last - m
            t = n * BT + c
            kc, gc, wc, dvl, dSl = kn, gn, wn, dvln, dSln
            # the previous chunk's inputs, loaded while this chunk computes (after the first, the first again, unused)
            p = tl.maximum(n - 1, first)
            tp = p * BT + c
            kn, gn = _load(k, sk_t, tp, T, kk, Dk), _load_row(g, sg_t, tp, T)
            wn, dvln = _load(w, Dk, tp, T, kk, Dk), _load(dvn, Dv, tp, T, vv, Dv)
            dSln = tl.load(dhl + p * Dk * Dv + kk[:, None] * Dv + vv[None, :], mask=mS, other=0.0)
            bC, kd = _to_chunk_end(kc, gc)
            tl.store(dh + n * Dk * Dv + kk[:, None] * Dv + vv[None, :], dS, mask=mS)
            dv_new = dvl + tl.dot(kd, dS, input_precision=PREC)  # [BT, BV]
            tl.store(dvn + t[:, None] * Dv + vv[None, :], dv_new, mask=(t[:, None] < T) & (vv[None, :] < Dv))
            dS = dS * tl.exp(bC) + dSl - tl.dot(tl.trans(wc), dv_new, input_precision=PREC)

    @triton.jit
    def _segment_maps_backward(k, g, w, dvn, dhl, Q, T, H, SEG, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h,
                               Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                               BT: tl.constexpr, PREC: tl.constexpr):
        """The reverse walk's map through segment program_id(0), dS_in = P^T dS_out + Q, for value block
        program_id(2): per chunk (last first) dS <- A^T dS + dSl - w^T (A^T dO), A^T = e^{b_C} I -
        w^T (K e^{b_C - b}), so Q <- A^T Q + dSl - w^T (A^T dO); P is the forward's. Q [B*H, NS, Dk, Dv]."""
        i_s, i_bh = tl.program_id(0), tl.program_id(1)
        i_b, i_h = i_bh // H, i_bh % H
        k, g = k + i_b * sk_b + i_h * sk_h, g + i_b * sg_b + i_h * sg_h
        w, dvn = w + i_bh * T * Dk, dvn + i_bh * T * Dv
        N = tl.cdiv(T, BT)
        dhl += i_bh * N * Dk * Dv
        kk, c = tl.arange(0, BK), tl.arange(0, BT)
        vv = tl.program_id(2) * BV + tl.arange(0, BV)
        mS = (kk[:, None] < Dk) & (vv[None, :] < Dv)
        Qm = tl.zeros([BK, BV], dtype=tl.float32)
        first, last = i_s * SEG, tl.minimum(i_s * SEG + SEG, N) - 1
        for m in range(last - first + 1):
            n = last - m
            t = n * BT + c
            kc, gc, wc = _load(k, sk_t, t, T, kk, Dk), _load_row(g, sg_t, t, T), _load(w, Dk, t, T, kk, Dk)
            dvl = _load(dvn, Dv, t, T, vv, Dv)  # [BT, BV]
            dSl = tl.load(dhl + n * Dk * Dv + kk[:, None] * Dv + vv[None, :], mask=mS, other=0.0)
            bC, kd = _to_chunk_end(kc, gc)
            Qm = Qm * tl.exp(bC) + dSl - tl.dot(tl.trans(wc), tl.dot(kd, Qm, input_precision=PREC) + dvl, input_precision=PREC)
        tl.store(Q + (i_bh * tl.cdiv(N, SEG) + i_s) * Dk * Dv + kk[:, None] * Dv + vv[None, :], Qm, mask=mS)

    @triton.jit
    def _grads_through_output_and_state(q, k, g, do, vn, h, dh, dq, T, H, scale, i_n, i_bh,
                                        sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                                        Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                                        BT: tl.constexpr, PREC: tl.constexpr):
        """The first half of a chunk's gradients: the terms through o = (scale Q e^b) S + A v_new
        (A = tril(scale Q K^T * Gamma)) and S' = e^{b_C} S + (K e^{b_C - b})^T v_new. Stores dq (final
        here) and returns k's gradient so far [BT, BK] and db [BT], the log decays' (b_C's at the last row)."""
        i_b, i_h = i_bh // H, i_bh % H
        kk, vv, c = tl.arange(0, BK), tl.arange(0, BV), tl.arange(0, BT)
        t = i_n * BT + c
        N = tl.cdiv(T, BT)
        qc = _load(q + i_b * sq_b + i_h * sq_h, sq_t, t, T, kk, Dk)  # [BT, BK]
        kc = _load(k + i_b * sk_b + i_h * sk_h, sk_t, t, T, kk, Dk)
        doc = _load(do + i_b * so_b + i_h * so_h, so_t, t, T, vv, Dv)  # [BT, BV]
        gc = _load_row(g + i_b * sg_b + i_h * sg_h, sg_t, t, T)  # [BT]
        b, bC = tl.cumsum(gc, axis=0), tl.sum(gc, axis=0)
        eb, ed = tl.exp(b), tl.exp(bC - b)  # decay from the chunk start, and to its end
        state = (i_bh * N + i_n) * Dk * Dv + tl.arange(0, BK)[:, None] * Dv + vv[None, :]
        mS = (kk[:, None] < Dk) & (vv[None, :] < Dv)
        S = tl.load(h + state, mask=mS, other=0.0)  # [BK, BV]
        v_new = _load(vn + i_bh * T * Dv, Dv, t, T, vv, Dv)  # [BT, BV]
        dQd = tl.dot(doc, tl.trans(S), input_precision=PREC)  # [BT, BK]
        db = tl.sum(dQd * qc * (scale * eb)[:, None], axis=1)  # db_i: every term carrying e^{+b_i}, minus e^{-b_i}
        dAG = scale * tl.where(c[:, None] >= c[None, :], tl.dot(doc, tl.trans(v_new), input_precision=PREC), 0.0)
        dAG = dAG * _decay(b, False)  # gradient of the Q K^T entries
        dqc = dQd * (scale * eb)[:, None] + tl.dot(dAG, kc, input_precision=PREC)
        row_k = (i_b * T * H + i_h) * Dk  # outputs: [B, T, H, D] contiguous
        tl.store(dq + row_k + t[:, None] * H * Dk + kk[None, :], dqc.to(dq.dtype.element_ty),
                 mask=(t[:, None] < T) & (kk[None, :] < Dk))
        dkc = tl.dot(tl.trans(dAG), qc, input_precision=PREC)
        dAA = dAG * tl.dot(qc, tl.trans(kc), input_precision=PREC)  # dA * A
        db += tl.sum(dAA, axis=1) - tl.sum(dAA, axis=0)
        dS = tl.load(dh + state, mask=mS, other=0.0)
        dKd = tl.dot(v_new, tl.trans(dS), input_precision=PREC)  # [BT, BK]
        dkc += dKd * ed[:, None]
        dKdk = tl.sum(dKd * kc * ed[:, None], axis=1)
        dbC = tl.sum(dKdk, axis=0) + tl.exp(bC) * tl.sum(tl.sum(S * dS, axis=1), axis=0)
        return dkc, db - dKdk + tl.where(c == BT - 1, dbC, 0.0)

    @triton.jit
    def _grads_through_transform(k, v, g, beta, tinv, w, vn, h, dvn, dk, dv, dg, dbeta, dkc, db, T, H, i_n, i_bh,
                                 sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                                 Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                                 BT: tl.constexpr, PREC: tl.constexpr):
        """The second half: the terms through v_new = u - w S with [u, w] = Tinv [beta V, beta K e^b]
        and (I + M) u = beta V, M = strict_tril(diag(beta) K K^T * Gamma). Adds to the first half's
        dkc and db and stores dk, dv, dg and dbeta."""
        i_b, i_h = i_bh // H, i_bh % H
        kk, vv, c = tl.arange(0, BK), tl.arange(0, BV), tl.arange(0, BT)
        t = i_n * BT + c
        N = tl.cdiv(T, BT)
        kc = _load(k + i_b * sk_b + i_h * sk_h, sk_t, t, T, kk, Dk)  # [BT, BK]
        b = tl.cumsum(_load_row(g + i_b * sg_b + i_h * sg_h, sg_t, t, T), axis=0)
        eb = tl.exp(b)
        S = tl.load(h + (i_bh * N + i_n) * Dk * Dv + kk[:, None] * Dv + vv[None, :],
                    mask=(kk[:, None] < Dk) & (vv[None, :] < Dv), other=0.0)  # [BK, BV]
        dv_new = _load(dvn + i_bh * T * Dv, Dv, t, T, vv, Dv)  # [BT, BV]
        TinvT = tl.trans(tl.load(tinv + (i_bh * N + i_n) * BT * BT + c[:, None] * BT + c[None, :]))  # [BT, BT]
        dVb = tl.dot(TinvT, dv_new, input_precision=PREC)  # [BT, BV]: gradient of beta V
        dKb = -tl.dot(TinvT, tl.dot(dv_new, tl.trans(S), input_precision=PREC), input_precision=PREC)  # of beta K e^b
        bc = _load_row(beta + i_b * sb_b + i_h * sb_h, sb_t, t, T)
        row_k, row_v = (i_b * T * H + i_h) * Dk, (i_b * T * H + i_h) * Dv  # outputs: [B, T, H, D] contiguous
        mk, mv = (t[:, None] < T) & (kk[None, :] < Dk), (t[:, None] < T) & (vv[None, :] < Dv)
        tl.store(dv + row_v + t[:, None] * H * Dv + vv[None, :], (dVb * bc[:, None]).to(dv.dtype.element_ty), mask=mv)
        vc = _load(v + i_b * sv_b + i_h * sv_h, sv_t, t, T, vv, Dv)
        dbc = tl.sum(dVb * vc, axis=1) + tl.sum(dKb * kc * eb[:, None], axis=1)
        dkc += dKb * (bc * eb)[:, None]
        db += tl.sum(dKb * kc * (bc * eb)[:, None], axis=1)
        wc = _load(w + i_bh * T * Dk, Dk, t, T, kk, Dk)  # [BT, BK]
        u = _load(vn + i_bh * T * Dv, Dv, t, T, vv, Dv) + tl.dot(wc, S, input_precision=PREC)
        dM = tl.dot(dVb, tl.trans(u), input_precision=PREC) + tl.dot(dKb, tl.trans(wc), input_precision=PREC)
        G = -tl.where(c[:, None] > c[None, :], dM, 0.0) * _decay(b, True)  # of the K K^T entries, over beta_i
        KK = tl.dot(kc, tl.trans(kc), input_precision=PREC)
        dbc += tl.sum(G * KK, axis=1)
        dMM = G * KK * bc[:, None]  # dM * M
        db += tl.sum(dMM, axis=1) - tl.sum(dMM, axis=0)
        dkc += tl.dot(G * bc[:, None], kc, input_precision=PREC) + tl.dot(tl.trans(G), kc * bc[:, None], input_precision=PREC)
        tl.store(dk + row_k + t[:, None] * H * Dk + kk[None, :], dkc.to(dk.dtype.element_ty), mask=mk)
        tl.store(dbeta + i_b * T * H + i_h + t * H, dbc.to(dbeta.dtype.element_ty), mask=t < T)
        dgc = tl.cumsum(db, axis=0, reverse=True)  # b = cumsum(g)
        tl.store(dg + i_b * T * H + i_h + t * H, dgc.to(dg.dtype.element_ty), mask=t < T)

    @triton.jit
    def _backward_chunk(q, k, v, g, beta, do, tinv, w, vn, h, dh, dvn, dq, dk, dv, dg, dbeta, T, H, scale,
                        sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                        so_b, so_t, so_h,
                        Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, BT: tl.constexpr,
                        PREC: tl.constexpr):
        """dq, dk, dv [B, T, H, D] and dg, dbeta [B, T, H] (contiguous) of one chunk, from its inputs, the
        state entering it (S), the gradient of the state leaving it (dS), the forward's Tinv, w, v_new
        and the reverse walk's dv_new (derivation in docs/speed.md). The kernel is bound by registers,
        so the terms come in the order that ends each [BT, BT] tile's life soonest: each output is
        stored once final, and A, K K^T and u are recomputed where they are used rather than kept."""
        i_n, i_bh = tl.program_id(0), tl.program_id(1)
        dkc, db = _grads_through_output_and_state(q, k, g, do, vn, h, dh, dq, T, H, scale, i_n, i_bh,
                                                  sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                                                  Dk, Dv, BK, BV, BT, PREC)
        _grads_through_transform(k, v, g, beta, tinv, w, vn, h, dvn, dk, dv, dg, dbeta, dkc, db, T, H, i_n, i_bh,
                                 sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                                 Dk, Dv, BK, BV, BT, PREC)

    @triton.jit
    def _backward_chunk_first(q, k, g, do, vn, h, dh, dq, dkp, dbp, T, H, scale,
                              sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                              Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                              BT: tl.constexpr, PREC: tl.constexpr):
        """`_backward_chunk`'s first half as its own kernel (`DeltaRuleConfig.split_backward`): dq, and
        k's and the decays' gradients so far into float32 scratch dkp [B*H, T, Dk], dbp [B*H, T]."""
        i_n, i_bh = tl.program_id(0), tl.program_id(1)
        dkc, db = _grads_through_output_and_state(q, k, g, do, vn, h, dh, dq, T, H, scale, i_n, i_bh,
                                                  sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                                                  Dk, Dv, BK, BV, BT, PREC)
        kk, t = tl.arange(0, BK), i_n * BT + tl.arange(0, BT)
        tl.store(dkp + i_bh * T * Dk + t[:, None] * Dk + kk[None, :], dkc, mask=(t[:, None] < T) & (kk[None, :] < Dk))
        tl.store(dbp + i_bh * T + t, db, mask=t < T)

    @triton.jit
    def _backward_chunk_second(k, v, g, beta, tinv, w, vn, h, dvn, dkp, dbp, dk, dv, dg, dbeta, T, H,
                               sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                               Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                               BT: tl.constexpr, PREC: tl.constexpr):
        """`_backward_chunk`'s second half as its own kernel, from the first's scratch."""
        i_n, i_bh = tl.program_id(0), tl.program_id(1)
        kk, t = tl.arange(0, BK), i_n * BT + tl.arange(0, BT)
        dkc = _load(dkp + i_bh * T * Dk, Dk, t, T, kk, Dk)
        db = tl.load(dbp + i_bh * T + t, mask=t < T, other=0.0)
        _grads_through_transform(k, v, g, beta, tinv, w, vn, h, dvn, dk, dv, dg, dbeta, dkc, db, T, H, i_n, i_bh,
                                 sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, sb_b, sb_t, sb_h,
                                 Dk, Dv, BK, BV, BT, PREC)


SEGMENT = 16  # chunks per segment when `_walks` segments the walks


@functools.lru_cache
def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def _walks(B: int, H: int, T: int, Dv: int, device: torch.device, config: DeltaRuleConfig) -> tuple[int, int, int, int]:
    """(BV, value blocks, chunks per segment, segments) of the two walks over a call's N chunks:
    value columns in blocks of walk_block; one segment of N chunks (the plain walk) unless
    `config.walk_segment` says otherwise, or, automatically, segments of SEGMENT chunks where the
    walks' programs would fill under half the GPU's SMs and the sequence holds at least four
    segments (never on CPU, the interpreter)."""
    N = -(-T // C)
    BV = min(max(16, 1 << (Dv - 1).bit_length()), config.walk_block)  # `_meta`'s BV, capped
    nvb = -(-Dv // BV)
    if config.walk_segment is not None:
        seg = N if config.walk_segment == 0 else min(config.walk_segment, N)
    elif device.type == "cuda" and B * H * nvb < _sm_count(device) // 2 and N >= 4 * SEGMENT:
        seg = SEGMENT
    else:
        seg = N
    return BV, nvb, seg, -(-N // seg)


def walks_in_segments(q: torch.Tensor, v: torch.Tensor, config: DeltaRuleConfig = DeltaRuleConfig()) -> bool:
    """Whether a call on q [B, T, H, Dk], v [B, T, H, Dv] walks in segments (`_walks`)."""
    B, T, H = q.shape[:3]
    return _walks(B, H, T, v.shape[-1], q.device, config)[3] > 1


def _strides(x: torch.Tensor) -> tuple[int, int, int]:
    """(batch, time, head) strides of x [B, T, H, ...] (the last dim, if any, is contiguous)."""
    return x.stride(0), x.stride(1), x.stride(2)


def _meta(Dk: int, Dv: int, dtype: torch.dtype) -> dict:
    """Block sizes; float32 inputs get tf32x3 products, near float32 (tf32 would cost them ~1e-3
    relative; ieee products did not compile the backward at Dv 128 within 5 minutes)."""
    BK, BV = max(16, triton.next_power_of_2(Dk)), max(16, triton.next_power_of_2(Dv))
    return {"Dk": Dk, "Dv": Dv, "BK": BK, "BV": BV, "BT": C, "PREC": "tf32x3" if dtype == torch.float32 else "tf32"}


class DeltaRuleFused(torch.autograd.Function):
    """`delta_rule` in seven Triton kernels (six unsplit); same contract as `delta_rule_chunk`."""

    @staticmethod
    def forward(ctx, q, k, v, g, beta, scale: float, output_final_state: bool, config: DeltaRuleConfig):
        q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
        B, T, H, Dk = q.shape
        Dv = v.shape[-1]
        N = triton.cdiv(T, C)
        meta = _meta(Dk, Dv, q.dtype)
        BV, nvb, seg, NS = _walks(B, H, T, Dv, q.device, config)
        walk = {**meta, "BV": BV}
        f32 = {"device": q.device, "dtype": torch.float32}
        tinv = torch.empty(B * H, N * C, C, **f32)
        uv, w = torch.empty(B * H, T, Dv, **f32), torch.empty(B * H, T, Dk, **f32)
        h = torch.empty(B * H, N, Dk, Dv, **f32)
        o = torch.empty(B, T, H, Dv, device=q.device, dtype=q.dtype)
        ht = torch.empty(B, H, Dk, Dv, **f32) if output_final_state else None
        _prepare[(N, B * H)](k, v, g, beta, tinv, uv, w, T, H, *_strides(k), *_strides(v), *_strides(g), *_strides(beta),
                             num_warps=config.prepare_warps, **meta)
        P = hs = None
        if NS > 1:  # each segment's map, then the walk over segments: the state entering each
            P, Q, hs = torch.empty(B * H, NS, Dk, Dk, **f32), torch.empty(B * H, NS, Dk, Dv, **f32), torch.empty(B * H, NS, Dk, Dv, **f32)
            _segment_maps[(NS, B * H, nvb)](k, g, uv, w, P, Q, T, H, seg, *_strides(k), *_strides(g),
                                            num_warps=config.walk_warps, **walk)
            _segment_scan[(B * H, nvb)](P, Q, hs, hs if ht is None else ht, NS, Dk, Dv, walk["BK"], BV, meta["PREC"],
                                        STORE_STATE=output_final_state, REVERSE=False, num_warps=config.walk_warps)
        _forward[(B * H, nvb, NS)](
            k, g, uv, w, h, h if ht is None else ht, h if hs is None else hs, T, H, seg, *_strides(k), *_strides(g),
            STORE_STATE=output_final_state and NS == 1, SEGMENTED=NS > 1, num_warps=config.walk_warps, **walk)
        _output[(N, B * H)](q, k, g, uv, h, o, T, H, scale, *_strides(q), *_strides(k), *_strides(g), *_strides(o), **meta)
        ctx.save_for_backward(q, k, v, g, beta, tinv, w, uv, h, *([] if P is None else [P]))
        ctx.scale, ctx.config = scale, config
        if ht is not None:
            ctx.mark_non_differentiable(ht)
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, g, beta, tinv, w, vn, h, *P = ctx.saved_tensors  # P: the segments' state maps, if segmented
        do = do if do.stride(-1) == 1 else do.contiguous()
        B, T, H, Dk = q.shape
        Dv = v.shape[-1]
        N = triton.cdiv(T, C)
        meta = _meta(Dk, Dv, q.dtype)
        BV, nvb, seg, NS = _walks(B, H, T, Dv, q.device, ctx.config)  # the forward's, from the same inputs
        walk = {**meta, "BV": BV}
        dvn = torch.empty(B * H, T, Dv, device=q.device, dtype=torch.float32)
        dhl, dh = (torch.empty(B * H, N, Dk, Dv, device=q.device, dtype=torch.float32) for _ in range(2))
        _backward_local[(N, B * H)](q, k, g, do, dvn, dhl, T, H, ctx.scale,
                                    *_strides(q), *_strides(k), *_strides(g), *_strides(do), **meta)
        dhs = None
        if NS > 1:  # each segment's map of the gradient (before the walk overwrites dvn), then the walk over them
            Q, dhs = (torch.empty(B * H, NS, Dk, Dv, device=q.device, dtype=torch.float32) for _ in range(2))
            _segment_maps_backward[(NS, B * H, nvb)](k, g, w, dvn, dhl, Q, T, H, seg, *_strides(k), *_strides(g),
                                                     num_warps=ctx.config.walk_warps, **walk)
            _segment_scan[(B * H, nvb)](P[0], Q, dhs, dhs, NS, Dk, Dv, walk["BK"], BV, meta["PREC"],
                                        STORE_STATE=False, REVERSE=True, num_warps=ctx.config.walk_warps)
        _backward_state[(B * H, nvb, NS)](
            k, g, w, dvn, dhl, dh, dh if dhs is None else dhs, T, H, seg, *_strides(k), *_strides(g),
            SEGMENTED=NS > 1, num_warps=ctx.config.walk_warps, **walk)
        dq, dk = (torch.empty(B, T, H, Dk, device=q.device, dtype=x.dtype) for x in (q, k))  # contiguous
        dv = torch.empty(B, T, H, Dv, device=q.device, dtype=v.dtype)
        dg, dbeta = torch.empty(B, T, H, device=q.device, dtype=g.dtype), torch.empty(B, T, H, device=q.device, dtype=beta.dtype)
        if ctx.config.split_backward:
            dkp = torch.empty(B * H, T, Dk, device=q.device, dtype=torch.float32)
            dbp = torch.empty(B * H, T, device=q.device, dtype=torch.float32)
            _backward_chunk_first[(N, B * H)](
                q, k, g, do, vn, h, dh, dq, dkp, dbp, T, H, ctx.scale,
                *_strides(q), *_strides(k), *_strides(g), *_strides(do), num_warps=ctx.config.chunk_warps, **meta)
            _backward_chunk_second[(N, B * H)](
                k, v, g, beta, tinv, w, vn, h, dvn, dkp, dbp, dk, dv, dg, dbeta, T, H,
                *_strides(k), *_strides(v), *_strides(g), *_strides(beta), num_warps=ctx.config.chunk_warps, **meta)
        else:
            _backward_chunk[(N, B * H)](
                q, k, v, g, beta, do, tinv, w, vn, h, dh, dvn, dq, dk, dv, dg, dbeta, T, H, ctx.scale,
                *_strides(q), *_strides(k), *_strides(v), *_strides(g), *_strides(beta), *_strides(do),
                num_warps=ctx.config.chunk_warps, **meta)
        return dq, dk, dv, dg, dbeta, None, None, None


def delta_rule_fused(q, k, v, g, beta, scale=None, output_final_state=False, config: DeltaRuleConfig = DeltaRuleConfig()):
    """`delta_rule` through `DeltaRuleFused`: (o [B, T, H, Dv] in q's dtype, final state [B, H, Dk, Dv] float32 or None)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return DeltaRuleFused.apply(q, k, v, g, beta, scale, output_final_state, config)

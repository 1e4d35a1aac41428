"""Gated linear attention for short sequences: one Triton program per (batch, head, value block).

Same op as `gla_chunk` in `reference.py` (fla's layout, q, k [B, T, H, Dk], v [B, T, H, Dv], decay g None,
[B, T, H] or [B, T, H, Dk]). At synthetic-task sizes fla's chunk_gla is bound by its ~10
kernel launches per direction, not by work: at B64 T256 H8 Dk8 Dv16 on an H100 it takes
0.40 ms fwd+bwd even replayed from a CUDA graph. Here each program walks its sequence in
chunks of C = 16 tokens with the state [Dk, Dv] in registers, so the forward is one kernel
and the backward two (dq in a forward sweep, then dk, dv, dg in a reverse sweep). The walk is
sequential in T, so the op offers this path for short sequences only (`SHORT_T`). Values wider
than a program holds are split into blocks, one program each: the state's columns evolve
independently, so o and dv split exactly, while dq, dk and dg are sums over value columns, each
block writing its share (float32 scratch, summed by torch); q dq enters dg once, in block 0.

Per chunk, with b the cumulative log decay from the chunk start (inclusive) and b_C its total:

    o_i  = scale * [(q_i e^{b_i}) S + sum_{j <= i} (sum_d q_id k_jd e^{b_id - b_jd}) v_j]
    S   <- e^{b_C} S + sum_j (k_j e^{b_C - b_j})^T v_j

With one decay per head (RetNet's, Mamba-2's) the chunk's decays are one [C, C] matrix,
D_ij = e^{b_i - b_j}, and the intra-chunk scores are (q k^T) * D. With a decay per channel they
factorise, sum_d q_id k_jd e^{b_id - b_jd} = (q e^b)(k e^-b)^T, one tensor-core product, while
e^-b stays below e^60; a chunk with stronger decays takes them pairwise instead ([C, C, Dk],
every exponent <= 0), so no decay can overflow. Gradients: dq from the same forward sweep; dk,
dv from the state gradient dH carried backwards; dg_s = sum_{t >= s} (q_t dq_t - k_t dk_t)
(fla's identity). Inputs may be strided views (the split of a fused projection): only the
last dim must be contiguous. The final state is returned without a gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None

C = 16  # chunk length: the smallest tl.dot size
# Per-channel decays (op 'gla'): wider heads spill registers, the pairwise form holding [C, C, Dk]
# decays; at Dk = Dv = 64 this path was 1.9x fla's chunk_gla (H100).
MAX_HEAD_DIM = 32
# One decay per head, or none (op 'simple_gla'): the chunk's decays are one [C, C] matrix, so the
# state [Dk, Dv] is the widest tile; 64 keeps it at 32 float32 registers a thread at 4 warps.
MAX_HEAD_DIM_PER_HEAD_DECAY = 64
SHORT_T = 1024  # longest T this path takes; beyond it fla's chunk-parallel kernels win (docs/speed.md)
# Values wider than a program holds are split into blocks, one program each (the state's columns
# evolve independently); the key side is not split, so keys stay within the widths above.
VALUE_BLOCKS = 4  # most value blocks a call takes: values up to 4x the widest head


@dataclass(frozen=True)
class GLAShortConfig:
    """Launch settings of the three kernels (scripts/gla-paths.py sweeps them)."""

    num_warps: int | None = None  # None: chosen by state size in `_meta`
    value_block: int | None = None  # value columns a program holds; None: the widest head of the decay form


def unsuited(dims: tuple[int, int, bool], widest: int = MAX_HEAD_DIM) -> str | None:
    """Why this path does not suit a call of dispatch dims (Dk, Dv, T <= SHORT_T), or None if it does."""
    if dims[2] and dims[0] <= widest and dims[1] <= VALUE_BLOCKS * widest:
        return None
    return f"only for T <= {SHORT_T}, keys <= {widest} and values <= {VALUE_BLOCKS * widest} wide"


def unsuited_per_head_decay(dims: tuple[int, int, bool]) -> str | None:
    """`unsuited` for op 'simple_gla' (one decay per head, or none): heads up to 64 wide."""
    return unsuited(dims, MAX_HEAD_DIM_PER_HEAD_DECAY)


if triton is not None:

    from slabench.kernels.tiles import load_tile as _load

    @triton.jit
    def _decays(g, sg_t, t, T, kk, Dk, G_MODE: tl.constexpr, CS: tl.constexpr, BK: tl.constexpr):
        """(b [C, BK] cumulative log decay within the chunk, b_C [BK] its total); zeros if G_MODE 0."""
        if G_MODE == 2:  # per channel, g [B, T, H, Dk]
            gc = _load(g, sg_t, t, T, kk, Dk)
        elif G_MODE == 1:  # per head, g [B, T, H]: the same decay on every key channel
            gh = tl.load(g + t * sg_t, mask=t < T, other=0.0).to(tl.float32)
            gc = tl.where(kk[None, :] < Dk, gh[:, None], 0.0)
        else:
            gc = tl.zeros([CS, BK], dtype=tl.float32)
        return tl.cumsum(gc, axis=0), tl.sum(gc, axis=0)

    @triton.jit
    def _pairwise(b, G_MODE: tl.constexpr, CS: tl.constexpr):
        """E [C, C, BK]: e^{b_i - b_j} for j <= i, else 0 (the causal mask when there is no decay)."""
        i = tl.arange(0, CS)
        causal = (i[:, None] >= i[None, :])[:, :, None]  # [C, C, 1]
        if G_MODE == 0:
            E = tl.where(causal, 1.0, 0.0)
        else:
            E = tl.exp(tl.where(causal, b[:, None, :] - b[None, :, :], float("-inf")))
        return E

    @triton.jit
    def _head_decays(g, sg_t, t, T, CS: tl.constexpr):
        """D [C, C]: e^{b_i - b_j} for j <= i, else 0, with b the cumulative per-head log decay within
        the chunk (g [B, T, H]); every exponent <= 0, so nothing overflows at any decay."""
        b = tl.cumsum(tl.load(g + t * sg_t, mask=t < T, other=0.0).to(tl.float32), axis=0)  # [CS]
        c = tl.arange(0, CS)
        return tl.exp(tl.where(c[:, None] >= c[None, :], b[:, None] - b[None, :], float("-inf")))

    @triton.jit
    def _factorised(b, bC):
        """Whether (q e^b)(k e^-b)^T is safe in this chunk: e^-b stays below e^60 (b >= b_C)."""
        return tl.min(bC, axis=0) > -60.0

    @triton.jit
    def _gla_fwd(q, k, v, g, o, ht, T, H, scale,
                 sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                 Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, CS: tl.constexpr,
                 G_MODE: tl.constexpr, STORE_STATE: tl.constexpr):
        i_b, i_h = tl.program_id(0) // H, tl.program_id(0) % H
        q, k, v, o = q + i_b * sq_b + i_h * sq_h, k + i_b * sk_b + i_h * sk_h, v + i_b * sv_b + i_h * sv_h, o + i_b * so_b + i_h * so_h
        g += i_b * sg_b + i_h * sg_h
        kk, vv, c = tl.arange(0, BK), tl.program_id(1) * BV + tl.arange(0, BV), tl.arange(0, CS)  # value block program_id(1)
        S = tl.zeros([BK, BV], dtype=tl.float32)
        for t0 in range(0, T, CS):
            t = t0 + c
            qc, kc, vc = _load(q, sq_t, t, T, kk, Dk), _load(k, sk_t, t, T, kk, Dk), _load(v, sv_t, t, T, vv, Dv)
            b, bC = _decays(g, sg_t, t, T, kk, Dk, G_MODE, CS, BK)  # [CS, BK], [BK]
            if G_MODE == 1:  # one decay per head: q k^T times the chunk's [C, C] decays
                A = tl.dot(qc, tl.trans(kc)) * _head_decays(g, sg_t, t, T, CS)
            elif G_MODE == 0 or _factorised(b, bC):  # tensor cores: A = (q e^b)(k e^-b)^T, masked
                A = tl.where(c[:, None] >= c[None, :], tl.dot(qc * tl.exp(b), tl.trans(kc * tl.exp(-b))), 0.0)
            else:  # decays too strong to factorise: the pairwise form, every exponent <= 0
                A = tl.sum(qc[:, None, :] * kc[None, :, :] * _pairwise(b, G_MODE, CS), axis=2)  # [CS, CS]
            oc = scale * (tl.dot(qc * tl.exp(b), S) + tl.dot(A, vc))  # [CS, BV]
            tl.store(o + t[:, None] * so_t + vv[None, :], oc.to(o.dtype.element_ty),
                     mask=(t[:, None] < T) & (vv[None, :] < Dv))
            S = S * tl.exp(bC)[:, None] + tl.dot(tl.trans(kc * tl.exp(bC[None, :] - b)), vc)
        if STORE_STATE:
            ht += tl.program_id(0) * Dk * Dv
            tl.store(ht + kk[:, None] * Dv + vv[None, :], S, mask=(kk[:, None] < Dk) & (vv[None, :] < Dv))

    @triton.jit
    def _gla_bwd_dq(q, k, v, g, do, dq, T, H, scale,
                    sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                    Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, CS: tl.constexpr,
                    G_MODE: tl.constexpr):
        """dq_i = scale * [e^{b_i} (S do_i) + sum_{j <= i} (do_i . v_j) k_j e^{b_i - b_j}], float32, contiguous:
        the share of value block program_id(1) (a sum over value columns), [blocks, B, H, T, Dk]."""
        i_b, i_h = tl.program_id(0) // H, tl.program_id(0) % H
        k, v, do = k + i_b * sk_b + i_h * sk_h, v + i_b * sv_b + i_h * sv_h, do + i_b * so_b + i_h * so_h
        g += i_b * sg_b + i_h * sg_h
        dq += (tl.program_id(1) * tl.num_programs(0) + tl.program_id(0)) * T * Dk  # [T, Dk] per (block, b, h)
        kk, vv, c = tl.arange(0, BK), tl.program_id(1) * BV + tl.arange(0, BV), tl.arange(0, CS)
        S = tl.zeros([BK, BV], dtype=tl.float32)
        for t0 in range(0, T, CS):
            t = t0 + c
            kc, vc, doc = _load(k, sk_t, t, T, kk, Dk), _load(v, sv_t, t, T, vv, Dv), _load(do, so_t, t, T, vv, Dv)
            b, bC = _decays(g, sg_t, t, T, kk, Dk, G_MODE, CS, BK)
            dA = tl.where(c[:, None] >= c[None, :], tl.dot(doc, tl.trans(vc)), 0.0)  # [CS, CS]: do_i . v_j, j <= i
            if G_MODE == 1:
                dqc = tl.dot(doc, tl.trans(S)) * tl.exp(b) + tl.dot(dA * _head_decays(g, sg_t, t, T, CS), kc)
            elif G_MODE == 0 or _factorised(b, bC):
                dqc = (tl.dot(doc, tl.trans(S)) + tl.dot(dA, kc * tl.exp(-b))) * tl.exp(b)
            else:
                E = _pairwise(b, G_MODE, CS)  # [CS, CS, BK]
                dqc = tl.dot(doc, tl.trans(S)) * tl.exp(b) + tl.sum(dA[:, :, None] * kc[None, :, :] * E, axis=1)
            tl.store(dq + t[:, None] * Dk + kk[None, :], scale * dqc, mask=(t[:, None] < T) & (kk[None, :] < Dk))
            S = S * tl.exp(bC)[:, None] + tl.dot(tl.trans(kc * tl.exp(bC[None, :] - b)), vc)

    @triton.jit
    def _gla_bwd_dkv(q, k, v, g, do, dq32, dq, dk, dv, dg, T, H, scale, blk_k, blk_g,
                     sq_b, sq_t, sq_h, sk_b, sk_t, sk_h, sv_b, sv_t, sv_h, sg_b, sg_t, sg_h, so_b, so_t, so_h,
                     Dk: tl.constexpr, Dv: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, CS: tl.constexpr,
                     G_MODE: tl.constexpr):
        """Reverse sweep: dk, dv, dg (and dq cast to the input dtype); outputs contiguous [B, T, H, D].
        Value block program_id(1) writes dv's columns and its shares of dk and dg (sums over value
        columns) at dk + block * blk_k, dg + block * blk_g (blk 0 with one block: the outputs)."""
        i_b, i_h = tl.program_id(0) // H, tl.program_id(0) % H
        q, k, v, do = q + i_b * sq_b + i_h * sq_h, k + i_b * sk_b + i_h * sk_h, v + i_b * sv_b + i_h * sv_h, do + i_b * so_b + i_h * so_h
        g += i_b * sg_b + i_h * sg_h
        dq32 += tl.program_id(0) * T * Dk
        row_k, row_v = (i_b * T * H + i_h) * Dk, (i_b * T * H + i_h) * Dv  # outputs: [B, T, H, D] contiguous
        dq, dk, dv = dq + row_k, dk + tl.program_id(1) * blk_k + row_k, dv + row_v
        dg += tl.program_id(1) * blk_g
        first = tl.program_id(1) == 0  # q dq (dq is whole: the sum over blocks) counts once, in block 0
        kk, vv, c = tl.arange(0, BK), tl.program_id(1) * BV + tl.arange(0, BV), tl.arange(0, CS)
        dH = tl.zeros([BK, BV], dtype=tl.float32)  # gradient of the state leaving the chunk
        dg_later = tl.zeros([BK], dtype=tl.float32)  # sum of q dq - k dk over later chunks
        N = tl.cdiv(T, CS)
        for m in range(N):
            t = (N - 1 - m) * CS + c
            qc, kc = _load(q, sq_t, t, T, kk, Dk), _load(k, sk_t, t, T, kk, Dk)
            vc, doc = _load(v, sv_t, t, T, vv, Dv), _load(do, so_t, t, T, vv, Dv)
            dqc = _load(dq32, Dk, t, T, kk, Dk)
            b, bC = _decays(g, sg_t, t, T, kk, Dk, G_MODE, CS, BK)
            causal = c[:, None] >= c[None, :]  # rows i (queries), columns j (keys)
            dA = tl.where(causal, tl.dot(doc, tl.trans(vc)), 0.0)  # [CS, CS]
            if G_MODE == 1:
                D = _head_decays(g, sg_t, t, T, CS)  # [CS, CS]
                A = scale * tl.dot(qc, tl.trans(kc)) * D
                dk_intra = tl.dot(tl.trans(dA * D), qc)  # [CS, BK]
            elif G_MODE == 0 or _factorised(b, bC):
                q_dec, k_inv = qc * tl.exp(b), kc * tl.exp(-b)
                A = scale * tl.where(causal, tl.dot(q_dec, tl.trans(k_inv)), 0.0)  # [CS, CS]
                dk_intra = tl.dot(tl.trans(dA), q_dec) * tl.exp(-b)  # [CS, BK]
            else:
                E = _pairwise(b, G_MODE, CS)  # [CS, CS, BK]
                A = scale * tl.sum(qc[:, None, :] * kc[None, :, :] * E, axis=2)
                dk_intra = tl.sum(dA[:, :, None] * qc[:, None, :] * E, axis=0)
            k_end = kc * tl.exp(bC[None, :] - b)  # keys decayed to the chunk's end
            dvc = tl.dot(tl.trans(A), doc) + tl.dot(k_end, dH)  # [CS, BV]
            dkc = scale * dk_intra + tl.exp(bC[None, :] - b) * tl.dot(vc, tl.trans(dH))
            db = tl.where(first, qc * dqc, 0.0) - kc * dkc  # [CS, BK]
            dgc = tl.cumsum(db, axis=0, reverse=True) + dg_later[None, :]
            dg_later += tl.sum(db, axis=0)
            dH = dH * tl.exp(bC)[:, None] + scale * tl.dot(tl.trans(qc * tl.exp(b)), doc)
            mk, mv = (t[:, None] < T) & (kk[None, :] < Dk), (t[:, None] < T) & (vv[None, :] < Dv)
            if first:
                tl.store(dq + t[:, None] * H * Dk + kk[None, :], dqc.to(dq.dtype.element_ty), mask=mk)
            tl.store(dk + t[:, None] * H * Dk + kk[None, :], dkc.to(dk.dtype.element_ty), mask=mk)
            tl.store(dv + t[:, None] * H * Dv + vv[None, :], dvc.to(dv.dtype.element_ty), mask=mv)
            if G_MODE == 2:
                tl.store(dg + row_k + t[:, None] * H * Dk + kk[None, :], dgc, mask=mk)
            elif G_MODE == 1:  # per-head decay: its gradient sums over the key channels
                tl.store(dg + i_b * T * H + i_h + t * H, tl.sum(dgc, axis=1), mask=t < T)


def _strides(x: torch.Tensor | None) -> tuple[int, int, int]:
    """(batch, time, head) strides of x [B, T, H, ...]; zeros if absent (the last dim is contiguous)."""
    return (0, 0, 0) if x is None else (x.stride(0), x.stride(1), x.stride(2))


class GLAShort(torch.autograd.Function):
    """`gla` for short sequences in three Triton kernels; same contract as `gla_chunk`."""

    @staticmethod
    def forward(ctx, q, k, v, g, scale: float, output_final_state: bool, config: GLAShortConfig):
        q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
        B, T, H, Dk = q.shape
        Dv = v.shape[-1]
        g_mode = 0 if g is None else g.dim() - 2  # none, per head [B, T, H], per channel [B, T, H, Dk]
        g = None if g is None else g.float().contiguous()
        o = torch.empty(B, T, H, Dv, device=q.device, dtype=q.dtype)
        ht = torch.empty(B, H, Dk, Dv, device=q.device, dtype=torch.float32) if output_final_state else None
        meta = _meta(Dk, Dv, g_mode, config)
        _gla_fwd[(B * H, triton.cdiv(Dv, meta["BV"]))](q, k, v, q if g is None else g, o, ht if ht is not None else o, T, H, scale,
                           *_strides(q), *_strides(k), *_strides(v), *_strides(g), *_strides(o),
                           STORE_STATE=output_final_state, **meta)
        ctx.save_for_backward(q, k, v, g)
        ctx.scale, ctx.g_mode, ctx.config = scale, g_mode, config
        if ht is not None:
            ctx.mark_non_differentiable(ht)
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, g = ctx.saved_tensors
        do = do if do.stride(-1) == 1 else do.contiguous()
        B, T, H, Dk = q.shape
        Dv = v.shape[-1]
        meta = _meta(Dk, Dv, ctx.g_mode, ctx.config)
        nvb = triton.cdiv(Dv, meta["BV"])  # value blocks: dq, dk and dg are sums of their shares
        strides = (*_strides(q), *_strides(k), *_strides(v), *_strides(g), *_strides(do))
        gp = q if g is None else g
        dq32 = torch.empty(nvb, B, H, T, Dk, device=q.device, dtype=torch.float32)
        _gla_bwd_dq[(B * H, nvb)](q, k, v, gp, do, dq32, T, H, ctx.scale, *strides, **meta)
        dq32 = dq32.sum(0) if nvb > 1 else dq32[0]  # [B, H, T, Dk]
        dq = torch.empty(B, T, H, Dk, device=q.device, dtype=q.dtype)  # contiguous
        dv = torch.empty(B, T, H, Dv, device=q.device, dtype=v.dtype)
        # one block writes dk and dg whole; several write float32 shares, summed below
        dk = torch.empty(B, T, H, Dk, device=q.device, dtype=k.dtype) if nvb == 1 else torch.empty(nvb, B, T, H, Dk, device=q.device)
        dg = None if g is None else torch.empty_like(g) if nvb == 1 else torch.empty(nvb, *g.shape, device=q.device)
        blk_k, blk_g = (0, 0) if nvb == 1 else (dk[0].numel(), 0 if dg is None else dg[0].numel())
        _gla_bwd_dkv[(B * H, nvb)](q, k, v, gp, do, dq32, dq, dk, dv, dq32 if dg is None else dg, T, H, ctx.scale,
                                   blk_k, blk_g, *strides, **meta)
        if nvb > 1:
            dk, dg = dk.sum(0).to(k.dtype), None if dg is None else dg.sum(0)
        return dq, dk, dv, dg, None, None, None


def _meta(Dk: int, Dv: int, g_mode: int, config: GLAShortConfig) -> dict:
    """Block sizes (values in blocks of at most the widest head of the decay form), and warps by
    state size: 2 up to a [16, 32] state, 4 from [32, 32] (fastest of 1, 2, 4 on an H100 at B64
    T256 H8 Dk8, B128 T128 H4 Dk16 Dv32 and B64 T256 H2 Dk32 Dv32)."""
    widest = config.value_block or (MAX_HEAD_DIM if g_mode == 2 else MAX_HEAD_DIM_PER_HEAD_DECAY)
    BK, BV = max(16, triton.next_power_of_2(Dk)), max(16, min(triton.next_power_of_2(Dv), widest))
    return {"Dk": Dk, "Dv": Dv, "BK": BK, "BV": BV, "CS": C, "G_MODE": g_mode, "num_warps": config.num_warps or (4 if BK * BV >= 1024 else 2)}


def gla_short(q, k, v, g=None, scale=None, output_final_state=False, config: GLAShortConfig = GLAShortConfig()):
    """`gla` through `GLAShort`: (o [B, T, H, Dv] in q's dtype, final state [B, H, Dk, Dv] float32 or None)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return GLAShort.apply(q, k, v, g, scale, output_final_state, config)

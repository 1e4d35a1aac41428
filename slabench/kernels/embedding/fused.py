"""The token embedding's backward in Triton for small vocabularies; same op as `embedding_reference`.

Forward, out[n] = weight[idx[n]]: ATen's gather, one kernel already. Backward, the gradient of
row v is the sum of the output gradients at the tokens that read it:

    dweight[v, :] = sum_n [idx[n] == v] dout[n, :]  =  (onehot(idx)^T dout)[v, :]

With more than 3072 indices ATen sorts them first: in a quick-preset training step on an H200
(16,384 tokens, 256 rows) its backward took 82 us of GPU time, about a tenth of the step. Here
a program takes a run of blocks of BN tokens and a block of BD columns, builds the one-hot
[V, BN] of each block's tokens in registers and accumulates onehot @ dout with tensor-core
products (input_precision "tf32x3": the one-hot is exact in tf32, dout is split into a high and a
low tf32 part, so the sum keeps float32's precision). Each program writes its [V, BD] share into
a float32 buffer [programs along the tokens, V, D] that one torch sum finishes, deterministically
(no atomics). About `EmbeddingConfig.programs` programs run whatever the number of tokens, so the
buffer stays near programs x V x BD floats (4 MB at 256 rows). The whole vocabulary sits in one program's
accumulator, so this suits small vocabularies only (`unsuited`); larger ones keep ATen's backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None

MAX_VOCAB = 512  # rows one program's one-hot and accumulator hold (204 registers a thread at 8 warps)


@dataclass(frozen=True)
class EmbeddingConfig:
    """Launch settings, not tuned on a GPU. The tf32x3 products hold three copies of each operand:
    compiled for sm_90 (ptxas), 16-token blocks and 16 columns at 8 warps use 116 registers a
    thread at 256 rows and 204 at 512, no spills (at 4 warps, 64-token blocks and 32 columns, as
    first written, they spilled 1.1-1.5 KB). About 256 programs (an H200 has 132 SMs; at 16,384
    tokens and 128 columns each walks 64 blocks)."""

    block_n: int = 16
    block_d: int = 16
    programs: int = 256
    num_warps: int = 8


def unsuited(dims: tuple[int, int]) -> str | None:
    """Why this path does not suit a call of dispatch dims (rows, columns), or None if it does."""
    return None if dims[0] <= MAX_VOCAB else f"only for vocabularies <= {MAX_VOCAB} rows"


if triton is not None:

    @triton.jit(do_not_specialize=["steps"])  # one compile whatever the number of tokens
    def _embedding_bwd(idx, dout, dw, N, V, D, steps, BN: tl.constexpr, BV: tl.constexpr, BD: tl.constexpr):
        """dw[program_id(0)] [V, D] (float32), columns of block program_id(1): the share of
        onehot(idx)^T dout of this program's `steps` blocks of BN tokens."""
        v = tl.arange(0, BV)  # [BV]
        d = tl.program_id(1) * BD + tl.arange(0, BD)  # [BD]
        acc = tl.zeros([BV, BD], dtype=tl.float32)
        for s in range(steps):
            n = (tl.program_id(0) * steps + s) * BN + tl.arange(0, BN)  # [BN]
            i = tl.load(idx + n, mask=n < N, other=-1)  # [BN]: -1 matches no row
            onehot = (v[:, None] == i[None, :]).to(tl.float32)  # [BV, BN]
            mask = (n[:, None] < N) & (d[None, :] < D)
            g = tl.load(dout + n[:, None].to(tl.int64) * D + d[None, :], mask=mask, other=0.0)  # [BN, BD]
            acc += tl.dot(onehot, g.to(tl.float32), input_precision="tf32x3")
        out = dw + tl.program_id(0).to(tl.int64) * V * D
        tl.store(out + v[:, None] * D + d[None, :], acc, mask=(v[:, None] < V) & (d[None, :] < D))


def _meta(V: int, D: int, config: EmbeddingConfig) -> dict:
    """Block sizes: all V rows (a power of two, at least 16, as tl.dot needs), the config's tokens
    and columns."""
    BV = max(16, triton.next_power_of_2(V))
    return {"BN": config.block_n, "BV": BV, "BD": config.block_d, "num_warps": config.num_warps}


class EmbeddingTriton(torch.autograd.Function):
    """`embedding` with the Triton backward; same contract as `embedding_reference`."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, idx: torch.Tensor, config: EmbeddingConfig):
        ctx.save_for_backward(idx)
        ctx.config, ctx.shape, ctx.dtype = config, weight.shape, weight.dtype
        return F.embedding(idx, weight)  # [..., D]

    @staticmethod
    def backward(ctx, dout: torch.Tensor):
        (idx,) = ctx.saved_tensors
        V, D = ctx.shape
        idx = idx.reshape(-1).contiguous()  # [N]
        dout = dout.reshape(-1, D).contiguous()  # [N, D]: autograd hands over a contiguous one (a copy otherwise)
        N = idx.shape[0]
        if N == 0:
            return torch.zeros(V, D, device=dout.device, dtype=ctx.dtype), None, None
        meta = _meta(V, D, ctx.config)
        blocks, column_blocks = triton.cdiv(N, meta["BN"]), triton.cdiv(D, meta["BD"])
        programs = max(1, min(blocks, ctx.config.programs // column_blocks))  # along the tokens
        steps = triton.cdiv(blocks, programs)
        grid = (triton.cdiv(blocks, steps), column_blocks)
        dw = torch.empty(grid[0], V, D, device=dout.device, dtype=torch.float32)  # every program writes its share
        _embedding_bwd[grid](idx, dout, dw, N, V, D, steps, **meta)
        return dw.sum(0).to(ctx.dtype), None, None


def embedding_triton(
    weight: torch.Tensor, idx: torch.Tensor, config: EmbeddingConfig = EmbeddingConfig()
) -> torch.Tensor:
    """weight [V, D] rows at idx [...] -> [..., D] through `EmbeddingTriton`."""
    return EmbeddingTriton.apply(weight, idx, config)

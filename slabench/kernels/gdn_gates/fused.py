"""Gated DeltaNet's gates in Triton, forward and backward; same op as `gdn_gates_reference`.

Per row (one token) and head h, with s = a + dt_bias[h] and c = exp(A_log[h]):

    g    = -c * softplus(s)                 dg/da = -c * sigmoid(s),  dg/dA_log = g
    beta = sigmoid(b)                       dbeta/db = beta (1 - beta)

so da = dg * -c * sigmoid(s), db = dbeta * beta (1 - beta), dA_log = sum_rows dg * g and
ddt_bias = sum_rows da. In ATen this chain is about 7 small kernels forward and 10 backward, two
of them reductions over every row to H values (the parameters' gradients); at synthetic-task
sizes each costs a few microseconds for a tensor one pass reads in less. Here it is one kernel
each way: a program takes a block of rows x all H heads, and in the backward writes its rows'
shares of dA_log and ddt_bias into a float32 buffer [programs, 2, H] that one torch sum
finishes, deterministically (no atomics).

softplus(s) = max(s, 0) + log1p(exp(-|s|)), with log1p(y) = log(u) * y / (u - 1), u = 1 + y
(exact to a few ulp where log(1 + y) would lose y's low bits: dt_bias starts near -7..-2, where
softplus is 1e-3..0.1). ab may be a strided view (its head dim contiguous); g and beta come
back contiguous, g in float32 and beta in ab's dtype; dab in ab's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the reference still works
    triton = None


@dataclass(frozen=True)
class GdnGatesConfig:
    """Launch settings: about this many elements (rows x heads) per program; not tuned on a GPU.
    1024 at 4 warps: 8 per thread and tensor, 128 programs at B64 T256 H8 (an H200 has 132 SMs);
    ptxas (sm_90, the CPU build's Triton) gives the backward 79-88 registers a thread, no spills (2048: 159-168)."""

    block_elements: int = 1024
    num_warps: int = 4


if triton is not None:

    @triton.jit
    def _log1p(y):
        u = 1.0 + y
        d = u - 1.0  # y as rounded into u: log(u) / d is the slope of log at 1 to a few ulp
        return tl.where(d == 0.0, y, tl.log(u) * (y / tl.where(d == 0.0, 1.0, d)))

    @triton.jit
    def _softplus(s):
        return tl.maximum(s, 0.0) + _log1p(tl.exp(-tl.abs(s)))

    @triton.jit
    def _load(ab, A_log, dt_bias, r, h, R, H, s_ab):
        """a, b [rows, heads] in float32 at rows r and heads h, -exp(A_log) and dt_bias [heads], the mask."""
        mask = (r[:, None] < R) & (h[None, :] < H)
        row = ab + r[:, None].to(tl.int64) * s_ab + h[None, :]
        a = tl.load(row, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(row + H, mask=mask, other=0.0).to(tl.float32)
        neg_c = -tl.exp(tl.load(A_log + h, mask=h < H, other=0.0).to(tl.float32))
        bias = tl.load(dt_bias + h, mask=h < H, other=0.0).to(tl.float32)
        return a, b, neg_c, bias, mask

    @triton.jit
    def _gates_fwd(ab, A_log, dt_bias, g, beta, R, H, s_ab, BR: tl.constexpr, BH: tl.constexpr):
        r = tl.program_id(0) * BR + tl.arange(0, BR)  # [BR]
        h = tl.arange(0, BH)  # [BH]
        a, b, neg_c, bias, mask = _load(ab, A_log, dt_bias, r, h, R, H, s_ab)
        s = a + bias[None, :]
        out = r[:, None].to(tl.int64) * H + h[None, :]
        tl.store(g + out, neg_c[None, :] * _softplus(s), mask=mask)
        tl.store(beta + out, tl.sigmoid(b).to(beta.dtype.element_ty), mask=mask)

    @triton.jit
    def _gates_bwd(ab, A_log, dt_bias, dg, dbeta, dab, dparams, R, H, s_ab, BR: tl.constexpr, BH: tl.constexpr):
        """dab [R, 2H] contiguous, and this program's row sums into dparams[program] [2, H]:
        (dA_log, ddt_bias)."""
        r = tl.program_id(0) * BR + tl.arange(0, BR)  # [BR]
        h = tl.arange(0, BH)  # [BH]
        a, b, neg_c, bias, mask = _load(ab, A_log, dt_bias, r, h, R, H, s_ab)
        s = a + bias[None, :]
        out = r[:, None].to(tl.int64) * H + h[None, :]
        dgt = tl.load(dg + out, mask=mask, other=0.0).to(tl.float32)  # [BR, BH]
        g = neg_c[None, :] * _softplus(s)  # recomputed: cheaper than storing and reading it back
        da = dgt * neg_c[None, :] * tl.sigmoid(s)
        beta = tl.sigmoid(b)
        db = tl.load(dbeta + out, mask=mask, other=0.0).to(tl.float32) * beta * (1.0 - beta)
        row = dab + r[:, None].to(tl.int64) * (2 * H) + h[None, :]
        tl.store(row, da.to(dab.dtype.element_ty), mask=mask)
        tl.store(row + H, db.to(dab.dtype.element_ty), mask=mask)
        share = dparams + tl.program_id(0) * 2 * H + h
        tl.store(share, tl.sum(dgt * g, axis=0), mask=h < H)  # masked rows give 0: dg is 0 there
        tl.store(share + H, tl.sum(da, axis=0), mask=h < H)


def _meta(H: int, config: GdnGatesConfig) -> dict:
    BH = triton.next_power_of_2(H)
    return {"BH": BH, "BR": max(16, config.block_elements // BH), "num_warps": config.num_warps}


def _rows(ab: torch.Tensor) -> torch.Tensor:
    """ab as [R, 2H] with its head dim contiguous: a view of a wider projection, else a copy."""
    ab = ab if ab.stride(-1) == 1 else ab.contiguous()
    return ab.reshape(-1, ab.shape[-1])  # a view when the leading dims collapse (a slice of one projection)


class GdnGatesTriton(torch.autograd.Function):
    """`gdn_gates` in one Triton kernel per direction; same contract as `gdn_gates_reference`."""

    @staticmethod
    def forward(ctx, ab: torch.Tensor, A_log: torch.Tensor, dt_bias: torch.Tensor, config: GdnGatesConfig):
        lead, H = ab.shape[:-1], ab.shape[-1] // 2
        rows = _rows(ab)  # [R, 2H]
        R = rows.shape[0]
        meta = _meta(H, config)
        g = torch.empty(R, H, device=ab.device, dtype=torch.float32)
        beta = torch.empty(R, H, device=ab.device, dtype=ab.dtype)
        A_log_c, dt_bias_c = A_log.contiguous(), dt_bias.contiguous()
        if R:
            _gates_fwd[(triton.cdiv(R, meta["BR"]),)](rows, A_log_c, dt_bias_c, g, beta, R, H, rows.stride(0), **meta)
        ctx.save_for_backward(rows, A_log_c, dt_bias_c)
        ctx.config, ctx.lead = config, lead
        return g.view(*lead, H), beta.view(*lead, H)

    @staticmethod
    def backward(ctx, dg: torch.Tensor, dbeta: torch.Tensor):
        # autograd hands an output that fed nothing a zero gradient (materialize_grads, the default)
        rows, A_log, dt_bias = ctx.saved_tensors
        R, H = rows.shape[0], rows.shape[1] // 2
        dg, dbeta = dg.reshape(R, H).contiguous(), dbeta.reshape(R, H).contiguous()
        meta = _meta(H, ctx.config)
        grid = (triton.cdiv(R, meta["BR"]),)
        dab = torch.empty(R, 2 * H, device=rows.device, dtype=rows.dtype)
        dparams = torch.zeros(grid[0], 2, H, device=rows.device, dtype=torch.float32)
        if R:
            _gates_bwd[grid](rows, A_log, dt_bias, dg, dbeta, dab, dparams, R, H, rows.stride(0), **meta)
        dA_log, ddt_bias = dparams.sum(0)  # [H] each
        return dab.view(*ctx.lead, 2 * H), dA_log.to(A_log.dtype), ddt_bias.to(dt_bias.dtype), None


def gdn_gates_triton(
    ab: torch.Tensor, A_log: torch.Tensor, dt_bias: torch.Tensor, config: GdnGatesConfig = GdnGatesConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g float32, beta in ab's dtype) [..., H] through `GdnGatesTriton`, from ab [..., 2H]."""
    return GdnGatesTriton.apply(ab, A_log, dt_bias, config)

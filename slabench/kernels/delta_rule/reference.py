"""Gated delta rule (Gated DeltaNet): a chunked PyTorch reference and a step-by-step oracle.

fla's convention (fla/ops/gated_delta_rule/naive.py), per batch and head, S: [Dk, Dv]:

    S'  = exp(g_t) S_{t-1}
    S_t = S' + beta_t k_t^T (v_t - k_t S')       i.e. exp(g_t)(I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t
    o_t = scale * q_t S_t

g: [B, T, H] log decay (<= 0); beta: [B, T, H] in (0, 1). q and k arrive L2-normalised (or
scaled below unit norm by SLA gates), which keeps the transition contractive.
Returns (o [B, T, H, Dv], final state [B, H, Dk, Dv] or None); computes in float32 (float64
stays float64) and casts o back to the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slabench.kernels.gla.reference import _upcast


def delta_rule_recurrent(q, k, v, g, beta, scale=None, output_final_state=False):
    """The recurrence above, one token at a time (the oracle; slow)."""
    in_dtype = q.dtype
    B, T, H, Dk = q.shape
    scale = Dk**-0.5 if scale is None else scale
    q, k, v, g, beta = _upcast(q, k, v, g, beta)
    S = q.new_zeros(B, H, Dk, v.shape[-1])  # [B, H, Dk, Dv]
    out = []
    for t in range(T):
        S = S * g[:, t].exp()[..., None, None]
        k_t = k[:, t]  # [B, H, Dk]
        err = v[:, t] - torch.einsum("bhk,bhkv->bhv", k_t, S)  # [B, H, Dv]
        S = S + (beta[:, t, :, None, None] * k_t[..., None]) * err[..., None, :]
        out.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t], S))
    return torch.stack(out, dim=1).to(in_dtype), S if output_final_state else None


def delta_rule_chunk(q, k, v, g, beta, scale=None, output_final_state=False, chunk_size=32):
    """Chunked form (WY / UT transform, as fla's naive chunk code) with a triangular solve.

    Inside a chunk, with b = cumulative log decay from the chunk start and
    L_ij = exp(b_i - b_j) for j <= i, the pseudo-values u and decayed keys w solve
    (I + tril(diag(beta) K K^T * L, -1)) [u, w] = [beta V, beta K exp(b)]; then, chunk by chunk,
    v_new = u - w S, o = (Q exp(b)) S + tril(Q K^T * L) v_new and
    S <- exp(b_C) S + (K exp(b_C - b))^T v_new. All exponents are <= 0.
    """
    in_dtype = q.dtype
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    scale = Dk**-0.5 if scale is None else scale
    q, k, v, g, beta = _upcast(q, k, v, g, beta)
    C = chunk_size
    pad = (-T) % C
    if pad:  # beta = 0 and g = 0 on padding: no write, no decay
        q, k, v = (F.pad(x, (0, 0, 0, 0, 0, pad)) for x in (q, k, v))
        g, beta = (F.pad(x, (0, 0, 0, pad)) for x in (g, beta))
    N = (T + pad) // C
    q, k, v = (x.reshape(B, N, C, H, -1).permute(0, 3, 1, 2, 4) for x in (q, k, v))  # [B, H, N, C, D]
    g, beta = (x.reshape(B, N, C, H).permute(0, 3, 1, 2) for x in (g, beta))  # [B, H, N, C]
    q = q * scale
    b = g.cumsum(-1)  # [B, H, N, C]
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    L = (b[..., :, None] - b[..., None, :]).masked_fill(~causal, float("-inf")).exp()  # [B, H, N, C, C]
    k_beta = k * beta[..., None]
    strict = ((k_beta @ k.transpose(-1, -2)) * L).tril(-1)
    eye = torch.eye(C, dtype=q.dtype, device=q.device)
    rhs = torch.cat([v * beta[..., None], k_beta * b[..., None].exp()], dim=-1)  # [B, H, N, C, Dv + Dk]
    uw = torch.linalg.solve_triangular(eye + strict, rhs, upper=False, unitriangular=True)
    u, w = uw[..., :Dv], uw[..., Dv:]
    A = (q @ k.transpose(-1, -2)) * L  # [B, H, N, C, C], causal incl. diagonal
    q_decayed = q * b[..., None].exp()
    k_decayed = k * (b[..., -1:] - b)[..., None].exp()
    S = q.new_zeros(B, H, Dk, Dv)
    out = []
    for n in range(N):
        v_new = u[:, :, n] - w[:, :, n] @ S  # [B, H, C, Dv]
        out.append(q_decayed[:, :, n] @ S + A[:, :, n] @ v_new)
        S = b[:, :, n, -1, None, None].exp() * S + k_decayed[:, :, n].transpose(-1, -2) @ v_new
    o = torch.stack(out, dim=2).permute(0, 2, 3, 1, 4).reshape(B, N * C, H, Dv)[:, :T]  # [B, T, H, Dv]
    return o.to(in_dtype), S if output_final_state else None

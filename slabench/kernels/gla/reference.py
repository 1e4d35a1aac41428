"""Gated linear attention: a chunked PyTorch reference and a step-by-step oracle.

Recurrence, per batch and head (S: [Dk, Dv] state, starts at zero):

    S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t
    o_t = scale * q_t S_t

g is the log decay (<= 0) in one of three forms:
  - None: no decay (plain linear attention);
  - [B, T, H]: one decay per head (RetNet, simple GLA);
  - [B, T, H, Dk]: one decay per key channel (GLA).

Both functions take fla's layout (q, k: [B, T, H, Dk], v: [B, T, H, Dv]) and return
(o [B, T, H, Dv], final state [B, H, Dk, Dv] or None), computing in float32 (float64 stays
float64) and casting o back to the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _upcast(*xs: torch.Tensor | None) -> list[torch.Tensor | None]:
    dtype = torch.float64 if xs[0].dtype == torch.float64 else torch.float32
    return [None if x is None else x.to(dtype) for x in xs]


def gla_recurrent(q, k, v, g=None, scale=None, output_final_state=False):
    """The recurrence above, one token at a time (the oracle; slow)."""
    in_dtype = q.dtype
    B, T, H, Dk = q.shape
    scale = Dk**-0.5 if scale is None else scale
    q, k, v, g = _upcast(q, k, v, g)
    S = q.new_zeros(B, H, Dk, v.shape[-1])  # [B, H, Dk, Dv]
    out = []
    for t in range(T):
        if g is not None:
            decay = g[:, t].exp()  # [B, H] or [B, H, Dk]
            S = S * (decay[..., None, None] if decay.dim() == 2 else decay[..., None])
        S = S + k[:, t, :, :, None] * v[:, t, :, None, :]
        out.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t], S))
    o = torch.stack(out, dim=1)  # [B, T, H, Dv]
    return o.to(in_dtype), S if output_final_state else None


def gla_chunk(q, k, v, g=None, scale=None, output_final_state=False, chunk_size=16):
    """Chunked form: exact attention inside chunks of `chunk_size`, the state carries between them.

    Decays are cumulated relative to the chunk start (b_i <= 0), so every exponential taken is of
    a non-positive number and nothing overflows whatever the decay. Inside a chunk the
    per-channel case factorises sum_d q_id k_jd exp(b_id - b_jd) as (q e^b)(k e^-b)^T while the
    decay over a chunk stays above e^-60; stronger decays would overflow e^-b, and then the
    pairwise form ([C, C, Dk] per chunk, slower) is used.
    """
    in_dtype = q.dtype
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    scale = Dk**-0.5 if scale is None else scale
    q, k, v, g = _upcast(q, k, v, g)
    per_channel = g is not None and g.dim() == 4
    if g is None:
        g = q.new_zeros(B, T, H)
    C = chunk_size
    pad = (-T) % C
    if pad:  # zero keys and values add nothing; zero decay keeps the state
        q, k, v = (F.pad(x, (0, 0, 0, 0, 0, pad)) for x in (q, k, v))
        g = F.pad(g, (0, 0, 0, 0, 0, pad) if per_channel else (0, 0, 0, pad))
    N = (T + pad) // C
    # [B, H, N, C, D] chunks
    q, k, v = (x.reshape(B, N, C, H, -1).permute(0, 3, 1, 2, 4) for x in (q, k, v))
    q = q * scale
    if per_channel:
        b = g.reshape(B, N, C, H, Dk).permute(0, 3, 1, 2, 4).cumsum(3)  # [B, H, N, C, Dk]
    else:
        b = g.reshape(B, N, C, H).permute(0, 3, 1, 2).cumsum(3)[..., None]  # [B, H, N, C, 1]
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()  # [C, C]

    q_decayed = q * b.exp()  # decay from chunk start to i
    if per_channel and b[..., -1, :].min() > -60:
        # Factorised, (q e^b)(k e^-b)^T: plain matmuls, safe while e^-b stays below e^60.
        A = (q_decayed @ (k * (-b).exp()).transpose(-1, -2)).masked_fill(~causal, 0)  # [B, H, N, C, C]
    elif per_channel:
        diff = (b[..., :, None, :] - b[..., None, :, :]).masked_fill(~causal[..., None], float("-inf"))
        A = torch.einsum("bhnijd,bhnjd->bhnij", q[..., :, None, :] * diff.exp(), k)  # [B, H, N, C, C]
    else:
        diff = (b[..., :, None, 0] - b[..., None, :, 0]).masked_fill(~causal, float("-inf"))
        A = (q @ k.transpose(-1, -2)) * diff.exp()  # [B, H, N, C, C]
    o_intra = A @ v  # [B, H, N, C, Dv]

    k_decayed = k * (b[..., -1:, :] - b).exp()  # decay from j to chunk end
    chunk_decay = b[..., -1, :].exp()  # [B, H, N, Dk or 1]
    S = q.new_zeros(B, H, Dk, Dv)
    o_inter = []
    for n in range(N):
        o_inter.append(q_decayed[:, :, n] @ S)  # [B, H, C, Dv]
        S = chunk_decay[:, :, n, :, None] * S + k_decayed[:, :, n].transpose(-1, -2) @ v[:, :, n]
    o = o_intra + torch.stack(o_inter, dim=2)  # [B, H, N, C, Dv]
    o = o.permute(0, 2, 3, 1, 4).reshape(B, N * C, H, Dv)[:, :T]  # [B, T, H, Dv]
    return o.to(in_dtype), S if output_final_state else None

"""Causal softmax attention (SDPA) with rotary positions; optional sliding window."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from slabench.kernels.fold import per_sequence
from slabench.models.base import Mixer
from slabench.params import require


def rotary(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoFormer, half-split form). x: [B, H, T, Dh] -> same."""
    T, Dh = x.shape[-2], x.shape[-1]
    half = Dh // 2
    inv_freq = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)  # [half]
    angles = torch.arange(T, device=x.device, dtype=torch.float32)[:, None] * inv_freq  # [T, half]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    rotated = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return torch.cat([rotated, x[..., 2 * half :]], dim=-1)


@dataclass(frozen=True)
class AttentionOptions:
    rotary: bool = field(default=True, metadata={"help": "rotary positions on q and k"})
    window: int = field(default=0, metadata={"help": "attend to the last `window` tokens only (0: full causal)"})
    attn_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the attention probabilities during training (Zoology's MHA dropout)"}
    )
    bias: bool = field(default=False, metadata={"help": "biases on the qkv and output projections (Zoology's MHA)"})


class Attention(Mixer):
    """Multi-head causal self-attention through `F.scaled_dot_product_attention`, optionally
    over a sliding window."""

    Options = AttentionOptions

    def __init__(self, d_model: int, n_heads: int, options: AttentionOptions | None = None):
        super().__init__(d_model, n_heads, options)
        window = self.options.window
        require(d_model % n_heads == 0, "attention", f"d_model={d_model} must be divisible by n_heads={n_heads}")
        require(window >= 0, "attention", f"window={window} must be >= 0 (0 = full causal)")
        p = self.options.attn_dropout
        require(0 <= p < 1, "attention", f"attn_dropout={p} must be in [0, 1)")
        self.use_rotary, self.window = self.options.rotary, window
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=self.options.bias)
        self.out = nn.Linear(d_model, d_model, bias=self.options.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        H = self.n_heads
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)  # 3 x [B, H, T, Dh]
        if self.use_rotary:
            q, k = rotary(q), rotary(k)
        p = self.options.attn_dropout if self.training else 0.0
        # per_sequence: in a batched run (a fold) the members' sequences join the batch of one call
        if self.window > 0:
            i = torch.arange(T, device=x.device)
            mask = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < self.window)  # [T, T]
            y = per_sequence(F.scaled_dot_product_attention, q, k, v, attn_mask=mask, dropout_p=p)
        else:
            y = per_sequence(F.scaled_dot_product_attention, q, k, v, is_causal=True, dropout_p=p)  # [B, H, T, Dh]
        return self.out(y.transpose(1, 2).reshape(B, T, D))

    def state_size(self, seq_len: int) -> int:
        # The KV cache: keys and values of every token kept (or of the last `window`).
        kept = min(seq_len, self.window) if self.window > 0 else seq_len
        return 2 * kept * self.d_model

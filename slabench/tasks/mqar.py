"""Multi-query associative recall (MQAR), with Zoology's semantics.

Layout of one example (T = seq_len, K = num_kv_pairs):

    k1 v1 k2 v2 ... kK vK | filler ... k_i ? filler ... k_j ? ...
    '---- context: 2K ----' '---- query region: T - 2K ---------'

Keys come from the first half of the vocabulary (id 0 excluded), values from the second half;
keys are distinct within an example, values too. Every key is queried once, at an even offset
`2 * gap` in the query region, gaps drawn without replacement with probability proportional
to `power_a * gap ** (power_a - 1)` (gap = 1..(T - 2K) / 2), as in Zoology. The position of a
query key is labelled with its value; nothing else is scored. Non-query positions hold 0, or
uniform random tokens when `random_non_queries` (Zoology's default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task


def sample_without_replacement(logits: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k distinct indices per row, drawn with probability ~ softmax(logits) (Gumbel top-k).

    logits: [B, N] -> [B, k] long. Equivalent in distribution to numpy's sequential
    `choice(replace=False, p=softmax(logits))`.
    """
    u = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(min=1e-20)
    gumbel = -torch.log(-torch.log(u))  # [B, N]
    return (logits + gumbel).topk(k, dim=-1).indices  # [B, k]


@dataclass(frozen=True)
class MQAR(Task):
    vocab_size: int = field(default=8192, metadata={"help": "tokens; keys use the first half, values the second"})
    seq_len: int = field(default=256, metadata={"help": "tokens per example (even)"})
    num_kv_pairs: int = field(default=16, metadata={"help": "key-value pairs, each queried once"})
    power_a: float = field(default=0.01, metadata={"help": "power-law exponent of query gaps (Zoology)"})
    random_non_queries: bool = field(default=True, metadata={"help": "fill non-query positions with random tokens"})

    version = 1

    def validate(self) -> None:
        w = "mqar"
        require(self.seq_len >= 4 and self.seq_len % 2 == 0, w, f"seq_len={self.seq_len} must be even and >= 4")
        require(self.num_kv_pairs >= 1, w, f"num_kv_pairs={self.num_kv_pairs} must be >= 1")
        require(
            self.num_kv_pairs * 4 <= self.seq_len,
            w,
            f"num_kv_pairs={self.num_kv_pairs} needs num_kv_pairs * 4 <= seq_len (seq_len={self.seq_len})",
        )
        require(
            self.vocab_size > self.seq_len,
            w,
            f"vocab_size={self.vocab_size} must be > seq_len={self.seq_len}",
        )
        require(
            self.vocab_size // 2 - 1 >= self.num_kv_pairs,
            w,
            f"vocab_size={self.vocab_size} leaves fewer than num_kv_pairs={self.num_kv_pairs} distinct keys",
        )
        require(0 < self.power_a <= 1, w, f"power_a={self.power_a} must be in (0, 1]")

    def gap_probs(self) -> torch.Tensor:
        """[S] probability of each query gap 0..S-1, S = (seq_len - 2K) / 2 (Zoology's formula)."""
        space = (self.seq_len - 2 * self.num_kv_pairs) // 2
        gaps = torch.arange(1, space + 1, dtype=torch.float64)
        p = self.power_a * gaps ** (self.power_a - 1)
        return p / p.sum()

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, K, V = batch_size, self.seq_len, self.num_kv_pairs, self.vocab_size
        half, ctx = V // 2, 2 * K
        zeros_k = torch.zeros(B, half - 1, device=device)
        keys = 1 + sample_without_replacement(zeros_k, K, generator)  # [B, K] in [1, V/2)
        zeros_v = torch.zeros(B, V - half, device=device)
        values = half + sample_without_replacement(zeros_v, K, generator)  # [B, K] in [V/2, V)

        log_p = self.gap_probs().log().to(device=device, dtype=torch.float32)
        gaps = sample_without_replacement(log_p.expand(B, -1), K, generator)  # [B, K]
        qpos = ctx + 2 * gaps  # [B, K] positions of the query keys

        inputs = torch.zeros(B, T, dtype=torch.long, device=device)
        inputs[:, 0:ctx:2] = keys
        inputs[:, 1:ctx:2] = values
        if self.random_non_queries:
            noise = torch.randint(V, (B, T - ctx), generator=generator, device=device)
            inputs[:, ctx:] = noise
        inputs.scatter_(1, qpos, keys)
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        labels.scatter_(1, qpos, values)
        slices = {"num_kv_pairs": torch.full((B,), K, device=device)}
        return Batch(inputs, labels, slices)


"""Compositional MQAR: keys of several tokens where no single token identifies the value.

Layout of one example (T = seq_len, K = num_kv_pairs, L = key_len; here L = 2, K = 4):

    a x v1 b y v2 a y v3 b x v4 | noise ... b y noise ... a x noise ...
    '--- context: K * (L + 1) -'  '------ query region: T - K(L+1) ------'
                                         ^ label v2      ^ label v1 (at the last key token)

Each example picks g = K ** (1 / L) distinct tokens for every key slot and takes all g ** L
combinations as its keys (a full grid), in random order: every key token appears in
g ** (L - 1) keys, each with a different value, so only the whole key identifies the value.
Values are distinct. Every key is queried once, in a query slot of L + 1 tokens at offset
(L + 1) * gap of the query region, gaps distinct and drawn with MQAR's power law (`power_a`);
the last key token of a query is labelled with the value, nothing else is scored. Non-query
positions hold 0 or uniform random tokens. Ids: 0 is not used by keys or values; then one
band per key slot, then one band of values (equal bands; ids left over are unused).

This is Zoology's `compositional_mqar` (there key_len = 2) for any key_len.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import distinct_ints, power_law_sampler, shuffle_rows, weighted_distinct


@dataclass(frozen=True)
class MQARCompositional(Task):
    vocab_size: int = field(default=64, metadata={"help": "tokens: 0, one band per key slot, then values"})
    seq_len: int = field(default=32, metadata={"help": "tokens per example"})
    num_kv_pairs: int = field(
        default=4, metadata={"help": "keys: a full grid, so a perfect key_len-th power (4, 9, ...)"}
    )
    key_len: int = field(default=2, metadata={"help": "tokens per key"})
    power_a: float = field(default=0.01, metadata={"help": "power-law exponent of query gaps, in (0, 1] (Zoology)"})
    random_non_queries: bool = field(default=True, metadata={"help": "fill non-query positions with random tokens"})

    version = 1

    @property
    def grid(self) -> int:
        """Distinct tokens per key slot."""
        return round(self.num_kv_pairs ** (1 / self.key_len))

    @property
    def band(self) -> int:
        """Ids per key slot, and value ids."""
        return (self.vocab_size - 1) // (self.key_len + 1)

    @property
    def space(self) -> int:
        """Query slots in the query region."""
        return (self.seq_len - self.num_kv_pairs * (self.key_len + 1)) // (self.key_len + 1)

    def validate(self) -> None:
        w = "mqar-compositional"
        K, L = self.num_kv_pairs, self.key_len
        require(L >= 2, w, f"key_len={L} must be >= 2")
        require(K >= 2**L, w, f"num_kv_pairs={K} must be >= 2 ** key_len = {2**L}")
        require(
            self.grid**L == K,
            w,
            f"num_kv_pairs={K} must be a perfect key_len-th power ({', '.join(str(g**L) for g in (2, 3, 4))}, ...)",
        )
        need = 2 * K * (L + 1)
        require(need <= self.seq_len, w, f"seq_len={self.seq_len} must be >= 2 * num_kv_pairs * (key_len + 1) = {need}")
        need_v = 1 + (L + 1) * K
        require(
            self.vocab_size >= need_v,
            w,
            f"vocab_size={self.vocab_size} must be >= 1 + (key_len + 1) * num_kv_pairs = {need_v} (distinct values)",
        )
        require(0 < self.power_a <= 1, w, f"power_a={self.power_a} must be in (0, 1]")

    def scored_per_row(self) -> int:
        return self.num_kv_pairs  # each key queried once, scored at its last token

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, K, L, V, g, band = (
            batch_size,
            self.seq_len,
            self.num_kv_pairs,
            self.key_len,
            self.vocab_size,
            self.grid,
            self.band,
        )
        val_lo = 1 + L * band
        # g distinct tokens per key slot, slot i from its own band.
        slot_lo = 1 + band * torch.arange(L, device=device)  # [L]
        tokens = torch.stack([distinct_ints(B, band, g, generator, device) for _ in range(L)], dim=1)  # [B, L, g]
        tokens = tokens + slot_lo[:, None]
        # The grid: key j's slot-i token is tokens[:, i, digit i of j in base g]; pairs in random order.
        place = g ** torch.arange(L - 1, -1, -1, device=device)  # [L]
        digits = torch.arange(K, device=device)[:, None] // place % g  # [K, L]
        order = shuffle_rows(torch.arange(K, device=device).expand(B, K), generator)  # [B, K]
        idx = digits[order].transpose(1, 2)  # [B, L, K]
        keys = tokens.gather(2, idx).transpose(1, 2)  # [B, K, L]
        values = val_lo + distinct_ints(B, band, K, generator, device)  # [B, K]

        if self.random_non_queries:
            inputs = torch.randint(V, (B, T), generator=generator, device=device)
        else:
            inputs = torch.zeros(B, T, dtype=torch.long, device=device)
        ctx = K * (L + 1)
        inputs[:, :ctx] = torch.cat([keys, values[:, :, None]], dim=2).reshape(B, ctx)  # a x v1 b y v2 ...
        probs, table = power_law_sampler(self.space, self.power_a, torch.device(device))
        gaps = weighted_distinct(probs, B, K, generator, table)  # [B, K]
        start = ctx + (L + 1) * gaps  # [B, K] first token of each query
        qpos = start[:, :, None] + torch.arange(L, device=device)  # [B, K, L]
        inputs.scatter_(1, qpos.reshape(B, K * L), keys.reshape(B, K * L))
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        labels.scatter_(1, start + L - 1, values)
        slices = {
            "num_kv_pairs": torch.full((B,), K, device=device),
            "seq_len": torch.full((B,), T, device=device),
        }
        return Batch(inputs, labels, slices)

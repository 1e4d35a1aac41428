"""MQAR with overwrites: some keys are rebound to new values, and queries ask for the latest value.

Layout of one example (T = seq_len, K = num_kv_pairs, U = num_updates):

    k1 v1 k2 v2 ... kK vK  kb v'b kd v'd ... | noise ... kb noise ... kd ...
    '- context: 2K -----'  '- updates: 2U -'   '- query region: T - 2K - 2U -'

Keys are distinct (first half of the vocabulary, 0 excluded) and their first values distinct
(second half), as in MQAR. Then U distinct keys, in random order, are bound again, each to a
new value drawn uniformly from the other values (it may equal another key's value). A query
key is labelled with the value bound to it most recently before the query: the update's for an
updated key, else the original. Queries sit at even offsets 2 * gap of the query region, gaps
distinct, drawn with MQAR's power law (`power_a`); non-query positions hold 0 or random tokens.

This is Zoology's `forgetting_mqar` with two changes: an example queries either all U updated
keys or all K - U keys that were not updated (each with probability 1/2; all updated ones when
U = K), so that the per-example slices are exact, where Zoology queries all K keys; and a new
value always differs from the key's previous one (Zoology's generator compares it with another
key's value, so some of its updates rebind the same value).

Slices: `updated` (1: the example's queries ask for updated keys), `gap_bucket` (decile of the
mean distance, in tokens, from a query back to the value of its key's latest binding, as a
fraction of seq_len).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import depth_bucket, distinct_ints, power_law_sampler, weighted_distinct


@dataclass(frozen=True)
class MQAROverwrite(Task):
    vocab_size: int = field(
        default=64, metadata={"help": "tokens; keys use the first half (0 excluded), values the second"}
    )
    seq_len: int = field(default=32, metadata={"help": "tokens per example (even)"})
    num_kv_pairs: int = field(default=4, metadata={"help": "distinct keys, each bound once in the context"})
    num_updates: int = field(default=2, metadata={"help": "keys bound again to a new value after the context"})
    power_a: float = field(default=0.01, metadata={"help": "power-law exponent of query gaps, in (0, 1] (Zoology)"})
    random_non_queries: bool = field(default=True, metadata={"help": "fill non-query positions with random tokens"})

    version = 1

    @property
    def context_len(self) -> int:
        return 2 * (self.num_kv_pairs + self.num_updates)

    @property
    def space(self) -> int:
        """Query slots in the query region."""
        return (self.seq_len - self.context_len) // 2

    def validate(self) -> None:
        w = "mqar-overwrite"
        K, U = self.num_kv_pairs, self.num_updates
        require(self.seq_len >= 4 and self.seq_len % 2 == 0, w, f"seq_len={self.seq_len} must be even and >= 4")
        require(K >= 1, w, f"num_kv_pairs={K} must be >= 1")
        require(1 <= U <= K, w, f"num_updates={U} must be in [1, num_kv_pairs={K}]")
        need = 2 * (K + U) + 2 * K
        require(
            need <= self.seq_len,
            w,
            f"seq_len={self.seq_len} must be >= 2 * (num_kv_pairs + num_updates) + 2 * num_kv_pairs = {need}",
        )
        need_v = 2 * (K + 1)
        require(
            self.vocab_size >= need_v, w, f"vocab_size={self.vocab_size} must be >= 2 * (num_kv_pairs + 1) = {need_v}"
        )
        require(0 < self.power_a <= 1, w, f"power_a={self.power_a} must be in (0, 1]")

    def scored_per_row(self) -> int:
        return self.num_kv_pairs  # a subset of the keys queried, each once

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, K, U, V = batch_size, self.seq_len, self.num_kv_pairs, self.num_updates, self.vocab_size
        half, ctx = V // 2, self.context_len
        keys = 1 + distinct_ints(B, half - 1, K, generator, device)  # [B, K] in [1, V/2)
        first = half + distinct_ints(B, V - half, K, generator, device)  # [B, K] in [V/2, V)
        upd = distinct_ints(B, K, U, generator, device)  # [B, U] which keys are rebound, in binding order
        shift = torch.randint(1, V - half, (B, U), generator=generator, device=device)  # [B, U]
        new = half + (first.gather(1, upd) - half + shift) % (V - half)  # [B, U] uniform over the other values
        latest = first.scatter(1, upd, new)  # [B, K] value of each key after the updates
        # Position of the value token of each key's latest binding.
        bound_at = (2 * torch.arange(K, device=device) + 1).expand(B, K)  # [B, K]
        bound_at = bound_at.scatter(1, upd, 2 * K + 2 * torch.arange(U, device=device).expand(B, U) + 1)

        # Which keys are queried: all updated keys, or all the others.
        is_updated = torch.zeros(B, K, dtype=torch.bool, device=device).scatter_(1, upd, True)  # [B, K]
        if U < K:
            ask_updated = torch.rand(B, 1, generator=generator, device=device) < 0.5  # [B, 1]
        else:
            ask_updated = torch.ones(B, 1, dtype=torch.bool, device=device)
        queried = is_updated == ask_updated  # [B, K]
        # Gaps drawn in order go to the queried keys first, so theirs are the first draws of the
        # successive sampling, as in MQAR.
        order = torch.argsort((~queried).long(), dim=1, stable=True)  # [B, K] queried keys first
        probs, table = power_law_sampler(self.space, self.power_a, torch.device(device))
        gaps = torch.empty(B, K, dtype=torch.long, device=device).scatter_(
            1, order, weighted_distinct(probs, B, K, generator, table)
        )  # [B, K] gap of each key
        qpos = torch.where(queried, ctx + 2 * gaps, T)  # [B, K]; column T is a sink for unqueried keys

        if self.random_non_queries:
            inputs = torch.randint(V, (B, T + 1), generator=generator, device=device)
        else:
            inputs = torch.zeros(B, T + 1, dtype=torch.long, device=device)
        inputs[:, : 2 * K] = torch.stack([keys, first], dim=2).reshape(B, 2 * K)  # k1 v1 k2 v2 ...
        inputs[:, 2 * K : ctx] = torch.stack([keys.gather(1, upd), new], dim=2).reshape(B, 2 * U)
        inputs.scatter_(1, qpos, keys)
        labels = torch.full((B, T + 1), IGNORE, dtype=torch.long, device=device)
        labels.scatter_(1, qpos, latest)

        gap = torch.where(queried, qpos - bound_at, 0).sum(1) // queried.sum(1)  # [B] mean distance
        slices = {
            "num_updates": torch.full((B,), U, device=device),
            "updated": ask_updated.squeeze(1).long(),
            "gap_bucket": depth_bucket(gap, T),
        }
        return Batch(inputs[:, :T].contiguous(), labels[:, :T].contiguous(), slices)

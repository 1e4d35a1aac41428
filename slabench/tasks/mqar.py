"""Multi-query associative recall (MQAR), with Zoology's semantics.

Layout of one example (T = seq_len, K = num_kv_pairs, P = num_passes):

    k1 v1 k2 v2 ... kK vK | (same context again, P times in all) | noise ... k_i noise ... k_j ...
    '---- context: 2K ----'                                        '--- query region: T - 2KP ---'

Keys come from the first half of the vocabulary (id 0 excluded), values from the second half;
keys are distinct within an example, values too. With `num_passes` > 1 the whole key-value
context is repeated verbatim P times before the query region (the "just read twice" setting);
P = 1 is Zoology's task. Every key is queried once, at an even offset `2 * gap` in the query
region, gaps 0..S-1 (S = (T - 2KP) / 2) drawn successively without replacement with
probability proportional to `power_a * (gap + 1) ** (power_a - 1)`, as in Zoology. The position
of a query key is labelled with its value; nothing else is scored. Non-query positions hold 0,
or uniform random tokens from the whole vocabulary when `random_non_queries` (Zoology's
default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import distinct_ints, power_law_probs, power_law_sampler, weighted_distinct


@dataclass(frozen=True)
class MQAR(Task):
    vocab_size: int = field(
        default=8192, metadata={"help": "tokens; keys use the first half (0 excluded), values the second"}
    )
    seq_len: int = field(default=256, metadata={"help": "tokens per example (even)"})
    num_kv_pairs: int = field(default=16, metadata={"help": "key-value pairs, each queried once"})
    power_a: float = field(default=0.01, metadata={"help": "power-law exponent of query gaps, in (0, 1] (Zoology)"})
    random_non_queries: bool = field(default=True, metadata={"help": "fill non-query positions with random tokens"})
    num_passes: int = field(default=1, metadata={"help": "times the key-value context is repeated before the queries"})

    version = 1

    def validate(self) -> None:
        w = "mqar"
        require(self.seq_len >= 4 and self.seq_len % 2 == 0, w, f"seq_len={self.seq_len} must be even and >= 4")
        require(self.num_kv_pairs >= 1, w, f"num_kv_pairs={self.num_kv_pairs} must be >= 1")
        require(self.num_passes >= 1, w, f"num_passes={self.num_passes} must be >= 1")
        need = 2 * self.num_kv_pairs * (self.num_passes + 1)
        require(
            need <= self.seq_len,
            w,
            f"num_kv_pairs={self.num_kv_pairs} needs 2 * num_kv_pairs * (num_passes + 1) = {need} <= "
            f"seq_len={self.seq_len}",
        )
        require(
            self.vocab_size // 2 - 1 >= self.num_kv_pairs,
            w,
            f"vocab_size={self.vocab_size} must be >= 2 * (num_kv_pairs + 1) = {2 * (self.num_kv_pairs + 1)} for "
            "distinct keys",
        )
        require(0 < self.power_a <= 1, w, f"power_a={self.power_a} must be in (0, 1]")

    @property
    def space(self) -> int:
        """Query slots: S = (seq_len - 2KP) / 2."""
        return (self.seq_len - 2 * self.num_kv_pairs * self.num_passes) // 2

    def gap_probs(self) -> torch.Tensor:
        """[S] float64 probability of each query gap 0..S-1 (Zoology's formula)."""
        return power_law_probs(self.space, self.power_a)

    def scored_per_row(self) -> int:
        return self.num_kv_pairs  # each key queried once

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, K, V = batch_size, self.seq_len, self.num_kv_pairs, self.vocab_size
        half, ctx = V // 2, 2 * K * self.num_passes
        keys = 1 + distinct_ints(B, half - 1, K, generator, device)  # [B, K] in [1, V/2)
        values = half + distinct_ints(B, V - half, K, generator, device)  # [B, K] in [V/2, V)
        probs, table = power_law_sampler(self.space, self.power_a, torch.device(device))
        gaps = weighted_distinct(probs, B, K, generator, table)  # [B, K]
        qpos = ctx + 2 * gaps  # [B, K] positions of the query keys

        if self.random_non_queries:
            inputs = torch.randint(V, (B, T), generator=generator, device=device)
        else:
            inputs = torch.zeros(B, T, dtype=torch.long, device=device)
        pairs = torch.stack([keys, values], dim=2).reshape(B, 2 * K)  # [B, 2K] k1 v1 k2 v2 ...
        inputs[:, :ctx] = pairs.repeat(1, self.num_passes)
        inputs.scatter_(1, qpos, keys)
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        labels.scatter_(1, qpos, values)
        slices = {
            "num_kv_pairs": torch.full((B,), K, device=device),
            "seq_len": torch.full((B,), T, device=device),
        }
        return Batch(inputs, labels, slices)

"""Single-query associative recall: K key-value pairs, then one key is asked for at the very end.

Layout of one example (T = seq_len, K = num_kv_pairs):

    k1 v1 k2 v2 ... kK vK  0 0 ... 0  k_i
    '---- context: 2K ----' '-filler-' '-- query: position T-1, labelled v_i

Keys are distinct, drawn from the first half of the vocabulary (id 0 excluded); values are
distinct, drawn from the second half. The queried pair i is uniform over the K pairs. Filler
positions hold 0 (or uniform random tokens with `random_filler`), so a longer seq_len only
moves the query further from the context. Only position T-1 is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import depth_bucket, distinct_ints


@dataclass(frozen=True)
class AR(Task):
    vocab_size: int = field(
        default=8192, metadata={"help": "tokens; keys use the first half (0 excluded), values the second"}
    )
    seq_len: int = field(default=64, metadata={"help": "tokens per example; the query is the last one"})
    num_kv_pairs: int = field(default=16, metadata={"help": "key-value pairs in the context; one is queried"})
    random_filler: bool = field(
        default=False, metadata={"help": "fill the gap before the query with random tokens, not 0"}
    )

    version = 1

    def validate(self) -> None:
        w = "ar"
        require(self.num_kv_pairs >= 1, w, f"num_kv_pairs={self.num_kv_pairs} must be >= 1")
        need = 2 * self.num_kv_pairs + 1
        require(
            need <= self.seq_len,
            w,
            f"num_kv_pairs={self.num_kv_pairs} needs 2 * num_kv_pairs + 1 = {need} <= seq_len={self.seq_len}",
        )
        require(
            self.vocab_size // 2 - 1 >= self.num_kv_pairs,
            w,
            f"vocab_size={self.vocab_size} must be >= 2 * (num_kv_pairs + 1) = {2 * (self.num_kv_pairs + 1)} for "
            "distinct keys",
        )

    def scored_per_row(self) -> int:
        return 1  # the last position

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, K, V = batch_size, self.seq_len, self.num_kv_pairs, self.vocab_size
        half = V // 2
        keys = 1 + distinct_ints(B, half - 1, K, generator, device)  # [B, K] in [1, V/2)
        values = half + distinct_ints(B, V - half, K, generator, device)  # [B, K] in [V/2, V)
        which = torch.randint(K, (B, 1), generator=generator, device=device)  # [B, 1] queried pair

        if self.random_filler:
            inputs = torch.randint(V, (B, T), generator=generator, device=device)
        else:
            inputs = torch.zeros(B, T, dtype=torch.long, device=device)
        inputs[:, : 2 * K] = torch.stack([keys, values], dim=2).reshape(B, 2 * K)  # k1 v1 k2 v2 ...
        inputs[:, -1] = keys.gather(1, which).squeeze(1)
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        labels[:, -1] = values.gather(1, which).squeeze(1)
        slices = {
            "num_kv_pairs": torch.full((B,), K, device=device),
            "seq_len": torch.full((B,), T, device=device),
            "depth_bucket": depth_bucket(which.squeeze(1), K - 1),
        }
        return Batch(inputs, labels, slices)

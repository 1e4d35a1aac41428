"""Noisy in-context recall in the style of MAD (Poli et al., 2024).

Each example fixes a random mapping of K distinct keys to values, then writes a stream of
key-value occurrences, each key drawn uniformly from the K keys. An occurrence whose key
already appeared earlier in the stream is scored: the model must predict its value from the
earlier occurrence. First occurrences are not scored. The stream is long enough (more
occurrences than keys) that every example has a scored position. Single-token keys and values;
T = seq_len:

    k3 v3 n n k1 v1 n k3 v3 k2 v2 n n n k1 v1 ...     n = noise token, from its own vocabulary
                       ^ label v3           ^ label v1  (the key position predicts the value)

round(noise * T) noise tokens (one more when T - round(noise * T) is odd) are inserted between
the pairs; which gaps they go to is uniform over arrangements. Ids: 0 = padding (unused); the
rest split in three equal bands: keys, values, noise (the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import distinct_ints, first_appearance, subset_mask


@dataclass(frozen=True)
class NoisyRecall(Task):
    vocab_size: int = field(default=64, metadata={"help": "tokens: padding, then key, value and noise bands"})
    seq_len: int = field(default=128, metadata={"help": "tokens per example"})
    num_kv_pairs: int = field(default=8, metadata={"help": "distinct keys in the mapping"})
    noise: float = field(default=0.2, metadata={"help": "fraction of tokens that are noise, in [0, 1)"})

    version = 1

    def token_names(self) -> dict[int, str]:
        return {0: "<pad>"}

    @property
    def band(self) -> int:
        return (self.vocab_size - 1) // 3

    @property
    def num_pairs(self) -> int:
        """Key-value occurrences in the stream."""
        return (self.seq_len - round(self.noise * self.seq_len)) // 2

    def validate(self) -> None:
        w = "noisy-recall"
        require(self.num_kv_pairs >= 1, w, f"num_kv_pairs={self.num_kv_pairs} must be >= 1")
        require(0.0 <= self.noise < 1.0, w, f"noise={self.noise} must be in [0, 1)")
        require(
            self.num_pairs >= self.num_kv_pairs + 1,
            w,
            f"seq_len={self.seq_len} leaves {self.num_pairs} pairs after noise={self.noise}; need > "
            f"num_kv_pairs={self.num_kv_pairs}",
        )
        require(
            self.band >= self.num_kv_pairs,
            w,
            f"vocab_size={self.vocab_size} must be >= 3 * num_kv_pairs + 1 = {3 * self.num_kv_pairs + 1}",
        )

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, K, V, P, band = batch_size, self.seq_len, self.num_kv_pairs, self.vocab_size, self.num_pairs, self.band
        key_ids = 1 + distinct_ints(B, band, K, generator, device)  # [B, K]
        val_ids = 1 + band + torch.randint(band, (B, K), generator=generator, device=device)  # [B, K]
        occ = torch.randint(K, (B, P), generator=generator, device=device)  # [B, P] key of each occurrence

        # Items: P pairs (2 tokens) and T - 2P noise tokens (1 token) in a uniformly random order.
        items = T - P
        is_pair = subset_mask(B, items, P, generator, device)  # [B, items]
        length = 1 + is_pair.long()
        item_start = length.cumsum(dim=1) - length  # [B, items] token position of each item
        column = torch.where(is_pair, is_pair.cumsum(dim=1) - 1, P)  # pair index; column P collects noise
        start = torch.zeros(B, P + 1, dtype=torch.long, device=device).scatter_(1, column, item_start)[:, :P]  # [B, P]

        inputs = torch.randint(1 + 2 * band, V, (B, T), generator=generator, device=device)  # noise everywhere
        keys = key_ids.gather(1, occ)  # [B, P]
        values = val_ids.gather(1, occ)  # [B, P]
        inputs.scatter_(1, start, keys)
        inputs.scatter_(1, start + 1, values)
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        labels.scatter_(1, start, torch.where(~first_appearance(occ, K), values, IGNORE))
        slices = {
            "num_kv_pairs": torch.full((B,), K, device=device),
            "seq_len": torch.full((B,), T, device=device),
            "noise": torch.full((B,), self.noise, dtype=torch.float64, device=device),
        }
        return Batch(inputs, labels, slices)

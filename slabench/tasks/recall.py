"""In-context recall streams in the style of MAD (Poli et al., 2024): noisy and fuzzy recall.

Each example fixes a random mapping of K distinct keys to values, then writes a stream of
key-value occurrences, each key drawn uniformly from the K keys. An occurrence whose key
already appeared earlier in the stream is scored: the model must predict its value (every
value token) from the earlier occurrence. First occurrences are not scored. The stream is
long enough (more occurrences than keys) that every example has a scored position.

noisy-recall (single-token keys and values; T = seq_len):

    k3 v3 n n k1 v1 n k3 v3 k2 v2 n n n k1 v1 ...     n = noise token, from its own vocabulary
                       ^ label v3           ^ label v1  (the key position predicts the value)

    round(noise * T) noise tokens (one more when T - round(noise * T) is odd) are inserted
    between the pairs; which gaps they go to is uniform over arrangements. Ids: 0 = padding
    (unused); the rest split in three equal bands: keys, values, noise (the rest).

fuzzy-recall (keys of key_len tokens, values of value_len tokens, L = key_len + value_len):

    [a b | x y z] [c a | u v w] [a b | x y z] ... 0 0      keys as tuples are distinct;
                              ^ ^ ^ labels x y z          they may share tokens ("fuzzy")

    floor(T / L) blocks back to back, the T mod L leftover positions at the end hold 0. The
    label at the last key token is the first value token, at value token j the token j + 1.
    Ids: 0 = padding; the rest split in two equal bands: key tokens, then value tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import distinct_ints, subset_mask


def repeat_mask(occ: torch.Tensor, num_keys: int) -> torch.Tensor:
    """occ [B, P] key index of each occurrence -> [B, P] bool: the key appeared earlier in the row."""
    B, P = occ.shape
    pos = torch.arange(P, device=occ.device).expand(B, P)
    first = torch.full((B, num_keys), P, dtype=torch.long, device=occ.device)
    first = first.scatter_reduce(1, occ, pos, reduce="amin")  # [B, K] first occurrence of each key
    return pos > first.gather(1, occ)


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
            f"seq_len={self.seq_len} leaves {self.num_pairs} pairs after noise={self.noise}; need > num_kv_pairs={self.num_kv_pairs}",
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
        labels.scatter_(1, start, torch.where(repeat_mask(occ, K), values, IGNORE))
        slices = {
            "num_kv_pairs": torch.full((B,), K, device=device),
            "seq_len": torch.full((B,), T, device=device),
            "noise": torch.full((B,), self.noise, dtype=torch.float64, device=device),
        }
        return Batch(inputs, labels, slices)


@dataclass(frozen=True)
class FuzzyRecall(Task):
    vocab_size: int = field(default=64, metadata={"help": "tokens: padding, then key and value bands"})
    seq_len: int = field(default=128, metadata={"help": "tokens per example"})
    num_kv_pairs: int = field(default=8, metadata={"help": "distinct keys in the mapping"})
    key_len: int = field(default=2, metadata={"help": "tokens per key"})
    value_len: int = field(default=2, metadata={"help": "tokens per value, all scored on repeats"})

    version = 1

    def token_names(self) -> dict[int, str]:
        return {0: "<pad>"}

    @property
    def band(self) -> int:
        return (self.vocab_size - 1) // 2

    @property
    def num_blocks(self) -> int:
        return self.seq_len // (self.key_len + self.value_len)

    def validate(self) -> None:
        w = "fuzzy-recall"
        require(self.num_kv_pairs >= 1, w, f"num_kv_pairs={self.num_kv_pairs} must be >= 1")
        require(self.key_len >= 1, w, f"key_len={self.key_len} must be >= 1")
        require(self.value_len >= 1, w, f"value_len={self.value_len} must be >= 1")
        require(
            self.num_blocks >= self.num_kv_pairs + 1,
            w,
            f"seq_len={self.seq_len} must be >= (num_kv_pairs + 1) * (key_len + value_len) = "
            f"{(self.num_kv_pairs + 1) * (self.key_len + self.value_len)}",
        )
        require(self.band >= 1, w, f"vocab_size={self.vocab_size} must be >= 3")
        require(
            self.key_len * math.log2(self.band) <= 62,
            w,
            f"key_len={self.key_len} gives more than 2**62 distinct keys with vocab_size={self.vocab_size}",
        )
        require(
            self.band**self.key_len >= self.num_kv_pairs,
            w,
            f"vocab_size={self.vocab_size} gives fewer than num_kv_pairs={self.num_kv_pairs} distinct keys of key_len={self.key_len}",
        )

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, K, band = batch_size, self.seq_len, self.num_kv_pairs, self.band
        KL, VL, P = self.key_len, self.value_len, self.num_blocks
        L = KL + VL
        # Distinct keys as integer codes in [0, band^KL), written out in base `band`.
        codes = distinct_ints(B, band**KL, K, generator, device)  # [B, K]
        digits = band ** torch.arange(KL - 1, -1, -1, device=device)  # [KL]
        key_tok = 1 + codes[:, :, None] // digits % band  # [B, K, KL]
        val_tok = 1 + band + torch.randint(band, (B, K, VL), generator=generator, device=device)  # [B, K, VL]
        occ = torch.randint(K, (B, P), generator=generator, device=device)  # [B, P]

        idx = occ[:, :, None]
        inputs = torch.zeros(B, T, dtype=torch.long, device=device)  # the T mod L tail stays 0
        blocks = inputs[:, : P * L].view(B, P, L)
        blocks[:, :, :KL] = key_tok.gather(1, idx.expand(-1, -1, KL))
        blocks[:, :, KL:] = val_tok.gather(1, idx.expand(-1, -1, VL))
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        block_labels = labels[:, : P * L].view(B, P, L)
        block_labels[:, :, KL - 1 : L - 1] = torch.where(repeat_mask(occ, K)[:, :, None], blocks[:, :, KL:], IGNORE)

        slices = {
            "num_kv_pairs": torch.full((B,), K, device=device),
            "seq_len": torch.full((B,), T, device=device),
        }
        return Batch(inputs, labels, slices)

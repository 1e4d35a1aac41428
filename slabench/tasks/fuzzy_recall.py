"""Fuzzy in-context recall in the style of MAD (Poli et al., 2024): multi-token keys and values.

Each example fixes a random mapping of K distinct keys (tuples of key_len tokens) to values
(value_len tokens), then writes floor(T / L) key-value blocks back to back (L = key_len +
value_len), each key drawn uniformly from the K keys; the T mod L leftover positions at the
end hold 0. A block whose key already appeared earlier is scored: every value token.

    [a b | x y z] [c a | u v w] [a b | x y z] ... 0 0      keys as tuples are distinct;
                              ^ ^ ^ labels x y z          they may share tokens ("fuzzy")

The label at the last key token is the first value token, at value token j the token j + 1.
Ids: 0 = padding; the rest split in two equal bands: key tokens, then value tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import distinct_ints, first_appearance


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
            f"vocab_size={self.vocab_size} gives fewer than num_kv_pairs={self.num_kv_pairs} distinct keys of "
            f"key_len={self.key_len}",
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
        repeat = ~first_appearance(occ, K)[:, :, None]  # [B, P, 1] the block's key appeared earlier
        block_labels[:, :, KL - 1 : L - 1] = torch.where(repeat, blocks[:, :, KL:], IGNORE)

        slices = {
            "num_kv_pairs": torch.full((B,), K, device=device),
            "seq_len": torch.full((B,), T, device=device),
        }
        return Batch(inputs, labels, slices)

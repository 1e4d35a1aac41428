"""Selective copying (MAD; Gu & Dao's Mamba): copy the non-noise tokens, in order, after a separator.

Layout of one example (T = seq_len, n = num_tokens, R = T - n - 1):

    n n c1 n n n c2 n c3 n ... n  <sep> c1 c2 ... cn
    '-------- region: R ---------'  ^    ^  ^      '-- last token, not scored
                                  labels c1 c2 c3 ...

The n content tokens sit at uniformly random distinct positions of the region (kept in
order); the other region positions are noise tokens. The separator's label is c1 and the label
of the copied c_j is c_{j+1}; nothing else is scored. Ids: 0 = padding (unused), 1 = <sep>,
then `noise_vocab_size` noise ids, then the content ids (uniform, repeats allowed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import distinct_ints

PAD, SEP = 0, 1
NUM_SPECIAL = 2


@dataclass(frozen=True)
class SelectiveCopy(Task):
    vocab_size: int = field(default=16, metadata={"help": "tokens: padding, <sep>, noise ids, then content ids"})
    seq_len: int = field(default=256, metadata={"help": "tokens per example"})
    num_tokens: int = field(default=16, metadata={"help": "content tokens to copy"})
    noise_vocab_size: int = field(default=1, metadata={"help": "distinct noise ids (1 = a single blank token)"})

    version = 1

    def token_names(self) -> dict[int, str]:
        return {PAD: "<pad>", SEP: "<sep>"}

    def validate(self) -> None:
        w = "selective-copy"
        require(self.num_tokens >= 1, w, f"num_tokens={self.num_tokens} must be >= 1")
        require(self.noise_vocab_size >= 1, w, f"noise_vocab_size={self.noise_vocab_size} must be >= 1")
        need = 2 * self.num_tokens + 1
        require(need <= self.seq_len, w, f"seq_len={self.seq_len} must be >= 2 * num_tokens + 1 = {need}")
        need_v = NUM_SPECIAL + self.noise_vocab_size + 2
        require(
            self.vocab_size >= need_v,
            w,
            f"vocab_size={self.vocab_size} must be >= 2 + noise_vocab_size + 2 = {need_v} (at least 2 content ids)",
        )

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, n, V = batch_size, self.seq_len, self.num_tokens, self.vocab_size
        R = T - n - 1
        content_lo = NUM_SPECIAL + self.noise_vocab_size
        content = torch.randint(content_lo, V, (B, n), generator=generator, device=device)  # [B, n]
        pos = distinct_ints(B, R, n, generator, device).sort(dim=1).values  # [B, n] in order

        inputs = torch.empty(B, T, dtype=torch.long, device=device)
        region = inputs[:, :R]  # [B, R] view
        region.random_(NUM_SPECIAL, content_lo, generator=generator)  # noise
        region.scatter_(1, pos, content)
        inputs[:, R] = SEP
        inputs[:, R + 1 :] = content
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        labels[:, R : R + n] = content  # <sep> -> c1, c_j -> c_{j+1}
        slices = {
            "num_tokens": torch.full((B,), n, device=device),
            "seq_len": torch.full((B,), T, device=device),
        }
        return Batch(inputs, labels, slices)

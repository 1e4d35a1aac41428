"""Compression (MAD): read a sequence, then after a compression token reproduce it.

Layout of one example (T = seq_len, n = (T - 1) // 2):

    x1 x2 ... xn <c> x1 x2 ... xn [<pad>]        teacher_forcing = true
    x1 x2 ... xn <c> <b> <b> ... <b> [<pad>]     teacher_forcing = false
                  ^   ^             labels x1, x2, ..., xn (last reproduced position unscored)

The content tokens are uniform (repeats allowed). The compression token's label is x1 and the
label of reproduced position j is x_{j+1}; nothing else is scored, and an even T leaves one
padding token at the end. With teacher forcing the reproduced tokens are inputs (a model can
find its place by matching them); without it the positions after <c> hold a blank token, so the
model must recall x_{j+1} from the position alone. Ids: 0 = <pad>, 1 = <c>, 2 = <b>, then the
content ids.

MAD trains this task with an encoder and decodes every token from the hidden state at the
compression token alone (seq_len 32, vocab 16, like the defaults here). A causal LM cannot be
restricted that way: here every reproduced token is predicted at its own position and may read
the whole prefix, so `compression` is MAD's task in slabench's one-model, next-token format.
`teacher_forcing = false` is MAD's `copying` layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task

PAD, COMPRESS, BLANK = 0, 1, 2
NUM_SPECIAL = 3


@dataclass(frozen=True)
class Compression(Task):
    vocab_size: int = field(default=16, metadata={"help": "tokens: <pad>, <c>, <b>, then content ids"})
    seq_len: int = field(default=32, metadata={"help": "tokens per example: sequence, <c>, reproduction"})
    teacher_forcing: bool = field(
        default=True, metadata={"help": "reproduced tokens are inputs (true) or blanks (false)"}
    )

    version = 1

    @property
    def num_tokens(self) -> int:
        return (self.seq_len - 1) // 2

    def token_names(self) -> dict[int, str]:
        return {PAD: "<pad>", COMPRESS: "<c>", BLANK: "<b>"}

    def validate(self) -> None:
        w = "compression"
        require(self.seq_len >= 3, w, f"seq_len={self.seq_len} must be >= 3")
        need_v = NUM_SPECIAL + 2
        require(
            self.vocab_size >= need_v,
            w,
            f"vocab_size={self.vocab_size} must be >= {need_v} (3 special ids, 2 content ids)",
        )

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, n = batch_size, self.seq_len, self.num_tokens
        content = torch.randint(NUM_SPECIAL, self.vocab_size, (B, n), generator=generator, device=device)  # [B, n]
        inputs = torch.full((B, T), PAD, dtype=torch.long, device=device)
        inputs[:, :n] = content
        inputs[:, n] = COMPRESS
        inputs[:, n + 1 : 2 * n + 1] = content if self.teacher_forcing else BLANK
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        labels[:, n : 2 * n] = content  # <c> -> x1, reproduced x_j -> x_{j+1}
        slices = {"seq_len": torch.full((B,), T, device=device)}
        return Batch(inputs, labels, slices)

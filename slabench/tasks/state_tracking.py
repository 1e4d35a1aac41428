"""State tracking: the word problem of the symmetric group S_n (permutations of n elements).

Layout of one example (T = seq_len, N = n!): T group elements drawn uniformly, one token each
(ids 0..N-1: the permutations of 0..n-1 in lexicographic order of their one-line notation, so
id 0 is the identity). The label at position t is the running product g_1 g_2 ... g_t, applying
g_1 first: as a map, i -> g_t(...g_2(g_1(i))).

    021 102 120 ...      (S_3, shown in one-line notation: 021 swaps 1 and 2)
    021 120 201 ...      labels with `label=every`: the product of the prefix

With `label=end` only the last position is scored. S_3 and S_4 are solvable groups (their word
problems are in TC0, within reach of fixed-depth models); S_5 is not, and its word problem is
NC1-complete: no fixed-depth transformer or diagonal state-space model solves it at every
length unless TC0 = NC1 (Merrill et al., 2024, "The Illusion of State in State-Space Models",
whose S_5 word problem this is).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task

ELEMENTS = (3, 4, 5)


@functools.cache
def permutations(n: int) -> tuple[tuple[int, ...], ...]:
    """The n! permutations of range(n) in one-line notation, lexicographic (token id order)."""
    return tuple(itertools.permutations(range(n)))


@functools.lru_cache(maxsize=8)
def product_table(n: int, device: torch.device) -> torch.Tensor:
    """[N, N] long: table[a, b] = id of "a, then b" (i -> b(a(i)))."""
    perms = permutations(n)
    index = {p: i for i, p in enumerate(perms)}
    table = [[index[tuple(b[a[i]] for i in range(n))] for b in perms] for a in perms]
    return torch.tensor(table, device=device)


@dataclass(frozen=True)
class StateTracking(Task):
    seq_len: int = field(default=32, metadata={"help": "group elements per example"})
    n: int = field(default=3, metadata={"help": "permutations of n elements: 3, 4 or 5 (S_5 is not solvable)"})
    label: Literal["every", "end"] = field(
        default="every", metadata={"help": "score the running product at every position, or only at the end"}
    )

    version = 1

    @property
    def vocab_size(self) -> int:
        return math.factorial(self.n)

    def token_names(self) -> dict[int, str]:
        return {i: "".join(map(str, p)) for i, p in enumerate(permutations(self.n))}

    def validate(self) -> None:
        w = "state-tracking"
        require(self.n in ELEMENTS, w, f"n={self.n} must be one of {', '.join(map(str, ELEMENTS))}")
        require(self.seq_len >= 1, w, f"seq_len={self.seq_len} must be >= 1")

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T = batch_size, self.seq_len
        table = product_table(self.n, torch.device(device))  # [N, N]
        N = table.shape[0]
        inputs = torch.randint(N, (B, T), generator=generator, device=device)  # [B, T]
        # Inclusive prefix products by doubling (Hillis-Steele): after the step with offset d,
        # position t holds the product of positions t - 2d + 1 .. t. The product is associative,
        # not commutative: the earlier factor goes first. log2(T) steps, no loop over positions.
        prefix, d = inputs.clone(), 1
        while d < T:
            prefix[:, d:] = table[prefix[:, :-d], prefix[:, d:]]
            d *= 2
        labels = prefix
        if self.label == "end":
            labels[:, :-1] = IGNORE
        slices = {
            "seq_len": torch.full((B,), T, device=device),
            "n": torch.full((B,), self.n, device=device),
        }
        return Batch(inputs, labels, slices)

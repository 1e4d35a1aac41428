"""Memorization (MAD): a fixed key-value map learned in the weights, not read from the context.

Layout of one example (T = seq_len, P = T // 2 pairs):

    k1 <i> k2 <i> k3 <i> ... [<pad>]
        ^ label map[k1]  ^ label map[k2] ...

The keys are drawn uniformly (repeats allowed) and the insert token <i> after each is labelled
with the key's value; values never appear in the inputs, so a model can only answer from what
it learned in training. The map is a bijection from the key ids onto the value ids, drawn once
from `map_seed`, not from the run's seed: training, validation and test share it, and every
run of one task configuration learns the same map. An odd T leaves one padding token at the
end. Ids: 0 = <pad>, 1 = <i>, then two equal bands: keys, values.

MAD's task, layout and map construction (a permutation of the value ids; MAD's default map seed
12345). MAD's optional noise tokens are left out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task

PAD, INSERT = 0, 1
NUM_SPECIAL = 2


@functools.lru_cache(maxsize=8)
def value_map(num_keys: int, map_seed: int, device: torch.device) -> torch.Tensor:
    """[num_keys] long: value index of each key index, a permutation drawn from `map_seed` on CPU
    (the same map on every device)."""
    perm = torch.randperm(num_keys, generator=torch.Generator().manual_seed(map_seed))
    return perm.to(device)


@dataclass(frozen=True)
class Memorization(Task):
    vocab_size: int = field(default=64, metadata={"help": "tokens: <pad>, <i>, then key and value bands"})
    seq_len: int = field(default=32, metadata={"help": "tokens per example: key, <i> pairs"})
    map_seed: int = field(default=12345, metadata={"help": "seed of the key-value map (shared by all runs)"})

    version = 1

    @property
    def num_keys(self) -> int:
        return (self.vocab_size - NUM_SPECIAL) // 2

    def token_names(self) -> dict[int, str]:
        return {PAD: "<pad>", INSERT: "<i>"}

    def validate(self) -> None:
        w = "memorization"
        require(self.seq_len >= 2, w, f"seq_len={self.seq_len} must be >= 2")
        require(
            self.vocab_size >= NUM_SPECIAL + 4,
            w,
            f"vocab_size={self.vocab_size} must be >= 6 (2 special ids, 2 keys, 2 values)",
        )
        require(0 <= self.map_seed < 2**31, w, f"map_seed={self.map_seed} must be an int in [0, 2**31)")

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, M = batch_size, self.seq_len, self.num_keys
        P = T // 2
        key = torch.randint(M, (B, P), generator=generator, device=device)  # [B, P] key index
        value = value_map(M, self.map_seed, torch.device(device))[key]  # [B, P] value index
        inputs = torch.full((B, T), PAD, dtype=torch.long, device=device)
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        pairs = inputs[:, : 2 * P].view(B, P, 2)
        pairs[:, :, 0] = NUM_SPECIAL + key
        pairs[:, :, 1] = INSERT
        labels[:, 1 : 2 * P : 2] = NUM_SPECIAL + M + value
        slices = {"seq_len": torch.full((B,), T, device=device)}
        return Batch(inputs, labels, slices)

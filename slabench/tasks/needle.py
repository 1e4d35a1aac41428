"""Token-level noisy needle in a haystack, in the spirit of RULER's S-NIAH / MK-NIAH.

A needle is a marker, a key of `key_len` tokens and a value of `value_len` tokens (think of a
UUID); a query is the same block with the query marker, its value teacher-forced so that every
value token is scored. Layout of one example (T = seq_len, L = 1 + key_len + value_len,
Q = num_queries; here key_len = 2, value_len = 3):

    hay hay <N> k k v v v hay hay ... hay <N> k' k' v' v' v' hay ... hay | <Q> k k v v v  <Q> ...
    '------------------- haystack: T - Q * L tokens -------------------' '---- Q queries of L ----'
                                                        scored positions:       ^ ^ ^ (label v, v, v)

The label at the last key token of a query is the first value token, the label at value token
j is value token j + 1; nothing else is scored. Token ids: 0 = padding (unused), 1 = <N>
(needle marker), 2 = <Q> (query marker); the other ids split into three equal bands: keys,
values, and filler (the rest). Markers never occur anywhere else, so the format is unambiguous.

Haystack kinds:
- `repeat`: a fixed filler pattern (the first 10 filler ids, cycled), like RULER's repeated
  "The grass is green." noise.
- `random`: uniform filler tokens.
- `distractor`: uniform filler tokens plus `num_distractors` extra needles whose keys are not
  any real key; with key_len >= 2, a fraction `near_miss` of them are near misses that share
  all but the last key token with a real needle (with key_len = 1 all distractors are random).

`num_needles` real needles with distinct keys (distinct first tokens) hide in the haystack;
the first `num_queries` of them are queried, in random order (the others are unqueried
needles, as in RULER's multi-key task). Needles sit in non-overlapping slots of L tokens
(after a random offset of fewer than L tokens), drawn uniformly; with a fixed `depth` the
first real needle sits at that fraction of the haystack and the others are uniform.
Afterwards a fraction `noise` of the haystack's filler tokens (needles are kept) is replaced
by uniform tokens from all non-marker ids, keys and values included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from slabench.params import require
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.sampling import depth_bucket, distinct_ints, shuffle_rows

PAD, NEEDLE, QUERY = 0, 1, 2
NUM_SPECIAL = 3
PATTERN_LEN = 10  # filler ids cycled by the `repeat` haystack


@dataclass(frozen=True)
class Needle(Task):
    vocab_size: int = field(default=1024, metadata={"help": "tokens: 3 markers, then key, value and filler bands"})
    seq_len: int = field(default=512, metadata={"help": "tokens per example, haystack and queries"})
    haystack: Literal["repeat", "random", "distractor"] = field(
        default="random", metadata={"help": "filler: fixed pattern, random tokens, or random plus distractor needles"}
    )
    depth: float | None = field(
        default=None, metadata={"help": "position of the first needle as a fraction of the haystack; none = uniform"}
    )
    num_needles: int = field(default=1, metadata={"help": "real needles (distinct keys)"})
    num_queries: int = field(default=1, metadata={"help": "needles queried at the end (<= num_needles)"})
    key_len: int = field(default=2, metadata={"help": "tokens per key"})
    value_len: int = field(default=4, metadata={"help": "tokens per value, all scored"})
    noise: float = field(
        default=0.0, metadata={"help": "fraction of filler tokens replaced by uniform non-marker tokens"}
    )
    num_distractors: int = field(default=8, metadata={"help": "distractor needles (haystack=distractor only)"})
    near_miss: float = field(
        default=0.5,
        metadata={"help": "probability that a distractor's key shares all but its last token with a real key"},
    )

    version = 1

    def token_names(self) -> dict[int, str]:
        return {PAD: "<pad>", NEEDLE: "<N>", QUERY: "<Q>"}

    @property
    def block_len(self) -> int:
        return 1 + self.key_len + self.value_len

    @property
    def band(self) -> int:
        """Size of the key band and of the value band."""
        return (self.vocab_size - NUM_SPECIAL) // 3

    @property
    def total_needles(self) -> int:
        return self.num_needles + (self.num_distractors if self.haystack == "distractor" else 0)

    def validate(self) -> None:
        w = "needle"
        require(self.key_len >= 1, w, f"key_len={self.key_len} must be >= 1")
        require(self.value_len >= 1, w, f"value_len={self.value_len} must be >= 1")
        require(self.num_needles >= 1, w, f"num_needles={self.num_needles} must be >= 1")
        require(
            1 <= self.num_queries <= self.num_needles,
            w,
            f"num_queries={self.num_queries} must be in [1, num_needles={self.num_needles}]",
        )
        require(self.num_distractors >= 0, w, f"num_distractors={self.num_distractors} must be >= 0")
        require(0.0 <= self.noise <= 1.0, w, f"noise={self.noise} must be in [0, 1]")
        require(0.0 <= self.near_miss <= 1.0, w, f"near_miss={self.near_miss} must be in [0, 1]")
        require(self.depth is None or 0.0 <= self.depth <= 1.0, w, f"depth={self.depth} must be in [0, 1] or none")
        L, M = self.block_len, self.total_needles
        need = (M + self.num_queries) * L
        require(
            need <= self.seq_len,
            w,
            f"seq_len={self.seq_len} must be >= (needles + distractors + num_queries) * (1 + key_len + value_len) = "
            f"{need}",
        )
        need_v = NUM_SPECIAL + 3 * max(M, 2, PATTERN_LEN if self.haystack == "repeat" else 1)
        require(
            self.vocab_size >= need_v,
            w,
            f"vocab_size={self.vocab_size} must be >= {need_v} (3 markers, then key/value/filler bands of >= "
            "max(needles + distractors, 2) ids)",
        )

    def scored_per_row(self) -> int:
        return self.num_queries * self.value_len  # each query's value tokens

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        B, T, V, L = batch_size, self.seq_len, self.vocab_size, self.block_len
        N, NQ, M, KL, VL = self.num_needles, self.num_queries, self.total_needles, self.key_len, self.value_len
        band = self.band
        key_lo, val_lo, fill_lo = NUM_SPECIAL, NUM_SPECIAL + band, NUM_SPECIAL + 2 * band
        H = T - NQ * L  # haystack length
        S = H // L  # needle slots

        # Haystack filler, then noise on it; written in place into the inputs.
        inputs = torch.empty(B, T, dtype=torch.long, device=device)
        hay = inputs[:, :H]  # [B, H] view
        if self.haystack == "repeat":
            hay.copy_(fill_lo + torch.arange(H, device=device) % PATTERN_LEN)
        else:
            hay.random_(fill_lo, V, generator=generator)
        if self.noise > 0:
            noisy = torch.rand(B, H, generator=generator, device=device) < self.noise  # [B, H]
            hay.copy_(
                torch.where(noisy, torch.randint(NUM_SPECIAL, V, (B, H), generator=generator, device=device), hay)
            )

        # Keys: distinct first tokens for all needles make real keys distinct from each other
        # and from random distractors; near misses copy a real key and change its last token.
        keys = torch.randint(band, (B, M, KL), generator=generator, device=device)  # [B, M, KL]
        keys[:, :, 0] = distinct_ints(B, band, M, generator, device)
        if M > N and KL >= 2:
            src = torch.randint(N, (B, M - N), generator=generator, device=device)  # [B, D] real key copied
            near = keys.gather(1, src[:, :, None].expand(-1, -1, KL))  # [B, D, KL]
            shift = torch.randint(1, band, (B, M - N), generator=generator, device=device)
            near[:, :, -1] = (near[:, :, -1] + shift) % band
            is_near = torch.rand(B, M - N, 1, generator=generator, device=device) < self.near_miss  # [B, D, 1]
            keys[:, N:] = torch.where(is_near, near, keys[:, N:])
        keys = keys + key_lo
        values = val_lo + torch.randint(band, (B, M, VL), generator=generator, device=device)  # [B, M, VL]
        marker = torch.full((B, M, 1), NEEDLE, dtype=torch.long, device=device)
        blocks = torch.cat([marker, keys, values], dim=2)  # [B, M, L]

        # Slots: needle m goes to slot slots[:, m]; a fixed depth pins needle 0.
        if self.depth is None:
            slots = distinct_ints(B, S, M, generator, device)  # [B, M]
        else:
            s0 = round(self.depth * (S - 1))
            rest = distinct_ints(B, S - 1, M - 1, generator, device)  # [B, M-1]
            rest = rest + (rest >= s0).long()
            slots = torch.cat([torch.full((B, 1), s0, dtype=torch.long, device=device), rest], dim=1)
        offset = torch.randint(H - S * L + 1, (B, 1), generator=generator, device=device)  # [B, 1]
        start = offset + slots * L  # [B, M]
        idx = start[:, :, None] + torch.arange(L, device=device)  # [B, M, L]
        hay.scatter_(1, idx.reshape(B, M * L), blocks.reshape(B, M * L))

        # Queries: the first NQ real needles, in random order, values teacher-forced.
        order = shuffle_rows(torch.arange(NQ, device=device).expand(B, NQ), generator)  # [B, NQ]
        qblocks = blocks.gather(1, order[:, :, None].expand(-1, -1, L))  # [B, NQ, L]
        qblocks[:, :, 0] = QUERY
        inputs[:, H:] = qblocks.view(B, NQ * L)
        labels = torch.full((B, T), IGNORE, dtype=torch.long, device=device)
        labels[:, H:].view(B, NQ, L)[:, :, KL : KL + VL] = qblocks[
            :, :, 1 + KL :
        ]  # last key token -> v1, v_j -> v_{j+1}
        slices = {
            "seq_len": torch.full((B,), T, device=device),
            "num_needles": torch.full((B,), N, device=device),
            "depth_bucket": depth_bucket(start[:, 0], H - L),
            "noise": torch.full((B,), self.noise, dtype=torch.float64, device=device),
        }
        return Batch(inputs, labels, slices)

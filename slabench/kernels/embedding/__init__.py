"""The token embedding, op 'embedding'.

    embedding(weight, idx) -> weight[idx]: weight [V, D], idx [...] integers -> [..., D]

The forward is one gather; the cost is ATen's backward on CUDA, which sorts the indices (more
than 3072 of them: every training batch) before summing the gradient rows that share one. At
synthetic-task sizes (a few hundred rows, tens of thousands of tokens) that took about a tenth of
a training step. Candidates on CUDA: the project's Triton backward (`fused.py`: one kernel and
one sum, vocabularies up to 512 rows), then the reference (`reference.py`, ATen), which
takes every larger vocabulary and all of the CPU. The dims a call specialises on are (V, D).
The weight comes first, so that its dtype, not the indices', picks the path.
"""

from __future__ import annotations

import torch

from slabench.kernels.dispatch import PROBE_T, Op, call
from slabench.kernels.embedding.fused import embedding_triton, unsuited
from slabench.kernels.embedding.reference import embedding_reference


def _probe(device, dtype, dims):
    """A [V, D] weight and 2 x PROBE_T indices: at the small vocabularies the path takes, most rows
    are read several times, so the backward's sums are checked."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    V, D = dims
    weight, idx = torch.randn(V, D, generator=gen), torch.randint(0, V, (2, PROBE_T), generator=gen)
    return [weight.to(device, dtype), idx.to(device)], {}


EMBEDDING = Op(
    "embedding",
    [("triton_embedding", embedding_triton), ("reference", embedding_reference)],
    _probe,
    dims_of=lambda args: tuple(args[0].shape),  # (V, D)
    default_dims=(256, 128),
    returns_state=False,
    only={"triton_embedding": unsuited},
)


def embedding(weight: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """weight [V, D] rows at idx [...] -> [..., D]."""
    return call("embedding", weight, idx)


__all__ = ["EMBEDDING", "embedding", "embedding_reference"]

"""The token embedding in plain torch: embedding(weight, idx) = weight[idx].

    weight [V, D], idx [...] integers in [0, V) -> [..., D]

ATen's backward sums the rows of the output's gradient that share an index. On CUDA it sorts
the indices first whenever there are more than 3072 of them (a radix sort and a segmented sum:
about ten kernels), which is the reference's cost that `fused.py` removes for small vocabularies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def embedding_reference(weight: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """weight [V, D] rows at idx [...] -> [..., D]."""
    return F.embedding(idx, weight)

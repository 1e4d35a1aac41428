"""An example plugin mixer: linear attention with a data-dependent forget gate per head.

    alpha_t = sigmoid(w_h . x_t + b_h) ** (1 / 16)     one decay per head and token, in (0, 1)
    S_t = alpha_t S_{t-1} + k_t^T v_t,   o_t = q_t S_t

Subclassing LinearMixer (qkv + mix) gives projections, short conv, output norm and gate, and an
SLA twin for free: `slabench compare --mixer examples/my_variant.py:GatedLinear` and
`--mixer sla-examples/my_variant.py:GatedLinear` both work. See docs/new-variant.md.
"""

from dataclasses import dataclass, field
from typing import Literal

import torch.nn.functional as F
from torch import nn

from slabench import kernels
from slabench.models import LinearMixer, shared_option


@dataclass(frozen=True)
class GatedLinearOptions:
    # Its own options first, then the five every LinearMixer reads, at this mixer's defaults.
    gate_normalizer: float = field(default=16.0, metadata={"help": "divides the forget gate's logsigmoid"})
    expand_k: float = shared_option("expand_k", 0.5)
    expand_v: float = shared_option("expand_v", 1.0)
    conv_size: int = shared_option("conv_size", 4)
    output_gate: bool = shared_option("output_gate", True)
    output_norm: Literal["head", "layer", "none"] = shared_option("output_norm", "head")


class GatedLinear(LinearMixer):
    Options = GatedLinearOptions

    def __init__(self, d_model: int, n_heads: int, options: GatedLinearOptions | None = None):
        super().__init__(d_model, n_heads, options)  # sets self.options (the defaults when None)
        self.decay_proj = nn.Linear(d_model, n_heads)  # one forget-gate logit per head

    def qkv(self, x):  # x [B, T, D]
        q, k, v = self.project(x)  # [B, T, H, Dk], [B, T, H, Dk], [B, T, H, Dv]
        g = F.logsigmoid(self.decay_proj(x).float()) / self.options.gate_normalizer  # [B, T, H], log decay <= 0
        return q, k, v, {"g": g}

    def mix(self, q, k, v, extras, output_final_state=False):
        return kernels.gla(q, k, v, extras["g"], output_final_state=output_final_state)  # per-head decay

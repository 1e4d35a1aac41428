"""Linear attention (Katharopoulos et al. 2020): S_t = S_{t-1} + phi(k_t)^T v_t, o_t = phi(q_t) S_t."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from slabench import kernels
from slabench.models.linear_base import LinearMixer, shared_option
from slabench.params import require


@dataclass(frozen=True)
class LinearAttentionOptions:
    feature_map: Literal["elu+1", "relu", "identity"] = field(default="elu+1", metadata={"help": "phi, on q and k"})
    normalize: bool = field(
        default=False,
        metadata={  # off, as in fla, which relies on the output norm instead
            "help": "divide by phi(q_t) . sum_s phi(k_s)"
        },
    )
    expand_k: float = shared_option("expand_k", 1.0)
    expand_v: float = shared_option("expand_v", 1.0)
    conv_size: int = shared_option("conv_size", 4)
    output_gate: bool = shared_option("output_gate", False)
    output_norm: Literal["head", "layer", "none"] = shared_option("output_norm", "head")


class LinearAttention(LinearMixer):
    """Linear attention; with `normalize`, each output is divided by q_t . sum_{s <= t} k_s, and the
    state carries that key sum as an extra value column."""

    Options = LinearAttentionOptions

    def __init__(self, d_model: int, n_heads: int, options: LinearAttentionOptions | None = None):
        super().__init__(d_model, n_heads, options)
        o = self.options
        require(
            not (o.normalize and o.feature_map == "identity"),
            "linear",
            "normalize=True needs a positive feature_map ('elu+1' or 'relu'), not 'identity'",
        )
        self.phi_name, self.normalize = o.feature_map, o.normalize
        self.state_v_extra = int(o.normalize)

    def feature_map(self, q, k):
        phi = {"elu+1": lambda t: F.elu(t) + 1, "relu": F.relu, "identity": lambda t: t}[self.phi_name]
        return phi(q), phi(k)

    def mix(self, q, k, v, extras, output_final_state=False):
        o, state = kernels.gla(q, k, v, None, output_final_state=output_final_state)
        if not self.normalize:
            return o, state
        # The normaliser q_t . sum_{s <= t} k_s, scaled as the kernel scales o (the scale cancels in
        # the ratio), from a cumulative sum beside the kernel: carried as an extra value column
        # instead, it would make v one wider than the heads the project's short kernel takes
        # (32 at d_model 128 and 4 heads), sending the call to fla's chunk kernels.
        wide = torch.promote_types(k.dtype, torch.float32)  # bf16 under autocast: sum in float32
        k_sum = k.to(wide).cumsum(1)  # [B, T, H, Dk]
        z = (q.to(wide) * k_sum).sum(-1, keepdim=True) * q.shape[-1] ** -0.5  # [B, T, H, 1]
        o = (o.to(wide) / (z + 1e-6)).to(o.dtype)
        if output_final_state:  # the normaliser's state rides as the last value column
            state = torch.cat([state, k_sum[:, -1, :, :, None].to(state.dtype)], dim=-1)  # [B, H, Dk, Dv + 1]
        return o, state

"""Softmax Linear Attention (SLA, arXiv 2602.01744): softmax lifted to the head level.

Per token, the heads compete for the query and the key:

    G^Q = softmax(Q W_GQ / tau)    G^K = softmax(K W_GK / tau)       over the H heads

where Q and K are the full query and key vectors (all heads, before the feature map), so the
gates respond to their magnitude. W is low rank (d_in -> rank -> H). Head h then computes
(G^Q_h phi(Q_h)) (G^K_h phi(K_h))^T V_h with the base mixer's decay or delta rule.

`HeadGate` is the gate; `sla_twin(MixerClass)` turns any `LinearMixer` subclass into its SLA
twin by adding the gate options to its signature and switching the gate on.
"""

from __future__ import annotations

import inspect
import math
import typing
from typing import Literal

import torch
from torch import nn

from slabench import kernels


class HeadGate(nn.Module):
    """softmax(up(down(src)) / temp) over heads, applied to x [B, T, H, D] by one fused op.

    Keeps the last gates (detached, [B, T, H]) so `diagnostics()` can summarise them on demand
    without adding work to the training step.
    """

    def __init__(self, d_in: int, n_heads: int, rank: int = 8, temp: float = 1.0):
        super().__init__()
        self.n_heads, self.temp = n_heads, temp
        self.down = nn.Linear(d_in, rank, bias=False)
        self.up = nn.Linear(rank, n_heads)
        self.last_gates: torch.Tensor | None = None

    def forward(self, src: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """src [B, T, d_in], x [B, T, H, D] -> x scaled per head [B, T, H, D]; x None gates src
        itself (d_in = H * D), which lets the kernel add src's two gradients in one pass."""
        y, gates = kernels.sla_gate(src, x, self.down.weight, self.up.weight, self.up.bias, self.temp)
        self.last_gates = gates.detach()
        return y

    def diagnostics(self, prefix: str = "") -> dict[str, float]:
        """gate_entropy: mean entropy / log H (1 uniform, 0 one-hot); gate_max: mean largest gate."""
        if self.last_gates is None:
            return {}
        g = self.last_gates.float()
        entropy = -(g * g.clamp_min(1e-12).log()).sum(-1).mean().item()
        norm = math.log(self.n_heads) if self.n_heads > 1 else 1.0
        return {f"{prefix}gate_entropy": entropy / norm, f"{prefix}gate_max": g.max(-1).values.mean().item()}


def sla_twin(cls: type) -> type:
    """The SLA twin of a `LinearMixer` subclass: same options plus the gate's.

    gate_rank: rank of the low-rank head projection; gate_temp: softmax temperature tau;
    gate_q_only: no key gate; gate_source: 'qk' (gates read the full q and k, the paper) or
    'x' (both read the layer input, an ablation). The twin's output norm defaults to 'layer':
    a per-head norm would divide the query gate (one scalar per head and token) back out.
    """
    base_init = cls.__init__

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        gate_rank: int = 8,
        gate_temp: float = 1.0,
        gate_q_only: bool = False,
        gate_source: Literal["qk", "x"] = "qk",
        **options,
    ):
        options.setdefault("output_norm", "layer")
        base_init(self, d_model, n_heads, **options)
        self.enable_head_gates(gate_rank, gate_temp, gate_q_only, gate_source)

    # Advertise base options + gate options in the signature, which the CLI and configs read.
    base_sig = inspect.signature(base_init)
    own_sig = inspect.signature(__init__)
    params = [p for p in base_sig.parameters.values() if p.kind != p.VAR_KEYWORD]
    params = [p.replace(default="layer") if p.name == "output_norm" else p for p in params]
    params += [p for n, p in own_sig.parameters.items() if n.startswith("gate_")]
    __init__.__signature__ = base_sig.replace(parameters=params)
    __init__.__annotations__ = {**typing.get_type_hints(base_init), **typing.get_type_hints(__init__)}
    doc = f"SLA twin of `{cls.__name__}`: its mixing with softmax head gates on q and k.\n\n{sla_twin.__doc__}"
    return type(f"SLA{cls.__name__}", (cls,), {"__init__": __init__, "__doc__": doc, "__module__": cls.__module__})

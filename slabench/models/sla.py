"""Softmax Linear Attention (SLA, arXiv 2602.01744): softmax lifted to the head level.

Per token, the heads compete for the query and the key:

    G^Q = softmax(Q W_GQ / tau)    G^K = softmax(K W_GK / tau)       over the H heads

where Q and K are the full query and key vectors (all heads, before the feature map), so the
gates respond to their magnitude. W is low rank (d_in -> rank -> H). Head h then computes
(G^Q_h phi(Q_h)) (G^K_h phi(K_h))^T V_h with the base mixer's decay or delta rule.

`gate_kind="sigmoid"` is the control without competition: the same low-rank logits, an
independent sigmoid per head, shifted so that every gate starts at the softmax's 1/H
(`slabench/kernels/sla_gate/reference.py` derives the shift). It separates what the softmax's
competition between heads does from what any per-head gate does.

`gate_kind="constant"` fixes every gate at 1/H, the value both learned kinds start at: no
parameters, the twin's q and k scaled by 1/H throughout. It separates what the gates' learning
does from what their scale does (at initialisation the scale puts the twin's pre-norm output
below the output norm's epsilon: docs/report.md).

`HeadGate` is the gate; `sla_twin(MixerClass)` turns any `LinearMixer` subclass into its SLA
twin: its options are the base's plus `SLAGateOptions`, and its constructor switches the gate on.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from slabench import kernels

# A token's gate counts as peaked (near one-hot, for the softmax) when its largest gate exceeds this.
PEAKED = 0.9


class HeadGate(nn.Module):
    """softmax(up(down(src)) / temp) over heads (kind 'sigmoid': a sigmoid per head; 'constant':
    1/H, no parameters), applied to x [B, T, H, D] by one op.

    Keeps the last gates (detached, [B, T, H]) so `diagnostics()` can summarise them on demand
    without adding work to the training step.
    """

    def __init__(
        self, d_in: int, n_heads: int, rank: int = 8, temp: float = 1.0, kind: str = "softmax", scale: float = 1.0
    ):
        super().__init__()
        self.n_heads, self.temp, self.kind, self.scale = n_heads, temp, kind, scale
        if kind != "constant":
            self.down = nn.Linear(d_in, rank, bias=False)
            self.up = nn.Linear(rank, n_heads)
        self.last_gates: torch.Tensor | None = None

    def forward(self, src: torch.Tensor, x: torch.Tensor | None = None, l2_eps: float | None = None) -> torch.Tensor:
        """src [B, T, d_in], x [B, T, H, D] -> x scaled per head [B, T, H, D]; x None gates src
        itself (d_in = H * D), which lets the kernel add src's two gradients in one pass; l2_eps
        with x None: src's heads L2-normalised, in the gate's kernel."""
        if self.kind == "constant":
            if x is None:
                x = src.reshape(*src.shape[:2], self.n_heads, -1)  # [B, T, H, D]
                x = x if l2_eps is None else kernels.l2norm(x, eps=l2_eps)
            return x * (self.scale / self.n_heads)
        y, gates = kernels.sla_gate(
            src, x, self.down.weight, self.up.weight, self.up.bias, self.temp, self.kind, l2_eps=l2_eps
        )
        self.last_gates = gates.detach()
        return y if self.scale == 1.0 else y * self.scale

    def diagnostics(self, prefix: str = "") -> dict[str, float]:
        """Means over tokens: gate_entropy, entropy / log H of the gates over the heads (1 uniform,
        0 one-hot; sigmoid gates are first divided by their sum); gate_max, the largest gate;
        gate_peaked, the share of tokens whose largest gate exceeds `PEAKED`."""
        if self.last_gates is None:
            return {}
        g = self.last_gates.float()  # [B, T, H]
        p = g if self.kind == "softmax" else g / g.sum(-1, keepdim=True).clamp_min(1e-12)  # shares over heads
        entropy = -(p * p.clamp_min(1e-12).log()).sum(-1).mean().item()
        norm = math.log(self.n_heads) if self.n_heads > 1 else 1.0
        top = g.max(-1).values  # [B, T]
        return {
            f"{prefix}gate_entropy": entropy / norm,
            f"{prefix}gate_max": top.mean().item(),
            f"{prefix}gate_peaked": (top > PEAKED).float().mean().item(),
        }


def recall_positions(inputs: torch.Tensor, labels: torch.Tensor, ignore: int) -> torch.Tensor:
    """[B, T] bool: the positions where a recall task reads and writes. Queries are the scored
    positions (labels != ignore); keys are the other positions of the row holding a token that
    one of its queries holds (MQAR's context keys, a needle's key and value tokens; a filler
    token equal to one counts too)."""
    query = labels != ignore  # [B, T]
    B = inputs.shape[0]
    tagged = inputs + torch.arange(B, device=inputs.device)[:, None] * (int(inputs.max()) + 1)  # unique per row
    return query | (torch.isin(tagged, tagged[query]) & ~query)


def recall_diagnostics(mixers: list[nn.Module], focus: torch.Tensor) -> dict[str, float]:
    """For each layer whose mixer has head gates, the share of the `focus` positions [B, T] (of
    the last forward pass) whose largest gate exceeds `PEAKED`: `layer<i>/gate_peaked_recall` and
    `layer<i>/kgate_peaked_recall`. Near one-hot where the task reads and writes, which an average
    over every token (`gate_peaked`, filler included) does not show."""
    shares = {}
    for i, m in enumerate(mixers):
        for prefix, gate in (("", getattr(m, "q_gate", None)), ("k", getattr(m, "k_gate", None))):
            if isinstance(gate, HeadGate) and gate.last_gates is not None:
                top = gate.last_gates.float().max(-1).values  # [B, T]
                shares[f"layer{i}/{prefix}gate_peaked_recall"] = (top[focus] > PEAKED).float().mean()
    if not shares or not bool(focus.any()):
        return {}
    return dict(zip(shares, torch.stack(list(shares.values())).tolist()))  # one host sync for all


@dataclass(frozen=True)
class SLAGateOptions:
    """The options an SLA twin adds to its base mixer's."""

    gate_rank: int = field(default=8, metadata={"help": "rank of the low-rank head projection"})
    gate_temp: float = field(default=1.0, metadata={"help": "temperature tau of the gate logits"})
    gate_q_only: bool = field(default=False, metadata={"help": "no key gate"})
    gate_source: Literal["qk", "x"] = field(
        default="qk",
        metadata={"help": "what the gates read: 'qk' the full q and k (the paper), 'x' the layer input (an ablation)"},
    )
    gate_kind: Literal["softmax", "sigmoid", "constant"] = field(
        default="softmax",
        metadata={
            "help": "'softmax' over the heads (the paper), 'sigmoid' per head, starting at 1/H (the control "
            "without competition; runs on the reference path), or 'constant' 1/H (the control without learning)"
        },
    )
    gate_scale: Literal["one", "heads"] = field(
        default="one",
        metadata={
            "help": "'one': gates as drawn (every head starts at 1/H); 'heads': times H, so a uniform gate "
            "is the identity and q, k start as the base's"
        },
    )


def sla_twin(cls: type) -> type:
    """The SLA twin of a `LinearMixer` subclass: its mixing with head gates on q and k.

    The twin's options dataclass extends the base's: the same fields in the same order (the
    output norm defaulting to 'layer' instead), then the gate's (`SLAGateOptions`); a base with
    required or keyword-only options gets its twin like any other.
    """
    base = cls.Options
    # The twin's output norm defaults to 'layer': a per-head norm would divide the query gate
    # (one scalar per head and token) back out.
    norm = field(
        default="layer",
        metadata={"help": "RMSNorm over all heads ('layer'), per head ('head': divides the q gate back out) or 'none'"},
    )
    # Dataclass fields are collected base class first: with SLAGateOptions listed first among the
    # bases, its fields come after the base mixer's, and output_norm, redeclared, keeps its place.
    # kw_only lets that new default stand before a required option of the base.
    options = dataclasses.make_dataclass(
        f"SLA{base.__name__}",
        [("output_norm", typing.get_type_hints(base)["output_norm"], norm)],
        bases=(SLAGateOptions, base),
        frozen=True,
        kw_only=True,
        namespace={"__module__": cls.__module__},
    )

    def __init__(self, d_model: int, n_heads: int, options: Any = None):
        cls.__init__(self, d_model, n_heads, options)
        o = self.options
        self.enable_head_gates(o.gate_rank, o.gate_temp, o.gate_q_only, o.gate_source, o.gate_kind, o.gate_scale)

    doc = f"SLA twin of `{cls.__name__}`: its mixing with softmax head gates on q and k."
    return type(
        f"SLA{cls.__name__}",
        (cls,),
        {"Options": options, "__init__": __init__, "__doc__": doc, "__module__": cls.__module__},
    )

"""`LinearMixer`, the base of every linear-attention mixer (and the plugin hook).

A `LinearMixer` runs, for x [B, T, D]:

    q, k, v, extras = self.qkv(x)          # projections (+ short causal conv), q and k raw
    q', k' = self.feature_map(q, k)        # phi: elu+1, L2 norm, rotary, ... (identity default)
    q', k' = SLA head gates (twins only)   # gates read the raw q, k (or x), scale q', k'
    o, state = self.mix(q', k', v, extras) # a kernel from slabench.kernels
    y = o_proj(gate(norm(o)))              # output norm, optional swish output gate

A subclass implements `qkv` (usually `self.project(x)` plus its decays) and `mix`, and sets
`Options` to a frozen dataclass of its own options and the five every LinearMixer reads
(`expand_k`, `expand_v`, `conv_size`, `output_gate`, `output_norm`, declared with
`shared_option` at the subclass's defaults); its SLA twin is then `sla_twin(Subclass)`, with no
further code.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from slabench import kernels
from slabench.models.base import Mixer
from slabench.models.norm import RMSNorm
from slabench.models.sla import HeadGate
from slabench.params import require

SHARED_HELP = {
    "expand_k": "key width as a multiple of d_model (split over heads)",
    "expand_v": "value width as a multiple of d_model (split over heads)",
    "conv_size": "width of the causal depthwise conv on q, k, v (0 disables it)",
    "output_gate": "multiply the normed output by swish(W_g x)",
    "output_norm": "RMSNorm per head ('head', fla's choice), over all heads ('layer') or 'none'",
}


def shared_option(name: str, default: Any) -> Any:
    """The dataclass field of an option every LinearMixer reads, at one mixer's default:
    `expand_k: float = shared_option("expand_k", 0.5)`. Each mixer declares the five itself, after
    its own options, so that its defaults (fla's, per layer) stand beside them."""
    return field(default=default, metadata={"help": SHARED_HELP[name]})


class ShortConv(nn.Module):
    """Causal depthwise conv over time with SiLU (fla's ShortConvolution): a cheap token shift.

    The nn.Conv1d only holds the weight [C, 1, W] (and its init); `kernels.short_conv` runs it."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.size = size
        self.conv = nn.Conv1d(channels, channels, size, groups=channels, padding=size - 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, T, C]
        return kernels.short_conv(x, self.conv.weight[:, 0])  # weight [C, W]

    def state(self, x: torch.Tensor) -> torch.Tensor:
        """What decoding would keep after x [B, T, C]: its last size - 1 inputs, [B, size - 1, C]."""
        return F.pad(x, (0, 0, self.size - 1, 0))[:, -(self.size - 1) :]


class LinearMixer(Mixer):
    """Base of the recurrent mixers: projections, short conv, output norm and gate, SLA hook."""

    state_v_extra = 0  # extra value columns the kernel state carries (the normaliser of `linear`)
    # Set (GDN, DeltaNet): the feature map is `kernels.l2norm` per head with this eps, and the SLA
    # gates, reading the raw q and k, normalise the heads they scale themselves.
    feature_l2_eps: float | None = None

    def __init__(self, d_model: int, n_heads: int, options: Any = None):
        super().__init__(d_model, n_heads, options)
        o = self.options
        expand_k, expand_v, conv_size = o.expand_k, o.expand_v, o.conv_size
        where = type(self).__name__
        key_dim, value_dim = int(d_model * expand_k), int(d_model * expand_v)
        require(
            key_dim > 0 and key_dim % n_heads == 0,
            where,
            f"expand_k={expand_k} gives key width {key_dim}, which must be a positive multiple of n_heads={n_heads}",
        )
        require(
            value_dim > 0 and value_dim % n_heads == 0,
            where,
            f"expand_v={expand_v} gives value width {value_dim}, which must be a positive multiple of "
            f"n_heads={n_heads}",
        )
        require(conv_size >= 0, where, f"conv_size={conv_size} must be >= 0 (0 disables the conv)")
        self.key_dim, self.value_dim = key_dim, value_dim
        self.head_k_dim, self.head_v_dim = key_dim // n_heads, value_dim // n_heads
        self.qkv_proj = nn.Linear(d_model, 2 * key_dim + value_dim, bias=False)
        self.conv = ShortConv(2 * key_dim + value_dim, conv_size) if conv_size > 0 else None
        norm_dim = {"head": self.head_v_dim, "layer": value_dim, "none": 0}[o.output_norm]
        self.o_norm = RMSNorm(norm_dim) if norm_dim else None
        self.output_norm = o.output_norm
        self.g_proj = nn.Linear(d_model, value_dim, bias=False) if o.output_gate else None
        self.o_proj = nn.Linear(value_dim, d_model, bias=False)
        self.q_gate: HeadGate | None = None
        self.k_gate: HeadGate | None = None
        self.gate_source = "qk"

    # --- SLA ---------------------------------------------------------------------------------

    def enable_head_gates(
        self, rank: int, temp: float, q_only: bool, source: str, kind: str = "softmax", scale: str = "one"
    ) -> None:
        """Switch on SLA: gates on q (and k unless q_only), softmax over heads, a sigmoid per head or
        a constant 1/H, times H with scale 'heads'."""
        where = f"sla-{type(self).__mro__[1].__name__}"
        require(rank >= 1, where, f"gate_rank={rank} must be >= 1")
        require(temp > 0, where, f"gate_temp={temp} must be > 0")
        require(source in ("qk", "x"), where, f"gate_source={source!r} is not allowed; choose one of 'qk', 'x'")
        require(
            kind in ("softmax", "sigmoid", "constant"),
            where,
            f"gate_kind={kind!r} is not allowed; choose one of 'softmax', 'sigmoid', 'constant'",
        )
        require(scale in ("one", "heads"), where, f"gate_scale={scale!r} is not allowed; choose one of 'one', 'heads'")
        self.gate_source = source
        d_in = self.d_model if source == "x" else self.key_dim
        factor = float(self.n_heads) if scale == "heads" else 1.0
        self.q_gate = HeadGate(d_in, self.n_heads, rank, temp, kind, factor)
        if not q_only:
            self.k_gate = HeadGate(d_in, self.n_heads, rank, temp, kind, factor)

    def features(self, x, q_raw, k_raw):
        """q, k [B, T, H, Dk] as `mix` takes them: the feature map, then an SLA twin's head gates."""
        return self.feature_map(q_raw, k_raw) if self.q_gate is None else self.apply_head_gates(x, q_raw, k_raw)

    def apply_head_gates(self, x, q_raw, k_raw):
        """q, k [B, T, H, Dk] after the feature map, scaled per head by gates read from the raw q, k
        (or from x). An L2 feature map (`feature_l2_eps`) is done by the gate itself when the gate
        reads the very heads it scales: one pass over q instead of the norm's and the gate's."""
        B, T = x.shape[:2]
        eps = self.feature_l2_eps
        if self.gate_source == "qk" and eps is not None:
            q = self.q_gate(q_raw.reshape(B, T, -1), None, l2_eps=eps)
            if self.k_gate is None:
                return q, kernels.l2norm(k_raw, eps=eps)
            return q, self.k_gate(k_raw.reshape(B, T, -1), None, l2_eps=eps)
        q, k = self.feature_map(q_raw, k_raw)
        if self.gate_source == "x":
            return self.q_gate(x, q), k if self.k_gate is None else self.k_gate(x, k)

        def gate(g: HeadGate, raw: torch.Tensor, mapped: torch.Tensor) -> torch.Tensor:
            # With an identity feature map the gate scales the very tensor it reads.
            return g(raw.reshape(B, T, -1), None if mapped is raw else mapped)  # src [B, T, d_in]

        return gate(self.q_gate, q_raw, q), k if self.k_gate is None else gate(self.k_gate, k_raw, k)

    def diagnostics(self) -> dict[str, float]:
        out = self.q_gate.diagnostics() if self.q_gate is not None else {}
        if self.k_gate is not None:
            out.update(self.k_gate.diagnostics("k"))
        return out

    # --- the hook subclasses implement -------------------------------------------------------

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, T, D] -> q, k [B, T, H, Dk], v [B, T, H, Dv] (after the short conv)."""
        B, T, _ = x.shape
        h = self.qkv_proj(x)  # [B, T, 2 Dk_all + Dv_all]
        if self.conv is not None:
            h = self.conv(h)
        q, k, v = h.split([self.key_dim, self.key_dim, self.value_dim], dim=-1)
        H = self.n_heads
        return q.reshape(B, T, H, -1), k.reshape(B, T, H, -1), v.reshape(B, T, H, -1)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """(q, k, v, extras): raw q, k, v and whatever `mix` needs besides (decays, beta)."""
        q, k, v = self.project(x)
        return q, k, v, {}

    def feature_map(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Identity, or each head L2-normalised when `feature_l2_eps` is set. kernels.l2norm keeps the
        input's dtype: under bf16 autocast q and k reach the delta rule in bf16, its tensor-core path
        (F.normalize would return float32: tf32x3 products, ~2.6x slower backward on an H200)."""
        eps = self.feature_l2_eps
        return (q, k) if eps is None else (kernels.l2norm(q, eps=eps), kernels.l2norm(k, eps=eps))  # [B, T, H, Dk]

    def mix(self, q, k, v, extras: dict[str, Any], output_final_state: bool = False):
        """(o [B, T, H, Dv], final state [B, H, Dk, Dv'] or None) through a `slabench.kernels` op."""
        raise NotImplementedError

    # --- the fixed pipeline -------------------------------------------------------------------

    def run(self, x: torch.Tensor, output_final_state: bool = False):
        q_raw, k_raw, v, extras = self.qkv(x)
        q, k = self.features(x, q_raw, k_raw)
        o, state = self.mix(q, k, v, extras, output_final_state)  # [B, T, H, Dv]
        B, T = x.shape[:2]
        g = self.g_proj(x) if self.g_proj is not None else None  # [B, T, Dv_all]
        if self.o_norm is not None:  # norm and gate in one op (one fused kernel on CUDA)
            shape = o.shape if self.output_norm == "head" else (B, T, self.value_dim)
            o = self.o_norm(o.reshape(shape), None if g is None else g.reshape(shape))
        o = o.reshape(B, T, self.value_dim)
        if self.o_norm is None and g is not None:
            o = o * F.silu(g)
        return self.o_proj(o), state

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T, D]
        return self.run(x)[0]

    def final_state(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The state decoding would carry after x: the kernel state and the conv window."""
        _, state = self.run(x, output_final_state=True)
        out = [state]  # [B, H, Dk, Dv']
        if self.conv is not None:
            out.append(self.conv.state(self.qkv_proj(x)))  # [B, conv_size - 1, C]
        return out

    def state_size(self, seq_len: int) -> int:
        conv = (self.conv.size - 1) * (2 * self.key_dim + self.value_dim) if self.conv is not None else 0
        return self.n_heads * self.head_k_dim * (self.head_v_dim + self.state_v_extra) + conv

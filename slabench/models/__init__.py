"""Mixer registry and `build_model`.

`build_model(name, vocab_size=..., **params)` returns an `LM` whose layers use mixer `name`.
Backbone parameters (d_model, n_layers, n_heads, mlp, pos_emb, max_len, tie_head, dropout, attention_every) are
common to every mixer; any other keyword is a mixer option, checked against the fields of the mixer's `Options`.

A hybrid stack is a backbone option, `attention_every = N`: layers N, 2N, ... are softmax attention
(at its default options), the others mixer `name`. One integer, unlike a per-layer list of names,
fits the grid format, where every list value is a sweep (`attention_every = [0, 2]` compares the
pure stack with the hybrid), and needs no new kind of parameter.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

from slabench.errors import SlabenchError
from slabench.models.attention import Attention
from slabench.models.base import Mixer
from slabench.models.gdn import DeltaNet, GatedDeltaNet
from slabench.models.gla import GLA
from slabench.models.linear import LinearAttention
from slabench.models.linear_base import LinearMixer, shared_option
from slabench.models.lm import LM
from slabench.models.mamba2 import Mamba2
from slabench.models.retnet import RetNet
from slabench.models.sla import HeadGate, SLAGateOptions, sla_twin
from slabench.params import Param, check_params, dataclass_params, require
from slabench.plugins import MixerRegistry
from slabench.registry import Registry

MIXERS: Registry[type[Mixer]] = MixerRegistry("model")  # also resolves plugin names (slabench.plugins)
MIXERS.register("attention", Attention)
for _name, _cls in (
    ("linear", LinearAttention),
    ("retnet", RetNet),
    ("gla", GLA),
    ("gdn", GatedDeltaNet),
    ("deltanet", DeltaNet),
    ("mamba2", Mamba2),
):
    MIXERS.register(_name, _cls)
    MIXERS.register(f"sla-{_name}", sla_twin(_cls))


@dataclass(frozen=True)
class Backbone:
    """LM parameters shared by all mixers."""

    d_model: int = field(default=64, metadata={"help": "model width"})
    n_layers: int = field(default=2, metadata={"help": "blocks of [mixer, MLP]"})
    n_heads: int = field(default=4, metadata={"help": "heads of the mixer"})
    mlp: bool = field(default=True, metadata={"help": "add an MLP after each mixer"})
    pos_emb: Literal["none", "learned"] = field(default="none", metadata={"help": "absolute position embeddings"})
    max_len: int = field(default=4096, metadata={"help": "length of the learned position table"})
    tie_head: bool = field(default=False, metadata={"help": "share the embedding matrix with the output head"})
    dropout: float = field(
        default=0.0, metadata={"help": "dropout on the embeddings during training (Zoology's embed_dropout)"}
    )
    attention_every: int = field(
        default=0,
        metadata={"help": "hybrid: every Nth layer (N, 2N, ...) is softmax attention at its defaults; 0: none"},
    )


def mixer_params(name: str) -> list[Param]:
    """The options of mixer `name`: the fields of its `Options` dataclass."""
    return dataclass_params(MIXERS.get(name).Options)


def model_params(name: str) -> list[Param]:
    """Backbone parameters followed by the mixer's own options."""
    return dataclass_params(Backbone) + mixer_params(name)


def mixer_options(name: str, **given: Any) -> Any:
    """Mixer `name`'s `Options` from user values; unknown, mistyped or missing ones raise one line."""
    cls = MIXERS.get(name)
    typed = check_params(f"model '{name}'", mixer_params(name), given)
    missing = [
        f.name
        for f in fields(cls.Options)
        if f.name not in typed and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise SlabenchError(f"model '{name}': option '{missing[0]}' has no default; set it")
    return cls.Options(**typed)


def build_mixer(name: str, d_model: int, n_heads: int, **options: Any) -> Mixer:
    return MIXERS.get(name)(d_model, n_heads, mixer_options(name, **options))


def split_backbone(typed: dict[str, Any], where: str = "model") -> tuple[Backbone, dict[str, Any]]:
    """Checked model parameters -> (the backbone's, the mixer's options); `where` names the model in errors."""
    bb = Backbone(**{k: v for k, v in typed.items() if k in Backbone.__dataclass_fields__})
    every, layers = bb.attention_every, bb.n_layers
    require(every >= 0, where, f"attention_every={every} must be >= 0 (0: no attention layers)")
    require(every <= layers, where, f"attention_every={every} exceeds n_layers={layers}: no layer would be attention")
    require(0 <= bb.dropout < 1, where, f"dropout={bb.dropout} must be in [0, 1)")
    return bb, {k: v for k, v in typed.items() if k not in Backbone.__dataclass_fields__}


def build_model(name: str, vocab_size: int, **params: Any) -> LM:
    """An LM with mixer `name`; unknown or invalid parameters raise a one-line error."""
    cls = MIXERS.get(name)
    where = f"model '{name}'"
    bb, given = split_backbone(check_params(where, model_params(name), params), where)
    options = mixer_options(name, **given)

    def make_mixer(layer: int) -> Mixer:
        if bb.attention_every and (layer + 1) % bb.attention_every == 0:
            return Attention(bb.d_model, bb.n_heads, Attention.Options())
        return cls(bb.d_model, bb.n_heads, options)

    return LM(
        vocab_size,
        bb.d_model,
        bb.n_layers,
        make_mixer,
        mlp=bb.mlp,
        pos_emb=bb.pos_emb,
        max_len=bb.max_len,
        tie_head=bb.tie_head,
        dropout=bb.dropout,
    )


__all__ = [
    "LM",
    "MIXERS",
    "Backbone",
    "HeadGate",
    "LinearMixer",
    "Mixer",
    "SLAGateOptions",
    "build_mixer",
    "build_model",
    "mixer_options",
    "mixer_params",
    "model_params",
    "shared_option",
    "sla_twin",
    "split_backbone",
]

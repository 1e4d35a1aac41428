"""Mixer registry and `build_model`.

`build_model(name, vocab_size=..., **params)` returns an `LM` whose layers use mixer `name`.
Backbone parameters (d_model, n_layers, n_heads, mlp, pos_emb, max_len, tie_head) are common to every
mixer; any other keyword is a mixer option, checked against the mixer's signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from slabench.models.attention import Attention
from slabench.models.gdn import DeltaNet, GatedDeltaNet
from slabench.models.gla import GLA
from slabench.models.linear import LinearAttention, LinearMixer
from slabench.models.retnet import RetNet
from slabench.models.sla import HeadGate, sla_twin
from slabench.models.base import Mixer
from slabench.models.lm import LM
from slabench.params import Param, check_params, dataclass_params, signature_params
from slabench.plugins import MixerRegistry
from slabench.registry import Registry

MIXERS: Registry[type[Mixer]] = MixerRegistry("model")  # also resolves plugin names (slabench.plugins)
MIXERS.register("attention", Attention)
for _name, _cls in (("linear", LinearAttention), ("retnet", RetNet), ("gla", GLA), ("gdn", GatedDeltaNet),
                    ("deltanet", DeltaNet)):
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


def mixer_params(name: str) -> list[Param]:
    """The options of mixer `name` (its constructor's keyword arguments)."""
    return signature_params(MIXERS.get(name).__init__)


def model_params(name: str) -> list[Param]:
    """Backbone parameters followed by the mixer's own options."""
    return dataclass_params(Backbone) + mixer_params(name)


def build_mixer(name: str, d_model: int, n_heads: int, **options: Any) -> Mixer:
    options = check_params(f"model '{name}'", mixer_params(name), options)
    return MIXERS.get(name)(d_model, n_heads, **options)


def split_backbone(typed: dict[str, Any]) -> tuple[Backbone, dict[str, Any]]:
    """Checked model parameters -> (the backbone's, the mixer's options)."""
    bb = Backbone(**{k: v for k, v in typed.items() if k in Backbone.__dataclass_fields__})
    return bb, {k: v for k, v in typed.items() if k not in Backbone.__dataclass_fields__}


def build_model(name: str, vocab_size: int, **params: Any) -> LM:
    """An LM with mixer `name`; unknown or invalid parameters raise a one-line error."""
    cls = MIXERS.get(name)
    bb, options = split_backbone(check_params(f"model '{name}'", model_params(name), params))
    return LM(
        vocab_size,
        bb.d_model,
        bb.n_layers,
        lambda: cls(bb.d_model, bb.n_heads, **options),
        mlp=bb.mlp,
        pos_emb=bb.pos_emb,
        max_len=bb.max_len,
        tie_head=bb.tie_head,
    )


__all__ = [
    "LM", "MIXERS", "Backbone", "HeadGate", "LinearMixer", "Mixer", "build_mixer", "build_model", "mixer_params",
    "model_params", "sla_twin", "split_backbone",
]

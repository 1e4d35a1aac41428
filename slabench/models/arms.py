"""Arm labels: a mixer with the options that set it apart, as one name.

The SLA report compares arms of a base X: `gla`, `gla/layer-norm` (the twin's output norm),
`sla-gla`, `sla-gla/head-norm` (the base's), `sla-gla/sigmoid` (the control gate),
`sla-gla/constant` (the gate held at 1/H). A grid declares arms as ordinary model options;
`arm` names them, and `parse_arm` reads a name back, so that the commands taking mixer names
(`slabench sweep --mixers`, `slabench profile`) take an arm too.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from slabench.errors import SlabenchError
from slabench.models import MIXERS, mixer_options

ARM_OPTIONS = ("output_norm", "gate_kind")  # the options that make an arm
TAG = re.compile(r"[A-Za-z_]*(-norm)?")  # a word, or <word>-norm (an empty one is refused as a tag)


def option_default(mixer: str, option: str) -> Any:
    """Mixer `mixer`'s default for `option` (None where it has no such option)."""
    return {f.name: f.default for f in fields(MIXERS.get(mixer).Options)}.get(option)


def arm(mixer: str, params: dict[str, Any]) -> str:
    """The arm label of a model: its mixer, then each arm option set away from the mixer's default."""
    return written_arm(
        mixer, {o: params[o] for o in ARM_OPTIONS if o in params and params[o] != option_default(mixer, o)}
    )


def written_arm(mixer: str, params: dict[str, Any]) -> str:
    """The label of a model with each arm option it sets, default or not, in one order; needs no
    registry (`slabench compare` labels the rows of mixers this install may lack)."""
    tags = [f"{params[o]}-norm" if o == "output_norm" else str(params[o]) for o in ARM_OPTIONS if o in params]
    return "/".join([mixer, *tags])


def _tag_option(tag: str) -> tuple[str, str]:
    """(option, value) of one tag: `head-norm` -> ("output_norm", "head"), `sigmoid` -> ("gate_kind", ...)."""
    return ("output_norm", tag.removesuffix("-norm")) if tag.endswith("-norm") else ("gate_kind", tag)


def _split(label: str) -> tuple[str, list[str]]:
    """The mixer and the tags of a label: the tags are the word-shaped parts after the last '/'
    of the mixer's name, which can hold '/' itself (a plugin file, `examples/my_variant.py:Cls`)."""
    parts = label.split("/")
    cut = len(parts)
    while cut > 1 and TAG.fullmatch(parts[cut - 1]):
        cut -= 1
    return "/".join(parts[:cut]), parts[cut:]


def split_arm(label: str) -> tuple[str, dict[str, Any]]:
    """(mixer, options) of an arm label as written, checked against nothing: what a saved sweep's
    labels say even where this install lacks the mixer."""
    mixer, tags = _split(label)
    return mixer, dict(_tag_option(t) for t in tags)


def parse_arm(label: str, where: str = "--mixers") -> tuple[str, dict[str, Any]]:
    """(mixer, options) of an arm label: `sla-gla/head-norm` -> ("sla-gla", {"output_norm": "head"}).
    An unknown mixer, tag or option value raises one line naming it and what is allowed."""
    mixer, tags = _split(label)
    try:
        MIXERS.get(mixer)
    except SlabenchError as e:
        raise SlabenchError(f"{where}: {e}") from None
    options: dict[str, Any] = {}
    for tag in tags:
        option, value = _tag_option(tag)
        if option in options or option_default(mixer, option) is None:
            raise SlabenchError(
                f"{where}: '{label}': tag '{tag}' is not allowed; an arm of '{mixer}' takes at most one "
                "<output_norm>-norm tag (head-norm, layer-norm, none-norm) and, for an sla- mixer, one gate kind "
                "(softmax, sigmoid, constant)"
            )
        options[option] = value
    try:
        mixer_options(mixer, **options)  # an unknown value lists the allowed ones
    except SlabenchError as e:
        raise SlabenchError(f"{where}: '{label}': {e}") from None
    return mixer, options

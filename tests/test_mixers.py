"""Conformance tests generated from the mixer registry: shape and finite gradients, causality,
state size against the real state, SLA diagnostics and options."""

import inspect
import math
from dataclasses import dataclass, field, fields
from typing import Literal

import pytest
import torch

from slabench import kernels
from slabench.errors import SlabenchError
from slabench.kernels import gla_recurrent
from slabench.models import MIXERS, LinearMixer, build_mixer, mixer_params, shared_option, sla_twin

NAMES = MIXERS.names()
LINEAR = [n for n in NAMES if issubclass(MIXERS.get(n), LinearMixer)]
SLA = [n for n in NAMES if n.startswith("sla-")]


def make(name: str, **options):
    torch.manual_seed(0)
    return build_mixer(name, 32, 2, **options)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shape_and_finite_grads(name):
    m = make(name)
    x = torch.randn(2, 17, 32, requires_grad=True)
    y = m(x)
    assert y.shape == (2, 17, 32)
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", NAMES)
def test_causal(name):
    m = make(name).double()
    x = torch.randn(2, 17, 32, dtype=torch.float64)
    t = 9
    x2 = x.clone()
    x2[:, t] += torch.randn(2, 32, dtype=torch.float64)
    y, y2 = m(x), m(x2)
    torch.testing.assert_close(y[:, :t], y2[:, :t], rtol=0, atol=1e-12)
    assert (y[:, t] - y2[:, t]).abs().max() > 1e-6  # and the perturbation is seen at t


@pytest.mark.parametrize("name", LINEAR + ["linear:normalize", "gla:no-conv"])
def test_state_size_is_the_real_state(name):
    options = {"linear:normalize": {"normalize": True}, "gla:no-conv": {"conv_size": 0}}.get(name, {})
    m = make(name.split(":")[0], **options)
    x = torch.randn(3, 17, 32)
    state = m.final_state(x)
    assert sum(s.numel() for s in state) == 3 * m.state_size(17)


@pytest.mark.parametrize("name", LINEAR)
def test_final_state_continues_the_recurrence(name):
    """The kernel state after T tokens is what the chunked forward carried: check it against
    the recurrent oracle's state on the same (gated, featurised) q, k, v."""
    from slabench.kernels import delta_rule_recurrent, gla_recurrent

    m = make(name).double()
    x = torch.randn(2, 17, 32, dtype=torch.float64)
    q_raw, k_raw, v, extras = m.qkv(x)
    q, k = m.feature_map(q_raw, k_raw)
    if m.q_gate is not None:
        q, k = m.apply_head_gates(x, q_raw, k_raw, q, k)
    if "beta" in extras:
        _, oracle = delta_rule_recurrent(q, k, v, extras["g"], extras["beta"], output_final_state=True)
    else:
        g = extras.get("g", getattr(m, "log_gamma", None))
        g = None if g is None else g.expand(q.shape[:3]) if g.dim() == 1 else g
        _, oracle = gla_recurrent(q, k, v, g, output_final_state=True)
    torch.testing.assert_close(m.final_state(x)[0], oracle, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", SLA)
def test_sla_diagnostics_in_range(name):
    m = make(name)
    assert m.diagnostics() == {}
    m(torch.randn(2, 17, 32))
    d = m.diagnostics()
    assert set(d) == {"gate_entropy", "gate_max", "kgate_entropy", "kgate_max"}
    for key in ("gate_entropy", "kgate_entropy"):
        assert 0.0 <= d[key] <= 1.0 + 1e-6
    for key in ("gate_max", "kgate_max"):
        assert 0.5 - 1e-6 <= d[key] <= 1.0  # 2 heads: the largest gate is at least 1/2


def test_sla_options():
    m = make("sla-gla", gate_q_only=True, gate_source="x", gate_rank=4, gate_temp=0.5)
    m(torch.randn(2, 5, 32))
    assert set(m.diagnostics()) == {"gate_entropy", "gate_max"}
    assert m.q_gate.down.in_features == 32 and m.q_gate.down.out_features == 4
    qk = make("sla-gla")
    assert qk.q_gate.down.in_features == qk.key_dim
    names = [p.name for p in mixer_params("sla-retnet")]
    assert names[: len(mixer_params("retnet"))] == [p.name for p in mixer_params("retnet")]
    assert {"gate_rank", "gate_temp", "gate_q_only", "gate_source"} <= set(names)
    with pytest.raises(SlabenchError, match="gate_source"):
        make("sla-gdn", gate_source="v")


def test_sla_gates_respond_to_query_magnitude():
    """Gates read the raw q: scaling the input changes them (the paper's magnitude sensitivity)."""
    m = make("sla-linear", conv_size=0)
    x = torch.randn(2, 17, 32)
    m(x)
    g1 = m.q_gate.last_gates
    m(3 * x)
    assert (m.q_gate.last_gates - g1).abs().max() > 1e-3


def test_twin_adds_only_the_gates():
    base, twin = MIXERS.get("gdn"), MIXERS.get("sla-gdn")
    assert issubclass(twin, base)
    assert inspect.getsource(twin.__init__).count("enable_head_gates") == 1
    b, t = make("gdn"), make("sla-gdn")
    extra = {n for n, _ in t.named_parameters()} - {n for n, _ in b.named_parameters()}
    assert extra and all(n.startswith(("q_gate.", "k_gate.", "o_norm.")) for n in extra)


def test_bad_options_raise_one_line():
    with pytest.raises(SlabenchError, match="expand_k"):
        make("gla", expand_k=0.3)
    with pytest.raises(SlabenchError, match="normalize"):
        make("linear", normalize=True, feature_map="identity")


@dataclass(frozen=True)
class FixedDecayOptions:
    decay: float  # required: no default
    expand_k: float = shared_option("expand_k", 1.0)
    expand_v: float = shared_option("expand_v", 1.0)
    conv_size: int = shared_option("conv_size", 4)
    output_gate: bool = shared_option("output_gate", False)
    output_norm: Literal["head", "layer", "none"] = shared_option("output_norm", "head")
    q_scale: float = field(default=1.0, kw_only=True)


class FixedDecay(LinearMixer):
    """Linear attention with one fixed decay, scaled queries: a required and a keyword-only option."""

    Options = FixedDecayOptions

    def mix(self, q, k, v, extras, output_final_state=False):
        g = torch.full(q.shape[:3], math.log(self.options.decay), dtype=q.dtype)  # [B, T, H]
        return kernels.gla(q, k, v, g, scale=self.options.q_scale, output_final_state=output_final_state)


def test_sla_twin_of_a_base_with_required_and_keyword_only_options(monkeypatch):
    monkeypatch.setitem(MIXERS._items, "sla-fixed-decay", sla_twin(FixedDecay))
    gates = ["gate_rank", "gate_temp", "gate_q_only", "gate_source"]
    assert [p.name for p in mixer_params("sla-fixed-decay")] == [f.name for f in fields(FixedDecayOptions)] + gates
    assert MIXERS.get("sla-fixed-decay").Options(decay=0.5).output_norm == "layer"
    with pytest.raises(SlabenchError, match="option 'decay' has no default"):
        make("sla-fixed-decay")
    # Without an output norm the forward is o_proj of the kernel's output: check it against the
    # oracle run with the decay and the q scale the options gave, on the gated q and k.
    m = make("sla-fixed-decay", decay=0.5, q_scale=0.25, gate_rank=3, output_norm="none").double()
    assert m.q_gate.down.out_features == 3 and m.k_gate is not None
    x = torch.randn(2, 17, 32, dtype=torch.float64)
    q_raw, k_raw, v, _ = m.qkv(x)
    q, k = m.apply_head_gates(x, q_raw, k_raw, q_raw, k_raw)
    o, _ = gla_recurrent(q, k, v, torch.full(q.shape[:3], math.log(0.5), dtype=torch.float64), scale=0.25)
    torch.testing.assert_close(m(x), m.o_proj(o.reshape(2, 17, -1)), rtol=1e-9, atol=1e-9)

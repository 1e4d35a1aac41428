"""Conformance tests generated from the mixer registry: shape and finite gradients, causality,
state size against the real state, SLA diagnostics and options."""

import inspect
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import pytest
import torch
import torch.nn.functional as F

from slabench import kernels
from slabench.errors import SlabenchError
from slabench.kernels import dispatch, gla_recurrent
from slabench.models import MIXERS, LinearMixer, build_mixer, mixer_params, shared_option, sla_twin
from slabench.models.sla import HeadGate

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


def test_normalised_linear_attention_is_the_causal_weighted_mean_of_values():
    """normalize=True: o_t = sum_{s<=t} (q_t . k_s) v_s / sum_{s<=t} (q_t . k_s), with the positive
    feature map on q and k, computed here as T x T products; and its final state carries the
    sum of the keys as an extra value column."""
    m = make("linear", normalize=True).double()
    x = torch.randn(2, 13, 32, dtype=torch.float64)
    q_raw, k_raw, v, extras = m.qkv(x)
    q, k = m.feature_map(q_raw, k_raw)  # [B, T, H, D]
    o, state = m.mix(q, k, v, extras, output_final_state=True)
    scores = torch.einsum("bthd,bshd->bhts", q, k).tril()  # [B, H, T, T], causal
    want = torch.einsum("bhts,bshv->bthv", scores, v) / (scores.sum(-1).transpose(1, 2)[..., None] + 1e-6 * 16**0.5)
    torch.testing.assert_close(o, want, rtol=1e-10, atol=1e-12)  # head dim 16: the eps scales by 16**0.5
    torch.testing.assert_close(state[..., -1], k.sum(1))  # [B, H, Dk]
    assert state.shape[-1] == v.shape[-1] + 1


@pytest.mark.parametrize("name", LINEAR)
def test_final_state_continues_the_recurrence(name):
    """The kernel state after T tokens is what the chunked forward carried: check it against
    the recurrent oracle's state on the same (gated, featurised) q, k, v."""
    from slabench.kernels import delta_rule_recurrent, gla_recurrent

    m = make(name).double()
    x = torch.randn(2, 17, 32, dtype=torch.float64)
    q_raw, k_raw, v, extras = m.qkv(x)
    q, k = m.features(x, q_raw, k_raw)
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
    assert set(d) == {"gate_entropy", "gate_max", "gate_peaked", "kgate_entropy", "kgate_max", "kgate_peaked"}
    for key in ("gate_entropy", "kgate_entropy", "gate_peaked", "kgate_peaked"):
        assert 0.0 <= d[key] <= 1.0 + 1e-6
    for key in ("gate_max", "kgate_max"):
        assert 0.5 - 1e-6 <= d[key] <= 1.0  # 2 heads: the largest gate is at least 1/2


def test_sla_options():
    m = make("sla-gla", gate_q_only=True, gate_source="x", gate_rank=4, gate_temp=0.5)
    m(torch.randn(2, 5, 32))
    assert set(m.diagnostics()) == {"gate_entropy", "gate_max", "gate_peaked"}
    assert m.q_gate.down.in_features == 32 and m.q_gate.down.out_features == 4
    qk = make("sla-gla")
    assert qk.q_gate.down.in_features == qk.key_dim
    names = [p.name for p in mixer_params("sla-retnet")]
    assert names[: len(mixer_params("retnet"))] == [p.name for p in mixer_params("retnet")]
    assert {"gate_rank", "gate_temp", "gate_q_only", "gate_source"} <= set(names)
    with pytest.raises(SlabenchError, match="gate_source"):
        make("sla-gdn", gate_source="v")


def test_sigmoid_gate_against_a_hand_computation():
    """kind 'sigmoid': g_h = sigmoid(l_h / tau - log(H - 1)) on each head's own logit, worked out
    element by element in float64; at zero logits every gate is the softmax's 1/H, and a head's
    gate is its softmax gate whenever the other heads' logits are zero."""
    gen = torch.Generator().manual_seed(0)
    H, D, C, R, tau = 3, 2, 4, 2, 0.5
    src = torch.randn(1, 2, C, dtype=torch.float64, generator=gen)
    x = torch.randn(1, 2, H, D, dtype=torch.float64, generator=gen)
    w_down, w_up = (
        torch.randn(R, C, dtype=torch.float64, generator=gen),
        torch.randn(H, R, dtype=torch.float64, generator=gen),
    )
    b_up = torch.randn(H, dtype=torch.float64, generator=gen)
    y, gates = kernels.sla_gate(src, x, w_down, w_up, b_up, tau, "sigmoid")
    for t in range(2):
        for h in range(H):
            down = [sum(w_down[r, c].item() * src[0, t, c].item() for c in range(C)) for r in range(R)]
            logit = sum(w_up[h, r].item() * down[r] for r in range(R)) + b_up[h].item()
            g = 1 / (1 + math.exp(-(logit / tau - math.log(H - 1))))
            assert gates[0, t, h].item() == pytest.approx(g, rel=1e-12)
            for d in range(D):
                assert y[0, t, h, d].item() == pytest.approx(x[0, t, h, d].item() * g, rel=1e-12)
    zero = torch.zeros(H, dtype=torch.float64)
    _, at_zero = kernels.sla_gate(src, x, w_down, torch.zeros_like(w_up), zero, tau, "sigmoid")
    torch.testing.assert_close(at_zero, torch.full_like(at_zero, 1 / H), rtol=1e-15, atol=0)
    alone = torch.zeros_like(w_up)
    alone[1] = w_up[1]  # only head 1 has a logit
    _, sig = kernels.sla_gate(src, x, w_down, alone, zero, tau, "sigmoid")
    _, soft = kernels.sla_gate(src, x, w_down, alone, zero, tau)
    torch.testing.assert_close(sig[..., 1], soft[..., 1], rtol=1e-12, atol=0)
    assert not torch.allclose(sig[..., 0], soft[..., 0])  # the others: the softmax's fall as head 1 rises


def test_softmax_gate_is_the_default_and_unchanged():
    """The default gate is the softmax, computed as before the sigmoid kind existed: the float64
    forward of sla-gla at seed 0 matches values recorded from that code."""
    x = torch.randn(2, 17, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float32).double()
    y = make("sla-gla").double()(x)
    torch.testing.assert_close(y, make("sla-gla", gate_kind="softmax").double()(x), rtol=0, atol=0)
    recorded = [0.2385294365165444, -0.04450894173693256, 0.13775393401476893, 0.13022210773200615]
    torch.testing.assert_close(y[1, 16, :4], torch.tensor(recorded, dtype=torch.float64), rtol=1e-10, atol=1e-12)
    assert y.sum().item() == pytest.approx(5.474391870208295, rel=1e-10)
    assert y.abs().sum().item() == pytest.approx(127.97816361815632, rel=1e-10)


def test_sigmoid_twin_trains_and_records_its_path():
    m = make("sla-gla", gate_kind="sigmoid")
    assert m.q_gate.kind == m.k_gate.kind == "sigmoid"
    assert [name for name, _ in dispatch.OPS["sla_gate_sigmoid"].candidates] == ["reference"]
    kernels.reset_paths_used()
    x = torch.randn(2, 17, 32, requires_grad=True)
    m(x).square().mean().backward()
    paths = kernels.paths_used()  # what a run record's kernel_paths holds
    assert paths["sla_gate_sigmoid"] == "reference" and "sla_gate" not in paths
    assert all(torch.isfinite(p.grad).all() for p in m.q_gate.parameters())
    g = m.q_gate.last_gates
    assert ((g > 0) & (g < 1)).all() and (g.sum(-1) - 1).abs().max() > 1e-3  # per head, not a distribution
    with pytest.raises(SlabenchError, match="gate_kind"):
        make("sla-gla", gate_kind="relu")


@pytest.mark.parametrize("name", SLA)
def test_constant_gate_is_the_learned_gate_held_at_its_start(name):
    """gate_kind 'constant': every gate 1/H with no parameters, which is what the softmax gate
    computes with zero logits (uniform over the heads), through whatever path the twin takes
    (GDN's L2 feature map inside the gate included)."""
    x = torch.randn(2, 17, 32, dtype=torch.float64)
    fixed = make(name, gate_kind="constant").double()
    learned = make(name).double()
    for g in (learned.q_gate, learned.k_gate):
        torch.nn.init.zeros_(g.up.weight)
        torch.nn.init.zeros_(g.up.bias)
    assert not list(fixed.q_gate.parameters()) and not list(fixed.k_gate.parameters())
    # The same base weights: the gates are built after the base's layers.
    learned_base = {k: v for k, v in learned.state_dict().items() if "_gate." not in k}
    assert learned_base.keys() == fixed.state_dict().keys()
    fixed.load_state_dict(learned_base)
    torch.testing.assert_close(fixed(x), learned(x), rtol=1e-12, atol=1e-14)
    assert fixed.diagnostics() == {}  # nothing to summarise: the gates never move


@pytest.mark.parametrize("name", ["sla-gla", "sla-gdn", "sla-retnet", "sla-linear"])
def test_gate_scale_heads_makes_a_uniform_gate_the_identity(name):
    """gate_scale 'heads': with uniform gates (zero logits) the twin computes what it computes with
    no gates at all; gate_scale 'one' scales q and k by 1/H instead."""
    x = torch.randn(2, 17, 32)
    for scale, factor in (("heads", 1.0), ("one", 0.5)):  # H = 2
        m = make(name, gate_scale=scale).double()
        for g in (m.q_gate, m.k_gate):
            torch.nn.init.zeros_(g.up.weight)
            torch.nn.init.zeros_(g.up.bias)
        gated = m(x.double())
        q = torch.randn(2, 17, 2, 8, dtype=torch.float64)  # [B, T, H, D]
        src = torch.randn(2, 17, m.q_gate.down.in_features, dtype=torch.float64)
        assert torch.allclose(m.q_gate(src, q), factor * q, rtol=1e-12, atol=0)
        m.q_gate = m.k_gate = None
        assert torch.allclose(gated, m(x.double()), rtol=1e-9, atol=1e-12) == (scale == "heads")
    with pytest.raises(SlabenchError, match="gate_scale"):
        make("sla-gla", gate_scale="double")


def test_recall_positions_and_the_peaked_share_there_by_hand():
    """Queries are the scored positions, keys the other positions holding a query's token (per row);
    the recall share counts only those positions, per layer, for q and k gates."""
    from types import SimpleNamespace

    from slabench.models.sla import recall_diagnostics, recall_positions

    ig = -100
    inputs = torch.tensor([[5, 9, 6, 8, 7, 4, 6, 5], [1, 2, 3, 4, 1, 3, 0, 0]])
    labels = torch.tensor([[ig, ig, ig, ig, ig, ig, 8, 9], [ig, ig, ig, ig, 2, ig, ig, ig]])
    focus = recall_positions(inputs, labels, ig)
    # row 0: queries at 6, 7 (tokens 6, 5), their keys at 2 and 0; row 1: query at 4 (token 1), key at 0
    # (row 1's token 3 is no query's, so positions 2 and 5 stay out although they repeat)
    assert focus.tolist() == [[1, 0, 1, 0, 0, 0, 1, 1], [1, 0, 0, 0, 1, 0, 0, 0]]
    q, k = HeadGate(8, 2), HeadGate(8, 2)
    peaked, flat = [0.95, 0.05], [0.5, 0.5]
    q.last_gates = torch.tensor([[peaked] * 8, [flat] * 8])  # [B=2, T=8, H=2]: row 0 peaked everywhere
    k.last_gates = torch.tensor([[flat] * 8, [peaked] + [flat] * 7])  # only row 1, position 0
    layers = [SimpleNamespace(q_gate=q, k_gate=k), SimpleNamespace()]  # a layer without gates adds nothing
    assert recall_diagnostics(layers, focus) == pytest.approx(
        {"layer0/gate_peaked_recall": 4 / 6, "layer0/kgate_peaked_recall": 1 / 6}
    )
    assert recall_diagnostics(layers, torch.zeros(2, 8, dtype=torch.bool)) == {}


def test_gate_peaked_on_constructed_gates():
    """gate_peaked: the share of tokens whose largest gate exceeds 0.9; entropy and max by hand."""
    gate = HeadGate(8, 4)
    rows = [[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0.25] * 4, [0.91, 0.03, 0.03, 0.03]]  # one-hot x2, uniform, peaked
    gate.last_gates = torch.tensor([rows])  # [B=1, T=4, H=4]
    d = gate.diagnostics("k")
    assert d["kgate_peaked"] == pytest.approx(3 / 4)
    assert d["kgate_max"] == pytest.approx((1 + 1 + 0.25 + 0.91) / 4)
    last = -(0.91 * math.log(0.91) + 3 * 0.03 * math.log(0.03)) / math.log(4)
    assert d["kgate_entropy"] == pytest.approx((0 + 0 + 1 + last) / 4, rel=1e-6)
    # Sigmoid gates need not sum to one: the largest can pass 0.9 with all heads equally open.
    sig = HeadGate(8, 4, kind="sigmoid")
    sig.last_gates = torch.tensor([[[0.95] * 4, [0.5, 0.1, 0.1, 0.1]]])
    d = sig.diagnostics()
    assert d["gate_peaked"] == pytest.approx(1 / 2)
    shares = [0.5 / 0.8, 0.1 / 0.8, 0.1 / 0.8, 0.1 / 0.8]
    second = -sum(p * math.log(p) for p in shares) / math.log(4)
    assert d["gate_entropy"] == pytest.approx((1 + second) / 2, rel=1e-6)


@pytest.mark.parametrize("name", ["sla-gdn", "sla-deltanet"])
@pytest.mark.parametrize("kind,q_only", [("softmax", False), ("sigmoid", False), ("softmax", True)])
def test_l2_twins_gate_the_normalised_heads_they_read_raw(name, kind, q_only):
    """GDN's and DeltaNet's gates do their L2 feature map themselves: the result is the base's
    feature map, then gates read from the raw q, k scaling the normalised heads, written out here."""
    m = make(name, gate_kind=kind, gate_q_only=q_only).double()
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    q_raw, k_raw, _, _ = m.qkv(x)
    q, k = m.apply_head_gates(x, q_raw, k_raw)
    q_map, k_map = (t / (t.square().sum(-1, keepdim=True) + 1e-6).sqrt() for t in (q_raw, k_raw))  # fla's l2norm
    want_q = m.q_gate(q_raw.flatten(2), q_map)
    want_k = k_map if q_only else m.k_gate(k_raw.flatten(2), k_map)
    torch.testing.assert_close(q, want_q, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(k, want_k, rtol=1e-12, atol=1e-14)
    assert (want_q - q_map).abs().max() > 1e-3  # the gates did scale the heads


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
    gates = ["gate_rank", "gate_temp", "gate_q_only", "gate_source", "gate_kind", "gate_scale"]
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
    q, k = m.apply_head_gates(x, q_raw, k_raw)
    o, _ = gla_recurrent(q, k, v, torch.full(q.shape[:3], math.log(0.5), dtype=torch.float64), scale=0.25)
    torch.testing.assert_close(m(x), m.o_proj(o.reshape(2, 17, -1)), rtol=1e-9, atol=1e-9)


def test_mamba2_is_the_ssd_recurrence():
    """The layer against Mamba-2's recurrence written step by step from its own weights:
    S_t = exp(dt_t A) S_{t-1} + dt_t B_t^T x_t, y_t = C_t S_t + D x_t, then norm, gate, o_proj;
    dt_t = softplus(W_dt u_t + dt_bias) scales both the decay and the write."""
    torch.manual_seed(0)
    m = build_mixer("mamba2", 32, 2).double()
    with torch.no_grad():
        m.D.copy_(torch.tensor([0.5, 1.5]))  # a skip that differs per head
        m.dt_bias.copy_(torch.tensor([0.5, 1.0]))  # dt near 1, A below Mamba-2's (1, 16): the decay and
        m.A_log.copy_(torch.tensor([0.3, 0.6]).log())  # the write both far from 0 and 1, so both are checked
    Bsz, T, H, N, P = 2, 11, 2, m.head_k_dim, m.head_v_dim
    u = torch.randn(Bsz, T, 32, dtype=torch.float64)
    W, width = m.conv.size, 2 * m.key_dim + m.value_dim
    h = F.conv1d(F.pad((u @ m.qkv_proj.weight.T).transpose(1, 2), (W - 1, 0)), m.conv.conv.weight, groups=width)
    C, B, x = F.silu(h).transpose(1, 2).split([m.key_dim, m.key_dim, m.value_dim], dim=-1)  # [Bsz, T, .]
    dt = F.softplus(u @ m.dt_proj.weight.T + m.dt_bias)  # [Bsz, T, H]
    A = -m.A_log.exp()  # [H], negative
    S = torch.zeros(Bsz, H, N, P, dtype=torch.float64)
    ys = []
    for t in range(T):
        Bt, Ct, xt = B[:, t].view(Bsz, H, N), C[:, t].view(Bsz, H, N), x[:, t].view(Bsz, H, P)
        dA = torch.exp(dt[:, t] * A)[..., None, None]  # [Bsz, H, 1, 1]
        S = dA * S + dt[:, t, :, None, None] * Bt[..., :, None] * xt[..., None, :]
        ys.append(torch.einsum("bhn,bhnp->bhp", Ct, S) + m.D[:, None] * xt)
    y = torch.stack(ys, dim=1).reshape(Bsz, T, H * P)
    y = F.rms_norm(y, (H * P,), m.o_norm.weight, torch.finfo(torch.float32).eps) * F.silu(u @ m.g_proj.weight.T)
    # dt and the decay are taken in float32 (as under autocast), hence not float64 tolerances
    torch.testing.assert_close(m(u), y @ m.o_proj.weight.T, rtol=1e-6, atol=1e-7)
    decay = torch.exp(dt * A)
    assert dt.min() > 0.3 and decay.min() > 0.05 and decay.max() < 0.95  # the check ran where dt matters


def test_the_decays_and_write_strengths_fed_to_the_kernels_by_hand():
    """The recurrence oracles above take g and beta from the mixer itself, so a wrong decay or
    write strength passed every test: RetNet's fixed decays are 1 - 2^(-5-h) (RetNet's paper),
    DeltaNet's write strength sigmoid(W_b x) without decay, GDN's g = -exp(A_log) softplus(W_a x +
    dt_bias) and beta = sigmoid(W_b x)."""
    from torch.nn.functional import softplus

    retnet = make("retnet").double()
    torch.testing.assert_close(retnet.log_gamma.exp(), torch.tensor([1 - 2**-5, 1 - 2**-6], dtype=torch.float64))
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    delta = make("deltanet").double()
    extras = delta.qkv(x)[3]
    torch.testing.assert_close(extras["beta"], torch.sigmoid(x @ delta.b_proj.weight.T))
    assert torch.equal(extras["g"], torch.zeros_like(extras["g"]))
    gdn = make("gdn").double()
    extras = gdn.qkv(x)[3]
    a, b = (x @ gdn.ab_proj.weight.T).split(2, dim=-1)  # [B, T, H] each: a in the first H outputs
    torch.testing.assert_close(extras["g"].double(), -gdn.A_log.exp() * softplus(a + gdn.dt_bias))
    torch.testing.assert_close(extras["beta"], torch.sigmoid(b))


def test_attention_window_and_rotary_by_hand():
    """Attention with a sliding window of 3 and rotary positions (RoFormer's base 10000, the
    half-split pairs (j, j + Dh/2)) against a loop over tokens in float64: each query attends to
    itself and the two tokens before it. No other test set a window, and a rotary base of 100
    passed every test."""
    import math

    torch.manual_seed(0)
    m = build_mixer("attention", 8, 2, window=3).double()
    x = torch.randn(1, 6, 8, dtype=torch.float64)  # [B, T, D]
    T, H, Dh = 6, 2, 4
    q, k, v = m.qkv(x).view(1, T, 3, H, Dh).unbind(2)  # [B, T, H, Dh] each

    def rot(vec: torch.Tensor, t: int) -> torch.Tensor:  # [Dh] at position t
        out = vec.clone()
        for j in range(Dh // 2):
            a = t * 10000 ** (-j / (Dh // 2))
            out[j] = vec[j] * math.cos(a) - vec[j + Dh // 2] * math.sin(a)
            out[j + Dh // 2] = vec[j] * math.sin(a) + vec[j + Dh // 2] * math.cos(a)
        return out

    y = torch.zeros(1, T, H, Dh, dtype=torch.float64)
    for h in range(H):
        for t in range(T):
            keys = range(max(0, t - 2), t + 1)
            scores = torch.stack([rot(q[0, t, h], t) @ rot(k[0, u, h], u) / math.sqrt(Dh) for u in keys])
            y[0, t, h] = sum(w * v[0, u, h] for w, u in zip(torch.softmax(scores, 0), keys))
    torch.testing.assert_close(m(x), m.out(y.reshape(1, T, H * Dh)), rtol=1e-5, atol=1e-6)
    assert m.state_size(6) == 2 * 3 * 8  # the KV cache of the last 3 tokens


def test_every_report_arm_label_reads_back_to_its_mixer_and_options():
    """`parse_arm` inverts `arm`: each arm of the report's bases names one buildable model."""
    from slabench.models.arms import arm, parse_arm
    from slabench.runners.report_data import Arms

    for base in ("retnet", "gla", "gdn", "deltanet", "mamba2", "linear"):
        a = Arms.of(base)
        labels = {a.base, a.base_twin_norm, a.twin, a.twin_base_norm, a.control, a.fixed}
        for label in labels:
            mixer, options = parse_arm(label)
            assert arm(mixer, options) == label and mixer in (base, f"sla-{base}")
            build_mixer(mixer, 16, 2, **options)
    assert parse_arm("sla-gla/head-norm/sigmoid") == ("sla-gla", {"output_norm": "head", "gate_kind": "sigmoid"})
    # A plugin named by its file keeps the '/' of its path: only word-shaped parts after it are tags.
    plugin = f"{Path(__file__).parents[1] / 'examples' / 'my_variant.py'}:GatedLinear"
    assert parse_arm(plugin) == (plugin, {})
    assert parse_arm(f"sla-{plugin}/sigmoid") == (f"sla-{plugin}", {"gate_kind": "sigmoid"})

"""Kernel references: the chunked forms against the step-by-step oracles in float64, at odd
shapes (T not a multiple of the chunk), outputs, final states and gradients; the SLA gate by
gradcheck; CPU dispatch."""

import pytest
import torch
import torch.nn.functional as F

from slabench import kernels
from slabench.kernels import dispatch
from slabench.kernels.delta_rule.reference import delta_rule_chunk, delta_rule_recurrent
from slabench.kernels.gla.reference import gla_chunk, gla_recurrent
from slabench.kernels.sla_gate.reference import sla_gate_reference

B, T, H, DK, DV = 2, 63, 3, 20, 12


def inputs(decay: str, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=gen, dtype=torch.float64)

    x = {"q": r(B, T, H, DK), "k": r(B, T, H, DK), "v": r(B, T, H, DV)}
    if decay == "channel":
        x["g"] = F.logsigmoid(3 * r(B, T, H, DK))
    elif decay == "channel-strong":  # chunk decays below e^-60: the pairwise path
        x["g"] = 20 * F.logsigmoid(3 * r(B, T, H, DK))
    elif decay == "head":
        x["g"] = F.logsigmoid(r(B, T, H) + 2)
    elif decay == "delta":
        x["q"], x["k"] = F.normalize(x["q"], dim=-1), F.normalize(x["k"], dim=-1)
        x["g"] = F.logsigmoid(r(B, T, H) + 2)
        x["beta"] = torch.sigmoid(r(B, T, H))
    return {k: v.requires_grad_() for k, v in x.items()}


def run_and_grad(fn, x: dict, **kw):
    o, state = fn(**x, output_final_state=True, **kw)
    dout = torch.randn(o.shape, generator=torch.Generator().manual_seed(1), dtype=o.dtype)
    loss = (o * dout).sum() + state.square().sum()
    return o, state, torch.autograd.grad(loss, list(x.values()))


@pytest.mark.parametrize("decay", ["none", "head", "channel", "channel-strong", "delta"])
def test_chunk_matches_recurrent(decay):
    x = inputs(decay)
    chunk, rec = (delta_rule_chunk, delta_rule_recurrent) if decay == "delta" else (gla_chunk, gla_recurrent)
    o1, s1, g1 = run_and_grad(chunk, x, scale=0.3)
    o2, s2, g2 = run_and_grad(rec, x, scale=0.3)
    torch.testing.assert_close(o1, o2, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(s1, s2, rtol=1e-9, atol=1e-9)
    for name, a, b in zip(x, g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8, msg=f"grad of {name}")


def test_gla_matches_fla_naive_and_survives_strong_decay():
    from fla.ops.gla.naive import naive_recurrent_gla

    x = {k: v.detach() for k, v in inputs("channel").items()}
    x["g"] = x["g"] * 20  # decays down to e^-300 per step: the chunked form must stay finite
    o, _ = gla_chunk(**x)
    ref, _ = naive_recurrent_gla(x["q"], x["k"], x["v"], x["g"])
    assert torch.isfinite(o).all()
    torch.testing.assert_close(o.float(), ref.float(), rtol=1e-4, atol=1e-4)


def test_delta_rule_matches_fla_naive():
    from fla.ops.gated_delta_rule.naive import naive_recurrent_gated_delta_rule

    x = {k: v.detach() for k, v in inputs("delta").items()}
    o, _ = delta_rule_chunk(**x)
    ref, _ = naive_recurrent_gated_delta_rule(x["q"], x["k"], x["v"], x["beta"], x["g"])
    torch.testing.assert_close(o.float(), ref.float(), rtol=1e-4, atol=1e-4)


def test_sla_gate_reference_gradcheck_and_sums_to_one():
    gen = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=gen, dtype=torch.float64, requires_grad=True)

    src, x, w_down, w_up, b_up = r(2, 5, 12), r(2, 5, 3, 7), r(2, 12), r(3, 2), r(3)
    assert torch.autograd.gradcheck(lambda *a: sla_gate_reference(*a, 0.7)[0], (src, x, w_down, w_up, b_up))
    assert torch.autograd.gradcheck(
        lambda *a: sla_gate_reference(a[0], None, *a[1:], 0.7)[0], (src, w_down, w_up, b_up)
    )
    y, gates = sla_gate_reference(src, x, w_down, w_up, b_up, 0.7)
    torch.testing.assert_close(gates.sum(-1), torch.ones(2, 5, dtype=gates.dtype))
    torch.testing.assert_close(gates, torch.softmax((src @ w_down.T @ w_up.T + b_up) / 0.7, -1))
    torch.testing.assert_close(y, x * gates[..., None])
    y_self, _ = sla_gate_reference(src, None, w_down, w_up, b_up, 0.7)  # x None: src split into 3 heads of 4
    torch.testing.assert_close(y_self, src.view(2, 5, 3, 4) * gates[..., None])


def test_short_conv_reference_is_a_causal_depthwise_conv():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kernels.short_conv_reference, (x, w))
    y = kernels.short_conv_reference(x, w)
    # by hand: y_t = silu(sum_j w[:, W-1-j] x_{t-j}), zeros before the start
    padded = torch.nn.functional.pad(x, (0, 0, 3, 0))
    by_hand = sum(w[:, 3 - j] * padded[:, 3 - j : 3 - j + 9] for j in range(4))
    torch.testing.assert_close(y, torch.nn.functional.silu(by_hand))
    x2 = x.detach().clone()
    x2[:, 6:] += 1.0  # changing the future leaves the past alone
    torch.testing.assert_close(kernels.short_conv_reference(x2, w)[:, :6], y[:, :6])


def test_short_conv_kernel_comes_first_for_widths_up_to_8(monkeypatch):
    """The project's conv kernel, then fla's, then the reference; the kernel unrolls its taps, so
    wider convs go to fla's. On CPU the reference runs and both kernels are skipped for want of CUDA."""
    from slabench.kernels.conv.fused import MAX_WIDTH

    op = dispatch.OPS["short_conv"]
    assert [name for name, _ in op.candidates] == ["triton_short_conv", "fla_causal_conv1d", "reference"]
    assert list(op.only) == ["triton_short_conv"]
    fits = op.only["triton_short_conv"]
    assert fits(op.default_dims) is None and fits((130, MAX_WIDTH)) is None
    assert "widths" in fits((48, MAX_WIDTH + 1))
    args, _ = op.probe_inputs("cpu", torch.float32, (20, 3))
    assert op.dims_of(args) == (20, 3)  # (channels, width)
    monkeypatch.setattr(op, "choice", {})
    name, fn, reasons = dispatch.select("short_conv", "cpu", torch.float32, (20, 3))
    assert (name, fn) == ("reference", kernels.short_conv_reference)
    assert reasons == ["triton_short_conv: needs CUDA", "fla_causal_conv1d: needs CUDA"]


def test_l2norm_reference_by_hand():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 2, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: kernels.l2norm_reference(a, 1e-6), (x,))
    y = kernels.l2norm_reference(x, 1e-6)
    torch.testing.assert_close(y, x / (x.pow(2).sum(-1, keepdim=True) + 1e-6).sqrt())
    assert torch.allclose(y.norm(dim=-1), torch.ones(3, 5, 2, dtype=torch.float64), atol=1e-6)
    assert kernels.l2norm_reference(torch.zeros(4, dtype=torch.bfloat16), 1e-6).dtype == torch.bfloat16  # no NaN at 0
    assert not kernels.l2norm_reference(torch.zeros(4), 1e-6).isnan().any()


def test_gdn_gates_reference_by_hand():
    """g = -exp(A_log) log(1 + e^(a + dt_bias)) and beta = 1 / (1 + e^-b), element by element with
    Python's math; gradients by gradcheck; g stays float32 under a bf16 projection."""
    import math

    gen = torch.Generator().manual_seed(0)
    ab = torch.randn(2, 3, 2 * 4, generator=gen, dtype=torch.float64, requires_grad=True)
    A_log, dt_bias = (torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(lambda *a: kernels.gdn_gates_reference(*a), (ab, A_log, dt_bias))
    g, beta = kernels.gdn_gates_reference(ab, A_log, dt_bias)
    for i, j, h in [(0, 0, 0), (1, 2, 3), (0, 1, 2)]:
        a, b = ab[i, j, h].item(), ab[i, j, 4 + h].item()
        assert g[i, j, h].item() == pytest.approx(
            -math.exp(A_log[h].item()) * math.log1p(math.exp(a + dt_bias[h].item()))
        )
        assert beta[i, j, h].item() == pytest.approx(1 / (1 + math.exp(-b)))
    g16, beta16 = kernels.gdn_gates_reference(ab.detach().bfloat16(), A_log.detach().float(), dt_bias.detach().float())
    assert (g16.dtype, beta16.dtype) == (torch.float32, torch.bfloat16)


def test_rms_norm_gated_reference_by_hand():
    gen = torch.Generator().manual_seed(0)
    x, g = (torch.randn(3, 4, 6, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2))
    w = torch.rand(6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: kernels.rms_norm_gated_reference(a, b, c, 1e-6), (x, g, w))
    rms = (x.pow(2).mean(-1, keepdim=True) + 1e-6).sqrt()
    torch.testing.assert_close(kernels.rms_norm_gated_reference(x, None, w, 1e-6), x / rms * w)
    torch.testing.assert_close(kernels.rms_norm_gated_reference(x, g, w, 1e-6), x / rms * w * g * torch.sigmoid(g))


def test_rms_norm_writes_the_autocast_dtype_a_linear_would_cast_to():
    """Under autocast the norm's output is what the next linear layer would have cast it to (same
    bf16 values, so the model computes the same), and x's gradient keeps x's dtype."""
    from slabench.models.norm import RMSNorm

    gen = torch.Generator().manual_seed(0)
    norm, lin = RMSNorm(8), torch.nn.Linear(8, 4)
    x = torch.randn(2, 3, 8, generator=gen, requires_grad=True)
    g = torch.randn(2, 3, 8, generator=gen)
    fp32 = kernels.rms_norm_gated_reference(x, g, norm.weight, norm.eps or torch.finfo(torch.float32).eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = norm(x, g)
        out = lin(y)
        expected = lin(fp32)  # autocast casts the float32 norm to bf16 for the linear
    assert y.dtype == torch.bfloat16 and norm(x, g).dtype == torch.float32  # outside autocast: x's dtype
    assert torch.equal(y, fp32.to(torch.bfloat16)) and torch.equal(out, expected)
    (dx,) = torch.autograd.grad(out.float().sum(), x)
    assert dx.dtype == torch.float32 and dx.abs().sum() > 0


def test_cpu_dispatch_picks_reference_and_records_it():
    x = {k: v.detach() for k, v in inputs("head").items()}
    dispatch.reset_paths_used()  # else an earlier test's record of the path would answer
    o, _ = kernels.gla(**{k: v.float() for k, v in x.items()})
    ref, _ = gla_recurrent(**x)  # the step-by-step oracle in float64, not the chunked form CPU runs
    torch.testing.assert_close(o.double(), ref, rtol=1e-4, atol=1e-4)
    assert kernels.paths_used()["simple_gla"] == "reference"
    rows = kernels.doctor(["cpu"], [torch.float32])
    assert {r["op"] for r in rows} == set(dispatch.OPS)
    assert all(r["path"] == "reference" and all("needs CUDA" in f for f in r["fallbacks"]) for r in rows)


def test_forced_reference_and_bad_value(monkeypatch):
    from slabench.errors import SlabenchError

    monkeypatch.setenv("SLABENCH_KERNEL_PATH", "reference")
    monkeypatch.setattr(dispatch.OPS["gla"], "choice", {})
    # On "cuda" (CPU picks the reference anyway): no fast path is even probed, each says why.
    path, _, reasons = dispatch.select("gla", "cuda", torch.float32)
    assert path == "reference" and reasons and all(r.endswith(": SLABENCH_KERNEL_PATH=reference") for r in reasons)
    monkeypatch.setenv("SLABENCH_KERNEL_PATH", "fastest")
    with pytest.raises(SlabenchError, match="SLABENCH_KERNEL_PATH"):
        dispatch.select("gla", "cpu", torch.float32)


def test_dispatch_probes_each_head_dims_once(monkeypatch):
    """Triton specialises kernels on head dims, so a path that works at one width can fail to
    compile at another (fla 0.6.0's chunk_gla backward at keys 4 wide): the choice is made per
    (device, dtype, head dims), with the probe run at the call's own dims."""
    op = dispatch.OPS["gla"]
    monkeypatch.setattr(op, "choice", {})  # (on CPU every choice is the reference; the keys are the point)
    x = {k: v.detach().float() for k, v in inputs("channel").items()}  # q, k [B, T, H, Dk], v [.., Dv]
    kernels.gla(**x)
    dk, dv = x["q"].shape[-1], x["v"].shape[-1]
    assert [k[3] for k in op.choice] == [(dk, dv, True)]  # (Dk, Dv, short sequence)
    x4 = {**x, "q": x["q"][..., :4], "k": x["k"][..., :4], "g": x["g"][..., :4]}
    kernels.gla(**x4)
    kernels.gla(**x4)
    assert sorted(k[3] for k in op.choice) == sorted([(dk, dv, True), (4, dv, True)])


def test_short_gla_kernel_is_offered_for_short_sequences_and_narrow_heads_only():
    """dims (Dk, Dv, T <= SHORT_T): the one-program-per-head kernel walks T sequentially and keeps
    its state in registers, so long sequences and wide keys go to fla's chunk kernels; values up
    to 4x the widest key split into blocks, one program each."""
    from slabench.kernels.gla.short import SHORT_T

    applies = dispatch.OPS["gla"].only["triton_gla_short"]
    assert applies((16, 32, True)) is None and applies((32, 32, True)) is None
    assert applies((32, 64, True)) is None and applies((32, 128, True)) is None  # value blocks
    assert "T <= " in applies((16, 32, False)) and "keys <= 32" in applies((64, 32, True))
    assert "values <= 128" in applies((32, 160, True))
    per_head = dispatch.OPS["simple_gla"].only["triton_gla_short"]
    assert per_head((64, 128, True)) is None and "keys <= 64" in per_head((128, 64, True))
    x = torch.zeros(1, SHORT_T + 1, 2, 16)
    assert dispatch.OPS["gla"].dims_of([x, x, x]) == (16, 16, False)
    assert dispatch.OPS["simple_gla"].dims_of([x[:, :5], x[:, :5], x[:, :5, :, :8]]) == (16, 8, True)


def test_delta_rule_kernel_is_offered_at_any_length_for_heads_up_to_128(monkeypatch):
    """dims (Dk, Dv, walks in segments): the six chunk-parallel kernels come first and take any T,
    so the choice is kept per head dims (a short and a long sequence share it; on a GPU, calls whose
    walks run in segments get a probe of their own); heads wider than MAX_HEAD_DIM go on to fla's
    kernels. The probe's inputs have the dims they are probed for."""
    from slabench.kernels.delta_rule import fused as fused_module
    from slabench.kernels.delta_rule.fused import MAX_HEAD_DIM

    op = dispatch.OPS["delta_rule"]
    assert [name for name, _ in op.candidates] == [
        "triton_delta_rule",
        "fla_chunk_gated_delta_rule",
        "fla_fused_recurrent_gated_delta_rule",
        "reference",
    ]
    assert list(op.only) == ["triton_delta_rule"]
    fused = op.only["triton_delta_rule"]
    assert fused((16, 32, False)) is None and fused((MAX_HEAD_DIM, MAX_HEAD_DIM, True)) is None
    assert "head dims" in fused((2 * MAX_HEAD_DIM, 32, False)) and "head dims" in fused((16, 2 * MAX_HEAD_DIM, False))
    for dims in (op.default_dims, (20, 12, False)):
        args, _ = op.probe_inputs("cpu", torch.float32, dims)
        assert op.dims_of(args) == dims
    monkeypatch.setattr(op, "choice", {})  # (on CPU every choice is the reference; the keys are the point)
    gen = torch.Generator().manual_seed(0)
    for T_ in (63, 1100):
        q, k = (F.normalize(torch.randn(1, T_, 1, 4, generator=gen), dim=-1) for _ in range(2))
        v, g, beta = torch.randn(1, T_, 1, 8, generator=gen), -torch.rand(1, T_, 1), torch.rand(1, T_, 1)
        assert op.dims_of([q, k, v, g, beta]) == (4, 8, False)  # on CPU the walks never segment
        kernels.delta_rule(q, k, v, g, beta)
    assert [key[3] for key in op.choice] == [(4, 8, False)]
    # a segmented call's probe is 4 segments long, so that on a GPU its walks run in segments
    args, _ = op.probe_inputs("cpu", torch.float32, (16, 32, True))
    assert args[0].shape[1] == 4 * fused_module.SEGMENT * fused_module.C

"""The dispatch engine on CPU: its error metric on hand values, and the fallback rules with a fake
op whose candidates raise, disagree in output, or disagree only in gradient.

`select` probes candidates only for device type 'cuda' (on CPU it returns the reference at
once), so the fake op is selected under the key 'cuda' while its probe inputs, built by the op
itself, live on the CPU: the engine's decisions run unchanged, no GPU needed.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from slabench import kernels
from slabench.kernels import dispatch
from slabench.kernels.dispatch import Op, rel_rms

# --- the error metric, by hand ---------------------------------------------------------------


def test_rel_rms_hand_values():
    b = torch.tensor([3.0, 4.0])  # ||b|| = 5
    assert rel_rms(b, b) == 0.0
    assert rel_rms(torch.tensor([3.0, 7.0]), b) == pytest.approx(3 / 5)  # ||(0, 3)|| / 5
    assert rel_rms(torch.tensor([0.0, 0.0]), b) == pytest.approx(1.0)
    # errors of opposite sign must not cancel: ||(1, -1)|| / 5 = sqrt(2) / 5
    assert rel_rms(torch.tensor([4.0, 3.0]), b) == pytest.approx(math.sqrt(2) / 5)
    assert rel_rms(-b, b) == pytest.approx(2.0)  # sign flip: relative error 2
    # relative, not absolute: scaling both leaves it unchanged
    assert rel_rms(1e6 * torch.tensor([3.0, 7.0]), 1e6 * b) == pytest.approx(3 / 5)
    # over all elements of any shape, in float64 (float32 would round 1 + 1e-9 to 1)
    a64 = torch.ones(2, 3, dtype=torch.float64) + 1e-9
    assert rel_rms(a64, torch.ones(2, 3, dtype=torch.float64)) == pytest.approx(1e-9, rel=1e-6)
    assert rel_rms(torch.zeros(3), torch.zeros(3)) == 0.0  # no division by zero


# --- the fallback engine with a fake op -------------------------------------------------------


def _reference(x, w):
    return x * w  # [N] * [N]


def _raises(x, w):
    raise RuntimeError("kernel failed to compile")


def _wrong_output(x, w):
    return x * w + 1.0  # output off by one, gradients exact


class _WrongGrad(torch.autograd.Function):
    """x * w forward, but a backward that drops the gradient of w: the output agrees."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(w)
        return x * w

    @staticmethod
    def backward(ctx, dy):
        (w,) = ctx.saved_tensors
        return dy * w, torch.zeros_like(w)


def _wrong_grad(x, w):
    return _WrongGrad.apply(x, w)


def _slightly_off(x, w):
    return x * w * (1 + 1e-4)  # within the float32 probe tolerance (5e-3)


def _probe(device, dtype, dims):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(50, generator=gen).to(dtype), torch.randn(50, generator=gen).to(dtype)], {}


def _fake_op(candidates) -> Op:
    return Op(
        "fake",
        candidates + [("reference", _reference)],
        _probe,
        returns_state=False,
        dims_of=lambda args: (args[0].shape[-1],),
        default_dims=(50,),
    )


@pytest.fixture
def register(monkeypatch):
    monkeypatch.delenv("SLABENCH_KERNEL_PATH", raising=False)

    def add(candidates) -> Op:
        op = _fake_op(candidates)
        monkeypatch.setitem(dispatch.OPS, "fake", op)
        return op

    return add


def test_compare_measures_output_and_gradient_separately(register):
    op = register([])
    args, kwargs = _probe("cpu", torch.float32, None)
    out, grad = dispatch.compare(op, _wrong_output, args, kwargs)
    assert out > 0.1 and grad == 0.0
    out, grad = dispatch.compare(op, _wrong_grad, args, kwargs)
    assert out == 0.0 and grad == pytest.approx(1.0)  # d/dw all zeros: relative error exactly 1
    assert dispatch.compare(op, _reference, args, kwargs) == (0.0, 0.0)


@pytest.mark.parametrize(
    "bad,why",
    [
        (_raises, "RuntimeError: kernel failed to compile"),
        (_wrong_output, "disagrees with reference"),
        (_wrong_grad, "disagrees with reference"),
    ],
)
def test_a_bad_candidate_is_skipped_for_the_next_good_one(register, bad, why):
    register([("bad", bad), ("good", _slightly_off)])
    name, fn, reasons = dispatch.select("fake", "cuda", torch.float32)
    assert (name, fn) == ("good", _slightly_off)
    assert len(reasons) == 1 and reasons[0].startswith("bad: ") and why in reasons[0]


def test_every_bad_candidate_falls_back_to_the_reference(register):
    register([("raises", _raises), ("out", _wrong_output), ("grad", _wrong_grad)])
    name, fn, reasons = dispatch.select("fake", "cuda", torch.float32)
    assert (name, fn) == ("reference", _reference)
    assert [r.split(":")[0] for r in reasons] == ["raises", "out", "grad"]
    assert "grad 1.0e+00" in reasons[2] and "out 0.0e+00" in reasons[2]  # the failing part is named


def test_first_agreeing_candidate_wins_and_is_probed_once(register, monkeypatch):
    calls = []

    def counted(x, w):
        calls.append(1)
        return _slightly_off(x, w)

    op = register([("fast", counted), ("slower", _slightly_off)])
    assert dispatch.select("fake", "cuda", torch.float32)[0] == "fast"
    probes = len(calls)
    assert probes == 1
    assert dispatch.select("fake", "cuda", torch.float32)[0] == "fast"
    assert len(calls) == probes  # the choice is cached per key
    assert dispatch.select("fake", "cuda", torch.float32, (7,))[0] == "fast"  # other dims: probed again
    assert len(calls) == 2 and len(op.choice) == 2


def test_shape_bound_candidate_is_skipped_with_its_reason(register):
    op = register([("short_only", _slightly_off)])
    op.only["short_only"] = lambda dims: None if dims[0] <= 64 else "T <= 64 only"
    assert dispatch.select("fake", "cuda", torch.float32, (50,))[0] == "short_only"
    name, _, reasons = dispatch.select("fake", "cuda", torch.float32, (100,))
    assert name == "reference" and reasons == ["short_only: T <= 64 only"]


def test_tolerance_follows_the_dtype(register):
    """An error of 1e-2 passes the bfloat16 probe (3e-2) and fails the float32 one (5e-3)."""

    def off_1e2(x, w):
        return x * w * 1.01

    register([("fast", off_1e2)])
    assert dispatch.select("fake", "cuda", torch.float32)[0] == "reference"
    assert dispatch.select("fake", "cuda", torch.bfloat16)[0] == "fast"


def test_forced_reference_and_cpu_never_probe(register, monkeypatch):
    def boom(x, w):
        raise AssertionError("probed")

    register([("fast", boom)])
    name, _, reasons = dispatch.select("fake", "cpu", torch.float32)
    assert name == "reference" and reasons == ["fast: needs CUDA"]
    monkeypatch.setenv("SLABENCH_KERNEL_PATH", "reference")
    name, _, reasons = dispatch.select("fake", "cuda", torch.float32)
    assert name == "reference" and reasons == ["fast: SLABENCH_KERNEL_PATH=reference"]


def test_call_runs_the_chosen_path_and_records_it(register):
    register([])
    kernels.reset_paths_used()
    x, w = torch.randn(50), torch.randn(50)
    torch.testing.assert_close(dispatch.call("fake", x, w), x * w)
    assert kernels.paths_used() == {"fake": "reference"}
    kernels.reset_paths_used()
    assert kernels.paths_used() == {}


# --- the public ops on CPU against oracles that are not the code they dispatch to ---------------


def test_cpu_gla_through_dispatch_matches_the_recurrence_by_hand():
    """kernels.gla on CPU (per-head decay) against the recurrence written out here in float64:
    S_t = exp(g_t) S_{t-1} + k_t^T v_t, o_t = scale q_t S_t."""
    gen = torch.Generator().manual_seed(0)
    B, T, H, Dk, Dv = 2, 13, 3, 5, 4
    q, k = torch.randn(B, T, H, Dk, generator=gen), torch.randn(B, T, H, Dk, generator=gen)
    v = torch.randn(B, T, H, Dv, generator=gen)
    g = F.logsigmoid(torch.randn(B, T, H, generator=gen) + 2)
    kernels.reset_paths_used()
    o, state = kernels.gla(q, k, v, g, output_final_state=True)
    assert kernels.paths_used() == {"simple_gla": "reference"}
    S = torch.zeros(B, H, Dk, Dv, dtype=torch.float64)
    expected = torch.zeros(B, T, H, Dv, dtype=torch.float64)
    for t in range(T):
        kt, vt = k[:, t].double(), v[:, t].double()  # [B, H, Dk], [B, H, Dv]
        S = g[:, t].double().exp()[..., None, None] * S + kt[..., :, None] * vt[..., None, :]
        expected[:, t] = Dk**-0.5 * torch.einsum("bhk,bhkv->bhv", q[:, t].double(), S)
    torch.testing.assert_close(o.double(), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state.double(), S, rtol=1e-4, atol=1e-5)


def test_cpu_sla_gate_through_dispatch_by_hand():
    gen = torch.Generator().manual_seed(0)
    src, x = torch.randn(2, 5, 12, generator=gen), torch.randn(2, 5, 3, 7, generator=gen)
    w_down, w_up, b_up = (
        torch.randn(4, 12, generator=gen),
        torch.randn(3, 4, generator=gen),
        torch.randn(3, generator=gen),
    )
    y, gates = kernels.sla_gate(src, x, w_down, w_up, b_up, 0.5)
    logits = torch.einsum("btc,rc,hr->bth", src.double(), w_down.double(), w_up.double()) + b_up.double()
    e = (logits / 0.5).exp()
    expected = e / e.sum(-1, keepdim=True)  # softmax over the 3 heads
    torch.testing.assert_close(gates.double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y.double(), x.double() * expected[..., None], rtol=1e-5, atol=1e-6)


def test_triton_keeps_autotuning_results_on_disk(monkeypatch):
    """fla's autotuners, decorated after slabench.kernels is imported, cache their winners."""
    triton = pytest.importorskip("triton")
    import slabench.kernels  # noqa: F401  (sets the default)

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the interpreter never caches

    @triton.autotune(configs=[triton.Config({"BLOCK": 16})], key=[])
    @triton.jit
    def kernel(x, BLOCK: triton.language.constexpr):
        pass

    assert kernel.cache_results

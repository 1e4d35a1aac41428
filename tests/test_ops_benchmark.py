"""Speed regression benchmarks of the kernel ops and one mixer, at small CPU shapes.

By default (`--benchmark-disable` in pyproject) each runs once as a plain test, with a real
check of its result. As a speed regression check against a saved run:

    python -m pytest tests/test_ops_benchmark.py --benchmark-enable --benchmark-autosave
    python -m pytest tests/test_ops_benchmark.py --benchmark-enable --benchmark-compare \
        --benchmark-compare-fail=median:20%

Torch runs on one thread here: on a shared 2-core machine two OpenMP threads make timings of
small ops swing by an order of magnitude. Each benchmark times forward and backward.
"""

import pytest
import torch
import torch.nn.functional as F

from slabench import kernels
from slabench.kernels.delta_rule.reference import delta_rule_recurrent
from slabench.kernels.gla.reference import gla_recurrent
from slabench.models import build_mixer

pytestmark = pytest.mark.usefixtures("one_thread")

B, T, H, D = 2, 128, 4, 16


def _inputs(*shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=gen).requires_grad_() for s in shapes]


def _fwd_bwd(fn, xs):
    """Run fn(*xs), backpropagate the output's sum of squares; return (output, gradients)."""
    out = fn(*xs)
    return out, torch.autograd.grad(out.square().sum(), xs)


def _bench(benchmark, fn, xs):
    return benchmark.pedantic(_fwd_bwd, args=(fn, xs), rounds=10, warmup_rounds=1, iterations=1)


def test_bench_gla(benchmark):
    q, k, v, g = _inputs((B, T, H, D), (B, T, H, D), (B, T, H, D), (B, T, H, D))

    def fn(q, k, v, g):
        return kernels.gla(q, k, v, F.logsigmoid(g + 3))[0]  # [B, T, H, D]

    out, grads = _bench(benchmark, fn, [q, k, v, g])
    with torch.no_grad():
        ref = gla_recurrent(q.double(), k.double(), v.double(), F.logsigmoid(g.double() + 3), D**-0.5)[0]
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)
    assert all(torch.isfinite(x).all() for x in grads)


def test_bench_delta_rule(benchmark):
    q, k, v, g, beta = _inputs((B, T, H, D), (B, T, H, D), (B, T, H, D), (B, T, H), (B, T, H))

    def fn(q, k, v, g, beta):
        return kernels.delta_rule(
            F.normalize(q, dim=-1), F.normalize(k, dim=-1), v, F.logsigmoid(g + 3), torch.sigmoid(beta)
        )[0]

    out, grads = _bench(benchmark, fn, [q, k, v, g, beta])
    with torch.no_grad():
        ref = delta_rule_recurrent(
            F.normalize(q.double(), dim=-1),
            F.normalize(k.double(), dim=-1),
            v.double(),
            F.logsigmoid(g.double() + 3),
            torch.sigmoid(beta.double()),
            D**-0.5,
        )[0]
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)
    assert all(torch.isfinite(x).all() for x in grads)


def test_bench_sla_gate(benchmark):
    src, x, w_down, w_up, b_up = _inputs((8, 512, H * D), (8, 512, H, D), (8, H * D), (H, 8), (H,))

    def fn(*a):
        return kernels.sla_gate(a[0], a[1], *a[2:], 0.7)[0]

    out, (_, _, _, _, db) = _bench(benchmark, fn, [src, x, w_down, w_up, b_up])
    with torch.no_grad():  # by hand in float64, not through the reference the CPU path runs
        s, xx, wd, wu, bu = (t.double() for t in (src, x, w_down, w_up, b_up))
        gates = torch.softmax((s @ wd.T @ wu.T + bu) / 0.7, dim=-1)  # [8, 512, H]
    torch.testing.assert_close(out.double(), xx * gates[..., None], rtol=1e-5, atol=1e-5)
    assert db.sum().abs() < 1e-3 * db.abs().sum()  # softmax over heads: its logit gradients sum to zero


def test_bench_mixer_sla_gla(benchmark):
    torch.manual_seed(0)
    mixer = build_mixer("sla-gla", 64, 4)
    (x,) = _inputs((B, T, 64))
    out, _ = _bench(benchmark, mixer, [x])
    assert out.shape == x.shape and torch.isfinite(out).all()
    # Causality, checked on the gradient: the output at t = T/2 depends on no later input.
    (dx_mid,) = torch.autograd.grad(mixer(x)[:, T // 2].sum(), x)
    assert dx_mid[:, T // 2 + 1 :].abs().max() == 0 and dx_mid[:, : T // 2 + 1].abs().max() > 0

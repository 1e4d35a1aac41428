"""The project's Triton kernels on CPU, through Triton's interpreter, against float64 references.

- The short-sequence gla kernel (`slabench.kernels.gla.short`): outputs, final states and
  gradients of q, k, v and the decay, at odd shapes (T not a multiple of the chunk, head dims
  not powers of two), every decay form, strided inputs (the split of one projection, as the
  mixers pass them), decays strong enough to overflow a factorised form, and heads 64 wide with
  one decay per head.
- The chunked gated delta rule (`slabench.kernels.delta_rule.fused`): outputs, final states and
  gradients of q, k, v, g and beta against the step-by-step oracle, at T = 63 with head dim 20
  (one partial chunk), at T a multiple of the chunk, and with g = 0 (DeltaNet), on strided and
  contiguous inputs.
- The fused SLA gate (`slabench.kernels.sla_gate.fused`) on strided src and x, gating src itself or a
  separate x, or its own heads L2-normalised first: output, gates and the gradients of src, x and the three weights.
- The short conv (`slabench.kernels.conv.fused`): output and the gradients of x and the weight,
  at T of one step, T shorter than the conv, channels not a multiple of the block, widths 1 to 8
  and x a strided slice of a wider tensor.
- Gated DeltaNet's gates (`slabench.kernels.gdn_gates.fused`): g, beta and the gradients of the
  projection and both parameters, on strided and contiguous projections, softplus's argument
  from -40 to +30.
- The token embedding's backward (`slabench.kernels.embedding.fused`): the weight's gradient at
  vocabularies and widths not powers of two, token counts not a multiple of a program's, one
  token and a strided output gradient; and the dispatch probe's comparison with integer indices.
- The norms (`slabench.kernels.norm.fused`): the L2 norm's y and input gradient on strided slices
  of a wider projection and contiguous inputs; the gated RMS norm's y and the gradients of x, the
  gate and the weight, gated and not; D not a power of two.

The interpreter is switched on by TRITON_INTERPRET=1 when a kernel is defined, so the checks
run in a fresh process. The interpreter forgives what the compiler rejects (it ran a helper
returning tensors of two shapes that Triton refuses to compile), so the kernels are also
compiled ahead of time for Hopper (sm_90) with Triton's bundled ptxas, which needs no GPU.
Neither checks the compiled numbers: two forms of the SLA gate passed both here and were wrong
on an H100 (docs/speed.md). test_gpu.py runs the compiled kernels.
"""

import json
import os
import subprocess
import sys

import pytest

# (B, T, H, Dk, Dv, decay, strided)
CASES = [
    (2, 37, 3, 8, 20, "channel", True),
    (1, 63, 2, 20, 16, "head", False),
    (2, 40, 2, 16, 32, "none", True),
    (1, 33, 1, 4, 4, "channel", False),
    (2, 50, 2, 8, 16, "channel-strong", True),  # log decays down to about -100 per step
    (2, 45, 2, 64, 48, "head", True),  # the widest heads 'simple_gla' offers the kernel
    (1, 40, 1, 40, 64, "head-strong", False),
    (1, 35, 2, 64, 64, "none", True),
    # values wider than a program holds, split into value blocks (the last one partial at 80 and 40)
    (2, 37, 3, 8, 48, "channel", True),
    (1, 63, 2, 20, 80, "head", False),
    (2, 40, 2, 16, 96, "none", True),
    (2, 50, 2, 8, 40, "channel-strong", True),
]


def errors(B, T, H, Dk, Dv, decay, strided) -> dict[str, float]:
    """Relative RMS errors of `gla_short` (float32) against `gla_chunk` (float64)."""
    import torch
    import torch.nn.functional as F

    from slabench.kernels.dispatch import rel_rms
    from slabench.kernels.gla.reference import gla_chunk
    from slabench.kernels.gla.short import gla_short

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(B, T, H * (2 * Dk + Dv), generator=gen, dtype=torch.float64)  # one projection
    g = {
        "none": None,
        "head": F.logsigmoid(torch.randn(B, T, H, generator=gen, dtype=torch.float64) + 2),
        "channel": F.logsigmoid(torch.randn(B, T, H, Dk, generator=gen, dtype=torch.float64) + 1),
        "channel-strong": 3 * F.logsigmoid(10 * torch.randn(B, T, H, Dk, generator=gen, dtype=torch.float64)),
        "head-strong": 3 * F.logsigmoid(10 * torch.randn(B, T, H, generator=gen, dtype=torch.float64)),
    }[decay]
    do = torch.randn(B, T, H, Dv, generator=gen, dtype=torch.float64)

    def run(fn, dtype):
        hh = h.to(dtype).requires_grad_()
        gg = None if g is None else g.to(dtype).requires_grad_()
        q, k, v = (x.reshape(B, T, H, -1) for x in hh.split([H * Dk, H * Dk, H * Dv], -1))  # strided views
        if not strided:
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        o, state = fn(q, k, v, gg, output_final_state=True)
        grads = torch.autograd.grad(o, [x for x in (hh, gg) if x is not None], do.to(dtype))
        return [o, state, *grads]

    names = ["o", "state", "dqkv"] + ([] if g is None else ["dg"])
    return {n: rel_rms(a, b) for n, a, b in zip(names, run(gla_short, torch.float32), run(gla_chunk, torch.float64))}


# (B, T, H, Dk, Dv, decay scale, strided, split backward, chunks per walk segment): T 63 ends in a
# partial chunk, 64 is two full ones; the chunk backward as one kernel
# (`DeltaRuleConfig(split_backward=False)`) at both; the walks in segments of 1 and 2 chunks (the
# last one partial at T 200; two value blocks at Dv 48), with weak or no decay so that the state
# carried across segments matters
DELTA_CASES = [
    (1, 63, 2, 20, 20, 1.0, True, True, 0),
    (2, 64, 1, 16, 32, 1.0, False, True, 0),
    (1, 70, 1, 8, 8, 0.0, True, True, 0),
    (1, 63, 2, 20, 20, 1.0, True, False, 0),
    (2, 64, 1, 16, 32, 1.0, False, False, 0),
    (1, 200, 2, 20, 20, 0.1, True, True, 2),
    (2, 96, 1, 16, 48, 0.0, False, True, 1),
]


def delta_errors(B, T, H, Dk, Dv, decay, strided, split, segment) -> dict[str, float]:
    """Relative RMS errors of `delta_rule_fused` (float32) against `delta_rule_recurrent` (float64)."""
    from functools import partial

    import torch
    import torch.nn.functional as F

    from slabench.kernels.delta_rule.fused import DeltaRuleConfig, delta_rule_fused
    from slabench.kernels.delta_rule.reference import delta_rule_recurrent
    from slabench.kernels.dispatch import rel_rms

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(B, T, H * (2 * Dk + Dv), generator=gen, dtype=torch.float64)  # one projection
    g = decay * F.logsigmoid(torch.randn(B, T, H, generator=gen, dtype=torch.float64) + 2)
    beta = torch.rand(B, T, H, generator=gen, dtype=torch.float64)
    do = torch.randn(B, T, H, Dv, generator=gen, dtype=torch.float64)

    def run(fn, dtype):
        leaves = [x.to(dtype).requires_grad_() for x in (h, g, beta)]
        q, k, v = (x.reshape(B, T, H, -1) for x in leaves[0].split([H * Dk, H * Dk, H * Dv], -1))  # strided views
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        if not strided:
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        o, state = fn(q, k, v, leaves[1], leaves[2], output_final_state=True)
        return [o, state, *torch.autograd.grad(o, leaves, do.to(dtype))]

    names = ["o", "state", "dqkv", "dg", "dbeta"]
    config = DeltaRuleConfig(split_backward=split, walk_segment=segment)
    return {
        n: rel_rms(a, b)
        for n, a, b in zip(
            names,
            run(partial(delta_rule_fused, config=config), torch.float32),
            run(delta_rule_recurrent, torch.float64),
        )
        if b.norm() > 0
    }


# (B, T, H, D, R, C, l2): C None gates src itself (x is None, C = H * D), else x is separate; l2: src's
# heads L2-normalised first (op 'sla_gate_l2', C None only)
GATE_CASES = [
    (2, 37, 3, 20, 5, None, False),
    (2, 37, 3, 20, 5, 70, False),
    (1, 130, 8, 16, 8, 128, False),
    (1, 65, 1, 3, 1, None, False),
    (2, 37, 3, 20, 5, None, True),
    (1, 130, 8, 16, 8, None, True),
]


def sla_gate_errors(B, T, H, D, R, C, l2) -> dict[str, float]:
    """Relative RMS errors of the fused SLA gate (float32, src and x strided views) against the
    reference (float64): output, gates, and gradients of src, x and the three weights."""
    from functools import partial

    import torch

    from slabench.kernels.dispatch import rel_rms
    from slabench.kernels.sla_gate.fused import sla_gate_l2_triton, sla_gate_triton
    from slabench.kernels.sla_gate.reference import sla_gate_l2_reference, sla_gate_reference

    ours, ref = (
        (partial(sla_gate_l2_triton, eps=1e-6), partial(sla_gate_l2_reference, eps=1e-6))
        if l2
        else (sla_gate_triton, sla_gate_reference)
    )

    same, C = C is None, C or H * D
    gen = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=gen, dtype=torch.float64)

    h, hx, w_down, w_up, b_up = r(B, T, 2 * C + 5), r(B, T, H * D + 3), r(R, C) / C**0.5, r(H, R) / R**0.5, r(H)
    dy = r(B, T, H, D)

    def run(fn, dtype):
        leaves = [t.to(dtype).requires_grad_() for t in ([h] if same else [h, hx]) + [w_down, w_up, b_up]]
        src = leaves[0][..., C : 2 * C]  # a strided view, as q split from one projection
        x = None if same else leaves[1][..., 3:].reshape(B, T, H, D)
        y, gates = fn(src, x, *leaves[-3:], 0.7)
        return [y, gates, *torch.autograd.grad((y * dy.to(dtype)).sum() + gates[..., 0].sum(), leaves)]

    names = ["y", "gates", "dsrc"] + ([] if same else ["dx"]) + ["dw_down", "dw_up", "db_up"]
    return {
        n: rel_rms(a, b) for n, a, b in zip(names, run(ours, torch.float32), run(ref, torch.float64)) if b.norm() > 0
    }  # one head: the gates are constant and the weights get no gradient


# (B, T, C, W, strided): one step, T shorter than W, C past a block (32 channels; steps 16), W 1 and 8, a common size
# (B, T, C, W, strided, backward in two kernels)
CONV_CASES = [
    (2, 37, 20, 4, False, False),
    (1, 1, 20, 4, False, False),
    (2, 3, 20, 4, True, False),
    (2, 37, 130, 4, True, False),
    (2, 20, 17, 1, False, False),
    (2, 40, 33, 8, True, False),
    (4, 128, 96, 4, True, False),
    (2, 37, 130, 4, True, True),
    (1, 1, 20, 4, False, True),
    (2, 70, 33, 8, True, True),
]


def short_conv_errors(B, T, C, W, strided, split) -> dict[str, float]:
    """Relative RMS errors of the Triton short conv (float32) against the reference (float64): the
    output and the gradients of x and the weight. Strided: x is a slice of a wider, longer tensor,
    so its batch stride is not T times its time stride."""
    from functools import partial

    import torch

    from slabench.kernels.conv.fused import ShortConvConfig, short_conv_triton
    from slabench.kernels.conv.reference import short_conv_reference
    from slabench.kernels.dispatch import rel_rms

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(B, T + 3, C + 9, generator=gen, dtype=torch.float64)
    w = torch.randn(C, W, generator=gen, dtype=torch.float64) / W**0.5
    dy = torch.randn(B, T, C, generator=gen, dtype=torch.float64)

    def run(fn, dtype):
        hh, ww = h.to(dtype).requires_grad_(), w.to(dtype).requires_grad_()
        x = hh[:, 2 : 2 + T, 5 : 5 + C] if strided else hh[:, :T, :C].contiguous()
        y = fn(x, ww)
        return [y, *torch.autograd.grad(y, [hh, ww], dy.to(dtype))]

    names = ["y", "dx", "dw"]
    return {
        n: rel_rms(a, b)
        for n, a, b in zip(
            names,
            run(partial(short_conv_triton, config=ShortConvConfig(split_backward=split)), torch.float32),
            run(short_conv_reference, torch.float64),
        )
    }


# (rows B x T, H, strided, dt_bias offset): rows not a multiple of the block, H not a power of two,
# ab a slice of a wider projection, softplus's argument from about -40 (log1p of a tiny exp) to +30
# (past torch's threshold of 20, where softplus is the identity)
GDN_GATE_CASES = [(1, 7, 3, False, -7.0), (2, 300, 8, True, -4.0), (3, 130, 5, True, 0.0), (1, 64, 16, False, 20.0)]


def gdn_gates_errors(B, T, H, strided, offset) -> dict[str, float]:
    """Relative RMS errors of the Triton gdn gates (float32) against the reference (float64):
    g, beta and the gradients of ab, A_log and dt_bias, with dg and dbeta both nonzero."""
    import torch

    from slabench.kernels.dispatch import rel_rms
    from slabench.kernels.gdn_gates.fused import gdn_gates_triton
    from slabench.kernels.gdn_gates.reference import gdn_gates_reference

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(B, T, 2 * H + 5, generator=gen, dtype=torch.float64) * 10  # softplus's argument over +-30
    A_log = torch.rand(H, generator=gen, dtype=torch.float64).mul(16).clamp_min(1e-4).log()
    dt_bias = torch.rand(H, generator=gen, dtype=torch.float64) + offset
    dg, dbeta = (torch.randn(B, T, H, generator=gen, dtype=torch.float64) for _ in range(2))

    def run(fn, dtype):
        leaves = [x.to(dtype).requires_grad_() for x in (h, A_log, dt_bias)]
        ab = leaves[0][..., 2 : 2 + 2 * H] if strided else leaves[0][..., : 2 * H].contiguous()
        g, beta = fn(ab, leaves[1], leaves[2])
        return [g, beta, *torch.autograd.grad([g, beta], leaves, [dg.to(g.dtype), dbeta.to(dtype)])]

    names = ["g", "beta", "dab", "dA_log", "ddt_bias"]
    ours, ref = run(gdn_gates_triton, torch.float32), run(gdn_gates_reference, torch.float64)
    errs = {n: rel_rms(a, b) for n, a, b in zip(names, ours, ref)}
    # the smallest decays too, which an RMS over all tokens would not see (softplus down to ~1e-17)
    errs["g_worst_element"] = ((ours[0].double() - ref[0]).abs() / ref[0].abs()).max().item()
    return errs


# (V, D, token shape, strided gradient): a vocabulary and width not powers of two, tokens not a
# multiple of a program's 512, the largest vocabulary the path takes, one token, and the output's
# gradient given as a strided view
EMBEDDING_CASES = [
    (256, 128, (8, 130), False),
    (5, 3, (2, 7), True),
    (512, 20, (3, 400), True),
    (300, 64, (1, 1), False),
    (64, 16, (40, 701), False),  # 1753 token blocks: 251 programs of 7, the last of 3, its last block half full
]


def embedding_errors(V, D, shape, strided) -> dict[str, float]:
    """Relative RMS errors of the Triton embedding's weight gradient (float32) against the
    reference (float64), and of the probe's comparison (`dispatch.compare`, integer indices)."""
    import torch

    from slabench.kernels import EMBEDDING
    from slabench.kernels.dispatch import compare, rel_rms
    from slabench.kernels.embedding.fused import embedding_triton
    from slabench.kernels.embedding.reference import embedding_reference

    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(V, D, generator=gen, dtype=torch.float64)
    idx = torch.randint(0, V, shape, generator=gen)
    dout = torch.randn(*shape, 2 * D, generator=gen, dtype=torch.float64)
    dout = dout[..., D:] if strided else dout[..., :D].contiguous()  # a slice: rows 2 D apart

    def run(fn, dtype):
        w = weight.to(dtype).requires_grad_()
        out = fn(w, idx)
        return [out, *torch.autograd.grad(out, w, dout.to(dtype))]

    ours, ref = run(embedding_triton, torch.float32), run(embedding_reference, torch.float64)
    errs = {n: rel_rms(a, b) for n, a, b in zip(["out", "dweight"], ours, ref)}
    errs["probe_out"], errs["probe_grad"] = compare(EMBEDDING, embedding_triton, [weight.float(), idx], {})
    return errs


# (shape, wide): x [..., D] as the mixers pass q (a slice of a wider projection, `wide`) or
# contiguous; rows not a multiple of a program's, D not a power of two, one row, a 3-D input
L2NORM_CASES = [
    ((2, 37, 3, 20), True),
    ((1, 130, 8, 16), True),
    ((3, 5, 2, 64), False),
    ((1, 1, 1, 7), False),
    ((5, 33), True),
]


def l2norm_errors(shape, wide) -> dict[str, float]:
    """Relative RMS errors of the Triton l2norm (float32) against the reference (float64): y and dx."""
    import torch

    from slabench.kernels.dispatch import rel_rms
    from slabench.kernels.norm.fused import l2norm_triton
    from slabench.kernels.norm.reference import l2norm_reference

    gen = torch.Generator().manual_seed(0)
    heads = shape[2] if len(shape) == 4 else 1  # a 4-D x [B, T, H, D] views rows of H * D channels
    rows, width = shape[:2] if len(shape) == 4 else shape[:-1], heads * shape[-1]
    h = torch.randn(*rows, 3 * width if wide else width, generator=gen, dtype=torch.float64)
    dy = torch.randn(shape, generator=gen, dtype=torch.float64)

    def run(fn, dtype):
        hh = h.to(dtype).requires_grad_()
        x = hh[..., :width].view(shape)  # strided when wide
        y = fn(x, 1e-6)
        return [y, *torch.autograd.grad(y, hh, dy.to(dtype))]

    ours, ref = run(l2norm_triton, torch.float32), run(l2norm_reference, torch.float64)
    return {n: rel_rms(a, b) for n, a, b in zip(["y", "dx"], ours, ref)}


# (rows shape, D, gated, x strided): the output norm per head (gated), the blocks' norms (no gate),
# rows not a multiple of a program's, D not a power of two
# (rows, D, gated, strided, backward programs at most): with 2 programs, 150 rows of 20 (5 tiles of
# 32) run 3 tiles a program, the last tile wholly past the rows
RMS_CASES = [
    ((2, 37, 3), 20, True, False, 1024),
    ((1, 130), 128, False, True, 1024),
    ((3, 5, 2), 64, True, True, 1024),
    ((1,), 7, False, False, 1024),
    ((3, 50), 20, True, False, 2),
]


def rms_norm_gated_errors(rows, D, gated, strided, programs) -> dict[str, float]:
    """Relative RMS errors of the Triton gated RMS norm (float32) against the reference (float64):
    y and the gradients of x, g and the weight."""
    from functools import partial

    import torch

    from slabench.kernels.dispatch import rel_rms
    from slabench.kernels.norm.fused import NormConfig, rms_norm_gated_triton
    from slabench.kernels.norm.reference import rms_norm_gated_reference

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(*rows, 2 * D, generator=gen, dtype=torch.float64)
    g = torch.randn(*rows, D, generator=gen, dtype=torch.float64)
    w = 1 + torch.rand(D, generator=gen, dtype=torch.float64)
    dy = torch.randn(*rows, D, generator=gen, dtype=torch.float64)

    def run(fn, dtype):
        leaves = [t.to(dtype).requires_grad_() for t in (h, g, w)]
        x = leaves[0][..., D:] if strided else leaves[0][..., :D].contiguous()
        y = fn(x, leaves[1] if gated else None, leaves[2], 1e-6)
        grads = torch.autograd.grad(y, [leaves[0], leaves[2], *leaves[1:2] * gated], dy.to(dtype))
        return [y, *grads]

    ours = run(partial(rms_norm_gated_triton, config=NormConfig(programs=programs)), torch.float32)
    ref = run(rms_norm_gated_reference, torch.float64)
    return {n: rel_rms(a, b) for n, a, b in zip(["y", "dx", "dw", "dg"], ours, ref)}


def _interpret(*groups: str) -> dict:
    """This file's checks of `groups` run in a fresh process under Triton's interpreter."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run(
        [sys.executable, __file__, *groups], check=False, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_project_triton_kernels_match_float64_references_in_interpreter():
    pytest.importorskip("triton")
    results = _interpret("gla", "delta_rule", "sla_gate")
    assert len(results["gla"]) == len(CASES)
    for case, errs in zip(CASES, results["gla"]):
        assert set(errs) >= {"o", "state", "dqkv"}, case
        assert max(errs.values()) < 2e-5, (case, errs)  # float32 arithmetic: ~1e-7 measured, ~2e-6 strong decays
    assert len(results["delta_rule"]) == len(DELTA_CASES)
    for case, errs in zip(DELTA_CASES, results["delta_rule"]):
        assert set(errs) == {"o", "state", "dqkv", "dg", "dbeta"}, case
        assert max(errs.values()) < 2e-5, (case, errs)  # float32 arithmetic: 2e-7 to 1e-6 measured
    assert len(results["sla_gate"]) == len(GATE_CASES)
    for case, errs in zip(GATE_CASES, results["sla_gate"]):
        assert {"y", "gates", "dsrc"} <= set(errs), case
        assert max(errs.values()) < 1e-5, (case, errs)  # ~3e-7 measured


def test_gdn_gates_kernel_matches_float64_reference_in_interpreter():
    pytest.importorskip("triton")
    results = _interpret("gdn_gates")["gdn_gates"]
    assert len(results) == len(GDN_GATE_CASES)
    for case, errs in zip(GDN_GATE_CASES, results):
        assert set(errs) == {"g", "beta", "dab", "dA_log", "ddt_bias", "g_worst_element"}, case
        worst = errs.pop("g_worst_element")
        assert max(errs.values()) < 1e-6, (case, errs)  # float32 arithmetic: 2e-8 to 4e-7 measured
        # a + dt_bias rounds to float32 (torch's float32 chain: the same 2e-6 at such an element)
        assert worst < 1e-5, (case, worst)


def test_short_conv_kernel_matches_float64_reference_in_interpreter():
    pytest.importorskip("triton")
    results = _interpret("short_conv")["short_conv"]
    assert len(results) == len(CONV_CASES)
    for case, errs in zip(CONV_CASES, results):
        assert set(errs) == {"y", "dx", "dw"}, case
        assert max(errs.values()) < 1e-6, (case, errs)  # float32 arithmetic: 5e-8 to 1.8e-7 measured


def test_embedding_backward_kernel_matches_float64_reference_in_interpreter():
    pytest.importorskip("triton")
    results = _interpret("embedding")["embedding"]
    assert len(results) == len(EMBEDDING_CASES)
    for case, errs in zip(EMBEDDING_CASES, results):
        assert set(errs) == {"out", "dweight", "probe_out", "probe_grad"}, case
        assert max(errs.values()) < 1e-6, (case, errs)  # the gather is exact; the sums float32


def test_l2norm_kernel_matches_float64_reference_in_interpreter():
    pytest.importorskip("triton")
    results = _interpret("l2norm")["l2norm"]
    assert len(results) == len(L2NORM_CASES)
    for case, errs in zip(L2NORM_CASES, results):
        assert set(errs) == {"y", "dx"}, case
        assert max(errs.values()) < 1e-6, (case, errs)  # float32 arithmetic


def test_rms_norm_gated_kernel_matches_float64_reference_in_interpreter():
    pytest.importorskip("triton")
    results = _interpret("rms_norm_gated")["rms_norm_gated"]
    assert len(results) == len(RMS_CASES)
    for case, errs in zip(RMS_CASES, results):
        assert set(errs) == ({"y", "dx", "dw", "dg"} if case[2] else {"y", "dx", "dw"}), case
        assert max(errs.values()) < 1e-6, (case, errs)  # float32 arithmetic


def _assert_compiles_for_hopper(kernel, pointers: dict[str, str], floats: set[str], meta: dict, num_warps: int = 4):
    """triton.compile(kernel) for sm_90 gives PTX and a cubin: every argument not in `pointers`, `floats`
    or `meta` is an int32; meta's "num_warps", as a kernel's `_meta` returns it, wins over `num_warps`."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    meta = dict(meta)
    num_warps = meta.pop("num_warps", num_warps)
    sig = {a: "constexpr" if a in meta else pointers.get(a, "fp32" if a in floats else "i32") for a in kernel.arg_names}
    compiled = triton.compile(
        ASTSource(kernel, sig, meta), target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps}
    )
    assert ".entry" in compiled.asm["ptx"] and compiled.asm["cubin"], kernel.__name__


@pytest.mark.parametrize("Dk,Dv,g_mode", [(8, 16, 2), (16, 32, 1), (64, 64, 0), (64, 64, 1)])
def test_project_triton_kernels_compile_for_hopper(Dk, Dv, g_mode):
    triton = pytest.importorskip("triton")
    pytest.importorskip("triton.backends.nvidia")
    from slabench.kernels.gla import short
    from slabench.kernels.sla_gate.fused import _sla_gate_bwd, _sla_gate_fwd, blocks

    meta = {
        "Dk": Dk,
        "Dv": Dv,
        "BK": max(16, triton.next_power_of_2(Dk)),
        "BV": max(16, triton.next_power_of_2(Dv)),
        "CS": short.C,
        "G_MODE": g_mode,
    }
    bf16 = {a: "*bf16" for a in ("q", "k", "v", "o", "do", "dq", "dk", "dv", "src", "x", "y", "dy", "dx", "dsrc")}
    fp32 = {a: "*fp32" for a in ("g", "ht", "dq32", "dg", "wd", "wu", "bu", "gates", "dgates", "dw")}
    pointers = {**bf16, **fp32}
    kernels = [
        (short._gla_fwd, {**meta, "STORE_STATE": True}, pointers),
        (short._gla_bwd_dq, meta, pointers),
        (short._gla_bwd_dkv, meta, pointers),
    ]
    # The SLA gate at some (H, D): bf16 reading a separate x (C = 3 Dk), float32 (ieee products) gating src itself.
    H, D, R = Dk // 4, Dv, 8
    all_fp32 = {a: "*fp32" for a in pointers}
    # And gating src's own heads L2-normalised (bf16, as GDN's twin under autocast).
    for C, same, l2, prec, ptrs in (
        (3 * Dk, False, False, "tf32", pointers),
        (H * D, True, False, "ieee", all_fp32),
        (H * D, True, True, "tf32", pointers),
    ):
        gate = {"C": C, "H": H, "D": D, "R": R, "L2": l2, "PREC": prec, **blocks(C, H, D, R)}
        gate.pop("num_warps")
        kernels += [(_sla_gate_fwd, gate, ptrs), (_sla_gate_bwd, {**gate, "SAME": same, "HAS_DG": True}, ptrs)]
    for kernel, kmeta, ptrs in kernels:
        _assert_compiles_for_hopper(kernel, ptrs, {"scale", "inv_tau", "eps"}, kmeta)


@pytest.mark.parametrize("Dk,Dv,dtype", [(20, 32, "bf16"), (16, 16, "fp32")])
def test_delta_rule_kernels_compile_for_hopper(Dk, Dv, dtype):
    pytest.importorskip("triton")
    pytest.importorskip("triton.backends.nvidia")
    import torch

    from slabench.kernels.delta_rule import fused

    meta = fused._meta(Dk, Dv, torch.bfloat16 if dtype == "bf16" else torch.float32)
    cfg = fused.DeltaRuleConfig()
    walk = {**meta, "BV": min(meta["BV"], cfg.walk_block)}  # the two walks take value blocks
    pointers = {a: f"*{dtype}" for a in ("q", "k", "v", "beta", "o", "do", "dq", "dk", "dv", "dbeta")}
    scratch = (
        "g",
        "tinv",
        "u",
        "uv",
        "vn",
        "w",
        "h",
        "ht",
        "hs",
        "dvn",
        "dhl",
        "dh",
        "dhs",
        "dg",
        "dkp",
        "dbp",
        "P",
        "Q",
    )
    pointers |= {a: "*fp32" for a in scratch}
    for kernel, kmeta, warps in (  # at the warps each is launched with (4: Triton's default)
        (fused._prepare, meta, cfg.prepare_warps),
        (fused._forward, {**walk, "STORE_STATE": True, "SEGMENTED": False}, cfg.walk_warps),
        (fused._forward, {**walk, "STORE_STATE": False, "SEGMENTED": True}, cfg.walk_warps),  # segmented walks
        (fused._segment_maps, walk, cfg.walk_warps),
        (fused._segment_maps_backward, walk, cfg.walk_warps),
        (
            fused._segment_scan,
            {k: walk[k] for k in ("Dk", "Dv", "BK", "BV", "PREC")} | {"STORE_STATE": True, "REVERSE": False},
            cfg.walk_warps,
        ),
        (
            fused._segment_scan,
            {k: walk[k] for k in ("Dk", "Dv", "BK", "BV", "PREC")} | {"STORE_STATE": False, "REVERSE": True},
            cfg.walk_warps,
        ),
        (fused._output, meta, 4),
        (fused._backward_local, meta, 4),
        (fused._backward_state, {**walk, "SEGMENTED": False}, cfg.walk_warps),
        (fused._backward_state, {**walk, "SEGMENTED": True}, cfg.walk_warps),
        (fused._backward_chunk, meta, cfg.chunk_warps),
        (fused._backward_chunk_first, meta, cfg.chunk_warps),  # split_backward
        (fused._backward_chunk_second, meta, cfg.chunk_warps),
    ):
        _assert_compiles_for_hopper(kernel, pointers, {"scale"}, kmeta, warps)


@pytest.mark.parametrize("dtype,C,W", [("bf16", 256, 4), ("fp32", 20, 4)])
def test_short_conv_kernels_compile_for_hopper(dtype, C, W):
    pytest.importorskip("triton")
    pytest.importorskip("triton.backends.nvidia")
    from slabench.kernels.conv import fused

    meta = fused._meta(C, W, fused.ShortConvConfig())
    # x and its gradients in the input dtype; the weight stays float32 under autocast, dw's shares are float32
    pointers = {a: f"*{dtype}" for a in ("x", "y", "dy", "dx")} | {"w": "*fp32", "dw": "*fp32", "da": "*fp32"}
    for kernel in (fused._conv_fwd, fused._conv_bwd, fused._conv_bwd_da, fused._conv_bwd_dx):
        _assert_compiles_for_hopper(kernel, pointers, set(), meta)


@pytest.mark.parametrize("H,dtype", [(8, "bf16"), (5, "fp32")])
def test_gdn_gates_kernels_compile_for_hopper(H, dtype):
    pytest.importorskip("triton")
    pytest.importorskip("triton.backends.nvidia")
    from slabench.kernels.gdn_gates import fused

    meta = fused._meta(H, fused.GdnGatesConfig())
    # ab, beta and their gradients in the input dtype; the parameters, g and its gradient float32
    pointers = {a: f"*{dtype}" for a in ("ab", "beta", "dbeta", "dab")}
    pointers |= {a: "*fp32" for a in ("A_log", "dt_bias", "g", "dg", "dparams")}
    for kernel in (fused._gates_fwd, fused._gates_bwd):
        _assert_compiles_for_hopper(kernel, pointers, set(), meta)


@pytest.mark.parametrize("V,D,dtype", [(256, 128, "fp32"), (512, 20, "bf16"), (5, 3, "fp32")])
def test_embedding_kernel_compiles_for_hopper(V, D, dtype):
    pytest.importorskip("triton")
    pytest.importorskip("triton.backends.nvidia")
    from slabench.kernels.embedding import fused

    pointers = {"idx": "*i64", "dout": f"*{dtype}", "dw": "*fp32"}  # the shares are float32; steps an int
    _assert_compiles_for_hopper(fused._embedding_bwd, pointers, set(), fused._meta(V, D, fused.EmbeddingConfig()))


@pytest.mark.parametrize("D,dtype", [(16, "bf16"), (20, "fp32")])
def test_norm_kernels_compile_for_hopper(D, dtype):
    pytest.importorskip("triton")
    pytest.importorskip("triton.backends.nvidia")
    from slabench.kernels.norm import fused

    meta = fused._meta(D, fused.NormConfig())
    pointers = {a: f"*{dtype}" for a in ("x", "y", "dy", "dx")} | {"rstd": "*fp32"}
    for kernel in (fused._l2norm_fwd, fused._l2norm_bwd):
        _assert_compiles_for_hopper(kernel, pointers, {"eps"}, meta)
    # the gated RMS norm: x, g and their gradients in the input dtype, the weight and dw's shares float32
    pointers = {a: f"*{dtype}" for a in ("x", "g", "y", "dy", "dx", "dg")} | {a: "*fp32" for a in ("w", "rstd", "dw")}
    for kernel in (fused._rms_fwd, fused._rms_bwd):
        for gated in (True, False):
            _assert_compiles_for_hopper(kernel, pointers, {"eps"}, {**meta, "GATED": gated})


if __name__ == "__main__":
    checks = {
        "gla": lambda: [errors(*case) for case in CASES],
        "delta_rule": lambda: [delta_errors(*c) for c in DELTA_CASES],
        "sla_gate": lambda: [sla_gate_errors(*c) for c in GATE_CASES],
        "short_conv": lambda: [short_conv_errors(*c) for c in CONV_CASES],
        "gdn_gates": lambda: [gdn_gates_errors(*c) for c in GDN_GATE_CASES],
        "embedding": lambda: [embedding_errors(*c) for c in EMBEDDING_CASES],
        "l2norm": lambda: [l2norm_errors(*c) for c in L2NORM_CASES],
        "rms_norm_gated": lambda: [rms_norm_gated_errors(*c) for c in RMS_CASES],
    }
    print(json.dumps({name: checks[name]() for name in sys.argv[1:] or checks}))

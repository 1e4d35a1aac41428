"""GPU checks (skipped without CUDA): every fast path against the float64 reference in fp32
and bf16, the dispatch choices, and a short training run of every mixer."""

import math

import pytest
import torch
import torch.nn.functional as F

from slabench import kernels
from slabench.kernels import dispatch
from slabench.models import MIXERS

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

# Relative RMS error allowed against the float64 reference on the same (rounded) inputs.
TOL = {torch.float32: (2e-3, 5e-3), torch.bfloat16: (5e-3, 1e-2)}  # (outputs, gradients)
FAST = [(op, name) for op, o in dispatch.OPS.items() for name, _ in o.candidates[:-1]]
THIRD_PARTY = ("fla_",)  # paths that may refuse a GPU, dtype or shape (then skipped, with the reason)


@pytest.fixture(autouse=True)
def _seeded():
    """The same random inputs every run: a failure at bf16 tolerances can then be reproduced."""
    torch.manual_seed(0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("op_name,path", FAST, ids=[f"{o}-{p}" for o, p in FAST])
def test_fast_path_matches_reference(op_name, path, dtype):
    op = dispatch.OPS[op_name]
    fn = dict(op.candidates)[path]
    args, kwargs = op.probe_inputs("cuda", dtype, op.default_dims)
    try:
        err_out, err_grad = dispatch.compare(op, fn, args, kwargs, ref_dtype=torch.float64)
    except Exception as e:  # dispatch skips a path that cannot run here
        if not path.startswith(THIRD_PARTY):
            raise  # the project's own kernel crashed: a failure, not a skip
        pytest.skip(f"{path} does not run here: {type(e).__name__}: {str(e)[:200]}")
    tol_out, tol_grad = TOL[dtype]
    assert err_out <= tol_out, f"{path} output rel RMS {err_out:.2e}"
    assert err_grad <= tol_grad, f"{path} gradient rel RMS {err_grad:.2e}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_dispatch_uses_fast_paths_on_cuda(dtype):
    """The project's kernels (short gla, SLA gate, delta rule, gdn gates, short conv, embedding) and chunk_gla are
    expected to work on Hopper: they must be chosen, chunk_gla for sequences too long for the short gla kernel, the
    delta rule's six kernels at any T up to head dims 128, the short conv up to width 8 (fla's beyond), the
    embedding's backward up to 512 rows, the norms up to rows 1024 wide (fla's beyond)."""
    assert dispatch.select("gla", "cuda", dtype, (16, 32, True))[0] == "triton_gla_short"
    assert dispatch.select("simple_gla", "cuda", dtype, (16, 32, True))[0] == "triton_gla_short"
    assert dispatch.select("gla", "cuda", dtype, (16, 32, False))[0] == "fla_chunk_gla"
    assert dispatch.select("gla", "cuda", dtype, (32, 64, True))[0] == "triton_gla_short"  # two value blocks
    assert dispatch.select("simple_gla", "cuda", dtype, (64, 128, True))[0] == "triton_gla_short"
    assert dispatch.select("simple_gla", "cuda", dtype, (16, 32, False))[0] not in ("reference", "triton_gla_short")
    assert dispatch.select("sla_gate", "cuda", dtype)[0] == "triton_sla_gate"
    assert dispatch.select("sla_gate_l2", "cuda", dtype)[0] == "triton_sla_gate_l2"
    assert dispatch.select("delta_rule", "cuda", dtype, (16, 32, False))[0] == "triton_delta_rule"
    assert dispatch.select("delta_rule", "cuda", dtype, (128, 128, False))[0] == "triton_delta_rule"
    assert dispatch.select("delta_rule", "cuda", dtype, (16, 32, True))[0] == "triton_delta_rule"  # segmented walks
    assert dispatch.select("short_conv", "cuda", dtype)[0] == "triton_short_conv"
    assert dispatch.select("short_conv", "cuda", dtype, (130, 4))[0] == "triton_short_conv"
    assert dispatch.select("rms_norm_gated", "cuda", dtype, (16, 0))[0] == "triton_rms_norm_gated"  # no gate
    assert dispatch.select("rms_norm_gated", "cuda", dtype, (128, 1))[0] == "triton_rms_norm_gated"
    assert dispatch.select("rms_norm_gated", "cuda", dtype, (2048, 1))[0] != "triton_rms_norm_gated"  # too wide
    assert dispatch.select("l2norm", "cuda", dtype, (16,))[0] == "triton_l2norm"
    assert dispatch.select("l2norm", "cuda", dtype, (20,))[0] == "triton_l2norm"
    assert dispatch.select("l2norm", "cuda", dtype, (2048,))[0] != "triton_l2norm"  # wider than a program holds
    assert dispatch.select("gdn_gates", "cuda", dtype, (8,))[0] == "triton_gdn_gates"
    assert dispatch.select("gdn_gates", "cuda", dtype, (5,))[0] == "triton_gdn_gates"
    assert dispatch.select("embedding", "cuda", dtype, (256, 128))[0] == "triton_embedding"
    assert dispatch.select("embedding", "cuda", dtype, (8192, 128))[0] == "reference"  # too many rows


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_gla_short_odd_shapes_and_strided_inputs(dtype):
    """The compiled short-sequence kernel (tl.dot in tf32 / bf16) vs float64, every decay form."""
    from slabench.kernels.gla.short import gla_short

    tol_out, tol_grad = TOL[dtype]
    for B, T, H, Dk, Dv, decay in [
        (3, 37, 3, 8, 20, "channel"),
        (2, 250, 4, 16, 32, "head"),
        (2, 100, 2, 64, 64, "none"),
        (2, 130, 2, 64, 48, "head"),  # the widest keys 'simple_gla' offers the kernel
        (4, 1024, 2, 4, 16, "channel"),
        (2, 200, 4, 64, 128, "head"),  # values in two blocks: retnet at d_model 256, 4 heads
        (2, 130, 2, 32, 64, "channel"),  # gla at d_model 256, 4 heads
        (1, 77, 2, 16, 80, "none"),  # a partial last value block
    ]:
        h = torch.randn(B, T, H * (2 * Dk + Dv), device="cuda")
        g = {
            "none": None,
            "head": F.logsigmoid(torch.randn(B, T, H, device="cuda") + 2),
            "channel": F.logsigmoid(torch.randn(B, T, H, Dk, device="cuda") + 2) / 4,
        }[decay]
        do = torch.randn(B, T, H, Dv, device="cuda")
        outs = []
        for fn, dt in ((gla_short, dtype), (kernels.gla_chunk, torch.float64)):
            hh = h.to(dtype).to(dt).requires_grad_()  # the reference sees the same rounded inputs
            gg = None if g is None else g.to(torch.float32 if fn is gla_short else dt).requires_grad_()
            q, k, v = (x.reshape(B, T, H, -1) for x in hh.split([H * Dk, H * Dk, H * Dv], -1))  # strided views
            o, _ = fn(q, k, v, gg)
            outs.append([o, *torch.autograd.grad(o, [x for x in (hh, gg) if x is not None], do.to(dt))])
        assert dispatch.rel_rms(outs[0][0], outs[1][0]) <= tol_out, (B, T, H, Dk, Dv, decay)
        for a, b in zip(outs[0][1:], outs[1][1:]):
            assert dispatch.rel_rms(a, b) <= tol_grad, (B, T, H, Dk, Dv, decay)


# (B, T, H, Dk, Dv, decay scale): partial chunks, head dims 16 to 128, g = 0 (DeltaNet), long T
DELTA_SHAPES = [
    (2, 63, 3, 20, 20, 1.0),
    (4, 256, 8, 16, 32, 1.0),
    (1, 1000, 2, 32, 64, 1.0),
    (2, 200, 2, 64, 64, 0.0),
    (1, 130, 2, 128, 128, 1.0),
    (1, 4100, 1, 16, 16, 0.1),
]


# every shape with the chunk backward split in two (the default), the first two also as one kernel;
# the walks segmented automatically where few programs walk many chunks (B1 T4100 H1: 129 chunks,
# one program), and forced into segments of 1 and 3 chunks at two more
DELTA_CASES = (
    [(*s, True, None) for s in DELTA_SHAPES]
    + [(*s, False, None) for s in DELTA_SHAPES[:2]]
    + [(2, 200, 2, 64, 64, 0.0, True, 1), (1, 1000, 2, 32, 64, 0.1, True, 3)]
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(
    "B,T,H,Dk,Dv,decay,split,segment",
    DELTA_CASES,
    ids=[
        "B{}-T{}-H{}-Dk{}-Dv{}-g{}".format(*s) + ("-split" if s[6] else "") + (f"-seg{s[7]}" if s[7] else "")
        for s in DELTA_CASES
    ],
)
def test_delta_rule_odd_shapes_and_head_dims(B, T, H, Dk, Dv, decay, split, segment, dtype):
    """The compiled delta-rule kernel vs float64, on strided q, k, v (the split of one projection)."""
    from functools import partial

    from slabench.kernels.delta_rule.fused import DeltaRuleConfig, delta_rule_fused

    fused = partial(delta_rule_fused, config=DeltaRuleConfig(split_backward=split, walk_segment=segment))

    tol_out, tol_grad = TOL[dtype]
    h = torch.randn(B, T, H * (2 * Dk + Dv), device="cuda")
    g = decay * F.logsigmoid(torch.randn(B, T, H, device="cuda") + 2)
    beta = torch.rand(B, T, H, device="cuda")
    do = torch.randn(B, T, H, Dv, device="cuda")
    outs = []
    for fn, dt in ((fused, dtype), (kernels.delta_rule_chunk, torch.float64)):
        hh = h.to(dtype).to(dt).requires_grad_()  # the reference sees the same rounded inputs
        gg, bb = (
            g.to(torch.float32 if fn is fused else dt).requires_grad_(),
            beta.to(dtype).to(dt).requires_grad_(),
        )
        q, k, v = (x.reshape(B, T, H, -1) for x in hh.split([H * Dk, H * Dk, H * Dv], -1))  # strided views
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        o, _ = fn(q, k, v, gg, bb)
        outs.append([o, *torch.autograd.grad(o, [hh, gg, bb], do.to(dt))])
    errs = {n: dispatch.rel_rms(a, b) for n, a, b in zip(("o", "dqkv", "dg", "dbeta"), outs[0], outs[1])}
    print("delta_rule", dtype, (B, T, H, Dk, Dv, decay, split, segment), {n: f"{e:.1e}" for n, e in errs.items()})
    assert errs["o"] <= tol_out, errs
    assert max(errs["dqkv"], errs["dg"], errs["dbeta"]) <= tol_grad, errs


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_triton_sla_gate_odd_shapes(dtype):
    """The compiled fused gate vs float64: gating src itself or a separate x, odd H, D, rank, C;
    and gating src's own heads L2-normalised ("l2", the L2 twins' gate)."""
    from functools import partial

    from slabench.kernels.sla_gate.fused import sla_gate_l2_triton, sla_gate_triton
    from slabench.kernels.sla_gate.reference import sla_gate_l2_reference, sla_gate_reference

    # float32 products are exact ("ieee"); bf16 rounds the projections' inputs as autocast does.
    tol_out, tol_grad = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (1.5e-2, 3e-2)}[dtype]
    torch.manual_seed(0)
    cases = [  # (H, D, R, C, l2): C None gates src itself
        (1, 3, 1, None, False),
        (3, 20, 5, None, False),
        (8, 16, 8, 200, False),
        (12, 64, 8, None, False),
        (4, 8, 16, 33, False),
        (3, 20, 5, None, True),
        (8, 16, 8, None, True),
    ]
    for H, D, R, C, l2 in cases:
        same, C = C is None, C or H * D
        ours, ref = (
            (partial(sla_gate_l2_triton, eps=1e-6), partial(sla_gate_l2_reference, eps=1e-6))
            if l2
            else (sla_gate_triton, sla_gate_reference)
        )
        src, x = torch.randn(3, 37, C, device="cuda"), torch.randn(3, 37, H, D, device="cuda")
        w = [
            torch.randn(R, C, device="cuda") / C**0.5,
            torch.randn(H, R, device="cuda") / R**0.5,
            torch.randn(H, device="cuda"),
        ]
        dy = torch.randn(3, 37, H, D, device="cuda")
        outs = []
        for f, dt in ((ours, dtype), (ref, torch.float64)):
            a = [t.to(dtype).to(dt).requires_grad_() for t in (src, x)]  # the reference sees the rounded inputs
            ws = [t.to(torch.float32 if f is ours else dt).requires_grad_() for t in w]
            y, gates = f(a[0], None if same else a[1], *ws, 0.5)
            leaves = a[:1] + ([] if same else a[1:]) + ws
            outs.append([y, gates, *torch.autograd.grad((y * dy.to(dt)).sum() + gates[..., 0].sum(), leaves)])
        err = dispatch.rel_rms(outs[0][0], outs[1][0])
        assert err <= tol_out, (H, D, R, C, same, "y", err)
        names = ["gates", "d_src"] + ([] if same else ["d_x"]) + ["d_w_down", "d_w_up", "d_b_up"]
        for name, a, b in zip(names, outs[0][1:], outs[1][1:]):
            if b.norm() > 0:  # one head: constant gates, no weight gradient
                err = dispatch.rel_rms(a, b)
                assert err <= tol_grad, (H, D, R, C, same, name, err)


def test_normalised_linear_attention_runs_the_short_kernel():
    """The Based-style job's layer (d_model 128, 4 heads, keys and values 32 wide, T 256) keeps v
    at the head width, so the project's short kernel serves it, not fla's chunk kernels."""
    from slabench.models import build_mixer

    torch.manual_seed(0)
    m = build_mixer("linear", 128, 4, normalize=True, feature_map="elu+1", expand_k=1.0, expand_v=1.0).cuda()
    x = torch.randn(8, 256, 128, device="cuda", requires_grad=True)
    kernels.reset_paths_used()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        m(x).float().square().mean().backward()
    assert kernels.paths_used()["simple_gla"] == "triton_gla_short"
    assert torch.isfinite(x.grad).all()


# (B, T, C, W): one step, T shorter than W, channels past a block, widths 1 to 8, a quick-preset size
CONV_SHAPES = [(2, 1, 20, 4), (3, 3, 48, 4), (2, 37, 130, 4), (2, 50, 17, 1), (2, 100, 40, 8), (128, 128, 256, 4)]


@pytest.mark.parametrize("split", [False, True], ids=["one-kernel-bwd", "two-kernel-bwd"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_triton_short_conv_odd_shapes(dtype, split):
    """The compiled short conv vs float64: output and the gradients of x (a strided slice of a wider
    projection, as the mixers' q, k, v split) and the float32 weight; the backward as one kernel
    and as two."""
    from functools import partial

    from slabench.kernels.conv.fused import ShortConvConfig, short_conv_triton

    triton_conv = partial(short_conv_triton, config=ShortConvConfig(split_backward=split))
    tol_out, tol_grad = TOL[dtype]
    for B, T, C, W in CONV_SHAPES:
        h = torch.randn(B, T, C + 7, device="cuda")
        w = torch.randn(C, W, device="cuda") / W**0.5
        dy = torch.randn(B, T, C, device="cuda")
        outs = []
        for fn, dt in ((triton_conv, dtype), (kernels.short_conv_reference, torch.float64)):
            hh = h.to(dtype).to(dt).requires_grad_()  # the reference sees the same rounded inputs
            ww = w.to(torch.float32 if fn is triton_conv else dt).requires_grad_()
            y = fn(hh[..., 3 : 3 + C], ww)
            outs.append([y, *torch.autograd.grad(y, [hh, ww], dy.to(dt))])
        errs = [dispatch.rel_rms(a, b) for a, b in zip(outs[0], outs[1])]
        print("short_conv", dtype, (B, T, C, W), [f"{e:.1e}" for e in errs])
        assert outs[0][0].dtype == dtype and outs[0][2].dtype == torch.float32
        assert errs[0] <= tol_out, (B, T, C, W, errs)
        assert max(errs[1:]) <= tol_grad, (B, T, C, W, errs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_triton_gdn_gates_odd_shapes(dtype):
    """The compiled gdn gates vs float64: g, beta and the gradients of the projection (a strided
    slice, rows not a multiple of the block, H not a power of two) and both float32 parameters."""
    from slabench.kernels.gdn_gates.fused import gdn_gates_triton
    from slabench.kernels.gdn_gates.reference import gdn_gates_reference

    tol_out, tol_grad = TOL[dtype]
    for B, T, H in [(1, 7, 3), (2, 300, 8), (64, 256, 8), (3, 130, 5)]:
        h = torch.randn(B, T, 2 * H + 5, device="cuda") * 4
        A_log = torch.rand(H, device="cuda").mul(16).clamp_min(1e-4).log()
        dt_bias = torch.rand(H, device="cuda") * 5 - 7
        dg, dbeta = torch.randn(B, T, H, device="cuda"), torch.randn(B, T, H, device="cuda")
        outs = []
        for fn, dt in ((gdn_gates_triton, dtype), (gdn_gates_reference, torch.float64)):
            hh = h.to(dtype).to(dt).requires_grad_()  # the reference sees the same rounded inputs
            params = [p.to(torch.float32 if fn is gdn_gates_triton else dt).requires_grad_() for p in (A_log, dt_bias)]
            g, beta = fn(hh[..., 2 : 2 + 2 * H], *params)
            outs.append([g, beta, *torch.autograd.grad([g, beta], [hh, *params], [dg.to(g.dtype), dbeta.to(dt)])])
        errs = [dispatch.rel_rms(a, b) for a, b in zip(outs[0], outs[1])]
        print("gdn_gates", dtype, (B, T, H), [f"{e:.1e}" for e in errs])
        assert outs[0][0].dtype == torch.float32 and outs[0][1].dtype == dtype
        assert max(errs[:2]) <= tol_out, (B, T, H, errs)
        assert max(errs[2:]) <= tol_grad, (B, T, H, errs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_triton_l2norm_odd_shapes(dtype):
    """The compiled l2norm vs float64 (`dispatch.compare`) on q as the mixers pass it (a slice of a wider
    projection, rows not a multiple of a program's, D not a power of two) and on a contiguous input."""
    from slabench.kernels.norm import L2NORM
    from slabench.kernels.norm.fused import l2norm_triton

    tol_out, tol_grad = TOL[dtype]
    for B, T, H, D, wide in [(2, 37, 3, 20, True), (64, 256, 8, 16, True), (1, 130, 2, 128, False)]:
        h = torch.randn(B, T, (3 if wide else 1) * H * D, device="cuda", dtype=dtype)
        x = h[..., : H * D].view(B, T, H, D)  # strided when wide
        err_out, err_grad = dispatch.compare(L2NORM, l2norm_triton, [x], {"eps": 1e-6}, ref_dtype=torch.float64)
        print("l2norm", dtype, (B, T, H, D, wide), f"{err_out:.1e} {err_grad:.1e}")
        assert l2norm_triton(x).dtype == dtype and err_out <= tol_out and err_grad <= tol_grad, (B, T, H, D)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_triton_rms_norm_gated_odd_shapes(dtype):
    """The compiled gated RMS norm vs float64 (`dispatch.compare`): the output norm per head (gated, x in
    the compute dtype with a float32 weight, as under autocast), a block's norm (no gate), rows not a
    multiple of a program's, D 20, and an SLA twin's norm over all heads at 8,200 tiles (the backward's
    programs take 9 tiles each, the last program fewer)."""
    from slabench.kernels.norm import RMS_NORM_GATED, rms_norm_gated_reference
    from slabench.kernels.norm.fused import rms_norm_gated_triton

    tol_out, tol_grad = TOL[dtype]
    for rows, D, gated in [
        ((128, 128, 4), 32, True),
        ((64, 256), 128, False),
        ((3, 37, 2), 20, True),
        ((16, 4100), 128, True),
    ]:
        x, g = (torch.randn(*rows, D, device="cuda", dtype=dtype) for _ in range(2))
        args = [x, g if gated else None, 1 + torch.rand(D, device="cuda")]
        err_out, err_grad = dispatch.compare(RMS_NORM_GATED, rms_norm_gated_triton, args, {"eps": 1e-6}, torch.float64)
        print("rms_norm_gated", dtype, (rows, D, gated), f"{err_out:.1e} {err_grad:.1e}")
        assert rms_norm_gated_triton(*args, 1e-6).dtype == dtype, (rows, D)
        assert err_out <= tol_out and err_grad <= tol_grad, (rows, D, err_out, err_grad)
        # written in bf16 (as under autocast): the reference's output rounded to bf16, and the same
        # gradients from a bf16 output gradient
        leaves = [a.detach().requires_grad_() if a is not None else None for a in args]
        y16 = rms_norm_gated_triton(*leaves, 1e-6, out_dtype=torch.bfloat16)
        ref = rms_norm_gated_reference(*[a.double() if a is not None else None for a in args], 1e-6)
        assert y16.dtype == torch.bfloat16 and dispatch.rel_rms(y16.double(), ref) <= TOL[torch.bfloat16][0]
        dy = torch.randn_like(y16)
        grads = torch.autograd.grad(y16, [a for a in leaves if a is not None], dy)
        want = torch.autograd.grad(
            rms_norm_gated_triton(*leaves, 1e-6), [a for a in leaves if a is not None], dy.to(dtype)
        )
        assert all(a.dtype == b.dtype and dispatch.rel_rms(a.double(), b.double()) <= 1e-6 for a, b in zip(grads, want))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_triton_embedding_odd_shapes(dtype):
    """The compiled embedding backward vs float64: the weight's gradient at vocabularies and widths
    not powers of two, token counts not a multiple of a program's, and the quick preset's shape."""
    from slabench.kernels import EMBEDDING
    from slabench.kernels.embedding.fused import embedding_triton

    tol_out, tol_grad = TOL[dtype]
    for V, D, shape in [(300, 64, (3, 1000)), (512, 20, (2, 77)), (256, 128, (128, 128)), (5, 3, (1, 1))]:
        gen = torch.Generator(device="cpu").manual_seed(0)
        args = [torch.randn(V, D, generator=gen).to("cuda", dtype), torch.randint(0, V, shape, generator=gen).cuda()]
        err_out, err_grad = dispatch.compare(EMBEDDING, embedding_triton, args, {}, ref_dtype=torch.float64)
        print("embedding", dtype, (V, D, shape), f"{err_out:.1e} {err_grad:.1e}")
        assert err_out <= tol_out and err_grad <= tol_grad, (V, D, shape, err_out, err_grad)


@pytest.mark.parametrize("name", MIXERS.names())
def test_mixer_trains_on_gpu(name):
    from slabench.models import build_model
    from slabench.tasks import IGNORE, build_task

    torch.manual_seed(0)
    kernels.reset_paths_used()
    task = build_task("mqar", vocab_size=64, seq_len=64, num_kv_pairs=4)
    model = build_model(name, vocab_size=64, d_model=64, n_layers=2, n_heads=4).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator(device="cuda").manual_seed(0)
    kernels.reset_paths_used()  # this mixer's paths only
    losses = []
    for _ in range(30):
        batch = task.sample(64, gen, "cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(batch.inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch.labels.flatten(), ignore_index=IGNORE)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(name, "losses", [round(v, 3) for v in losses], kernels.paths_used())
    assert all(math.isfinite(v) for v in losses), losses
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3, losses
    if name != "attention":  # softmax attention is SDPA, not a slabench kernel op
        assert set(kernels.paths_used()) - {"embedding"}
    if "delta" in name or "gdn" in name:
        assert kernels.paths_used()["delta_rule"] == "triton_delta_rule"
    if "gdn" in name:
        assert kernels.paths_used()["gdn_gates"] == "triton_gdn_gates"
    if "l2norm" in kernels.paths_used():
        assert kernels.paths_used()["l2norm"] == "triton_l2norm"
    assert kernels.paths_used()["rms_norm_gated"] == "triton_rms_norm_gated"  # the blocks' norms at least
    if "short_conv" in kernels.paths_used():
        assert kernels.paths_used()["short_conv"] == "triton_short_conv"
    assert kernels.paths_used()["embedding"] == "triton_embedding"  # vocabulary 64


def test_gla_trains_with_keys_4_wide():
    """d_model 64 with 8 heads gives gla keys 4 wide, where fla 0.6.0's chunk_gla backward does
    not compile: dispatch must probe those dims and fall back (six report runs failed before).
    T is past the short kernel's longest, so the call reaches fla's kernels (at T 64 the short
    kernel took it and the fall-back went untested)."""
    from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec
    from slabench.kernels.gla.short import SHORT_T
    from slabench.runners.train import train

    task = TaskSpec("mqar", (("num_kv_pairs", 4), ("seq_len", SHORT_T + 64), ("vocab_size", 64)))
    model = ModelSpec("sla-gla", (("d_model", 64), ("n_heads", 8), ("n_layers", 2)))
    train_spec = TrainSpec(steps=20, eval_every=10, batch_size=8, val_size=64, test_size=64, dtype="bfloat16")
    record = train(RunSpec("t", task, model, train_spec, 0), "cuda")
    assert record["status"] == "ok", record["error"]
    assert set(record["kernel_paths"]) == {"embedding", "gla", "rms_norm_gated", "short_conv", "sla_gate"}
    assert "triton_gla_short" not in record["kernel_paths"]["gla"]  # fla's chunk kernel or a fall-back

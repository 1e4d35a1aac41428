"""Batched runs (runners/batched.py): N runs that differ in seed and lr, trained as one model,
give the records of N single runs; a grid with fold resumes, and a killed fold keeps its
finished records."""

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from torch.func import vmap

from slabench import kernels
from slabench.cli import main
from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec, expand_grid, load_grid_file
from slabench.kernels.fold import call_folded, vmap_level
from slabench.runners.batched import FoldStep, fold_groups, train_batched
from slabench.runners.records import load_records
from slabench.runners.step import FoldedAdamW, make_optimizer
from slabench.runners.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

TASK = TaskSpec("mqar", (("num_kv_pairs", 2), ("seq_len", 16), ("vocab_size", 32)))
FAST = ["--device", "cpu", "--workers", "1"]


def _spec(seed: int, lr: float = 1e-2, mixer: str = "attention", **train_kw) -> RunSpec:
    model = ModelSpec(mixer, (("d_model", 16), ("n_heads", 2), ("n_layers", 1)))
    train_kw = {
        "steps": 40,
        "batch_size": 16,
        "eval_every": 4,
        "val_size": 32,
        "test_size": 64,
        "warmup": 0.0,
        **train_kw,
    }
    return RunSpec("t", TASK, model, TrainSpec(lr=lr, **train_kw), seed)


def _assert_same_runs(singles: list[dict], folded: list[dict]) -> None:
    by_key = {r["key"]: r for r in folded}
    assert sorted(by_key) == sorted(r["key"] for r in singles)
    for one in singles:
        many = by_key[one["key"]]
        assert (many["fold"], one["fold"]) == (len(singles), 1)
        assert (many["status"], many["error"], many["seed"]) == (one["status"], one["error"], one["seed"])
        m, s = many["metrics"], one["metrics"]
        assert m["steps"] == s["steps"]
        assert [c["step"] for c in m["curve"]] == [c["step"] for c in s["curve"]]
        assert [c["val_acc"] for c in m["curve"]] == [c["val_acc"] for c in s["curve"]]
        for a, b in zip(m["curve"], s["curve"]):  # losses and gate diagnostics, up to float rounding
            assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5) for k in a)
        if one["status"] == "ok":
            assert abs(m["test_acc"] - s["test_acc"]) <= 1e-6 and abs(m["test_exact"] - s["test_exact"]) <= 1e-6
            assert (m["val_acc"], m["slices"], m["train_test_overlap"]) == (
                s["val_acc"],
                s["slices"],
                s["train_test_overlap"],
            )
        assert set(many) == set(one)  # the same schema


def test_capturable_optimizer_is_the_same_adamw():
    """make_optimizer(capturable=True), the CUDA-graph step's (torch's fused AdamW, a device-tensor
    lr set in place), takes the same 5 steps as the eager one, weight decay on the matrix only."""
    cfg = TrainSpec(lr=1.0, weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, generator=g), torch.randn(3, generator=g)]
    grads = [[torch.randn(p.shape, generator=g) for p in start] for _ in range(5)]
    models = [torch.nn.ParameterList([torch.nn.Parameter(p.clone()) for p in start]) for _ in range(2)]
    opts = [make_optimizer(m, cfg, torch.device("cpu"), capturable=c) for m, c in zip(models, (False, True))]
    assert opts[1].defaults["fused"] and not opts[0].defaults["fused"]
    for t in range(5):
        for m, opt in zip(models, opts):
            for group in opt.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(1e-2 * (t + 1))  # in place, as TrainStep.set_lr
                else:
                    group["lr"] = 1e-2 * (t + 1)
            for p, grad in zip(m, grads[t]):
                p.grad = grad.clone()
            opt.step()
        for p, q in zip(*models):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    assert not torch.equal(models[1][0], start[0])  # they moved


def test_folded_adamw_follows_torch_adamw_per_member_with_clipping_and_a_mask():
    """Three members of a matrix and a vector. Member 0 against torch.optim.AdamW as
    make_optimizer configures it, with clip_grad_norm_, over 5 steps of changing lr; member 1
    stopped after step 2 stays exactly as it was; member 2's NaN gradients reach no one else."""
    cfg = TrainSpec(lr=1.0, weight_decay=0.1, grad_clip=0.5)
    g = torch.Generator().manual_seed(0)
    members = [[torch.randn(2, 3, generator=g), torch.randn(3, generator=g)] for _ in range(3)]
    grads = [[torch.randn(3, *p.shape, generator=g) for p in members[0]] for _ in range(5)]  # [N, ...] per step
    grads[3][0][2] = float("nan")  # member 2, step 4
    lrs = [torch.tensor([1e-2, 2e-2, 3e-2]) * (t + 1) / 5 for t in range(5)]  # [N] per step

    ref = torch.nn.ParameterList([torch.nn.Parameter(p.clone()) for p in members[0]])
    ref_opt = make_optimizer(ref, cfg, torch.device("cpu"))
    fold = FoldedAdamW(members, cfg)
    assert [p.shape for p in fold.params] == [(3, 2, 3), (3, 3)]
    for t in range(5):
        for group in ref_opt.param_groups:
            group["lr"] = float(lrs[t][0])
        for p, grad in zip(ref, grads[t]):
            p.grad = grad[0].clone()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), cfg.grad_clip)
        ref_opt.step()
        before = [p.detach().clone() for p in fold.params]
        fold.lr.copy_(lrs[t])
        for p, grad in zip(fold.params, grads[t]):
            p.grad = grad.clone()
        fold.step()
        for p, r in zip(fold.params, ref):
            torch.testing.assert_close(p[0], r.detach(), rtol=0, atol=1e-6)
        if t == 0:  # Adam's first step moves each entry by lr against its gradient's sign (before clipping too)
            w, b = (p.detach() for p in fold.params)
            lr, sign = lrs[0][:, None], [grad.sign() for grad in grads[0]]
            torch.testing.assert_close(w, before[0] * (1 - lr[:, :, None] * 0.1) - lr[:, :, None] * sign[0])
            torch.testing.assert_close(b, before[1] - lr * sign[1])  # a vector: no weight decay
        if t >= 2:
            assert all(torch.equal(p[1], q[1]) for p, q in zip(fold.params, before))  # stopped: unchanged
        if t == 1:
            fold.active[1] = False
        assert all(p[:2].isfinite().all() for p in fold.params)
    assert all(p[2].isnan().any() for p in fold.params)  # member 2 diverged, alone


def test_folded_runs_match_single_runs_with_early_stops_and_a_divergence(monkeypatch):
    """Five runs as one model: three seeds at one lr, one at another, one at an lr that diverges.
    They stop early at different steps (measured on the single runs: 24, 28, 32 and 40 steps) and
    the diverging one is recorded as diverged at the first evaluation while the others go on;
    the stopped ones stay in the stack, masked, to the end."""
    specs = [_spec(seed, lr, stop_at=0.15) for seed, lr in ((0, 1e-2), (1, 3e-2), (2, 1e-2), (3, 1e-2), (4, 1e4))]
    singles = [train(s) for s in specs]
    finished: list[dict] = []
    stacked, real_step = [], FoldStep.__call__
    monkeypatch.setattr(FoldStep, "__call__", lambda self, x, y: (stacked.append(x.shape[0]), real_step(self, x, y))[1])
    folded = train_batched(specs, "cpu", on_record=finished.append)
    assert finished == folded
    assert stacked == [5] * 40  # every step, the whole fold
    _assert_same_runs(singles, folded)
    statuses = [r["status"] for r in singles]
    assert statuses.count("diverged") == 1 and singles[-1]["status"] == "diverged"
    assert len({r["metrics"]["steps"] for r in singles if r["status"] == "ok"}) >= 3  # different early stops
    steps = [r["metrics"]["steps"] for r in folded]
    assert steps == sorted(steps)  # each record handed over when its run ended, not at the end of the fold


def test_a_member_that_diverges_in_a_fold_can_be_trained_again_alone():
    """With rerun_diverged (the default on a GPU) a diverged member's record is its single run's."""
    specs = [_spec(0, steps=8), _spec(1, 1e4, steps=8)]
    single = train(specs[1])
    records = {r["seed"]: r for r in train_batched(specs, "cpu", rerun_diverged=True)}
    assert records[0]["fold"] == 2 and records[0]["status"] == "ok"
    assert records[1]["fold"] == 1 and records[1]["status"] == single["status"] == "diverged"
    assert records[1]["metrics"]["steps"] == single["metrics"]["steps"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("mixer", ["attention", "sla-gla"])
def test_captured_fold_matches_the_eager_fold(mixer):
    """The folded step captured in a CUDA graph and replayed trains as the eager one does, to the
    tolerance of the single-run test (test_sweep.py): cuBLAS and SDPA may pick other algorithms
    under capture, so the two agree to rounding, not bit for bit. The second member diverges at
    once and stops: the replayed graph must read the mask that freezes it."""
    specs = [_spec(0, mixer=mixer, steps=12), _spec(1, lr=1e4, mixer=mixer, steps=12)]
    captured = train_batched(specs, "cuda", train_path="cuda-graph", rerun_diverged=False)
    eager = {r["key"]: r for r in train_batched(specs, "cuda", train_path="eager", rerun_diverged=False)}
    paths = {(r["train_path"], r["train_path_fallback"]) for r in captured}
    assert paths == {("cuda-graph", None)}, paths
    assert sorted(r["status"] for r in captured) == ["diverged", "ok"]
    for r in captured:
        e = eager[r["key"]]
        assert (r["status"], r["metrics"]["steps"]) == (e["status"], e["metrics"]["steps"])
        if r["status"] == "diverged":
            continue
        assert r["metrics"]["steps"] == 12
        got = [c["train_loss"] for c in r["metrics"]["curve"]]
        want = [c["train_loss"] for c in e["metrics"]["curve"]]
        assert got == pytest.approx(want, rel=2e-3), (got, want)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("mixer", ["attention", "gla", "gdn"])
def test_a_bf16_fold_on_the_gpu_trains_as_its_single_runs(mixer):
    """Under bf16 autocast on a GPU, at a size where the fast paths run (flash attention, the
    Triton kernels), a fold's members train as their single runs do, up to bf16 rounding: no
    member's loss turns non-finite where its single run's does not."""
    model = ModelSpec(mixer, (("d_model", 64), ("n_heads", 4), ("n_layers", 2)))
    task = TaskSpec("mqar", (("num_kv_pairs", 8), ("seq_len", 64), ("vocab_size", 64)))
    cfg = TrainSpec(lr=1e-3, steps=60, batch_size=32, eval_every=20, val_size=64, test_size=64, dtype="bfloat16")
    specs = [RunSpec("t", task, model, cfg, seed) for seed in (0, 1)]
    singles = {r["key"]: r for r in (train(s, "cuda") for s in specs)}
    for r in train_batched(specs, "cuda"):
        one = singles[r["key"]]
        assert (r["status"], one["status"]) == ("ok", "ok")
        for a, b in zip(r["metrics"]["curve"], one["metrics"]["curve"]):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=0.05)


@pytest.mark.parametrize("mixer", ["sla-gdn", "sla-retnet"])
def test_folded_kernel_ops_match_single_runs(mixer, monkeypatch):
    """Mixers on the kernel ops: delta_rule and simple_gla (a decay from a buffer) run outside vmap
    on the members folded into the batch (the two members' 8 rows a step as one batch of 16, never
    one member's 8); the gates (sla_gate_l2 for sla-gdn), short_conv and rms_norm_gated inside it."""
    specs = [_spec(0, mixer=mixer, steps=8, batch_size=8), _spec(1, lr=3e-2, mixer=mixer, steps=8, batch_size=8)]
    singles = [train(s) for s in specs]
    seen = _spy_on_references(monkeypatch, kernels.DELTA_RULE, kernels.SIMPLE_GLA)
    _assert_same_runs(singles, train_batched(specs, "cpu"))
    batches = {q[0] for q, _ in seen["delta_rule" if mixer == "sla-gdn" else "simple_gla"]}
    assert 16 in batches and 8 not in batches, batches


class _Square(torch.autograd.Function):
    """x * x * w with an old-style forward: like the Triton kernels' Functions, vmap refuses it."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * x * w

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return 2 * x * w * grad, x * x * grad


def test_a_per_sequence_op_under_vmap_runs_outside_it_with_exact_gradients():
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)  # [N, B, D]
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)  # [N, D]: one per member
    shared = torch.randn(4, 5, dtype=torch.float64)  # the same for every member

    def call(name, a, b, c):
        assert name == "gla" and vmap_level((a, b, c)) is None  # plain tensors, members folded into B
        assert a.shape == (12, 5) and c.shape == (12, 5)
        return _Square.apply(a, b * c), None

    def member(a, b):
        args = (a, b.expand_as(a), shared)
        out, state = call_folded("gla", call, vmap_level(args), args, {})
        assert state is None
        return out

    with pytest.raises(RuntimeError, match="setup_context"):
        vmap(lambda a, b: _Square.apply(a, b))(x, w)
    out = vmap(member)(x, w)  # [N, B, D]
    torch.testing.assert_close(out, x * x * (w[:, None] * shared), rtol=0, atol=0)  # the op's own arithmetic
    out.sum().backward()
    torch.testing.assert_close(x.grad, 2 * x * w[:, None] * shared)
    torch.testing.assert_close(w.grad, (x * x * shared).sum(1))


def test_attention_in_a_fold_calls_sdpa_once_on_plain_tensors(monkeypatch):
    """Attention's SDPA leaves vmap like a per-sequence op: one call on the members' sequences as
    one plain batch (under vmap's batching rule the CUDA memory-efficient backward rejected its
    log-sum-exp layout), with the values and gradients each member's own model gives."""
    from slabench.models import attention as attention_module

    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        calls.append((vmap_level((q, k, v)), tuple(q.shape)))
        return sdpa(q, k, v, **kwargs)

    spy.__name__ = "scaled_dot_product_attention"
    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", spy)
    torch.manual_seed(0)
    members = [attention_module.Attention(8, 2).double() for _ in range(3)]
    names = [n for n, _ in members[0].named_parameters()]
    params = {n: torch.stack([m.get_parameter(n).detach() for m in members]).requires_grad_() for n in names}
    x = torch.randn(3, 4, 6, 8, dtype=torch.float64)  # [N, B, T, D]
    out = vmap(lambda p, xi: torch.func.functional_call(members[0], p, (xi,)))(params, x)  # [N, B, T, D]
    assert calls == [(None, (12, 2, 6, 4))]  # once, outside vmap, the 3 members' 4 sequences as one batch
    out.square().sum().backward()
    for i, m in enumerate(members):
        single = m(x[i])
        torch.testing.assert_close(out[i], single, rtol=1e-12, atol=1e-12)
        single.square().sum().backward()
        for n, p in m.named_parameters():
            torch.testing.assert_close(params[n].grad[i], p.grad, rtol=1e-10, atol=1e-12)


def _spy_on_references(monkeypatch, *ops) -> dict[str, list]:
    """Make each op's reference (all the CPU runs) record the shapes of its first two arguments."""
    seen: dict[str, list] = {}
    for op in ops:

        def spy(*args, _ref=op.reference, _name=op.name, **kwargs):
            seen.setdefault(_name, []).append(tuple(None if a is None else tuple(a.shape) for a in args[:2]))
            return _ref(*args, **kwargs)

        monkeypatch.setattr(op, "candidates", [*op.candidates[:-1], ("reference", spy)])
        monkeypatch.setattr(op, "choice", {})
    return seen


def _assert_same_values_and_grads(out, single, inputs) -> None:
    torch.testing.assert_close(out, single, rtol=1e-12, atol=1e-12)
    dout = torch.randn_like(out)
    got = torch.autograd.grad(out, inputs, dout)
    want = torch.autograd.grad(single, inputs, dout)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_ops_with_member_weights_under_vmap_run_once_for_all_members(monkeypatch):
    """short_conv folds the members into its channels; rms_norm_gated runs on all members' rows
    with a weight of ones and scales each member's output by its weight. One call each, with
    plain tensors, and the values and gradients of each member's own call (float64)."""
    seen = _spy_on_references(monkeypatch, kernels.SHORT_CONV, kernels.RMS_NORM_GATED)
    x = torch.randn(3, 2, 9, 6, dtype=torch.float64, requires_grad=True)  # [N, B, T, C]
    w = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)  # [N, C, W]: one per member
    out = vmap(kernels.short_conv)(x, w)  # [N, B, T, C]
    assert seen.pop("short_conv") == [((2, 9, 18), (18, 4))]  # [B, T, N * C], [N * C, W]
    single = torch.stack([kernels.short_conv_reference(x[i], w[i]) for i in range(3)])
    _assert_same_values_and_grads(out, single, (x, w))

    h = torch.randn(3, 2, 9, 2, 8, dtype=torch.float64, requires_grad=True)  # [N, B, T, H, D]
    g = torch.randn(3, 2, 9, 2, 8, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)  # [N, D]
    out = vmap(lambda a, b, c: kernels.rms_norm_gated(a, b, c, 1e-6))(h, g, scale)
    assert seen.pop("rms_norm_gated") == [((3, 2, 9, 2, 8), (3, 2, 9, 2, 8))]  # all members' rows at once
    single = torch.stack([kernels.rms_norm_gated_reference(h[i], g[i], scale[i], 1e-6) for i in range(3)])
    _assert_same_values_and_grads(out, single, (h, g, scale))


def test_an_op_with_weights_shared_by_all_members_runs_its_reference_inside_vmap(monkeypatch):
    seen = _spy_on_references(monkeypatch, kernels.SHORT_CONV)
    x = torch.randn(3, 2, 9, 6, dtype=torch.float64, requires_grad=True)  # [N, B, T, C]
    w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)  # [C, W]: the same for every member
    kernels.reset_paths_used()
    out = vmap(kernels.short_conv, in_dims=(0, None))(x, w)  # [N, B, T, C]
    assert kernels.paths_used() == {"short_conv": "reference"}
    assert seen["short_conv"] == [((2, 9, 6), (6, 4))]  # one member's shapes: vmap batches the call
    single = torch.stack([kernels.short_conv_reference(x[i], w) for i in range(3)])
    _assert_same_values_and_grads(out, single, (x, w))


def test_fold_groups_join_only_runs_that_differ_in_seed_and_lr():
    a = [_spec(s, lr) for lr in (1e-2, 3e-2) for s in (0, 1, 2)]
    other_steps = [_spec(0, steps=20), _spec(1, steps=20)]
    clock = [_spec(0, seconds=1.0), _spec(1, seconds=1.0)]  # a wall-clock budget: never folded
    other_grid = [replace(s, grid="other") for s in a[:2]]  # records go to another grid's directory
    groups = fold_groups(a + other_steps + clock + other_grid, 4)
    assert groups == [a[:4], a[4:], other_steps, clock[:1], clock[1:], other_grid]
    assert fold_groups(a, 1) == [[s] for s in a]


GRID = """
name = "folded"
[train]
steps = 8
batch_size = 8
eval_every = 4
val_size = 16
test_size = 16
lr = [0.01, 0.03]
seeds = [0, 1]
{fold}
[[tasks]]
name = "mqar"
vocab_size = 32
seq_len = 16
num_kv_pairs = 2
[[models]]
name = "sla-retnet"
d_model = 16
n_layers = 1
n_heads = 2
"""


def test_grid_fold_resumes_and_writes_exactly_the_expected_records(tmp_path):
    grid, plain = tmp_path / "g.toml", tmp_path / "plain.toml"
    grid.write_text(GRID.format(fold="fold = 3"))
    plain.write_text(GRID.format(fold=""))
    out = tmp_path / "out"
    _, specs = expand_grid(load_grid_file(grid))
    _, unfolded = expand_grid(load_grid_file(plain))
    assert [s.key() for s in specs] == [s.key() for s in unfolded]  # fold is in no run key
    result = CliRunner().invoke(main, ["run", str(grid), "--out", str(out), *FAST, "--quiet"])
    assert result.exit_code == 0, result.output
    records = load_records(out).records
    assert sorted(records) == sorted(s.key() for s in specs)
    assert sorted(r["fold"] for r in records.values()) == [1, 3, 3, 3]  # 4 runs of one cell: 3 + 1
    assert all(r["status"] == "ok" for r in records.values())

    # Resume: lose two records; --fold 2 (over the grid's 3) redoes exactly those, as one fold.
    lost = sorted(records)[:2]
    for key in lost:
        (out / "records" / f"{key}.json").unlink()
    result = CliRunner().invoke(main, ["run", str(grid), "--out", str(out), *FAST, "--json", "--fold", "2"])
    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["ran"], json.loads(result.stdout)["skipped"]) == (2, 2)
    again = load_records(out).records
    assert sorted(again) == sorted(records)
    assert [again[k]["fold"] for k in lost] == [2, 2]
    for key in set(records) - set(lost):
        assert again[key] == records[key]  # untouched


@pytest.mark.parametrize(
    "args, fold, word",
    [
        (["--fold", "0"], "", "--fold"),
        (["--fold", "many"], "", "--fold"),
        ([], "fold = [1, 2]", "[train]"),
        ([], 'fold = "4"', "[train]"),
    ],
)
def test_bad_fold_is_one_line_exit_2(tmp_path, args, fold, word):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID.format(fold=fold))
    result = CliRunner().invoke(main, ["run", str(grid), "--out", str(tmp_path / "o"), *FAST, *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and "fold=" in lines[0] and "'auto'" in lines[0], lines


def test_sigkill_mid_fold_keeps_the_finished_records(tmp_path):
    """One member diverges at the first evaluation and is recorded at once; killing the process
    (SIGKILL: no handler runs) while the other three train on leaves that record whole."""
    import os
    import signal
    import subprocess
    import sys
    import time

    grid = tmp_path / "g.toml"
    grid.write_text(
        GRID.format(fold="fold = 4\nwarmup = 0.0")
        .replace("steps = 8", "steps = 100000")
        .replace("lr = [0.01, 0.03]", "lr = [0.01, 10000.0]")
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "slabench", "run", str(grid), "--out", str(out), *FAST, "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(load_records(out).records) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, stderr
    found = load_records(out)
    assert not found.corrupt and len(found.records) == 2, found
    assert {r["status"] for r in found.records.values()} == {"diverged"}
    assert {r["fold"] for r in found.records.values()} == {4}
    plan = json.loads(CliRunner().invoke(main, ["run", str(grid), "--out", str(out), "--dry-run", "--json"]).stdout)
    assert (plan["recorded"], len(plan["pending"])) == (2, 2)

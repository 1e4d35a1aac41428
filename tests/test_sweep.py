"""The speed/memory sweep: a tiny CPU run end to end through the CLI, the analysis (slope fit,
crossover) on synthetic data with known answers, OOM recording; on CUDA, the CUDA-graph training
step against eager and a quick GPU sweep."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from slabench.cli import main
from slabench.config import TrainSpec
from slabench.errors import SlabenchError
from slabench.models import build_model
from slabench.runners import timing
from slabench.runners.sweep import analyse, analysis, cases, config, load_targets, render
from slabench.runners.train import TrainStep, make_optimizer
from slabench.tasks import IGNORE, build_task

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cpu_sweep_writes_sane_files(tmp_path, one_thread):
    args = [
        "sweep",
        "--device",
        "cpu",
        "--mixers",
        "attention,sla-gla",
        "--seq-lens",
        "32,64",
        "--tokens",
        "128",
        "--repeats",
        "2",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    slug = timing.device_slug("cpu")
    data = json.loads((tmp_path / f"{slug}.json").read_text())
    rows = data["rows"]
    assert len(rows) == 2 * 2 * 2  # mixers x lengths x modes, one row each
    assert {(r["mixer"], r["seq_len"], r["mode"]) for r in rows} == {
        (m, t, mode) for m in ("attention", "sla-gla") for t in (32, 64) for mode in ("fwd", "fwdbwd")
    }
    for r in rows:
        assert r["status"] == "ok" and r["batch"] == 128 // r["seq_len"]  # tokens per call held constant
        assert 0 < r["p20_ms"] <= r["median_ms"] <= r["p80_ms"]
        assert r["peak_mem_bytes"] is None  # not measurable per call on CPU: reported as n/a
        # each row names the paths its own case ran (none for attention: SDPA is no slabench op)
        assert r["kernel_paths"] == (
            {}
            if r["mixer"] == "attention"
            else {"gla": "reference", "rms_norm_gated": "reference", "short_conv": "reference", "sla_gate": "reference"}
        )
    assert data["machine"]["kernel_paths"]["gla"] == "reference"
    with (tmp_path / f"{slug}.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    md = (tmp_path / f"{slug}.md").read_text()
    assert "## fwd+bwd time (ms)" in md and "| sla-gla |" in md and "SLA overhead" not in md  # no gla to compare to
    assert "## Crossover: sla-gla vs attention" in md and "n/a" in md
    assert (tmp_path / f"{slug}-time.png").stat().st_size > 1000


def test_slopes_fit_one_kernel_path_only():
    """Dispatch switches kernels with T; a slope across the switch would measure the switch. The
    fit takes the largest run of lengths with the same paths (then the one reaching longest T)."""
    from slabench.runners.sweep.analysis import same_path_run

    short, chunk = {"gla": "triton_gla_short"}, {"gla": "fla_chunk_gla"}
    rows = [{"seq_len": t, "kernel_paths": short if t <= 1024 else chunk} for t in (256, 1024, 4096, 8192, 65536)]
    assert [r["seq_len"] for r in same_path_run(rows)] == [4096, 8192, 65536]
    assert [r["seq_len"] for r in same_path_run(rows[:4])] == [4096, 8192]  # a tie: the longer T wins
    assert same_path_run([]) == []


def test_bad_shape_is_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["sweep", "--device", "cpu", "--shape", "1,2,3", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--shape" in result.output and len(result.output.strip().splitlines()) == 1


def test_zero_width_is_refused_from_python_too():
    # The CLI rejects --d-model 0 itself; a config built in code must not time an empty model either.
    with pytest.raises(SlabenchError, match="d_model=0 must be a positive multiple of heads=8"):
        config.default_config("cpu", quick=True, d_model=0)


def test_loglog_slope_recovers_known_slope():
    gen = torch.Generator().manual_seed(0)
    xs = [256, 1024, 4096, 16384, 65536]
    noise = (1 + 0.02 * torch.randn(len(xs), generator=gen)).tolist()
    ys = [3e-4 * x**1.5 * n for x, n in zip(xs, noise)]
    assert analysis.loglog_slope(xs, ys) == pytest.approx(1.5, abs=0.02)
    assert analysis.loglog_slope(xs, [7.0] * len(xs)) == pytest.approx(0.0, abs=1e-12)
    assert analysis.loglog_slope([256], [1.0]) is None  # one point: no fit
    assert analysis.loglog_slope(xs, [1.0, None, 4.0, None, None]) == pytest.approx(math.log(4) / math.log(16))


def test_crossover_interpolates_in_log_log():
    # ratio fast/slow = 2 at T=1024 and 0.5 at T=4096: crossing 1 exactly half-way in log T.
    c = analysis.crossover([256, 1024, 4096, 16384], [4, 4, 4, 4], [1, 2, 8, 32])
    assert c["from_T"] == 4096 and c["estimate"] == pytest.approx(2048)
    assert analysis.crossover([256, 1024], [1, 1], [2, 2])["from_T"] == 256  # faster everywhere
    assert analysis.crossover([256, 1024], [3, 3], [2, 2])["from_T"] is None  # slower everywhere
    # faster at 1024 but slower again at 4096: the crossover is the last one
    assert analysis.crossover([256, 1024, 4096, 8192], [2, 1, 3, 1], [1, 2, 2, 2])["from_T"] == 8192


def test_oom_and_failure_become_rows():
    cfg = config.default_config("cpu", quick=True)

    def oom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")

    def broken():
        raise RuntimeError("Triton Error [CUDA]: an illegal memory access")

    assert cases.time_case(lambda: oom, torch.device("cpu"), cfg)["status"] == "oom"
    r = cases.time_case(lambda: broken, torch.device("cpu"), cfg)
    assert r["status"] == "failed" and "illegal memory access" in r["error"] and r["median_ms"] is None


SPEED = Path(__file__).parents[1] / "leaderboards/speed/nvidia-h100-80gb-hbm3"


def test_committed_sweep_rebuilds_byte_identical():
    """The .md, .csv and .json under leaderboards/speed come from the saved JSON alone, byte for byte."""
    result = json.loads(SPEED.with_suffix(".json").read_text())
    text = render(result)
    for ext in ("md", "csv", "json"):
        with SPEED.with_suffix(f".{ext}").open(newline="") as f:
            assert text[ext] == f.read(), ext


def test_default_targets_reproduce_the_committed_targets():
    result = json.loads(SPEED.with_suffix(".json").read_text())
    committed = result["summary"]["targets"]
    again = analyse(result, load_targets())["targets"]
    assert [(t["target"], t["pass"]) for t in again] == [(t["target"], t["pass"]) for t in committed]
    assert [t["value"] for t in again] == pytest.approx([t["value"] for t in committed], rel=1e-12)


def test_a_targets_file_against_hand_computed_ratios(tmp_path):
    result = json.loads(SPEED.with_suffix(".json").read_text())
    path = tmp_path / "mine.toml"
    path.write_text("""
[[target]]
name = "every twin at the small shape, eager"
quantity = "time-ratio"
mixer = "sla-X"
baseline = "X"
mode = "fwdbwd"
shape = [64, 256, 8, 16]
at_most = 1.4

[[target]]
name = "sla-gla over attention, replayed, T >= 16384"
quantity = "time-ratio"
mixer = "sla-gla"
baseline = "attention"
mode = "fwdbwd-graph"
min_seq_len = 16384
below = 0.36
""")
    ms = {(r["mixer"], r["mode"], r["batch"], r["seq_len"]): r["median_ms"] for r in result["rows"]}
    twins = [
        ms[(f"sla-{x}", "fwdbwd", 64, 256)] / ms[(x, "fwdbwd", 64, 256)] for x in ("gdn", "gla", "linear", "retnet")
    ]
    long = [
        ms[("sla-gla", "fwdbwd-graph", 65536 // t, t)] / ms[("attention", "fwdbwd-graph", 65536 // t, t)]
        for t in (16384, 65536)
    ]
    got = analyse(result, load_targets(path))["targets"]
    assert [t["value"] for t in got] == pytest.approx([max(twins), max(long)])
    assert [t["pass"] for t in got] == [max(twins) <= 1.4, max(long) < 0.36]


@pytest.mark.parametrize(
    "body, field",
    [
        ('quantity = "speed"\nmode = "fwdbwd"\nat_most = 1', "quantity"),
        ('quantity = "time-ratio"\nmode = "fwdbwd"\nat_most = 1', "baseline"),
        ('quantity = "time-ratio"\nbaseline = "X"\nmode = "fwdbwd"\nmin_seq_len = 8\nat_most = 1', "mixer"),
        ('quantity = "memory-slope"\nmode = "fwdbwd"\nat_most = 1\nbelow = 1', "at_most"),
        ('quantity = "memory-slope"\nmode = "eager"\nat_most = 1', "mode"),
    ],
)
def test_bad_targets_file_is_one_line_error(tmp_path, body, field):
    path = tmp_path / "bad.toml"
    path.write_text(f'[[target]]\nname = "t"\nmixer = "sla-gla"\n{body}\n')
    result = CliRunner().invoke(main, ["sweep", "--device", "cpu", "--targets", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 2 and f"{field}:" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cuda_graph_path_needs_cuda():
    model = build_model("attention", vocab_size=16, d_model=16, n_layers=1, n_heads=2)
    cfg = TrainSpec()
    with pytest.raises(SlabenchError, match="train_path='cuda-graph' needs a CUDA device"):
        TrainStep(model, make_optimizer(model, cfg, torch.device("cpu")), cfg, torch.device("cpu"), None, "cuda-graph")


# --- CUDA ------------------------------------------------------------------------------------


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("scored", [None, 4], ids=["every-position", "scored-positions"])
@pytest.mark.parametrize("autocast", [None, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", ["attention", "sla-gla", "gdn"])
def test_cuda_graph_step_matches_eager(name, autocast, scored):
    """The captured step trains as the eager one, with the head at every position or at the
    task's scored ones (MQAR: 4 a row here, gathered by topk inside the graph)."""
    device = torch.device("cuda")
    task = build_task("mqar", vocab_size=64, seq_len=64, num_kv_pairs=4)
    gen = torch.Generator(device=device).manual_seed(0)
    batches = [task.sample(32, gen, device) for _ in range(10)]
    lrs = [3e-3 * (i + 1) / 10 for i in range(10)]  # changes every step: the graph must read lr live
    losses, paths = {}, {}
    for path in ("eager", "cuda-graph"):
        torch.manual_seed(0)
        model = build_model(name, vocab_size=64, d_model=64, n_layers=2, n_heads=4).to(device)
        cfg = TrainSpec(batch_size=32, grad_clip=0.5)
        opt = make_optimizer(model, cfg, device, capturable=path == "cuda-graph")
        step = TrainStep(model, opt, cfg, device, autocast, path, scored)
        out = []
        for b, lr in zip(batches, lrs):
            step.set_lr(lr)
            out.append(step(b.inputs, b.labels).item())
        losses[path], paths[path] = out, (step.path, step.fallback)
        # The step leaves the model where eager training would: check one more eager forward.
        with torch.no_grad(), torch.autocast("cuda", dtype=autocast, enabled=autocast is not None):
            logits = model(batches[0].inputs)
        losses[path].append(
            F.cross_entropy(logits.float().flatten(0, 1), batches[0].labels.flatten(), ignore_index=IGNORE).item()
        )
    assert paths["cuda-graph"] == ("cuda-graph", None), paths["cuda-graph"]
    tol = 2e-3 if autocast is None else 2e-2
    assert losses["cuda-graph"] == pytest.approx(losses["eager"], rel=tol), losses


@pytest.mark.cuda
@needs_cuda
def test_train_records_cuda_graph_path():
    from slabench.config import ModelSpec, RunSpec, TaskSpec
    from slabench.runners.train import train

    spec = RunSpec(
        "t",
        TaskSpec("mqar", (("num_kv_pairs", 4), ("seq_len", 64), ("vocab_size", 64))),
        ModelSpec("sla-gla", (("d_model", 64), ("n_heads", 4))),
        TrainSpec(steps=30, batch_size=32, eval_every=10, val_size=64, test_size=64),
        0,
    )
    record = train(spec, "cuda")
    assert record["status"] == "ok" and record["train_path"] == "cuda-graph", record.get("train_path_fallback")
    assert math.isfinite(record["metrics"]["final_train_loss"])


@pytest.mark.cuda
@needs_cuda
def test_quick_gpu_sweep(tmp_path):
    args = [
        "sweep",
        "--device",
        "cuda",
        "--quick",
        "--mixers",
        "attention,gla,sla-gla",
        "--train-step",
        "--shape",
        "64,256,8,16",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / f"{timing.device_slug('cuda')}.json").read_text())
    assert all(r["status"] == "ok" for r in data["rows"])
    # a replayed graph allocates nothing per call: its memory is the pool allocated at capture
    assert all(r["peak_mem_bytes"] > 0 for r in data["rows"] if r["mode"] != "fwdbwd-graph")
    assert {r["mode"] for r in data["train_steps"]} == {"eager", "cuda-graph"}
    # dispatch by length: the project's short kernel up to T 1024, fla's chunk kernel beyond
    for r in data["rows"]:
        if r["mixer"] in ("gla", "sla-gla"):
            assert r["kernel_paths"]["gla"] == ("triton_gla_short" if r["seq_len"] <= 1024 else "fla_chunk_gla"), r
    measured = {t["target"]: t["value"] for t in data["summary"]["targets"]}
    assert all(v is not None for k, v in measured.items() if "8192" not in k), measured  # quick: no T >= 8192
    assert any("CUDA graph" in k for k in measured) and any("(cuda-graph)" in k for k in measured)


def test_profile_lists_a_mixers_ops_and_rejects_bad_input():
    """`slabench profile` on CPU: the aten ops of one sla-gla fwd+bwd, with counts and times."""
    result = CliRunner().invoke(main, ["profile", "sla-gla", "--shape", "2,16,2,4", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    names = {k["name"] for k in data["kernels"]}
    assert {"aten::mm", "aten::softmax"} <= names or {"aten::mm", "aten::_softmax"} <= names, names
    assert data["kernels_per_call"] >= len(data["kernels"]) and data["device_us_per_call"] > 0
    assert data["kernels"] == sorted(data["kernels"], key=lambda k: -k["us_per_call"])
    bad = CliRunner().invoke(main, ["profile", "sla-gla", "--shape", "2,16"])
    assert bad.exit_code == 2 and "--shape" in bad.output and len(bad.output.strip().splitlines()) == 1
    unknown = CliRunner().invoke(main, ["profile", "nope"])
    assert unknown.exit_code == 2 and "sla-gla" in unknown.output


def test_an_arm_is_swept_beside_its_mixers_and_divided_at_the_same_norm(tmp_path, one_thread):
    """`--mixers` takes the report's arm labels: sla-gla/head-norm is the twin with gla's per-head
    norm, timed as built with that option, and divided by gla at the same norm (the gate alone)
    beside the registered pair, whose norms differ."""
    shape = config.Shape(2, 16, 2, 8)
    out = {
        label: cases.mixer_fns(label, shape, torch.device("cpu"), "fp32")["fwd"]()
        for label in ("sla-gla", "sla-gla/head-norm")
    }
    again = cases.mixer_fns("sla-gla/head-norm", shape, torch.device("cpu"), "fp32")["fwd"]()
    assert torch.equal(out["sla-gla/head-norm"], again) and not torch.allclose(out["sla-gla"], again)

    args = ["sweep", "--device", "cpu", "--mixers", "gla,sla-gla,sla-gla/head-norm", "--seq-lens", "32"]
    result = CliRunner().invoke(main, [*args, "--tokens", "64", "--repeats", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / f"{timing.device_slug('cpu')}.json").read_text())
    assert {r["mixer"] for r in data["rows"]} == {"gla", "sla-gla", "sla-gla/head-norm"}
    pairs = {(o["twin"], o["baseline"], o["same_norm"]) for o in data["summary"]["sla_overhead"]}
    assert pairs == {("sla-gla", "gla", False), ("sla-gla/head-norm", "gla", True)}
    md = (tmp_path / f"{timing.device_slug('cpu')}.md").read_text()
    assert "| gla | fwdbwd |" in md and "| sla-gla/head-norm / gla | fwdbwd |" in md


def test_twin_pairs_match_norms_and_leave_other_gates_out():
    pairs = analysis.twin_pairs(
        [
            "gla",
            "sla-gla",
            "gla/layer-norm",
            "sla-gla/head-norm",
            "sla-gla/sigmoid",
            "mamba2",
            "sla-mamba2",
            "attention",
        ]
    )
    assert pairs == [
        ("sla-gla", "gla", False),  # as registered: the twin normalises over all heads, gla per head
        ("sla-gla/head-norm", "gla", True),
        ("sla-gla", "gla/layer-norm", True),
        ("sla-mamba2", "mamba2", True),  # Mamba-2's own norm is the twin's
    ]
    assert analysis.twin_pairs(["plug", "sla-plug"]) == [("sla-plug", "plug", False)]  # not installed: by name only


@pytest.mark.parametrize(
    "mixers, names",
    [
        ("gla/sigmoid", "tag 'sigmoid'"),
        ("sla-gla/big-norm", "output_norm='big'"),
        ("sla-gla/head-norm/layer-norm", "tag 'layer-norm'"),
    ],
)
def test_a_bad_arm_is_one_line_naming_what_is_allowed(tmp_path, mixers, names):
    result = CliRunner().invoke(main, ["sweep", "--device", "cpu", "--mixers", mixers, "--out", str(tmp_path)])
    line = result.output.strip()
    assert result.exit_code == 2 and len(line.splitlines()) == 1 and "--mixers" in line and names in line
    assert "head" in line and ("sigmoid" in line or "layer" in line)  # the allowed values
    assert not any(tmp_path.iterdir())  # refused before anything is written

"""The command line as a newcomer meets it: where `run` writes, one-line errors for bad grids and
plugins, failed runs that keep their traceback, readable tables and help, the plan of a grid."""

import hashlib
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.progress import Progress

from slabench import config
from slabench.cli import main
from slabench.config import TrainSpec, expand_grid
from slabench.errors import SlabenchError
from slabench.runners.records import load_records

FAST = ["--device", "cpu", "--workers", "1"]


def _one_line_error(args: list[str], *words: str) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def _grid(**train) -> dict:
    """A minimal parsed grid; `train` overrides the [train] table."""
    return {
        "name": "g",
        "train": {"seeds": [0], **train},
        "tasks": [{"name": "mqar", "vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2}],
        "models": [{"name": "attention", "d_model": 16, "n_heads": 2, "n_layers": 1}],
    }


# ---- where `run` writes, and what it names the leaderboard ---------------------------------------


def test_preset_run_writes_under_out_only(tmp_path, tiny_grid, monkeypatch):
    """A shipped preset writes records and its leaderboard under runs/<name>/ of the working
    directory, never a leaderboards/ folder (which in a checkout holds the committed ones)."""
    presets = tmp_path / "presets"
    presets.mkdir()
    tiny_grid(name="tiny", steps=5, seeds=(0,)).rename(presets / "tiny.toml")
    monkeypatch.setattr(config, "PRESETS_DIR", presets)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(main, ["run", "--preset", "tiny", *FAST, "--json"])
    assert result.exit_code == 0, result.output
    assert not (work / "leaderboards").exists()
    out = work / "runs" / "tiny"
    # Strict JSON (no NaN: a one-seed cell's interval is null), as a JavaScript reader needs.
    summary = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in run --json"))
    assert summary["leaderboard"]["md"] == "runs/tiny/tiny.md" and summary["overall"][0]["acc_lo"] is None
    assert (out / "tiny.md").read_text().splitlines()[0].endswith("tiny")  # titled by the grid, not "leaderboard"
    assert not list(out.glob("leaderboard.*"))
    assert json.loads((out / "grid.json").read_text())["runs"][0]["key"] in load_records(out).records

    # Regenerating a committed leaderboard is explicit.
    again = CliRunner().invoke(main, ["run", "--preset", "tiny", *FAST, "--leaderboard-dir", "boards", "--quiet"])
    assert again.exit_code == 0, again.output
    assert (work / "boards" / "tiny.md").is_file()


# ---- bad grids: one line, exit 2 ---------------------------------------------------------------


@pytest.mark.parametrize(
    "train, words",
    [
        ({"steps": 20, "tokens": 1000}, ["steps and tokens", "exactly one"]),
        ({"tokens": 1000, "seconds": 5.0}, ["tokens and seconds"]),
        ({"seeds": []}, ["seeds", "at least one"]),
        ({"steps": "100"}, ["steps='100'", "int"]),
        ({"lr": "1e-3"}, ["lr='1e-3'", "float"]),
    ],
)
def test_bad_train_tables_name_the_field(train, words):
    with pytest.raises(SlabenchError) as e:
        expand_grid(_grid(**train))
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize(
    "model, words",
    [
        ({"n_layers": 0}, ["n_layers=0", ">= 1"]),
        ({"mlp": "no"}, ["mlp='no'", "bool"]),
    ],
)
def test_bad_models_name_the_field(model, words):
    grid = _grid()
    grid["models"][0].update(model)
    with pytest.raises(SlabenchError) as e:
        expand_grid(grid)
    for w in words:
        assert w in str(e.value)


def test_bad_grid_file_is_one_line_from_the_cli(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(
        'name = "g"\n[train]\nsteps = 20\ntokens = 1000\n[[tasks]]\nname = "mqar"\n[[models]]\nname = "gla"\n'
    )
    _one_line_error(["run", str(path), "--out", str(tmp_path / "out")], "steps and tokens")
    assert not (tmp_path / "out").exists()


def test_cli_values_are_typed_like_toml():
    """`--set` values are read as TOML literals, so numbers pass and a bad word names the type."""
    ok = CliRunner().invoke(
        main,
        [
            "show",
            "mqar",
            "--set",
            "seq_len=32",
            "--set",
            "num_kv_pairs=4",
            "--set",
            "random_non_queries=false",
            "-n",
            "1",
        ],
    )
    assert ok.exit_code == 0, ok.output
    _one_line_error(["show", "mqar", "--set", "seq_len=long"], "seq_len='long'", "int")


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["report", "sla", "--scale", "huge"],
            ["'--scale'", "'huge' is not one of 'tiny', 'full'", "report sla --help"],
        ),
        (["leaderboard", "/no/such/dir"], ["'RESULTS_DIR'", "does not exist"]),
        (["run", "--bogus"], ["No such option '--bogus'", "run --help"]),
        (["nosuch"], ["No such command 'nosuch'"]),
        (["--bogus"], ["No such option '--bogus'"]),
    ],
)
def test_click_usage_errors_are_one_line_too(args, words):
    """What click itself rejects (a value outside a choice, a missing path, an unknown option or
    command) reads like slabench's own errors: one line naming the field, exit 2."""
    _one_line_error(args, *words)


def test_a_group_without_arguments_still_shows_its_help():
    result = CliRunner().invoke(main, ["report"])
    assert "Commands:" in result.output and "zoology" in result.output


# ---- plugins named wrongly: one line each ------------------------------------------------------


@pytest.mark.parametrize(
    "make, mixer, words",
    [
        (
            lambda d: (d / "config.toml").write_text("x = 1\n"),
            "config.toml:Foo",
            ["not a Python file", "file.py:ClassName"],
        ),
        (lambda d: (d / "some_dir").mkdir(), "some_dir:Foo", ["is a directory", "file.py:ClassName"]),
        (lambda d: (d / "mod.py").write_text("\n"), "mod.py", ["'mod.py:ClassName'"]),
        (  # a script that exits at import ended slabench with status 0 and no output
            lambda d: (d / "script.py").write_text("import sys\nsys.exit(0)\n"),
            "script.py:Foo",
            ["plugin 'script.py:Foo': importing 'script.py' failed: SystemExit"],
        ),
    ],
)
def test_misnamed_plugins_are_one_line(tmp_path, tiny_grid, monkeypatch, make, mixer, words):
    grid = tiny_grid()
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    _one_line_error(["run", str(grid), "--mixer", mixer, *FAST], *words)


# ---- a run that raises keeps its traceback -----------------------------------------------------

LONG_T_FAILS = """
import torch
from torch import nn


class FailsAtLongT(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        if x.shape[1] > 8:  # passes the plugin probe (T = 8), fails in training (T = 16)
            raise RuntimeError("too long for me")
        return self.proj(x)
"""


def test_failed_run_keeps_its_traceback(tmp_path, tiny_grid):
    plugin = tmp_path / "fails.py"
    plugin.write_text(textwrap.dedent(LONG_T_FAILS))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["run", str(tiny_grid(seeds=(0,))), "--mixer", f"{plugin}:FailsAtLongT", "--out", str(out), *FAST, "--quiet"],
    )
    assert result.exit_code == 1, result.output
    (record,) = load_records(out).records.values()
    assert record["status"] == "failed" and record["error"] == "RuntimeError: too long for me"
    assert f'File "{plugin}", line 13, in forward' in record["traceback"]  # the raise, in the plugin
    assert "raise RuntimeError" in record["traceback"]


# ---- help text and tables ----------------------------------------------------------------------


def test_models_and_tasks_keep_bracketed_help_and_valid_json():
    table = CliRunner().invoke(main, ["models"])
    assert table.exit_code == 0 and "blocks of [mixer, MLP]" in table.stdout
    models = json.loads(CliRunner().invoke(main, ["models", "--json"]).stdout)
    assert models["gla"]["n_layers"]["help"] == "blocks of [mixer, MLP]"
    tasks = json.loads(CliRunner().invoke(main, ["tasks", "--json"]).stdout)  # was wrapped at 80 columns
    assert "in [0, 1)" in tasks["noisy-recall"]["noise"]["help"]
    assert "[0, 1)" in CliRunner().invoke(main, ["tasks"]).stdout


def test_tables_are_not_cut_when_stdout_is_not_a_terminal():
    """Piped (CliRunner's stdout is not a terminal): every cell whole, however wide the row."""
    result = CliRunner().invoke(main, ["train-options"])
    assert result.exit_code == 0
    assert "…" not in result.stdout
    assert "after warmup: constant then linear decay over the last 20% (wsd), cosine, constant" in result.stdout


def test_piped_leaderboard_has_every_column(tmp_path):
    from slabench.runners.leaderboard_files import TASK_COLUMNS

    records = config.PRESETS_DIR.parents[1] / "leaderboards/records/smoke"
    result = CliRunner().invoke(main, ["leaderboard", str(records), "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "rank" in line)
    assert all(col.split()[0] in header for col in TASK_COLUMNS) and "…" not in result.stdout


def test_train_options_lists_every_train_key():
    from dataclasses import fields

    options = json.loads(CliRunner().invoke(main, ["train-options", "--json"]).stdout)["train"]
    assert set(options) == {f.name for f in fields(config.TrainSpec)} | {"seeds", "fold"}
    assert "'auto'" in options["fold"]["help"] and options["fold"]["default"] == 1
    assert options["grad_clip"]["default"] == 1.0 and options["schedule"]["type"] == "'wsd' | 'cosine' | 'constant'"
    # Types as a grid writes them (list[int].__name__ alone is "list"), as the README's table gives them.
    assert options["seeds"]["type"] == "list of int" and options["fold"]["type"] == "int | 'auto'"


def test_dry_run_plans_without_training(tmp_path, tiny_grid):
    grid, out = tiny_grid(steps=5), tmp_path / "out"
    args = ["--out", str(out), "--dry-run", "--json", *FAST]
    summary = json.loads(CliRunner().invoke(main, ["run", str(grid), *args]).stdout)
    assert summary["runs"] == 3 and summary["recorded"] == 0 and len(summary["pending"]) == 3
    assert summary["estimated_seconds"] is None and not load_records(out).records
    assert CliRunner().invoke(main, ["run", str(grid), "--out", str(out), "--quiet", *FAST]).exit_code == 0

    more = json.loads(CliRunner().invoke(main, ["run", str(tiny_grid(steps=5, seeds=(0, 1, 2, 3))), *args]).stdout)
    assert more["recorded"] == 3 and [p["seed"] for p in more["pending"]] == [3]
    # One worker, one pending run: as long as the mean of the same model's recorded runs.
    times = [r["timings"]["train_seconds"] for r in load_records(out).records.values()]
    assert len(times) == 3 and more["estimated_seconds"] == pytest.approx(sum(times) / 3)

    # Runs recorded on another machine say nothing of this one's time (an H100's seconds are not
    # a CPU's): left out, and counted.
    for path in (out / "records").glob("*.json"):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "environment": {**record["environment"], "device": "NVIDIA H100"}}))
    elsewhere = json.loads(CliRunner().invoke(main, ["run", str(tiny_grid(steps=5, seeds=(0, 1, 2, 3))), *args]).stdout)
    assert elsewhere["estimated_seconds"] is None and elsewhere["recorded_elsewhere"] == 3
    assert elsewhere["machine"] == more["machine"] != "NVIDIA H100"


def test_train_settings_from_the_command_line_replace_the_grids(tiny_grid):
    """run --train KEY=VALUE shortens or reseeds a grid without copying its file: a budget given
    replaces the grid's (steps over a grid's steps, tokens instead of them: one budget, not two);
    an unknown key is one line naming the known ones."""
    grid = str(tiny_grid(steps=10, seeds=(0, 1, 2)))

    def plan(*settings: str) -> list[dict]:
        result = CliRunner().invoke(main, ["run", grid, "--dry-run", "--json", *FAST, *settings])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["pending"]

    runs = plan("--train", "steps=3", "--train", "seeds=[5, 6]")
    assert [(r["train"]["steps"], r["seed"]) for r in runs] == [(3, 5), (3, 6)]
    (budget,) = {(r["train"]["tokens"], r["train"]["steps"]) for r in plan("--train", "tokens=4096")}
    assert budget == (4096, TrainSpec().steps)  # the grid's steps = 10 dropped: tokens is the budget
    line = _one_line_error(["run", grid, "--dry-run", *FAST, "--train", "stepz=3"])
    assert line.startswith("error: [train]: unknown parameter 'stepz'; known: steps, tokens,")


def test_remaining_time_is_the_mean_pace_since_the_start():
    """2 of 6 runs done after 18 s (both at once, as with 2 workers): 36 s left, not ~0."""
    from slabench.cli.render import GridRemaining

    now = [0.0]
    progress = Progress(GridRemaining(), get_time=lambda: now[0])
    task_id = progress.add_task("grid", total=6)
    for t, done in [(2.0, 0.2), (9.0, 0.4), (17.9, 1), (18.0, 2)]:
        now[0] = t
        progress.update(task_id, completed=done)
    text = GridRemaining().render(progress.tasks[0]).plain
    assert text == "0:00:36 left"


# ---- profile on a CPU --------------------------------------------------------------------------


def test_profile_on_cpu_prints_no_profiler_log(capfd):
    from slabench.runners.profile import profile_mixer
    from slabench.runners.sweep import Shape

    result = profile_mixer("linear", Shape(1, 8, 2, 4), "cpu", "fp32", backward=False, calls=1)
    assert result["kernels"] and result["device_us_per_call"] > 0
    captured = capfd.readouterr()
    assert "USDT" not in captured.err and "ERROR" not in captured.err and "profiler_start" not in captured.err


def test_profile_takes_an_arm_and_refuses_a_bad_one_in_one_line():
    ok = CliRunner().invoke(main, ["profile", "sla-gla/head-norm", "--device", "cpu", "--shape", "1,8,2,4", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["kernels"]
    bad = CliRunner().invoke(main, ["profile", "gla/sigmoid", "--device", "cpu"])
    line = bad.output.strip()
    assert bad.exit_code == 2 and line.startswith("error: MIXER: 'gla/sigmoid': tag 'sigmoid' is not allowed")
    assert len(line.splitlines()) == 1


# ---- an edited plugin is a new run -------------------------------------------------------------


def test_plugin_source_hash_is_in_the_key_and_the_record(tmp_path, tiny_grid):
    plugin = tmp_path / "mine.py"
    plugin.write_text(textwrap.dedent(LONG_T_FAILS).replace("> 8", "> 64"))
    grid = {**_grid(), "models": [{"name": f"{plugin}:FailsAtLongT", "d_model": 16, "n_heads": 2, "n_layers": 1}]}
    (spec,) = expand_grid(grid)[1]
    before = spec.key()
    plugin.write_text(plugin.read_text().replace("> 64", "> 128"))  # the same spec, an edited mixer
    assert spec.key() != before

    # Built-in mixers keep their keys: the committed smoke records are still found.
    committed = next((config.PRESETS_DIR.parents[1] / "leaderboards/records/smoke/records").glob("*.json"))
    record = json.loads(committed.read_text())
    assert config.RunSpec.from_dict(record["spec"]).key() == record["key"]

    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(tiny_grid(steps=2, seeds=(0,))),
            "--mixer",
            f"{plugin}:FailsAtLongT",
            "--out",
            str(out),
            *FAST,
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    (run,) = load_records(out).records.values()
    assert run["model"]["mixer_source"] == hashlib.sha256(plugin.read_bytes()).hexdigest()[:16]


# ---- TensorBoard logs and checkpoints, on request ------------------------------------------------


def test_log_dir_and_checkpoints_read_back(tmp_path, tiny_grid):
    pytest.importorskip("tensorboard")
    import torch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from slabench.runners.train import TEST_SEED, evaluate

    out, logs = tmp_path / "out", tmp_path / "tb"
    grid = tiny_grid(steps=10, seeds=(0,), models=("sla-gla",))  # eval_every 5; sla-gla has gate diagnostics
    result = CliRunner().invoke(
        main, ["run", str(grid), "--out", str(out), "--log-dir", str(logs), "--save-checkpoints", *FAST, "--quiet"]
    )
    assert result.exit_code == 0, result.output
    (record,) = load_records(out).records.values()
    assert [p.name for p in logs.iterdir()] == [record["key"]]  # one subfolder per run

    events = EventAccumulator(str(logs / record["key"])).Reload()
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == list(range(1, 11))
    assert loss[-1].value == pytest.approx(record["metrics"]["final_train_loss"], rel=1e-6)
    curve = record["metrics"]["curve"]
    assert [(e.step, e.value) for e in events.Scalars("val/acc")] == [
        (c["step"], pytest.approx(c["val_acc"], rel=1e-6)) for c in curve
    ]
    entropy = events.Scalars("diagnostics/layer0/gate_entropy")
    assert [e.value for e in entropy] == [pytest.approx(c["layer0/gate_entropy"], rel=1e-6) for c in curve]
    assert events.Scalars("test/acc")[0].value == pytest.approx(record["metrics"]["test_acc"], rel=1e-6)
    assert len(events.Scalars("train/lr")) == 10

    # The checkpoint holds the weights the test accuracy was measured with.
    saved = torch.load(record["checkpoint"], weights_only=True)
    spec = config.RunSpec.from_dict(saved["spec"])
    task = spec.task.build_test()
    model = spec.model.build(task.vocab_size, task.seq_len)
    model.load_state_dict(saved["state_dict"])
    test = task.sample(spec.train.test_size, torch.Generator().manual_seed(TEST_SEED), "cpu")
    assert evaluate(model, test, None)["acc"] == record["metrics"]["test_acc"]


def test_sigint_mid_grid_keeps_finished_records(tmp_path, tiny_grid):
    """Ctrl-C (SIGINT to the process group) after the first record: exit 130, a line saying how to
    resume, every finished record intact and found again by the plan."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # Runs long enough (8 of about a second or more) that the signal lands mid-grid on a fast machine.
    grid, out = tiny_grid(steps=300, seeds=tuple(range(8))), tmp_path / "out"
    cmd = [sys.executable, "-m", "slabench", "run", str(grid), "--out", str(out), *FAST]
    # SIG_DFL in the child: a shell that starts jobs in the background (no job control) passes
    # SIGINT down as ignored, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen(
        cmd,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("records/*.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: finished runs are recorded" in stderr and "Traceback" not in stderr
    found = load_records(out)
    assert 1 <= len(found.records) < 8 and not found.corrupt
    plan = json.loads(CliRunner().invoke(main, ["run", str(grid), "--out", str(out), "--dry-run", "--json"]).stdout)
    assert plan["recorded"] == len(found.records)


# ---- bad values for the mixer-only commands: one line, nothing run or written -------------------

SLA_OF_SLA = ["sla-gla already has SLA gates; sla- applies to a base mixer:", "gla, linear", "LinearMixer plugin"]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--preset", "smoke", "--mixer", "sla-sla-gla", "--dry-run"],
        ["compare", "--mixer", "sla-sla-gla", "--against", "gla"],
        ["compare", "--mixer", "gla", "--against", "attention,sla-sla-gla"],
        ["sweep", "--mixers", "gla,sla-sla-gla", "--device", "cpu"],
        ["profile", "sla-sla-gla", "--device", "cpu"],
        ["models", "sla-sla-gla"],
    ],
)
def test_sla_twin_of_a_twin_is_one_line(tmp_path, monkeypatch, args):
    """Was a TypeError about an inconsistent MRO from every command that names a mixer."""
    monkeypatch.chdir(tmp_path)
    _one_line_error(args, "model 'sla-sla-gla'", *SLA_OF_SLA)
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written


@pytest.mark.parametrize(
    "args, words",
    [
        (["doctor", "--device", "tpu"], ["--device 'tpu' is not allowed", "auto, cpu, cuda or cuda:N"]),
        (["doctor", "--device", ""], ["--device '' is not allowed", "auto, cpu, cuda or cuda:N"]),
        (["doctor", "--device", "mps"], ["--device 'mps' is not allowed"]),
        (["doctor", "--device", "cpu", "--device", "cuda:0"], ["--device cuda:0: CUDA is not available here"]),
        (["doctor", "--device", "cuda"], ["--device cuda: CUDA is not available here"]),
        (["sweep", "--mixers", "gla", "--device", "tpu"], ["--device 'tpu' is not allowed"]),
        (["sweep", "--mixers", "gla", "--device", ""], ["--device '' is not allowed"]),
        (["sweep", "--mixers", "gla", "--device", "cuda:0"], ["--device cuda:0: CUDA is not available here"]),
    ],
)
def test_unavailable_or_unknown_devices_are_one_line(tmp_path, monkeypatch, args, words):
    """doctor and sweep check --device as run and profile do (was a torch RuntimeError, or for
    doctor a table of kernel paths on a device the machine lacks)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine, on any host
    monkeypatch.chdir(tmp_path)
    _one_line_error(args, *words)
    assert not any(tmp_path.iterdir())


SWEEP = ["sweep", "--mixers", "gla", "--device", "cpu"]


@pytest.mark.parametrize(
    "args, words",
    [
        ([*SWEEP, "--d-model", "0"], ["'--d-model': 0 is not in the range x>=1"]),
        ([*SWEEP, "--heads", "-2"], ["'--heads': -2 is not in the range x>=1"]),
        ([*SWEEP, "--tokens", "0"], ["'--tokens': 0 is not in the range x>=1"]),
        ([*SWEEP, "--batch", "0"], ["'--batch': 0 is not in the range x>=1"]),
        ([*SWEEP, "--repeats", "0"], ["'--repeats': 0 is not in the range x>=1"]),
        ([*SWEEP, "--shape", "0,8,2,8"], ["--shape='0,8,2,8' must be 4 comma-separated integers >= 1"]),
        (["profile", "gla", "--device", "cpu", "--shape", "0,8,2,8"], ["--shape='0,8,2,8' must be 4", ">= 1"]),
        (["profile", "gla", "--device", "cpu", "--shape", "1,-8,2,8"], ["--shape='1,-8,2,8' must be 4", ">= 1"]),
        (["profile", "gla", "--device", "cpu", "--shape", "1,8,2"], ["--shape='1,8,2' must be 4"]),
        (["profile", "gla", "--device", "cpu", "--top", "0"], ["'--top': 0 is not in the range x>=1"]),
    ],
)
def test_non_positive_sizes_are_one_line(tmp_path, monkeypatch, args, words):
    """sweep --d-model 0 used to exit 0 with an all-failed table written over --out's (by default
    the committed leaderboards/speed); profile --shape 0,... was a torch RuntimeError."""
    monkeypatch.chdir(tmp_path)
    _one_line_error(args, *words)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("key", ["seq_len", "vocab_size"])
def test_sizes_past_any_machine_are_one_line(key):
    """`show mqar --set seq_len=1e9` allocated 8 GB and died with a traceback (or was OOM-killed);
    past 2**20 a size is refused, at it a task builds."""
    from slabench.tasks import build_task

    _one_line_error(["show", "mqar", "--set", f"{key}={2**20 + 2}"], f"task 'mqar': {key}=1048578 must be <= 1048576")
    assert build_task("mqar", **{key: 2**20}).seq_len == (2**20 if key == "seq_len" else 256)


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "{grid}", "--dry-run", "--out", "{grid}/x"], ["'--out'", "is a file, so '", "/x' cannot be created"]),
        (["run", "{grid}", "--dry-run", "--log-dir", "{grid}/x"], ["'--log-dir'", "is a file"]),
        (["run", "{grid}", "--dry-run", "--leaderboard-dir", ""], ["'--leaderboard-dir': must name a directory"]),
        (["report", "sla", "--from-records", "--report", ""], ["'--report': must name a file"]),
        (["report", "sla", "--from-records", "--report", "{grid}/r.md"], ["'--report'", "is a file"]),
        (["sweep", "--device", "cpu", "--out", "{grid}/x"], ["'--out'", "is a file"]),
        (["leaderboard", "{lb}", "--out-dir", "{grid}/x"], ["'--out-dir'", "is a file"]),
        (["leaderboard", "{lb}", "--name", "a/b"], ["--name='a/b' must be a file name without a folder"]),
    ],
)
def test_unwritable_outputs_are_one_line_before_anything_runs(tmp_path, tiny_grid, args, words):
    """An output path under a file, or empty, failed with a traceback after the work (the runs'
    records were kept, the leaderboard lost); now the options refuse it before anything runs."""
    grid = tiny_grid()
    lb = tmp_path / "lb"
    (lb / "records").mkdir(parents=True)
    before = sorted(tmp_path.rglob("*"))
    _one_line_error([a.format(grid=grid, lb=lb) for a in args], *words)
    assert sorted(tmp_path.rglob("*")) == before  # nothing created


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_path_no_check_foresaw_is_one_line_too(tmp_path, tiny_grid):
    """/proc accepts no new folder, whoever asks (root included): the run's records are written
    under --out, the leaderboard cannot be, and that is one line, exit 2, records kept."""
    out = tmp_path / "out"
    grid = str(tiny_grid(steps=2, seeds=(0,)))
    line = _one_line_error(["run", grid, *FAST, "--quiet", "--out", str(out), "--leaderboard-dir", "/proc/nope"])
    assert line == "error: cannot write or read '/proc/nope': No such file or directory"
    assert len(load_records(out).records) == 1


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_log_dir_that_cannot_be_made_stops_before_the_runs(tmp_path, tiny_grid):
    """`--log-dir /proc/nope` passed the option's checks and every run then failed writing its
    event files (recorded as failed, so a rerun skipped them); now nothing runs."""
    pytest.importorskip("torch.utils.tensorboard")
    out = tmp_path / "out"
    grid = str(tiny_grid(steps=2, seeds=(0,)))
    line = _one_line_error(["run", grid, *FAST, "--quiet", "--out", str(out), "--log-dir", "/proc/nope"])
    assert line == "error: cannot write or read '/proc/nope': No such file or directory"
    assert not out.exists()  # no run started


@pytest.mark.parametrize(
    "args, words",
    [
        (["show", "mqar", "--seed", "99999999999999999999"], ["'--seed'", "not in the range 0<=x<=2147483647"]),
        (["show", "memorization", "--set", "map_seed=99999999999999999999"], ["map_seed=", "[0, 2**31)"]),
        (["show", "mqar", "-n", "1001"], ["-n=1001 must be in [1, 1000]"]),
        (["run", "{grid}", "--dry-run", "--workers", "99999999999999999999"], ["--workers=", "must be in [0, 1024]"]),
        (["run", "--preset", "", "--dry-run"], ["unknown preset ''; known: ci,"]),
        (["compare", "--mixer", "gla", "--against", "attention", "--preset", ""], ["unknown preset ''"]),
        (["compare", "--mixer", "gla", "--against", " , "], ["--against=' , ' names no baseline mixer"]),
        (["run", "{grid}", "--dry-run", "--fold", "²"], ["--fold: fold='²' is not allowed; give an int >= 1"]),
    ],
)
def test_out_of_range_and_empty_values_are_one_line(tiny_grid, args, words):
    """Each was a traceback (an int overflowing C's, a million examples rendered) or, for an empty
    --preset, ran the default grid (compare) or crashed on a missing grid file (run)."""
    _one_line_error([a.format(grid=tiny_grid()) for a in args], *words)


def test_a_sweep_of_no_mixers_keeps_the_last_sweeps_tables(tmp_path):
    """`sweep --mixers ,` timed nothing and wrote its empty tables over the last sweep's."""
    kept = tmp_path / "speed" / "cpu.md"
    kept.parent.mkdir()
    kept.write_text("the last sweep")
    _one_line_error(["sweep", "--device", "cpu", "--mixers", " ,", "--out", str(kept.parent)], "--mixers=' ,' names no")
    assert kept.read_text() == "the last sweep" and len(list(kept.parent.iterdir())) == 1


def test_a_sweep_whose_every_case_failed_keeps_the_last_sweeps_tables(tmp_path, monkeypatch):
    """A size past memory failed every case, and the table of failures was written over the last
    sweep's; now nothing is written and the command says so in one line."""
    from slabench.runners.sweep import cases

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")  # what a case past the device's memory raises

    monkeypatch.setattr(cases, "mixer_fns", out_of_memory)
    kept = tmp_path / "cpu.md"
    kept.write_text("the last sweep")
    args = ["sweep", "--device", "cpu", "--mixers", "gla", "--seq-lens", "16", "--repeats", "1", "--out", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()  # each failed case, then the error
    assert lines[0] == "gla fwd B128 T16: oom RuntimeError: CUDA out of memory"
    assert lines[-1] == f"error: every case of the sweep failed; nothing written to '{tmp_path}' (its files are kept)"
    assert kept.read_text() == "the last sweep" and [p.name for p in tmp_path.iterdir()] == ["cpu.md"]


def test_a_cpu_sweep_writes_under_runs_not_the_committed_gpu_tables(tmp_path, monkeypatch):
    """A CPU sweep (trying the command) wrote into leaderboards/speed, where the GPU's committed
    tables and the report's cost claim are read; on CPU its default --out is runs/speed."""
    monkeypatch.chdir(tmp_path)
    args = ["sweep", "--device", "cpu", "--mixers", "gla", "--seq-lens", "16", "--repeats", "1", "--mode", "fwd"]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert (tmp_path / "runs" / "speed").is_dir() and not (tmp_path / "leaderboards").exists()
    assert any(p.suffix == ".json" for p in (tmp_path / "runs" / "speed").iterdir())


def test_a_grid_of_any_width_validates_without_allocating_it(tmp_path, tiny_grid):
    """Grid validation builds every mixer to check its shapes; at d_model 100000 that allocated
    120 GB and died. It builds them on the meta device now: the plan prints, nothing allocated."""
    grid = tiny_grid()
    grid.write_text(grid.read_text().replace("d_model = 16", "d_model = 100000"))
    assert "d_model = 100000" in grid.read_text()
    result = CliRunner().invoke(main, ["run", str(grid), "--dry-run", "--device", "cpu", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    # The mixers were built at that width (so validation ran there): one more makes heads uneven.
    grid.write_text(grid.read_text().replace("d_model = 100000", "d_model = 100001"))
    line = _one_line_error(["run", str(grid), "--dry-run", "--device", "cpu", "--out", str(tmp_path / "o")])
    assert line == "error: attention: d_model=100001 must be divisible by n_heads=2"


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: 64 GB"),
        MemoryError(),  # no message: its first line was an IndexError
    ],
)
def test_a_profile_past_memory_is_one_line(monkeypatch, error):
    """A --shape past the machine's memory: the allocator's error becomes one line naming --shape
    (a real one would need the allocation to fail, which on an overcommitting host it may not)."""
    from slabench.runners import profile

    def out_of_memory(*args, **kwargs):
        raise error

    monkeypatch.setattr(profile, "profile_mixer", out_of_memory)
    _one_line_error(["profile", "gla", "--device", "cpu", "--shape", "1,1000000000,2,8"], "--shape=1,1000000000,2,8")


def test_models_lists_a_plugin_and_its_twin():
    """docs/new-variant.md: `slabench models path/to/file.py:Class` shows a variant's options."""
    plugin = str(config.PRESETS_DIR.parents[1] / "examples" / "my_variant.py") + ":GatedLinear"
    result = CliRunner().invoke(main, ["models", plugin, f"sla-{plugin}", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert list(listed) == [plugin, f"sla-{plugin}"]
    assert "gate_normalizer" in listed[plugin] and "d_model" in listed[plugin]  # its own, after the backbone's
    assert "gate_rank" in listed[f"sla-{plugin}"] and "gate_rank" not in listed[plugin]
    # docs/new-variant.md §6: only the mixer classes, not GatedLinearOptions
    assert _one_line_error(["models", plugin.replace(":GatedLinear", ":Nope")]).endswith("classes there: GatedLinear")


def test_failures_line_says_how_many_it_leaves_out():
    from slabench.cli import render

    failures = [{"model": "m", "seed": s, "error": "RuntimeError: [boom]"} for s in range(7)]
    with render.console.capture() as said:
        render.print_failures(failures)
    text = said.get()
    assert text.startswith("7 run(s) failed: m seed 0: RuntimeError: [boom]")  # brackets kept, not markup
    assert text.count("seed ") == 5 and "and 2 more (the leaderboard lists every one)" in text

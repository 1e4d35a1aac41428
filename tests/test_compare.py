"""`slabench compare` on the example variant, loaded from a file outside the repository."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.runners.compare import compare_grid
from slabench.runners.stats import verdict

ROOT = Path(__file__).resolve().parents[1]


def test_compare_example_against_gla(tmp_path, monkeypatch):
    shutil.copy(ROOT / "examples" / "my_variant.py", tmp_path / "my_variant.py")
    monkeypatch.chdir(tmp_path)  # a relative plugin path, resolved again by the spawned workers
    out = tmp_path / "out"
    args = [
        "compare",
        str(ROOT / "examples" / "tiny.toml"),
        "--mixer",
        "my_variant.py:GatedLinear",
        "--against",
        "gla",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--workers",
        "2",
        "--quiet",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "compare.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    (task,) = summary["tasks"]
    assert [m["mixer"] for m in task["models"]] == ["my_variant.py:GatedLinear", "gla"]
    assert all(m["seeds"] == 2 and 0 < m["acc"] <= 1 for m in task["models"])
    (versus,) = task["versus"]
    assert versus["verdict"] in ("win", "tie", "loss")
    assert versus["delta"] == task["models"][0]["acc"] - task["models"][1]["acc"]
    assert sum(summary["totals"]["gla"].values()) == 1
    assert (out / "compare.md").read_text().count("| gla |") == 3  # totals, models, versus
    assert (out / "compare.png").stat().st_size > 0


def test_compare_grid_keeps_tasks_train_and_first_backbone():
    grid = {
        "name": "g",
        "train": {"steps": 5, "seeds": [0, 1]},
        "tasks": [{"name": "mqar"}],
        "models": [
            {"name": "attention", "d_model": 48, "n_heads": 4, "mlp": False, "num_kv_heads": 1},
            {"name": "gla", "d_model": 64},
        ],
    }
    g = compare_grid(grid, "v.py:V", ["gla", "attention"])
    assert g["train"] == grid["train"] and g["tasks"] == grid["tasks"]
    assert g["models"] == [
        {"name": n, "d_model": 48, "n_heads": 4, "mlp": False} for n in ("v.py:V", "gla", "attention")
    ]


def _row(accs: list[float], seeds: list[int] | None = None) -> dict:
    return {"seed_ids": seeds or list(range(len(accs))), "seed_accs": accs}


def test_verdict_by_the_paired_test():
    six_high, six_low = _row([0.9, 0.91, 0.92, 0.9, 0.95, 0.93]), _row([0.7, 0.72, 0.7, 0.71, 0.7, 0.75])
    outcome, test = verdict(six_high, six_low)
    assert outcome == "win" and test["test"] == "paired" and test["p"] == 2 / 64
    assert verdict(six_low, six_high)[0] == "loss"
    # 5 paired seeds can only tie (smallest p 1/16), however far apart
    assert verdict(_row([0.99] * 5), _row([0.01] * 5))[0] == "tie"
    # one seed of six the other way: p = 4/64 when it is the smallest difference -> tie
    mixed = _row([0.9, 0.91, 0.92, 0.9, 0.95, 0.69])
    assert verdict(mixed, six_low)[0] == "tie"
    # different seeds: the unpaired permutation test (2 of 924 splits of 6 + 6 as extreme)
    outcome, test = verdict(six_high, _row(six_low["seed_accs"], list(range(10, 16))))
    assert outcome == "win" and test["test"] == "unpaired" and test["p"] == 2 / 924


def test_run_with_a_plugin_mixer(tmp_path):
    variant = tmp_path / "my_variant.py"
    shutil.copy(ROOT / "examples" / "my_variant.py", variant)
    out = tmp_path / "out"
    args = [
        "run",
        str(ROOT / "examples" / "tiny.toml"),
        "--mixer",
        f"{variant}:GatedLinear",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--workers",
        "1",
        "--json",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["overall"]
    assert row["mixer"] == f"{variant}:GatedLinear" and row["params"] > 0
    summary = json.loads(result.stdout)
    assert (summary["ran"], summary["failed"], row["solved"]) == (2, [], 2), row  # the example learns the tiny grid


def test_a_variant_whose_every_run_failed_is_named_not_left_out():
    """No row for the variant (every run failed): the summary, the Markdown and the warnings say so,
    instead of a 0 win / 0 tie / 0 loss that reads like a comparison."""
    from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec
    from slabench.runners.compare import summarise, to_markdown
    from slabench.runners.leaderboard import aggregate

    task = TaskSpec("mqar", (("num_kv_pairs", 4),))

    def record(mixer: str, seed: int, status: str) -> dict:
        spec = RunSpec("g", task, ModelSpec(mixer, (("d_model", 16),)), TrainSpec(steps=1), seed)
        ok = status == "ok"
        return {
            "key": spec.key(),
            "spec": spec.to_dict(),
            "seed": seed,
            "status": status,
            "error": None if ok else "RuntimeError: boom",
            "metrics": {"test_acc": 0.5, "val_acc": 0.5, "test_exact": 0.1, "steps": 1} if ok else {},
            "model": {"params": 10, "state_size": 4},
            "timings": {"train_seconds": 1.0, "tokens_per_s": 100.0},
        }

    records = [record("gla", s, "ok") for s in range(3)] + [record("plugin.py:Broken", s, "failed") for s in range(3)]
    summary = summarise(aggregate(records), "plugin.py:Broken", ["gla"])
    (t,) = summary["tasks"]
    assert t["missing"] == ["plugin.py:Broken"] and t["versus"] == []
    assert any("all 3 runs failed" in w for w in summary["warnings"])
    text = to_markdown(summary, None)
    assert "No result for plugin.py:Broken: every run failed" in text and "## Warnings" in text


def test_compare_defaults_to_the_preset_sized_for_the_device(tmp_path, monkeypatch):
    """Without a grid, compare on CPU took quick's GPU grid (144 runs for a variant and three
    baselines: about a day of a 2-core CPU); on CPU its default is smoke, on a GPU quick."""
    from slabench.config import expand_grid, load_preset
    from slabench.errors import SlabenchError

    planned = []

    def plan_only(name, jobs, *args, **kwargs):
        planned.extend(jobs[0].specs)
        raise SlabenchError("planned")

    monkeypatch.setattr("slabench.cli.compare.run_pending", plan_only)
    args = ["compare", "--mixer", "gla", "--against", "attention", "--device", "cpu", "--out", str(tmp_path)]
    assert CliRunner().invoke(main, args).exit_code == 2
    _, smoke = expand_grid(compare_grid(load_preset("smoke"), "gla", ["attention"]))
    assert [s.key() for s in planned] == [s.key() for s in smoke]
    planned.clear()  # and on a GPU (as resolved from --device auto there), quick
    monkeypatch.setattr("slabench.runners.grid.resolve_device", lambda device: "cuda")
    assert CliRunner().invoke(main, args[:-4] + ["--out", str(tmp_path)]).exit_code == 2
    _, quick = expand_grid(compare_grid(load_preset("quick"), "gla", ["attention"]))
    assert [s.key() for s in planned] == [s.key() for s in quick]


def test_summary_gives_the_variant_its_verdict_against_each_baseline():
    """By hand: the variant at 0.9 on six seeds against gla at 0.5 and attention at 0.95 on the
    same seeds: a win (p = 2/64, +40 pp) and a loss (-5 pp). Swapping the arguments of the verdict
    reported a win as a loss and passed every other test."""
    from slabench.runners.compare import summarise

    def row(mixer: str, acc: float) -> dict:
        return {**_row([acc] * 6), "mixer": mixer, "acc": acc, "model_params": {"d_model": 64}}

    board = {"tasks": {"mqar": [row("v", 0.9), row("gla", 0.5), row("attention", 0.95)]}}
    board.update(ranked_by="", failures=[], warnings=[], runs=18)
    summary = summarise(board, "v", ["gla", "attention"])
    (task,) = summary["tasks"]
    got = {x["baseline"]: (x["verdict"], x["p"], round(x["delta"], 6), x["pairs"]) for x in task["versus"]}
    assert got == {"gla": ("win", 2 / 64, 0.4, 6), "attention": ("loss", 2 / 64, -0.05, 6)}
    assert summary["totals"] == {"gla": {"win": 1, "tie": 0, "loss": 0}, "attention": {"win": 0, "tie": 0, "loss": 1}}


def test_arms_of_one_mixer_compare_as_models_of_one_size():
    """An arm (`sla-gla/head-norm`) is its own row beside the registered mixer: labelled by the
    options it sets and compared at the same backbone, not set apart as another size. Keyed by
    mixer name alone, the two sla-gla rows overwrote each other."""
    from slabench.runners.compare import compare_grid, summarise

    grid = {
        "name": "g",
        "train": {"seeds": [0]},
        "tasks": [{"name": "mqar"}],
        "models": [{"name": "gla", "d_model": 32}],
    }
    models = compare_grid(grid, "sla-gla/head-norm", ["sla-gla", "gla/layer-norm"])["models"]
    assert models == [
        {"name": "sla-gla", "d_model": 32, "output_norm": "head"},
        {"name": "sla-gla", "d_model": 32},
        {"name": "gla", "d_model": 32, "output_norm": "layer"},
    ]

    def row(model: dict, acc: float) -> dict:
        params = {k: v for k, v in model.items() if k != "name"}
        return {**_row([acc] * 6), "mixer": model["name"], "acc": acc, "model_params": params}

    board = {"tasks": {"mqar": [row(m, a) for m, a in zip(models, (0.9, 0.5, 0.9))]}}
    board.update(ranked_by="", failures=[], warnings=[], runs=18)
    (task,) = summarise(board, "sla-gla/head-norm", ["sla-gla", "gla/layer-norm"])["tasks"]
    assert task["backbone"] == {"d_model": 32} and [m["mixer"] for m in task["models"]] == [
        "sla-gla/head-norm",
        "sla-gla",
        "gla/layer-norm",
    ]
    assert {x["baseline"]: x["verdict"] for x in task["versus"]} == {"sla-gla": "win", "gla/layer-norm": "tie"}

"""`slabench report sla`: the tiny scale end to end on CPU (real training), and the committed report
rebuilt from its records (the verdict rules are in test_report_rules.py)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.runners import report as rp
from slabench.runners.report_rules import HEADS_FIXED_RULE

SECTION_TITLES = [
    "## 1. Retrieval under noise",
    "## 2. MQAR recall",
    "## 3. Gain vs number of heads",
    "## 4. Gate dynamics",
    "## 5. Cost",
]


def test_tiny_report_end_to_end_and_from_records(tmp_path):
    out, md, speed = tmp_path / "runs", tmp_path / "lb" / "sla-report.md", tmp_path / "speed"
    args = [
        "report",
        "sla",
        "--scale",
        "tiny",
        "--out",
        str(out),
        "--report",
        str(md),
        "--speed-dir",
        str(speed),
        "--device",
        "cpu",
        "--quiet",
    ]
    result = CliRunner().invoke(main, args + ["--workers", "2"])
    assert result.exit_code == 0, result.output
    text = md.read_text()

    positions = [text.find(t) for t in SECTION_TITLES]
    assert -1 not in positions and positions == sorted(positions), positions
    verdicts = re.findall(r"\*\*Verdict: (supported|not supported|inconclusive)\.\*\*", text)
    assert len(verdicts) == 5
    row = r"^\| \d\. (\w+) \| .+ \| (?:supported|not supported|inconclusive) \| (.+) \|$"  # the table of claims
    votes = dict(re.findall(row, text, re.M))
    assert [v.split()[0] for v in votes.values()] == ["gla", "gla", "gla", "-", "-"], votes  # gla: tiny's one base
    assert "No speed sweep found" in text and "slabench sweep" in text  # claim 4 says how to get its data
    for section in ("noise", "mqar", "heads"):
        assert (md.parent / f"sla-report-{section}.png").stat().st_size > 0
    # The gates figure needs solved runs, which 20 steps may not give: drawn exactly when linked.
    assert ("![gates]" in text) == (md.parent / "sla-report-gates.png").exists()
    counts = {s: len(list((out / s / "records").glob("*.json"))) for s in rp.GRID_SECTIONS}
    # Stage 1: seed 0 at both lrs; stage 2: seeds 1-2 at the lr each cell chose. Five arms of gla
    # (six under noise and heads: the gate held at 1/H too).
    assert counts == {"noise": 48, "mqar": 20, "heads": 48}
    heads = text[text.index("## 3.") : text.index("## 4.")]
    assert "Which arm explains a slope" in heads and HEADS_FIXED_RULE in heads  # the held gate ran there
    assert "Incomplete" not in text
    assert (out / "noise" / "report-noise-tiny.md").is_file()  # each section's own leaderboard
    for section in rp.GRID_SECTIONS:  # grid.json: the section's whole grid, not its last stage's runs
        listed = {run["key"] for run in json.loads((out / section / "grid.json").read_text())["runs"]}
        assert listed == {s.key() for s in rp.section_specs(section, "tiny")[1]}
    assert "/2 solved)" in text and "(n=2)" in text and "lr kept per cell in stage 1" in text
    arms = ("| gla/layer-norm |", "| sla-gla/head-norm |", "| sla-gla/sigmoid |", "| sla-gla/constant |")
    for arm in (*arms, "sla-gla - gla/layer-norm", "sla-gla/constant - gla/layer-norm"):
        assert arm in text

    # No training: the same Markdown, byte for byte, from the records alone.
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("records/*.json")}
    result = CliRunner().invoke(main, args + ["--from-records"])
    assert result.exit_code == 0, result.output
    assert md.read_text() == text
    assert {p: p.stat().st_mtime_ns for p in out.rglob("records/*.json")} == mtimes
    # Without --report a tiny report goes under --out: it never overwrites the committed one.
    committed = Path("leaderboards/sla-report.md").stat().st_mtime_ns
    no_report = [a for a in args if a not in ("--report", str(md))]
    assert CliRunner().invoke(main, no_report + ["--from-records"]).exit_code == 0
    assert (out / "sla-report.md").read_text() == text
    assert Path("leaderboards/sla-report.md").stat().st_mtime_ns == committed
    assert re.search(r"\d+ of \d+ \(task, model\) cells have seeds both at", text) and "Failed runs" not in text

    # A failed run is listed with its error, and --retry-failed reruns it (and only it).
    victim = min((out / "heads" / "records").glob("*.json"))
    record = json.loads(victim.read_text())
    victim.write_text(json.dumps({**record, "status": "failed", "error": "CompilationError: at 39:15:\nmore"}))
    assert CliRunner().invoke(main, args + ["--from-records"]).exit_code == 0
    assert "Failed runs" in md.read_text() and "CompilationError: at 39:15: |" in md.read_text()
    result = CliRunner().invoke(main, args + ["--retry-failed", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(victim.read_text())["status"] == "ok" and "Failed runs" not in md.read_text()
    assert counts == {s: len(list((out / s / "records").glob("*.json"))) for s in rp.GRID_SECTIONS}

    # A missing seed-stage run: the report from records says the protocol lacks it.
    next(p for p in (out / "mqar" / "records").glob("*.json") if json.loads(p.read_text())["seed"] == 2).unlink()
    assert CliRunner().invoke(main, args + ["--from-records"]).exit_code == 0
    assert "**Incomplete:** 1 of the protocol's runs still to run (mqar 1)" in md.read_text()
    # One machine is named before the clause; the runs here ran on one CPU under two thread counts.
    estimate = r"\(mqar 1\), about \d+ s (of [^,;]+ )?at each section's device time per run so far(, over runs on .+)?;"
    assert re.search(estimate, md.read_text())


@pytest.mark.parametrize(
    "edition, name, extra",
    [("1", "sla-report-v1.md", []), ("2", "sla-report.md", []), ("2", "sla-report.md", ["--seeds", "10"])],
)
def test_committed_report_regenerates_from_committed_records(tmp_path, edition, name, extra):
    """leaderboards/sla-report.md (the second edition, from the records in so far) and
    sla-report-v1.md (the first edition's H100 runs) are exactly what the committed records give;
    --seeds 10, the grids' own count, changes only the commands it names."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    committed = root / "leaderboards" / name
    md = tmp_path / name
    result = CliRunner().invoke(
        main,
        [
            "report",
            "sla",
            "--from-records",
            "--scale",
            "full",
            "--edition",
            edition,
            "--quiet",
            "--out",
            str(root / "leaderboards" / "records" / "sla-report"),
            "--report",
            str(md),
            "--speed-dir",
            str(root / "leaderboards" / "speed"),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    expected = committed.read_text()
    for command in (
        f"`slabench report sla --edition {edition} --scale full`",
        "`slabench report sla --sections S --bases B`",
    ):
        expected = expected.replace(command, f"{command[:-1]}{''.join(' ' + a for a in extra)}`")
    assert md.read_text() == expected


def test_more_verdict_seeds_extend_the_grids_past_their_own():
    """--seeds N: each cell's verdict seeds become N, the grid's own first and then the next
    integers; the lr stage's runs stay as they were, so no lr is chosen again."""
    from slabench.runners.report import lr_stage, section_specs

    _, own = section_specs("noise", "tiny")
    _, more = section_specs("noise", "tiny", seeds=4)
    assert sorted({s.seed for s in own}) == [0, 1, 2] and sorted({s.seed for s in more}) == [0, 1, 2, 3, 4]
    assert {s.key() for s in lr_stage(more, "tiny", 2)} == {s.key() for s in lr_stage(own, "tiny", 2)}
    assert {s.key() for s in own} < {s.key() for s in more} and len(more) == len(own) // 3 * 5
    for args, message in (
        (["--seeds", "1", "--scale", "tiny"], "--seeds=1 is fewer than the protocol's 2 verdict seeds per cell"),
        (["--seeds", "12", "--edition", "1"], "--seeds is not allowed with --edition 1"),
    ):
        result = CliRunner().invoke(main, ["report", "sla", "--from-records", *args])
        line = result.output.strip()
        assert result.exit_code == 2 and line.startswith(f"error: {message}") and len(line.splitlines()) == 1


def test_lr_table_marks_an_edge_lr_below_the_ceiling_apart_from_one_at_it():
    """An lr kept at the sweep's edge is `*`; `**` when the cell's best mean validation accuracy is
    also below the ceiling (a wider sweep might help it); an inner lr is unmarked."""
    from slabench.runners.report_sections import _lr_table

    cells = [{"arm": a, "task": "t", "model": a, "level": 0} for a in ("gla", "sla-gla", "sla-gla/sigmoid")]
    choice = {
        ("t", "gla"): {"lr": 1e-4, "lrs": [1e-4, 3e-4, 1e-3], "val": {1e-4: 0.99, 3e-4: 0.5, 1e-3: 0.1}, "edge": True},
        ("t", "sla-gla"): {
            "lr": 1e-4,
            "lrs": [1e-4, 3e-4, 1e-3],
            "val": {1e-4: 0.6, 3e-4: 0.5, 1e-3: 0.1},
            "edge": True,
        },
        ("t", "sla-gla/sigmoid"): {
            "lr": 3e-4,
            "lrs": [1e-4, 3e-4, 1e-3],
            "val": {1e-4: 0.2, 3e-4: 0.6, 1e-3: 0.1},
            "edge": False,
        },
    }
    lines = _lr_table(cells, lambda c: c["level"], str, choice)
    assert "1 of 3 cells" in lines[0]
    rows = {r.split(" | ")[0].lstrip("| "): r.split(" | ")[1].rstrip(" |") for r in lines[2].splitlines()[2:]}
    assert rows == {"gla": "0.0001*", "sla-gla": "0.0001**", "sla-gla/sigmoid": "0.0003"}


def test_arms_expand_to_the_model_options_they_name():
    """Each arm label of the tiny grids builds the model it names: the norm and gate kind really set."""
    from slabench.models.arms import arm
    from slabench.runners.report_data import Arms

    seen = set()
    for section in rp.GRID_SECTIONS:
        _, specs = rp.section_specs(section, "tiny")
        for spec in specs:
            params = dict(spec.model.params)
            label = arm(spec.model.name, params)
            mixer = spec.model.build(vocab_size=64, max_len=64).mixers[0]
            seen.add(label)
            assert mixer.output_norm == (
                "layer" if label in ("gla/layer-norm", "sla-gla", "sla-gla/sigmoid", "sla-gla/constant") else "head"
            )
            gates = None if mixer.q_gate is None else mixer.q_gate.kind
            kinds = {"gla": None, "gla/layer-norm": None, "sla-gla/sigmoid": "sigmoid", "sla-gla/constant": "constant"}
            assert gates == kinds.get(label, "softmax")
    assert seen == set(vars(Arms.of("gla")).values())  # every role of the base, nothing else
    assert Arms.of("gla") == Arms(
        "gla", "gla/layer-norm", "sla-gla", "sla-gla/head-norm", "sla-gla/sigmoid", "sla-gla/constant"
    )


def test_full_grids_hold_every_arm_of_their_bases_and_no_idle_one():
    """Each full section runs, per base with a twin, exactly the arms the contrasts read (three where
    the base's own norm is the twins', as Mamba-2's), each at every condition; attention beside
    them where it checks that a cell is solvable."""
    from slabench.models.arms import arm
    from slabench.runners.report_data import Arms

    # (bases, attention, the bases with the gate held at 1/H, the control without learning: every
    # base under noise, gla and retnet in the heads section, the bases with two H in range there)
    everyone = {"retnet", "gla", "gdn", "deltanet", "mamba2"}
    expected = {"noise": (5, True, everyone), "mqar": (5, True, set()), "heads": (3, False, {"gla", "retnet"})}
    for section in rp.GRID_SECTIONS:
        _, specs = rp.section_specs(section, "full")
        # A condition is the d_model, or in the heads section H (each base keeps its head dimension).
        size = "n_heads" if section == "heads" else "d_model"
        cells = {(arm(s.model.name, dict(s.model.params)), s.task.label(), dict(s.model.params)[size]) for s in specs}
        labels = {label for label, _, _ in cells}
        bases = sorted({label[4:].split("/")[0] for label in labels if label.startswith("sla-")})
        n_bases, attention, held = expected[section]
        assert len(bases) == n_bases, (section, bases)
        roles = {label for b in bases for name, label in vars(Arms.of(b)).items() if b in held or name != "fixed"}
        wanted = roles | ({"attention"} if attention else set())
        assert labels == wanted, (section, labels ^ wanted)
        conditions = {(task, d) for _, task, d in cells}
        for label in labels:
            assert {(t, d) for lab, t, d in cells if lab == label} == conditions, (section, label)
    assert vars(Arms.of("mamba2")) == {
        "base": "mamba2",
        "base_twin_norm": "mamba2",
        "twin": "sla-mamba2",
        "twin_base_norm": "sla-mamba2",
        "control": "sla-mamba2/sigmoid",
        "fixed": "sla-mamba2/constant",
    }


def test_lr_is_chosen_on_validation_and_the_verdict_runs_never_saw_it():
    """Stage 1 picks each cell's lr by mean validation accuracy (not test); stage 2 is the other
    seeds at that lr only."""
    from slabench.models.arms import arm

    _, specs = rp.section_specs("mqar", "tiny")
    first = rp.lr_stage(specs, "tiny", 2)
    assert {s.seed for s in first} == {0} and len({s.train.lr for s in first}) == 2
    records = []
    for s in first:  # validation favours the larger lr for gla, the smaller for every other arm; test the reverse
        big = s.train.lr == max(x.train.lr for x in first)
        val = 0.9 if big == (arm(s.model.name, dict(s.model.params)) == "gla") else 0.5
        metrics = {"val_acc": val, "test_acc": 1.4 - val}
        records.append({"spec": s.to_dict(), "status": "ok", "metrics": metrics})
    chosen = rp.chosen_lrs(records)
    assert len(chosen) == 5 and all(c["edge"] for c in chosen.values())
    lrs = {
        arm(m.split("(")[0], dict(kv.split("=") for kv in m[:-1].split("(")[1].split(", "))): c["lr"]
        for (_, m), c in chosen.items()
    }
    assert lrs == {
        "gla": 1e-2,
        "gla/layer-norm": 3e-3,
        "sla-gla": 3e-3,
        "sla-gla/head-norm": 3e-3,
        "sla-gla/sigmoid": 3e-3,
    }
    second = rp.verdict_stage(specs, first, chosen)
    assert len(second) == 10 and {s.seed for s in second} == {1, 2}
    assert all(chosen[(s.task.label(), s.model.label())]["lr"] == s.train.lr for s in second)
    assert rp.verdict_stage(specs, [], {}) == specs  # the first edition: one stage


def test_bases_and_sections_pick_what_a_sitting_runs(tmp_path):
    """--bases keeps one base's arms and attention; --sections runs only those sections and reads
    the others from disk; unknown values are one line, exit 2, before anything runs."""
    _, specs = rp.section_specs("noise", "full")
    kept = rp.only_bases(specs, ("gla",))
    assert {s.model.name for s in kept} == {"attention", "gla", "sla-gla"}
    assert len({(s.model.label(), s.task.label()) for s in kept}) == 7 * 4  # 6 gla arms + attention, 4 noise levels
    assert rp.only_bases(specs, ()) == specs
    for args, word in (
        (["--bases", "mamba"], "--bases"),
        (["--bases", ","], "--bases"),  # names none: refused, not read as every base
        (["--sections", "noise,foo"], "--sections"),
        (["--fold", "0"], "--fold"),
    ):
        result = CliRunner().invoke(main, ["report", "sla", "--scale", "tiny", "--out", str(tmp_path), *args])
        assert result.exit_code == 2 and word in result.output and len(result.output.strip().splitlines()) == 1
        assert not any(tmp_path.iterdir())


def test_fold_trains_each_stages_runs_of_a_cell_as_one_model(tmp_path, one_thread):
    """--fold N: the lr stage's runs of a cell (its lrs) and the verdict stage's (its seeds) train
    as folds; the records say so and the report is written from them."""
    args = ["report", "sla", "--scale", "tiny", "--sections", "mqar", "--bases", "gla", "--fold", "3"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path), "--report", str(tmp_path / "r.md"), "--quiet"])
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "mqar" / "records").glob("*.json")]
    assert records and all(r["fold"] == 2 for r in records)  # tiny: 2 lrs, then 2 seeds, a cell
    text = (tmp_path / "r.md").read_text()
    assert "## 2." in text
    # The sections this sitting left out are still to run, and the report says how much of them.
    assert "**Incomplete:** 96 of the protocol's runs still to run (noise 48, heads 48)" in text


def test_code_line_names_each_commit_and_its_runs_from_a_dirty_tree():
    """Provenance: the commits behind the runs, most runs first, each with how many ran from a tree
    with uncommitted changes."""

    def rec(sha: str | None, dirty: bool) -> dict:
        return {"environment": {"git_sha": sha, "git_dirty": dirty}}

    spent = [rec("a" * 40, False)] * 3 + [rec("b" * 40, True)] * 2 + [rec("c" * 40, True), rec("c" * 40, False)]
    spent += [rec(None, False)]  # a record from outside a git checkout
    assert rp._code_line(spent) == (
        "Code: aaaaaaa (3 runs), bbbbbbb (2 runs; all from a tree with uncommitted changes), "
        "ccccccc (2 runs; 1 from a tree with uncommitted changes), unknown (1 run)."
    )


def _timed(end_s: int, train_s: float, device: str = "Dev") -> dict:
    """A record with only what the device time reads: it ended end_s after a fixed instant and
    trained train_s, on `device`."""
    stamp = datetime.fromtimestamp(1_800_000_000 + end_s, timezone.utc).isoformat()
    return {"timestamp": stamp, "timings": {"train_seconds": train_s}, "environment": {"device": device}}


def test_time_left_is_each_sections_device_time_per_run_times_its_runs_left():
    """The Incomplete line's estimate, by hand: noise's two runs held the device 10 s each (two
    10 s spans end to end, 20 s), heads' four runs 40 s together (four packed at once); a section
    with no runs yet is named, not guessed."""

    spent = {"noise": [_timed(10, 10), _timed(20, 10)], "heads": [_timed(100, 40)] * 4}
    per_run, machines = rp._per_run(spent), rp.record_machines([r for runs in spent.values() for r in runs])
    # noise 10 s a run x 30 + heads 10 s a run x 4 = 340 s
    assert rp._time_left({"noise": 30, "mqar": 5, "heads": 4}, per_run, machines) == (
        ", about 6 min of Dev at each section's device time per run so far (mqar not yet timed)"
    )
    assert rp._time_left({"noise": 3, "mqar": 0, "heads": 0}, per_run, machines) == (
        ", about 30 s of Dev at each section's device time per run so far"
    )
    assert rp._time_left({"noise": 0, "mqar": 5, "heads": 0}, per_run, machines) == ""  # nothing timed to go on
    # Runs from two machines: the estimate names the mix it comes from, not one machine.
    assert rp._time_left({"noise": 3, "mqar": 0, "heads": 0}, per_run, ["A", "B"]) == (
        ", about 30 s at each section's device time per run so far, over runs on A and B"
    )


def test_time_line_adds_what_the_runs_outside_the_protocol_held_the_device_for():
    """By hand: the protocol's two runs span 0-20 s (one sitting, 20 s); of the two runs outside
    it, one lies inside that span (adds nothing) and one, a day later, held another device 30 s."""

    spent = [_timed(10, 10), _timed(20, 10)]
    others = [_timed(15, 10), _timed(86_430, 30, "Old")]
    line = rp._time_line(spent, others)
    assert line.startswith("Device time: 20 s (0 min) of Dev in 1 sitting, from the records")
    assert line.endswith(
        " The 2 other runs in its records folders (earlier grids', the other edition's; in no table "
        "here) add 30 s of Dev and Old."
    )
    assert rp._time_line(spent, []) == rp.device_time_line(spent)
    assert rp._time_line([], others) == ""  # nothing of the protocol ran yet: no line


def test_heads_widths_name_a_base_at_another_head_dimension():
    """One d_model per H when the bases agree; where they differ, each d_model with its bases, the
    twin's arms under their base."""
    from slabench.runners.report_sections import _heads_widths

    def cell(mixer: str, h: int, d: int, pairs: int) -> dict:
        return {"mixer": mixer, "model_params": {"n_heads": h, "d_model": d}, "task_params": {"num_kv_pairs": pairs}}

    cells = [cell(m, 2, 16 * 2 if "retnet" in m else 32 * 2, 32) for m in ("gla", "sla-gla", "retnet", "sla-retnet")]
    cells += [cell("gdn", 2, 64, 32)] + [cell(m, 4, 128, 64) for m in ("gla", "sla-gla", "gdn")]
    assert _heads_widths(cells) == [(2, "32 (retnet) or 64 (gdn, gla)", 32), (4, "128", 64)]


def test_left_by_base_counts_each_bases_runs_to_come():
    """A base leaves `left_by_base` once both stages of every arm of it are stored (stage 2 at
    each cell's chosen lr); attention counts under its own name; the counts sum to `runs_left`."""
    _, specs = rp.section_specs("heads", "full")
    gla = [s for s in specs if s.model.name in ("gla", "sla-gla")]
    first = rp.lr_stage(gla, "full", 2)

    def rec(s) -> dict:
        return {"spec": s.to_dict(), "status": "ok", "metrics": {"val_acc": s.train.lr, "test_acc": 0.5}}

    # Per base: 5 arms x 3 H x (3 seeds x 3 lrs + 10 seeds) = 285 runs; 342 with the held gate;
    # retnet's 6 arms sweep a fourth lr: 6 x 3 x (3 x 4 + 10) = 396.
    assert rp.left_by_base(specs, "full", 2, {}) == {"gdn": 285, "gla": 342, "retnet": 396}
    stored = {s.key(): rec(s) for s in first}
    chosen = rp.chosen_lrs(list(stored.values()))
    second = rp.verdict_stage(gla, first, chosen)
    assert len(second) == 180 and all(s.train.lr == max(x.train.lr for x in first) for s in second)
    assert rp.left_by_base(specs, "full", 2, stored) == {"gdn": 285, "gla": 180, "retnet": 396}  # stage 2 to come
    stored |= {s.key(): rec(s) for s in second[:100]}
    assert rp.left_by_base(specs, "full", 2, stored) == {"gdn": 285, "gla": 80, "retnet": 396}
    stored |= {s.key(): rec(s) for s in second[100:]}
    assert rp.left_by_base(specs, "full", 2, stored) == {"gdn": 285, "retnet": 396}
    noise = rp.section_specs("noise", "full")[1]
    by_base = rp.left_by_base(noise, "full", 2, {})
    assert by_base["attention"] == 4 * (3 * 3 + 10) and sum(by_base.values()) == rp.runs_left(noise, "full", 2, {})


def test_incomplete_line_says_which_verdicts_the_runs_left_can_change():
    """noise: three bases cast neither, two to come: it stands; heads: gla against, retnet to come
    (retnet for would split it): it can change; gates can whenever runs are left."""
    from slabench.runners.report_sections import Section

    parts = {
        "noise": Section([], "inconclusive", {"gla": "neither", "gdn": "neither", "retnet": "neither"}),
        "mqar": Section([], "inconclusive", {}),
        "heads": Section([], "not supported", {"gla": "against"}),
    }

    def left(noise=("deltanet", "mamba2"), heads=("retnet",)) -> dict:  # section -> base -> runs left
        return {"noise": dict.fromkeys(noise, 5), "mqar": {"gla": 3, "gdn": 2}, "heads": dict.fromkeys(heads, 3)}

    assert rp._can_change(parts, left()) == (
        ". They can change the mqar, heads and gates verdicts; the noise verdict (inconclusive) stands whatever "
        "deltanet and mamba2 vote, given the votes cast (gdn neither, gla neither, retnet neither)."
    )
    parts["heads"] = Section([], "not supported", {"gla": "against", "gdn": "against"})
    assert rp._can_change(parts, left()).endswith(
        "; the heads verdict (not supported) stands whatever retnet votes, given the votes cast "
        "(gdn against, gla against)."
    )
    # With gla and gdn to come on noise (two for of three would win), noise can change too.
    assert rp._can_change(parts, left(noise=("gla", "gdn"))).startswith(
        ". They can change the noise, mqar and gates verdicts; the heads verdict"
    )
    none_stand = left(noise=("gla", "gdn"), heads=("retnet", "gdn"))
    assert rp._can_change(parts, none_stand) == "; the verdicts below can change when they are in."
    only_attention = rp._can_change(parts, {**none_stand, "noise": {"attention": 4}})
    assert only_attention.endswith(
        "the noise verdict (inconclusive) stands: its runs left are attention's, which no vote reads."
    )


def test_summary_votes_name_each_bases_vote():
    """The table of claims names each base's vote beside the verdict it makes ('-' for a claim no
    base votes on, or before any has voted); the tiny end-to-end report shows the column."""
    assert rp._votes({"retnet": "neither", "gla": "against"}) == "gla against, retnet neither"
    assert rp._votes({}) == rp._votes(None) == "-"
    # Beside it, which way each differing base's twin moved and what explains it: the answer an
    # inconclusive verdict can still carry.
    why = {"gla": "sla-gla ahead: gate (any gate)", "gdn": "sla-gdn behind: norm"}
    assert rp._explained(why) == "sla-gdn behind: norm; sla-gla ahead: gate (any gate)"
    assert rp._explained({}) == "no base differs" and rp._explained(None) == "-"


def test_plan_table_gives_each_bases_runs_time_and_whether_it_can_turn_the_verdict():
    """Per section and base: runs left, their device time at the section's time per run so far
    (none: not yet timed), and whether that base's votes alone, the others' as they stand, can
    change the verdict; attention votes for none."""
    from slabench.runners.report_sections import Section

    parts = {
        "noise": Section([], "inconclusive", {"gla": "neither", "gdn": "neither", "retnet": "neither"}),
        "mqar": Section([], "inconclusive", {}),
        "heads": Section([], "not supported", {"gla": "against", "gdn": "against", "retnet": "neither"}),
    }
    left = {"noise": {"mamba2": 30}, "mqar": {"attention": 4, "gla": 6}, "heads": {"gla": 12, "retnet": 3}}

    spent = {"noise": [_timed(10, 10), _timed(20, 10)], "heads": [_timed(100, 40)] * 4}  # 10 s a run each
    lines = rp._plan(parts, left, rp._per_run(spent))
    rows = [[c.strip() for c in r.strip("|").split("|")] for r in lines[2].splitlines()[2:]]
    assert rows == [
        ["noise", "mamba2", "30", "5 min", "no"],  # one vote more: 3 neither of 4 stays a non-majority
        ["mqar", "attention", "4", "not yet timed", "no: the reference, no vote"],
        ["mqar", "gla", "6", "not yet timed", "yes"],  # the only vote: for would carry it
        ["heads", "gla", "12", "2 min", "yes"],  # gla neither: 1 against of 3, not a majority
        ["heads", "retnet", "3", "30 s", "no"],  # two of three against whatever retnet votes
    ]
    assert rp._plan(parts, {s: {} for s in left}, rp._per_run(spent)) == []
    assert (
        "`slabench report sla --sections S --bases B --seeds 27` runs a row"
        in rp._plan(parts, left, rp._per_run(spent), seeds=27)[0]
    )


def test_plan_table_says_when_the_heads_lr_stage_leaves_a_base_untestable():
    """Claim 2 needs two H where X's mean accuracy is in [20%, 95%]: where X's lr-stage
    validation accuracy at its chosen lr is in range at fewer than two H, the heads row says the
    vote is most likely untestable; other arms' cells and other sections never add the note."""
    from slabench.config import ModelSpec
    from slabench.runners.report_sections import Section

    def cell(mixer, h, val, **opts):  # an lr-stage cell: the chosen lr 1e-3 at `val`, 3e-3 lower
        model = ModelSpec(mixer, tuple(sorted({"n_heads": h, **opts}.items())))
        return {"lr": 1e-3, "lrs": [1e-3, 3e-3], "val": {1e-3: val, 3e-3: val - 0.1}, "edge": False, "model": model}

    parts = {
        s: Section([], "inconclusive", {"gla": "against", "retnet": "neither"}) for s in ("noise", "mqar", "heads")
    }
    left = {"noise": {"gdn": 5}, "mqar": {}, "heads": {"gdn": 5}}
    ceiling = {  # gdn at the ceiling at two H, in range at one; its layer-norm arm in range (not X)
        ("t", "a"): cell("gdn", 2, 0.996),
        ("t", "b"): cell("gdn", 4, 0.96),
        ("t", "c"): cell("gdn", 8, 0.5),
        ("t", "d"): cell("gdn", 4, 0.5, output_norm="layer"),
    }
    rows = rp._plan(parts, left, {}, ceiling)[2].splitlines()[2:]
    assert rows[0].split("|")[5].strip() == "yes"  # noise: no window rule
    assert rows[1].split("|")[5].strip() == (
        "yes, though most likely untestable: gdn's accuracy is in [20%, 95%] at fewer than the two H its vote "
        "needs (H 2 99.6% lr-stage validation; H 4 96.0% lr-stage validation; H 8 50.0% lr-stage validation; an "
        "H's test accuracy decides from 3 verdict seeds on)"
    )
    in_range = {**ceiling, ("t", "b"): cell("gdn", 4, 0.95)}  # 95% is in range: two H now
    assert rp._plan(parts, left, {}, in_range)[2].splitlines()[3].split("|")[5].strip() == "yes"
    assert rp._plan(parts, left, {}, {})[2].splitlines()[3].split("|")[5].strip() == "yes"  # no lr stage yet

    # Verdict seeds: shown as they come; from 3 at an H their mean test accuracy replaces the lr
    # stage's there (the rule reads test accuracy). At H 4: 0.5 on 2 seeds leaves the forecast,
    # a third at 0.8 (mean 0.6) puts H 4 in range beside H 8: two H, the note goes.
    _, specs = rp.section_specs("heads", "full")
    params = lambda s: dict(s.model.params)  # noqa: E731
    at_h4 = [s for s in specs if rp.arm(s.model.name, params(s)) == "gdn" and params(s)["n_heads"] == 4]

    def rec(spec, acc: float) -> dict:
        return {"spec": spec.to_dict(), "status": "ok", "metrics": {"test_acc": acc}}

    two = [rec(at_h4[0], 0.5), rec(at_h4[1], 0.5), rec(at_h4[1], 0.8) | {"status": "failed"}]
    row = rp._plan(parts, left, {}, ceiling, two)[2].splitlines()[3].split("|")[5].strip()
    assert "H 4 96.0% lr-stage validation, 50.0% test on 2 verdict seeds;" in row  # a failed run scores nothing
    three = two[:2] + [rec(at_h4[2], 0.8)]
    assert rp._plan(parts, left, {}, ceiling, three)[2].splitlines()[3].split("|")[5].strip() == "yes"


def test_docs_state_each_sections_protocol_size():
    """docs/report.md's table of sections gives each full grid's protocol runs (both stages) and
    their sum, as `runs_left` counts them before any run, and `--help` the sum: neither can drift
    from the grids."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "report.md").read_text()
    sizes = {s: rp.runs_left(rp.section_specs(s, "full")[1], "full", 2, {}) for s in rp.GRID_SECTIONS}
    for section, n in sizes.items():
        assert re.search(rf"^\| {section} \| `report-{section}-full` \|.*\| {n} \|$", text, re.M), section
    assert f"{sum(sizes.values())} runs in all." in text
    help_text = " ".join(CliRunner().invoke(main, ["report", "sla", "--help"]).output.split())
    assert f"({sum(sizes.values())} runs" in help_text


@pytest.mark.parametrize("paper", ["sla", "zoology"])
def test_from_records_without_records_stops_before_writing(tmp_path, paper):
    """A fresh clone's default --out holds no records: --from-records says so in one line and
    exits 2, leaving the committed report as it was (it used to rewrite it from 0 runs)."""
    md = tmp_path / "report.md"
    md.write_text("the committed report\n")
    (tmp_path / "runs" / "noise" / "records").mkdir(parents=True)  # an empty records folder is none too
    args = ["report", paper, "--from-records", "--out", str(tmp_path / "runs"), "--report", str(md)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    said = " ".join(result.output.split())
    assert f"--out '{tmp_path / 'runs'}' holds no run records" in said and "without --from-records runs them" in said
    assert "Traceback" not in said and len(result.output.strip().splitlines()) == 1
    assert md.read_text() == "the committed report\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "report.md",
        "runs",
    ]


def test_from_records_with_some_sections_only_still_reports(tmp_path):
    """Records for one section only (the others not run yet) still make a report; a malformed record
    among them is named and skipped."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out, md = tmp_path / "runs", tmp_path / "sla-report.md"
    shutil.copytree(root / "leaderboards" / "records" / "sla-report" / "mqar", out / "mqar")
    (out / "mqar" / "records" / f"{'0' * 16}.json").write_text(json.dumps({"key": "0" * 16, "spec": "x"}))
    args = ["report", "sla", "--from-records", "--scale", "full", "--quiet", "--out", str(out), "--report", str(md)]
    result = CliRunner().invoke(main, args + ["--speed-dir", str(root / "leaderboards" / "speed")])
    assert result.exit_code == 0, result.output
    assert (
        f'corrupt record {out / "mqar" / "records" / ("0" * 16 + ".json")}: spec is "x", not an object; skipped'
        in result.stderr
    )
    text = md.read_text()
    assert all(t in text for t in SECTION_TITLES)


def test_failed_lr_stage_runs_are_counted_and_listed():
    """An lr-stage run that failed leaves no verdict-stage run behind it (its cell may have none),
    so the report counts and lists failures over every run the protocol ran, both stages."""
    from pathlib import Path

    from slabench.config import RunSpec
    from slabench.runners.records import load_records

    heads = list(
        load_records(Path(__file__).resolve().parent.parent / "leaderboards/records/sla-report/heads").records.values()
    )
    verdict = heads[:5]
    crashed = {**heads[5], "status": "failed", "error": "RuntimeError: boom\nmore", "metrics": {}}
    lines = "\n".join(rp._runs_lines({"heads": verdict + [crashed]}, verdict, []))
    model = RunSpec.from_dict(crashed["spec"]).model.label()
    assert "Failed runs (left out of every figure):" in lines
    lr = RunSpec.from_dict(crashed["spec"]).train.lr
    assert f"| heads | {model} | {crashed['seed']} | {lr:g} | RuntimeError: boom |" in lines


def test_cost_reads_the_latest_gpu_sweep_before_any_cpu_one(tmp_path):
    """A CPU sweep (e.g. `sweep --quick` to try it) written after the GPU's flipped claim 4 from
    supported to inconclusive; the GPU's latest stands, a CPU sweep counts only alone."""
    from slabench.runners.report_data import latest_sweep

    def sweep(name: str, device: str, timestamp: str) -> None:
        data = {"timestamp": timestamp, "config": {"device": device}, "summary": {"sla_overhead": []}}
        (tmp_path / f"{name}.json").write_text(json.dumps(data))

    sweep("cpu", "cpu", "2026-01-03")
    assert latest_sweep(tmp_path)[0].name == "cpu.json"
    sweep("h100", "cuda", "2026-01-01")
    assert latest_sweep(tmp_path)[0].name == "h100.json"
    sweep("h200", "cuda:0", "2026-01-02")
    assert latest_sweep(tmp_path)[0].name == "h200.json"
    (tmp_path / "other.json").write_text("{}")  # not a sweep: ignored
    assert latest_sweep(tmp_path)[0].name == "h200.json"

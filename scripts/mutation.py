"""Mutation check: plant plausible bugs in the core modules, one at a time, and see whether the
tests that cover each module catch them.

Each mutant is a source edit (file, original snippet, mutated snippet, why it matters). The
script copies the working tree (tracked and untracked, non-ignored files) to a temporary
directory, checks that the mapped tests pass there unmutated, then for each mutant applies the
edit, runs the mapped test files with `-x` and restores the file. A mutant is killed when the
tests fail (or time out), survives when they pass. Equivalent mutants (edits that cannot
change behaviour) are run too but left out of the score; each says why it is equivalent.

    python scripts/mutation.py                   # all mutants, writes docs/mutation.md
    python scripts/mutation.py --only dispatch   # mutants whose id contains 'dispatch'; no doc written
    python scripts/mutation.py --list            # the mutants and their tests, nothing run

Not part of the default test run: a full pass takes tens of minutes on a 2-core machine.
An original snippet that is no longer found exactly once in its file is an error: update the
list when the code it mutates changes.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 900  # per mutant; a mutant that hangs the tests counts as killed

# Module (file or folder prefix) -> the test files that must catch a bug in it, fastest first.
TESTS = {
    "slabench/tasks/__init__.py": [
        "tests/test_cli.py::test_sizes_past_any_machine_are_one_line",
        "tests/test_tasks.py",
    ],
    "slabench/tasks/": ["tests/test_tasks.py"],
    "slabench/runners/train.py": ["tests/test_plumbing.py", "tests/test_train.py"],
    "slabench/runners/step.py": ["tests/test_plumbing.py", "tests/test_train.py"],
    "slabench/runners/records.py": ["tests/test_records.py", "tests/test_grid.py"],
    "slabench/runners/grid.py": [
        "tests/test_plugins.py::test_a_mixer_only_this_process_can_load_stops_a_pool_before_any_run",
        "tests/test_records.py",
        "tests/test_grid.py",
    ],
    "slabench/kernels/dispatch.py": ["tests/test_dispatch.py", "tests/test_kernels.py"],
    "slabench/kernels/fold.py": ["tests/test_batched.py"],
    "slabench/kernels/sla_gate/reference.py": [
        "tests/test_plumbing.py",
        "tests/test_kernels.py",
        "tests/test_mixers.py",
    ],
    "slabench/models/linear_base.py": ["tests/test_plumbing.py", "tests/test_mixers.py"],
    "slabench/models/sla.py": ["tests/test_plumbing.py", "tests/test_mixers.py"],
    "slabench/models/arms.py": [
        "tests/test_mixers.py::test_every_report_arm_label_reads_back_to_its_mixer_and_options",
        "tests/test_sweep.py::test_a_bad_arm_is_one_line_naming_what_is_allowed",
    ],
    "slabench/runners/sweep/": ["tests/test_sweep.py"],
    "slabench/runners/compare.py": ["tests/test_compare.py::test_arms_of_one_mixer_compare_as_models_of_one_size"],
    "slabench/kernels/gdn_gates/": ["tests/test_kernels.py"],
    "slabench/kernels/gla/short.py": [
        "tests/test_triton_interpreter.py::test_project_triton_kernels_match_float64_references_in_interpreter"
    ],
    "slabench/kernels/delta_rule/fused.py": [
        "tests/test_triton_interpreter.py::test_project_triton_kernels_match_float64_references_in_interpreter"
    ],
    "slabench/kernels/sla_gate/fused.py": [
        "tests/test_triton_interpreter.py::test_project_triton_kernels_match_float64_references_in_interpreter"
    ],
    "slabench/kernels/embedding/fused.py": [
        "tests/test_triton_interpreter.py::test_embedding_backward_kernel_matches_float64_reference_in_interpreter"
    ],
    "slabench/kernels/conv/fused.py": [
        "tests/test_triton_interpreter.py::test_short_conv_kernel_matches_float64_reference_in_interpreter"
    ],
    "slabench/kernels/norm/fused.py": [
        "tests/test_triton_interpreter.py::test_l2norm_kernel_matches_float64_reference_in_interpreter",
        "tests/test_triton_interpreter.py::test_rms_norm_gated_kernel_matches_float64_reference_in_interpreter",
    ],
    # Statistics and decision rules (STATISTICS_MUTANTS below): the rule tests only, since the
    # files' end-to-end tests retrain the ci preset or the tiny report, minutes per mutant.
    "slabench/runners/stats.py": [
        "tests/test_stats.py",
        "tests/test_leaderboard.py",
        "tests/test_compare.py::test_verdict_by_the_paired_test",
        "tests/test_report_rules.py::test_power_and_stratified_test_hand_computed",
        "tests/test_report_rules.py::test_a_base_no_arm_lifts_off_the_floor_is_undecided_not_against",
    ],
    "slabench/runners/leaderboard.py": ["tests/test_leaderboard.py"],
    "slabench/runners/plots.py": [
        "tests/test_leaderboard.py::test_a_plot_of_many_series_gets_a_panel_per_mixer",
        "tests/test_leaderboard.py::test_points_of_more_mixers_than_colours_still_differ",
    ],
    "slabench/runners/report_data.py": [
        "tests/test_report.py::test_cost_reads_the_latest_gpu_sweep_before_any_cpu_one",
    ],
    "slabench/runners/execute.py": ["tests/test_cli.py::test_dry_run_plans_without_training"],
    "slabench/plugins.py": ["tests/test_plugins.py"],
    "slabench/runners/regression.py": [
        "tests/test_regression.py::test_regression_rule_on_hand_built_cells",
        "tests/test_regression.py::test_check_rows_missing_and_new",
    ],
    "slabench/config.py": [
        "tests/test_cli.py::test_train_settings_from_the_command_line_replace_the_grids",
        "tests/test_config.py",
    ],
    "slabench/cli/options.py": [
        "tests/test_cli.py::test_unwritable_outputs_are_one_line_before_anything_runs",
        "tests/test_zoology.py::test_tiny_report_runs_end_to_end_and_rebuilds_from_records",
    ],
    "slabench/cli/kernels.py": ["tests/test_cli.py::test_a_sweep_whose_every_case_failed_keeps_the_last_sweeps_tables"],
    "slabench/runners/report.py": [
        "tests/test_report.py::test_more_verdict_seeds_extend_the_grids_past_their_own",
        "tests/test_report.py::test_lr_is_chosen_on_validation_and_the_verdict_runs_never_saw_it",
        "tests/test_report.py::test_code_line_names_each_commit_and_its_runs_from_a_dirty_tree",
        "tests/test_report.py::test_time_left_is_each_sections_device_time_per_run_times_its_runs_left",
        "tests/test_report.py::test_time_line_adds_what_the_runs_outside_the_protocol_held_the_device_for",
        "tests/test_report.py::test_left_by_base_counts_each_bases_runs_to_come",
        "tests/test_report.py::test_plan_table_gives_each_bases_runs_time_and_whether_it_can_turn_the_verdict",
        "tests/test_report.py::test_plan_table_says_when_the_heads_lr_stage_leaves_a_base_untestable",
        "tests/test_report.py::test_incomplete_line_says_which_verdicts_the_runs_left_can_change",
    ],
    "slabench/runners/report_sections.py": [
        "tests/test_report.py::test_lr_table_marks_an_edge_lr_below_the_ceiling_apart_from_one_at_it",
        "tests/test_report.py::test_heads_widths_name_a_base_at_another_head_dimension",
        "tests/test_report_rules.py::test_summary_names_which_way_a_base_differs_and_why",
        "tests/test_report_rules.py::test_cost_verdict_rule",
        "tests/test_report_rules.py::test_cost_names_the_kernel_paths_the_newest_runs_took_that_the_sweep_did_not_time",
        "tests/test_report_rules.py::test_a_base_with_the_twins_norm_explains_its_difference_without_norm_arms",
    ],
    "slabench/runners/report_rules.py": [
        "tests/test_report_rules.py::test_a_base_no_arm_lifts_off_the_floor_is_undecided_not_against",
        "tests/test_report_rules.py::test_explain_names_the_arm_behind_the_difference",
        "tests/test_report_rules.py::test_majority_needs_more_than_half_of_the_votes",
        "tests/test_report_rules.py::test_noise_rule_needs_a_gain_that_grows_with_noise",
        "tests/test_report_rules.py::test_gates_verdict_rule_on_the_peaked_share",
        "tests/test_report_rules.py::test_heads_verdict_rule",
        "tests/test_report_rules.py::test_heads_explain_names_the_arm_behind_the_slope",
        "tests/test_report_rules.py::test_settled_when_no_votes_still_to_come_can_turn_the_verdict",
        "tests/test_report_rules.py::test_summary_names_which_way_a_base_differs_and_why",
        "tests/test_report_rules.py::test_cost_reads_the_registered_pairs_and_shows_the_gate_alone_where_arms_were_timed",
    ],
}


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    original: str
    mutated: str
    why: str  # the bug it stands for
    equivalent: str = ""  # non-empty: why no test can tell it apart (left out of the score)


M = Mutant
CORE_MUTANTS = [
    # --- tasks ---------------------------------------------------------------------------------
    M(
        "mqar-labels-shifted",
        "slabench/tasks/mqar.py",
        "labels.scatter_(1, qpos, values)",
        "labels.scatter_(1, qpos + 1, values)",
        "the answer is scored one position after its query",
    ),
    M(
        "mqar-pairs-swapped",
        "slabench/tasks/mqar.py",
        "torch.stack([keys, values], dim=2)",
        "torch.stack([values, keys], dim=2)",
        "context written value-then-key",
    ),
    M(
        "mqar-query-is-value",
        "slabench/tasks/mqar.py",
        "inputs.scatter_(1, qpos, keys)",
        "inputs.scatter_(1, qpos, values)",
        "the query shows the value, not the key",
    ),
    M(
        "mqar-gap-law",
        "slabench/tasks/sampling.py",
        "p = power_a * gaps ** (power_a - 1)",
        "p = power_a * gaps ** power_a",
        "query gaps drawn from the wrong power law",
    ),
    M(
        "ar-query-pair",
        "slabench/tasks/ar.py",
        "labels[:, -1] = values.gather(1, which).squeeze(1)",
        "labels[:, -1] = values.gather(1, (which + 1) % K).squeeze(1)",
        "the label is another pair's value",
    ),
    M(
        "distinct-redraw-index",
        "slabench/tasks/sampling.py",
        "redo = dup if redo is None else redo[dup]",
        "redo = dup",
        "rows redrawn a second time land on the wrong rows: duplicate keys survive",
    ),
    M(
        "alias-table",
        "slabench/tasks/sampling.py",
        "scaled[big] -= 1 - scaled[s]",
        "scaled[big] -= scaled[s]",
        "Walker's alias table built wrong: gap (depth) distribution skewed",
    ),
    M(
        "first-appearance-last",
        "slabench/tasks/sampling.py",
        "new[:, 1:] = values[:, 1:] != values[:, :-1]",
        "new[:, :-1] = values[:, 1:] != values[:, :-1]",
        "the last appearance of a value taken as its first",
    ),
    M(
        "first-appearance-descending",
        "slabench/tasks/sampling.py",
        "values, order = stream.sort(dim=1, stable=True)",
        "values, order = stream.sort(dim=1, stable=True, descending=True)",
        "flipped sort order",
        equivalent="a stable sort keeps equal values in position order either way, so each run of equal values "
        "still starts at its earliest position",
    ),
    # --- train ---------------------------------------------------------------------------------
    M(
        "val-uses-test-seed",
        "slabench/runners/train.py",
        "val = task.sample(cfg.val_size, seeded_generator(VAL_SEED, device), device)",
        "val = task.sample(cfg.val_size, seeded_generator(TEST_SEED, device), device)",
        "lr choice and early stopping see the test set",
    ),
    M(
        "early-stop-on-test",
        "slabench/runners/train.py",
        "v = evaluate(model, val, autocast)",
        "v = evaluate(model, test, autocast)",
        "checkpoint and early stop chosen on the test set",
    ),
    M(
        "train-seed-ignored",
        "slabench/runners/train.py",
        "batches, train_rows = training_batches(task, cfg, spec.seed, device, held_out, mult)",
        "batches, train_rows = training_batches(task, cfg, 0, device, held_out, mult)",
        "every seed trains on the same batches: seeds are not independent",
    ),
    M(
        "best-checkpoint-dropped",
        "slabench/runners/train.py",
        "model.load_state_dict(ended.best_state)",
        "pass",
        "the test score is of the last weights, not the best on validation",
    ),
    M(
        "stop-at-strict",
        "slabench/runners/train.py",
        'if cfg.stop_at and v["acc"] >= cfg.stop_at:',
        'if cfg.stop_at and v["acc"] > cfg.stop_at:',
        "a run reaching the target accuracy trains on",
    ),
    M(
        "eval-macro-accuracy",
        "slabench/runners/train.py",
        '"acc": float(correct[sel].sum() / scored[sel].sum().clamp(min=1)),',
        '"acc": float((correct[sel] / scored[sel].clamp(min=1)).mean()),',
        "per-row mean of accuracies instead of micro accuracy over scored positions",
    ),
    M(
        "eval-exact-any",
        "slabench/runners/train.py",
        '"exact": float((correct[sel] == scored[sel]).double().mean()),',
        '"exact": float((correct[sel] > 0).double().mean()),',
        "exact match counts a row with one right answer",
    ),
    M(
        "overlap-count",
        "slabench/runners/train.py",
        "float(seen_test.double().mean())",
        "float(seen_test.double().sum())",
        "train/test overlap reported as a count, not a fraction",
    ),
    M(
        "scored-position-dropped",
        "slabench/runners/step.py",
        "positions = labels.ne(IGNORE).float().topk(k, dim=-1, sorted=False).indices",
        "positions = labels.ne(IGNORE).float().topk(k - 1, dim=-1, sorted=False).indices",
        "training and evaluation gather one scored position per row too few",
    ),
    M(
        "mqar-scored-bound-low",
        "slabench/tasks/mqar.py",
        "return self.num_kv_pairs  # each key queried once",
        "return self.num_kv_pairs - 1  # each key queried once",
        "the task's bound leaves a query out of training's loss",
    ),
    M(
        "warmup-skipped",
        "slabench/runners/step.py",
        "return cfg.lr * progress / cfg.warmup",
        "return cfg.lr",
        "no learning-rate warmup",
    ),
    M(
        "wsd-decay",
        "slabench/runners/step.py",
        "return cfg.lr * (1 - progress) / WSD_DECAY",
        "return cfg.lr * (1 - progress)",
        "wsd decays from a fifth of the peak",
    ),
    M(
        "decay-on-vectors",
        "slabench/runners/step.py",
        "decay = [p for p in model.parameters() if p.dim() >= 2]",
        "decay = [p for p in model.parameters() if p.dim() >= 1]",
        "weight decay on norms and biases",
    ),
    M(
        "overlap-fold-kept",
        "slabench/runners/train.py",
        "            train_hashes.clear()\n",
        "",
        "train hashes kept after folding",
        equivalent="isin against all training rows so far marks the same test rows (it only costs time)",
    ),
    M(
        "eval-nan-scored",
        "slabench/runners/train.py",
        'if not v["finite"]:',
        "if False:",
        "a model with NaN logits at evaluation is scored (argmax reads class 0) instead of diverged",
    ),
    # --- records -------------------------------------------------------------------------------
    M(
        "write-not-atomic",
        "slabench/runners/records.py",
        '    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".partial")\n'
        "    with os.fdopen(fd, mode) as f:\n",
        "    tmp = path\n    with open(path, mode) as f:\n",
        "a write that dies half-way leaves a truncated record and loses the old one",
    ),
    M(
        "write-no-rename",
        "slabench/runners/records.py",
        "    os.replace(tmp, path)\n",
        "",
        "the record stays in its temporary file: finished runs are never found",
    ),
    M(
        "check-key-dropped",
        "slabench/runners/records.py",
        'if key is not None and record["key"] != key:',
        "if key is not None and False:",
        "a record filed under another key is trusted",
    ),
    M(
        "check-ok-needs-acc-dropped",
        "slabench/runners/records.py",
        'return f"status ok but no {name} in {part}"',
        "continue",
        "an ok record without a score is trusted",
    ),
    M(
        "check-field-types-dropped",
        "slabench/runners/records.py",
        "        if not _is(record[name], types):\n            return _wrong(name, record[name], types)\n",
        "",
        "a record with a field of the wrong type reaches the tables and crashes them",
    ),
    M(
        "newer-record-overwritten",
        "slabench/runners/grid.py",
        "if NEWER_SCHEMA in reason]",
        "if False]",
        "a newer slabench's record is redone, its result overwritten",
    ),
    M(
        "pack-wins-over-loose",
        "slabench/runners/records.py",
        '            found[record["key"]] = record\n            loose.append(path)',
        '            found.setdefault(record["key"], record)\n            loose.append(path)',
        "a run redone after the pack is read as its old packed record",
    ),
    M(
        "pack-keeps-timestamp",
        "slabench/runners/records.py",
        "compresslevel=9, mtime=0)",
        "compresslevel=9)",
        "the same records pack to different bytes at each pack (noise in every commit)",
    ),
    M(
        "pack-repacks-unreadable-pack",
        "slabench/runners/records.py",
        "for path, reason in read.corrupt if path == pack]",
        "for path, reason in read.corrupt if False]",
        "an unreadable pack is overwritten by the loose records alone: the packed ones are lost",
    ),
    M(
        "replace-as-rename",
        "slabench/runners/records.py",
        "os.replace(tmp, path)",
        "os.rename(tmp, path)",
        "rename instead of replace",
        equivalent="on POSIX os.rename also replaces the target atomically within one directory (the "
        "rename-failure test injects its failure into os.replace, so it fails this mutant all the same)",
    ),
    # --- grid ----------------------------------------------------------------------------------
    M(
        "grid-empty-list-runs",
        "slabench/config.py",
        "require(not (isinstance(value, list) and not value), where,",
        "require(True, where,",
        "a grid value list left empty expands to no runs and rewrites the leaderboard from none",
    ),
    M(
        "retry-all",
        "slabench/runners/grid.py",
        'if not (retry_failed and r["status"] == "failed")',
        'if not (retry_failed and r["status"] != "ok")',
        "--retry-failed also reruns diverged runs (a result)",
    ),
    M(
        "plan-swapped",
        "slabench/runners/grid.py",
        "(recorded if s.key() in done_keys else pending).append(s)",
        "(pending if s.key() in done_keys else recorded).append(s)",
        "resume reruns finished runs, skips new ones",
    ),
    M(
        "failure-not-isolated",
        "slabench/runners/grid.py",
        "        return failed_record(spec, message, device, traceback.format_exc())",
        "        raise\n        return failed_record(spec, message, device, traceback.format_exc())",
        "one failing run kills the grid",
    ),
    M(
        "record-not-written",
        "slabench/runners/grid.py",
        "        write_record(Path(out), record)\n        records.append(record)",
        "        records.append(record)",
        "the grid's workers write no records",
    ),
    # --- dispatch engine -----------------------------------------------------------------------
    M(
        "dispatch-or",
        "slabench/kernels/dispatch.py",
        "if not (err_out <= tol and err_grad <= tol):",
        "if not (err_out <= tol or err_grad <= tol):",
        "a path with wrong gradients (or outputs) is accepted",
    ),
    M(
        "rel-rms-cancels",
        "slabench/kernels/dispatch.py",
        "return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()",
        "return ((a - b).sum().abs() / b.norm().clamp_min(1e-30)).item()",
        "errors of opposite sign cancel: every kernel comparison passes",
    ),
    M(
        "rel-rms-absolute",
        "slabench/kernels/dispatch.py",
        "return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()",
        "return ((a - b).norm()).item()",
        "absolute error: tolerances depend on the scale of the data",
    ),
    M(
        "grad-best-not-worst",
        "slabench/kernels/dispatch.py",
        "err_grad = max(rel_rms(a, b) for a, b in zip(grads, ref_grads))",
        "err_grad = min(rel_rms(a, b) for a, b in zip(grads, ref_grads))",
        "one right gradient hides the wrong ones",
    ),
    M(
        "probe-error-escapes",
        "slabench/kernels/dispatch.py",
        "        except Exception as e:\n            reasons.append(",
        "        except ValueError as e:\n            reasons.append(",
        "a fast path that crashes crashes the run instead of falling back",
    ),
    M(
        "tolerance-fixed",
        "slabench/kernels/dispatch.py",
        "tol = PROBE_TOL.get(dtype, 5e-3)",
        "tol = 5e-3",
        "bf16 paths judged at the float32 tolerance",
    ),
    M(
        "choice-ignores-dims",
        "slabench/kernels/dispatch.py",
        "key = (device.type, dtype, _forced(), dims)",
        "key = (device.type, dtype, _forced())",
        "a path probed at one head width is used at another",
    ),
    M(
        "only-ignored",
        "slabench/kernels/dispatch.py",
        "if name in op.only and (why := op.only[name](dims)):",
        "if False and (why := op.only[name](dims)):",
        "a shape-bound kernel used outside its shapes",
    ),
    M(
        "paths-not-recorded",
        "slabench/kernels/dispatch.py",
        "    _used.setdefault(op_name, set()).add(name)\n",
        "",
        "records do not say which kernel ran",
    ),
    M(
        "forced-ignored",
        "slabench/kernels/dispatch.py",
        'if key[2] == "reference":',
        'if key[2] == "forced":',
        "SLABENCH_KERNEL_PATH=reference does not force the reference",
    ),
    # --- folds (kernel ops under vmap) ----------------------------------------------------------
    M(
        "fold-norm-weight-dropped",
        "slabench/kernels/fold.py",
        "    return y * weight.view(weight.shape[0], *[1] * (x.dim() - 2), -1).to(y.dtype)  # each member's weight",
        "    return y",
        "a fold's gated norms run without their members' weights",
    ),
    M(
        "fold-conv-channels-interleaved",
        "slabench/kernels/fold.py",
        "x.permute(1, 2, 0, 3).reshape(B, T, N * C)",
        "x.permute(1, 2, 3, 0).reshape(B, T, N * C)",
        "a fold's short conv applies one member's weights to another member's channels",
    ),
    M(
        "fold-member-weights-skipped",
        "slabench/kernels/fold.py",
        "    fold_members = MEMBER_WEIGHT_OPS.get(op_name)",
        "    fold_members = None",
        "a fold runs the weighted ops' reference inside vmap, not their kernels",
    ),
    # --- SLA gate wiring -----------------------------------------------------------------------
    M(
        "k-gate-reads-q",
        "slabench/models/linear_base.py",
        "gate(self.k_gate, k_raw, k)",
        "gate(self.k_gate, q_raw, k)",
        "the key gate reads the query",
    ),
    M(
        "q-gate-scales-k",
        "slabench/models/linear_base.py",
        "gate(self.q_gate, q_raw, q), k if",
        "gate(self.q_gate, q_raw, k), k if",
        "the query gate scales the key",
    ),
    M(
        "gates-read-mapped",
        "slabench/models/linear_base.py",
        "return g(raw.reshape(B, T, -1), None if mapped is raw else mapped)",
        "return g(mapped.reshape(B, T, -1), None if mapped is raw else mapped)",
        "gates read phi(q), phi(k) instead of the raw q, k",
    ),
    M(
        "l2-gates-read-normalised",
        "slabench/models/linear_base.py",
        "q = self.q_gate(q_raw.reshape(B, T, -1), None, l2_eps=eps)",
        "q = self.q_gate(kernels.l2norm(q_raw, eps=eps).reshape(B, T, -1), None, l2_eps=eps)",
        "GDN's query gate reads the L2-normalised q, blind to its magnitude",
    ),
    M(
        "l2-gates-skip-the-norm",
        "slabench/models/linear_base.py",
        "return q, self.k_gate(k_raw.reshape(B, T, -1), None, l2_eps=eps)",
        "return q, self.k_gate(k_raw.reshape(B, T, -1), None)",
        "GDN's key gate scales the raw key: the delta rule's keys lose their L2 norm",
    ),
    M(
        "gate-source-x-ignored",
        "slabench/models/linear_base.py",
        "return self.q_gate(x, q), k if self.k_gate is None else self.k_gate(x, k)",
        "return self.q_gate(x, q), k",
        "the x-source ablation drops the key gate",
    ),
    M(
        "gate-softmax-over-time",
        "slabench/kernels/sla_gate/reference.py",
        "gates = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)) / tau, dim=-1)",
        "gates = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)) / tau, dim=-2)",
        "heads do not compete: softmax over time",
    ),
    M(
        "gate-temperature-ignored",
        "slabench/kernels/sla_gate/reference.py",
        "gates = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)) / tau, dim=-1)",
        "gates = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)",
        "gate_temp has no effect",
    ),
    M(
        "head-gate-no-bias",
        "slabench/models/sla.py",
        "src, x, self.down.weight, self.up.weight, self.up.bias, self.temp, self.kind, l2_eps=l2_eps",
        "src, x, self.down.weight, self.up.weight, 0 * self.up.bias, self.temp, self.kind, l2_eps=l2_eps",
        "the gate's learned head bias is dropped",
    ),
    M(
        "held-gate-at-one",
        "slabench/models/sla.py",
        "return x * (self.scale / self.n_heads)",
        "return x * self.scale",
        "the held (constant) gate is 1, not the 1/H the learned gates start at: the control is the base",
    ),
    M(
        "recall-keys-from-fillers",
        "slabench/models/sla.py",
        "torch.isin(tagged, tagged[query])",
        "torch.isin(tagged, tagged[~query])",
        "the gates' recall positions taken from the tokens the queries do not hold",
    ),
    M(
        "gdn-decay-relu",
        "slabench/kernels/gdn_gates/reference.py",
        "F.softplus(a.to(wide) + dt_bias.to(wide))",
        "F.relu(a.to(wide) + dt_bias.to(wide))",
        "Gated DeltaNet's decay without its softplus: no decay wherever a + dt_bias < 0 (everywhere at init)",
    ),
    M(
        "delta-ut-inverse-one-doubling-short",
        "slabench/kernels/delta_rule/fused.py",
        "for i in tl.static_range(1, LOG2_C):",
        "for i in tl.static_range(1, LOG2_C - 1):",
        "the UT inverse stops at blocks of C/2: the chunk's halves never see each other's writes",
    ),
    M(
        "sla-gate-l2-grad-unprojected",
        "slabench/kernels/sla_gate/fused.py",
        "dyv = (dyv - n * tl.sum(dyv * n, axis=1)[:, None]) * rs",
        "dyv = dyv * rs",
        "the L2 gate's src gradient skips the norm's projection (the gradient of x/|x| as if |x| were fixed)",
    ),
    M(
        "delta-segment-scan-untransposed",
        "slabench/kernels/delta_rule/fused.py",
        "if REVERSE:\n                Pm = tl.trans(Pm)",
        "if not REVERSE:\n                Pm = tl.trans(Pm)",
        "the segmented walks chain the state's segment maps transposed (and the gradient's not)",
    ),
    M(
        "delta-segment-gradient-map-local-only",
        "slabench/kernels/delta_rule/fused.py",
        "tl.dot(tl.trans(wc), tl.dot(kd, Qm, input_precision=PREC) + dvl, input_precision=PREC)",
        "tl.dot(tl.trans(wc), dvl, input_precision=PREC)",
        "a segment's gradient map drops the state's path through the delta rule's write",
    ),
    M(
        "gla-short-q-dq-every-block",
        "slabench/kernels/gla/short.py",
        "db = tl.where(first, qc * dqc, 0.0) - kc * dkc",
        "db = qc * dqc - kc * dkc",
        "with values in blocks, the decay's gradient counts q dq once per block",
    ),
    M(
        "gla-short-dq-first-block-only",
        "slabench/kernels/gla/short.py",
        "dq32 = dq32.sum(0) if nvb > 1 else dq32[0]",
        "dq32 = dq32[0]",
        "with values in blocks, dq keeps the first block's share only",
    ),
    M(
        "embedding-programs-overlap",
        "slabench/kernels/embedding/fused.py",
        "n = (tl.program_id(0) * steps + s) * BN",
        "n = (tl.program_id(0) + s) * BN",
        "programs walking several token blocks start one block apart: blocks counted twice, others never",
    ),
    M(
        "l2norm-head-stride",
        "slabench/kernels/norm/fused.py",
        "h.to(tl.int64) * sx_h",
        "h.to(tl.int64) * D",
        "the l2norm assumes heads D apart, which holds for q and k but not every strided input",
    ),
    M(
        "rms-norm-weight-grad-unnormalised",
        "slabench/kernels/norm/fused.py",
        "acc += da * n  # masked rows add 0",
        "acc += da  # masked rows add 0",
        "the norm's weight gradient sums the output gradient without the normalised input",
    ),
    M(
        "conv-split-dx-unshifted",
        "slabench/kernels/conv/fused.py",
        "d = tl.load(da + u[:, None] * C + c[None, :], mask=m, other=0.0)",
        "d = tl.load(da + t[:, None] * C + c[None, :], mask=m, other=0.0)",
        "the two-kernel conv backward reads da at its own rows instead of the later outputs each tap feeds",
    ),
    M(
        "conv-dw-share-wrong-tap",
        "slabench/kernels/conv/fused.py",
        "tl.store(dw + (tl.program_id(0) * C + c) * W + i, tl.sum(da * xi, axis=0), mask=c < C)",
        "tl.store(dw + (tl.program_id(0) * C + c) * W + (W - 1 - i), tl.sum(da * xi, axis=0), mask=c < C)",
        "the conv backward files each tap's weight gradient under the mirrored tap",
    ),
    M(
        "rms-norm-steps-ignored",
        "slabench/kernels/norm/fused.py",
        "r = (tl.program_id(0) * steps + s) * BR",
        "r = (tl.program_id(0) * steps) * BR",
        "each program of the norm's backward redoes its first tile instead of walking its run",
    ),
    M(
        "rms-norm-silu-derivative",
        "slabench/kernels/norm/fused.py",
        "(1.0 + gr * (1.0 - sg))",
        "(1.0 + gr * sg)",
        "the gate's gradient through swish uses a wrong derivative",
    ),
]

# Statistics and decision rules (stats, leaderboard, compare, regression, report).
STATISTICS_MUTANTS = [
    # --- stats ---------------------------------------------------------------------------------
    M(
        "stat-wilson-z",
        "slabench/runners/stats.py",
        "p, z2 = k / n, Z975**2",
        "p, z2 = k / n, Z975",
        "the Wilson interval built with z instead of z squared",
    ),
    M(
        "stat-bootstrap-unseeded",
        "slabench/runners/stats.py",
        "idx = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))",
        "idx = np.random.default_rng().integers(0, len(x), size=(resamples, len(x)))",
        "an unseeded bootstrap: rebuilt leaderboards differ",
    ),
    M(
        "stat-sign-flip-one-sided",
        "slabench/runners/stats.py",
        "return np.abs(stats) >= abs(observed) - EPS",
        "return stats >= abs(observed) - EPS",
        "the two-sided test counts one tail: half the p-value, twice the false separations",
    ),
    M(
        "stat-monte-carlo-zero-p",
        "slabench/runners/stats.py",
        "return float((1 + _extreme(observed, stats, alternative).sum()) / (1 + len(stats)))",
        "return float(np.mean(_extreme(observed, stats, alternative)))",
        "a Monte Carlo p leaves out the observed draw: p = 0 for a sample with none as extreme",
    ),
    M(
        "stat-zero-differences-kept",
        "slabench/runners/stats.py",
        "d = d[d != 0]  # [m]",
        "d = d[np.isfinite(d)]  # [m]",
        "zero differences kept: a pair test past enumeration falls to Monte Carlo instead of exact",
    ),
    M(
        "stat-sign-test-sums",
        "slabench/runners/stats.py",
        "sums = abs(d[0]) * (2 * np.arange(m + 1) - m)  # [m + 1]",
        "sums = abs(d[0]) * (np.arange(m + 1) - m)  # [m + 1]",
        "the sign test's sum of k plus signs of m taken as k - m",
    ),
    M(
        "stat-stratified-mean-of-means",
        "slabench/runners/stats.py",
        '"delta": mean(diffs),',
        '"delta": mean([mean([a[s] - b[s] for s in set(a) & set(b)]) for a, b in strata if set(a) & set(b)]),',
        "the pooled gain weighs conditions alike while its test weighs pairs alike",
    ),
    M(
        "stat-paired-interval-bootstrap",
        "slabench/runners/stats.py",
        "lo, hi = paired_difference_ci([x for x, _ in pairs], [y for _, y in pairs])",
        "lo, hi = bootstrap_mean(diffs)",
        "the pooled gain's interval a bootstrap of the differences (a point when no pair differs)",
    ),
    M(
        "stat-paired-interval-no-correlation",
        "slabench/runners/stats.py",
        "phi = 0.0 if margins == 0 or 0 <= cross <= n / 2 else",
        "phi = 0.0 if True else",
        "the paired interval ignores the correlation of the two arms' outcomes",
    ),
    M(
        "stat-paired-interval-swapped-tails",
        "slabench/runners/stats.py",
        "hi = pa - pb + math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2",
        "hi = pa - pb + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2",
        "the paired interval's upper side built from the lower side's Wilson distances",
    ),
    M(
        "stat-power-no-sd-floor",
        "slabench/runners/stats.py",
        "return n_for_power(gain, max(sd, math.sqrt(g * (1 - g))))",
        "return n_for_power(gain, sd)",
        "a base where no pair differs reads as needing no more seeds",
    ),
    M(
        "stat-permutation-sums",
        "slabench/runners/stats.py",
        "stats = (masks @ pooled) / na - (~masks @ pooled) / (n - na)",
        "stats = (masks @ pooled) - (~masks @ pooled)",
        "the unpaired test compares sums, not means (wrong for unequal group sizes)",
    ),
    M(
        "stat-always-unpaired",
        "slabench/runners/stats.py",
        "if a and set(a) == set(b):",
        "if False:",
        "arms on the same seeds compared unpaired",
    ),
    M(
        "stat-km-censored-as-solved",
        "slabench/runners/stats.py",
        "events = sum(1 for tt, s in zip(times, solved) if tt == t and s)",
        "events = sum(1 for tt, s in zip(times, solved) if tt == t)",
        "runs that never solve count as solved at the budget",
    ),
    M(
        "stat-km-risk-set",
        "slabench/runners/stats.py",
        "at_risk -= sum(1 for tt in times if tt == t)",
        "at_risk -= 0",
        "the Kaplan-Meier risk set never shrinks",
    ),
    # --- leaderboard ---------------------------------------------------------------------------
    M(
        "lb-sort-by-accuracy",
        "slabench/runners/leaderboard.py",
        'return -row["solve_rate"], -row["acc"]',
        'return -row["acc"], -row["solve_rate"]',
        "rows ordered by mean accuracy, not the solve rate the header names",
    ),
    M(
        "lb-tie-with-previous-row",
        "slabench/runners/leaderboard.py",
        "test = stats.compare(stats.seed_scores(r), stats.seed_scores(leader)) if leader else None",
        "test = stats.compare(stats.seed_scores(r), stats.seed_scores(ranked[i - 1])) if leader else None",
        "ties chained row to row: a row far below the top still shares its rank",
    ),
    M(
        "lb-min-seeds-strict",
        "slabench/runners/leaderboard.py",
        'ranked = sorted((r for r in rows if r["seeds"] >= min_seeds), key=sort_key)',
        'ranked = sorted((r for r in rows if r["seeds"] > min_seeds), key=sort_key)',
        "a cell with exactly min_seeds seeds left unranked",
    ),
    M(
        "lb-lr-on-test",
        "slabench/runners/leaderboard.py",
        'lr, edge = choose_lr({o["lr"]: o["val_acc"] for o in options}, {o["lr"] for o in options if o["failed"]})',
        'lr, edge = choose_lr({o["lr"]: o["acc"] for o in options}, {o["lr"] for o in options if o["failed"]})',
        "the learning rate chosen on the test set",
    ),
    M(
        "lb-solved-strict",
        "slabench/runners/leaderboard.py",
        "solved = sum(a >= solve_at for a in accs)",
        "solved = sum(a > solve_at for a in accs)",
        "a run exactly at solve_at does not count as solved",
    ),
    M(
        "lb-diverged-dropped",
        "slabench/runners/leaderboard.py",
        'if record["status"] == "diverged":\n        return 0.0',
        'if record["status"] == "diverged":\n        return None',
        "diverged runs dropped instead of scoring 0: the model looks better",
    ),
    M(
        "lb-pool-train-settings",
        "slabench/runners/leaderboard.py",
        "return [f for f in fields if any(len({getattr(t, f) for t in ts}) > 1 for ts in by_cell.values())]",
        "return []",
        "records of different budgets pooled into one cell",
    ),
    # --- compare, regression, report -----------------------------------------------------------
    M(
        "cmp-verdict-sign",
        "slabench/runners/stats.py",
        'return ("win" if test["delta"] > 0 else "loss"), test',
        'return ("win" if test["delta"] < 0 else "loss"), test',
        "win and loss swapped",
    ),
    M(
        "cmp-alpha-10pc",
        "slabench/runners/stats.py",
        'or test["p"] >= ALPHA:',
        'or test["p"] >= 0.1:',
        "verdicts at the 10% level",
    ),
    M(
        "reg-two-sided",
        "slabench/runners/regression.py",
        'below, above = stats.compare(now, base, "less"), stats.compare(now, base, "greater")',
        'below, above = stats.compare(now, base), stats.compare(now, base, "greater")',
        "a two-sided test for a one-sided question: with 5 seeds no drop is ever found",
    ),
    M(
        "reg-no-floor",
        "slabench/runners/regression.py",
        'below["p"] < stats.ALPHA and delta < -FLOOR',
        'below["p"] < stats.ALPHA and delta < 0',
        "hardware noise of a few answers fails the check",
    ),
    M(
        "reg-solve-rate-ignored",
        "slabench/runners/regression.py",
        "if rate_now < rate_base or (",
        "if False or (",
        "a seed that stops solving passes the check",
    ),
    M(
        "ci-survivors-judged",
        "slabench/runners/regression.py",
        'if c and set(b["seeds"]) <= set(c["seeds"]):',
        'if c and c["n"]:',
        "seeds that crashed drop out of the solve rate, and ci passes on the one that survived",
    ),
    M(
        "lr-choice-counts-crashed",
        "slabench/runners/leaderboard.py",
        "complete = [lr for lr in val_acc if lr not in failed] or list(val_acc)",
        "complete = list(val_acc)",
        "an lr where one seed survived two crashes wins on that seed",
    ),
    M(
        "rep-majority-half",
        "slabench/runners/report_rules.py",
        'if votes.count("for") > n / 2:',
        'if votes.count("for") >= n / 2:',
        "a split vote counts as support",
    ),
    M(
        "rep-untestable-votes",
        "slabench/runners/report_rules.py",
        "votes = [v for v in per_base.values() if v != UNTESTABLE]",
        "votes = list(per_base.values())",
        "a base no seed can test still counts against every majority",
    ),
    M(
        "rep-one-h-slope",
        "slabench/runners/report_rules.py",
        "if len(levels) < 2",
        "if len(levels) < 1",
        "a base with one H in range is given a slope vote",
    ),
    M(
        "rep-settled-always",
        "slabench/runners/report_rules.py",
        "return len(outcomes) == 1",
        "return bool(outcomes)",
        "a verdict the runs still to come can turn is called settled",
    ),
    M(
        "rep-settled-running-ignored",
        "slabench/runners/report.py",
        "settled(parts[s].votes, running[s])",
        "settled(parts[s].votes, ())",
        "the Incomplete line calls a verdict settled without the votes still to come",
    ),
    M(
        "rep-attention-a-base",
        "slabench/runners/report.py",
        'running = {s: set(left.get(s, {})) - {"attention"} for s in GRID_SECTIONS}',
        "running = {s: set(left.get(s, {})) for s in GRID_SECTIONS}",
        "attention's runs left keep a claim open although no vote reads them",
    ),
    M(
        "rep-plan-base-ignored",
        "slabench/runners/report.py",
        "elif settled(parts[s].votes, {base}):",
        "elif settled(parts[s].votes, ()):",
        "the table of runs left says no base's runs can change a verdict they can",
    ),
    M(
        "rep-plan-heads-window-one-h",
        "slabench/runners/report.py",
        "sum(LEARNS <= v <= CEILING for v in seen.values()) >= 2",
        "sum(LEARNS <= v <= CEILING for v in seen.values()) >= 1",
        "the table of runs left forecasts a heads vote from one H in range, where the rule needs two",
    ),
    M(
        "rep-plan-heads-window-one-seed",
        "slabench/runners/report.py",
        "if len(tests[h]) >= MIN_SEEDS else v",
        "if len(tests[h]) >= 1 else v",
        "the table of runs left lets one verdict seed overrule the lr stage's three",
    ),
    M(
        "rep-gates-lower-bound",
        "slabench/runners/report_rules.py",
        '"for" if lo > PEAKED_SHARE',
        '"for" if hi > PEAKED_SHARE',
        "near one-hot claimed from the interval's upper end",
    ),
    M(
        "rep-win-on-loss",
        "slabench/runners/report_rules.py",
        'ahead = main["p"] < stats.ALPHA and main["delta"] > 0',
        'ahead = main["p"] < stats.ALPHA',
        "a significant loss counted as the twin ahead",
    ),
    M(
        "report-ceiling-votes-against",
        "slabench/runners/report_rules.py",
        'if b.get("ceiling"):',
        'if False and b.get("ceiling"):',
        "a base at the ceiling (every seed solved) votes against SLA for want of room to gain",
    ),
    M(
        "rep-few-seeds-decide",
        "slabench/runners/report_rules.py",
        'few = b["seeds"] < MIN_SEEDS',
        "few = False",
        "a cell of one or two seeds decides a base's vote",
    ),
    M(
        "rep-held-gate-contrasts-swapped",
        "slabench/runners/report_rules.py",
        '("learned", "learned gates")',
        '("scale", "learned gates")',
        "a gain the held 1/H gate also shows is credited to the gates' learning",
    ),
    M(
        "rep-lr-chosen-on-verdict-seeds",
        "slabench/runners/report.py",
        "first = {s.seed for s in stage1}\n    return [s for s in specs if s.seed not in first",
        "first = {s.seed for s in stage1}\n    return [s for s in specs if True",
        "the verdict stage reruns the seeds the lr was chosen on",
    ),
    M(
        "rep-dirty-runs-unnamed",
        "slabench/runners/report.py",
        'dirty[sha] += bool(env.get("git_dirty"))',
        "dirty[sha] += 0",
        "runs from a tree with uncommitted changes pass as clean in the report's Code line",
    ),
    M(
        "rep-time-left-per-section-ignored",
        "slabench/runners/report.py",
        "seconds = sum(n * per_run[s] for",
        "seconds = sum(per_run[s] for",
        "the estimate of the device time left forgets how many runs are left",
    ),
    M(
        "rep-heads-few-pairs-decide",
        "slabench/runners/report_rules.py",
        "if math.isnan(ci) or few",
        "if math.isnan(ci)",
        "an H with one paired seed decides a base's vote on the gain vs heads",
    ),
    M(
        "rep-heads-explain-every-h",
        "slabench/runners/report_rules.py",
        "if h in heads]",
        "]",
        "a contrast's slope is read over H that the verdict does not count",
    ),
    M(
        "stats-t-normal-beyond-table",
        "slabench/runners/stats.py",
        "    return z + sum(g / df**i for i, g in enumerate(terms, start=1))",
        "    return z",
        "slope intervals beyond 30 degrees of freedom are 2-3% narrower than 95%",
    ),
    M(
        "rep-edge-below-ceiling-unmarked",
        "slabench/runners/report_sections.py",
        '"*" if ch["val"][ch["lr"]] >= CEILING else "**"',
        '"*"',
        "an lr kept at the sweep's edge reads the same whether the cell reached the ceiling or not",
    ),
    M(
        "rep-summary-direction-flipped",
        "slabench/runners/report_sections.py",
        "{'ahead' if d['tests']['sla']['delta'] > 0 else 'behind'}",
        "{'ahead' if d['tests']['sla']['delta'] < 0 else 'behind'}",
        "the summary says the twin is ahead where it is behind: the report's one-line answer reversed",
    ),
    M(
        "rep-summary-ceiling-explained",
        "slabench/runners/report_rules.py",
        'details[base]["differs"] = False',
        'details[base]["differs"] = rejected(tests).get("sla", (0.0, False))[1]',
        "a base at the ceiling, which does not vote, is summarised as explained by 'X at the ceiling'",
    ),
    M(
        "rep-cost-sweep-dirty-hidden",
        "slabench/runners/report_sections.py",
        "{' from a tree with uncommitted changes' if machine.get('git_dirty') else ''}",
        "",
        "claim 4 reads a sweep timed from uncommitted code without saying so",
    ),
    M(
        "rep-cost-untimed-every-commit",
        "slabench/runners/report_sections.py",
        'if (r.get("environment") or {}).get("git_sha") == sha',
        "if r",
        "claim 4 lists the paths of runs from code long replaced as untimed, so a fresh sweep never clears it",
    ),
    M(
        "rep-explain-one-arm-missing",
        "slabench/runners/report_sections.py",
        '"one_arm": Arms.of(base).one_arm(CONTRASTS),',
        '"one_arm": [],',
        "a base whose own norm is the twin's (Mamba-2) is never explained: its norm arm reads as missing",
    ),
    M(
        "rep-cost-untimed-model-ops",
        "slabench/runners/report_sections.py",
        "if op not in model_ops and path not in timed.get(op, set())",
        "if path not in timed.get(op, set())",
        "claim 4 lists the embedding a training step of the sweep's vocabulary never takes, so no sweep clears it",
    ),
    M(
        "rep-others-time-summed",
        "slabench/runners/report.py",
        "extra = device_time(spent + others)[0] - device_time(spent)[0]",
        "extra = device_time(others)[0]",
        "runs outside the protocol that ran in its sittings are counted twice in the device time",
    ),
    M(
        "rep-heads-width-one-base",
        "slabench/runners/report_sections.py",
        'out.append((h, " or ".join(named) if len(by_width) > 1 else str(next(iter(by_width))), k))',
        "out.append((h, str(max(by_width)), k))",
        "the heads section's widths line hides a base that runs at another head dimension",
    ),
    M(
        "device-time-merges-calls",
        "slabench/runners/leaderboard.py",
        "SITTING_GAP_S = 60",
        "SITTING_GAP_S = 600",
        "the device time counts the idle minutes between two sittings on one machine",
    ),
    M(
        "device-time-share-every-machine",
        "slabench/runners/leaderboard.py",
        '[r for r in records if (r.get("environment") or {}).get("device") == m]',
        "records",
        "each machine's share of the device time is every machine's: an H100 hour reads as an H200 hour",
    ),
    M(
        "grid-model-train-ignored",
        "slabench/config.py",
        'own_trains = trains(f"{where} train", override) if override else grid_trains',
        "own_trains = grid_trains",
        "a model table's own lr sweep is dropped: its models run the grid's lrs instead",
    ),
    M(
        "grid-pairing-ignores-defaults",
        "slabench/config.py",
        "{p.name: p.default for p in known} | typed",
        "typed",
        "a task paired by with_models misses the models that leave the parameter at its default",
    ),
    M(
        "task-size-uncapped",
        "slabench/tasks/__init__.py",
        'for key in ("seq_len", "vocab_size"):',
        "for key in ():",
        "a mistyped seq_len of 1e9 allocates until the machine dies instead of a one-line error",
    ),
    M(
        "plots-one-axes-for-all",
        "slabench/runners/plots.py",
        "if len(mixers) <= LEGEND_INSIDE or len(counts) == 1:",
        "if True:",
        "a leaderboard plot draws a hundred series on one axes, colours repeating every ten",
    ),
    M(
        "records-accept-any-accuracy",
        "slabench/runners/records.py",
        "if ok and not 0.0 <= value <= 1.0:",
        "if False:",
        "a record whose test accuracy is NaN or 1e308 is read in and skews every mean",
    ),
    M(
        "cli-output-path-unchecked",
        "slabench/cli/options.py",
        "if not above.is_dir():",
        "if False:",
        "an output path under a file fails with a traceback after the work instead of before it",
    ),
    M(
        "sweep-writes-failures-over-tables",
        "slabench/cli/kernels.py",
        'if any(r["status"] == "ok" for r in partial["rows"] + partial["train_steps"]):',
        "if True:",
        "a sweep whose every case failed writes its failures over the last sweep's tables",
    ),
    M(
        "grid-runs-uncapped",
        "slabench/config.py",
        "    require(n <= MAX_RUNS, f\"grid '{name}'\",",
        "    require(True, f\"grid '{name}'\",",
        "a grid of 10**8 runs hangs while its runs are listed",
    ),
    M(
        "report-tiny-over-committed",
        "slabench/cli/options.py",
        'return Path(committed) if scale == "full" else Path(out) / Path(committed).name',
        "return Path(committed)",
        "a tiny CPU report overwrites the committed report",
    ),
    M(
        "cost-reads-a-cpu-sweep",
        "slabench/runners/report_data.py",
        "*_, path, data = max(found, key=lambda f: f[:3])",
        "*_, path, data = max(found, key=lambda f: f[1:3])",
        "a CPU sweep written after the GPU's decides the cost claim",
    ),
    M(
        "estimate-from-other-machines",
        "slabench/runners/execute.py",
        'if machine(str(r["environment"].get("device", ""))) != here:',
        "if False:",
        "a CPU plan's time estimated from a GPU's runs",
    ),
    M(
        "points-share-markers",
        "slabench/runners/plots.py",
        'return ("o", "s", "^", "D")[i // 10 % 4]',
        'return "o"',
        "past ten mixers two share a colour and a marker in the state plot",
    ),
    M(
        "plugin-list-option",
        "slabench/plugins.py",
        "if t not in scalars and typing.get_origin(t) is not Literal:",
        "if False:",
        "a list-typed plugin option loads, and a grid's list of it silently sweeps",
    ),
    M(
        "pool-runs-in-process-only-mixer",
        "slabench/runners/grid.py",
        "check_workers_can_load({s.model.name for s in specs})",
        "pass",
        "a mixer only this process can load fails in each worker under other keys, then a traceback",
    ),
    M(
        "train-override-keeps-the-grids-budget",
        "slabench/config.py",
        "dropped = set(BUDGETS) if set(settings) & set(BUDGETS) else set()",
        "dropped = set()",
        "run --train tokens=N over a grid with steps is refused as two budgets",
    ),
    M(
        "more-seeds-ignored",
        "slabench/runners/report.py",
        'grid = {**grid, "train": {**grid["train"], "seeds": own + more}}',
        "pass",
        "report sla --seeds 27 runs and reads the grids' ten seeds: the power a verdict asked for is never reached",
    ),
    M(
        "compare-arms-as-sizes",
        "slabench/runners/compare.py",
        "if k not in ARM_OPTIONS",
        "",
        "compare puts sla-gla/head-norm in a backbone group of its own: it is never compared with sla-gla",
    ),
    # --- arms in the sweep --------------------------------------------------------------------
    M(
        "arm-options-dropped",
        "slabench/models/arms.py",
        "    return mixer, options",
        "    return mixer, {}",
        "sla-gla/head-norm is timed as the registered sla-gla: its gate-alone ratio is the registered one",
    ),
    M(
        "twin-pairs-no-same-norm",
        "slabench/runners/sweep/analysis.py",
        "if (a, b) == (ma, mb) or same:",
        "if (a, b) == (ma, mb):",
        "a sweep of sla-X/head-norm never divides it by X: the gate's cost alone is not reported",
    ),
    M(
        "cost-rule-reads-arm-pairs",
        "slabench/runners/report_rules.py",
        "if registered:",
        "if True:",
        "an arm's ratio enters the registered pair's median, and the cost rule, after the rule was fixed",
    ),
    M(
        "cost-rule-reads-arm-slopes",
        "slabench/runners/report_rules.py",
        ' and not split_arm(s["mixer"])[1]',
        "",
        "an arm's time slope is judged with no base beside it: no allowance, so a sweep of arms can fail the claim",
    ),
]

MUTANTS = CORE_MUTANTS + STATISTICS_MUTANTS


def tests_for(file: str) -> list[str]:
    matches = [tests for prefix, tests in TESTS.items() if file.startswith(prefix)]
    if not matches:
        raise SystemExit(f"no tests mapped for {file}: add it to TESTS")
    return matches[0]


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it: tracked files plus untracked ones that are not ignored."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(tree: Path, tests: list[str]) -> tuple[str, str, float]:
    """('passed' | 'failed' | 'timeout', first failing test or '', seconds)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy's package, not the editable install
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not cuda", *tests]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", "", time.perf_counter() - start
    seconds = time.perf_counter() - start
    if proc.returncode == 0:
        return "passed", "", seconds
    first = next(
        (
            line.split(" ", 1)[1].split(" - ")[0]
            for line in proc.stdout.splitlines()
            if line.startswith(("FAILED ", "ERROR "))
        ),
        f"exit {proc.returncode}",
    )
    return "failed", first, seconds


def apply(tree: Path, m: Mutant) -> str:
    """Plant the mutant in the copy; return the file's original text."""
    path = tree / m.file
    text = path.read_text()
    if text.count(m.original) != 1:
        raise SystemExit(f"{m.id}: the original snippet occurs {text.count(m.original)} times in {m.file}, not once")
    path.write_text(text.replace(m.original, m.mutated))
    return text


def machine() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        name = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def report(results: list[tuple[Mutant, str, str, float]], seconds: float) -> str:
    scored = [r for r in results if not r[0].equivalent]
    killed = sum(r[1] != "passed" for r in scored)
    lines = [
        "# Mutation check",
        "",
        "Plausible bugs planted one at a time in the core modules (`scripts/mutation.py` lists each",
        "edit and why it matters); for each, the test files mapped to the module run with `-x`. A mutant",
        "is killed when they fail. The list is written beside the tests that kill it, so add a mutant",
        "for every bug that gets past the suite: that keeps the score meaningful. Rerun with",
        "",
        "    python scripts/mutation.py",
        "",
        (
            f"Result: **{killed} of {len(scored)} killed ({100 * killed / max(len(scored), 1):.0f}%)**, "
            f"plus {len(results) - len(scored)} equivalent mutant(s) run and left out of the score. "
            f"{datetime.now(timezone.utc):%Y-%m-%d}, {machine()}, {seconds / 60:.0f} min."
        ),
        "",
        "| mutant | file | bug it stands for | result | caught by |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m, status, first, _ in results:
        if m.equivalent:
            result = "equivalent (survived)" if status == "passed" else "equivalent, yet killed"
        else:
            result = {"passed": "**survived**", "failed": "killed", "timeout": "killed (timeout)"}[status]
        lines.append(f"| {m.id} | `{m.file.removeprefix('slabench/')}` | {m.why} | {result} | {first or '-'} |")
    survivors = [m for m, status, _, _ in results if status == "passed" and not m.equivalent]
    lines += ["", "## Survivors", ""]
    lines += [f"- `{m.id}`: {m.why}." for m in survivors] or ["None."]
    lines += ["", "## Equivalent mutants", ""]
    lines += [f"- `{m.id}` ({m.why}): {m.equivalent}." for m in MUTANTS if m.equivalent] or ["None."]
    lines += [
        "",
        "## Statistics and decision rules",
        "",
        f"`STATISTICS_MUTANTS` ({len(STATISTICS_MUTANTS)} of the mutants above) plant bugs in the statistics, "
        "the leaderboard's rules, `compare`'s verdict, the `ci` regression rule and the report's votes; "
        "their tests are the rule tests on hand-built tables (the end-to-end tests that retrain a preset "
        "are left out, to keep a mutant at seconds).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the mutants whose id contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    parser.add_argument("--out", default=str(ROOT / "docs" / "mutation.md"), help="report file (full runs only)")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.only in m.id]
    if args.list:
        for m in chosen:
            print(f"{m.id:28} {m.file:34} {' '.join(tests_for(m.file))}")
        return
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slabench-mutation-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        probe = subprocess.run(
            [sys.executable, "-c", "import slabench; print(slabench.__file__)"],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            capture_output=True,
            text=True,
            check=True,
        )
        if not probe.stdout.strip().startswith(str(tree)):
            raise SystemExit(f"the copy's package is shadowed by {probe.stdout.strip()}")
        for tests in sorted({tuple(tests_for(m.file)) for m in chosen}):
            status, first, seconds = run_tests(tree, list(tests))
            print(f"baseline {' '.join(tests)}: {status} {first} ({seconds:.0f} s)", flush=True)
            if status != "passed":
                raise SystemExit("the unmutated tree fails its tests: fix that first")
        results = []
        for m in chosen:
            original = apply(tree, m)
            try:
                status, first, seconds = run_tests(tree, tests_for(m.file))
            finally:
                (tree / m.file).write_text(original)
            results.append((m, status, first, seconds))
            verdict = "SURVIVED" if status == "passed" else "killed"
            print(f"{m.id:28} {verdict:9} {seconds:5.0f} s  {first}", flush=True)
    text = report(results, time.perf_counter() - start)
    scored = [r for r in results if not r[0].equivalent]
    print(next(line for line in text.splitlines() if line.startswith("Result:")))
    if not args.only:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    sys.exit(0 if all(r[1] != "passed" for r in scored) else 1)


if __name__ == "__main__":
    main()

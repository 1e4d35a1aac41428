"""Run specifications and grid files.

A grid (TOML file or preset) expands, as a cartesian product over every list value, into
frozen `RunSpec`s: task x model x train settings (lr, ...) x seed; a task table's `with_models`
narrows the product to the models it names (a task that scales with the model). A `RunSpec` is
hashable and has a stable `key()`, so a run's record can be found again and a grid resumed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from slabench.errors import SlabenchError
from slabench.params import check_params, dataclass_params, require

# Most runs one grid may expand to (and combinations one table's lists may make): the largest
# shipped grid (paper) has 8,262; a hundred thousand quick runs take a GPU about a day, and a
# grid of lists that multiply to 10**8 hung while merely listing its runs.
MAX_RUNS = 100_000

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESETS_DIR = Path(__file__).parent / "presets"
Items = tuple[tuple[str, Any], ...]  # sorted (key, value) pairs: a hashable dict


def _items(d: dict[str, Any]) -> Items:
    return tuple(sorted(d.items()))


def _fmt(items: Items) -> str:
    return ", ".join(f"{k}={v}" for k, v in items)


@dataclass(frozen=True)
class TaskSpec:
    """A task and its parameters; `test` overrides parameters of the test set only (e.g. a
    longer seq_len to measure length generalisation)."""

    name: str
    params: Items = ()
    test: Items = ()

    def build(self):
        from slabench.tasks import build_task

        return build_task(self.name, **dict(self.params))

    def build_test(self):
        from slabench.tasks import build_task

        return build_task(self.name, **{**dict(self.params), **dict(self.test)})

    def label(self) -> str:
        test = f"; test {_fmt(self.test)}" if self.test else ""
        return f"{self.name}({_fmt(self.params)}{test})"


@dataclass(frozen=True)
class ModelSpec:
    """A mixer name and its backbone/mixer parameters (see `slabench.models.model_params`)."""

    name: str
    params: Items = ()

    def build(self, vocab_size: int, max_len: int):
        from slabench.models import build_model

        params = dict(self.params)
        if params.get("pos_emb") == "learned":
            params.setdefault("max_len", max_len)
        return build_model(self.name, vocab_size=vocab_size, **params)

    def label(self) -> str:
        return f"{self.name}({_fmt(self.params)})" if self.params else self.name


@dataclass(frozen=True)
class TrainSpec:
    """Training settings. One budget: `steps`, `tokens`, `seconds` or `epochs` (a grid sets at most one)."""

    steps: int = field(default=300, metadata={"help": "budget in optimizer steps (the default budget)"})
    tokens: int = field(default=0, metadata={"help": "budget in training tokens (instead of steps)"})
    seconds: float = field(default=0.0, metadata={"help": "budget in wall-clock seconds (instead of steps)"})
    epochs: int = field(
        default=0, metadata={"help": "budget in passes over the finite training set (needs train_examples)"}
    )
    train_examples: int = field(
        default=0,
        metadata={
            "help": "a finite training set of this many examples, drawn once from the seed and cycled in a fixed "
            "order; rows equal to a validation or test row are dropped (0: fresh examples every step)"
        },
    )
    batch_size: int = field(default=64, metadata={"help": "sequences per step"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay on matrices"})
    warmup: float = field(default=0.1, metadata={"help": "fraction of the budget spent in linear warmup"})
    schedule: Literal["wsd", "cosine", "constant"] = field(
        default="wsd",
        metadata={"help": "after warmup: constant then linear decay over the last 20% (wsd), cosine, constant"},
    )
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm (0 = off)"})
    eval_every: int = field(default=50, metadata={"help": "steps between validation evaluations"})
    val_size: int = field(default=256, metadata={"help": "validation examples (early stopping, lr choice)"})
    test_size: int = field(default=1024, metadata={"help": "test examples (reported)"})
    stop_at: float = field(default=0.0, metadata={"help": "stop when validation accuracy reaches this (0 = never)"})
    dtype: Literal["float32", "bfloat16"] = field(default="float32", metadata={"help": "autocast dtype on GPU"})
    # Leaderboard settings: recorded with the run but not part of its key (they change no training).
    solve_at: float = field(default=0.9, metadata={"help": "a run is solved when its test accuracy reaches this"})
    min_seeds: int = field(default=5, metadata={"help": "cells with fewer seeds are shown but not ranked (>= 2)"})

    def __post_init__(self) -> None:
        w = "train"
        for name in ("steps", "batch_size", "eval_every", "val_size", "test_size"):
            require(getattr(self, name) >= 1, w, f"{name}={getattr(self, name)} must be >= 1")
        require(self.tokens >= 0, w, f"tokens={self.tokens} must be >= 0 (0: not the budget)")
        # inf would never end a run, and nan fails every comparison, so name both here.
        require(
            math.isfinite(self.seconds) and self.seconds >= 0,
            w,
            f"seconds={self.seconds} must be a finite number >= 0 (0: not the budget)",
        )
        require(self.train_examples >= 0, w, f"train_examples={self.train_examples} must be >= 0 (0: a fresh stream)")
        require(self.epochs >= 0, w, f"epochs={self.epochs} must be >= 0")
        require(
            not self.epochs or self.train_examples,
            w,
            f"epochs={self.epochs} needs a finite training set; set train_examples (e.g. 100000)",
        )
        require(math.isfinite(self.lr) and self.lr > 0, w, f"lr={self.lr} must be a finite number > 0")
        require(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            w,
            f"weight_decay={self.weight_decay} must be a finite number >= 0 (0: off)",
        )
        require(
            math.isfinite(self.grad_clip) and self.grad_clip >= 0,
            w,
            f"grad_clip={self.grad_clip} must be a finite number >= 0 (0: off)",
        )
        require(0 <= self.warmup < 1, w, f"warmup={self.warmup} must be in [0, 1)")
        require(0 <= self.stop_at <= 1, w, f"stop_at={self.stop_at} must be in [0, 1]")
        require(0 < self.solve_at <= 1, w, f"solve_at={self.solve_at} must be in (0, 1] (a fraction of test accuracy)")
        require(
            self.min_seeds >= 2, w, f"min_seeds={self.min_seeds} must be >= 2 (a rank needs a test, a test two seeds)"
        )


LEADERBOARD_SETTINGS = ("solve_at", "min_seeds")  # TrainSpec fields that no run's result depends on
# TrainSpec fields added after records existed: left out of the key at their default, so a run
# that does not use them keeps the key (and the record) it had before they existed.
KEYED_WHEN_SET = ("epochs", "train_examples")


@dataclass(frozen=True)
class RunSpec:
    grid: str
    task: TaskSpec
    model: ModelSpec
    train: TrainSpec
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> RunSpec:
        def items(x: Any) -> Items:
            return tuple((k, v) for k, v in x)

        t, m = d["task"], d["model"]
        return RunSpec(
            d["grid"],
            TaskSpec(t["name"], items(t["params"]), items(t["test"])),
            ModelSpec(m["name"], items(m["params"])),
            TrainSpec(**d["train"]),
            d["seed"],
        )

    def key(self) -> str:
        """Stable hash of everything that determines the result (not the grid's name), plus
        the task's version and a plugin mixer's source hash, so a changed task distribution or
        an edited plugin never reuses old records."""
        from slabench.plugins import source_digest
        from slabench.tasks import TASKS

        d = self.to_dict()
        d.pop("grid")
        for name in LEADERBOARD_SETTINGS:
            d["train"].pop(name)
        for name in KEYED_WHEN_SET:
            if d["train"][name] == TrainSpec.__dataclass_fields__[name].default:
                d["train"].pop(name)
        d["task_version"] = TASKS.get(self.task.name).version
        if (digest := source_digest(self.model.name)) is not None:  # None for built-in mixers: keys unchanged
            d["mixer_source"] = digest
        blob = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- grid files -----------------------------------------------------------------------------

GRID_KEYS = {"name", "description", "train", "tasks", "models"}
GRID_TRAIN_KEYS = ("seeds", "fold")  # [train] keys that are no TrainSpec field: which seeds run, and how
SEED_LIMIT = 2**31  # user seeds stay below this; validation/test sets use seeds above it


def _expand(table: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Cartesian product over every list value: {a: [1, 2], b: 3} -> [{a: 1, b: 3}, {a: 2, b: 3}]."""
    for key, value in table.items():
        # One empty list empties the whole product: zero runs, and a leaderboard rewritten from none.
        require(not (isinstance(value, list) and not value), where, f"{key} = [] runs nothing; give at least one value")
    keys = list(table)
    values = [v if isinstance(v, list) else [v] for v in table.values()]
    n = math.prod(len(v) for v in values)
    require(n <= MAX_RUNS, where, f"its lists make {n:,} combinations; at most {MAX_RUNS:,} (see MAX_RUNS)")
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def load_grid_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise SlabenchError(f"grid file '{path}' does not exist")
    try:
        text = p.read_text(encoding="utf-8")  # TOML is UTF-8 whatever the locale's encoding
    except UnicodeDecodeError as e:
        raise SlabenchError(f"grid file '{path}': byte {e.start} is not UTF-8; a grid file is UTF-8 TOML") from None
    try:
        grid = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SlabenchError(f"grid file '{path}': invalid TOML: {e}") from None
    except RecursionError:
        raise SlabenchError(f"grid file '{path}': arrays or tables nested too deep for the TOML reader") from None
    check_grid_layout(grid)  # here too: `run --mixer` and `compare` rewrite the models before expand_grid
    return grid


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_preset(name: str) -> dict[str, Any]:
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise SlabenchError(f"unknown preset '{name}'; known: {', '.join(preset_names())}")
    return load_grid_file(path)


BUDGETS = ("steps", "tokens", "seconds", "epochs")  # a grid sets at most one


def with_train(grid: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The grid with `settings` over its [train] table (`run --train`); a budget given replaces
    the grid's, so `steps = 50` over a grid with `tokens` is one budget, not two. Checked, like
    the table itself, when the grid expands."""
    dropped = set(BUDGETS) if set(settings) & set(BUDGETS) else set()
    return {**grid, "train": {k: v for k, v in grid.get("train", {}).items() if k not in dropped} | settings}


def check_fold(value: Any, where: str) -> int | Literal["auto"]:
    """fold: runs that differ only in seed and lr train as one model, up to `fold` a model
    (runners/batched.py). It changes no result, so it is in no run key."""
    ok = value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
    require(ok, where, f"fold={value!r} is not allowed; give an int >= 1 or 'auto'")
    return value


def grid_fold(grid: dict[str, Any]) -> int | Literal["auto"]:
    """The grid's `[train] fold` (default 1: every run on its own)."""
    return check_fold(grid.get("train", {}).get("fold", 1), "[train]")


def check_grid_layout(grid: dict[str, Any]) -> None:
    """The grid's top level: known keys, a name usable as a file name, a description string, and
    tables where tables go ([train] one table, [[tasks]] and [[models]] arrays of tables)."""
    for key in grid:
        require(key in GRID_KEYS, "grid", f"unknown key '{key}' at top level; known: {', '.join(sorted(GRID_KEYS))}")
    name = grid.get("name")
    require(isinstance(name, str) and name != "", "grid", "'name' (a non-empty string) is required")
    # The name is a file name (<name>.md, ...) and the default output folder (runs/<name>): a
    # separator would write into another folder, or out of --out; '.' and '..' name folders.
    require(
        not any(c in name for c in "/\\\0") and name not in (".", ".."),
        "grid",
        f"name={name!r} must be usable as a file name: no '/', '\\' or NUL, and not '.' or '..'",
    )
    description = grid.get("description", "")
    require(isinstance(description, str), "grid", f"description={description!r} must be a string")
    train = grid.get("train", {})
    require(
        isinstance(train, dict), "grid", f"train = {train!r} is not allowed; give one [train] table (not [[train]])"
    )
    for key in ("tasks", "models"):
        tables = grid.get(key)
        require(tables is not None and tables != [], "grid", f"at least one [[{key}]] table is required")
        require(
            isinstance(tables, list) and all(isinstance(t, dict) for t in tables),
            "grid",
            f"{key} = {tables!r} is not allowed; give [[{key}]] tables, each a [[{key}]] line then name = ...",
        )


def expand_grid(grid: dict[str, Any]) -> tuple[str, list[RunSpec]]:
    """Validate a parsed grid and expand it into RunSpecs (deduplicated, in a stable order)."""
    import torch

    from slabench.models import MIXERS, build_mixer, model_params, split_backbone

    check_grid_layout(grid)
    name = grid["name"]

    train_table = dict(grid.get("train", {}))
    train_fields = dataclass_params(TrainSpec)
    fields = [p.name for p in train_fields]
    known = fields + list(GRID_TRAIN_KEYS)
    for key in train_table:  # before seeds and fold are popped, so the list of known keys has them
        require(key in known, "[train]", f"unknown parameter '{key}'; known: {', '.join(known)}")
    check_fold(train_table.pop("fold", 1), "[train]")  # how runs execute, not what they are: no RunSpec field
    seeds = train_table.pop("seeds", [0])
    seeds = seeds if isinstance(seeds, list) else [seeds]
    require(bool(seeds), "[train]", "seeds = [] runs nothing; give at least one seed, e.g. seeds = [0, 1, 2]")
    for s in seeds:
        # TOML's true and false are Python ints (bool subclasses int): not seeds 1 and 0.
        require(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < SEED_LIMIT,
            "[train]",
            f"seeds: {s!r} must be an int in [0, 2**31)",
        )

    def trains(where: str, override: dict[str, Any]) -> list[TrainSpec]:
        table = train_table | override
        budgets = [k for k in BUDGETS if k in table]
        require(
            len(budgets) <= 1,
            where,
            f"{' and '.join(budgets)} are each a budget; set exactly one of steps, tokens, seconds or epochs",
        )
        return [TrainSpec(**check_params(where, train_fields, t)) for t in _expand(table, where)]

    grid_trains = trains("[train]", {})

    # each with its with_models (model values it pairs with) and its longest sequence (test set's included)
    tasks: list[tuple[TaskSpec, dict[str, Any], int]] = []
    for i, table in enumerate(grid["tasks"]):
        table = dict(table)
        where = f"[[tasks]] #{i + 1}"
        require("name" in table, where, "'name' is required")
        test = table.pop("test", {})
        require(isinstance(test, dict), where, "'test' must be a table of parameter overrides")
        pair = table.pop("with_models", {})
        require(
            isinstance(pair, dict) and not any(isinstance(v, (list, dict)) for v in pair.values()),
            where,
            "'with_models' must be a table of single model parameter values, e.g. { n_heads = 4 }",
        )
        for combo in _expand(table, where):  # `name` may be a list too
            tname = combo.pop("name")
            require(isinstance(tname, str), where, f"name={tname!r} must be a string or a list of strings")
            spec = TaskSpec(tname, _items(combo), _items(test))
            task, test_task = spec.build(), spec.build_test()  # validates names, types and constraints now
            tasks.append((spec, pair, max(task.seq_len, test_task.seq_len)))

    models: list[tuple[ModelSpec, dict[str, Any], list[TrainSpec]]] = []
    for i, table in enumerate(grid["models"]):
        table = dict(table)
        where = f"[[models]] #{i + 1}"
        require("name" in table, where, "'name' is required")
        # `train = { lr = [...] }`: these models' own values of [train] keys (an lr sweep that
        # suits them); seeds stay the grid's, so runs stay paired by seed across models.
        override = table.pop("train", {})
        require(
            isinstance(override, dict) and all(k in fields for k in override),
            where,
            f"train = {override!r}: give a table of [train] keys, e.g. train = {{ lr = [1e-3, 1e-2] }}; known: "
            + ", ".join(fields),
        )
        own_trains = trains(f"{where} train", override) if override else grid_trains
        for combo in _expand(table, where):  # `name` may be a list too
            mname = combo.pop("name")
            require(isinstance(mname, str), where, f"name={mname!r} must be a string or a list of strings")
            MIXERS.get(mname)
            known = model_params(mname)
            typed = check_params(f"model '{mname}'", known, combo)
            bb, options = split_backbone(typed, f"model '{mname}'")
            for size in ("d_model", "n_layers", "n_heads"):
                require(getattr(bb, size) >= 1, f"model '{mname}'", f"{size}={getattr(bb, size)} must be >= 1")
            with torch.device("meta"):  # shapes only, no memory: catches d_model % n_heads etc. at any size
                build_mixer(mname, bb.d_model, bb.n_heads, **options)
            models.append((ModelSpec(mname, _items(typed)), {p.name: p.default for p in known} | typed, own_trains))

    model_keys = list(dict.fromkeys(k for _, values, _ in models for k in values))  # every model parameter
    pairs = []  # (task, model): every model, or those with the values the task's with_models names
    for t, want, seq_len in tasks:
        for key in want:  # a misspelt parameter would otherwise read as "matches none"
            require(
                key in model_keys,
                f"[[tasks]] {t.label()}",
                f"with_models names '{key}', which no model of the grid has; they have: {', '.join(model_keys)}",
            )
        matched = [(m, v, tr) for m, v, tr in models if all(v.get(k) == x for k, x in want.items())]
        require(bool(matched), f"[[tasks]] {t.label()}", f"with_models={want} matches none of the grid's models")
        for m, values, own_trains in matched:
            # A learned position table has max_len rows, so a longer sequence fails mid-run. Left
            # out, max_len follows the task (ModelSpec.build): only one given can be too short.
            given = dict(m.params).get("max_len")
            require(
                values["pos_emb"] != "learned" or given is None or given >= seq_len,
                f"model '{m.name}'",
                f"max_len={given} is below seq_len={seq_len} of task {t.label()}; with pos_emb='learned' "
                f"give max_len >= {seq_len}, or leave max_len out (it follows the task)",
            )
            pairs.append((t, m, own_trains))
    n = sum(len(own) for _, _, own in pairs) * len(seeds)
    require(n <= MAX_RUNS, f"grid '{name}'", f"expands to {n:,} runs; at most {MAX_RUNS:,} (see MAX_RUNS)")
    specs = [RunSpec(name, t, m, tr, s) for t, m, own in pairs for tr, s in itertools.product(own, seeds)]
    return name, list(dict.fromkeys(specs))

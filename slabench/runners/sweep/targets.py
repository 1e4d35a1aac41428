"""Speed targets: bounds on what a sweep measures, read from a TOML file of `[[target]]` tables.

`targets.toml` beside this module holds the targets slabench checks by default; `slabench sweep
--targets FILE` checks a file of the same form instead. A target's keys:

    name         its label in the tables
    quantity     time-ratio        median time of `mixer` / median time of `baseline`, one mixer layer
                 train-step-ratio  the same for the whole training step (the sweep's --train-step)
                 time-slope        log-log slope of `mixer`'s time per sequence against T (length sweep)
                 memory-slope      the same for peak memory per sequence
    mixer        a mixer name or arm (`models.arms`: "sla-gla/head-norm"); in a ratio, "X" in `mixer`
                 and `baseline` stands for every mixer X for which both names were swept ("sla-X"
                 over "X": each SLA twin against its base; "sla-X/head-norm" over "X": the gate alone)
    baseline     ratios only: the mixer divided by
    mode         fwd, fwdbwd or fwdbwd-graph; for train-step-ratio the path: eager, cuda-graph, or
                 fastest (each mixer's fastest path)
    shape        time-ratio: [B, T, H, D], that exact shape; or instead
    min_seq_len  time-ratio: the length sweep's shapes with T >= this
    at_most      the bound: the target passes when value <= at_most; or instead
    below        passes when value < below

A ratio's value is the worst (largest) over the shapes and the X it covers. A target is listed
when the sweep ran its mode (a training path: when that path ran; `fastest`: when two did); its
value and pass are None when what it needs was not measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slabench.config import tomllib
from slabench.errors import SlabenchError
from slabench.params import require
from slabench.runners.sweep.analysis import median_ms, ok_rows, sweep_shapes
from slabench.runners.sweep.config import MODES

DEFAULT_TARGETS = Path(__file__).with_name("targets.toml")
QUANTITIES = ("time-ratio", "train-step-ratio", "time-slope", "memory-slope")
TRAIN_PATHS = ("eager", "cuda-graph", "fastest")
KEYS = ("name", "quantity", "mixer", "baseline", "mode", "shape", "min_seq_len", "at_most", "below")


@dataclass(frozen=True)
class Target:
    name: str
    quantity: str
    mixer: str
    mode: str
    baseline: str | None = None
    shape: tuple[int, int, int, int] | None = None
    min_seq_len: int | None = None
    at_most: float | None = None
    below: float | None = None

    def passes(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value < self.below if self.below is not None else value <= self.at_most


def _target(t: Any, where: str) -> Target:
    require(isinstance(t, dict), where, "must be a table of name, quantity, mixer, mode and a bound")
    unknown = sorted(set(t) - set(KEYS))
    require(not unknown, where, f"unknown key {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
    for key in ("name", "quantity", "mixer", "mode"):
        require(isinstance(t.get(key), str), f"{where} {key}", "is required and must be a string")
    where = f"{where} ({t['name']})"
    q = t["quantity"]
    require(q in QUANTITIES, f"{where} quantity", f"{q!r} is not allowed; choose one of {', '.join(QUANTITIES)}")
    modes = TRAIN_PATHS if q == "train-step-ratio" else MODES
    require(t["mode"] in modes, f"{where} mode", f"{t['mode']!r} is not allowed; choose one of {', '.join(modes)}")
    ratio = q.endswith("-ratio")
    require(
        isinstance(t.get("baseline"), str) == ratio,
        f"{where} baseline",
        "a ratio needs a baseline mixer, a slope takes none",
    )
    require(
        not ratio or ("X" in t["mixer"]) == ("X" in t["baseline"]),
        f"{where} mixer",
        "'X' stands for a mixer name in both mixer and baseline, or in neither",
    )
    shape, min_t = t.get("shape"), t.get("min_seq_len")
    if q == "time-ratio":
        require((shape is None) != (min_t is None), f"{where} shape", "give either shape or min_seq_len")
    else:
        require(shape is None and min_t is None, f"{where} shape", f"a {q} takes neither shape nor min_seq_len")
    require(
        shape is None
        or (isinstance(shape, list) and len(shape) == 4 and all(isinstance(v, int) and v >= 1 for v in shape)),
        f"{where} shape",
        f"{shape!r} must be four positive integers [B, T, H, D]",
    )
    require(
        min_t is None or (isinstance(min_t, int) and min_t >= 1),
        f"{where} min_seq_len",
        f"{min_t!r} must be a positive integer",
    )
    bounds = [b for b in ("at_most", "below") if b in t]
    require(
        len(bounds) == 1 and isinstance(t[bounds[0]], (int, float)),
        f"{where} at_most",
        "give one number, as at_most (value <= bound) or below (value < bound)",
    )
    return Target(**{**t, "shape": tuple(shape) if shape else None})


def load_targets(path: str | Path = DEFAULT_TARGETS) -> tuple[Target, ...]:
    """The targets of a TOML file; a bad file or target is one line naming it and the key."""
    p = Path(path)
    require(p.is_file(), "--targets", f"'{path}' does not exist")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))  # TOML is UTF-8 whatever the locale's encoding
    except UnicodeDecodeError as e:
        raise SlabenchError(f"--targets {path}: byte {e.start} is not UTF-8; a targets file is UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as e:
        raise SlabenchError(f"--targets {path}: invalid TOML: {e}") from None
    tables = data.get("target")
    require(
        isinstance(tables, list) and bool(tables) and set(data) == {"target"},
        f"--targets {path}",
        "must hold [[target]] tables and nothing else",
    )
    return tuple(_target(t, f"--targets {path} target {i + 1}") for i, t in enumerate(tables))


def _worst(values: list[float]) -> float | None:
    return max(values) if values else None


def _value(t: Target, result: dict[str, Any], slopes: list[dict[str, Any]]) -> float | None:
    rows = result["rows"]
    if t.quantity in ("time-slope", "memory-slope"):
        fits = [s[t.quantity.split("-")[0]] for s in slopes if s["mixer"] == t.mixer and s["mode"] == t.mode]
        return fits[0] if fits else None
    swept = list(dict.fromkeys(r["mixer"] for r in (rows if t.quantity == "time-ratio" else result["train_steps"])))
    pairs = (
        [(t.mixer.replace("X", x), t.baseline.replace("X", x)) for x in swept]
        if "X" in t.mixer
        else [(t.mixer, t.baseline)]
    )
    pairs = [p for p in pairs if set(p) <= set(swept)]
    if t.quantity == "train-step-ratio":
        train = ok_rows(result["train_steps"])

        def fastest(name):
            return min(
                (r["median_ms"] for r in train if r["mixer"] == name and t.mode in (r["mode"], "fastest")), default=None
            )

        return _worst([a / b for a, b in ((fastest(m), fastest(base)) for m, base in pairs) if a and b])
    shapes = [
        s
        for s in sweep_shapes(rows)
        if (list(s[:4]) == list(t.shape) if t.shape else s[4] == "length" and s[1] >= t.min_seq_len)
    ]
    ratios = [(median_ms(rows, m, t.mode, s), median_ms(rows, base, t.mode, s)) for m, base in pairs for s in shapes]
    return _worst([a / b for a, b in ratios if a and b])


def listed(t: Target, result: dict[str, Any]) -> bool:
    """Whether the sweep ran the target's mode (or training path)."""
    if t.quantity != "train-step-ratio":
        return any(r["mode"] == t.mode for r in result["rows"])
    paths = {r["mode"] for r in ok_rows(result["train_steps"])}
    return len(paths) > 1 if t.mode == "fastest" else t.mode in paths


def evaluate(targets: tuple[Target, ...], result: dict[str, Any], slopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """[{"target": name, "value", "pass"}] for every listed target, in the file's order."""
    out = []
    for t in targets:
        if listed(t, result):
            value = _value(t, result, slopes)
            out.append({"target": t.name, "value": value, "pass": t.passes(value)})
    return out

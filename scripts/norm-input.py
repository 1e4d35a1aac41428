"""How far each arm's output norm damps its mixer's output at initialisation.

The SLA gates start every head at 1/H, so a mixer linear in q and k starts with its output scaled
by 1/H^2. An RMS norm divides a common scale back out only while the mean square of its input is
well above the norm's epsilon: it returns x / sqrt(ms + eps), so an input at mean square ms
leaves the norm at sqrt(ms / (ms + eps)) of unit RMS. This reads ms with a forward pre-hook on
every `o_norm` of each arm of a shipped grid (seed 0, float32, on the CPU, one batch of the
grid's task, no training) and prints, per arm and layer, the median over tokens (and heads, for
a per-head norm) and that fraction.

    python scripts/norm-input.py report-heads-full --mixers gla,sla-gla
"""

from __future__ import annotations

import argparse

import torch

from slabench.config import expand_grid, load_preset
from slabench.models.arms import arm
from slabench.runners.data import seeded_generator
from slabench.runners.train import VAL_SEED

EPS = torch.finfo(torch.float32).eps  # the norms' epsilon (models.norm.RMSNorm)


def norm_inputs(spec, rows: int) -> list[float]:
    """Per layer, the median mean square entering its output norm."""
    torch.manual_seed(0)
    task = spec.task.build()
    model = spec.model.build(task.vocab_size, task.seq_len).eval()
    seen: list[torch.Tensor] = []
    hooks = [
        m.register_forward_pre_hook(lambda _, args: seen.append(args[0].float().pow(2).mean(-1).flatten()))
        for name, m in model.named_modules()
        if name.endswith("o_norm")
    ]
    batch = task.sample(rows, seeded_generator(VAL_SEED, "cpu"), "cpu")
    with torch.no_grad():
        model(batch.inputs)  # [rows, T] -> logits; the hooks keep each norm's input
    for h in hooks:
        h.remove()
    return [x.median().item() for x in seen]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grid", help="a shipped preset, e.g. report-heads-full")
    ap.add_argument("--mixers", default="", help="comma-separated mixers to keep (default: all)")
    ap.add_argument("--rows", type=int, default=16, help="sequences in the batch")
    args = ap.parse_args()
    keep = set(filter(None, args.mixers.split(",")))
    cells = {}
    for spec in expand_grid(load_preset(args.grid))[1]:
        params = dict(spec.model.params)
        if spec.model.name in keep or not keep:
            key = (params.get("n_heads"), params.get("d_model"), arm(spec.model.name, params), spec.task.label())
            cells.setdefault(key, spec)
    print("| H | d_model | arm | layer | median mean square into the norm | norm output RMS |")
    print("| ---: | ---: | --- | ---: | ---: | ---: |")
    for (h, d, label, _), spec in sorted(cells.items(), key=lambda kv: kv[0][:3]):
        for layer, ms in enumerate(norm_inputs(spec, args.rows)):
            print(f"| {h} | {d} | {label} | {layer} | {ms:.2g} | {(ms / (ms + EPS)) ** 0.5:.2f} |")
    print(f"\nnorm epsilon {EPS:.3g}; {args.rows} sequences; seed 0; float32 on the CPU")


if __name__ == "__main__":
    main()

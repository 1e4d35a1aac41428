"""Decoded examples of a task for eyeballing: token ids, scored positions in colour with their
targets, special tokens by name. Backs `slabench show TASK`.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from slabench.tasks.base import IGNORE, Task

MIN_RUN = 4  # unscored repeats of one token at least this long are shown as `tok×count`


def render_example(inputs: list[int], labels: list[int], names: dict[int, str]) -> Text:
    """One example as coloured text: `tok` plain, special tokens named, scored `tok→target`."""
    text = Text()
    t, T = 0, len(inputs)
    while t < T:
        tok, lab = inputs[t], labels[t]
        word = names.get(tok, str(tok))
        run = 1
        while lab == IGNORE and t + run < T and inputs[t + run] == tok and labels[t + run] == IGNORE:
            run += 1
        if t:
            text.append(" ")
        if lab != IGNORE:
            text.append(word, style="bold black on yellow")
            text.append("→" + names.get(lab, str(lab)), style="bold green")
        elif run >= MIN_RUN:
            text.append(f"{word}×{run}", style="magenta" if tok in names else "dim")
            t += run
            continue
        else:
            text.append(word, style="bold magenta" if tok in names else "")
        t += 1
    return text


def render_examples(task: Task, n: int = 3, seed: int = 0) -> Group:
    """`n` examples of `task` drawn with `seed` on CPU, as a rich renderable."""
    batch = task.sample(n, torch.Generator().manual_seed(seed))
    names = task.token_names()
    params = " ".join(f"{k}={v}" for k, v in asdict(task).items())
    header = Text.assemble((f"{task.name} v{type(task).version}", "bold"), "  ", (params, "dim"))
    legend = Text.assemble(
        ("tok", "bold black on yellow"), ("→target", "bold green"), " scored   ", ("<name>", "bold magenta"), " special"
    )
    panels = []
    for i in range(n):
        x, y = batch.inputs[i].tolist(), batch.labels[i].tolist()
        meta = "  ".join(f"{k}={v[i].item():g}" for k, v in batch.slices.items())
        scored = sum(v != IGNORE for v in y)
        panels.append(Panel(render_example(x, y, names), title=f"example {i}", subtitle=f"{scored} scored  {meta}"))
    return Group(header, legend, *panels)

"""Shared test fixtures."""

from pathlib import Path

import pytest
import torch

TINY_GRID = """
name = "{name}"
[train]
steps = {steps}
batch_size = 8
eval_every = 5
val_size = 16
test_size = 16
lr = {lr}
seeds = {seeds}
[[tasks]]
name = "mqar"
vocab_size = 32
seq_len = 16
num_kv_pairs = 2
[[models]]
name = {models}
d_model = 16
n_layers = 1
n_heads = 2
"""


@pytest.fixture
def tiny_grid(tmp_path):
    """Write a seconds-long grid TOML (MQAR, d_model 16, one layer) under tmp_path; its path."""

    def write(
        name: str = "tiny",
        steps: int = 10,
        lr: float = 1e-3,
        seeds: tuple[int, ...] = (0, 1, 2),
        models: tuple[str, ...] = ("attention",),
    ) -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(
            TINY_GRID.format(
                name=name, steps=steps, lr=lr, seeds=list(seeds), models="[" + ", ".join(f'"{m}"' for m in models) + "]"
            )
        )
        return path

    return write


@pytest.fixture
def one_thread():
    """Torch on one thread, restored afterwards: models and ops this small gain nothing from a
    second thread and run 5-30x slower with two on a busy 2-core machine (measured), which also
    makes their timings meaningless."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Hybrid stacks (`attention_every`): which layers are attention, their state, a real run, bad values."""

import pytest
import torch

from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec, expand_grid
from slabench.errors import SlabenchError
from slabench.models import build_model
from slabench.models.attention import Attention
from slabench.models.gla import GLA
from slabench.runners.train import train


def test_every_nth_layer_is_attention():
    lm = build_model("gla", vocab_size=16, d_model=32, n_heads=2, n_layers=5, attention_every=2)
    assert [type(m) for m in lm.mixers] == [GLA, Attention, GLA, Attention, GLA]
    assert [type(m) for m in build_model("gla", vocab_size=16, n_layers=3).mixers] == [GLA] * 3


def test_state_size_counts_both_kinds():
    # gla at d_model 64, 2 heads: keys 32 wide (16 a head), values 64 (32 a head), conv of width 4
    # on q, k, v: 2 * 16 * 32 + 3 * (32 + 32 + 64) = 1408; attention's KV cache at T = 32: 2 * 32 * 64.
    lm = build_model("gla", vocab_size=16, d_model=64, n_heads=2, n_layers=3, attention_every=3)
    assert lm.state_size(32) == 2 * 1408 + 2 * 32 * 64


def test_hybrid_run_trains_and_records_both_kinds():
    torch.set_num_threads(1)
    task = TaskSpec("mqar", (("num_kv_pairs", 4), ("seq_len", 32), ("vocab_size", 64)))
    model = ModelSpec("gla", (("attention_every", 2), ("d_model", 64), ("mlp", False), ("n_heads", 2), ("n_layers", 2)))
    train_spec = TrainSpec(steps=20, batch_size=32, lr=3e-3, eval_every=10, val_size=64, test_size=64)
    record = train(RunSpec("t", task, model, train_spec, 0), "cpu")
    assert record["status"] == "ok"
    assert record["model"]["state_size"] == 1408 + 2 * 32 * 64  # one gla layer, one attention layer
    assert record["kernel_paths"]["gla"] == "reference"  # the gla layer ran
    curve = record["metrics"]["curve"]
    assert [c["step"] for c in curve] == [10, 20]
    assert curve[1]["train_loss"] < curve[0]["train_loss"] < torch.log(torch.tensor(64.0)).item()
    assert ("attention_every", 2) in dict(record["spec"]["model"]["params"]).items()


@pytest.mark.parametrize(("every", "message"), [(-1, "must be >= 0"), (3, "exceeds n_layers=2")])
def test_bad_attention_every_is_one_line(every, message):
    grid = {
        "name": "g",
        "tasks": [{"name": "mqar"}],
        "models": [{"name": "gla", "n_layers": 2, "attention_every": every}],
    }
    with pytest.raises(SlabenchError, match=f"^model 'gla': attention_every={every} {message}"):
        expand_grid(grid)

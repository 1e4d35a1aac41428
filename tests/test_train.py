"""Real training on a tiny MQAR: attention learns it, and the record holds what docs/architecture.md promises."""

import torch

from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec
from slabench.record import SCHEMA_VERSION, CurvePoint, Environment, Metrics, ModelInfo, RunRecord, Timings
from slabench.runners.train import train

TASK = TaskSpec("mqar", (("num_kv_pairs", 4), ("seq_len", 32), ("vocab_size", 64)))


def _spec(model: str, steps: int, **train_kw) -> RunSpec:
    model_params = (("d_model", 64), ("mlp", False), ("n_heads", 2), ("n_layers", 2))
    return RunSpec("t", TASK, ModelSpec(model, model_params), TrainSpec(steps=steps, eval_every=50, **train_kw), 0)


def test_attention_learns_tiny_mqar():
    torch.set_num_threads(1)
    record = train(_spec("attention", 400, stop_at=0.99), "cpu")
    m = record["metrics"]
    assert record["status"] == "ok"
    assert m["test_acc"] >= 0.95, m["curve"]
    assert m["val_acc"] >= 0.95 and m["steps"] <= 400
    assert m["curve"][0]["val_acc"] < 0.5  # it learned during training: chance is ~1/4 of the values
    assert m["train_test_overlap"] == 0.0  # 64^32 possible inputs: no test example is ever drawn in training
    assert record["model"]["params"] > 0 and record["model"]["state_size"] == 2 * 2 * 32 * 64
    for key in ("train_seconds", "step_ms", "tokens_per_s", "peak_memory_bytes"):
        assert record["timings"][key] > 0
    assert record["environment"]["torch"] == torch.__version__


def test_sla_run_records_kernel_paths_and_gate_diagnostics():
    record = train(_spec("sla-gla", 20), "cpu")
    assert record["kernel_paths"] == {
        "embedding": "reference",
        "gla": "reference",
        "rms_norm_gated": "reference",
        "short_conv": "reference",
        "sla_gate": "reference",
    }
    last = record["metrics"]["curve"][-1]
    assert 0 <= last["layer0/gate_entropy"] <= 1 and 0.5 <= last["layer0/gate_max"] <= 1  # H = 2
    assert 0 <= last["layer0/gate_peaked_recall"] <= 1 and 0 <= last["layer0/kgate_peaked_recall"] <= 1


def test_train_test_overlap_matches_a_brute_force_count():
    """On a task with a dozen possible rows, the measured overlap (row hashes, matched once per
    evaluation) equals the fraction of test rows found among the training rows, counted here."""
    from slabench.runners.data import seeded_generator as _generator
    from slabench.runners.train import TEST_SEED

    task = TaskSpec("ar", (("num_kv_pairs", 1), ("seq_len", 4), ("vocab_size", 8)))
    spec = RunSpec(
        "t",
        task,
        ModelSpec("attention", (("d_model", 16), ("n_heads", 2), ("n_layers", 1))),
        TrainSpec(steps=6, batch_size=2, eval_every=4, val_size=8, test_size=16),
        0,
    )
    record = train(spec, "cpu")
    t = task.build()
    stream = t.stream(2, _generator(0, torch.device("cpu")), "cpu")
    seen = {tuple(row) for _ in range(6) for row in next(stream).inputs.tolist()}
    test_rows = t.sample(16, _generator(TEST_SEED, torch.device("cpu")), "cpu").inputs.tolist()
    expected = sum(tuple(r) in seen for r in test_rows) / 16
    assert 0 < expected < 1
    assert record["metrics"]["train_test_overlap"] == expected


def _fits(d: dict, schema: type) -> bool:
    return schema.__required_keys__ <= set(d) <= schema.__required_keys__ | schema.__optional_keys__


def test_record_has_exactly_the_schemas_keys():
    """What `train` writes and what slabench.record documents are the same keys, part by part."""
    torch.set_num_threads(1)
    spec = RunSpec(
        "t",
        TaskSpec("mqar", (("num_kv_pairs", 2), ("seq_len", 16), ("vocab_size", 32))),
        ModelSpec("sla-gla", (("d_model", 16), ("n_heads", 2), ("n_layers", 1))),
        TrainSpec(steps=4, batch_size=8, eval_every=2, val_size=16, test_size=16),
        0,
    )
    record = train(spec, "cpu")
    assert record["schema"] == SCHEMA_VERSION and set(record) == set(RunRecord.__annotations__) - {"traceback"}
    for part, schema in (
        ("metrics", Metrics),
        ("model", ModelInfo),
        ("timings", Timings),
        ("environment", Environment),
    ):
        only_finite_set = {"train_examples"} if part == "metrics" else set()  # a fresh stream writes no set size
        assert set(record[part]) == set(schema.__required_keys__ | schema.__optional_keys__) - only_finite_set, part
    point = record["metrics"]["curve"][0]
    assert set(CurvePoint.__optional_keys__) <= set(point) and all(
        isinstance(v, float) for k, v in point.items() if k != "step"
    )


def test_scored_positions_keep_every_scored_label():
    """Any rows with at most k scored positions: the gathered positions are distinct and hold
    every scored label once; the padding positions are unscored."""
    from slabench.runners.step import scored_positions
    from slabench.tasks import IGNORE

    g = torch.Generator().manual_seed(0)
    for T, k in [(2, 1), (7, 3), (64, 4), (64, 63)]:
        counts = torch.randint(0, k + 1, (50,), generator=g)  # [B] scored positions per row
        labels = torch.full((50, T), IGNORE)
        for row, n in enumerate(counts.tolist()):
            at = torch.randperm(T, generator=g)[:n]
            labels[row, at] = torch.randint(0, 9, (n,), generator=g)
        positions, picked = scored_positions(labels, k)
        assert positions.shape == picked.shape == (50, k)
        for row in range(50):
            assert len(set(positions[row].tolist())) == k
            assert sorted(picked[row][picked[row] != IGNORE].tolist()) == sorted(
                labels[row][labels[row] != IGNORE].tolist()
            )
    assert scored_positions(labels, None) == (None, labels)
    assert scored_positions(labels, 64) == (None, labels)  # k not below T: every position


def test_head_and_loss_at_scored_positions_equal_the_full_ones():
    """The loss over the gathered positions is the full loss, and so are its gradients (float64)."""
    from slabench.models import build_model
    from slabench.runners.step import scored_positions, token_loss

    task = TASK.build()
    batch = task.sample(16, torch.Generator().manual_seed(0))
    k = task.scored_per_row()
    assert k == 4  # MQAR: one scored position per pair
    torch.manual_seed(0)
    model = build_model("gla", vocab_size=64, d_model=32, n_heads=2, n_layers=2).double()
    full = token_loss(model(batch.inputs), batch.labels)
    positions, labels = scored_positions(batch.labels, k)
    logits = model(batch.inputs, positions)  # [B, k, V]
    assert logits.shape == (16, k, 64)
    gathered = token_loss(logits, labels)
    assert torch.allclose(gathered, full, rtol=1e-12, atol=0)
    for a, b in zip(torch.autograd.grad(full, model.parameters()), torch.autograd.grad(gathered, model.parameters())):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-15)


def test_training_on_scored_positions_gives_the_full_heads_record(monkeypatch):
    """A run whose step computes the head at the task's scored positions records what the same
    run computing it everywhere records (float32, CPU)."""
    from slabench.models.lm import LM
    from slabench.tasks.mqar import MQAR

    heads = set()  # the positions the head ran at: [B, K] in the gathered run, all T in the full one
    forward = LM.forward

    def spy(self, tokens, positions=None):
        heads.add(tokens.shape[1] if positions is None else positions.shape[1])
        return forward(self, tokens, positions)

    monkeypatch.setattr(LM, "forward", spy)
    spec = _spec("attention", 60)
    gathered = train(spec, "cpu")
    assert heads and max(heads) < dict(TASK.params)["seq_len"], heads  # the head at K < T positions
    monkeypatch.setattr(MQAR, "scored_per_row", lambda self: None)
    full = train(spec, "cpu")
    assert gathered["metrics"]["steps"] == full["metrics"]["steps"] == 60
    assert abs(gathered["metrics"]["test_acc"] - full["metrics"]["test_acc"]) <= 1e-6
    for a, b in zip(gathered["metrics"]["curve"], full["metrics"]["curve"]):
        assert abs(a["train_loss"] - b["train_loss"]) <= 1e-6 * abs(b["train_loss"])


def test_evaluation_at_the_scored_positions_equals_the_full_heads():
    """evaluate() runs the head at each chunk's scored positions only; its accuracies equal a
    plain count over the full logits, on a task whose rows score different numbers of positions."""
    from slabench.models import build_model
    from slabench.runners.train import evaluate
    from slabench.tasks import IGNORE, build_task

    task = build_task("mqar-overwrite", vocab_size=64, seq_len=48, num_kv_pairs=6, num_updates=2)
    data = task.sample(300, torch.Generator().manual_seed(0))
    counts = (data.labels != IGNORE).sum(1)
    assert counts.min() < counts.max()  # rows differ: padding positions are exercised
    torch.manual_seed(0)
    model = build_model("gla", vocab_size=64, d_model=32, n_heads=2, n_layers=1)
    with torch.no_grad():
        pred = model(data.inputs).argmax(-1)  # [B, T]
    mask = data.labels != IGNORE
    correct = ((pred == data.labels) & mask).sum(1)
    heads = []  # the logits' positions per chunk: the most any row scores, not all 48
    model.register_forward_hook(lambda module, args, logits: heads.append(logits.shape[1]))
    out = evaluate(model, data, None)
    assert heads and set(heads) == {counts.max().item()} and counts.max() < 48
    assert out["acc"] == correct.sum().item() / mask.sum().item()
    assert out["exact"] == (correct == mask.sum(1)).double().mean().item()
    assert out["n"] == 300


NAN_AT_EVALUATION = '''
import torch
from torch import nn


class NanAtEvaluation(nn.Module):
    """Trains as a linear map; in eval mode its output is NaN, so argmax would read class 0."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        y = self.proj(x)
        return y if self.training else y * float("nan")
'''


def test_non_finite_logits_at_evaluation_are_a_divergence(tmp_path):
    """A model whose logits are NaN at evaluation only (its training loss stays finite) is recorded
    as diverged, alone and in a fold, not scored: argmax of NaN is class 0, a real label."""
    from slabench.runners.batched import train_batched

    path = tmp_path / "nan_mixer.py"
    path.write_text(NAN_AT_EVALUATION)
    model = ModelSpec(f"{path}:NanAtEvaluation", (("d_model", 32), ("n_heads", 2), ("n_layers", 1)))
    spec = RunSpec("t", TASK, model, TrainSpec(steps=20, eval_every=10), 0)
    record = train(spec, "cpu")
    assert record["status"] == "diverged" and record["error"] == "non-finite logits at the evaluation of step 10"
    assert "test_acc" not in record["metrics"] and record["metrics"]["steps"] == 10
    folded = train_batched([spec, RunSpec("t", spec.task, spec.model, spec.train, 1)], "cpu")
    assert [r["status"] for r in folded] == ["diverged", "diverged"]
    assert all(r["error"] == "non-finite logits at the evaluation of step 10" for r in folded)

"""Real training on a tiny MQAR: attention learns it, and the record holds what DESIGN.md promises."""

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
        "gla": "reference",
        "rms_norm_gated": "reference",
        "short_conv": "reference",
        "sla_gate": "reference",
    }
    last = record["metrics"]["curve"][-1]
    assert 0 <= last["layer0/gate_entropy"] <= 1 and 0.5 <= last["layer0/gate_max"] <= 1  # H = 2


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

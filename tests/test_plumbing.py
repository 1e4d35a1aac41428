"""The plumbing around the maths, each against an oracle that does not go through the code it
checks: which rows the training loop, early stopping and the reported score see; the SLA gates
recomputed from the projection weights; every mixer trained for real on the CPU."""

import math

import pytest
import torch
import torch.nn.functional as F

from slabench import kernels
from slabench.config import ModelSpec, RunSpec, TaskSpec, TrainSpec
from slabench.models import MIXERS, build_mixer, build_model
from slabench.runners import train as train_mod
from slabench.tasks import IGNORE, build_task

REAL_EVALUATE = train_mod.evaluate


# --- validation, test and training data ---------------------------------------------------------


def _rows(t: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(r) for r in t.tolist()}


def test_validation_test_and_training_rows_are_disjoint(monkeypatch, one_thread):
    """Record the rows every evaluation and every optimizer step actually receives: evaluations
    during training (early stopping, best checkpoint, lr choice) see only validation rows, the
    reported score only test rows, and neither set shares a row with training or with the other.
    MQAR at vocab 64, T 32 has ~64^12 possible rows, so any shared row means a shared seed."""
    evaluated, trained = [], []
    real_evaluate, real_step = REAL_EVALUATE, train_mod.TrainStep.__call__

    def spy_evaluate(model, data, autocast):
        evaluated.append(data.inputs.clone())
        return real_evaluate(model, data, autocast)

    def spy_step(self, inputs, labels):
        trained.append(inputs.clone())
        return real_step(self, inputs, labels)

    monkeypatch.setattr(train_mod, "evaluate", spy_evaluate)
    monkeypatch.setattr(train_mod.TrainStep, "__call__", spy_step)
    task = TaskSpec("mqar", (("num_kv_pairs", 4), ("seq_len", 32), ("vocab_size", 64)))
    model = ModelSpec("attention", (("d_model", 16), ("n_heads", 2), ("n_layers", 1)))
    # Equal sizes: a set drawn from the other's seed would then be the very same rows (with
    # different sizes the samplers' draws differ, and a shared seed would go unseen).
    cfg = TrainSpec(steps=6, batch_size=16, eval_every=2, val_size=32, test_size=32)
    record = train_mod.train(RunSpec("t", task, model, cfg, 3), "cpu")
    assert record["status"] == "ok"

    *during, final = evaluated
    assert len(during) == 3 and len(trained) == 6
    assert all(torch.equal(e, during[0]) for e in during)  # one fixed validation set
    val, test = _rows(during[0]), _rows(final)
    train_rows = set().union(*map(_rows, trained))
    assert len(val) == 32 and len(test) == 32 and len(train_rows) == 96
    assert not val & test, "validation shares rows with the test set"
    assert not val & train_rows and not test & train_rows

    # Training batches are the stream seeded by the run seed (arms with equal seeds see equal
    # batches, which the paired comparisons rely on), built here from torch directly.
    stream = task.build().stream(16, torch.Generator().manual_seed(3), "cpu")
    for seen in trained:
        assert torch.equal(seen, next(stream).inputs)
    # The fixed sets come from seeds outside the range a user may give as a run seed.
    assert min(train_mod.VAL_SEED, train_mod.TEST_SEED) >= 2**31 and train_mod.VAL_SEED != train_mod.TEST_SEED


def _run_with_scripted_validation(monkeypatch, script: list[float], stop_at: float):
    """Train with the validation accuracies replaced by `script`; (metrics, the weights at each
    validation, the weights the test set was scored with)."""
    script, real_evaluate = iter(script), REAL_EVALUATE  # not the patch of an earlier call
    at_val, at_test = [], []

    def scripted(model, data, autocast):
        result = real_evaluate(model, data, autocast)
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        if data.inputs.shape[0] == 24:  # the validation set; the test set has 40 rows
            result["acc"] = next(script)
            at_val.append(weights)
        else:
            at_test.append(weights)
        return result

    monkeypatch.setattr(train_mod, "evaluate", scripted)
    task = TaskSpec("mqar", (("num_kv_pairs", 4), ("seq_len", 32), ("vocab_size", 64)))
    model = ModelSpec("attention", (("d_model", 16), ("n_heads", 2), ("n_layers", 1)))
    cfg = TrainSpec(steps=10, batch_size=16, eval_every=2, val_size=24, test_size=40, stop_at=stop_at)
    metrics = train_mod.train(RunSpec("t", task, model, cfg, 0), "cpu")["metrics"]
    return metrics, at_val, at_test


def test_best_checkpoint_and_early_stop_follow_validation(monkeypatch, one_thread):
    """Validation accuracies made up here decide which weights are scored on the test set (those
    of the best validation, not the last) and when the run stops."""
    m, at_val, at_test = _run_with_scripted_validation(monkeypatch, [0.1, 0.6, 0.4, 0.3, 0.2], 0.0)
    assert m["steps"] == 10 and [c["val_acc"] for c in m["curve"]] == [0.1, 0.6, 0.4, 0.3, 0.2]
    assert m["val_acc"] == 0.6
    assert len(at_val) == 5 and len(at_test) == 1
    assert torch.equal(at_test[0], at_val[1])  # the weights of step 4, the best validation
    assert not torch.equal(at_test[0], at_val[-1])  # training went on after it

    m, at_val, _ = _run_with_scripted_validation(monkeypatch, [0.1, 0.6, 0.9, 0.2, 0.2], 0.9)
    assert m["steps"] == 6 and len(at_val) == 3 and m["val_acc"] == 0.9  # reaching the threshold stops it


class _CopyModel(torch.nn.Module):
    """Predicts, at every position (or at `positions`, as the LM does), the input token itself
    (logits one-hot on it)."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.w = vocab, torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, positions=None):  # [B, T] -> [B, T or K, V]
        tokens = inputs if positions is None else inputs.gather(1, positions)
        return F.one_hot(tokens, self.vocab).float() + 0 * self.w


def test_evaluate_accuracy_exact_match_and_slices_by_hand(monkeypatch):
    """Micro accuracy over scored positions (not a mean of per-row accuracies), exact match per
    row, and both per slice value, on a batch whose answers are counted here; chunked
    evaluation (2 rows a pass) must not change them."""
    from slabench.tasks import Batch

    I = IGNORE  # noqa: E741  (reads as the ignore marker in the label grid below)
    inputs = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8], [1, 1, 1, 1]])
    labels = torch.tensor([[I, 2, 9, I], [I, I, 7, 8], [1, I, I, I]])  # right: 1 of 2, 2 of 2, 1 of 1
    data = Batch(inputs, labels, {"k": torch.tensor([1, 2, 1])})
    monkeypatch.setattr(train_mod, "EVAL_CHUNK", 2)
    r = train_mod.evaluate(_CopyModel(10), data, None)
    assert r["acc"] == pytest.approx(4 / 5) and r["exact"] == pytest.approx(2 / 3) and r["n"] == 3
    assert r["slices"]["k=1"] == {"acc": pytest.approx(2 / 3), "exact": 0.5, "n": 2}
    assert r["slices"]["k=2"] == {"acc": 1.0, "exact": 1.0, "n": 1}


def _lrs(monkeypatch, **train_kw) -> list[float]:
    """The learning rate set before each optimizer step of a 10-step run."""
    seen, real = [], train_mod.TrainStep.set_lr
    monkeypatch.setattr(train_mod.TrainStep, "set_lr", lambda self, lr: (seen.append(lr), real(self, lr))[1])
    task = TaskSpec("mqar", (("num_kv_pairs", 2), ("seq_len", 16), ("vocab_size", 32)))
    model = ModelSpec("attention", (("d_model", 16), ("n_heads", 2), ("n_layers", 1)))
    cfg = TrainSpec(steps=10, batch_size=4, eval_every=10, val_size=4, test_size=4, lr=0.01, **train_kw)
    train_mod.train(RunSpec("t", task, model, cfg, 0), "cpu")
    monkeypatch.undo()
    return seen


def test_learning_rate_schedules_by_hand(monkeypatch, one_thread):
    """progress = step / 10 before each step; warmup 10% ramps from 0; 'wsd' decays linearly to
    0 over the last 20%; 'cosine' follows half a cosine after warmup."""

    def approx(xs):
        return pytest.approx(xs, abs=1e-12)

    assert _lrs(monkeypatch, schedule="wsd") == approx([0.0] + [0.01] * 8 + [0.005])  # 0.9: 0.01 * 0.1 / 0.2
    assert _lrs(monkeypatch, schedule="constant") == approx([0.0] + [0.01] * 9)
    cosine = [0.0] + [0.005 * (1 + math.cos(math.pi * (s / 10 - 0.1) / 0.9)) for s in range(1, 10)]
    assert _lrs(monkeypatch, schedule="cosine") == approx(cosine)
    assert _lrs(monkeypatch, schedule="constant", warmup=0.5) == approx([0.0, 0.002, 0.004, 0.006, 0.008] + [0.01] * 5)


def test_weight_decay_on_matrices_only():
    """Norm weights and biases are not decayed; embeddings, projections and the conv are."""
    model = build_model("sla-gla", vocab_size=16, d_model=16, n_layers=1, n_heads=2)
    opt = train_mod.make_optimizer(model, TrainSpec(weight_decay=0.1), torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    plain = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert decayed | plain == set(names.values()) and not decayed & plain
    assert {
        "embed.weight",
        "head.weight",
        "blocks.0.mixer.qkv_proj.weight",
        "blocks.0.mixer.conv.conv.weight",
        "blocks.0.mixer.q_gate.down.weight",
    } <= decayed
    assert plain == {
        "blocks.0.norm1.weight",
        "blocks.0.norm2.weight",
        "norm.weight",
        "blocks.0.mixer.o_norm.weight",
        "blocks.0.mixer.gk_proj.1.bias",
        "blocks.0.mixer.q_gate.up.bias",
        "blocks.0.mixer.k_gate.up.bias",
    }


# --- SLA gate wiring, recomputed from the weights ---------------------------------------------------


def _softmax_heads(src: torch.Tensor, gate) -> torch.Tensor:
    """softmax((src W_down^T W_up^T + b) / tau) over heads, from the gate's weights, in float64."""
    logits = src @ gate.down.weight.double().T @ gate.up.weight.double().T + gate.up.bias.double()
    return torch.softmax(logits / gate.temp, dim=-1)


@pytest.mark.parametrize("feature_map", ["elu+1", "identity"])
def test_sla_linear_forward_by_hand(feature_map):
    """sla-linear without conv or norm, written out from its weights: the query gate reads the
    full raw query, the key gate the full raw key, each scales phi of its own tensor, and the
    result is causal linear attention. A gate wired to the wrong tensor changes the output."""
    torch.manual_seed(0)
    B, T, D, H = 2, 7, 12, 3
    m = build_mixer(
        "sla-linear", D, H, conv_size=0, output_norm="none", feature_map=feature_map, gate_rank=2, gate_temp=0.7
    ).double()
    with torch.no_grad():  # non-trivial gate biases, different for q and k
        m.q_gate.up.bias.copy_(torch.tensor([0.5, -1.0, 0.2]))
        m.k_gate.up.bias.copy_(torch.tensor([-0.3, 0.8, 0.0]))
    x = torch.randn(B, T, D, dtype=torch.float64)
    y = m(x)

    W = m.qkv_proj.weight.double()  # [2 Dk + Dv, D]
    Dk = m.key_dim
    q_raw, k_raw, v = (x @ W.T).split([Dk, Dk, m.value_dim], dim=-1)  # [B, T, Dk_all] ...
    gq, gk = _softmax_heads(q_raw, m.q_gate), _softmax_heads(k_raw, m.k_gate)  # [B, T, H]
    phi = (lambda t: F.elu(t) + 1) if feature_map == "elu+1" else (lambda t: t)
    q = phi(q_raw).view(B, T, H, -1) * gq[..., None]
    k = phi(k_raw).view(B, T, H, -1) * gk[..., None]
    v = v.view(B, T, H, -1)
    scores = torch.einsum("bthd,bshd->bhts", q, k) * (Dk // H) ** -0.5
    scores = scores * torch.ones(T, T, dtype=torch.float64).tril()  # causal: s <= t
    o = torch.einsum("bhts,bshd->bthd", scores, v).reshape(B, T, -1)
    expected = o @ m.o_proj.weight.double().T
    torch.testing.assert_close(m.q_gate.last_gates, gq)
    torch.testing.assert_close(m.k_gate.last_gates, gk)
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("name", ["sla-gla", "sla-gdn", "sla-retnet", "sla-linear"])
def test_sla_gates_read_the_raw_query_and_key(name):
    """For every twin (conv on, the default): the gates equal the softmax of the gate weights
    applied to the conv'd q and k columns of the projection, recomputed here."""
    torch.manual_seed(0)
    m = build_mixer(name, 16, 2).double()
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    m(x)
    h = m.qkv_proj(x)  # [B, T, 2 Dk + Dv]
    W = m.conv.conv.weight.double()[:, 0]  # [C, W] depthwise, causal
    size = W.shape[1]
    padded = F.pad(h, (0, 0, size - 1, 0))
    h = F.silu(sum(W[:, j] * padded[:, j : j + h.shape[1]] for j in range(size)))
    q_raw, k_raw = h[..., : m.key_dim], h[..., m.key_dim : 2 * m.key_dim]
    torch.testing.assert_close(m.q_gate.last_gates, _softmax_heads(q_raw, m.q_gate))
    torch.testing.assert_close(m.k_gate.last_gates, _softmax_heads(k_raw, m.k_gate))


def test_gate_source_x_reads_the_layer_input():
    torch.manual_seed(0)
    m = build_mixer("sla-linear", 16, 2, gate_source="x").double()
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    m(x)
    torch.testing.assert_close(m.q_gate.last_gates, _softmax_heads(x, m.q_gate))
    torch.testing.assert_close(m.k_gate.last_gates, _softmax_heads(x, m.k_gate))


# --- every mixer trains on the CPU ---------------------------------------------------------------

# The kernel op each mixer family must run through (besides the conv and norm ops).
CORE_OP = {
    "linear": "simple_gla",
    "retnet": "simple_gla",
    "gla": "gla",
    "gdn": "delta_rule",
    "deltanet": "delta_rule",
    "mamba2": "simple_gla",
}


@pytest.mark.parametrize("name", MIXERS.names())
def test_every_mixer_trains_and_its_loss_falls(name, one_thread):
    """30 AdamW steps on a small MQAR: finite losses that fall, through the ops the mixer is
    built on (recorded for this mixer alone)."""
    torch.manual_seed(0)
    task = build_task("mqar", vocab_size=32, seq_len=16, num_kv_pairs=2)
    model = build_model(name, vocab_size=32, d_model=32, n_layers=2, n_heads=2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    kernels.reset_paths_used()
    losses = []
    for _ in range(30):
        batch = task.sample(32, gen)
        logits = model(batch.inputs)  # [B, T, V]
        loss = F.cross_entropy(logits.flatten(0, 1), batch.labels.flatten(), ignore_index=IGNORE)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses), losses
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3, losses
    paths = kernels.paths_used()
    base = name.removeprefix("sla-")
    expected = {"rms_norm_gated", "embedding"}  # the backbone's norms and token embedding; attention is SDPA
    sla, l2 = name.startswith("sla-"), base in ("gdn", "deltanet")  # l2: an L2 feature map
    if base != "attention":
        expected |= {CORE_OP[base], "short_conv"}
    if sla:
        expected |= {"sla_gate_l2" if l2 else "sla_gate"}  # the twins' gates (doing the L2 map too)
    elif l2:
        expected |= {"l2norm"}
    if base == "gdn":
        expected |= {"gdn_gates"}  # its decay and write strength
    assert set(paths) == expected and set(paths.values()) == {"reference"}

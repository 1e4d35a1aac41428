"""The state-tracking, overwrite, compositional, compression and memorization tasks against
independent per-row oracles.

Each task has a strategy over valid parameters and a checker in plain Python that reads one
example's inputs, solves it and checks the format; `NEW_CASES` joins test_tasks.py's `CASES`,
whose registry-wide test runs them. The checkers share no code with the generators. The tests
here cover what one row cannot show: slices, the shared memorization map, the invalid inputs.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slabench.errors import SlabenchError
from slabench.tasks import IGNORE, build_task

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def scored(y):
    return [t for t, v in enumerate(y) if v != IGNORE]


# ---- strategies over valid parameters -------------------------------------------------------


@st.composite
def mqar_overwrite_params(draw):
    K = draw(st.integers(1, 6))
    U = draw(st.integers(1, K))
    return {
        "num_kv_pairs": K,
        "num_updates": U,
        "seq_len": 2 * (K + U) + 2 * K + 2 * draw(st.integers(0, 15)),
        "vocab_size": 2 * (K + 1) + draw(st.integers(0, 40)),
        "power_a": draw(st.floats(0.01, 1.0)),
        "random_non_queries": draw(st.booleans()),
    }


@st.composite
def mqar_compositional_params(draw):
    L = draw(st.integers(2, 3))
    g = draw(st.integers(2, 5 - L))  # grids of 4, 9 and 8 keys
    K = g**L
    return {
        "num_kv_pairs": K,
        "key_len": L,
        "seq_len": 2 * K * (L + 1) + draw(st.integers(0, 20)),
        "vocab_size": 1 + (L + 1) * K + draw(st.integers(0, 10)),
        "power_a": draw(st.floats(0.01, 1.0)),
        "random_non_queries": draw(st.booleans()),
    }


def bits_params():
    return st.fixed_dictionaries({"seq_len": st.integers(1, 40), "label": st.sampled_from(["every", "end"])})


def state_tracking_params():
    return st.fixed_dictionaries(
        {"seq_len": st.integers(1, 40), "n": st.sampled_from([3, 4, 5]), "label": st.sampled_from(["every", "end"])}
    )


def compression_params():
    return st.fixed_dictionaries(
        {"seq_len": st.integers(3, 40), "vocab_size": st.integers(5, 20), "teacher_forcing": st.booleans()}
    )


def memorization_params():
    return st.fixed_dictionaries(
        {"seq_len": st.integers(2, 40), "vocab_size": st.integers(6, 80), "map_seed": st.integers(0, 10**6)}
    )


# ---- per-example checkers (oracle + format) -------------------------------------------------


def bindings(task, x):
    """mqar-overwrite's context read as a stream of bindings: (memory, updated keys, position of
    the value token of each key's latest binding), checking its format on the way."""
    K, U, half, V = task.num_kv_pairs, task.num_updates, task.vocab_size // 2, task.vocab_size
    memory, bound_at = {}, {}
    for i in range(K):
        k, v = x[2 * i], x[2 * i + 1]
        assert 1 <= k < half <= v < V and k not in memory
        memory[k], bound_at[k] = v, 2 * i + 1
    assert len(set(memory.values())) == K
    updated = []
    for i in range(K, K + U):
        k, v = x[2 * i], x[2 * i + 1]
        assert k in memory and k not in updated and half <= v < V and v != memory[k]  # a new value
        memory[k], bound_at[k] = v, 2 * i + 1
        updated.append(k)
    return memory, set(updated), bound_at


def check_mqar_overwrite(task, x, y):
    K, U = task.num_kv_pairs, task.num_updates
    ctx = 2 * (K + U)
    memory, updated, _ = bindings(task, x)
    pos = scored(y)
    assert all(t >= ctx and (t - ctx) % 2 == 0 for t in pos)
    asked = [x[t] for t in pos]
    assert len(set(asked)) == len(asked)  # each key queried at most once
    assert set(asked) in ({*updated}, set(memory) - updated) and asked  # all updated keys, or all the others
    assert all(y[t] == memory[x[t]] for t in pos)  # the latest binding
    if not task.random_non_queries:
        assert all(x[t] == 0 for t in range(ctx, len(x)) if t not in pos)


def check_mqar_compositional(task, x, y):
    K, L, V = task.num_kv_pairs, task.key_len, task.vocab_size
    band = (V - 1) // (L + 1)
    ctx = K * (L + 1)
    memory = {}
    for b in range(K):
        key, value = tuple(x[b * (L + 1) : b * (L + 1) + L]), x[b * (L + 1) + L]
        assert all(1 + i * band <= key[i] < 1 + (i + 1) * band for i in range(L))
        assert 1 + L * band <= value < 1 + (L + 1) * band and key not in memory
        memory[key] = value
    assert len(set(memory.values())) == K
    slots = [{k[i] for k in memory} for i in range(L)]
    assert set(memory) == set(itertools.product(*slots))  # a full grid
    for i in range(L):  # no single token tells the value: each sits in several keys with different values
        for tok in slots[i]:
            assert len({v for k, v in memory.items() if k[i] == tok}) >= 2
    pos = scored(y)
    assert all(t >= ctx + L - 1 and (t - ctx - (L - 1)) % (L + 1) == 0 for t in pos)
    asked = [tuple(x[t - L + 1 : t + 1]) for t in pos]
    assert sorted(asked) == sorted(memory)  # every key queried once
    assert all(y[t] == memory[k] for t, k in zip(pos, asked))
    if not task.random_non_queries:
        in_query = {t - i for t in pos for i in range(L)}
        assert all(x[t] == 0 for t in range(ctx, len(x)) if t not in in_query)


def check_bits(task, x, y, answer):
    assert set(x) <= {0, 1}
    expected = [answer(x[: t + 1]) for t in range(len(x))]
    pos = scored(y)
    assert pos == (list(range(len(x))) if task.label == "every" else [len(x) - 1])
    assert all(y[t] == expected[t] for t in pos)


def check_parity(task, x, y):
    check_bits(task, x, y, lambda prefix: sum(prefix) % 2)


def check_majority(task, x, y):
    check_bits(task, x, y, lambda p: 2 if 2 * sum(p) == len(p) else int(2 * sum(p) > len(p)))


def check_state_tracking(task, x, y):
    n = task.n
    perms = sorted(itertools.permutations(range(n)))
    state = tuple(range(n))  # where each element has been sent so far
    for t, tok in enumerate(x):
        g = perms[tok]
        state = tuple(g[s] for s in state)  # apply g after everything before it
        assert y[t] == (perms.index(state) if task.label == "every" or t == len(x) - 1 else IGNORE)


def check_compression(task, x, y):
    T, V = task.seq_len, task.vocab_size
    n = (T - 1) // 2
    content = x[:n]
    assert all(3 <= t < V for t in content) and x[n] == 1
    assert x[n + 1 : 2 * n + 1] == (content if task.teacher_forcing else [2] * n)
    assert x[2 * n + 1 :] == [0] * (T - 2 * n - 1)
    assert [(t, y[t]) for t in scored(y)] == list(zip(range(n, 2 * n), content))


def check_memorization(task, x, y):
    T, band = task.seq_len, (task.vocab_size - 2) // 2
    P = T // 2
    memory = {}
    for i in range(P):
        k, v = x[2 * i], y[2 * i + 1]
        assert 2 <= k < 2 + band and x[2 * i + 1] == 1 and y[2 * i] == IGNORE
        assert 2 + band <= v < 2 + 2 * band and memory.setdefault(k, v) == v  # a fixed map
    assert len(set(memory.values())) == len(memory)  # one-to-one
    assert x[2 * P :] == [0] * (T - 2 * P) and scored(y) == list(range(1, 2 * P, 2))


NEW_CASES = {
    "mqar-overwrite": (mqar_overwrite_params(), check_mqar_overwrite),
    "mqar-compositional": (mqar_compositional_params(), check_mqar_compositional),
    "parity": (bits_params(), check_parity),
    "majority": (bits_params(), check_majority),
    "state-tracking": (state_tracking_params(), check_state_tracking),
    "compression": (compression_params(), check_compression),
    "memorization": (memorization_params(), check_memorization),
}


# ---- slices ---------------------------------------------------------------------------------


@SETTINGS
@given(params=mqar_overwrite_params(), seed=st.integers(0, 2**31))
def test_mqar_overwrite_slices(params, seed):
    """`updated` says which kind of key the example asks for; `gap_bucket` is the decile of the
    mean distance from a query back to its key's latest value, both recomputed from the inputs."""
    task = build_task("mqar-overwrite", **params)
    batch = task.sample(6, torch.Generator().manual_seed(seed))
    T = task.seq_len
    for i, (x, y) in enumerate(zip(batch.inputs.tolist(), batch.labels.tolist())):
        _, updated, bound_at = bindings(task, x)
        pos = scored(y)
        assert batch.slices["updated"][i] == int(x[pos[0]] in updated)
        gap = sum(t - bound_at[x[t]] for t in pos) // len(pos)
        assert batch.slices["gap_bucket"][i] == min(gap * 10 // T, 9)
        assert batch.slices["num_updates"][i] == task.num_updates


@SETTINGS
@given(params=mqar_overwrite_params(), seed=st.integers(0, 2**31))
def test_mqar_overwrite_first_binding_scores_below_the_latest(params, seed):
    """Answering each query with its key's FIRST binding gets every query of an example that asks
    updated keys wrong (a new value always differs from the old one) and every other one right, so
    it scores below 100% over a batch (2^-64 odds that 64 examples ask no updated key); the latest
    binding, read from the inputs, scores 100%."""
    task = build_task("mqar-overwrite", **params)
    batch = task.sample(64, torch.Generator().manual_seed(seed))
    first_right = latest_right = total = 0
    for i, (x, y) in enumerate(zip(batch.inputs.tolist(), batch.labels.tolist())):
        first = {x[2 * j]: x[2 * j + 1] for j in range(task.num_kv_pairs)}
        latest, _, _ = bindings(task, x)
        pos = scored(y)
        hits = sum(first[x[t]] == y[t] for t in pos)
        assert hits == (0 if batch.slices["updated"][i] else len(pos))
        first_right, total = first_right + hits, total + len(pos)
        latest_right += sum(latest[x[t]] == y[t] for t in pos)
    assert latest_right == total
    assert first_right < total


def test_mqar_overwrite_asks_both_kinds_of_key():
    batch = build_task("mqar-overwrite").sample(400, torch.Generator().manual_seed(0))
    share = batch.slices["updated"].double().mean().item()
    assert 0.4 < share < 0.6  # 1/2 each; 400 draws put 0.4..0.6 at > 4 standard deviations
    assert (build_task("mqar-overwrite", num_updates=4).sample(50, torch.Generator()).slices["updated"] == 1).all()


def test_majority_margin_slice():
    task = build_task("majority", seq_len=9, label="end")
    batch = task.sample(200, torch.Generator().manual_seed(0))
    ones = batch.inputs.sum(1)
    assert torch.equal(batch.slices["margin"], (2 * ones - 9).abs().clamp(max=4))
    assert set(batch.slices["margin"].tolist()) == {1, 3, 4}  # odd length: never a tie at the end


# ---- memorization: one map across seeds, set by map_seed -------------------------------------


def learned_map(task, seed, batch=64):
    b = task.sample(batch, torch.Generator().manual_seed(seed))
    keys, values = b.inputs[:, 0::2].flatten().tolist(), b.labels[:, 1::2].flatten().tolist()
    return dict(zip(keys, values))


def test_memorization_map_depends_on_map_seed_only():
    task = build_task("memorization", vocab_size=34, seq_len=32)
    a, b = learned_map(task, 0), learned_map(task, 1)
    assert len(a) == len(b) == 16  # 64 x 16 draws of 16 keys: all seen
    assert a == b  # training, validation and test seeds share the map
    other = learned_map(build_task("memorization", vocab_size=34, seq_len=32, map_seed=7), 0)
    assert other != a and sorted(other.values()) == sorted(a.values()) == list(range(18, 34))


# ---- display and invalid parameters ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NEW_CASES))
def test_show_decodes_every_scored_position(name):
    from rich.console import Console

    from slabench.tasks.show import render_examples

    task = build_task(name, seq_len=24) if name not in ("mqar-overwrite", "mqar-compositional") else build_task(name)
    console = Console(record=True, width=400)
    console.print(render_examples(task, n=1, seed=5))
    text = console.export_text()
    batch = task.sample(1, torch.Generator().manual_seed(5))
    names = task.token_names()
    x, y = batch.inputs[0].tolist(), batch.labels[0].tolist()
    for t in scored(y):
        assert f"{names.get(x[t], x[t])}→{names.get(y[t], y[t])}" in text


INVALID = [
    ("mqar-overwrite", {"num_updates": 0}, "num_updates"),
    ("mqar-overwrite", {"num_updates": 5}, "num_updates"),
    ("mqar-overwrite", {"seq_len": 63}, "seq_len"),
    ("mqar-overwrite", {"seq_len": 18}, "seq_len"),
    ("mqar-overwrite", {"vocab_size": 9}, "vocab_size"),
    ("mqar-overwrite", {"power_a": 1.5}, "power_a"),
    ("mqar-compositional", {"num_kv_pairs": 6}, "num_kv_pairs"),
    ("mqar-compositional", {"num_kv_pairs": 9, "key_len": 3}, "num_kv_pairs"),
    ("mqar-compositional", {"key_len": 1}, "key_len"),
    ("mqar-compositional", {"seq_len": 23}, "seq_len"),
    ("mqar-compositional", {"vocab_size": 12}, "vocab_size"),
    ("parity", {"label": "middle"}, "label"),
    ("parity", {"seq_len": 0}, "seq_len"),
    ("majority", {"label": "all"}, "label"),
    ("state-tracking", {"n": 6}, "n"),
    ("state-tracking", {"seq_len": 0}, "seq_len"),
    ("compression", {"seq_len": 2}, "seq_len"),
    ("compression", {"vocab_size": 4}, "vocab_size"),
    ("memorization", {"vocab_size": 5}, "vocab_size"),
    ("memorization", {"seq_len": 1}, "seq_len"),
    ("memorization", {"map_seed": -1}, "map_seed"),
]


@pytest.mark.parametrize("name,params,field", INVALID)
def test_invalid_parameters_name_the_field(name, params, field):
    with pytest.raises(SlabenchError) as err:
        build_task(name, **params)
    message = str(err.value)
    assert field in message and "\n" not in message

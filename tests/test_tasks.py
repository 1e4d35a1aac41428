"""Task generators against property checks and independent per-row oracles.

Each task has a strategy over valid parameters and a checker written in plain Python that reads
one example's inputs, solves it (the oracle), and checks the format: what is scored, token
ranges, distinctness. The checkers share no code with the generators.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_task_oracles import NEW_CASES

from slabench.errors import SlabenchError
from slabench.tasks import IGNORE, TASKS, build_task
from slabench.tasks.sampling import alias_table, distinct_ints, subset_mask, weighted_distinct

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def rows(task, batch=6, seed=0):
    b = task.sample(batch, torch.Generator().manual_seed(seed))
    return b, list(zip(b.inputs.tolist(), b.labels.tolist()))


def scored(y):
    return [t for t, v in enumerate(y) if v != IGNORE]


# ---- strategies over valid parameters -------------------------------------------------------


@st.composite
def mqar_params(draw):
    K, P = draw(st.integers(1, 8)), draw(st.integers(1, 3))
    return {
        "num_kv_pairs": K,
        "num_passes": P,
        "seq_len": 2 * K * (P + 1) + 2 * draw(st.integers(0, 20)),
        "vocab_size": 2 * (K + 1) + draw(st.integers(0, 100)),
        "power_a": draw(st.floats(0.01, 1.0)),
        "random_non_queries": draw(st.booleans()),
    }


@st.composite
def ar_params(draw):
    K = draw(st.integers(1, 8))
    return {
        "num_kv_pairs": K,
        "seq_len": 2 * K + 1 + draw(st.integers(0, 20)),
        "vocab_size": 2 * (K + 1) + draw(st.integers(0, 50)),
        "random_filler": draw(st.booleans()),
    }


@st.composite
def needle_params(draw):
    haystack = draw(st.sampled_from(["repeat", "random", "distractor"]))
    key_len, value_len = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    num_needles = draw(st.integers(1, 3))
    num_queries = draw(st.integers(1, num_needles))
    num_distractors = draw(st.integers(0, 4))
    M = num_needles + (num_distractors if haystack == "distractor" else 0)
    L = 1 + key_len + value_len
    band = max(M, 2, 10 if haystack == "repeat" else 1) + draw(st.integers(0, 10))
    return {
        "haystack": haystack,
        "key_len": key_len,
        "value_len": value_len,
        "num_needles": num_needles,
        "num_queries": num_queries,
        "num_distractors": num_distractors,
        "near_miss": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "noise": draw(st.sampled_from([0.0, 0.3, 1.0])),
        "depth": draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        "seq_len": (M + num_queries) * L + draw(st.integers(0, 30)),
        "vocab_size": 3 + 3 * band + draw(st.integers(0, 2)),
    }


@st.composite
def noisy_recall_params(draw):
    K = draw(st.integers(1, 6))
    p = {
        "num_kv_pairs": K,
        "noise": draw(st.floats(0.0, 0.6)),
        "seq_len": draw(st.integers(2 * (K + 1), 80)),
        "vocab_size": 3 * K + 1 + draw(st.integers(0, 20)),
    }
    pairs = (p["seq_len"] - round(p["noise"] * p["seq_len"])) // 2
    return p if pairs > K else draw(st.nothing())


@st.composite
def fuzzy_recall_params(draw):
    K, key_len, value_len = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    band = max(2, math.ceil(K ** (1 / key_len))) + draw(st.integers(0, 5))
    band += band**key_len < K  # float root rounding
    return {
        "num_kv_pairs": K,
        "key_len": key_len,
        "value_len": value_len,
        "seq_len": (K + 1) * (key_len + value_len) + draw(st.integers(0, 15)),
        "vocab_size": 1 + 2 * band + draw(st.integers(0, 1)),
    }


@st.composite
def selective_copy_params(draw):
    n, nv = draw(st.integers(1, 10)), draw(st.integers(1, 3))
    return {
        "num_tokens": n,
        "noise_vocab_size": nv,
        "seq_len": 2 * n + 1 + draw(st.integers(0, 30)),
        "vocab_size": 2 + nv + 2 + draw(st.integers(0, 10)),
    }


# ---- per-example checkers (oracle + format) -------------------------------------------------


def check_mqar(task, x, y):
    K, P, V = task.num_kv_pairs, task.num_passes, task.vocab_size
    ctx = 2 * K * P
    keys, values = x[0 : 2 * K : 2], x[1 : 2 * K : 2]
    assert len(set(keys)) == K and all(1 <= k < V // 2 for k in keys)
    assert len(set(values)) == K and all(V // 2 <= v < V for v in values)
    assert x[:ctx] == x[: 2 * K] * P
    memory = dict(zip(keys, values))
    pos = scored(y)
    assert len(pos) == K and all(t >= ctx and (t - ctx) % 2 == 0 for t in pos)
    assert sorted(x[t] for t in pos) == sorted(keys)  # every key queried once
    assert all(y[t] == memory[x[t]] for t in pos)
    if not task.random_non_queries:
        assert all(x[t] == 0 for t in range(ctx, len(x)) if t not in pos)


def check_ar(task, x, y):
    K, V, T = task.num_kv_pairs, task.vocab_size, task.seq_len
    keys, values = x[0 : 2 * K : 2], x[1 : 2 * K : 2]
    assert len(set(keys)) == K and all(1 <= k < V // 2 for k in keys)
    assert len(set(values)) == K and all(V // 2 <= v < V for v in values)
    assert scored(y) == [T - 1]
    assert y[T - 1] == dict(zip(keys, values))[x[T - 1]]
    if not task.random_filler:
        assert all(t == 0 for t in x[2 * K : T - 1])


def check_needle(task, x, y):
    T, KL, VL, NQ = task.seq_len, task.key_len, task.value_len, task.num_queries
    L = 1 + KL + VL
    H = T - NQ * L
    band = (task.vocab_size - 3) // 3
    assert 2 not in x[:H]  # no query marker in the haystack
    starts = [p for p in range(H) if x[p] == 1]
    D = task.num_distractors if task.haystack == "distractor" else 0
    assert len(starts) == task.num_needles + D
    assert all(b - a >= L for a, b in itertools.pairwise(starts)) and starts[-1] + L <= H
    needles = [(tuple(x[p + 1 : p + 1 + KL]), x[p + 1 + KL : p + L]) for p in starts]
    for key, value in needles:
        assert all(3 <= k < 3 + band for k in key) and all(3 + band <= v < 3 + 2 * band for v in value)
    inside = {p + i for p in starts for i in range(L)}
    filler = [x[p] for p in range(H) if p not in inside]
    if task.noise == 0:
        assert all(3 + 2 * band <= t < task.vocab_size for t in filler)
        if task.haystack == "repeat":
            assert all(x[p] == 3 + 2 * band + p % 10 for p in range(H) if p not in inside)
    assert all(3 <= t < task.vocab_size for t in filler)

    expected = []
    query_keys = []
    for j in range(NQ):
        q = H + j * L
        assert x[q] == 2
        key = tuple(x[q + 1 : q + 1 + KL])
        query_keys.append(key)
        matches = [v for k, v in needles if k == key]
        assert len(matches) == 1  # the queried key is in exactly one needle: unambiguous
        value = matches[0]  # the oracle's answer
        assert x[q + 1 + KL : q + L] == value  # teacher-forced value
        expected += [(q + KL + i, value[i]) for i in range(VL)]
    assert len(set(query_keys)) == NQ
    assert [(t, y[t]) for t in scored(y)] == expected
    if D and KL >= 2 and task.near_miss == 1.0 and NQ == task.num_needles:
        # every needle that is not queried is a distractor, and all of them are near misses
        real_prefixes = {k[:-1] for k in query_keys}
        assert all(k[:-1] in real_prefixes for k, _ in needles if k not in query_keys)
    if task.depth is not None:
        S = H // L
        slot = round(task.depth * (S - 1))
        assert any(slot * L <= p < slot * L + L for p in starts)


def check_noisy_recall(task, x, y):
    band, T = (task.vocab_size - 1) // 3, task.seq_len
    memory, pairs, noise, t = {}, 0, 0, 0
    while t < T:
        tok = x[t]
        if 1 + 2 * band <= tok < task.vocab_size:
            assert y[t] == IGNORE
            noise, t = noise + 1, t + 1
            continue
        assert 1 <= tok < 1 + band and 1 + band <= x[t + 1] < 1 + 2 * band
        assert y[t] == memory.get(tok, IGNORE) and y[t + 1] == IGNORE  # the oracle's answer, if any
        assert memory.setdefault(tok, x[t + 1]) == x[t + 1]  # a fixed mapping
        pairs, t = pairs + 1, t + 2
    assert pairs == task.num_pairs and noise == T - 2 * pairs and len(memory) <= task.num_kv_pairs


def check_fuzzy_recall(task, x, y):
    KL, VL, band = task.key_len, task.value_len, (task.vocab_size - 1) // 2
    L, P = KL + VL, task.seq_len // (KL + VL)
    memory, expected = {}, []
    for b in range(P):
        key, value = tuple(x[b * L : b * L + KL]), x[b * L + KL : (b + 1) * L]
        assert all(1 <= k < 1 + band for k in key) and all(1 + band <= v < 1 + 2 * band for v in value)
        if key in memory:
            assert memory[key] == value
            expected += [(b * L + KL - 1 + i, value[i]) for i in range(VL)]
        memory[key] = value
    assert len(memory) <= task.num_kv_pairs
    assert all(t == 0 for t in x[P * L :])
    assert [(t, y[t]) for t in scored(y)] == expected


def check_selective_copy(task, x, y):
    n, T = task.num_tokens, task.seq_len
    lo = 2 + task.noise_vocab_size
    R = T - n - 1
    assert all(2 <= t < task.vocab_size for t in x[:R])
    content = [t for t in x[:R] if t >= lo]  # the oracle: read the non-noise tokens in order
    assert len(content) == n and x[R] == 1 and x[R + 1 :] == content
    assert scored(y) == list(range(R, R + n))
    assert [y[t] for t in range(R, R + n)] == content


CASES = {
    "mqar": (mqar_params(), check_mqar),
    "ar": (ar_params(), check_ar),
    "needle": (needle_params(), check_needle),
    "noisy-recall": (noisy_recall_params(), check_noisy_recall),
    "fuzzy-recall": (fuzzy_recall_params(), check_fuzzy_recall),
    "selective-copy": (selective_copy_params(), check_selective_copy),
    **NEW_CASES,
}


def test_every_task_has_a_property_test():
    assert sorted(CASES) == TASKS.names()


@pytest.mark.parametrize("name", sorted(CASES))
def test_oracle_and_format(name):
    strategy, check = CASES[name]

    @SETTINGS
    @given(params=strategy, seed=st.integers(0, 2**31))
    def run(params, seed):
        task = build_task(name, **params)
        batch, examples = rows(task, seed=seed)
        assert batch.inputs.shape == batch.labels.shape == (6, task.seq_len)
        for x, y in examples:
            check(task, x, y)
        bound = task.scored_per_row()  # training scores at most this many positions a row
        assert bound is None or (batch.labels != IGNORE).sum(dim=1).max() <= bound
        again = task.sample(6, torch.Generator().manual_seed(seed))
        assert torch.equal(again.inputs, batch.inputs) and torch.equal(again.labels, batch.labels)

    run()


# ---- registry conformance -------------------------------------------------------------------


@pytest.mark.parametrize("name", TASKS.names())
def test_conformance_defaults(name):
    task = build_task(name)
    assert isinstance(type(task).version, int)
    batch = task.sample(8, torch.Generator().manual_seed(1), "cpu")
    assert batch.inputs.dtype == batch.labels.dtype == torch.long
    assert batch.inputs.shape == batch.labels.shape == (8, task.seq_len)
    assert batch.inputs.min() >= 0 and batch.inputs.max() < task.vocab_size
    lab = batch.labels
    assert ((lab == IGNORE) | ((lab >= 0) & (lab < task.vocab_size))).all()
    assert ((lab != IGNORE).sum(dim=1) >= 1).all()
    assert batch.slices and all(v.shape == (8,) for v in batch.slices.values())
    other = task.sample(8, torch.Generator().manual_seed(2), "cpu")
    assert not torch.equal(other.inputs, batch.inputs)
    longer = build_task(name, seq_len=2 * task.seq_len).sample(2, torch.Generator().manual_seed(1))
    assert longer.inputs.shape == (2, 2 * task.seq_len)


@pytest.mark.cuda
@pytest.mark.parametrize("name", TASKS.names())
def test_samples_on_cuda(name):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    task = build_task(name)
    batch = task.sample(64, torch.Generator("cuda").manual_seed(0), "cuda")
    assert batch.inputs.is_cuda and batch.labels.is_cuda
    assert all(v.is_cuda for v in batch.slices.values())
    assert ((batch.labels != IGNORE).sum(dim=1) >= 1).all()


INVALID = [
    ("mqar", {"seq_len": 63}, "seq_len"),
    ("mqar", {"seq_len": 64, "num_kv_pairs": 17}, "num_kv_pairs"),
    ("mqar", {"seq_len": 64, "num_kv_pairs": 8, "num_passes": 4}, "num_kv_pairs"),
    ("mqar", {"num_passes": 0}, "num_passes"),
    ("mqar", {"vocab_size": 20}, "vocab_size"),
    ("mqar", {"power_a": 0.0}, "power_a"),
    ("ar", {"seq_len": 32, "num_kv_pairs": 16}, "num_kv_pairs"),
    ("ar", {"vocab_size": 16}, "vocab_size"),
    ("ar", {"num_kv_pairs": 0}, "num_kv_pairs"),
    ("needle", {"num_queries": 2}, "num_queries"),
    ("needle", {"seq_len": 12}, "seq_len"),
    ("needle", {"vocab_size": 8}, "vocab_size"),
    ("needle", {"haystack": "repeat", "vocab_size": 30}, "vocab_size"),
    ("needle", {"depth": 1.5}, "depth"),
    ("needle", {"noise": -0.1}, "noise"),
    ("needle", {"key_len": 0}, "key_len"),
    ("needle", {"value_len": 0}, "value_len"),
    ("needle", {"near_miss": 2.0}, "near_miss"),
    ("needle", {"haystack": "maze"}, "haystack"),
    ("noisy-recall", {"noise": 1.0}, "noise"),
    ("noisy-recall", {"seq_len": 16}, "seq_len"),
    ("noisy-recall", {"vocab_size": 20}, "vocab_size"),
    ("fuzzy-recall", {"seq_len": 30}, "seq_len"),
    ("fuzzy-recall", {"vocab_size": 5, "key_len": 1}, "vocab_size"),
    ("fuzzy-recall", {"key_len": 0}, "key_len"),
    ("selective-copy", {"seq_len": 32}, "seq_len"),
    ("selective-copy", {"vocab_size": 4}, "vocab_size"),
    ("selective-copy", {"noise_vocab_size": 0}, "noise_vocab_size"),
    ("selective-copy", {"num_tokens": "many"}, "num_tokens"),
]


@pytest.mark.parametrize("name,params,field", INVALID)
def test_invalid_parameters_name_the_field(name, params, field):
    with pytest.raises(SlabenchError) as err:
        build_task(name, **params)
    message = str(err.value)
    assert field in message and "\n" not in message


# ---- distributions --------------------------------------------------------------------------


def chi2_pvalue(observed: list[float], expected: list[float]) -> float:
    """Goodness-of-fit p-value; adjacent cells are merged (from the tail) until each expects >= 5."""
    obs, exp = [], []
    o_acc = e_acc = 0.0
    for o, e in zip(reversed(observed), reversed(expected)):
        o_acc, e_acc = o_acc + o, e_acc + e
        if e_acc >= 5:
            obs.append(o_acc)
            exp.append(e_acc)
            o_acc = e_acc = 0.0
    if e_acc:  # leftover goes into the last cell formed
        obs[-1], exp[-1] = obs[-1] + o_acc, exp[-1] + e_acc
    stat = sum((o - e) ** 2 / e for o, e in zip(obs, exp))
    df = len(obs) - 1
    return torch.special.gammaincc(
        torch.tensor(df / 2, dtype=torch.float64), torch.tensor(stat / 2, dtype=torch.float64)
    ).item()


def test_chi2_pvalue_sanity():
    assert chi2_pvalue([50, 50], [50, 50]) == pytest.approx(1.0)
    assert chi2_pvalue([90, 10], [50, 50]) < 1e-6
    # chi-square with 1 dof: P(X > 3.841) = 0.05
    assert chi2_pvalue([50 + 9.8, 50 - 9.8], [50, 50]) == pytest.approx(0.05, abs=1e-3)


@pytest.mark.parametrize("power_a,num_passes", [(0.01, 1), (0.5, 2), (1.0, 1)])
def test_mqar_gaps_follow_power_law(power_a, num_passes):
    # One pair per example: its gap is exactly one draw from Zoology's gap distribution.
    task = build_task("mqar", vocab_size=64, seq_len=80, num_kv_pairs=1, power_a=power_a, num_passes=num_passes)
    n = 20000
    batch = task.sample(n, torch.Generator().manual_seed(123))
    qpos = (batch.labels != IGNORE).float().argmax(dim=1)
    gaps = (qpos - 2 * num_passes) // 2
    space = (80 - 2 * num_passes) // 2
    observed = torch.bincount(gaps, minlength=space).tolist()
    gap = torch.arange(1, space + 1, dtype=torch.float64)
    p = power_a * gap ** (power_a - 1)
    expected = (n * p / p.sum()).tolist()
    assert len(observed) == space
    assert chi2_pvalue(observed, expected) > 1e-3


def test_distinct_ints_uniform_over_ordered_subsets():
    g = torch.Generator().manual_seed(0)
    for n, k in [(5, 2), (3, 3), (6, 3)]:  # (5, 2) redraws duplicates; (3, 3), (6, 3) use Floyd + shuffle
        draws = distinct_ints(30000, n, k, g, "cpu")
        assert (draws.sort(dim=1).values.diff(dim=1) > 0).all() and draws.min() >= 0 and draws.max() < n
        cells = list(itertools.permutations(range(n), k))
        index = {c: i for i, c in enumerate(cells)}
        counts = [0] * len(cells)
        for row in draws.tolist():
            counts[index[tuple(row)]] += 1
        assert chi2_pvalue(counts, [30000 / len(cells)] * len(cells)) > 1e-3


def test_subset_mask_uniform_over_subsets():
    masks = subset_mask(30000, 5, 2, torch.Generator().manual_seed(0), "cpu")
    assert (masks.sum(dim=1) == 2).all()
    codes = (masks.long() * 2 ** torch.arange(5)).sum(dim=1)
    counts = torch.bincount(codes, minlength=32)
    cells = [sum(1 << i for i in c) for c in itertools.combinations(range(5), 2)]
    assert counts.sum() == counts[cells].sum()
    assert chi2_pvalue(counts[cells].tolist(), [3000.0] * 10) > 1e-3


def test_first_appearance_table_and_sort_agree(monkeypatch):
    from slabench.tasks import sampling

    stream = torch.randint(50, (200, 40), generator=torch.Generator().manual_seed(0))
    by_table = sampling.first_appearance(stream, 50)
    monkeypatch.setattr(sampling, "TABLE_PER_DRAW", 0)
    by_sort = sampling.first_appearance(stream, 50)
    expected = torch.tensor([[v not in row[:m] for m, v in enumerate(row)] for row in stream.tolist()])
    assert torch.equal(by_table, expected) and torch.equal(by_sort, expected)


def test_alias_table_reproduces_probs():
    p = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05, 0.0], dtype=torch.float64)
    accept, alias = alias_table(p)
    n = len(p)
    implied = accept / n  # keep slot i ...
    implied = implied.index_add(0, alias, (1 - accept) / n)  # ... or jump to alias[i]
    assert torch.allclose(implied, p, atol=1e-12)


def test_weighted_distinct_is_successive_sampling():
    # Skewed weights force collisions, so both the redraw rounds and the direct fallback run.
    p = torch.tensor([0.85, 0.08, 0.04, 0.02, 0.01], dtype=torch.float64)
    n = 30000
    draws = weighted_distinct(p, n, 2, torch.Generator().manual_seed(0))
    cells = list(itertools.permutations(range(5), 2))
    counts = dict.fromkeys(cells, 0)
    for row in draws.tolist():
        counts[tuple(row)] += 1
    expected = [n * p[i].item() * p[j].item() / (1 - p[i].item()) for i, j in cells]
    assert chi2_pvalue([counts[c] for c in cells], expected) > 1e-3


def test_mqar_many_pairs_gaps_distinct_and_in_range():
    task = build_task("mqar", vocab_size=512, seq_len=96, num_kv_pairs=16, power_a=0.01)
    batch = task.sample(512, torch.Generator().manual_seed(0))
    pos = (batch.labels != IGNORE).nonzero()[:, 1].view(512, 16)
    gaps = (pos - 32) // 2
    assert ((pos - 32) % 2 == 0).all() and gaps.min() >= 0 and gaps.max() < 32
    assert (gaps.diff(dim=1) > 0).all()  # nonzero() is row-major sorted: strictly increasing = distinct


def test_needle_depth_buckets():
    shallow = build_task("needle", depth=0.0).sample(64, torch.Generator().manual_seed(0))
    deep = build_task("needle", depth=1.0).sample(64, torch.Generator().manual_seed(0))
    uniform = build_task("needle").sample(2000, torch.Generator().manual_seed(0))
    assert (shallow.slices["depth_bucket"] == 0).all() and (deep.slices["depth_bucket"] == 9).all()
    assert set(uniform.slices["depth_bucket"].tolist()) == set(range(10))


# ---- display --------------------------------------------------------------------------------


def test_render_examples_shows_targets_and_special_names():
    from rich.console import Console

    from slabench.tasks.show import render_examples

    task = build_task("needle", seq_len=40, value_len=2)
    console = Console(record=True, width=200)
    console.print(render_examples(task, n=2, seed=3))
    text = console.export_text()
    batch = task.sample(2, torch.Generator().manual_seed(3))
    x, y = batch.inputs[0].tolist(), batch.labels[0].tolist()
    for t in scored(y):
        assert f"{x[t]}→{y[t]}" in text
    assert "<N>" in text and "<Q>" in text and text.count("example ") == 2


def test_cli_show():
    from click.testing import CliRunner

    from slabench.cli import main

    ok = CliRunner().invoke(main, ["show", "ar", "--set", "seq_len=20", "--set", "num_kv_pairs=2", "-n", "1"])
    assert ok.exit_code == 0 and "→" in ok.output and "example 0" in ok.output
    bad = CliRunner().invoke(main, ["show", "ar", "--set", "num_kv_pairs=0"])
    assert bad.exit_code == 2 and "num_kv_pairs" in bad.output


def test_gumbel_topk_gap_distribution_matches_the_formula():
    """The GPU sampler (Gumbel top-k) checked on CPU: distinct indices, and with k = 1 a
    chi-square fit to MQAR's power-law gap probabilities."""
    from slabench.tasks.mqar import MQAR
    from slabench.tasks.sampling import gumbel_topk

    probs = MQAR(vocab_size=512, seq_len=256, num_kv_pairs=4).gap_probs()  # [S]
    g = torch.Generator().manual_seed(0)
    many = gumbel_topk(probs.float().log(), 2000, 8, g)
    assert (many.sort(1).values.diff(1) > 0).all() and many.min() >= 0 and many.max() < len(probs)
    draws = gumbel_topk(probs.float().log(), 20000, 1, g).squeeze(1)
    observed = torch.bincount(draws, minlength=len(probs)).double()
    expected = probs * draws.numel()
    keep = expected >= 5  # pool the rare tail into one bin, if there is one
    tail = [observed[~keep].sum().view(1), expected[~keep].sum().view(1)] if (~keep).any() else [observed[:0]] * 2
    obs, exp = torch.cat([observed[keep], tail[0]]), torch.cat([expected[keep], tail[1]])
    chi2 = ((obs - exp) ** 2 / exp).sum()
    dof = torch.tensor(float(len(obs) - 1))
    p_value = torch.special.gammaincc(dof / 2, chi2 / 2)
    assert p_value > 1e-3, (chi2, dof)


def test_stream_hands_out_the_rows_of_one_sample_call_per_block():
    """Task.stream (GPU training draws blocks of batches): each batch is a slice of one
    sample call of block * batch_size rows, in order, and a seed gives the same stream."""
    task = build_task("mqar", vocab_size=64, seq_len=32, num_kv_pairs=4)
    stream = task.stream(8, torch.Generator().manual_seed(3), "cpu", block=4)
    got = [next(stream) for _ in range(8)]  # two blocks
    gen = torch.Generator().manual_seed(3)
    blocks = [task.sample(32, gen), task.sample(32, gen)]
    for i, b in enumerate(got):
        want = blocks[i // 4]
        rows = slice(8 * (i % 4), 8 * (i % 4 + 1))
        assert b.inputs.shape == (8, 32)
        assert torch.equal(b.inputs, want.inputs[rows]) and torch.equal(b.labels, want.labels[rows])
        assert all(torch.equal(v, want.slices[k][rows]) for k, v in b.slices.items())
    assert not torch.equal(got[0].inputs, got[1].inputs)
    # default block: one batch per call on CPU; on a GPU 16, capped at 2^22 tokens a call
    assert task.stream_block(8, "cpu") == 1 and task.stream_block(8, "cuda") == 16
    assert task.stream_block(2**17, "cuda") == 1

"""A grid run without the command line: `runners.execute` reports each run's start, steps and end
as events, in order, counts the runs done, and resumes from the records it wrote."""

import textwrap

from slabench.config import expand_grid, load_grid_file
from slabench.runners.execute import (
    GridPlanned,
    Job,
    RunFailed,
    RunFinished,
    RunProgress,
    RunStarted,
    execute,
)
from slabench.runners.records import load_records

FAILS = """
from torch import nn


class Fails(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        if x.shape[1] > 8:  # passes the plugin probe (T = 8), fails in training (T = 16)
            raise RuntimeError("no")
        return self.proj(x)
"""


def test_events_in_order_then_resume(tmp_path, tiny_grid, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fails.py").write_text(textwrap.dedent(FAILS))
    name, specs = expand_grid(
        load_grid_file(str(tiny_grid(steps=3, seeds=(0,), models=("attention", "fails.py:Fails"))))
    )
    out = tmp_path / "out"
    events = []
    result = execute(name, [Job(name, specs, out)], device="cpu", workers=1, on_event=events.append)[0]

    planned, *runs = events
    assert planned == GridPlanned(name, out, runs=2, recorded=0, pending=2, corrupt=[], packed_without_mps=False)
    ok, failed = specs
    assert [(type(e), e.spec) for e in runs] == [
        (RunStarted, ok),
        (RunProgress, ok),
        (RunProgress, ok),
        (RunProgress, ok),
        (RunFinished, ok),
        (RunStarted, failed),
        (RunFailed, failed),
    ]
    assert [e.done for e in runs if not isinstance(e, RunStarted)] == [1 / 3, 2 / 3, 1, 1, 2]
    assert [(e.step, e.total) for e in runs if isinstance(e, RunProgress)] == [(1, 3), (2, 3), (3, 3)]
    assert runs[-1].record["error"] == "RuntimeError: no" and runs[4].record["status"] == "ok"
    assert (result.ran, result.skipped) == (2, 0)
    assert (
        sorted(r["key"] for r in result.records) == sorted(load_records(out).records) == sorted(s.key() for s in specs)
    )

    again = []
    result = execute(name, [Job(name, specs, out)], device="cpu", workers=1, on_event=again.append)[0]
    assert again == [GridPlanned(name, out, runs=2, recorded=2, pending=0, corrupt=[], packed_without_mps=False)]
    assert (result.ran, result.skipped, len(result.records)) == (0, 2, 2)


def test_several_grids_share_one_pool_and_keep_their_own_records(tmp_path, tiny_grid):
    """Several jobs: one plan event for all, each grid's records and grid.json in its own
    directory, each job's result apart, and a rerun resumes every grid."""
    a_name, a_specs = expand_grid(load_grid_file(str(tiny_grid(name="a", steps=2, seeds=(0, 1)))))
    b_name, b_specs = expand_grid(load_grid_file(str(tiny_grid(name="b", steps=3, seeds=(0,)))))
    jobs = [Job(a_name, a_specs, tmp_path / "a"), Job(b_name, b_specs, tmp_path / "b")]
    events = []
    first_a, first_b = execute("both", jobs, device="cpu", workers=2, on_event=events.append)
    planned = [e for e in events if isinstance(e, GridPlanned)]
    assert planned == [GridPlanned("both", tmp_path, 3, recorded=0, pending=3, corrupt=[], packed_without_mps=False)]
    assert sorted(load_records(tmp_path / "a").records) == sorted(s.key() for s in a_specs)
    assert sorted(load_records(tmp_path / "b").records) == sorted(s.key() for s in b_specs)
    assert {(tmp_path / g / "grid.json").exists() for g in "ab"} == {True}
    assert [(r.ran, r.skipped, len(r.records)) for r in (first_a, first_b)] == [(2, 0, 2), (1, 0, 1)]

    again = execute("both", jobs, device="cpu", workers=2)
    assert [(r.ran, r.skipped, len(r.records)) for r in again] == [(0, 2, 2), (0, 1, 1)]

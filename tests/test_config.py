"""Grid expansion and validation."""

import pytest

from slabench.config import RunSpec, expand_grid, load_preset, preset_names
from slabench.errors import SlabenchError

GRID = {
    "name": "g",
    "train": {"steps": 10, "lr": [1e-3, 3e-3], "seeds": [0, 1]},
    "tasks": [{"name": "mqar", "vocab_size": 64, "seq_len": 32, "num_kv_pairs": [2, 4]}],
    "models": [{"name": "attention", "d_model": 32, "n_heads": [2, 4]}],
}


def test_expansion_is_a_cartesian_product_with_stable_keys():
    name, specs = expand_grid(GRID)
    assert name == "g"
    assert len(specs) == 2 * 2 * 2 * 2  # pairs x heads x lr x seeds
    assert len({s.key() for s in specs}) == len(specs)
    assert {s.train.lr for s in specs} == {1e-3, 3e-3}
    _, again = expand_grid(GRID)
    assert [s.key() for s in specs] == [s.key() for s in again]
    assert all(RunSpec.from_dict(s.to_dict()) == s for s in specs)


def test_key_ignores_grid_name_but_not_settings():
    _, a = expand_grid(GRID)
    _, b = expand_grid({**GRID, "name": "other"})
    _, c = expand_grid({**GRID, "train": {**GRID["train"], "steps": 11}})
    assert a[0].key() == b[0].key() != c[0].key()


def test_with_models_pairs_a_task_only_with_the_models_it_names():
    """A task scaled with the model: 4 pairs with 2 heads, 8 with 4 (and the default n_heads 4
    of a model table that leaves it out), instead of every task with every model."""
    grid = {
        **GRID,
        "tasks": [
            {"name": "mqar", "vocab_size": 64, "seq_len": 32, "num_kv_pairs": 4, "with_models": {"n_heads": 2}},
            {"name": "mqar", "vocab_size": 64, "seq_len": 32, "num_kv_pairs": 8, "with_models": {"n_heads": 4}},
        ],
        "models": [*GRID["models"], {"name": "gla", "d_model": 32}],
    }
    _, specs = expand_grid(grid)
    cells = {(dict(s.task.params)["num_kv_pairs"], s.model.name, dict(s.model.params).get("n_heads")) for s in specs}
    assert cells == {(4, "attention", 2), (8, "attention", 4), (8, "gla", None)}
    assert len(specs) == 3 * 2 * 2  # cells x lr x seeds
    # The pairing is not part of a run: a paired run keeps the key it has in the full product.
    full = {s.key() for s in expand_grid({**grid, "tasks": [{**t, "with_models": {}} for t in grid["tasks"]]})[1]}
    assert {s.key() for s in specs} < full


@pytest.mark.parametrize(
    "patch, words",
    [
        ({"epochs": 3}, ["unknown key 'epochs'", "top level"]),
        ({"train": {"stepz": 3}}, ["[train]", "unknown parameter 'stepz'", "steps"]),
        ({"tasks": [{"name": "mqar", "seq_lenn": 32}]}, ["task 'mqar'", "seq_lenn"]),
        ({"tasks": [{"name": "mqarr"}]}, ["unknown task 'mqarr'", "did you mean 'mqar'"]),
        ({"models": [{"name": "attention", "d_modle": 3}]}, ["model 'attention'", "d_modle"]),
        ({"models": [{"name": "transformer"}]}, ["unknown model 'transformer'", "attention"]),
        ({"tasks": [{"name": "mqar", "seq_len": 32, "num_kv_pairs": 9}]}, ["num_kv_pairs", "seq_len"]),
        ({"models": [{"name": "attention", "d_model": 30, "n_heads": 4}]}, ["d_model=30", "n_heads=4"]),
        ({"train": {"lr": "fast"}}, ["lr", "float"]),
        ({"train": {"seeds": [-1]}}, ["seeds"]),
        ({"tasks": [{"name": "mqar", "with_models": {"n_heads": [2, 4]}}]}, ["[[tasks]] #1", "with_models"]),
        ({"tasks": [{"name": "mqar", "with_models": {"n_heads": 8}}]}, ["with_models", "matches none"]),
    ],
)
def test_bad_grids_name_the_field(patch, words):
    with pytest.raises(SlabenchError) as e:
        expand_grid({**GRID, **patch})
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_every_preset_expands():
    assert {"smoke", "ci", "quick", "paper"} <= set(preset_names())
    for name in preset_names():
        grid_name, specs = expand_grid(load_preset(name))
        assert grid_name == name and specs


def test_every_task_is_in_a_preset():
    """The coverage preset runs every registered task the other presets leave out, with attention and gla;
    coverage-quick runs the same tasks at GPU size with every registered mixer."""
    from slabench.models import MIXERS
    from slabench.tasks import TASKS

    tasks = {name: {s.task.name for s in expand_grid(load_preset(name))[1]} for name in preset_names()}
    others = set().union(*(t for name, t in tasks.items() if name not in ("coverage", "coverage-quick")))
    assert tasks["coverage"] == set(TASKS.names()) - others
    assert tasks["coverage-quick"] == tasks["coverage"]
    assert {s.model.name for s in expand_grid(load_preset("coverage"))[1]} == {"attention", "gla"}
    # the shipped mixers: plugins other tests registered live in other modules
    builtin = {n for n in MIXERS.names() if MIXERS.get(n).__module__.startswith("slabench.models.")}
    assert {s.model.name for s in expand_grid(load_preset("coverage-quick"))[1]} == builtin

"""Grid expansion and validation."""

import re

import pytest
from click.testing import CliRunner

from slabench.cli import main
from slabench.config import RunSpec, expand_grid, load_preset, preset_names, tomllib
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


def test_a_model_table_can_sweep_its_own_lrs_on_the_grids_seeds():
    """`train = { lr = [...] }` in a [[models]] table gives those models their own lr sweep; the
    others keep [train]'s, every model the grid's seeds, and a run the grid shares keeps its key."""
    wide = {"name": "gla", "d_model": 32, "n_heads": 2, "train": {"lr": [3e-3, 1e-2]}}
    _, specs = expand_grid({**GRID, "models": [*GRID["models"], wide]})
    lrs = {m: sorted({s.train.lr for s in specs if s.model.name == m}) for m in ("attention", "gla")}
    assert lrs == {"attention": [1e-3, 3e-3], "gla": [3e-3, 1e-2]}
    assert {s.seed for s in specs if s.model.name == "gla"} == {0, 1}
    assert len(specs) == 2 * 2 * 2 * 2 + 2 * 2 * 2  # attention as before; gla: pairs x its lrs x seeds
    _, shared = expand_grid({**GRID, "models": [*GRID["models"], {**wide, "train": {}}]})
    at_3e3 = {s.key() for s in shared if s.model.name == "gla" and s.train.lr == 3e-3}
    assert at_3e3 == {s.key() for s in specs if s.model.name == "gla" and s.train.lr == 3e-3}


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
        ({"models": [{"name": "attention", "train": {"seeds": [3]}}]}, ["[[models]] #1", "train", "known: steps"]),
        ({"models": [{"name": "attention", "train": 3}]}, ["[[models]] #1", "train = 3"]),
        ({"models": [{"name": "attention", "train": {"tokens": 99}}]}, ["[[models]] #1 train", "steps and tokens"]),
        ({"models": [{"name": "attention", "train": {"lr": []}}]}, ["[[models]] #1 train", "lr = []"]),
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


# ---- bad grid files from the command line: one line naming the field, exit 2, nothing trained ----

TASK = 'name = "mqar"\nvocab_size = 32\nseq_len = 16\nnum_kv_pairs = 2'
MODEL = 'name = "attention"\nd_model = 16\nn_layers = 1\nn_heads = 2'


def grid_toml(top: str = 'name = "g"', train: str | None = "steps = 10", task: str | None = TASK, model=MODEL) -> str:
    """A grid file: top-level keys, then a [train], a [[tasks]] and a [[models]] table (None: left out)."""
    tables = [("[train]", train), ("[[tasks]]", task), ("[[models]]", model)]
    return "\n".join([top, *(f"{header}\n{body}" for header, body in tables if body is not None)]) + "\n"


@pytest.mark.parametrize(
    "text, words",
    [
        # tables where tables go
        (grid_toml(top='name = "g"\ntrain = 5', train=None), ["train = 5", "one [train] table"]),
        (grid_toml(train=None) + "[[train]]\nsteps = 10\n", ["train = [{'steps': 10}]", "not [[train]]"]),
        (grid_toml(top='name = "g"\ntasks = [1, 2]', task=None), ["tasks = [1, 2]", "[[tasks]] tables"]),
        (grid_toml(top='name = "g"\ntasks = ["mqar"]', task=None), ["tasks = ['mqar']", "[[tasks]] tables"]),
        (grid_toml(top='name = "g"\nmodels = ["gla"]', model=None), ["models = ['gla']", "[[models]] tables"]),
        # an empty list anywhere expands to no runs
        (grid_toml(task=TASK.replace("num_kv_pairs = 2", "num_kv_pairs = []")), ["[[tasks]] #1", "num_kv_pairs = []"]),
        (grid_toml(task=TASK.replace('name = "mqar"', "name = []")), ["[[tasks]] #1", "name = []"]),
        (grid_toml(model=MODEL.replace('name = "attention"', "name = []")), ["[[models]] #1", "name = []"]),
        (grid_toml(model=MODEL + "\npos_emb = []"), ["[[models]] #1", "pos_emb = []"]),
        (grid_toml(train="steps = 10\nlr = []"), ["[train]", "lr = []", "at least one value"]),
        (grid_toml(train="steps = 10\nseeds = []"), ["[train]", "seeds = []", "at least one seed"]),
        # the name is one file-name component
        (grid_toml(top='name = "a/b"'), ["name='a/b'", "file name", "'/'"]),
        (grid_toml(top='name = "a\\\\b"'), ["name='a\\\\b'", "file name"]),
        (grid_toml(top='name = "../../evil"'), ["name='../../evil'", "file name"]),
        (grid_toml(top='name = ".."'), ["name='..'", "not '.' or '..'"]),
        (grid_toml(top='name = "."'), ["name='.'", "not '.' or '..'"]),
        (grid_toml(top='name = ""'), ["'name'", "non-empty string"]),
        # a learned position table shorter than the task's (or its test set's) sequences
        (grid_toml(model=MODEL + '\npos_emb = "learned"\nmax_len = 8'), ["max_len=8", "seq_len=16", "max_len >= 16"]),
        (
            grid_toml(task=TASK + "\ntest = { seq_len = 32 }", model=MODEL + '\npos_emb = "learned"\nmax_len = 16'),
            ["model 'attention'", "max_len=16", "seq_len=32", "max_len >= 32"],
        ),
        # numbers out of range in [train]
        (grid_toml(train="grad_clip = -1.0"), ["grad_clip=-1.0", ">= 0"]),
        (grid_toml(train="weight_decay = -0.1"), ["weight_decay=-0.1", ">= 0"]),
        (grid_toml(train="lr = inf"), ["lr=inf", "finite number > 0"]),
        (grid_toml(train="lr = nan"), ["lr=nan", "finite number > 0"]),
        (grid_toml(train="seconds = inf"), ["seconds=inf", "finite number >= 0"]),
        (grid_toml(train="seconds = nan"), ["seconds=nan", "finite number >= 0"]),
        (grid_toml(train="tokens = -5"), ["tokens=-5", ">= 0"]),
        (grid_toml(train="batch_size = 0"), ["batch_size=0", ">= 1"]),
        (grid_toml(train="seeds = [true, false]"), ["seeds: True", "an int in [0, 2**31)"]),
        (grid_toml(top='name = "g"\ndescription = 5'), ["description=5", "a string"]),
        # messages that name the right thing
        (grid_toml(train="stepz = 5"), ["unknown parameter 'stepz'", "steps", "seeds", "fold"]),
        (
            grid_toml(task=TASK + "\nwith_models = { foo = 4 }"),
            ["with_models names 'foo'", "no model of the grid has", "n_heads"],
        ),
    ],
)
def test_bad_grid_files_are_one_line_before_any_run(tmp_path, text, words):
    path, out = tmp_path / "grid.toml", tmp_path / "out"
    path.write_text(text)
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "matches none" not in lines[0]  # the with_models message only when a real value matches no model
    assert not out.exists()


def test_good_edges_still_expand():
    """What the checks above must not reject: max_len at the longest seq_len, or left out (it
    follows the task), a max_len without a learned table, a name with dots inside."""
    for model, task in [
        ({"pos_emb": "learned", "max_len": 32}, {"test": {"seq_len": 32}}),
        ({"pos_emb": "learned"}, {"test": {"seq_len": 64}}),
        ({"max_len": 1}, {}),
    ]:
        grid = {**GRID, "name": "a..b", "description": "edges"}
        grid["tasks"] = [{**GRID["tasks"][0], **task}]
        grid["models"] = [{**GRID["models"][0], **model}]
        assert expand_grid(grid)[1]


@pytest.mark.parametrize(
    "command",
    [
        ["run", "{path}", "--dry-run"],
        ["compare", "{path}", "--mixer", "gla", "--against", "attention"],
        ["sweep", "--targets", "{path}"],
    ],
)
def test_a_file_that_is_not_utf8_is_one_line(tmp_path, command):
    path = tmp_path / "g.toml"
    path.write_bytes(b"\xff\xfe")
    result = CliRunner().invoke(main, [arg.format(path=path) for arg in command])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not UTF-8" in lines[0] and str(path) in lines[0], result.stderr


def test_a_grid_nested_past_the_toml_readers_depth_is_one_line(tmp_path):
    """tomllib recurses per nesting level: 5000 nested arrays were a RecursionError traceback."""
    path = tmp_path / "g.toml"
    path.write_text('name = "deep"\n[train]\nlr = ' + "[" * 5000 + "1" + "]" * 5000 + "\n")
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.strip() == f"error: grid file '{path}': arrays or tables nested too deep for the TOML reader"


@pytest.mark.parametrize(
    "models, seeds, words",
    [
        ("d_model = [{wide}]\nn_layers = [{deep}]", "[0]", "[[models]] #1: its lists make 101,000 combinations"),
        ("d_model = 16", "[{seeds}]", "grid 'many': expands to 100,001 runs; at most 100,000"),
    ],
)
def test_a_grid_of_more_runs_than_any_machine_runs_is_refused_before_listing_them(models, seeds, words):
    """Lists that multiply to 10**8 runs hung `run --dry-run` while it listed them."""
    wide, deep = ", ".join(str(16 * i) for i in range(1, 1001)), ", ".join(map(str, range(1, 102)))
    grid = tomllib.loads(
        'name = "many"\n[train]\nsteps = 1\nseeds = '
        + seeds.format(seeds=", ".join(map(str, range(100_001))))
        + '\n[[tasks]]\nname = "mqar"\n[[models]]\nname = "attention"\n'
        + models.format(wide=wide, deep=deep)
    )
    with pytest.raises(SlabenchError, match=re.escape(words)):
        expand_grid(grid)

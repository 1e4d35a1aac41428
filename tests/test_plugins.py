"""Plugin mixers: loading from files, modules, entry points and register_mixer; one-line errors."""

import importlib.metadata
import textwrap

import pytest
import torch

import slabench
from slabench import plugins
from slabench.errors import SlabenchError
from slabench.models import MIXERS, build_model

GOOD = """
import torch
from torch import nn


class Good(nn.Module):
    def __init__(self, d_model, n_heads, scale: float = 1.0):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
        self.scale = scale

    def forward(self, x):  # causal: position-wise
        return self.scale * self.proj(x)


class WrongShape(Good):
    def forward(self, x):
        return x[..., :3]


class NeedsWidth(nn.Module):
    def __init__(self, d_model, n_heads, width):
        super().__init__()

    def forward(self, x):
        return x


class Crashes(Good):
    def forward(self, x):
        raise RuntimeError("boom")
"""


@pytest.fixture
def plugin_file(tmp_path):
    path = tmp_path / "my_mixers.py"
    path.write_text(textwrap.dedent(GOOD))
    return path


def _one_line_error(name: str) -> str:
    with pytest.raises(SlabenchError) as e:
        MIXERS.get(name)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_file_reference_builds_and_trains_a_step(plugin_file):
    name = f"{plugin_file}:Good"
    model = build_model(name, vocab_size=16, d_model=32, n_heads=2, scale=0.5)
    assert model.mixers[0].scale == 0.5
    assert model.state_size(8) is None  # no state_size -> n/a, not a crash
    assert model.diagnostics() == {}
    loss = model(torch.randint(0, 16, (2, 8))).logsumexp(-1).mean()
    loss.backward()
    assert model.blocks[0].mixer.proj.weight.grad is not None


@pytest.mark.parametrize(
    "cls, expected",
    [
        ("WrongShape", "returned [2, 8, 3]; expected a tensor of the input's shape"),
        ("NeedsWidth", "constructor NeedsWidth(d_model=32, n_heads=2) failed"),
        ("Crashes", "forward(x [2, 8, 32]) failed: RuntimeError: boom"),
        ("Missing", "defines no class 'Missing'; classes there: Crashes, Good, NeedsWidth, WrongShape"),
    ],
)
def test_bad_plugins_give_one_line_errors(plugin_file, cls, expected):
    assert expected in _one_line_error(f"{plugin_file}:{cls}")


def test_missing_file_module_and_broken_file(tmp_path):
    assert "does not exist" in _one_line_error(f"{tmp_path}/nope.py:X")
    assert "module 'no_such_pkg_xyz.mod' cannot be imported" in _one_line_error("no_such_pkg_xyz.mod:X")
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise ImportError('needs a package\\nthat is missing')\n")
    assert "importing" in _one_line_error(f"{broken}:X") and "ImportError: needs a package" in _one_line_error(
        f"{broken}:X"
    )


def test_sla_twin_only_for_linear_mixers(plugin_file):
    assert "is not a slabench.models.LinearMixer subclass" in _one_line_error(f"sla-{plugin_file}:Good")


def test_example_variant_gets_an_sla_twin():
    twin = build_model("sla-examples/my_variant.py:GatedLinear", vocab_size=16, d_model=32, n_heads=2)
    base = build_model("examples/my_variant.py:GatedLinear", vocab_size=16, d_model=32, n_heads=2)
    assert twin.mixers[0].q_gate is not None and base.mixers[0].q_gate is None
    assert twin.state_size(8) == base.state_size(8) > 0
    assert twin(torch.randint(0, 16, (2, 8))).shape == (2, 8, 16)


def test_register_mixer(plugin_file, monkeypatch):
    from slabench.models.linear import LinearAttention

    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    good = plugins.load_reference(f"{plugin_file}:Good")
    slabench.register_mixer("my-good", good)
    assert build_model("my-good", vocab_size=8, d_model=32, n_heads=2).state_size(4) is None
    assert "my-good" in plugins._env_references()  # spawned workers find it again from the file

    class MyLinear(LinearAttention):  # a LinearMixer: the SLA twin is registered too
        pass

    slabench.register_mixer("my-linear", MyLinear)
    assert build_model("sla-my-linear", vocab_size=8, d_model=32, n_heads=2).mixers[0].q_gate is not None
    with pytest.raises(SlabenchError, match="already registered"):
        slabench.register_mixer("my-linear", LinearAttention)
    with pytest.raises(SlabenchError, match="must be non-empty, without ':'"):
        slabench.register_mixer("sla-x", MyLinear)


def test_a_mixer_only_this_process_can_load_stops_a_pool_before_any_run(tmp_path, monkeypatch):
    """A class defined inside a function cannot be loaded by a fresh worker process: its runs failed
    there under other keys than the grid's and the pool ended in a StopIteration traceback. Now the
    command stops in one line before any run; --workers 1 trains it."""
    from click.testing import CliRunner

    from slabench.cli import main
    from slabench.models.linear import LinearAttention

    class InFunction(LinearAttention):
        pass

    monkeypatch.setattr(MIXERS, "_items", dict(MIXERS._items))  # registered for this test only
    monkeypatch.setattr(plugins, "_IN_PROCESS_ONLY", set())
    slabench.register_mixer("in-function", InFunction)
    out = tmp_path / "out"
    args = ["run", "examples/tiny.toml", "--mixer", "sla-in-function", "--device", "cpu", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(main, [*args, "--workers", "2"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.output.strip().splitlines()[-1] == (
        "error: mixer 'sla-in-function' was registered with a class defined inside a function, which worker "
        "processes cannot load: run with --workers 1, or define the class at module level"
    )
    assert not (out / "records").exists() or not any((out / "records").iterdir())
    plugins.check_workers_can_load({"gla", "attention"})  # built-in mixers: any process loads them


def test_entry_point(plugin_file, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(plugin_file.parent))
    ep = importlib.metadata.EntryPoint(name="ep-good", value="my_mixers:Good", group=plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group=None: [ep] if group == plugins.ENTRY_POINT_GROUP else []
    )
    model = build_model("ep-good", vocab_size=8, d_model=32, n_heads=2)
    assert type(model.mixers[0]).__name__ == "Good"


DECLARED = """
from dataclasses import dataclass, field

from torch import nn

from slabench.models import Mixer
from slabench.models.linear import LinearAttention


@dataclass(frozen=True)
class ScaleOptions:
    scale: float = field(default=1.0, metadata={"help": "multiplies the output"})


class Declared(Mixer):
    Options = ScaleOptions

    def __init__(self, d_model, n_heads, options=None):
        super().__init__(d_model, n_heads, options)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        return self.options.scale * self.proj(x)


class KeywordLinear(LinearAttention):
    def __init__(self, d_model, n_heads, width: int = 3):
        super().__init__(d_model, n_heads)
"""


def test_plugin_declaring_its_options_dataclass(tmp_path):
    path = tmp_path / "declared.py"
    path.write_text(textwrap.dedent(DECLARED))
    model = build_model(f"{path}:Declared", vocab_size=8, d_model=32, n_heads=2, scale=0.5)
    assert model.mixers[0].options.scale == 0.5
    with pytest.raises(SlabenchError, match="scale=True is not a valid float"):
        build_model(f"{path}:Declared", vocab_size=8, scale=True)
    # A LinearMixer subclass taking keyword options is told how to declare them.
    assert "subclasses LinearMixer, which takes its options as a dataclass" in _one_line_error(f"{path}:KeywordLinear")


def test_missing_class_lists_only_the_mixer_classes(tmp_path):
    path = tmp_path / "options_too.py"
    path.write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            from torch import nn

            @dataclass(frozen=True)
            class MineOptions:
                width: int = 4

            class Helper:
                pass

            class Mine(nn.Module):
                Options = MineOptions
            """
        )
    )
    assert _one_line_error(f"{path}:Mien").endswith("classes there: Mine")


@pytest.mark.parametrize("name", ["sla-sla-gla", "sla-sla-sla-linear", "sla-sla-examples/my_variant.py:GatedLinear"])
def test_sla_twin_of_a_twin_is_one_line(name):
    """Was a TypeError (an inconsistent MRO): the gate options would be declared twice."""
    message = _one_line_error(name)
    assert "already has SLA gates; sla- applies to a base mixer: deltanet, gdn, gla, linear, mamba2" in message
    assert "or a LinearMixer plugin (sla-path/to/file.py:Class)" in message  # (names register_mixer added between)


def test_a_list_option_is_refused_in_one_line(tmp_path):
    """`w: list = None` loaded, and `w = [1, 2]` in a grid silently became two runs (w=1, w=2):
    a grid's list is a sweep, so an option must be a scalar or a Literal."""
    path = tmp_path / "listy.py"
    path.write_text(
        "from torch import nn\n\n\n"
        "class Listy(nn.Module):\n"
        "    def __init__(self, d_model, n_heads, w: list = None, k: int | None = None):\n"
        "        super().__init__()\n"
        "        self.proj = nn.Linear(d_model, d_model)\n\n"
        "    def forward(self, x):\n"
        "        return self.proj(x)\n"
    )
    message = _one_line_error(f"{path}:Listy")
    assert "option 'w' has type list; an option must be int, float, bool, str or a Literal[...]" in message

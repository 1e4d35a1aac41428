"""The README cannot drift: every `slabench` command it shows parses, the fast ones run as shown,
its grid and Python examples run, and its [train] table lists every key.

Which commands run (in a scratch directory, so nothing in the checkout is written):
- as shown: `show`, `tasks`, `models`, `train-options`, `leaderboard` (on a copy of the paths it
  names), and any command with `--dry-run`;
- `run` without `--dry-run` (minutes of training): with `--dry-run` added, which expands and
  validates the whole grid;
- every other `slabench` command (`ci`, `compare`, `sweep`, `profile`, `report`, `doctor`: CPU
  minutes or a GPU): its arguments are parsed by the real command line (names, options, choices);
- templates (`GRID.toml`, `TASK`, `file.py:Class`, ...): the subcommand exists;
- `pip install ...` and `pytest`: not run here (CI runs both).
"""

import json
import re
import shlex
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from slabench.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
RUN_AS_SHOWN = {"show", "tasks", "models", "train-options", "leaderboard"}


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE)


def _commands() -> list[str]:
    """Every `slabench ...` command: lines of bash blocks (split at &&) and inline code spans."""
    found = [part.strip() for block in _blocks("bash") for line in block.splitlines() for part in line.split("&&")]
    found += re.findall(r"`(slabench [^`]+)`", README)
    return list(dict.fromkeys(" ".join(c.replace("\\|", "|").split()) for c in found if c.startswith("slabench ")))


def _is_template(command: str) -> bool:
    return bool(re.search(r"\b[A-Z][A-Z_]{2,}\b|[A-Z]\.toml|file\.py|\|", command))


COMMANDS = _commands()


def test_the_readme_shows_commands():
    assert "slabench run --preset smoke" in COMMANDS
    assert any(c.startswith("slabench show ") for c in COMMANDS)
    assert any(c.startswith("slabench leaderboard ") for c in COMMANDS)


def _mirror(args: list[str], work: Path) -> None:
    """Make the repository paths a command names visible under `work` (linked, read as input),
    with real directories above them, so what the command writes lands in `work`."""
    for arg in args:
        src = ROOT / arg
        if arg.startswith("-") or not src.exists() or (work / arg).exists():
            continue
        (work / arg).parent.mkdir(parents=True, exist_ok=True)
        (work / arg).symlink_to(src)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command(command, tmp_path, monkeypatch):
    args = shlex.split(command)[1:]
    sub, rest = main, list(args)
    while isinstance(sub, click.Group) and rest and not rest[0].startswith("-"):  # `report sla`: the leaf command
        sub, rest = sub.commands.get(rest[0]), rest[1:]
        assert sub is not None, f"README names an unknown command: {command}"
    if _is_template(command):
        return
    if sub.name == "run" and "--dry-run" not in args:
        args.append("--dry-run")
    if sub.name in RUN_AS_SHOWN or "--dry-run" in args:
        _mirror(args, tmp_path)
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, f"{command}\n{result.output}"
    else:
        with sub.make_context(sub.name, rest) as ctx:  # parses options and choices; runs nothing
            assert ctx.params is not None


def test_readme_grid_expands(tmp_path):
    (grid,) = _blocks("toml")
    path = tmp_path / "grid.toml"
    path.write_text(grid)
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run", "--json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"] == 2 * 3 * 3 * 6  # kv pairs x models x lr x seeds


def test_readme_python_runs():
    (code,) = _blocks("python")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert tuple(scope["logits"].shape) == (8, 32, 64)


def test_readme_lists_every_train_key():
    options = json.loads(CliRunner().invoke(main, ["train-options", "--json"]).stdout)["train"]
    section = README.split("The `[train]` keys", 1)[1].split("```", 1)[0]
    missing = [k for k in options if f"| `{k}` |" not in section]
    assert not missing, f"README's [train] table lacks {missing}"


if __name__ == "__main__":  # list what the test runs
    for c in COMMANDS:
        print("template" if _is_template(c) else "command ", c, file=sys.stdout)

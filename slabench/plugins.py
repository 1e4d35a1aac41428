"""User mixers as plugins: load, validate, and resolve them by name in any process.

A plugin mixer is a class built as `MyMixer(d_model, n_heads, options)`, `options` an instance of
its `Options` (a frozen dataclass, every field with a default), whose `forward(x [B, T, D])`
returns [B, T, D]. A class built as `MyMixer(d_model, n_heads, **options)` works too: its keyword
options become the fields of an `Options` dataclass when it is loaded. Anywhere a mixer name is
accepted (grid files, `run --mixer`, `compare --mixer`) it can be named by:

    path/to/file.py:MyMixer      a Python file (relative to the working directory, or absolute)
    pkg.mod:MyMixer              an importable module
    name                         an entry point in the group `slabench.mixers`, or a name given
                                 to `slabench.register_mixer(name, MyMixer)`
    sla-<any of the above>       its SLA twin, when MyMixer subclasses `slabench.models.LinearMixer`

Design: the reference string *is* the model name, so it travels inside every `RunSpec` and run
record. `MIXERS` is a `MixerRegistry`, which resolves a name it does not know the first time it
is asked for it; a spawned worker process re-imports slabench and resolves the same string
again, so nothing but the string crosses processes. `register_mixer` also writes name ->
reference into the environment variable `SLABENCH_MIXERS`, which spawned workers inherit.

Loading validates the class once (build it with d_model=32, n_heads=2; run forward on
[2, 8, 32]) and raises a one-line `SlabenchError` naming the problem. A class without its own
`state_size` gets one that returns None (shown as n/a), and `diagnostics()` defaults to {}.

A plugin's run key includes a hash of its source file (`source_digest`), so after an edit its runs
are new runs, never the old records reused; `slabench compare` also names its default output
folder by that hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from slabench.errors import SlabenchError, one_line
from slabench.registry import Registry

ENTRY_POINT_GROUP = "slabench.mixers"
ENV_VAR = "SLABENCH_MIXERS"  # JSON {name: reference} written by register_mixer, read by workers
PROBE_D_MODEL, PROBE_HEADS, PROBE_SHAPE = 32, 2, (2, 8, 32)

_file_modules: dict[str, Any] = {}  # absolute path -> module, so one file is executed once per process
_checked: dict[type, type] = {}  # plugin class -> validated (possibly wrapped) class
_twins: dict[type, type] = {}  # plugin class -> its validated SLA twin


def is_reference(name: str) -> bool:
    return ":" in name


def _load_file(ref: str, path_text: str) -> Any:
    path = Path(path_text).expanduser().resolve()
    if path.is_dir():
        raise SlabenchError(f"plugin '{ref}': '{path_text}' is a directory; expected path/to/file.py:ClassName")
    if not path.is_file():
        raise SlabenchError(f"plugin '{ref}': file '{path_text}' does not exist")
    if path.suffix != ".py":
        raise SlabenchError(f"plugin '{ref}': '{path_text}' is not a Python file; expected path/to/file.py:ClassName")
    key = str(path)
    if key not in _file_modules:
        digest = hashlib.sha1(key.encode()).hexdigest()[:8]
        mod_name = f"slabench_plugin_{path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module  # dataclasses and pickling look classes up here
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:  # a script's sys.exit() at import ended slabench silently
            del sys.modules[mod_name]
            raise SlabenchError(f"plugin '{ref}': importing '{path_text}' failed: {one_line(e)}") from None
        _file_modules[key] = module
    return _file_modules[key]


def load_reference(ref: str) -> type:
    """`path/to/file.py:Class` or `pkg.mod:Class` -> the validated class."""
    where, _, attr = ref.rpartition(":")
    if not where or not attr:
        raise SlabenchError(f"plugin '{ref}': expected 'path/to/file.py:ClassName' or 'package.module:ClassName'")
    if where.endswith(".py") or "/" in where or os.sep in where or Path(where).is_file():
        module = _load_file(ref, where)
    else:
        try:
            module = importlib.import_module(where)
        except Exception as e:
            if Path(where).is_dir():
                raise SlabenchError(
                    f"plugin '{ref}': '{where}' is a directory; expected path/to/file.py:ClassName"
                ) from None
            raise SlabenchError(f"plugin '{ref}': module '{where}' cannot be imported: {one_line(e)}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            from torch import nn

            # Only the mixer candidates: an options dataclass or a helper class is no answer.
            classes = sorted(
                n
                for n, v in vars(module).items()
                if inspect.isclass(v) and v.__module__ == module.__name__ and issubclass(v, nn.Module)
            )
            raise SlabenchError(
                f"plugin '{ref}': '{where}' defines no class '{attr}'; classes there: {', '.join(classes) or '(none)'}"
            )
        obj = getattr(obj, part)
    return validate(obj, ref)


def _options_from_signature(cls: type) -> dict[str, Any]:
    """For a class built as `cls(d_model, n_heads, **options)`: an `Options` dataclass of its
    keyword options and an `__init__` that takes one, for the subclass `validate` returns."""
    hints = typing.get_type_hints(cls.__init__)
    specs = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in ("self", "d_model", "n_heads") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = {} if p.default is p.empty else {"default": p.default}
        kind = hints.get(p.name, Any if p.default is p.empty else type(p.default))
        specs.append((p.name, kind, dataclasses.field(**default)))
    # kw_only: an option without a default may follow one with a default, as in a signature.
    options = dataclasses.make_dataclass(
        f"{cls.__name__}Options", specs, frozen=True, kw_only=True, namespace={"__module__": cls.__module__}
    )

    def __init__(self, d_model: int, n_heads: int, options: Any = None):
        options = type(self).Options() if options is None else options
        cls.__init__(self, d_model, n_heads, **{f.name: getattr(options, f.name) for f in dataclasses.fields(options)})

    return {"Options": options, "__init__": __init__}


def _check_option_types(options: type, ref: str) -> None:
    """Options are scalars a grid can set: int, float, bool, str, a Literal of values, or Optional
    of one. A list-typed option would be read as a sweep (`w = [1, 2]` ran two runs, w=1 and w=2)."""
    from slabench.params import dataclass_params

    scalars = (int, float, bool, str, Any)
    for p in dataclass_params(options):
        t = p.type
        if typing.get_origin(t) in (typing.Union, types.UnionType):
            t = next((a for a in typing.get_args(t) if a is not type(None)), t)
        if t not in scalars and typing.get_origin(t) is not Literal:
            raise SlabenchError(
                f"plugin '{ref}': option '{p.name}' has type {p.describe_type()}; an option must be int, float, bool, "
                "str or a Literal[...] of values (a list in a grid is a sweep: one run per value)"
            )


def validate(cls: Any, ref: str) -> type:
    """Check the mixer contract on a tiny input; return the class, wrapped to take its options
    as a dataclass when it takes them as keywords, and to fill in a missing `state_size` (None)
    or `diagnostics` ({}). One-line SlabenchError on any violation."""
    import torch
    from torch import nn

    from slabench.models.base import Mixer
    from slabench.models.linear_base import LinearMixer

    if cls in _checked:
        return _checked[cls]
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise SlabenchError(f"plugin '{ref}': {cls!r} is not a torch.nn.Module subclass")
    name = cls.__name__
    extra: dict[str, Any] = {}
    if "options" in inspect.signature(cls.__init__).parameters:
        options = getattr(cls, "Options", None)
        if not (dataclasses.is_dataclass(options) and options.__dataclass_params__.frozen):
            raise SlabenchError(
                f"plugin '{ref}': {name}.Options must be a frozen dataclass of its options "
                "(@dataclass(frozen=True)), since its constructor takes `options`"
            )
    elif issubclass(cls, LinearMixer):
        raise SlabenchError(
            f"plugin '{ref}': {name} subclasses LinearMixer, which takes its options as a dataclass: "
            f"set {name}.Options and define __init__(self, d_model, n_heads, options=None) "
            "(docs/new-variant.md)"
        )
    else:
        extra.update(_options_from_signature(cls))
    if getattr(cls, "state_size", Mixer.state_size) is Mixer.state_size:
        extra["state_size"] = lambda self, seq_len: None  # unknown: reported as n/a
    if not hasattr(cls, "diagnostics"):
        extra["diagnostics"] = lambda self: {}
    out = type(name, (cls,), {**extra, "__module__": cls.__module__, "__doc__": cls.__doc__}) if extra else cls

    _check_option_types(out.Options, ref)
    try:
        mixer = out(PROBE_D_MODEL, PROBE_HEADS, out.Options())
    except Exception as e:
        raise SlabenchError(
            f"plugin '{ref}': constructor {name}(d_model={PROBE_D_MODEL}, n_heads={PROBE_HEADS}) "
            f"failed ({one_line(e)}); every option needs a default"
        ) from None
    x = torch.randn(*PROBE_SHAPE, generator=torch.Generator().manual_seed(0))  # [B, T, D]
    try:
        y = mixer(x)
    except Exception as e:
        raise SlabenchError(f"plugin '{ref}': forward(x [2, 8, 32]) failed: {one_line(e)}") from None
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != PROBE_SHAPE:
        got = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise SlabenchError(
            f"plugin '{ref}': forward(x [2, 8, 32]) returned {got}; expected a tensor of the input's shape [B, T, D]"
        )
    _checked[cls] = out
    return out


def sla_twin_of(cls: type, ref: str) -> type:
    from slabench.models import MIXERS, LinearMixer, SLAGateOptions, sla_twin

    if issubclass(getattr(cls, "Options", object), SLAGateOptions):
        # A twin of a twin would declare the gate options twice (an inconsistent MRO): say so,
        # naming the bases that have a twin (file references by their pattern, not one by one).
        bases = ", ".join(
            n for n in MIXERS.names() if f"sla-{n}" in MIXERS and not n.startswith("sla-") and not is_reference(n)
        )
        raise SlabenchError(
            f"model 'sla-{ref}': {ref} already has SLA gates; sla- applies to a base mixer: {bases}, "
            "or a LinearMixer plugin (sla-path/to/file.py:Class)"
        )
    if not issubclass(cls, LinearMixer):
        raise SlabenchError(
            f"plugin 'sla-{ref}': {cls.__name__} is not a slabench.models.LinearMixer subclass, so it "
            "has no SLA twin (implement qkv() and mix() on a LinearMixer to get one)"
        )
    if cls not in _twins:
        _twins[cls] = validate(sla_twin(cls), f"sla-{ref}")
    return _twins[cls]


def _entry_point(name: str) -> Any:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


def _env_references() -> dict[str, str]:
    try:
        return json.loads(os.environ.get(ENV_VAR, "{}"))
    except json.JSONDecodeError:
        raise SlabenchError(f"environment variable {ENV_VAR} is not valid JSON") from None


class MixerRegistry(Registry):
    """The mixer registry: names it does not hold are resolved as plugins on first use."""

    def get(self, name: str) -> Any:
        if isinstance(name, str) and name not in self._items:
            cls = self._resolve(name)
            if cls is not None:
                self._items[name] = cls
        return super().get(name)

    def _resolve(self, name: str) -> type | None:
        if name.startswith("sla-") and len(name) > 4:
            base = name[4:]
            if base in self._items or self._resolve(base) is not None:
                return sla_twin_of(self.get(base), base)
            return None
        if is_reference(name):
            return load_reference(name)
        env = _env_references()
        if name in env:
            return load_reference(env[name])
        ep = _entry_point(name)
        if ep is not None:
            try:
                obj = ep.load()
            except Exception as e:
                raise SlabenchError(
                    f"plugin '{name}' (entry point {ep.value}): loading failed: {one_line(e)}"
                ) from None
            return validate(obj, name)
        if name.endswith(".py") or "/" in name or os.sep in name:
            raise SlabenchError(
                f"unknown model '{name}': to load a mixer from a file, name its class too, as '{name}:ClassName'"
            )
        return None


SLABENCH_DIR = Path(__file__).resolve().parent
_digests: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> digest


def source_digest(name: str) -> str | None:
    """sha256 (16 hex digits) of the file that defines mixer `name`; None for slabench's own
    mixers (their version is the code's git commit, in every record's environment) and for a
    name that resolves to nothing here."""
    from slabench.models import MIXERS

    base = name[4:] if name.startswith("sla-") and len(name) > 4 else name
    where = base.rpartition(":")[0]
    if where.endswith(".py"):  # a file reference: hash the file without importing it
        file = where
    else:
        try:
            file = inspect.getsourcefile(MIXERS.get(base))
        except (SlabenchError, TypeError):  # unknown here, or a class without a source file
            return None
    path = Path(file).expanduser().resolve() if file else None
    if path is None or not path.is_file() or path.is_relative_to(SLABENCH_DIR):
        return None
    stat = path.stat()
    tag = (str(path), stat.st_mtime_ns, stat.st_size)
    if tag not in _digests:
        _digests[tag] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _digests[tag]


def _reference_of(cls: type) -> str | None:
    """A string a fresh process can load `cls` from, or None (a class defined in a function)."""
    if "<locals>" in cls.__qualname__:
        return None
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if cls.__module__ == "__main__" or cls.__module__.startswith("slabench_plugin_"):
        return f"{Path(file).resolve()}:{cls.__qualname__}" if file else None
    return f"{cls.__module__}:{cls.__qualname__}"


# Names registered with a class no fresh process can load (defined inside a function): in-process only.
_IN_PROCESS_ONLY: set[str] = set()


def check_workers_can_load(mixers: set[str]) -> None:
    """One line, before any run starts, if a mixer a worker process would need was registered with
    a class it cannot load (its runs failed under other keys than the grid's, then a traceback)."""
    local = sorted(mixers & _IN_PROCESS_ONLY)
    if local:
        raise SlabenchError(
            f"mixer {local[0]!r} was registered with a class defined inside a function, which worker processes "
            "cannot load: run with --workers 1, or define the class at module level"
        )


def register_mixer(name: str, cls: type, *, replace: bool = False) -> type:
    """Register a plugin mixer class under `name` (and `sla-<name>` when it is a LinearMixer).

    Validates it first. Worker processes find it again through its module (recorded in
    SLABENCH_MIXERS); a class defined inside a function works in-process only (--workers 1).
    """
    from slabench.models import MIXERS, LinearMixer

    if is_reference(name) or name.startswith("sla-") or not name:
        raise SlabenchError(f"register_mixer: name {name!r} must be non-empty, without ':' and not start with 'sla-'")
    checked = validate(cls, name)
    MIXERS.register(name, checked, replace=replace)
    names = {name}
    if issubclass(cls, LinearMixer):
        MIXERS.register(f"sla-{name}", sla_twin_of(cls, name), replace=replace)
        names.add(f"sla-{name}")
    ref = _reference_of(cls)
    if ref is not None:
        os.environ[ENV_VAR] = json.dumps({**_env_references(), name: ref})
        _IN_PROCESS_ONLY.difference_update(names)
    else:
        _IN_PROCESS_ONLY.update(names)
    return checked

"""The run record: what one training run leaves behind, as one JSON object (`records/<key>.json`).

`runners.train.train` builds it, `runners.grid.failed_record` builds the record of a run that
raised, `runners.records` writes and reads the files, and every table (leaderboard, compare,
`slabench ci`, `slabench report`) is rebuilt from records alone. The types below are the
contract between them; `docs/architecture.md` ("The run record") shows the same fields as a table.

Records are plain JSON: these are `TypedDict`s, so a record read back from disk is the dict it was
written as, and records of earlier versions of slabench load unchanged. Keys that a record may
lack are in the `total=False` half of each type; readers take them with `.get`:

- a `failed` record has only `key`, `spec`, `seed`, `status`, `error`, `traceback`, an empty
  `metrics`, `environment` and `timestamp`; a `diverged` one has `metrics.steps` and
  `metrics.curve` only;
- `metrics.train_examples` is present only in runs with a finite training set;
- records written before these fields existed lack `model.mixer_source`, `checkpoint` and `fold`
  (590 of the committed records under `leaderboards/records/`, the oldest, lack all three), `environment.mps`,
  `environment.device_index`, and `spec.train`'s `solve_at`, `min_seeds`, `epochs` and
  `train_examples` (read as the `TrainSpec` defaults by `RunSpec.from_dict`).

Adding a field: add it to the `total=False` half of its type with a comment saying what it is,
its unit and when it is absent; write it in `train` (or wherever it is produced); read it with
`.get` and a default that gives older records their old meaning. Such an addition keeps
`SCHEMA_VERSION`. Bump `SCHEMA_VERSION` only when an existing field changes meaning or goes away,
and teach `runners.records` to read the older version.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

SCHEMA_VERSION = 1  # the `schema` field of every record
STATUSES = ("ok", "diverged", "failed")
Status = Literal["ok", "diverged", "failed"]


class RecordSpec(TypedDict):
    """`RunSpec.to_dict()`: the full run specification; `RunSpec.from_dict` reads it back."""

    grid: str  # name of the grid the run came from (not part of the key: grids share runs)
    task: dict[str, Any]  # {"name", "params": sorted [key, value] pairs, "test": overrides for the test set}
    model: dict[str, Any]  # {"name": registered mixer or plugin reference, "params": sorted [key, value] pairs}
    train: dict[str, Any]  # every TrainSpec field (`slabench train-options`); older records lack the newer ones
    seed: int  # model init and training stream


class CurvePoint(TypedDict, total=False):
    """One evaluation during training; besides these three keys, the mixer's `diagnostics()`
    per layer (`"layer0/gate_entropy": float`, ...), absent for mixers without diagnostics."""

    step: int  # optimizer steps taken when the evaluation ran
    train_loss: float  # training loss of the step just taken (nats per scored token)
    val_acc: float  # micro accuracy on the validation set, in [0, 1]


class SliceMetrics(TypedDict):
    acc: float  # micro accuracy over the slice's scored test positions, in [0, 1]
    exact: float  # fraction of the slice's test examples with every scored position right
    n: int  # test examples in the slice


class Metrics(TypedDict, total=False):
    """Every key in an `ok` record; `steps` and `curve` only in a `diverged` one; none in a `failed` one."""

    steps: int  # optimizer steps taken (fewer than the budget after an early stop)
    curve: list[CurvePoint]  # one point per evaluation, in step order
    test_acc: float  # micro accuracy over scored test positions, best-validation weights, in [0, 1]
    test_exact: float  # fraction of test examples with every scored position right
    val_acc: float  # best validation accuracy (the lr choice and early stopping use it)
    slices: dict[str, SliceMetrics]  # "name=value" (a task's slice metadata) -> metrics of those test examples
    final_train_loss: float  # training loss at the last evaluation
    train_test_overlap: float | None  # fraction of test examples also drawn in training; None: test length differs
    # Rows of the finite training set (`[train] train_examples`) after dropping those equal to a
    # validation or test row; absent for a fresh stream (train_examples 0) and in older records.
    train_examples: int


class _ModelRequired(TypedDict):
    params: int  # trainable parameters
    state_size: int | None  # inference state per sequence at the training length, in elements; None: not known


class ModelInfo(_ModelRequired, total=False):
    mixer_source: str | None  # sha256 (16 hex) of a plugin mixer's source file; None: built-in. Absent: older record


class Timings(TypedDict):
    train_seconds: float  # wall time of the training loop, evaluations included
    eval_seconds: float  # of which validation
    step_ms: float  # milliseconds per optimizer step, evaluations excluded
    tokens_per_s: float  # training tokens per second, evaluations excluded
    peak_memory_bytes: int  # peak CUDA memory allocated, or the process's peak RSS on CPU


class _EnvironmentRequired(TypedDict):
    slabench: str  # package version
    git_sha: str | None  # commit of the checkout slabench ran from; None outside a git checkout
    git_dirty: bool | None  # uncommitted changes in that checkout
    python: str
    torch: str
    triton: str | None  # None: not installed
    fla: str | None  # fla-core version; None: not installed
    device: str  # GPU name, or "<CPU model> (<n> threads)"
    cuda: str | None  # CUDA version torch was built with; None without a GPU
    host: str


class Environment(_EnvironmentRequired, total=False):
    mps: bool | None  # an NVIDIA MPS daemon was reachable (CUDA runs); None on CPU. Absent: older record
    # The GPU the run trained on: its CUDA index on its host (Ray: the GPU id Ray gave the task on
    # its node, `host`); None on CPU. Absent: older record.
    device_index: int | None


class _RecordRequired(TypedDict):
    schema: int  # SCHEMA_VERSION of the writer
    key: str  # 16 hex: RunSpec.key(), also the file name
    spec: RecordSpec
    seed: int  # the run's seed (= spec.seed)
    status: Status  # ok; diverged (non-finite loss: a result, not an error); failed (an exception)
    error: str | None  # one line for diverged and failed; None when ok
    metrics: Metrics
    environment: Environment
    timestamp: str  # UTC ISO 8601, seconds: when the run ended


class RunRecord(_RecordRequired, total=False):
    """One run. The keys below are absent from `failed` records, `traceback` from all others."""

    traceback: str | None  # failed only: the full Python traceback (None when there was none)
    model: ModelInfo
    timings: Timings
    kernel_paths: dict[str, str]  # op -> the path that ran ("reference", "fla_chunk_gla", ...)
    train_path: str  # "eager" or "cuda-graph" (the whole step captured and replayed)
    train_path_fallback: str | None  # why CUDA-graph capture fell back to eager; None: it did not
    fold: int  # runs trained together as one batched model (runners/batched.py); 1 alone. Absent: older record
    checkpoint: str | None  # path of the best-validation weights (`run --save-checkpoints`); absent: older record

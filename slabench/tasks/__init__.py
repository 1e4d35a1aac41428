"""Task registry: `build_task(name, **params)` returns a validated task.

Every task family lives in one file here and registers itself below, in one place.
"""

from __future__ import annotations

from typing import Any

from slabench.params import Param, check_params, dataclass_params, require
from slabench.registry import Registry
from slabench.tasks.ar import AR
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.compression import Compression
from slabench.tasks.fuzzy_recall import FuzzyRecall
from slabench.tasks.majority import Majority
from slabench.tasks.memorization import Memorization
from slabench.tasks.mqar import MQAR
from slabench.tasks.mqar_compositional import MQARCompositional
from slabench.tasks.mqar_overwrite import MQAROverwrite
from slabench.tasks.needle import Needle
from slabench.tasks.noisy_recall import NoisyRecall
from slabench.tasks.parity import Parity
from slabench.tasks.selective_copy import SelectiveCopy
from slabench.tasks.state_tracking import StateTracking

TASKS: Registry[type[Task]] = Registry("task")
TASKS.register("mqar", MQAR)
TASKS.register("ar", AR)
TASKS.register("needle", Needle)
TASKS.register("noisy-recall", NoisyRecall)
TASKS.register("fuzzy-recall", FuzzyRecall)
TASKS.register("selective-copy", SelectiveCopy)
TASKS.register("mqar-overwrite", MQAROverwrite)
TASKS.register("mqar-compositional", MQARCompositional)
TASKS.register("parity", Parity)
TASKS.register("majority", Majority)
TASKS.register("state-tracking", StateTracking)
TASKS.register("compression", Compression)
TASKS.register("memorization", Memorization)


def task_params(name: str) -> list[Param]:
    """The parameters of task `name` with their defaults and help text."""
    return dataclass_params(TASKS.get(name))


# Largest seq_len and vocab_size of any task: a synthetic recall task far beyond them is a typo
# (seq_len=1e9 made `slabench show` allocate 8 GB and die), and its batches or embedding would
# not fit one machine anyway.
MAX_SIZE = 2**20


def build_task(name: str, **params: Any) -> Task:
    """A task instance; unknown or invalid parameters raise a one-line `SlabenchError`."""
    where = f"task '{name}'"
    task = TASKS.get(name)(**check_params(where, task_params(name), params))
    for key in ("seq_len", "vocab_size"):
        value = getattr(task, key)
        require(value <= MAX_SIZE, where, f"{key}={value} must be <= {MAX_SIZE} (2**20)")
    return task


__all__ = ["IGNORE", "TASKS", "Batch", "Task", "build_task", "task_params"]

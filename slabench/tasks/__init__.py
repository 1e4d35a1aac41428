"""Task registry: `build_task(name, **params)` returns a validated task.

Every task family lives in one file here and registers itself below, in one place.
"""

from __future__ import annotations

from typing import Any

from slabench.params import Param, check_params, dataclass_params
from slabench.registry import Registry
from slabench.tasks.base import IGNORE, Batch, Task
from slabench.tasks.mqar import MQAR

TASKS: Registry[type[Task]] = Registry("task")
TASKS.register("mqar", MQAR)


def task_params(name: str) -> list[Param]:
    """The parameters of task `name` with their defaults and help text."""
    return dataclass_params(TASKS.get(name))


def build_task(name: str, **params: Any) -> Task:
    """A task instance; unknown or invalid parameters raise a one-line `SlabenchError`."""
    cls = TASKS.get(name)
    return cls(**check_params(f"task '{name}'", task_params(name), params))


__all__ = ["IGNORE", "TASKS", "Batch", "Task", "build_task", "task_params"]

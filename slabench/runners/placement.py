"""Which device trains which runs: a pure scheduler over a grid's groups of runs.

A group is a fold (runs trained as one model, runners/batched.py) or a single run. The runners
(local pool, Ray) ask `Placement.next` for work whenever a worker is idle, passing each device's
free memory as measured now (torch.cuda.mem_get_info); it answers with the first waiting group
and the device with the most free memory per run once that group is on it:

    score(d) = free_bytes[d] / (runs in flight on d + runs in the group)

so runs go where memory is, a fold of 6 weighs six times a single run, and every device with
memory above the reserve takes work. A device at its worker limit or below the reserve takes
nothing until it frees up.

A group that fails because of its device (out of memory, a CUDA error, its worker process died)
is queued again for a device it has not failed on, up to `attempts` tries in all; then its
runs get a `failed` record with every reason. With a single device (CPU, one GPU, Ray) the
retry is on that device.

The runners hand their groups over in `spread_first_uses` order: one group of each distinct
(task, model) before any second one, so that the first wave of workers pays the first uses
(Triton compiles, dispatch probes, fla's autotuning) of different mixers side by side, and
later runs of a mixer find its kernels in Triton's on-disk cache. In grid order the first
wave would be one mixer's seeds, each compiling the same kernels. The other groups follow in
the order given, so a caller that lists its longest runs first (`report zoology`) starts them
early and the pool does not end on one long run.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

RESERVE_BYTES = 2 * 2**30  # free memory a GPU must keep before another group starts on it
ATTEMPTS = 3  # tries of a group, the first included, before its runs are recorded as failed

Run = TypeVar("Run")


def spread_first_uses(groups: list[list[Run]], key: Callable[[Run], Hashable]) -> list[list[Run]]:
    """`groups` with the first group of each distinct `key` (of its first run) up front, in order
    of appearance, so the first wave of workers compiles different kernels; then the rest in
    their given order, so a caller that lists its longest runs first still starts them early."""
    seen: set[Hashable] = set()
    first, rest = [], []
    for group in groups:
        k = key(group[0])
        (rest if k in seen else first).append(group)
        seen.add(k)
    return first + rest


@dataclass
class Group(Generic[Run]):
    runs: list[Run]  # trained together (a fold) or one run
    failed_on: list[int] = field(default_factory=list)  # devices it failed on, in order
    reasons: list[str] = field(default_factory=list)  # why, one per failure


class Placement(Generic[Run]):
    """Waiting groups, groups in flight per device, and where the next group goes."""

    def __init__(
        self,
        groups: list[list[Run]],
        devices: list[int],
        workers_per_device: int,
        attempts: int = ATTEMPTS,
        reserve_bytes: int = RESERVE_BYTES,
    ):
        self.waiting = [Group(runs) for runs in groups]
        self.devices = devices
        self.workers_per_device = workers_per_device
        self.attempts = attempts
        self.reserve_bytes = reserve_bytes
        self.busy = {d: 0 for d in devices}  # groups in flight (one worker each)
        self.load = {d: 0 for d in devices}  # runs in flight

    def next(self, free_bytes: Mapping[int, int]) -> tuple[Group[Run], int] | None:
        """The first waiting group that a device can take now, and that device; None: wait for
        a group to end (or nothing is waiting). Marks the group in flight there."""
        for i, group in enumerate(self.waiting):
            device = self._device_for(group, free_bytes)
            if device is not None:
                self.waiting.pop(i)
                self.busy[device] += 1
                self.load[device] += len(group.runs)
                return group, device
        return None

    def _device_for(self, group: Group[Run], free_bytes: Mapping[int, int]) -> int | None:
        open_ = [
            d for d in self.devices if self.busy[d] < self.workers_per_device and free_bytes[d] >= self.reserve_bytes
        ]
        untried = [d for d in open_ if d not in group.failed_on]
        # A device it failed on only once every device has failed it (e.g. a single GPU).
        candidates = untried or ([] if set(self.devices) - set(group.failed_on) else open_)
        if not candidates:
            return None
        return max(candidates, key=lambda d: (free_bytes[d] / (self.load[d] + len(group.runs)), -d))

    def done(self, group: Group[Run], device: int) -> None:
        """The group ended on `device` (its records are written)."""
        self.busy[device] -= 1
        self.load[device] -= len(group.runs)

    def fault(self, group: Group[Run], device: int, reason: str, unfinished: list[Run]) -> bool:
        """The group failed on `device` with its `unfinished` runs not recorded: True when they
        wait for another try, False when they are out of tries (record them as failed)."""
        self.done(group, device)
        if not unfinished:
            return True
        group.runs = unfinished
        group.failed_on.append(device)
        group.reasons.append(reason)
        if len(group.failed_on) >= self.attempts:
            return False
        self.waiting.append(group)
        return True

    @property
    def in_flight(self) -> int:
        return sum(self.busy.values())

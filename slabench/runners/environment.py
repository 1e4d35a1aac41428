"""What machine and software a result came from (stored in every run record)."""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

import torch

import slabench


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _git() -> tuple[str | None, bool | None]:
    root = Path(slabench.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None, None
    if sha.returncode != 0:
        return None, None
    return sha.stdout.strip(), bool(dirty.stdout.strip())


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({torch.get_num_threads()} threads)"


def machine(device: str) -> str:
    """A device name as `device_name` wrote it, without the CPU's thread count, which a run's
    worker count sets ('AMD EPYC (1 threads)' -> 'AMD EPYC'): the machine it names."""
    return re.sub(r" \(\d+ threads\)$", "", device)


def mps_active() -> bool:
    """Whether an NVIDIA MPS daemon is reachable: CUDA clients find it through the `control`
    pipe in CUDA_MPS_PIPE_DIRECTORY (default /tmp/nvidia-mps). Under MPS, runs packed as
    processes share the GPU's SMs; without it they time-slice (leaderboards/speed/packing.md)."""
    return (Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")) / "control").exists()


def _device_index(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    return device.index if device.index is not None else torch.cuda.current_device()


def environment(device: torch.device | str) -> dict[str, object]:
    sha, dirty = _git()
    return {
        "slabench": slabench.__version__,
        "git_sha": sha,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "fla": _version("fla-core"),
        "device": device_name(device),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "mps": mps_active() if torch.device(device).type == "cuda" else None,
        "device_index": _device_index(torch.device(device)),
        "host": platform.node(),
    }


def peak_memory_bytes(device: torch.device) -> int:
    """Peak CUDA memory allocated on `device`, or the process's peak RSS on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB

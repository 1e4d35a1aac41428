"""What a sweep measures: the mixers, the shapes (a length sweep plus exact shapes), the modes,
and the model of the training-step timing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from slabench.params import require

MODES = ("fwd", "fwdbwd", "fwdbwd-graph")
MODE_TITLES = {"fwd": "fwd", "fwdbwd": "fwd+bwd", "fwdbwd-graph": "fwd+bwd, CUDA graph replay"}


@dataclass(frozen=True)
class Shape:
    batch: int
    seq_len: int
    heads: int
    head_dim: int
    sweep: str = "length"  # 'length' (part of the length sweep) or 'shape' (given explicitly)

    @property
    def d_model(self) -> int:
        return self.heads * self.head_dim

    @property
    def label(self) -> str:
        return f"B{self.batch} T{self.seq_len} H{self.heads} D{self.head_dim}"


@dataclass(frozen=True)
class TrainStepShape:
    """The model and batch of the training-step timing (the standard MQAR model by default)."""

    batch: int = 256
    seq_len: int = 256
    d_model: int = 128
    n_layers: int = 2
    vocab_size: int = 8192
    num_kv_pairs: int = 16


@dataclass(frozen=True)
class SweepConfig:
    mixers: tuple[str, ...]
    device: str
    dtype: str  # 'bf16' or 'fp32'
    seq_lens: tuple[int, ...]
    tokens: int  # tokens per call of the length sweep, unless batch is set
    batch: int | None
    d_model: int
    heads: int
    shapes: tuple[tuple[int, int, int, int], ...] = ()  # extra (B, T, H, D)
    modes: tuple[str, ...] = ("fwd", "fwdbwd")  # 'fwdbwd-graph' too by default on CUDA
    train_step: bool = False
    train_shape: TrainStepShape = field(default_factory=TrainStepShape)
    warmup: int = 3
    repeats: int | None = None  # None: as many as fit in ~0.3 s (10 to 100)

    def __post_init__(self) -> None:
        from slabench.models.arms import parse_arm

        for name in self.mixers:
            parse_arm(name)  # an unknown name, tag or value lists the allowed ones
        require(self.dtype in ("bf16", "fp32"), "--dtype", f"{self.dtype!r} is not allowed; choose one of bf16, fp32")
        for m in self.modes:
            require(m in MODES, "--mode", f"{m!r} is not allowed; choose one of fwd, fwdbwd, both")
        require(
            "fwdbwd-graph" not in self.modes or torch.device(self.device).type == "cuda",
            "--cuda-graph",
            "CUDA-graph timing needs a CUDA device",
        )
        require(all(t >= 2 for t in self.seq_lens), "--seq-lens", "every length must be >= 2")
        require(self.tokens >= 1, "--tokens", f"{self.tokens} must be >= 1")
        require(self.batch is None or self.batch >= 1, "--batch", f"{self.batch} must be >= 1")
        require(
            self.heads >= 1 and self.d_model >= 1 and self.d_model % self.heads == 0,  # 0 % heads is 0
            "--heads",
            f"d_model={self.d_model} must be a positive multiple of heads={self.heads}",
        )
        for s in self.shapes:
            require(len(s) == 4 and min(s) >= 1, "--shape", f"{s} must be four positive ints B,T,H,D")
        require(self.repeats is None or self.repeats >= 1, "--repeats", f"{self.repeats} must be >= 1")

    def shape_list(self) -> list[Shape]:
        head_dim = self.d_model // self.heads
        out = [Shape(self.batch or max(1, self.tokens // t), t, self.heads, head_dim) for t in sorted(self.seq_lens)]
        return [Shape(*s, sweep="shape") for s in self.shapes] + out


def default_config(device: str, quick: bool = False, **overrides: Any) -> SweepConfig:
    """Defaults per device: GPU lengths 256..65536 at 65536 tokens per call; CPU 64..256 at 2048."""
    from slabench.models import MIXERS

    gpu = torch.device(device).type == "cuda"
    if gpu:
        seq_lens, tokens = ((256, 1024, 4096) if quick else (256, 1024, 4096, 16384, 65536)), 65536
    else:
        seq_lens, tokens = ((64, 128) if quick else (64, 128, 256)), 2048
    base: dict[str, Any] = {
        "mixers": tuple(MIXERS.names()),
        "device": device,
        "dtype": "bf16" if gpu else "fp32",
        "seq_lens": seq_lens,
        "tokens": tokens,
        "batch": None,
        "d_model": 128,
        "heads": 8,
        "train_shape": TrainStepShape() if gpu else TrainStepShape(batch=16, seq_len=64, vocab_size=64, num_kv_pairs=4),
        "modes": MODES if gpu else MODES[:2],
    }
    if quick:
        base.update(warmup=2, repeats=5)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return SweepConfig(**base)

"""Speed measurement: one mixer layer, fwd+bwd in CUDA-graph replay (as `slabench sweep` times it),
with the kernels around its recurrence (the short conv, the norms) on another path or launch
setting. Prints one JSON line per (mixer, shape, variant); these rows set the launch defaults of
the short conv (slabench/kernels/conv/fused.py) and the norms (slabench/kernels/norm/fused.py).

A variant puts its function first among the op's candidates (dispatch still probes it against
the reference before using it), so the mixer runs as it would if that were the default.

    python scripts/glue-bench.py [MIXER,... [B,T,H,D ...]]     (default: MIXERS at SHAPES)
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from functools import partial

import torch

from slabench.kernels import dispatch
from slabench.kernels.conv.fused import ShortConvConfig, short_conv_triton
from slabench.kernels.norm.fla_adapters import fla_l2norm, fla_rms_norm_gated
from slabench.kernels.norm.fused import NormConfig, l2norm_triton, rms_norm_gated_triton
from slabench.runners import timing
from slabench.runners.sweep.cases import mixer_fns
from slabench.runners.sweep.config import Shape

MIXERS = ["gla", "gdn", "sla-gdn"]
SHAPES = [(64, 256, 8, 16), (16, 4096, 8, 16)]  # the sweep's small shape and a long one


def _conv(block_t, block_c, num_warps=4, split_backward=True):
    config = ShortConvConfig(block_t, block_c, num_warps, split_backward)
    return ("triton_short_conv", partial(short_conv_triton, config=config))


def _norm(block_elements, num_warps=4, programs=1024):
    config = NormConfig(block_elements, num_warps, programs)
    return ("triton_rms_norm_gated", partial(rms_norm_gated_triton, config=config))


# name -> {op: (path name, function)}; "default" is what dispatch picks today
VARIANTS = {
    "default": {},
    "conv 32x64": {"short_conv": _conv(32, 64)},
    "conv 16x32": {"short_conv": _conv(16, 32)},
    "conv one kernel 64x32": {"short_conv": _conv(64, 32, 4, False)},  # the backward in one kernel
    "conv one kernel 16x32": {"short_conv": _conv(16, 32, 4, False)},
    "norm fla": {"rms_norm_gated": ("fla_fused_norm_gate", fla_rms_norm_gated)},
    "norm 4096": {"rms_norm_gated": _norm(4096, 8)},
    "norm 256": {"rms_norm_gated": _norm(256)},
    "norm 264 programs": {"rms_norm_gated": _norm(1024, 4, 264)},  # two an SM: a shorter sum of dw's shares
    "l2norm fla": {"l2norm": ("fla_l2norm", fla_l2norm)},
    "l2norm 4096": {"l2norm": ("triton_l2norm", partial(l2norm_triton, config=NormConfig(4096, 8)))},
}


@contextmanager
def _using(paths: dict):
    """Each op's given path first, the reference after it, inside the block; dispatch forgets its
    choices on the way in and out, so the next variant probes afresh."""
    saved = {op_name: dispatch.OPS[op_name].candidates for op_name in paths}
    for op_name, path in paths.items():
        dispatch.OPS[op_name].candidates = [path, saved[op_name][-1]]
        dispatch.OPS[op_name].choice.clear()
    try:
        yield
    finally:
        for op_name, candidates in saved.items():
            dispatch.OPS[op_name].candidates = candidates
            dispatch.OPS[op_name].choice.clear()


def main(mixers, shapes):
    for B, T, H, D in shapes:
        shape = Shape(B, T, H, D)
        for mixer in mixers:
            for variant, paths in VARIANTS.items():
                row = {"mixer": mixer, "shape": shape.label, "variant": variant}
                try:
                    with _using(paths):
                        dispatch.reset_paths_used()
                        step = mixer_fns(mixer, shape, torch.device("cuda"), "bf16")["fwdbwd"]
                        graph = timing.cuda_graph(step, "cuda")
                        row["graph_ms"] = timing.measure(graph, "cuda", memory=False).median_ms
                        row["paths"] = dispatch.paths_used()
                except Exception as e:
                    row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    mixers = args[0].split(",") if args else MIXERS
    main(mixers, [tuple(int(x) for x in a.split(",")) for a in args[1:]] or SHAPES)

"""Triton tile loads shared by the project's kernels (`gla/short.py`, `delta_rule/fused.py`)."""

from __future__ import annotations

try:
    import triton
    import triton.language as tl
except ImportError:  # triton is optional on non-Linux platforms; the references still work
    triton = None

if triton is not None:

    @triton.jit
    def load_tile(ptr, stride_t, t, T, d, D):
        """A [len(t), BD] block of a [T, D] slice (rows t, columns d; zero outside) in float32."""
        return tl.load(
            ptr + t[:, None] * stride_t + d[None, :], mask=(t[:, None] < T) & (d[None, :] < D), other=0.0
        ).to(tl.float32)

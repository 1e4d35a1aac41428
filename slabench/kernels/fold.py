"""Kernel ops inside `torch.func.vmap`: the member dimension of a batched run (runners/batched.py).

A batched run trains N models as one: their parameters stacked on a leading member dimension
and the model's forward vmapped over it. vmap refuses the custom autograd Functions behind the
Triton and fla kernels, and one kernel call for all members is faster than N anyway. So an op
whose arguments are all per sequence leaves the transform: its batched arguments are unwrapped to plain
[N, ...] tensors and the op runs outside it, with autograd recording as usual, then its
outputs are wrapped back as batched.

- per-sequence ops (every tensor argument has a leading batch dimension: gla, delta_rule, l2norm,
  and attention's SDPA through `per_sequence`): the members fold into the batch, [N, B, ...] ->
  [N * B, ...], one call for all. Each sequence is computed on its own, so a member's output is
  the one its single run computes.
- ops with per-member weights whose members fold without changing the kernel: `short_conv` is
  depthwise, so the members fold into the channels, x [N, B, T, C] -> [B, T, N * C] with the
  weights [N, C, W] -> [N * C, W]; `rms_norm_gated` is linear in its weight, so the kernel
  runs with a weight of ones on all members' rows and each member's weight multiplies its
  output after (`norm(x) w silu(g) = (norm(x) silu(g)) w`; under autocast one more bf16
  rounding than the single run's). One call for all members, on the path the single runs take.
- the other ops with weights (sla_gate and sla_gate_l2: a low-rank projection per member;
  gdn_gates: A_log and dt_bias; embedding: the token table) stay
  inside vmap and run their plain torch reference (`dispatch.call`), which vmap batches: a member's weights meet
  only its own rows, and the step launches the same kernels whatever N is. Running the fast path
  once per member instead costs a slice, a stacked copy and, in the backward, a zero-filled
  gradient of all N members' rows per member: launches that grow with N and traffic that grows
  with N^2. Folded records name `reference` for it.

This uses functorch's internal unwrap/wrap calls (torch 2.13): the public alternative (an
autograd.Function with a `vmap` staticmethod around each op) would have to recompute the
kernel's forward in its backward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch._C._functorch import _add_batch_dim, _unwrap_batched, is_batchedtensor, maybe_get_level
from torch._functorch.pyfunctorch import temporarily_pop_interpreter_stack
from torch.utils._pytree import tree_map

PER_SEQUENCE_OPS = frozenset({"gla", "simple_gla", "delta_rule", "l2norm"})


def vmap_level(args: tuple) -> int | None:
    """The vmap level of the batched tensors among `args`, or None outside vmap."""
    levels = [maybe_get_level(a) for a in args if isinstance(a, torch.Tensor) and is_batchedtensor(a)]
    return max(levels) if levels else None


def _members(arg: Any, level: int) -> torch.Tensor | None:
    """A batched tensor at `level` as a plain [N, ...] tensor; None for anything else."""
    if isinstance(arg, torch.Tensor) and is_batchedtensor(arg) and maybe_get_level(arg) == level:
        value, dim = _unwrap_batched(arg, level)
        return value.movedim(dim, 0)
    return None


def call_folded(op_name: str, call: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """`call(op_name, *args, **kwargs)` for a per-sequence op on vmapped args, run outside vmap on
    the members folded into the batch (see the module doc)."""
    members = [_members(a, level) for a in args]
    n = next(m.shape[0] for m in members if m is not None)
    with temporarily_pop_interpreter_stack():
        flat = [a if m is None else m.flatten(0, 1) for a, m in zip(args, members)]  # [N * B, ...]
        # A tensor shared by all members (a buffer) still needs a row per member's sequence.
        flat = [
            a.repeat(n, *[1] * (a.dim() - 1)) if m is None and isinstance(a, torch.Tensor) else a
            for a, m in zip(flat, members)
        ]
        out = call(op_name, *flat, **kwargs)
        out = tree_map(lambda t: t.unflatten(0, (n, -1)) if isinstance(t, torch.Tensor) else t, out)  # [N, B, ...]
    return tree_map(lambda t: _add_batch_dim(t, 0, level) if isinstance(t, torch.Tensor) else t, out)


def per_sequence(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` for a function whose tensor arguments all lead with the batch (each
    sequence computed on its own), called by a mixer directly rather than through `dispatch`:
    inside a fold's vmap the members fold into the batch and `fn` runs once outside vmap, as a
    per-sequence op does; elsewhere it is just `fn`. Attention's SDPA goes through here: under
    vmap its batching rule handed the CUDA memory-efficient backward a log-sum-exp tensor it
    rejects ("LSE is not correctly aligned"), and on CPU it runs the fused kernel once per member."""
    if (level := vmap_level(args)) is None:
        return fn(*args, **kwargs)
    return call_folded(fn.__name__, lambda _name, *a, **k: fn(*a, **k), level, args, kwargs)


def _short_conv_members(call: Callable, x: torch.Tensor, weight: torch.Tensor, **kwargs) -> torch.Tensor:
    """Depthwise: the members fold into the channels. x [N, B, T, C], weight [N, C, W] -> [N, B, T, C]."""
    N, B, T, C = x.shape
    xc = x.permute(1, 2, 0, 3).reshape(B, T, N * C)  # [B, T, N * C]: member n's channels at n * C
    y = call("short_conv", xc, weight.reshape(N * C, -1), **kwargs)  # [B, T, N * C]
    return y.view(B, T, N, C).permute(2, 0, 1, 3)  # [N, B, T, C]


def _rms_norm_gated_members(
    call: Callable, x: torch.Tensor, g: torch.Tensor | None, weight: torch.Tensor, **kwargs
) -> torch.Tensor:
    """Linear in its weight: all members' rows with a weight of ones, then each member's weight.
    x, g [N, ..., D], weight [N, D] -> [N, ..., D]."""
    ones = torch.ones(weight.shape[-1], device=weight.device, dtype=weight.dtype)  # [D]
    y = call("rms_norm_gated", x, g, ones, **kwargs)  # [N, ..., D]
    return y * weight.view(weight.shape[0], *[1] * (x.dim() - 2), -1).to(y.dtype)  # each member's weight


MEMBER_WEIGHT_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "short_conv": _short_conv_members,
    "rms_norm_gated": _rms_norm_gated_members,
}


def call_member_weights(op_name: str, call: Callable, level: int, args: tuple, kwargs: dict) -> Any:
    """`call(op_name, *args, **kwargs)` for an op of MEMBER_WEIGHT_OPS on vmapped args, as one call
    for all members outside vmap (see the module doc); None for any other op, or when a tensor
    argument is shared by all members (then vmap batches the reference)."""
    fold_members = MEMBER_WEIGHT_OPS.get(op_name)
    if fold_members is None:
        return None
    members = [_members(a, level) for a in args]
    if any(isinstance(a, torch.Tensor) and m is None for a, m in zip(args, members)):
        return None
    with temporarily_pop_interpreter_stack():
        y = fold_members(call, *members, **kwargs)  # [N, ...]
    return _add_batch_dim(y, 0, level)

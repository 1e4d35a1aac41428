"""Pick, per op, device type, dtype and dims, the fastest path that runs and agrees with the
reference: the selection engine. The ops themselves are declared in their folders (`gla/`,
`delta_rule/`, `gdn_gates/`, `sla_gate/`, `conv/`, `norm/`, `embedding/`) and registered in
`slabench/kernels/__init__.py`.

An `Op` lists its candidates in order of preference, the pure-torch reference last. A candidate
may apply to some shapes only (`Op.only`). On first use in a process each candidate is PROBED:
forward and backward on a small random input with the call's dims, outside any autocast,
compared against the reference run in float32 on the same inputs (relative RMS error). The dims
(head dims, and whatever else an op's kernels specialise on) are part of the key because Triton
specialises kernels on them: a path that compiles at one width can fail at another. A candidate
that raises or disagrees is skipped and the reason kept; `doctor()` reports them, and
`paths_used()` names what actually ran, for run records. On CPU only the reference is tried:
fla's Triton kernels need a GPU driver. `SLABENCH_KERNEL_PATH=reference` forces the reference
everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from slabench.errors import SlabenchError
from slabench.kernels import fold


@dataclass
class Op:
    name: str
    candidates: list[tuple[str, Callable]]  # in order of preference; the last is the reference
    probe_inputs: Callable  # (device, dtype, dims) -> (tensor args, keyword args)
    dims_of: Callable[[tuple], tuple]  # a call's args -> the dims its kernels specialise on (part of the key)
    default_dims: tuple  # the dims `doctor` probes
    returns_state: bool = True  # (out, state) pairs: only `out` is compared
    compared: int = 1  # how many leading outputs of a tuple the probe compares (sla_gate's gates are not)
    # candidate name -> (dims -> why it does not apply to them, or None): shape-bound paths
    only: dict[str, Callable[[tuple], str | None]] = field(default_factory=dict)
    choice: dict = field(default_factory=dict)  # (device type, dtype, forced, dims) -> (name, fn, reasons)

    @property
    def reference(self) -> Callable:
        return self.candidates[-1][1]


OPS: dict[str, Op] = {}  # name -> op, in the order `doctor` lists them


def register(*ops: Op) -> None:
    """Make `ops` known to `select`, `call` and `doctor`."""
    OPS.update((op.name, op) for op in ops)


# The probe's sequence length (rows, for row-wise ops). Triton specialises a kernel's integer
# arguments (lengths, strides) on divisibility by 16, so a probe at T = 100 compiled a variant of
# each kernel that training at T = 64, 128 or 256 could not use, and a first run compiled every
# kernel twice. Probing at a multiple of 16 lets training reuse the probe's compiled variant;
# lengths that are not a multiple of the chunk are the tests' job, not the probe's.
PROBE_T = 128

# Relative RMS error a candidate may show against the float32 reference in the probe: loose
# enough for bf16 rounding, tight enough that any real bug (errors of order one) fails.
PROBE_TOL = {torch.float32: 5e-3, torch.float16: 2e-2, torch.bfloat16: 3e-2}

_used: dict[str, set[str]] = {}


def rel_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| over all elements, in float64."""
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def compare(
    op: Op, fn: Callable, args: list[torch.Tensor], kwargs: dict, ref_dtype: torch.dtype = torch.float32
) -> tuple[float, float]:
    """(relative RMS error of the output, worst over the gradients) of `fn` vs the reference.

    The reference runs in `ref_dtype` (float64 if the inputs are) on the same rounded inputs.
    """
    wide = torch.float64 if args[0].dtype == torch.float64 else ref_dtype
    extra = {"output_final_state": False} if op.returns_state else {}
    results = []
    for f, cast in ((fn, lambda x: x), (op.reference, lambda x: x.to(wide) if x.is_floating_point() else x)):
        xs = [None if a is None else cast(a).detach().requires_grad_(a.is_floating_point()) for a in args]
        out = f(*xs, **kwargs, **extra)
        outs = out[: op.compared] if isinstance(out, tuple) else (out,)  # (out, state) or (out, gates) pairs
        gen = torch.Generator(device="cpu").manual_seed(1)
        douts = [torch.randn(o.shape, generator=gen).to(o.device, o.dtype) for o in outs]
        grads = torch.autograd.grad(outs, [x for x in xs if x is not None and x.requires_grad], douts)
        results.append((outs, grads))
    (outs, grads), (refs, ref_grads) = results
    err_out = max(rel_rms(a, b) for a, b in zip(outs, refs))
    err_grad = max(rel_rms(a, b) for a, b in zip(grads, ref_grads))
    return err_out, err_grad


def _forced() -> str | None:
    forced = os.environ.get("SLABENCH_KERNEL_PATH", "auto")
    if forced not in ("auto", "reference"):
        raise SlabenchError(f"SLABENCH_KERNEL_PATH={forced!r} is not allowed; choose one of 'auto', 'reference'")
    return None if forced == "auto" else forced


def select(
    op_name: str, device: torch.device | str, dtype: torch.dtype, dims: tuple[int, int] | None = None
) -> tuple[str, Callable, list[str]]:
    """(path name, function, reasons earlier candidates were skipped), probing on first use of
    these head dims (default: the op's `default_dims`)."""
    op = OPS[op_name]
    device = torch.device(device)
    dims = tuple(dims or op.default_dims)
    key = (device.type, dtype, _forced(), dims)
    if key in op.choice:
        return op.choice[key]
    reasons = []
    for name, fn in op.candidates[:-1]:
        if key[2] == "reference":
            reasons.append(f"{name}: SLABENCH_KERNEL_PATH=reference")
            continue
        if device.type != "cuda":
            reasons.append(f"{name}: needs CUDA")
            continue
        if name in op.only and (why := op.only[name](dims)):
            reasons.append(f"{name}: {why}")
            continue
        try:
            args, kwargs = op.probe_inputs(device, dtype, dims)
            # A first call may come under the caller's autocast, which would lower the
            # reference's backward to bf16 (6e-3 off in float32) and reject an exact kernel.
            with torch.autocast(device.type, enabled=False):
                err_out, err_grad = compare(op, fn, args, kwargs)
        except Exception as e:
            reasons.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}")
            continue
        tol = PROBE_TOL.get(dtype, 5e-3)
        if not (err_out <= tol and err_grad <= tol):
            reasons.append(f"{name}: disagrees with reference (out {err_out:.1e}, grad {err_grad:.1e} > {tol:.0e})")
            continue
        op.choice[key] = (name, fn, reasons)
        return op.choice[key]
    op.choice[key] = ("reference", op.reference, reasons)
    return op.choice[key]


def call(op_name: str, *args, **kwargs):
    """Run `op_name` through the selected path for the device, dtype and head dims of its args."""
    if (level := fold.vmap_level(args)) is not None:  # a batched run's members (kernels/fold.py)
        if op_name in fold.PER_SEQUENCE_OPS:
            return fold.call_folded(op_name, call, level, args, kwargs)
        if (out := fold.call_member_weights(op_name, call, level, args, kwargs)) is not None:
            return out
        _used.setdefault(op_name, set()).add("reference")  # per-member weights: vmap batches the reference
        return OPS[op_name].reference(*args, **kwargs)
    op = OPS[op_name]
    x = args[0]  # its device and dtype pick the path
    name, fn, _ = select(op_name, x.device, x.dtype, op.dims_of(args))
    _used.setdefault(op_name, set()).add(name)
    return fn(*args, **kwargs)


def reset_paths_used() -> None:
    """Forget which paths ran, so the next `paths_used()` covers one run (called per run)."""
    _used.clear()


def paths_used() -> dict[str, str]:
    """op -> path(s) that ran in this process (comma-separated if several dtypes/devices)."""
    return {op: ",".join(sorted(names)) for op, names in sorted(_used.items())}


def doctor(devices: list[str], dtypes: list[torch.dtype]) -> list[dict]:
    """One row per (op, device, dtype): the path chosen and why each faster candidate was skipped."""
    rows = []
    for device in devices:
        available = device != "cuda" or torch.cuda.is_available()
        for dtype in dtypes:
            for op in OPS:
                if available:
                    path, _, reasons = select(op, device, dtype)
                else:
                    path, reasons = "-", ["cuda not available"]
                rows.append(
                    {
                        "op": op,
                        "device": device,
                        "dtype": str(dtype).removeprefix("torch."),
                        "path": path,
                        "fallbacks": reasons,
                    }
                )
    return rows

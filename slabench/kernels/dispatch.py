"""Pick, per op, device type, dtype and head dims, the fastest path that runs and agrees with
the reference.

Candidates are tried in order (a project Triton kernel where one suits the shape, fla's chunk
kernel native to the op, fla's fused recurrent kernel, then the pure-torch reference). A
candidate may apply to some shapes only (`Op.only`): the project's one-program-per-head gla
kernel takes short sequences, where fla's chunk kernels are bound by their launches. The
project's delta-rule kernel comes before fla's chunk_gated_delta_rule, whose backward fla-core
0.6.0 refuses on Hopper under Triton < 3.7.1. On first use in a process each candidate is
PROBED: forward and backward on a small random input with the call's head dims, outside any
autocast, compared against the reference run in float32 on the same inputs (relative RMS error). The head dims are part of the key because Triton specialises kernels on
them: fla 0.6.0's chunk_gla backward fails to compile for keys 4 wide (d_model 64, 8 heads)
while 8 and up work. A candidate that raises or disagrees is skipped and the reason kept;
`doctor()` reports them, and `paths_used()` names what actually ran, for run records. On CPU
only the reference is tried: fla's Triton kernels need a GPU driver.
`SLABENCH_KERNEL_PATH=reference` forces the reference everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from slabench.errors import SlabenchError
from slabench.kernels import delta_fused, fold, gla_fused
from slabench.kernels.delta_rule import delta_rule_chunk
from slabench.kernels.gla import gla_chunk
from slabench.kernels.layers import rms_norm_gated_reference, short_conv_reference
from slabench.kernels.sla_gate import sla_gate_reference, sla_gate_triton

# --- fla adapters: every candidate takes the op's own arguments -----------------------------


def _fla_chunk_gla(q, k, v, g, scale, output_final_state):
    from fla.ops.gla import chunk_gla

    return chunk_gla(q, k, v, g, scale=scale, output_final_state=output_final_state)


def _fla_fused_recurrent_gla(q, k, v, g, scale, output_final_state):
    from fla.ops.gla import fused_recurrent_gla

    return fused_recurrent_gla(q, k, v, gk=g, scale=scale, output_final_state=output_final_state)


def _fla_chunk_simple_gla(q, k, v, g, scale, output_final_state):
    from fla.ops.simple_gla import chunk_simple_gla

    return chunk_simple_gla(q, k, v, g=g, scale=scale, output_final_state=output_final_state)


def _fla_chunk_gla_expanded(q, k, v, g, scale, output_final_state):
    # A per-head (or absent) decay is a per-channel decay that repeats over Dk.
    g = q.new_zeros(q.shape, dtype=torch.float32) if g is None else g[..., None].float().expand(q.shape)
    return _fla_chunk_gla(q, k, v, g.contiguous(), scale, output_final_state)


def _fla_fused_recurrent_simple_gla(q, k, v, g, scale, output_final_state):
    from fla.ops.simple_gla import fused_recurrent_simple_gla

    return fused_recurrent_simple_gla(q, k, v, g=g, scale=scale, output_final_state=output_final_state)


def _fla_chunk_gated_delta_rule(q, k, v, g, beta, scale, output_final_state):
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule

    return chunk_gated_delta_rule(q, k, v, g, beta, scale=scale, output_final_state=output_final_state,
                                  use_qk_l2norm_in_kernel=False)


def _fla_fused_recurrent_gated_delta_rule(q, k, v, g, beta, scale, output_final_state):
    from fla.ops.gated_delta_rule import fused_recurrent_gated_delta_rule

    return fused_recurrent_gated_delta_rule(q, k, v, g=g, beta=beta, scale=scale,
                                            output_final_state=output_final_state, use_qk_l2norm_in_kernel=False)


def _fla_short_conv(x, weight):
    from fla.modules.causal_conv1d import causal_conv1d

    return causal_conv1d(x, weight=weight, activation="silu", backend="triton")[0]


def _fla_rms_norm_gated(x, g, weight, eps):
    from fla.modules.norm.fused_norm_gate import rms_norm_gated
    from fla.modules.norm.layernorm import rms_norm

    if g is None:
        return rms_norm(x, weight, None, eps=eps)
    return rms_norm_gated(x, g, weight, None, activation="swish", eps=eps)


# The references compute in float32 on purpose: keep autocast from lowering their matmuls.


def _ref_gla(q, k, v, g, scale, output_final_state):
    with torch.autocast(q.device.type, enabled=False):
        return gla_chunk(q, k, v, g, scale, output_final_state)


def _ref_delta_rule(q, k, v, g, beta, scale, output_final_state):
    with torch.autocast(q.device.type, enabled=False):
        return delta_rule_chunk(q, k, v, g, beta, scale, output_final_state)


# --- probe inputs: small, odd-sized, with real decays -------------------------------------


def _probe_gla(device, dtype, dims, per_channel: bool):
    gen = torch.Generator(device="cpu").manual_seed(0)
    (B, T, H), (Dk, Dv) = (2, 100, 2), dims[:2]
    q, k, v = (torch.randn(B, T, H, d, generator=gen) for d in (Dk, Dk, Dv))
    shape = (B, T, H, Dk) if per_channel else (B, T, H)
    g = F.logsigmoid(torch.randn(*shape, generator=gen) + 3) / 4
    return [x.to(device, dtype) for x in (q, k, v)] + [g.to(device, torch.float32)], {"scale": Dk**-0.5}


def _probe_delta_rule(device, dtype, dims):
    gen = torch.Generator(device="cpu").manual_seed(0)
    (B, T, H), (Dk, Dv) = (2, 100, 2), dims
    q, k = (F.normalize(torch.randn(B, T, H, Dk, generator=gen), dim=-1) for _ in range(2))
    v = torch.randn(B, T, H, Dv, generator=gen)
    g = F.logsigmoid(torch.randn(B, T, H, generator=gen) + 3) / 4
    beta = torch.rand(B, T, H, generator=gen)
    return [x.to(device, dtype) for x in (q, k, v)] + [g.to(device, torch.float32), beta.to(device, dtype)], {
        "scale": Dk**-0.5
    }


def _probe_sla_gate(device, dtype, dims):
    gen = torch.Generator(device="cpu").manual_seed(0)
    C, H, D, R, same = dims
    src, x = torch.randn(3, 50, C, generator=gen), torch.randn(3, 50, H, D, generator=gen)
    w_down, w_up = torch.randn(R, C, generator=gen) / C**0.5, torch.randn(H, R, generator=gen) / R**0.5
    b_up = torch.randn(H, generator=gen)
    return [src.to(device, dtype), None if same else x.to(device, dtype)] + [
        w.to(device, torch.float32) for w in (w_down, w_up, b_up)], {"tau": 0.7}  # float32 weights, as under autocast


def _sla_gate_dims(args) -> tuple[int, int, int, int, bool]:
    """(C, H, D, R, x is src) of src [B, T, C], x [B, T, H, D] or None, W_up [H, R]."""
    src, x, _, w_up = args[:4]
    H, R = w_up.shape
    return src.shape[-1], H, src.shape[-1] // H if x is None else x.shape[-1], R, x is None


def _probe_short_conv(device, dtype, dims):
    gen = torch.Generator(device="cpu").manual_seed(0)
    C, W = dims
    x, weight = torch.randn(2, 100, C, generator=gen), torch.randn(C, W, generator=gen) / W**0.5
    return [x.to(device, dtype), weight.to(device, torch.float32)], {}  # float32 weight, as under autocast


def _probe_rms_norm_gated(device, dtype, dims):
    gen = torch.Generator(device="cpu").manual_seed(0)
    D, gated = dims
    x, g, weight = torch.randn(3, 50, D, generator=gen), torch.randn(3, 50, D, generator=gen), 1 + torch.rand(D, generator=gen)
    return [x.to(device, dtype), g.to(device, dtype) if gated else None, weight.to(device, torch.float32)], {"eps": 1e-6}


@dataclass
class Op:
    name: str
    candidates: list[tuple[str, Callable]]  # in order of preference; the last is the reference
    probe_inputs: Callable  # (device, dtype, dims) -> (tensor args, keyword args)
    returns_state: bool = True  # (out, state) pairs: only `out` is compared
    # The dims a call specialises kernels on, from its args: (Dk, Dv) of q [B, T, H, Dk] and
    # v [B, T, H, Dv]; the SLA gate's `_sla_gate_dims`. `doctor` probes default_dims.
    dims_of: Callable = lambda args: (args[0].shape[-1], args[2].shape[-1])
    default_dims: tuple[int, int] = (32, 32)
    # candidate name -> (dims -> why it does not apply to them, or None): shape-bound paths
    only: dict[str, Callable[[tuple], str | None]] = field(default_factory=dict)
    choice: dict = field(default_factory=dict)  # (device type, dtype, forced, dims) -> (name, fn, reasons)

    @property
    def reference(self) -> Callable:
        return self.candidates[-1][1]


def _gla_dims(args) -> tuple[int, int, bool]:
    """(Dk, Dv, short): head dims of q [B, T, H, Dk], v [B, T, H, Dv], and T <= gla_fused.SHORT_T."""
    return args[0].shape[-1], args[2].shape[-1], args[0].shape[1] <= gla_fused.SHORT_T


OPS: dict[str, Op] = {
    "gla": Op(
        "gla",
        [("triton_gla_short", gla_fused.gla_short), ("fla_chunk_gla", _fla_chunk_gla),
         ("fla_fused_recurrent_gla", _fla_fused_recurrent_gla), ("reference", _ref_gla)],
        lambda device, dtype, dims: _probe_gla(device, dtype, dims, per_channel=True),
        dims_of=_gla_dims,
        default_dims=(32, 32, True),
        only={"triton_gla_short": gla_fused.unsuited},
    ),
    "simple_gla": Op(
        "simple_gla",
        [("triton_gla_short", gla_fused.gla_short), ("fla_chunk_simple_gla", _fla_chunk_simple_gla),
         ("fla_chunk_gla", _fla_chunk_gla_expanded), ("fla_fused_recurrent_simple_gla", _fla_fused_recurrent_simple_gla),
         ("reference", _ref_gla)],
        lambda device, dtype, dims: _probe_gla(device, dtype, dims, per_channel=False),
        dims_of=_gla_dims,
        default_dims=(32, 32, True),
        only={"triton_gla_short": gla_fused.unsuited},
    ),
    "delta_rule": Op(
        "delta_rule",
        [("triton_delta_rule", delta_fused.delta_rule_fused), ("fla_chunk_gated_delta_rule", _fla_chunk_gated_delta_rule),
         ("fla_fused_recurrent_gated_delta_rule", _fla_fused_recurrent_gated_delta_rule),
         ("reference", _ref_delta_rule)],
        _probe_delta_rule,
        only={"triton_delta_rule": delta_fused.unsuited},
    ),
    "sla_gate": Op(
        "sla_gate",
        [("triton_sla_gate", sla_gate_triton), ("reference", sla_gate_reference)],
        _probe_sla_gate,
        returns_state=False,
        dims_of=_sla_gate_dims,
        default_dims=(40, 5, 8, 8, True),
    ),
    "short_conv": Op(
        "short_conv",
        [("fla_causal_conv1d", _fla_short_conv), ("reference", short_conv_reference)],
        _probe_short_conv,
        returns_state=False,
        dims_of=lambda args: (args[0].shape[-1], args[1].shape[-1]),  # (channels, width)
        default_dims=(48, 4),
    ),
    "rms_norm_gated": Op(
        "rms_norm_gated",
        [("fla_fused_norm_gate", _fla_rms_norm_gated), ("reference", rms_norm_gated_reference)],
        _probe_rms_norm_gated,
        returns_state=False,
        dims_of=lambda args: (args[0].shape[-1], int(args[1] is not None)),  # (D, gated)
        default_dims=(32, 1),
    ),
}

# Relative RMS error a candidate may show against the float32 reference in the probe: loose
# enough for bf16 rounding, tight enough that any real bug (errors of order one) fails.
PROBE_TOL = {torch.float32: 5e-3, torch.float16: 2e-2, torch.bfloat16: 3e-2}

_used: dict[str, set[str]] = {}


def rel_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| over all elements, in float64."""
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def compare(op: Op, fn: Callable, args: list[torch.Tensor], kwargs: dict,
            ref_dtype: torch.dtype = torch.float32) -> tuple[float, float]:
    """(relative RMS error of the output, worst over the gradients) of `fn` vs the reference.

    The reference runs in `ref_dtype` (float64 if the inputs are) on the same rounded inputs.
    """
    wide = torch.float64 if args[0].dtype == torch.float64 else ref_dtype
    extra = {"output_final_state": False} if op.returns_state else {}
    results = []
    for f, cast in ((fn, lambda x: x), (op.reference, lambda x: x.to(wide))):
        xs = [None if a is None else cast(a).detach().requires_grad_(a.is_floating_point()) for a in args]
        out = f(*xs, **kwargs, **extra)
        out = out[0] if isinstance(out, tuple) else out  # (out, state) or (out, gates) pairs
        gen = torch.Generator(device="cpu").manual_seed(1)
        dout = torch.randn(out.shape, generator=gen).to(out.device, out.dtype)
        grads = torch.autograd.grad(out, [x for x in xs if x is not None], dout)
        results.append((out, grads))
    (out, grads), (ref, ref_grads) = results
    err_out = rel_rms(out, ref)
    err_grad = max(rel_rms(a, b) for a, b in zip(grads, ref_grads))
    return err_out, err_grad


def _forced() -> str | None:
    forced = os.environ.get("SLABENCH_KERNEL_PATH", "auto")
    if forced not in ("auto", "reference"):
        raise SlabenchError(f"SLABENCH_KERNEL_PATH={forced!r} is not allowed; choose one of 'auto', 'reference'")
    return None if forced == "auto" else forced


def select(op_name: str, device: torch.device | str, dtype: torch.dtype,
           dims: tuple[int, int] | None = None) -> tuple[str, Callable, list[str]]:
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
        except Exception as e:  # noqa: BLE001  (any failure: compile, launch, no backward) -> next path
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
        return fold.call_folded(op_name, call, level, args, kwargs)
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
                rows.append({"op": op, "device": device, "dtype": str(dtype).removeprefix("torch."), "path": path,
                             "fallbacks": reasons})
    return rows

"""The project's Triton kernels on CPU, through Triton's interpreter, against float64 references.

- The short-sequence gla kernel (`slabench.kernels.gla_fused`): outputs, final states and
  gradients of q, k, v and the decay, at odd shapes (T not a multiple of the chunk, head dims
  not powers of two), every decay form, strided inputs (the split of one projection, as the
  mixers pass them) and decays strong enough to overflow a factorised form.
- The SLA gate (`slabench.kernels.sla_gate`) on a strided x, output, gates and gradients.

The interpreter is switched on by TRITON_INTERPRET=1 when a kernel is defined, so the checks
run in a fresh process; test_gpu.py runs the compiled kernels. The interpreter forgives what the
compiler rejects (it ran a helper returning tensors of two shapes that Triton refuses to
compile), so the kernels are also compiled ahead of time for Hopper (sm_90) with Triton's
bundled ptxas, which needs no GPU.
"""

import json
import os
import subprocess
import sys

import pytest

# (B, T, H, Dk, Dv, decay, strided)
CASES = [
    (2, 37, 3, 8, 20, "channel", True),
    (1, 63, 2, 20, 16, "head", False),
    (2, 40, 2, 16, 32, "none", True),
    (1, 33, 1, 4, 4, "channel", False),
    (2, 50, 2, 8, 16, "channel-strong", True),  # log decays down to about -100 per step
]


def errors(B, T, H, Dk, Dv, decay, strided) -> dict[str, float]:
    """Relative RMS errors of `gla_short` (float32) against `gla_chunk` (float64)."""
    import torch
    import torch.nn.functional as F

    from slabench.kernels.gla import gla_chunk
    from slabench.kernels.gla_fused import gla_short

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(B, T, H * (2 * Dk + Dv), generator=gen, dtype=torch.float64)  # one projection
    g = {"none": None, "head": F.logsigmoid(torch.randn(B, T, H, generator=gen, dtype=torch.float64) + 2),
         "channel": F.logsigmoid(torch.randn(B, T, H, Dk, generator=gen, dtype=torch.float64) + 1),
         "channel-strong": 3 * F.logsigmoid(10 * torch.randn(B, T, H, Dk, generator=gen, dtype=torch.float64))}[decay]
    do = torch.randn(B, T, H, Dv, generator=gen, dtype=torch.float64)

    def run(fn, dtype):
        hh = h.to(dtype).requires_grad_()
        gg = None if g is None else g.to(dtype).requires_grad_()
        q, k, v = (x.reshape(B, T, H, -1) for x in hh.split([H * Dk, H * Dk, H * Dv], -1))  # strided views
        if not strided:
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        o, state = fn(q, k, v, gg, output_final_state=True)
        grads = torch.autograd.grad(o, [x for x in (hh, gg) if x is not None], do.to(dtype))
        return [o, state, *grads]

    names = ["o", "state", "dqkv"] + ([] if g is None else ["dg"])
    rel = lambda a, b: ((a.double() - b).norm() / b.norm()).item()
    return {n: rel(a, b) for n, a, b in zip(names, run(gla_short, torch.float32), run(gla_chunk, torch.float64))}


def sla_gate_errors() -> dict[str, float]:
    """Relative RMS errors of the Triton SLA gate (float32, x a strided view) against the reference (float64)."""
    import torch

    from slabench.kernels.sla_gate import sla_gate_reference, sla_gate_triton

    gen = torch.Generator().manual_seed(0)
    B, T, H, D = 2, 37, 3, 20
    logits = torch.randn(B, T, H, generator=gen, dtype=torch.float64)
    h = torch.randn(B, T, 2 * H * D, generator=gen, dtype=torch.float64)
    dy = torch.randn(B, T, H, D, generator=gen, dtype=torch.float64)

    def run(fn, dtype):
        a, hh = logits.to(dtype).requires_grad_(), h.to(dtype).requires_grad_()
        y, gates = fn(a, hh[..., H * D:].reshape(B, T, H, D), 0.7)  # the second half: a strided view
        return [y, gates, *torch.autograd.grad((y * dy.to(dtype)).sum() + gates[..., 0].sum(), [a, hh])]

    rel = lambda a, b: ((a.double() - b).norm() / b.norm()).item()
    names = ["y", "gates", "dlogits", "dx"]
    return {n: rel(a, b) for n, a, b in zip(names, run(sla_gate_triton, torch.float32), run(sla_gate_reference, torch.float64))}


def test_project_triton_kernels_match_float64_references_in_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    out = subprocess.run([sys.executable, __file__], check=False, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.splitlines()[-1])
    assert len(results["gla"]) == len(CASES)
    for case, errs in zip(CASES, results["gla"]):
        assert set(errs) >= {"o", "state", "dqkv"}, case
        assert max(errs.values()) < 2e-5, (case, errs)  # float32 arithmetic: ~1e-7 measured, ~2e-6 strong decays
    assert max(results["sla_gate"].values()) < 1e-5, results["sla_gate"]


def _compile_for_hopper(kernel, pointers: dict[str, str], floats: set[str], meta: dict, num_warps: int = 4):
    """triton.compile(kernel) for sm_90: every argument not in `pointers`, `floats` or `meta` is an int32."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig = {a: "constexpr" if a in meta else pointers.get(a, "fp32" if a in floats else "i32") for a in kernel.arg_names}
    return triton.compile(ASTSource(kernel, sig, meta), target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})


@pytest.mark.parametrize("Dk,Dv,g_mode", [(8, 16, 2), (16, 32, 1), (64, 64, 0)])
def test_project_triton_kernels_compile_for_hopper(Dk, Dv, g_mode):
    triton = pytest.importorskip("triton")
    pytest.importorskip("triton.backends.nvidia")
    from slabench.kernels import gla_fused
    from slabench.kernels.sla_gate import _blocks, _sla_gate_bwd, _sla_gate_fwd

    meta = {"Dk": Dk, "Dv": Dv, "BK": max(16, triton.next_power_of_2(Dk)), "BV": max(16, triton.next_power_of_2(Dv)),
            "CS": gla_fused.C, "G_MODE": g_mode}
    bf16 = {a: "*bf16" for a in ("q", "k", "v", "o", "do", "dq", "dk", "dv", "x", "y", "dy", "dx")}
    fp32 = {a: "*fp32" for a in ("g", "ht", "dq32", "dg", "logits", "gates", "dgates", "dlogits")}
    kernels = [(gla_fused._gla_fwd, {**meta, "STORE_STATE": True}), (gla_fused._gla_bwd_dq, meta),
               (gla_fused._gla_bwd_dkv, meta)]
    H, D = Dk // 4, Dv  # the SLA gate at some (H, D)
    gate_meta = {"H": H, "D": D, **dict(zip(("BN", "BH", "BD"), _blocks(H, D)))}
    kernels += [(_sla_gate_fwd, gate_meta), (_sla_gate_bwd, {**gate_meta, "HAS_DG": True})]
    for kernel, kmeta in kernels:
        compiled = _compile_for_hopper(kernel, {**bf16, **fp32}, {"scale", "inv_tau"}, kmeta)
        assert ".entry" in compiled.asm["ptx"] and compiled.asm["cubin"], kernel.__name__


if __name__ == "__main__":
    print(json.dumps({"gla": [errors(*case) for case in CASES], "sla_gate": sla_gate_errors()}))

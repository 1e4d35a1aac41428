"""The mixers without training: `doctor` (which kernel path runs), `sweep` (speed and memory over
lengths) and `profile` (where one layer's time goes)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from slabench.cli import render
from slabench.cli.options import (
    device_option,
    json_option,
    out_option,
    parse_ints,
    parse_names,
    positive_int_option,
)
from slabench.errors import SlabenchError, one_line


@click.command()
@click.option(
    "--device", "devices", multiple=True, help="cpu, cuda or cuda:N (repeatable; default: cpu, and cuda if present)"
)
@click.option(
    "--dtype",
    "dtypes",
    multiple=True,
    type=click.Choice(["float32", "bfloat16", "float16"]),
    help="repeatable; default: float32 and bfloat16",
)
@json_option()
def doctor(devices: tuple[str, ...], dtypes: tuple[str, ...], as_json: bool) -> None:
    """Which kernel path each op takes per device and dtype, and why faster ones were skipped."""
    import torch

    from slabench import kernels
    from slabench.runners.grid import resolve_device

    # As `run` checks it: a device this machine lacks is an error, not a table of its paths.
    devices = tuple(resolve_device(d) for d in devices) or (("cpu", "cuda") if torch.cuda.is_available() else ("cpu",))
    rows = kernels.doctor(list(devices), [getattr(torch, d) for d in (dtypes or ("float32", "bfloat16"))])
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    render.print_tables(
        render.rows_table(
            "kernel paths",
            ("op", "device", "dtype", "path", "fallbacks"),
            [(r["op"], r["device"], r["dtype"], r["path"], "\n".join(r["fallbacks"])) for r in rows],
            show_lines=True,
        )
    )


@click.command()
@click.option(
    "--mixers", help="comma list of mixers or arms, e.g. gla,sla-gla/head-norm (default: every registered mixer)"
)
@click.option("--seq-lens", help="comma list (default: 256,1024,4096,16384,65536 on GPU; 64,128,256 on CPU)")
# Sizes and counts are checked here, before the sweep writes (its --out may hold committed tables).
@positive_int_option(
    "--tokens", "tokens per call of the length sweep, B = max(1, tokens // T) (default 65536 on GPU, 2048 on CPU)"
)
@positive_int_option("--batch", "fixed batch for every length (overrides --tokens)")
@positive_int_option("--d-model", "model width of the length sweep (default 128)")
@positive_int_option("--heads", "heads of the length sweep (default 8)")
@click.option(
    "--shape", "shapes", multiple=True, metavar="B,T,H,D", help="extra exact shape, d_model = H*D (repeatable)"
)
@click.option("--dtype", type=click.Choice(["bf16", "fp32"]), help="default bf16 on GPU (autocast), fp32 on CPU")
@device_option()
@click.option("--mode", type=click.Choice(["fwd", "fwdbwd", "both"]), default="both", show_default=True)
@click.option(
    "--cuda-graph/--no-cuda-graph",
    default=True,
    show_default=True,
    help="on CUDA, also time fwd+bwd replayed from a CUDA graph (no launch overhead)",
)
@click.option(
    "--train-step", is_flag=True, help="also time training steps of the standard MQAR model, eager and CUDA graph"
)
@positive_int_option("--repeats", "timed calls per case (default: as many as fit in ~0.3 s, 10 to 100)")
@out_option("where to write (default: leaderboards/speed on a GPU; runs/speed on CPU, where the kernels differ)")
@click.option("--quick", is_flag=True, help="two lengths, 5 repeats: a smoke test of the sweep")
@click.option(
    "--targets",
    "targets_file",
    type=click.Path(dir_okay=False),
    help="TOML of [[target]] tables to check (default: slabench/runners/sweep/targets.toml)",
)
def sweep(
    mixers: str | None,
    seq_lens: str | None,
    tokens: int | None,
    batch: int | None,
    d_model: int | None,
    heads: int | None,
    shapes: tuple[str, ...],
    dtype: str | None,
    device: str,
    mode: str,
    cuda_graph: bool,
    train_step: bool,
    repeats: int | None,
    out: str | None,
    quick: bool,
    targets_file: str | None,
) -> None:
    """Time and measure the memory of every mixer alone over sequence lengths (and the training step);
    write <out>/<device>.md, .csv, .json and plots."""
    import torch

    from slabench.runners.grid import resolve_device
    from slabench.runners.sweep import default_config, load_targets, run_sweep, write_outputs

    targets = load_targets(targets_file) if targets_file else None
    device = resolve_device(device)
    out = out or ("leaderboards/speed" if device.startswith("cuda") else "runs/speed")
    modes = ("fwd", "fwdbwd") if mode == "both" else (mode,)
    cfg = default_config(
        device,
        quick,
        mixers=None if mixers is None else parse_names("--mixers", mixers, "mixer", "gla,sla-gla"),
        seq_lens=parse_ints("--seq-lens", seq_lens),
        tokens=tokens,
        batch=batch,
        d_model=d_model,
        heads=heads,
        shapes=tuple(parse_ints("--shape", s, 4, minimum=1) for s in shapes) or None,
        dtype=dtype,
        modes=modes
        + (("fwdbwd-graph",) if "fwdbwd" in modes and cuda_graph and torch.device(device).type == "cuda" else ()),
        train_step=train_step or None,
        repeats=repeats,
    )
    written: dict[str, Path] = {}

    def write(partial: dict) -> None:
        # Only once a case has measured something: a sweep whose every case failed (a size past
        # memory) would write its table of failures over the last sweep's.
        if any(r["status"] == "ok" for r in partial["rows"] + partial["train_steps"]):
            written.update(write_outputs(partial, Path(out)))

    with render.console.status("sweep") as status:
        # Files are rewritten after every shape: a sweep cut short keeps what it measured.
        result = run_sweep(cfg, on_case=lambda desc: status.update(f"sweep: {desc}"), on_partial=write, targets=targets)
    render.print_tables(
        render.rows_table(
            "targets",
            ("target", "measured", "pass"),
            [
                (
                    t["target"],
                    "-" if t["value"] is None else f"{t['value']:.3g}",
                    "-" if t["pass"] is None else ("yes" if t["pass"] else "[red]no[/]"),
                )
                for t in result["summary"]["targets"]
            ],
        )
    )
    for r in (r for r in result["rows"] + result["train_steps"] if r["status"] != "ok"):
        render.console.print(
            f"[yellow]{r['mixer']} {r['mode']} B{r['batch']} T{r['seq_len']}: {r['status']} {r['error'] or ''}[/]"
        )
    if not written:
        raise SlabenchError(f"every case of the sweep failed; nothing written to '{out}' (its files are kept)")
    click.echo("wrote " + ", ".join(str(p) for p in written.values()))


@click.command()
@click.argument("mixer")
@click.option("--shape", default="64,256,8,16", show_default=True, metavar="B,T,H,D", help="x is [B, T, H*D]")
@click.option("--dtype", type=click.Choice(["bf16", "fp32"]), help="default bf16 on GPU (autocast), fp32 on CPU")
@device_option()
@click.option("--mode", type=click.Choice(["fwd", "fwdbwd"]), default="fwdbwd", show_default=True)
@positive_int_option("--top", "kernels to list", default=25, show_default=True)
@click.option("--by-op", is_flag=True, help="on CUDA, group device time by the aten op (and shapes) that launched it")
@json_option()
def profile(
    mixer: str, shape: str, dtype: str | None, device: str, mode: str, top: int, by_op: bool, as_json: bool
) -> None:
    """Where one mixer layer's time goes: its kernels per call, by device time (torch.profiler).
    MIXER is a mixer or an arm (sla-gla/head-norm: the twin with gla's per-head norm)."""
    from slabench.models.arms import parse_arm
    from slabench.runners.grid import resolve_device
    from slabench.runners.profile import profile_mixer
    from slabench.runners.sweep import Shape
    from slabench.runners.sweep.cases import is_oom

    parse_arm(mixer, "MIXER")  # an unknown name, tag or value lists the allowed ones
    device = resolve_device(device)
    gpu = device.startswith("cuda")
    try:
        result = profile_mixer(
            mixer,
            Shape(*parse_ints("--shape", shape, 4, minimum=1)),  # as sweep --shape: every size >= 1
            device,
            dtype or ("bf16" if gpu else "fp32"),
            backward=mode == "fwdbwd",
            by_op=by_op,
        )
    except Exception as e:
        if not is_oom(e):
            raise
        raise SlabenchError(f"--shape={shape} does not fit in {device}'s memory: {one_line(e)}") from e
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    title = (
        f"{mixer} {result['mode']} {result['shape']} {result['dtype']} on {device}: "
        f"{result['kernels_per_call']:.0f} {'kernels' if gpu else 'ops'}, "
        f"{result['device_us_per_call']:.0f} us {'device' if gpu else 'CPU'} time per call"
    )
    render.print_tables(
        render.rows_table(
            title,
            ("kernel" if gpu else "op", "per call", "us per call", "share"),
            [
                (
                    k["name"][:140],
                    f"{k['per_call']:g}",
                    f"{k['us_per_call']:.1f}",
                    f"{k['us_per_call'] / max(result['device_us_per_call'], 1e-9):.0%}",
                )
                for k in result["kernels"][:top]
            ],
            right=("per call", "us per call", "share"),
        )
    )

"""Run examples/my_variant.py's mixer and its SLA twin on examples/tiny.toml from a Python script:

    python examples/run_variant.py

`register_mixer` names the class; worker processes start fresh and import this file again to find
it, so the part that runs the grid sits under the `__main__` guard (without it every worker would
start the grid again).
"""

from pathlib import Path

from my_variant import GatedLinear  # this script's folder is on sys.path

from slabench import register_mixer
from slabench.cli import main

register_mixer("gated-linear", GatedLinear)  # also registers sla-gated-linear (a LinearMixer)

if __name__ == "__main__":
    grid = Path(__file__).with_name("tiny.toml")
    # Its own --out: runs/tiny holds `slabench run examples/tiny.toml`'s runs, ranked on their own.
    main(["run", str(grid), "--mixer", "gated-linear", "--mixer", "sla-gated-linear", "--out", "runs/tiny-variant"])

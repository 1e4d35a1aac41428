#!/usr/bin/env bash
# GPU acceptance run for the kernel layer: install (offline, from a carried fla-core wheel when
# present), print the dispatch table, run the CUDA tests. Logs go to $OUT (default ./gpu-out).
# Keeps the Triton cache in .triton_cache so a later run skips fla's autotuning.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=$PWD/.triton_cache
# --no-build-isolation: the GPU machine has no package index to fetch setuptools from.
{ if ls .wheels/*.whl >/dev/null 2>&1; then python -m pip install --no-deps .wheels/*.whl; fi
  python -m pip install --no-deps --no-build-isolation -e .; } > "$OUT/install.log" 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
python -c "import torch, triton, fla; print('torch', torch.__version__, 'triton', triton.__version__, 'fla', fla.__version__)" >> "$OUT/gpu.txt" 2>&1
timeout 300 slabench doctor --device cuda --dtype float32 --dtype bfloat16 > "$OUT/doctor.txt" 2>&1
slabench doctor --device cuda --dtype float32 --dtype bfloat16 --json > "$OUT/doctor.json" 2>&1
timeout "${TEST_TIMEOUT:-400}" python -m pytest -m cuda tests/ -q -rs -p no:cacheprovider > "$OUT/gpu-tests.txt" 2>&1
echo "pytest exit: $?" >> "$OUT/gpu-tests.txt"
cat "$OUT/gpu.txt" "$OUT/doctor.txt"; tail -30 "$OUT/gpu-tests.txt"

#!/usr/bin/env bash
# GPU acceptance run for the kernel layer: install (offline, from a carried fla-core wheel when
# present), print the dispatch table and run the CUDA tests, side by side (the first Triton
# compile of fla's kernels is CPU-bound and takes minutes; two processes share the cache).
# Logs go to $OUT (default ./gpu-out).
#
# Triton cache: kept outside the working tree (the tree is replaced on every call) in
# $TRITON_CACHE_DIR. The whole cache is too large to bring back (~73 MB gzipped), but the
# autotune results are a few KB: they come back as $OUT/autotune.tgz and, carried into the
# next machine as .autotune.tgz, spare it the autotuning (only the chosen config compiles).
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
LIMIT=${LIMIT:-500}
export PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/slabench-triton}
mkdir -p "$TRITON_CACHE_DIR"
echo "triton cache before: $(du -sh "$TRITON_CACHE_DIR" | cut -f1)" > "$OUT/gpu.txt"
if [ -f .autotune.tgz ]; then tar xzf .autotune.tgz -C "$TRITON_CACHE_DIR"; fi
# --no-build-isolation: the GPU machine has no package index to fetch setuptools from.
{ if ls .wheels/*.whl >/dev/null 2>&1; then python -m pip install --no-deps .wheels/*.whl; fi
  python -m pip install --no-deps --no-build-isolation -e .; } > "$OUT/install.log" 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> "$OUT/gpu.txt" 2>&1
python -c "import torch, triton, fla; print('torch', torch.__version__, 'triton', triton.__version__, 'fla', fla.__version__)" >> "$OUT/gpu.txt" 2>&1
timeout "$LIMIT" slabench doctor --device cuda --dtype float32 --dtype bfloat16 --json > "$OUT/doctor.json" 2> "$OUT/doctor.err" &
timeout "$LIMIT" python -m pytest -m cuda ${TESTS:-tests/} -q -rs -s -p no:cacheprovider --durations=15 > "$OUT/gpu-tests.txt" 2>&1
echo "pytest exit: $?" >> "$OUT/gpu-tests.txt"
wait
(cd "$TRITON_CACHE_DIR" && find . -name '*.autotune.json' | tar czf - -T -) > "$OUT/autotune.tgz"
cat "$OUT/gpu.txt"; python -c "
import json, sys
for r in json.load(open('$OUT/doctor.json')):
    print(f\"{r['op']:11s} {r['device']:5s} {r['dtype']:9s} {r['path']:32s} {' | '.join(r['fallbacks'])[:300]}\")
" 2>&1 | tee "$OUT/doctor.txt"
tail -60 "$OUT/gpu-tests.txt"

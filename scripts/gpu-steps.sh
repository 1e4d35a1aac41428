#!/usr/bin/env bash
# Measurement steps on a GPU machine without network access, under one deadline: install from
# local wheels, restore caches and records brought back from an earlier machine, run the named
# steps, and leave the results in $OUT as two tarballs:
#
#   OUT=results bash scripts/gpu-steps.sh packing sweep
#
# .gpu/ (ignored) holds what the last machine returned: autotune.tgz (Triton's chosen configs, a
# few KB: the next machine compiles one config per kernel instead of autotuning them all) and
# state.tgz (run records and logs, so resumable grids go on where they stopped). The Triton cache
# itself (~73 MB gzipped) is too large to carry. Every step writes under $STATE; state.tgz is
# refreshed every minute, so a job cut off at its time limit (BUDGET seconds) still leaves what
# finished.
# `bash scripts/gpu-return.sh DIR` puts a returned pair back into .gpu/ (and folds the SLA
# report's records into the repository).
#
# A grid step starts from the records committed under leaderboards/records/<name>, adding each
# file the state lacks, so a fresh machine resumes where the repository stands. The state wins
# where both have a file: records dropped from the repository (to run them again) must go from
# .gpu/state.tgz too, or the next machine restores them and skips their runs. state.tgz leaves
# out the record packs (`slabench pack`), which only ever come from the repository, and the SLA
# report's plots, which gpu-return.sh draws again from the records: with them the tarball
# outgrew the 16 MiB a file may have to come back from the machine. If .gpu/head.commit
# exists (`git cat-file commit HEAD > .gpu/head.commit`), the machine's copy of .git is moved to
# that commit first: records then name the commit the working tree is at, clean, instead of
# whatever older HEAD the copy of .git kept. Only the commit object travels (378 bytes, where a
# bundle of the history is tens of MB): the tree it names is rebuilt from the files that came,
# and the commit is written again from its raw text, so it gets the same hash; its parents stay
# behind (it is marked shallow). A tree that differs from the commit's is left as it is, so its
# records say dirty.
#
# Steps: tests (the CUDA tests, then `slabench doctor`), quick (the quick preset, resumable),
# throughput (runs per GPU-hour one at a time, packed, packed and folded: scripts/throughput.py;
# THROUGHPUT_WAYS picks some),
# quick54 (the quick preset's 54-run first scope with an empty Triton cache: a fresh machine's cost),
# packing (quick's seed-0 third one at a time and packed, kernels compiled first; then all of quick
# packed: leaderboards/speed/packing.md), sweep (slabench sweep: docs/speed.md), report (slabench
# report sla --scale full, resumable), probe (scripts/packing-probe.py), profile (slabench profile),
# gla-paths and gate-bench (scripts/gla-paths.py, scripts/gate-bench.py), delta-paths
# (scripts/delta-paths.py), glue-bench (scripts/glue-bench.py), zoology (slabench report zoology,
# resumable), zoology-fresh (the same from no records: its device time in one sitting), step-profile (scripts/fold-profile.py: a training
# step's kernels by GPU time), preset=NAME (a shipped
# preset, resumable), grid=FILE (any grid), fresh-grid=FILE (a grid in one process with an empty
# Triton cache: first-use cost), variants (scripts/compile-variants.py), fold-bench
# (scripts/fold-bench.py).
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
DEADLINE=$((SECONDS + ${BUDGET:-560}))
export PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/slabench-triton}
STATE=${STATE:-/tmp/slabench-state}
mkdir -p "$TRITON_CACHE_DIR" "$STATE/logs"
# Restore only on a fresh machine: a warm one (the next call within its idle window) still has
# the full Triton cache and newer records than the last reply.
if [ ! -f "$STATE/logs/steps.txt" ]; then
  [ -f .gpu/autotune.tgz ] && tar xzf .gpu/autotune.tgz -C "$TRITON_CACHE_DIR"
  [ -f .gpu/state.tgz ] && tar xzf .gpu/state.tgz -C "$STATE"
fi
if [ -f .gpu/head.commit ]; then
  grep -qx /.gpu/ .git/info/exclude 2>/dev/null || printf '/.gpu/\n/.wheels/\n' >> .git/info/exclude
  git add -A
  if [ "$(git write-tree)" = "$(sed -n 's/^tree //p' .gpu/head.commit)" ]; then
    commit=$(git hash-object -t commit -w .gpu/head.commit)
    echo "$commit" >> .git/shallow  # its parents are not here
    git update-ref HEAD "$commit" && git reset -q "$commit" && echo "head: $commit, tree clean"
  else
    echo "head: the tree differs from .gpu/head.commit's; records will say dirty"
  fi
fi
# .wheels: fla-core, and pytest-xdist + execnet (parallel CUDA tests: Triton compiles on all cores).
{ python -m pip install --no-deps .wheels/*.whl && python -m pip install --no-deps --no-build-isolation -e .; } \
  > "$STATE/logs/install.log" 2>&1 || { tail "$STATE/logs/install.log"; exit 1; }

save() {  # write-then-rename: a tarball is never seen half-written
  (cd "$TRITON_CACHE_DIR" && find . -name '*.autotune.json' | tar czf - -T -) > "$OUT/.autotune.tgz" && mv "$OUT/.autotune.tgz" "$OUT/autotune.tgz"
  # tar exits 1 when a file changed while it was read (a run writing its record): the archive is
  # still whole (records are renamed into place, so each is in it complete or not at all).
  { tar czf "$OUT/.state.tgz" --warning=no-file-changed --exclude=packed.jsonl.gz --exclude='./sla-report/*.png' -C "$STATE" .; [ $? -le 1 ]; } \
    && mv "$OUT/.state.tgz" "$OUT/state.tgz"
  local size; size=$(stat -c %s "$OUT/state.tgz")
  [ "$size" -le $((16 << 20)) ] || log "state.tgz is $((size >> 20)) MiB: over the 16 MiB that comes back"
}
(while sleep 60; do save; done) & SAVER=$!
left() { echo $((DEADLINE - SECONDS)); }
log() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$STATE/logs/steps.txt"; }
# seed_records NAME: the files of leaderboards/records/NAME that $STATE/NAME lacks, copied in.
seed_records() {
  [ -d "leaderboards/records/$1" ] || return 0
  mkdir -p "$STATE/$1" && tar cf - -C "leaderboards/records/$1" . | tar xf - -C "$STATE/$1" --skip-old-files
}
# run_grid NAME WORKERS ARGS...: `slabench run ARGS` under the deadline, records in $STATE/NAME;
# FOLD=N trains each N runs that differ only in seed or lr as one batched model.
run_grid() {
  local name=$1 workers=$2; shift 2
  seed_records "$name"
  timeout "$(left)" slabench run "$@" --device cuda --workers "$workers" ${FOLD:+--fold "$FOLD"} --out "$STATE/$name" \
    --json > "$STATE/logs/$name.json" 2> "$STATE/logs/$name.err"
}
# count_records DIR: how many run records DIR holds, loose and packed (`slabench pack`).
count_records() {
  python -c 'import sys; from slabench.runners.records import load_records; print(len(load_records(sys.argv[1]).records))' "$1"
}
# zoology_report NAME: `slabench report zoology` (resumable) with its records in $STATE/NAME.
zoology_report() {
  timeout "$(left)" slabench report zoology --out "$STATE/$1" --report "$STATE/$1.md" \
    --device cuda --workers "${PACK:-8}" --quiet > "$STATE/logs/$1.log" 2>&1
  log "$1 (workers ${PACK:-8}): rc $? in $((SECONDS - t0)) s; $(count_records "$STATE/$1") records"
}
# edited_grid FILE NAME SED: the grid FILE edited by the sed script SED, as grid NAME in /tmp/NAME.toml
# (the first `name =` line is the grid's; later ones name tasks and models).
edited_grid() {
  sed "0,/^name = .*/s//name = \"$2\"/; $3" "$1" > "/tmp/$2.toml"
}
# MPS=1: start NVIDIA's Multi-Process Service, so the runs of a packed grid (one process each)
# share the GPU's SMs at once instead of time-slicing it (leaderboards/speed/packing.md).
if [ "${MPS:-0}" = 1 ]; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  nvidia-cuda-mps-control -d 2> /dev/null  # fails harmlessly when the daemon already runs
  log "mps: $(echo get_server_list | nvidia-cuda-mps-control > /dev/null 2>&1 && echo running || echo 'not running')"
fi
log "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader); $(python -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)')"

for step in "$@"; do
  t0=$SECONDS
  [ "$(left)" -gt 10 ] || { log "$step: skipped, deadline reached"; continue; }
  case $step in
    tests)
      # SIGINT, not SIGTERM, at the deadline: pytest then still prints the failures it has.
      # TESTS_S caps the step, so that later steps keep their time (on a fresh H200 the test
      # that probes every op's dispatch took 388 s).
      limit=$(left); [ "${TESTS_S:-$limit}" -lt "$limit" ] && limit=$TESTS_S
      timeout -s INT -k 20 "$limit" python -m pytest -m cuda tests/ -k "${TESTS_K:-}" -n "${XDIST:-8}" -v -rfsP -p no:cacheprovider ${PYTEST_ARGS:-} \
        --durations=20 > "$STATE/logs/gpu-tests.txt" 2>&1
      log "cuda tests: rc $? in $((SECONDS - t0)) s"
      [ -n "${TESTS_K:-}" ] && continue  # a chosen subset: no doctor
      t0=$SECONDS
      COLUMNS=200 timeout "$(left)" slabench doctor --device cuda --dtype float32 --dtype bfloat16 \
        > "$STATE/logs/doctor.txt" 2>&1
      log "doctor: rc $? in $((SECONDS - t0)) s" ;;
    throughput)  # runs per GPU-hour (scripts/throughput-job.toml): the ways in THROUGHPUT_WAYS (default all four):
      # serial (one at a time), packed (PACK workers), double (2 PACK workers), fold (packed, FOLD runs a model)
      ways=${THROUGHPUT_WAYS:-serial packed double fold}; dirs=()
      edited_grid scripts/throughput-job.toml throughput-warm 's/^seeds = .*/seeds = [100]/; s/^steps = .*/steps = 20/'
      run_grid throughput-warm 1 /tmp/throughput-warm.toml  # compiles what the runs use, so no way pays for it
      for way in $ways; do
        case $way in
          serial) edited_grid scripts/throughput-job.toml throughput-serial 's/^seeds = .*/seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]/'
                  run_grid throughput-serial 1 /tmp/throughput-serial.toml; dirs+=("$STATE/throughput-serial:1") ;;
          packed) run_grid throughput-packed "${PACK:-8}" scripts/throughput-job.toml; dirs+=("$STATE/throughput-packed:${PACK:-8}") ;;
          double) run_grid throughput-packed-double $((2 * ${PACK:-8})) scripts/throughput-job.toml
                  dirs+=("$STATE/throughput-packed-double:$((2 * ${PACK:-8}))") ;;
          fold) FOLD=${FOLD:-4} run_grid throughput-packed-fold "${PACK:-8}" scripts/throughput-job.toml
                dirs+=("$STATE/throughput-packed-fold:${PACK:-8}") ;;
        esac
      done
      python scripts/throughput.py "${dirs[@]}" > "$STATE/logs/throughput.jsonl"
      log "throughput ($ways; workers ${PACK:-8}, fold ${FOLD:-4}): rc $? in $((SECONDS - t0)) s"; cat "$STATE/logs/throughput.jsonl" ;;
    packing)  # quick's seed-0 runs (54, at its three lrs) one at a time and packed, kernels compiled first
      # quick_seed0 NAME WORKERS [SED]: quick's seed-0 third (edited by SED) as grid NAME.
      quick_seed0() {
        edited_grid slabench/presets/quick.toml "$1" "s/^seeds = .*/seeds = [0]/; ${3:-}"
        run_grid "$1" "$2" "/tmp/$1.toml"
      }
      quick_seed0 quick-warm 1 's/^steps = .*/steps = 20/'  # compiles every kernel quick uses, so neither mode pays for it
      log "quick warm-up (20 steps, seed 0): rc $? in $((SECONDS - t0)) s"; t0=$SECONDS
      quick_seed0 quick-serial 1
      log "quick seed 0, one at a time: rc $? in $((SECONDS - t0)) s"; t0=$SECONDS
      quick_seed0 quick-packed-seed0 "${PACK:-8}"
      log "quick seed 0 packed (workers ${PACK:-8}): rc $? in $((SECONDS - t0)) s"; t0=$SECONDS
      run_grid quick-packed "${PACK:-8}" --preset quick
      log "quick packed (workers ${PACK:-8}): rc $? in $((SECONDS - t0)) s" ;;
    quick54)  # quick's first scope (lr 1e-3, seeds 0-2: 54 runs) as on a fresh machine: an empty Triton cache
      edited_grid slabench/presets/quick.toml quick54 's/^seeds = .*/seeds = [0, 1, 2]/; s/^lr = .*/lr = 1e-3/'
      TRITON_CACHE_DIR=$(mktemp -d) run_grid quick54-fresh "${PACK:-8}" /tmp/quick54.toml
      log "quick54 (workers ${PACK:-8}, empty Triton cache): rc $? in $((SECONDS - t0)) s; $(count_records "$STATE/quick54-fresh") records" ;;
    quick)
      run_grid quick "${PACK:-1}" --preset quick
      log "quick (workers ${PACK:-1}): rc $? in $((SECONDS - t0)) s" ;;
    sweep)  # docs/speed.md's reference run; SWEEP_ARGS replaces its --mixers and --train-step
      # Only a finished sweep reaches $STATE/speed, which gpu-return.sh folds into leaderboards/speed:
      # one cut off at the deadline (a cold machine compiled for 523 s and did not finish) stays in
      # $STATE/sweep-run, its rows there to read, and never replaces the last whole sweep.
      rm -rf "$STATE/sweep-run"
      SWEEP_MIXERS=attention,linear,sla-linear,sla-linear/head-norm,retnet,sla-retnet,sla-retnet/head-norm
      SWEEP_MIXERS=$SWEEP_MIXERS,gla,sla-gla,sla-gla/head-norm,gdn,sla-gdn,sla-gdn/head-norm
      timeout "$(left)" slabench sweep --device cuda --seq-lens "${SEQ_LENS:-256,1024,4096,8192,16384,65536}" \
        --shape 64,256,8,16 --out "$STATE/sweep-run" ${SWEEP_ARGS:---train-step --mixers $SWEEP_MIXERS} > "$STATE/logs/sweep.log" 2>&1
      rc=$?
      [ "$rc" = 0 ] && mkdir -p "$STATE/speed" && cp -r "$STATE/sweep-run/." "$STATE/speed/"
      log "sweep: rc $rc in $((SECONDS - t0)) s$([ "$rc" = 0 ] || echo '; not finished, left in sweep-run')" ;;
    report)  # resumable across machines: starts from the records committed under leaderboards/records/sla-report
      seed_records sla-report
      timeout "$(left)" slabench report sla --scale full --device cuda --workers "${PACK:-8}" --fold "${FOLD:-1}" --out "$STATE/sla-report" \
        --report "$STATE/sla-report.md" --speed-dir leaderboards/speed --quiet ${REPORT_ARGS:-} > "$STATE/logs/report.log" 2>&1
      log "report: rc $? in $((SECONDS - t0)) s" ;;
    probe)  # do N training processes overlap on the GPU? (scripts/packing-probe.py)
      timeout "$(left)" python scripts/packing-probe.py ${PROBE_ARGS:-} > "$STATE/logs/packing-probe.jsonl" 2> "$STATE/logs/packing-probe.err"
      log "packing probe ${PROBE_ARGS:-}: rc $? in $((SECONDS - t0)) s" ;;
    profile)  # kernels per mixer call (slabench profile), at the small and a long shape
      for m in ${PROFILE_MIXERS:-attention gla sla-gla}; do for s in ${PROFILE_SHAPES:-64,256,8,16 8,8192,8,16}; do
        COLUMNS=250 timeout "$(left)" slabench profile "$m" --shape "$s" --device cuda ${PROFILE_ARGS:-} >> "$STATE/logs/profile.txt" 2>&1
      done; done
      log "profile: rc $? in $((SECONDS - t0)) s" ;;
    gla-paths)  # every fla path of the gla ops timed at the suite's shapes
      timeout "$(left)" python scripts/gla-paths.py ${GLA_PATHS_SHAPES:-} > "$STATE/logs/gla-paths.jsonl" 2> "$STATE/logs/gla-paths.err"
      log "gla paths: rc $? in $((SECONDS - t0)) s" ;;
    gate-bench)  # the fused SLA gate per rows per program and warps vs the unfused torch gate
      timeout "$(left)" python scripts/gate-bench.py ${GATE_SHAPES:-} > "$STATE/logs/gate-bench.jsonl" 2> "$STATE/logs/gate-bench.err"
      log "gate bench: rc $? in $((SECONDS - t0)) s" ;;
    glue-bench)  # a mixer layer with its short conv and norms on other paths or launch settings
      timeout "$(left)" python scripts/glue-bench.py ${GLUE_ARGS:-} > "$STATE/logs/glue-bench.jsonl" 2> "$STATE/logs/glue-bench.err"
      log "glue bench: rc $? in $((SECONDS - t0)) s" ;;
    delta-paths)  # the delta-rule paths (project kernel at chunk 32 and 64, fla, reference) beside gla's
      timeout "$(left)" python scripts/delta-paths.py ${DELTA_SHAPES:-} > "$STATE/logs/delta-paths.jsonl" 2> "$STATE/logs/delta-paths.err"
      log "delta paths: rc $? in $((SECONDS - t0)) s" ;;
    zoology)  # Zoology's MQAR figure (docs/zoology.md): its three grids, then the report
      seed_records zoology-mqar
      zoology_report zoology-mqar ;;
    zoology-fresh)  # the same figure from no records (its device time in one sitting)
      zoology_report zoology-mqar-fresh ;;
    preset=*)  # preset=NAME: a shipped preset, records under $STATE/NAME
      name=${step#preset=}
      run_grid "$name" "${PACK:-8}" --preset "$name"
      log "$name (workers ${PACK:-8}): rc $? in $((SECONDS - t0)) s; $(count_records "$STATE/$name") records" ;;
    grid=*)  # grid=FILE.toml: any grid, records under $STATE/<file name>
      file=${step#grid=}; name=$(basename "$file" .toml)
      run_grid "$name" "${PACK:-1}" "$file"
      log "$name (workers ${PACK:-1}): rc $? in $((SECONDS - t0)) s" ;;
    fresh-grid=*)  # fresh-grid=FILE.toml: one process, an empty Triton cache of its own: first-use cost
      file=${step#fresh-grid=}; name=$(basename "$file" .toml)-fresh
      TRITON_CACHE_DIR=$(mktemp -d) run_grid "$name" 1 "$file"
      log "$name (empty Triton cache): rc $? in $((SECONDS - t0)) s" ;;
    step-profile)  # where one run's training step spends its GPU time (scripts/fold-profile.py: timings, then a profile table)
      timeout "$(left)" python scripts/fold-profile.py ${STEP_PROFILE_ARGS:-gla 1} > "$STATE/logs/step-profile.txt" 2>&1
      log "step profile ${STEP_PROFILE_ARGS:-gla 1}: rc $? in $((SECONDS - t0)) s" ;;
    fold-bench)  # single runs against folds of N (scripts/fold-bench.py), e.g. FOLD_BENCH_ARGS="gla,sla-gla 8,16"
      OUT="$STATE/logs" timeout "$(left)" python scripts/fold-bench.py ${FOLD_BENCH_ARGS:-} > /dev/null 2> "$STATE/logs/fold-bench.err"
      log "fold bench ${FOLD_BENCH_ARGS:-}: rc $? in $((SECONDS - t0)) s" ;;
    variants)  # what a first run compiles, per kernel name (scripts/compile-variants.py)
      TRITON_CACHE_DIR=$(mktemp -d) timeout "$(left)" python scripts/compile-variants.py ${VARIANTS_ARGS:-} \
        > "$STATE/logs/compile-variants.jsonl" 2> "$STATE/logs/compile-variants.err"
      log "compile variants ${VARIANTS_ARGS:-}: rc $? in $((SECONDS - t0)) s" ;;
    *) log "unknown step $step" ;;
  esac
done
kill $SAVER 2>/dev/null
save  # before stopping MPS: its quit waits for clients a killed grid may leave behind
[ "${MPS:-0}" = 1 ] && log "mps servers: $(echo get_server_list | nvidia-cuda-mps-control | tr '\n' ' ')" \
  && echo quit | timeout 10 nvidia-cuda-mps-control
cat "$STATE/logs/steps.txt"

#!/usr/bin/env bash
# After a device call of scripts/gpu-steps.sh, with DIR holding the autotune.tgz and state.tgz
# it returned:
#
#   bash scripts/gpu-return.sh DIR
#
# keeps both in .gpu/, so the next machine resumes from them (a machine released between two
# calls comes back fresh: without the state it would start from the committed records and rerun
# what the last one finished), and folds the SLA report's records into
# leaderboards/records/sla-report, packed, and a speed sweep's tables into leaderboards/speed,
# with each section's leaderboard and both editions of the report (leaderboards/sla-report.md and
# sla-report-v1.md, from the records in so far and the latest sweep) rebuilt, ready to commit.
# The state kept in .gpu/ then leaves out what it folded, the SLA report's records and the sweep:
# the repository holds them now, and the next machine seeds the records from there, so the state
# carries one sitting's runs, not every sitting's, and an old sweep is never folded in again over
# tables rendered since.
set -euo pipefail
dir=$1
cp -f "$dir/autotune.tgz" .gpu/autotune.tgz
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
tar xzf "$dir/state.tgz" -C "$state"
[ -d "$state/speed" ] && cp -r "$state/speed/." leaderboards/speed/
if [ -d "$state/sla-report" ]; then
  cp -r "$state/sla-report/." leaderboards/records/sla-report/
  slabench pack leaderboards/records/sla-report
  for s in noise mqar heads; do
    slabench leaderboard "leaderboards/records/sla-report/$s" --out-dir "leaderboards/records/sla-report/$s" \
      --name "report-$s-full" > /dev/null
  done
fi
if [ -d "$state/sla-report" ] || [ -d "$state/speed" ]; then
  for edition in 1 2; do
    report=leaderboards/sla-report.md; [ "$edition" = 1 ] && report=leaderboards/sla-report-v1.md
    slabench report sla --from-records --scale full --edition "$edition" --out leaderboards/records/sla-report \
      --report "$report" --speed-dir leaderboards/speed --quiet
  done
fi
rm -f .gpu/state.tgz
tar czf .gpu/state.tgz -C "$state" --exclude='./sla-report/*/records' --exclude=./speed .
git status --short | tail -3

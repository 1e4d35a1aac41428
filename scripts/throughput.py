"""Runs per GPU-hour from the records of `scripts/throughput-job.toml` run several ways
(`scripts/gpu-steps.sh throughput`), one JSON line per way:

- `runs_per_hour_by_median` = 3600 / the median of a run's training and evaluation time: the
  one-at-a-time figure where the runs ran alone (one worker), to the millisecond;
- any way, one at a time included: runs per hour = runs * 3600 / span, the span from the
  earliest run's start (its record's timestamp less its training and evaluation time) to the
  last record; it leaves out each worker's process start and imports, not a fold's capture.
  Timestamps are whole seconds, so a span is good to about a second.

    python scripts/throughput.py RECORDS_DIR [RECORDS_DIR ...]
"""

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

from slabench.runners.records import load_records


def summary(directory: Path) -> dict:
    ok = [r for r in load_records(directory).records.values() if r["status"] == "ok"]
    steps, folds = sorted({r["metrics"]["steps"] for r in ok}), sorted({r["fold"] for r in ok})
    row = {"runs": len(ok), "steps": steps, "fold": folds}
    if not ok:
        return row
    per_run = [r["timings"]["train_seconds"] + r["timings"]["eval_seconds"] for r in ok]
    ends = [datetime.fromisoformat(r["timestamp"]).timestamp() for r in ok]
    median = statistics.median(per_run)
    span = max(ends) - min(e - s for e, s in zip(ends, per_run))
    return row | {
        "median_run_s": round(median, 3),
        "runs_per_hour_by_median": round(3600 / median),
        "span_s": round(span, 1),
        "runs_per_hour": round(len(ok) * 3600 / span),
    }


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps({"records": arg, **summary(Path(arg))}))

"""Runs per GPU-hour from the records of `scripts/throughput-job.toml` run several ways
(`scripts/gpu-steps.sh throughput`), one JSON line per way:

- `runs_per_hour` (steady state) = the runs recorded after each worker's first one, over the time
  from the first wave's last record to the last record: every per-run cost (data, model build,
  capture, test evaluation, the record) is in it, and no process start or first-use compile is.
  `workers` says how many ran at once (a fold of N counts as N runs of one worker).
- `runs_per_hour_span` = runs * 3600 / span, the span from the earliest run's start (its record's
  timestamp less its training time, evaluations included) to the last record: the first wave's
  warm-up included.
- `median_train_s`: a run's training time, evaluations included (a fold's: the fold's).
  Timestamps are whole seconds, so a rate over a few seconds is good to a few percent only.

    python scripts/throughput.py RECORDS_DIR:WORKERS [RECORDS_DIR:WORKERS ...]
"""

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

from slabench.runners.records import load_records


def summary(directory: Path, workers: int) -> dict:
    ok = [r for r in load_records(directory).records.values() if r["status"] == "ok"]
    steps, folds = sorted({r["metrics"]["steps"] for r in ok}), sorted({r["fold"] for r in ok})
    row = {"runs": len(ok), "workers": workers, "steps": steps, "fold": folds}
    if not ok:
        return row
    train = [r["timings"]["train_seconds"] for r in ok]
    recorded = [datetime.fromisoformat(r["timestamp"]).timestamp() for r in ok]
    ends = sorted(recorded)
    span = ends[-1] - min(end - t for end, t in zip(recorded, train))
    first_wave = workers * max(folds)  # each worker's first run (or fold) pays the process's warm-up
    row |= {
        "median_train_s": round(statistics.median(train), 3),
        "span_s": round(span, 1),
        "runs_per_hour_span": round(len(ok) * 3600 / span),
    }
    if len(ok) > first_wave and ends[-1] > ends[first_wave - 1]:
        steady = ends[-1] - ends[first_wave - 1]
        row |= {"steady_s": steady, "steady_runs": len(ok) - first_wave}
        row["runs_per_hour"] = round((len(ok) - first_wave) * 3600 / steady)
    return row


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        directory, workers = arg.rsplit(":", 1)
        print(json.dumps({"records": directory, **summary(Path(directory), int(workers))}))

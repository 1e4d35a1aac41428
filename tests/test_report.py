"""`slabench report sla`: the tiny scale end to end on CPU (real training), and the committed report
rebuilt from its records (the verdict rules are in test_report_rules.py)."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from slabench.cli import main
from slabench.runners import report as rp

SECTION_TITLES = [
    "## 1. Retrieval under noise",
    "## 2. MQAR recall",
    "## 3. Gain vs number of heads",
    "## 4. Gate dynamics",
    "## 5. Cost",
]


def test_tiny_report_end_to_end_and_from_records(tmp_path):
    out, md, speed = tmp_path / "runs", tmp_path / "lb" / "sla-report.md", tmp_path / "speed"
    args = [
        "report",
        "sla",
        "--scale",
        "tiny",
        "--out",
        str(out),
        "--report",
        str(md),
        "--speed-dir",
        str(speed),
        "--device",
        "cpu",
        "--quiet",
    ]
    result = CliRunner().invoke(main, args + ["--workers", "2"])
    assert result.exit_code == 0, result.output
    text = md.read_text()

    positions = [text.find(t) for t in SECTION_TITLES]
    assert -1 not in positions and positions == sorted(positions), positions
    verdicts = re.findall(r"\*\*Verdict: (supported|not supported|inconclusive)\.\*\*", text)
    assert len(verdicts) == 5
    assert "No speed sweep found" in text and "slabench sweep" in text  # claim 4 says how to get its data
    for section in ("noise", "mqar", "heads", "gates"):
        assert (md.parent / f"sla-report-{section}.png").stat().st_size > 0
    counts = {s: len(list((out / s / "records").glob("*.json"))) for s in rp.GRID_SECTIONS}
    assert counts == {"noise": 18, "mqar": 12, "heads": 12}  # 3 seeds per cell, one base and its twin
    assert (out / "noise" / "report-noise-tiny.md").is_file()  # each section's own leaderboard
    assert "/3 solved)" in text and "(n=3)" in text and "sla-gla" in text

    # No training: the same Markdown, byte for byte, from the records alone.
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("records/*.json")}
    result = CliRunner().invoke(main, args + ["--from-records"])
    assert result.exit_code == 0, result.output
    assert md.read_text() == text
    assert {p: p.stat().st_mtime_ns for p in out.rglob("records/*.json")} == mtimes
    assert re.search(r"\d+ of \d+ \(task, model\) cells have seeds both at", text) and "Failed runs" not in text

    # A failed run is listed with its error, and --retry-failed reruns it (and only it).
    victim = min((out / "heads" / "records").glob("*.json"))
    record = json.loads(victim.read_text())
    victim.write_text(json.dumps({**record, "status": "failed", "error": "CompilationError: at 39:15:\nmore"}))
    assert CliRunner().invoke(main, args + ["--from-records"]).exit_code == 0
    assert "Failed runs" in md.read_text() and "CompilationError: at 39:15: |" in md.read_text()
    result = CliRunner().invoke(main, args + ["--retry-failed", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(victim.read_text())["status"] == "ok" and "Failed runs" not in md.read_text()
    assert counts == {s: len(list((out / s / "records").glob("*.json"))) for s in rp.GRID_SECTIONS}


def test_committed_report_regenerates_from_committed_records(tmp_path):
    """leaderboards/sla-report.md (H100 runs) is exactly what its committed records give."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    committed = root / "leaderboards" / "sla-report.md"
    md = tmp_path / "sla-report.md"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "sla",
            "--from-records",
            "--scale",
            "full",
            "--quiet",
            "--out",
            str(root / "leaderboards" / "records" / "sla-report"),
            "--report",
            str(md),
            "--speed-dir",
            str(root / "leaderboards" / "speed"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert md.read_text() == committed.read_text()

"""What an operator reads: progress lines in logs, the run's errors grouped by reason,
and a ledger summary that fits 80 columns."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from latentpress import terminal
from latentpress.flows.progress import StepProgress, format_seconds, status_line
from latentpress.flows.results import RunResult
from latentpress.pipeline.outcomes import Outcome


def test_status_line_gives_rate_and_time_left() -> None:
    assert status_line("compress", 40, 120, 60.0) == "compress: 40/120 images, 40 images/min, 2m00s left"
    assert status_line("compress", 0, 120, 5.0) == "compress: 0/120 images"
    assert status_line("evaluate", 9000, 9000, 3725.0) == "evaluate: 9000/9000 images, 145 images/min, in 1h02m"
    assert format_seconds(42.4) == "42s" and format_seconds(185) == "3m05s"


def test_progress_in_logs_is_plain_lines() -> None:
    out = io.StringIO()
    now = [0.0]
    with StepProgress("compress", 10, Console(file=out, force_terminal=False, width=80), clock=lambda: now[0]) as bar:
        now[0] = 31.0
        bar.advance(4)  # a line
        now[0] = 40.0
        bar.advance(2)  # too soon for another
        now[0] = 62.0
        bar.advance(4)
    lines = out.getvalue().splitlines()
    assert lines == [
        "compress: 4/10 images, 7.74 images/min, 46s left",
        "compress: 10/10 images, 9.68 images/min, in 1m02s",
    ]
    assert "\x1b" not in out.getvalue()  # no terminal codes in a log


def test_errors_are_grouped_by_reason_and_set_the_exit_status(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(terminal, "errors", Console(file=out, width=80))
    result = RunResult("r1")
    assert terminal.print_errors(result) == 0 and out.getvalue() == ""
    missing = "ModelNotFoundError: weights 'lpips/alex_v0.1_full.pth' not found"
    result.add("evaluate", [Outcome(f"{i:016x}", "avif.default.q30", "error", missing) for i in range(7)])
    result.add(
        "compress",
        [
            Outcome("f" * 16, "jpeg.default.q5", "error", "OSError: disk full"),
            Outcome("e" * 16, "jpeg.default.q5", "rejected", "bad input"),
        ],
    )
    assert terminal.print_errors(result) == 1
    text = out.getvalue()
    assert text.count(missing) == 1 and text.count("disk full") == 1 and "bad input" not in text
    assert "error (7)" in text and "and 2 more" in text and "8 image(s) ended in error" in text


def test_summary_table_fits_80_columns() -> None:
    row = {"codec": "latent-q", "preset": "default", "config_key": "latent-q.default.q0.5", "quality": 0.5, "images": 1200,
           "bpp": 0.123456, "amortised_bpp": 0.13, "lpips": 0.123456, "dists": 0.2, "psnr": 22.123, "ms_ssim": 0.91, "encode_seconds": 12.3456,
           "decode_seconds": 1.23456, "rejected": 3}  # fmt: skip
    summary = pd.DataFrame([row, {**row, "codec": "clric", "preset": "fast", "config_key": "clric.fast.bpp0.1"}])
    table, hidden = terminal.summary_table(summary, ["codec", "quality"], "ledger s3://bucket/archive/ledger", 80)
    out = io.StringIO()
    Console(file=out, width=80).print(table)
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) <= 80 and len(lines) == 5  # title, header, rule, two rows: nothing wrapped
    assert "clric:fast" in lines[4] and "bpp0.1" in lines[4] and "0.1235" in lines[3]
    assert hidden and "LPIPS" not in hidden and "bpp" not in hidden
    wide, none_hidden = terminal.summary_table(summary, ["codec", "quality"], "ledger", 200)
    assert none_hidden == []

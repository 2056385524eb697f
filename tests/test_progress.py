"""Transfer progress: a tqdm bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import io
import logging

from worker import progress
from worker.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:  # a StringIO standing in for a terminal: tqdm draws into it
        return True


def test_on_a_terminal_a_tqdm_bar_counts_bytes():
    screen = _Terminal()
    with Progress("download 3 file(s)", 3, 3000, stream=screen) as bar:
        for _ in range(3):
            bar.advance(1000)
    assert "download 3 file(s)" in screen.getvalue()
    assert "/3.00k" in screen.getvalue()  # the bar was drawn with the total in bytes
    assert (bar.done_files, bar.done_bytes) == (3, 3000)


def test_off_a_terminal_log_lines_report_files_bytes_and_rate(monkeypatch, caplog):
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO, logger="worker.progress")
    with Progress("upload 2 file(s)", 2, 2_000_000, stream=io.StringIO()) as bar:
        bar.advance(1_000_000)
        bar.advance(1_000_000)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("upload 2 file(s): 1/2 files, 1.0/2.0 MB, ")
    assert lines[-1].startswith("upload 2 file(s): 2/2 files, 2.0/2.0 MB, ")
    assert lines[-1].endswith(" MB/s")

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
    assert lines[-1].endswith("B/s")  # the rate, in its own unit


def test_an_unknown_total_is_not_printed_as_zero(monkeypatch, caplog):
    """Footers' sizes are unknown until they arrive: no "0.1/0.0 MB" line."""
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO, logger="worker.progress")
    with Progress("footers of 2 file(s)", 2, 0, stream=io.StringIO()) as bar:
        bar.advance(60_000)
        bar.advance(60_000)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[-1].startswith("footers of 2 file(s): 2/2 files, 120.0 kB, ")
    assert "/0.0" not in " ".join(lines)


def test_small_transfers_are_counted_in_their_own_unit(monkeypatch, caplog):
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO, logger="worker.progress")
    with Progress("download 2 file(s)", 2, 3_000, stream=io.StringIO()) as bar:
        bar.advance(1_000)
        bar.advance(2_000)
    assert caplog.records[-1].getMessage().startswith("download 2 file(s): 2/2 files, 3.0/3.0 kB, ")


def test_a_folder_download_logs_its_real_total(tmp_path, caplog):
    """The lake passes the listed sizes of what it downloads (local sizes are not known)."""
    from worker.lake import Lake
    from worker.lake.local import LocalStore

    root = tmp_path / "lake"
    (root / "raw").mkdir(parents=True)
    for name in ("a.csv", "b.csv"):
        (root / "raw" / name).write_bytes(b"x" * 150_000)
    caplog.set_level(logging.INFO, logger="worker.progress")
    lake = Lake(LocalStore.from_url(root.as_uri()), "local/t", run_id="1-x", concurrency=4)
    lake.download("raw", str(tmp_path / "out"))
    assert caplog.records[-1].getMessage().startswith("download 2 file(s): 2/2 files, 300.0/300.0 kB, ")

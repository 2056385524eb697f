"""The pool's start task on the local node: run when the node boots (and again at a
reboot), with the variables Batch gives a start task, retried up to its maxTaskRetryCount;
with waitForSuccess no task starts until it succeeded, and its failure leaves the node
unusable (Batch's ``StartTaskFailed``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from .documents import StartTask
from .node import LocalNode
from .process import Attempt

POLL = 0.05


@dataclass
class StartTaskRun:
    """One boot's start task: its exit code after its tries."""

    boot: str  # "boot" or "reboot"
    exit_code: Optional[int] = None
    tries: int = 0
    duration_s: float = 0.0
    error: Optional[str] = None

    def to_dict(self) -> Dict[str, object]:
        return {"boot": self.boot, "exit_code": self.exit_code, "tries": self.tries,
                "duration_s": round(self.duration_s, 3), "error": self.error}


def run_start_task(node: LocalNode, task: StartTask, env: Dict[str, str], boot: str,
                   stop: threading.Event) -> StartTaskRun:
    """Run the start task, retrying a failure up to its maxTaskRetryCount."""
    record = StartTaskRun(boot)
    started = time.monotonic()
    while True:
        record.tries += 1
        attempt = Attempt(task.argv, node.root / "startup", env, record.tries)
        while not attempt.finished and not stop.is_set():
            time.sleep(POLL)
        if not attempt.finished:
            attempt.kill()
        record.exit_code = attempt.poll()
        record.error = attempt.error
        if record.exit_code == 0 or stop.is_set() or not _may_retry(task, record.tries):
            break
    record.duration_s = time.monotonic() - started
    return record


def _may_retry(task: StartTask, tries: int) -> bool:
    return task.max_retries < 0 or tries <= task.max_retries


class Boot:
    """The start task of one boot, or of a boot and a reboot, run in the foreground
    (waitForSuccess) or beside the tasks (without it)."""

    def __init__(self, node: LocalNode, task: StartTask, env: Dict[str, str],
                 reboot: bool, stop: threading.Event) -> None:
        self.runs: List[StartTaskRun] = []
        self._args = (node, task, env, reboot, stop)
        self._thread: Optional[threading.Thread] = None
        self.wait_for_success = task.wait_for_success

    def start(self) -> None:
        if self.wait_for_success:
            self._boot()
        else:
            self._thread = threading.Thread(target=self._boot, name="start-task", daemon=True)
            self._thread.start()

    def _boot(self) -> None:
        node, task, env, reboot, stop = self._args
        self.runs.append(run_start_task(node, task, env, "boot", stop))
        if reboot and self.runs[-1].exit_code == 0 and not stop.is_set():
            self.runs.append(run_start_task(node, task, env, "reboot", stop))

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    @property
    def failed(self) -> bool:
        return bool(self.runs) and self.runs[-1].exit_code != 0

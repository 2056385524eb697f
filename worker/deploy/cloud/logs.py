"""``python -m worker logs JOB TASK``: a task's ``stderr.txt`` (the harness's log, the
default) or ``stdout.txt`` from its node through Batch's file API; ``--follow`` reads the
new bytes (byte ranges) until the task has completed; ``--attempt N`` an earlier run's,
where the node keeps it as ``stderr.N.txt`` (the local Batch node does; Azure Batch
overwrites both files at each retry and keeps only the latest run's).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any, Optional

from ...errors import OK
from ..errors import NotFoundError
from . import files
from .failures import translate
from .options import ACCOUNT_HELP, add_account_options, load_spec, run_command

EPILOG = """examples:
  python -m worker logs sales-daily 3                   # the harness's log (stderr.txt)
  python -m worker logs sales-daily 3 --stderr          # the same, said
  python -m worker logs sales-daily 3 --stdout          # what the handler printed
  python -m worker logs sales-daily merge --follow      # new lines until the task ends
  python -m worker logs sales-daily 3 --attempt 1       # the first run's (stderr.1.txt)

""" + ACCOUNT_HELP + """

exit codes:
  0 shown; 2 no such job or task, its files are not on a node (it has not run, or its node
  is gone), a missing role, a wrong account; 3 the service kept failing"""

FOLLOW_EVERY = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("job", metavar="JOB", help="the job's id")
    parser.add_argument("task", metavar="TASK", help="the task's id")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stdout", dest="stream", action="store_const", const="stdout",
                       help="stdout.txt: what the handler printed")
    which.add_argument("--stderr", dest="stream", action="store_const", const="stderr",
                       help="stderr.txt: the harness's log (the default)")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep reading new bytes until the task has completed")
    parser.add_argument("--attempt", type=int, metavar="N",
                        help="the N-th run's file (NAME.N.txt), where the node keeps it")
    parser.add_argument("--interval", type=float, default=FOLLOW_EVERY, metavar="SECONDS",
                        help="seconds between reads with --follow (default 2)")
    add_account_options(parser)


def run(args: argparse.Namespace) -> int:
    return run_command("logs", lambda: _logs(args, _binary(sys.stdout)))


def _binary(stream: Any) -> Any:
    """The bytes side of a text stream (a file's bytes go out as they are), or, for a
    stream without one (a test's StringIO), a writer that decodes them."""
    if hasattr(stream, "buffer"):
        stream.flush()
        return stream.buffer

    class _Text:
        def write(self, data: bytes) -> None:
            stream.write(data.decode("utf-8", "replace"))

        def flush(self) -> None:
            stream.flush()

    return _Text()


def _logs(args: argparse.Namespace, out: IO[bytes]) -> int:
    from .account import Clients, resolve

    clients = Clients(resolve(load_spec(args), args.account_url, args.shared_key))
    stream = args.stream or "stderr"
    path = "%s.%d.txt" % (stream, args.attempt) if args.attempt else stream + ".txt"
    try:
        reader = TaskFile(clients, args.job, args.task, path)
        if args.follow:
            reader.follow(out, args.interval)
        else:
            reader.show(out)
    finally:
        clients.close()
    return OK


class TaskFile:
    """One file of one task, read whole or followed."""

    def __init__(self, clients: Any, job_id: str, task_id: str, path: str) -> None:
        self.clients, self.job_id, self.task_id, self.path = clients, job_id, task_id, path
        self.where = clients.target.where()

    def show(self, out: IO[bytes]) -> None:
        data = files.read(self.clients.batch, self.job_id, self.task_id, self.path,
                          self.where)
        if data is None:
            raise self._missing()
        out.write(data)
        out.flush()

    def follow(self, out: IO[bytes], interval: float) -> None:
        """Write the file as it grows, until the task has completed and all is read."""
        offset, waited = 0, False
        while True:
            state = self._state()
            length = files.size(self.clients.batch, self.job_id, self.task_id, self.path,
                                self.where)
            if length is None:
                if state == "completed":
                    raise self._missing()
                if not waited:
                    sys.stderr.write("logs: task %s is %s: waiting for its %s\n"
                                     % (self.task_id, state, self.path))
                    waited = True
            elif length > offset:
                data = files.read(self.clients.batch, self.job_id, self.task_id, self.path,
                                  self.where, offset, length - 1) or b""
                out.write(data)
                out.flush()
                offset += len(data)
            elif length < offset:  # a new run (a retry) started the file again
                offset = 0
                continue
            if state == "completed" and (length is None or offset >= length):
                return
            time.sleep(interval)

    def _state(self) -> str:
        try:
            task = self.clients.batch.get_task(self.job_id, self.task_id, select=["id", "state"])
        except Exception as e:  # the SDK's errors, translated at this boundary
            raise translate(e, "reading task %s of job %s" % (self.task_id, self.job_id),
                            self.where, not_found="there is no task %s in job %s: check the "
                            "ids (python -m worker status %s)" % (self.task_id, self.job_id,
                                                                  self.job_id)) from None
        return str(getattr(task.state, "value", task.state) or "").lower()

    def _missing(self) -> NotFoundError:
        state: Optional[str] = self._state()
        if state in ("active", "preparing"):
            why = "it has not run yet (%s)" % state
        elif "." in self.path[:-4]:
            why = ("its node does not keep that run's file (Azure Batch keeps only the latest "
                   "run's stdout.txt and stderr.txt)")
        else:
            why = "its node is gone, and its files with it (python -m worker results %s reads " \
                  "its result record from the lake)" % self.job_id
        return NotFoundError("task %s of job %s has no %s: %s" % (self.task_id, self.job_id,
                                                                   self.path, why))

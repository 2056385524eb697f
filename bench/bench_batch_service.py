"""The local Batch service, measured side by side with what it stands on.

1. **Add and list**: 10,000 tasks added in collections of 100 (as deploy code and the SDKs'
   ``create_tasks`` add them) to a job, then listed (pages of 1,000): the time of each, and
   the service process's memory (VmRSS before and after, VmHWM). Beside it the *floor*: the
   same requests answered by the same HTTPS server with a trivial app (canned answers of the
   same size), so the ratio is the service's own cost.
2. **Get and list per second**: one connection asking for tasks by id, then for pages of
   1,000, for ``--seconds`` each; the floor's rate beside it.
3. **The scheduler's cost per task** at 32 slots on one node, on the nodes' Python (3.8):
   ``--tasks`` processes (``/bin/true``) run by the shared scheduler (local-batch's and the
   service's, ``worker.deploy.localbatch.scheduler``) against the same processes started 32
   at a time by bare threads; both in this process, one after the other. Reported: wall time,
   this process's own CPU (not the tasks'), and the difference per task.

    .ci-venvs/py312/bin/python bench/bench_batch_service.py --part service   # 1 and 2
    .ci-venvs/py38/bin/python bench/bench_batch_service.py --part scheduler  # 3

Requests are signed with Shared Key by the emulator's own signer (``auth.sign``): the client
is plain urllib3, so the client's CPU stays small beside the service's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

API = "2025-06-01"


class Client:
    """Signed JSON requests over one urllib3 connection pool."""

    def __init__(self, env: Dict[str, str]) -> None:
        import urllib3

        self.http = urllib3.PoolManager(maxsize=1, ca_certs=env["REQUESTS_CA_BUNDLE"])
        self.base = env["AZURE_BATCH_ENDPOINT"]
        self.account, self.key = env["AZURE_BATCH_ACCOUNT"], env["AZURE_BATCH_ACCESS_KEY"]

    def send(self, method: str, path: str, body: Any = None, query: str = "") -> Any:
        from email.utils import formatdate

        from worker.emulators.batch.auth import sign, string_to_sign

        query = "api-version=%s%s" % (API, "&" + query if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"ocp-date": formatdate(usegmt=True),
                   "Content-Type": "application/json; odata=minimalmetadata",
                   "Content-Length": str(len(data or b""))}
        if method == "GET":
            del headers["Content-Length"]
        text = string_to_sign(method, path, query, headers, self.account)
        headers["Authorization"] = "SharedKey %s:%s" % (self.account, sign(text, self.key))
        answer = self.http.request(method, "%s%s?%s" % (self.base, path, query), body=data,
                                   headers=headers)
        assert answer.status < 300, (answer.status, answer.data[:300])
        return json.loads(answer.data) if answer.data else None


def start_emulate(work: Path, floor: bool, tasks: int
                  ) -> Tuple[subprocess.Popen, Dict[str, str]]:
    env_file = work / ("floor.env" if floor else "emulators.env")
    command = [sys.executable, "-m", "worker", "emulate", "--batch", "--quiet", "--env-file",
               str(env_file), "--batch-port", "0", "--arm-port", "0", "--lake-port", "0",
               "--vault-port", "0", "--identity-port", "0"]
    if floor:
        command = [sys.executable, str(Path(__file__).resolve()), "--floor-server",
                   str(env_file), "--tasks", str(tasks)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not env_file.exists():
        assert process.poll() is None and time.monotonic() < deadline, "did not start"
        time.sleep(0.05)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return process, env


def memory(pid: int) -> Dict[str, int]:
    out = {}
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) // 1024  # MiB
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def add_and_list(client: Client, tasks: int) -> Dict[str, float]:
    client.send("POST", "/jobs", {"id": "bench", "poolInfo": {"poolId": "no-such-pool"}})
    command = "/bin/bash -c 'python -m worker run handlers.pipeline:partition --param path=x'"
    started = time.perf_counter()
    for first in range(0, tasks, 100):
        body = {"value": [{"id": "%05d" % n, "commandLine": command,
                           "environmentSettings": [{"name": "WORKER_TIMEOUT", "value": "600"}],
                           "constraints": {"maxTaskRetryCount": 2}}
                          for n in range(first, min(tasks, first + 100))]}
        result = client.send("POST", "/jobs/bench/addtaskcollection", body)
        assert all(r["status"] == "success" for r in result["value"])
    added = time.perf_counter() - started
    started = time.perf_counter()
    seen, skip = 0, 0
    while True:
        page = client.send("GET", "/jobs/bench/tasks", query="maxresults=1000&$skiptoken=%d"
                           % skip)
        seen += len(page["value"])
        if "odata.nextLink" not in page:
            break
        skip += 1000
    listed = time.perf_counter() - started
    assert seen == tasks, seen
    return {"add_s": added, "list_s": listed}


def rates(client: Client, tasks: int, seconds: float) -> Dict[str, float]:
    ids = ["%05d" % random.randrange(tasks) for _ in range(100000)]
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.send("GET", "/jobs/bench/tasks/%s" % ids[count % len(ids)])
        count += 1
    gets = count / (time.perf_counter() - started)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.send("GET", "/jobs/bench/tasks", query="maxresults=1000&$skiptoken=%d"
                    % (1000 * (count % max(1, tasks // 1000))))
        count += 1
    return {"get_per_s": gets, "list_pages_per_s": count / (time.perf_counter() - started)}


def part_service(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for floor in (False, True):
            process, env = start_emulate(Path(tmp), floor, args.tasks)
            try:
                client = Client(env)
                before = memory(process.pid)
                cpu = cpu_seconds(process.pid)
                figures = add_and_list(client, args.tasks)
                figures["cpu_s"] = cpu_seconds(process.pid) - cpu
                after = memory(process.pid)
                figures.update(rates(client, args.tasks, args.seconds))
                figures.update({"rss_before_mib": before["VmRSS"],
                                "rss_after_mib": after["VmRSS"], "hwm_mib": after["VmHWM"]})
                rows.append(("floor (canned answers)" if floor else "local Batch service",
                             figures))
            finally:
                process.terminate()
                process.wait(timeout=60)
    print("Python %s, %d tasks" % (sys.version.split()[0], args.tasks))
    keys = ["add_s", "list_s", "cpu_s", "get_per_s", "list_pages_per_s", "rss_before_mib",
            "rss_after_mib", "hwm_mib"]
    print("%-24s" % "" + "".join("%18s" % k for k in keys))
    for name, figures in rows:
        print("%-24s" % name + "".join("%18.2f" % figures[k] for k in keys))
    service, floor = rows[0][1], rows[1][1]
    print("service / floor: add %.2fx, list %.2fx, get rate %.2fx, list rate %.2fx" % (
        service["add_s"] / floor["add_s"], service["list_s"] / floor["list_s"],
        service["get_per_s"] / floor["get_per_s"],
        service["list_pages_per_s"] / floor["list_pages_per_s"]))
    print("service memory per task: %.1f KiB" % (
        (service["rss_after_mib"] - service["rss_before_mib"]) * 1024.0 / args.tasks))


# -- the floor: the same server, canned answers ----------------------------------------------

def floor_server(env_file: str, tasks: int) -> None:
    """An HTTPS server of the emulators' kind answering like the service, from canned JSON."""
    import signal

    from worker.emulators.batch.service import new_key
    from worker.emulators.server import EmulatorServer, Response
    from worker.emulators.tls import make_tls

    folder = tempfile.mkdtemp()
    tls = make_tls(folder)
    task = json.dumps({"id": "00000", "url": "x" * 60, "eTag": "0x8D0", "state": "active",
                       "commandLine": "c" * 70, "constraints": {}, "executionInfo": {},
                       "creationTime": "2026-01-01T00:00:00.000000Z"}).encode()
    page = b'{"value":[' + b",".join([task] * 1000) + b'],"odata.nextLink":"x"}'
    created = json.dumps({"value": [{"status": "success", "taskId": "%05d" % n,
                                     "eTag": "0x8D0", "location": "x" * 60}
                                    for n in range(100)]}).encode()

    class App:
        service = "floor"

        def operation(self, request: Any) -> str:
            return "floor"

        def error(self, request: Any, status: int, code: str, message: str) -> Any:
            return Response(status, [], b"")

        def handle(self, request: Any, operation: str) -> Any:
            json.loads(request.body or b"null")  # read the body as the service does
            if request.method == "POST":
                body = created if request.raw_path.endswith("collection") else b""
                return Response(200 if body else 201, [("Content-Type", "application/json")],
                                body)
            skip = int(request.query.get("$skiptoken", "0"))
            last = skip + 1000 >= tasks
            body = (page.replace(b',"odata.nextLink":"x"', b"") if last else page) \
                if request.raw_path.endswith("/tasks") else task
            return Response(200, [("Content-Type", "application/json")], body)

    server = EmulatorServer(App(), 0, tls.context).start()
    Path(env_file).write_text("AZURE_BATCH_ENDPOINT=%s\nAZURE_BATCH_ACCOUNT=floor\n"
                              "AZURE_BATCH_ACCESS_KEY=%s\nREQUESTS_CA_BUNDLE=%s\n"
                              % (server.base_url, new_key(), tls.ca_path))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()


# -- the scheduler -------------------------------------------------------------------------------

def part_scheduler(args: argparse.Namespace) -> None:
    rows = []
    for _ in range(args.repeat):
        rows.append(("bare threads", _bare(args.tasks, args.slots)))
        rows.append(("scheduler", _scheduled(args.tasks, args.slots)))
    print("Python %s, %d tasks of /bin/true, %d slots on one node, %d repeats"
          % (sys.version.split()[0], args.tasks, args.slots, args.repeat))
    for name in ("bare threads", "scheduler"):
        walls = sorted(w for n, (w, _) in rows if n == name)
        cpus = sorted(c for n, (_, c) in rows if n == name)
        print("%-14s wall %.2f s (median), own CPU %.2f s (median), per task %.2f ms wall, "
              "%.2f ms CPU" % (name, walls[len(walls) // 2], cpus[len(cpus) // 2],
                               1000 * walls[len(walls) // 2] / args.tasks,
                               1000 * cpus[len(cpus) // 2] / args.tasks))
    bare = sorted(w for n, (w, _) in rows if n == "bare threads")[len(rows) // 4]
    sched = sorted(w for n, (w, _) in rows if n == "scheduler")[len(rows) // 4]
    print("scheduler over bare: %.2f ms per task of wall time (x%d slots: %.2f ms per slot "
          "turn), ratio %.2fx" % (1000 * (sched - bare) / args.tasks, args.slots,
                                  1000 * (sched - bare) * args.slots / args.tasks,
                                  sched / bare))


def _bare(tasks: int, slots: int) -> Tuple[float, float]:
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> None:
        subprocess.run(["/bin/true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, start_new_session=True)

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(slots) as pool:
        list(pool.map(one, range(tasks)))
    return time.perf_counter() - started, time.process_time() - cpu


def _scheduled(tasks: int, slots: int) -> Tuple[float, float]:
    from worker.deploy.localbatch.documents import Job, Task
    from worker.deploy.localbatch.scheduler import Host, JobRun, Scheduler

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        job = Job(id="bench", pool_id="pool", environment={}, uses_dependencies=False,
                  on_task_failure="noaction")
        runs = [Task(id=str(n), command_line="/bin/true", argv=["/bin/true"], environment={},
                     required_slots=1, max_wall_clock=None, max_wall_clock_text=None,
                     max_retries=0, exit_conditions={}) for n in range(tasks)]

        def prepare(job_run: Any, run: Any, host: Any) -> Tuple[Path, Dict[str, str]]:
            return root / run.task.id, {"PATH": "/usr/bin:/bin"}

        scheduler = Scheduler(prepare, [Host("node", slots)])
        job_run = JobRun(job, runs)
        scheduler.jobs.append(job_run)
        started, cpu = time.perf_counter(), time.process_time()
        scheduler.run_job(job_run, threading.Event())
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        assert all(r.state == "succeeded" for r in job_run.runs)
        return wall, used


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("service", "scheduler"), default="service")
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--floor-server", metavar="ENV_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_server:
        floor_server(args.floor_server, args.tasks)
    elif args.part == "service":
        part_service(args)
    else:
        part_scheduler(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

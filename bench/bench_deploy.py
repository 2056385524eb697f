"""The deploy loop against the local Batch service: ``deploy`` of a 10,000-task fan-out (time,
requests, peak memory) beside azure-batch's own ``create_tasks`` helper adding the same
documents, the same deploy run again (nothing left to add), and ``status``'s requests per
refresh on the 10,000-task job beside listing every task at each refresh.

    .ci-venvs/py312/bin/python bench/bench_deploy.py [--tasks 10000] [--repeat 3]

The service runs as ``python -m worker emulate --batch`` (a process of its own, as a user
runs it), with a small package in the account; ``deploy`` runs as a process with only the
emulators' env file, creating a pool of 0 nodes through the account plane (so no task runs:
this measures the deploy, not the tasks). ``create_tasks`` (azure-batch 15.1,
``max_concurrency=4``, the concurrency deploy uses) runs in this process with the account
key. For status, 100 of the tasks are made to fail (terminated) and one refresh reads their
reasons once; the refreshes after read only what changed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SPEC = """
[package]
app = "bench"
version = "1.0.0"

[pool]
id = "benchpool"
nodes = 0
identity = "%s"
client_id = "11111111-1111-1111-1111-111111111111"

[job]
id = "%s"

[tasks]
items = { range = [1, %d] }
command = ["run", "handlers.daily:partition", "--param", "n={item}", "--param", "day=2024-01-31"]
timeout = 600
"""


IDENTITY = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local-rg/"
            "providers/Microsoft.ManagedIdentity/userAssignedIdentities/bench")


def start_service(work: Path) -> subprocess.Popen:
    package = work / "bench.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("manifest.json", json.dumps({"name": "bench", "version": "1.0.0"}))
        archive.writestr("task.sh", "exit 0\n")
        archive.writestr("starttask.sh", "exit 0\n")
    env_file = work / "emulators.env"
    service = subprocess.Popen(
        [sys.executable, "-m", "worker", "emulate", "--batch", "--quiet", "--batch-package",
         str(package), "--env-file", str(env_file), "--lake-port", "0", "--vault-port", "0",
         "--identity-port", "0", "--batch-port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not env_file.exists():
        if service.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("emulate --batch did not start")
        time.sleep(0.1)
    return service


def environment(work: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "WORKER_"))}
    for line in (work / "emulators.env").read_text().splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            env[name] = value
    env.pop("WORKER_LAKE_URL", None)  # no merge: no items file
    return env


def deploy(work: Path, env: Dict[str, str], job: str, tasks: int) -> Dict[str, Any]:
    spec = work / ("%s.toml" % job)
    spec.write_text(SPEC % (IDENTITY, job, tasks))
    out, err = work / ("%s.out" % job), work / ("%s.err" % job)
    started = time.perf_counter()
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "worker", "deploy", "--spec", str(spec)],
                                stdout=stdout, stderr=stderr, env=env)
        _, status, used = os.wait4(proc.pid, 0)  # this process's own peak memory and CPU
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(out.read_text() + err.read_text())
    stdout_text = out.read_text()
    adds = int(re.search(r"\((\d+) requests\)", stdout_text).group(1))
    total = re.search(r"requests (\d+) to the Batch account, (\d+) to its account plane",
                      stdout_text)
    return {"seconds": seconds, "task_requests": adds, "batch_requests": int(total.group(1)),
            "account_requests": int(total.group(2)), "max_rss_mb": used.ru_maxrss / 1024,
            "cpu": used.ru_utime + used.ru_stime}


def sdk_create_tasks(env: Dict[str, str], job: str, tasks: int, spec_job: str) -> Dict[str, Any]:
    """azure-batch's create_tasks over the same task documents, into a job of its own."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    count = [0]

    class Count(SansIOHTTPPolicy):
        def on_request(self, request: Any) -> None:
            count[0] += 1

    client = BatchClient(env["AZURE_BATCH_ENDPOINT"],
                         AzureNamedKeyCredential(env["AZURE_BATCH_ACCOUNT"],
                                                 env["AZURE_BATCH_ACCESS_KEY"]),
                         connection_verify=env["REQUESTS_CA_BUNDLE"],
                         per_retry_policies=[Count()])
    documents = [t.as_dict() for t in client.list_tasks(spec_job, select=[
        "id", "displayName", "commandLine", "environmentSettings", "constraints",
        "requiredSlots", "exitConditions"])]
    client.create_job({"id": job, "poolInfo": {"poolId": "benchpool"}})
    count[0] = 0
    started = time.perf_counter()
    client.create_tasks(job, documents, max_concurrency=4)
    seconds = time.perf_counter() - started
    client.close()
    assert len(documents) == tasks
    return {"seconds": seconds, "requests": count[0]}


def status_refreshes(env: Dict[str, str], job: str, failed: int) -> Dict[str, Any]:
    """Requests per refresh of ``status`` (worker.deploy.cloud.status.JobView) and of a
    full listing, with ``failed`` tasks terminated first."""
    import logging

    logging.getLogger("azure").setLevel(logging.ERROR)  # as the commands do
    os.environ.update(env)
    from worker.deploy.cloud.account import Clients, resolve
    from worker.deploy.cloud.status import JobView

    clients = Clients(resolve(environ=env), env)
    for n in range(1, failed + 1):
        clients.batch.terminate_task(job, str(n))
    view = JobView(clients, job)
    rounds = []
    for _ in range(4):
        before = clients.requests["batch"]
        started = time.perf_counter()
        snap = view.refresh()
        rounds.append((clients.requests["batch"] - before, time.perf_counter() - started))
    before = clients.requests["batch"]
    started = time.perf_counter()
    listed = sum(1 for _ in clients.batch.list_tasks(job, select=["id", "state",
                                                                  "executionInfo"]))
    full = (clients.requests["batch"] - before, time.perf_counter() - started)
    clients.close()
    return {"refreshes": rounds, "full_listing": full, "listed": listed,
            "failed_seen": snap.failed, "total": snap.total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--failed", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    service = start_service(work)
    try:
        env = environment(work)
        small = deploy(work, env, "small", 100)  # the memory of a deploy with few tasks
        runs, again, sdk = [], [], []
        for n in range(args.repeat):
            runs.append(deploy(work, env, "deploy-%d" % n, args.tasks))
            again.append(deploy(work, env, "deploy-%d" % n, args.tasks))
            sdk.append(sdk_create_tasks(env, "sdk-%d" % n, args.tasks, "deploy-%d" % n))
            print("run %d: deploy %.1f s, again %.1f s, create_tasks %.1f s"
                  % (n + 1, runs[-1]["seconds"], again[-1]["seconds"], sdk[-1]["seconds"]),
                  flush=True)
        watch = status_refreshes(env, "deploy-0", args.failed)
    finally:
        service.terminate()
        service.wait(timeout=60)
    report(args, runs, again, sdk, watch, small)


def report(args: Any, runs: List[Dict[str, Any]], again: List[Dict[str, Any]],
           sdk: List[Dict[str, Any]], watch: Dict[str, Any], small: Dict[str, Any]) -> None:
    def med(rows: List[Dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print("\n%d tasks, medians of %d (Python %s)" % (args.tasks, args.repeat,
                                                      sys.version.split()[0]))
    print("| | time (s) | requests to the Batch account | of which adding tasks | "
          "account plane | peak RSS (MB) | CPU (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in (("deploy (new job)", runs), ("deploy again (nothing to add)", again)):
        print("| %s | %.1f | %d | %d | %d | %.0f | %.1f |" % (
            name, med(rows, "seconds"), med(rows, "batch_requests"), med(rows, "task_requests"),
            med(rows, "account_requests"), med(rows, "max_rss_mb"), med(rows, "cpu")))
    print("| azure-batch create_tasks (max_concurrency=4), tasks only | %.1f | %d | %d | | | |"
          % (med(sdk, "seconds"), med(sdk, "requests"), med(sdk, "requests")))
    print("| deploy of 100 tasks (for the memory of the rest) | %.1f | %d | %d | %d | %.0f | "
          "%.1f |" % (small["seconds"], small["batch_requests"], small["task_requests"],
                      small["account_requests"], small["max_rss_mb"], small["cpu"]))
    print("deploy's adding vs create_tasks: %.2fx the time (deploy includes Python start-up, "
          "the spec, the package and pool checks and the job)"
          % (med(runs, "seconds") / med(sdk, "seconds")))
    print("\nstatus on the %d-task job, %d tasks failed (terminated):" % (
        watch["total"], watch["failed_seen"]))
    for n, (requests, seconds) in enumerate(watch["refreshes"], 1):
        print("  refresh %d: %d requests, %.2f s" % (n, requests, seconds))
    print("  a full listing of the tasks instead: %d requests, %.2f s for %d tasks"
          % (watch["full_listing"][0], watch["full_listing"][1], watch["listed"]))


if __name__ == "__main__":
    main()

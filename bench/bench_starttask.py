"""Provisioning benchmark: today's start-task pattern vs starttask.sh vs the uv floor.

    .ci-venvs/py312/bin/python bench/bench_starttask.py [--repeat 3] [--node-python 3.12]

Each repetition runs, in turn and with cold caches (fresh venvs, fresh uv caches, pip with
--no-cache-dir; the OS page cache is not dropped):
  today     pythonX.Y -m venv, then one `pip install pkg==ver` per top-level package, in
            sequence, from PyPI (the pattern the start task replaces)
  starttask starttask.sh from the wheelhouse (uv from its wheel, hashes, bytecode, doctor)
  pip       the same with WORKER_INSTALLER=pip (the fallback; shows what uv buys)
  floor     bare `uv venv` + `uv pip install --no-index --compile-bytecode` of the same lock
            from the same wheelhouse
then times reruns of starttask.sh on the provisioned node (the stamp fast path). The node's
Python is 3.8 (locks/py38.txt) unless --node-python 3.12 (locks/py312.txt, Ubuntu 24.04's).
The wheelhouse is cached in .ci-venvs/wheelhouse-pyXY-*, downloaded if missing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "bootstrap" / "tools.txt"
sys.path.insert(0, str(REPO / "bootstrap"))

import wheelhouse  # noqa: E402

#: The five top-level packages, at the pins of the node's lock.
TOP_LEVEL = (
    "azure-identity",
    "azure-storage-file-datalake",
    "azure-keyvault-secrets",
    "duckdb",
    "pyarrow",
)


def lock_of(version: str) -> Path:
    return REPO / "locks" / ("py%s.txt" % version.replace(".", ""))


def pins(lock: Path) -> List[str]:
    versions: Dict[str, str] = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            versions[name] = version
    return ["%s==%s" % (name, versions[name]) for name in TOP_LEVEL]


def clean_env(**extra: str) -> Dict[str, str]:
    """No PIP_/UV_ settings and no pip config files: what a fresh node has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    if "PIP_CERT" in os.environ:
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    env.update(extra)
    return env


def timed(command: List[str], env: Dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def today(python: Path, lock: Path, work: Path) -> float:
    venv = work / "venv"
    seconds = timed([str(python), "-m", "venv", str(venv)], clean_env())
    for pin in pins(lock):
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-cache-dir", pin]
        seconds += timed(pip, clean_env())
    return seconds


def starttask(python: Path, version: str, wheels: Path, root: Path,
              installer: str = "auto") -> float:
    env = clean_env(
        WORKER_PYTHON_VERSION=version,
        WORKER_PYTHON=str(python),
        WORKER_WHEELHOUSE=str(wheels),
        WORKER_ENV_ROOT=str(root),
        WORKER_INSTALLER=installer,
    )
    return timed(["bash", str(REPO / "starttask.sh")], env)


def floor(python: Path, lock: Path, wheels: Path, uv: Path, work: Path) -> float:
    env = clean_env(UV_CACHE_DIR=str(work / "cache"), UV_PYTHON_DOWNLOADS="never")
    venv = work / "venv"
    seconds = timed([str(uv), "venv", "--quiet", "--python", str(python), str(venv)], env)
    install = [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    install += ["--no-index", "--find-links", str(wheels), "--compile-bytecode"]
    install += ["--require-hashes", "--no-deps", "-r", str(lock)]
    return seconds + timed(install, env)


def prepare_wheels(python: Path, version: str, work: Path) -> Path:
    """The cached wheelhouse of the node's lock plus a worker wheel built from this checkout."""
    lock = lock_of(version)
    key = hashlib.sha256(lock.read_bytes() + TOOLS.read_bytes()).hexdigest()[:12]
    cache = REPO / ".ci-venvs" / ("wheelhouse-%s-%s" % (lock.stem, key))
    if not cache.is_dir():
        wheelhouse.download(str(python), [lock, TOOLS], version, cache)
    wheels = work / "wheels"
    shutil.copytree(str(cache), str(wheels))
    uv = work / "uv"
    wheelhouse.extract_uv(next(wheels.glob("uv-*.whl")), uv)
    build = [str(uv), "build", "--quiet", "--wheel", "--out-dir", str(wheels), str(REPO)]
    subprocess.run(build, check=True)
    return wheels


def run(args: argparse.Namespace) -> Dict[str, List[float]]:
    version = args.node_python
    python = Path(args.python or default_python(version))
    lock = lock_of(version)
    results: Dict[str, List[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-starttask-") as tmp:
        work = Path(tmp)
        wheels = prepare_wheels(python, version, work)
        uv = work / "uv"
        methods: Dict[str, Callable[[Path], float]] = {
            "today": lambda d: today(python, lock, d),
            "starttask": lambda d: starttask(python, version, wheels, d / "root"),
            "pip": lambda d: starttask(python, version, wheels, d / "root", "pip"),
            "floor": lambda d: floor(python, lock, wheels, uv, d),
        }
        for repetition in range(args.repeat):
            for name, method in methods.items():
                scratch = work / ("%s-%d" % (name, repetition))
                scratch.mkdir()
                os.sync()  # the previous method's writeback must not slow this one
                results.setdefault(name, []).append(method(scratch))
                print("%-9s %6.2f s" % (name, results[name][-1]), file=sys.stderr)
                if name != "starttask":
                    shutil.rmtree(str(scratch))
        root = work / "starttask-0" / "root"
        results["rerun"] = [starttask(python, version, wheels, root)
                            for _ in range(args.reruns)]
    return results


def report(results: Dict[str, List[float]]) -> str:
    median = {name: statistics.median(times) for name, times in results.items()}
    rows = [
        ("today's pattern: venv + 5 sequential `pip install pkg==ver`", "today"),
        ("`starttask.sh` from the wheelhouse (uv)", "starttask"),
        ("`starttask.sh` from the wheelhouse, `WORKER_INSTALLER=pip`", "pip"),
        ("floor: `uv venv` + `uv pip install --no-index --compile-bytecode`", "floor"),
        ("`starttask.sh` rerun (stamp fast path)", "rerun"),
    ]
    lines = [
        "| method | median (s) | runs (s) |",
        "| --- | --- | --- |",
    ]
    for label, name in rows:
        runs = ", ".join("%.2f" % t for t in results[name])
        lines.append("| %s | %.2f | %s |" % (label, median[name], runs))
    lines += [
        "",
        "- today / starttask: **%.1fx** faster (goal >= 4x)"
        % (median["today"] / median["starttask"]),
        "- starttask / floor: **%.2fx** (goal <= 1.5x)" % (median["starttask"] / median["floor"]),
        "- pip fallback / starttask with uv: %.1fx" % (median["pip"] / median["starttask"]),
        "- rerun: **%.3f s** median, %.3f s worst of %d (goal < 0.5 s)"
        % (median["rerun"], max(results["rerun"]), len(results["rerun"])),
    ]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reruns", type=int, default=10)
    parser.add_argument("--node-python", default="3.8", choices=("3.8", "3.12"),
                        help="the nodes' Python, whose lock is provisioned (default 3.8)")
    parser.add_argument("--python", help="the interpreter of that version (default pyenv's)")
    args = parser.parse_args(argv)
    print(report(run(args)))
    return 0


def default_python(version: str) -> str:
    found = sorted(Path.home().glob(".pyenv/versions/%s.*/bin/python%s" % (version, version)))
    return str(found[-1]) if found else "python" + version


if __name__ == "__main__":
    sys.exit(main())

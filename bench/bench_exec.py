"""Legacy programs: ``python -m worker exec`` against a hand-written SDK loop, on the emulator.

One run starts ``python -m worker emulate`` (its own process; ``--latency-ms`` is added to
every lake request, server side, so waits of parallel requests overlap as on a network),
then measures two jobs side by side, each ``--repeat`` times in rotating order (medians):

- ``--files`` small files (``--file-kib`` KiB) copied by ``cp``: ``exec`` with its default
  ``--parallel`` (the task's share of the cores) against ``bench/sdk_loop.py`` (list, then
  per file: download, run, upload, with the plain Azure SDK);
- ``--clips`` MP4 clips (testsrc2, 640x360, ``--clip-seconds`` long) converted to AVI by
  ffmpeg: ``exec --parallel 2`` against the same loop.

Both sides are fresh processes every time (interpreter start, imports and token included on
both sides), and both end with every output in the lake (``exec``'s after its commit).

    python bench/bench_exec.py [--files 200] [--file-kib 4] [--clips 20] [--clip-seconds 5]
                               [--repeat 3] [--latency-ms 10] [--link-mbps N]

``--link-mbps`` adds the emulators' shared link (a Standard_D2a_v4 node: 2000). The cp job
is also compared with its physical bound: its bytes down and up at the link's rate plus the
requests that must follow one another (``bench/physical.py``); CPU per MB is the worker's
process tree's (the programs' included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Dict, List

import bench_lake
from bench_lake import measure, sdk_client, start_lake_emulator
from physical import Link

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Job:
    """One job on one file system: the commands of both sides and their checks."""

    def __init__(self, fs, env: Dict[str, str], account_url: str, tmp: Path) -> None:
        self.fs, self.env, self.account_url, self.tmp = fs, env, account_url, tmp

    def exec_(self, pattern: str, output: str, program: List[str], *options: str):
        def run() -> None:
            self._run([sys.executable, "-m", "worker", "exec", "--input", pattern, "--output",
                       output, "--result", str(self.tmp / "result.json"), *options, "--",
                       *program])
        return run

    def sdk_loop(self, folder: str, suffix: str, output: str, ext: str, program: List[str]):
        def run() -> None:
            self._run([sys.executable, str(ROOT / "bench" / "sdk_loop.py"), self.account_url,
                       self.fs.file_system_name, folder, suffix, output, ext, "--", *program])
        return run

    def count(self, folder: str) -> int:
        return sum(1 for p in self.fs.get_paths(folder) if not p.is_directory)

    def cleanup(self, *folders: str) -> None:
        for folder in folders:
            if self.fs.get_directory_client(folder).exists():
                self.fs.get_directory_client(folder).delete_directory()

    def _run(self, command: List[str]) -> None:
        proc = subprocess.run(command, env=self.env, cwd=str(self.tmp), capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{command[1:4]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def seed(lake, folder: str, files: Dict[str, bytes]) -> None:
    for name, data in files.items():
        lake.write_bytes(f"{folder}/{name}", data)
    lake.commit()


def small_files(job: Job, lake, args, results: Dict[str, float]) -> None:
    seed(lake, "small", {f"f{i:04}.bin": os.urandom(args.file_kib * 1024)
                         for i in range(args.files)})
    n = args.files
    exec_run = job.exec_("small/*.bin", "small-exec", ["cp", "{input}", "{output_dir}/{name}"])
    loop = job.sdk_loop("small", ".bin", "small-sdk", ".bin", ["cp", "{input}", "{output}"])

    def checked(run, folder):
        def case() -> None:
            run()
            assert job.count(folder) == n, f"{folder}: {job.count(folder)} of {n}"
        return case

    measure({f"cp {n} files: SDK loop, one at a time": checked(loop, "small-sdk"),
             f"cp {n} files: exec (default --parallel)": checked(exec_run, "small-exec")},
            lambda: job.cleanup("small-exec", "small-sdk"), args.repeat, results,
            2 * n * args.file_kib * 1024)


def clips(job: Job, lake, args, results: Dict[str, float]) -> None:
    folder = job.tmp / "clips"
    folder.mkdir()
    clip = folder / "clip.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=duration={args.clip_seconds}:size=640x360:rate=25",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)
    data = clip.read_bytes()
    seed(lake, "clips", {f"clip-{i:02}.mp4": data for i in range(args.clips)})
    n = args.clips
    ffmpeg = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"]
    exec_run = job.exec_("clips/*.mp4", "avi-exec", ffmpeg + ["{input}",
                                                              "{output_dir}/{stem}.avi"],
                         "--parallel", "2")
    loop = job.sdk_loop("clips", ".mp4", "avi-sdk", ".avi", ffmpeg + ["{input}", "{output}"])

    def checked(run, out):
        def case() -> None:
            run()
            assert job.count(out) == n, f"{out}: {job.count(out)} of {n}"
        return case

    label = f"{n} clips of {args.clip_seconds}s ({len(data) // 1024} KiB)"
    measure({f"ffmpeg {label}: SDK loop, one at a time": checked(loop, "avi-sdk"),
             f"ffmpeg {label}: exec --parallel 2": checked(exec_run, "avi-exec")},
            lambda: job.cleanup("avi-exec", "avi-sdk"), args.repeat, results, n * len(data))


#: Requests of the cp job that must follow one another: the listing, the downloads and the
#: uploads (each a parallel wave), the commit's claim, record, folder move and clean-up.
CP_SERIAL = 8


def ratios(results: Dict[str, float], args) -> None:
    print("ratios of medians (higher is better for exec):")
    for job in ("cp", "ffmpeg"):
        loop = next(v for k, v in results.items() if k.startswith(job) and "SDK loop" in k)
        ours = next(v for k, v in results.items() if k.startswith(job) and "exec" in k)
        print(f"  {job}: exec vs SDK loop   {loop / ours:6.2f}x")
    link = Link(args.link_mbps, args.latency_ms)
    bound = link.bound(2 * args.files * args.file_kib * 1024, CP_SERIAL)
    ours = next(v for k, v in results.items() if k.startswith("cp") and "exec" in k)
    print(f"  cp: exec vs its physical bound {ours / bound:6.2f}x (bound {bound:.2f} s: "
          f"{link.describe()}; the rest is start-up, imports and the token)")


def worker_env(env: Dict[str, str], lake_url: str) -> Dict[str, str]:
    """The emulators' environment for a worker process, off Batch."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "AZ_BATCH_"))}
    clean.update(env)
    clean.update(WORKER_LAKE_URL=lake_url, PYTHONPATH=str(ROOT))
    return clean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-kib", type=int, default=4)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--clip-seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (median)")
    parser.add_argument("--latency-ms", type=float, default=10,
                        help="added to every lake request by the emulator (default 10)")
    parser.add_argument("--link-mbps", type=float, default=None,
                        help="one link shared by all connections (default: unlimited)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-exec-"))
    proc, env = start_lake_emulator(tmp, args.latency_ms, args.link_mbps)
    bench_lake.SERVER_PID = proc.pid
    try:
        os.environ.update(env)
        from worker.config import Config
        from worker.lake import Lake, open_store
        from worker.resources import task_budget

        filesystem = "bench-" + uuid.uuid4().hex[:8]
        fs = sdk_client(env, filesystem)
        fs.create_file_system()
        account_url = env["WORKER_LAKE_URL"].rsplit("/", 1)[0]
        config = Config.from_env(dict(os.environ, WORKER_LAKE_URL=f"{account_url}/{filesystem}"))
        lake = Lake(open_store(config.lake_url, config=config), "bench-seed",
                    concurrency=config.transfer_concurrency)
        job = Job(fs, worker_env(env, config.lake_url), account_url, tmp)
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, emulator latency "
              f"{args.latency_ms:g} ms/request; exec's default --parallel "
              f"{task_budget(config).threads}; {shutil.which('ffmpeg')}", flush=True)
        results: Dict[str, float] = {}
        small_files(job, lake, args, results)
        clips(job, lake, args, results)
        ratios(results, args)
        lake.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

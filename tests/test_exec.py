"""``python -m worker exec`` end to end: real ffmpeg (Debian's package) converting MP4 clips
from the emulated Data Lake to AVI, run as Batch-like tasks in real processes.

Every AVI that lands in the lake is checked with ffprobe (an AVI with a video stream of the
clip's length); failures commit nothing (with --keep-partial exactly the others); SIGTERM
leaves nothing at the final paths and no program running; a secret passed with
--secret-env reaches the program's environment and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
from reliability.reliability_support import run, staging, start, task_env
from support import last_line

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg is not installed (.ci/run installs it: apt-get install -y ffmpeg)")

CLIPS = {"clip one.mp4": 1, "été 2.mp4": 2, "plain.mp4": 1}
CONVERT = ["--", "ffmpeg", "-nostdin", "-hide_banner", "-y", "-i", "{input}",
           "{output_dir}/{stem}.avi"]


def make_clip(path: Path, seconds: int) -> bytes:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc=duration={seconds}:size=160x120:rate=10", "-pix_fmt", "yuv420p",
                    str(path)], check=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Dict[str, bytes]:
    folder = tmp_path_factory.mktemp("clips")
    return {name: make_clip(folder / name, seconds) for name, seconds in CLIPS.items()}


def seed(emulators, filesystem: str, files: Dict[str, bytes], folder: str = "videos/in"):
    for name, data in files.items():
        emulators.seed_file(filesystem, f"{folder}/{name}", data)


def lake_files(emulators, filesystem: str, prefix: str) -> Dict[str, bytes]:
    nodes = emulators.set.lake_app.store.filesystems[filesystem].paths
    return {path: bytes(node.data) for path, node in sorted(nodes.items())
            if path.startswith(prefix) and not node.is_dir}


def exec_task(emulator_env, tmp_path, *args: str, task: str = "t"):
    env = task_env(emulator_env, tmp_path, "exec", task)
    proc = run(["exec", *args], env, timeout=180)
    record = json.loads((tmp_path / "exec" / task / "wd" / "result.json").read_text())
    return proc, record


def probe(data: bytes, tmp_path: Path) -> dict:
    path = tmp_path / "probe.avi"
    path.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "format=format_name,duration:stream=codec_type", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def assert_valid_avi(data: bytes, seconds: float, tmp_path: Path) -> None:
    info = probe(data, tmp_path)
    assert info["format"]["format_name"] == "avi"
    assert [s["codec_type"] for s in info["streams"]] == ["video"]
    assert abs(float(info["format"]["duration"]) - seconds) < 0.15, info


def running_with(marker: bytes) -> List[bytes]:
    """Command lines of live processes holding ``marker`` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                found.append(cmdline)
    return found


def test_ffmpeg_converts_every_clip_to_a_valid_avi_of_its_length(
        tmp_path, clips, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, clips)
    seed(emulators, emulator_filesystem, {"notes.txt": b"not a clip"})
    proc, record = exec_task(emulator_env, tmp_path, "--input", "videos/in/*.mp4",
                             "--output", "videos/avi/", "--parallel", "2", *CONVERT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    avis = lake_files(emulators, emulator_filesystem, "videos/avi/")
    assert sorted(avis) == sorted(f"videos/avi/{n[:-4]}.avi" for n in CLIPS)
    for name, seconds in CLIPS.items():
        assert_valid_avi(avis[f"videos/avi/{name[:-4]}.avi"], seconds, tmp_path)
    assert record["status"] == "succeeded"
    assert record["return_value"] == {"program": "ffmpeg", "inputs": 3, "runs": 3,
                                      "outputs": 3, "parallel": 2}
    assert record["outputs"] == [
        {"path": f"videos/avi/{n[:-4]}.avi", "bytes": len(avis[f"videos/avi/{n[:-4]}.avi"]),
         "md5": hashlib.md5(avis[f"videos/avi/{n[:-4]}.avi"]).hexdigest(),
         "source": f"videos/in/{n}"} for n in sorted(CLIPS)]
    assert record["params"]["program"] == CONVERT[1:]
    for name in CLIPS:  # ffmpeg's own lines, tagged with their input
        assert f"program.ffmpeg: [videos/in/{name}] Output #0, avi, to" in proc.stderr
    assert staging(emulators, emulator_filesystem) == []


def test_a_program_failing_on_one_input_commits_nothing(
        tmp_path, clips, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, dict(clips, **{"broken.mp4": b"\x00not a video" * 64}))
    proc, record = exec_task(emulator_env, tmp_path, "--input", "videos/in/*.mp4",
                             "--output", "videos/avi/", "--parallel", "2", *CONVERT)
    assert proc.returncode == 1, proc.stderr[-3000:]
    final = last_line(proc.stderr)
    assert "exit 1" in final and "ProgramFailed: ffmpeg exited with 1 on " \
        "'videos/in/broken.mp4'; its last line: " in final, final
    assert "Invalid data found when processing input" in final
    assert "Traceback" not in proc.stderr
    assert lake_files(emulators, emulator_filesystem, "videos/avi/") == {}
    assert staging(emulators, emulator_filesystem) == []
    assert record["status"] == "failed" and record["outputs"] == []
    assert record["error"]["code"] == "program.failed"


def test_keep_partial_commits_exactly_the_inputs_that_succeeded(
        tmp_path, clips, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, dict(clips, **{"broken.mp4": b"\x00not a video" * 64}))
    proc, record = exec_task(emulator_env, tmp_path, "--input", "videos/in/*.mp4",
                             "--output", "videos/avi/", "--parallel", "2", "--keep-partial",
                             *CONVERT)
    assert proc.returncode == 1, proc.stderr[-3000:]
    final = last_line(proc.stderr)
    assert "1 of 4 runs failed: ffmpeg exited with 1 on 'videos/in/broken.mp4'" in final, final
    assert "the outputs of the other 3 are committed (--keep-partial)" in final
    avis = lake_files(emulators, emulator_filesystem, "videos/avi/")
    assert sorted(avis) == sorted(f"videos/avi/{n[:-4]}.avi" for n in CLIPS)
    for name, seconds in CLIPS.items():
        assert_valid_avi(avis[f"videos/avi/{name[:-4]}.avi"], seconds, tmp_path)
    assert record["status"] == "failed" and record["exit_code"] == 1
    assert {o["source"]: o["path"] for o in record["outputs"]} == {
        f"videos/in/{n}": f"videos/avi/{n[:-4]}.avi" for n in CLIPS}
    assert staging(emulators, emulator_filesystem) == []


@pytest.mark.parametrize("extra", [[], ["--keep-partial"]], ids=["plain", "keep-partial"])
def test_sigterm_mid_run_commits_nothing_and_leaves_no_ffmpeg(
        tmp_path, clips, emulators, emulator_filesystem, emulator_env, extra):
    long_clip = make_clip(tmp_path / "long.mp4", 30)
    seed(emulators, emulator_filesystem, {"a.mp4": long_clip, "b.mp4": long_clip,
                                          "short.mp4": clips["plain.mp4"]})
    env = task_env(emulator_env, tmp_path, "exec", "term")
    marker = str(tmp_path).encode()
    proc = start(["exec", "--input", "videos/in/*.mp4", "--output", "videos/avi/",
                  "--parallel", "2", *extra, "--", "ffmpeg", "-nostdin", "-re", "-y", "-i",
                  "{input}", "{output_dir}/{stem}.avi"], env)
    deadline = time.monotonic() + 60
    while len([c for c in running_with(marker) if c.startswith(b"ffmpeg")]) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)  # both are converting
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    assert running_with(marker) == [], "no program outlives the task"
    assert "stopping ffmpeg (the task is stopping): SIGTERM to its process group" in err
    assert "exit 143 (stopped by SIGTERM)" in last_line(err)
    assert lake_files(emulators, emulator_filesystem, "videos/avi/") == {}
    assert staging(emulators, emulator_filesystem) == []
    record = json.loads((tmp_path / "exec" / "term" / "wd" / "result.json").read_text())
    assert record["status"] == "cancelled" and record["outputs"] == []


def test_a_program_ignoring_sigterm_is_killed_after_the_grace_with_its_children(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, {"a.txt": b"a", "b.txt": b"b"})
    env = task_env(emulator_env, tmp_path, "exec", "stubborn")
    proc = start(["exec", "--input", "videos/in/*.txt", "--output", "out", "--parallel", "2",
                  "--grace", "1", "--", "sh", "-c",
                  "trap '' TERM; sleep 3017 & touch \"$1.started\"; wait", "sh", "{input}"],
                 env)
    task_dir = tmp_path / "exec" / "stubborn"
    deadline = time.monotonic() + 60
    while len(list(task_dir.rglob("*.started"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    assert running_with(b"sleep\x003017") == []
    assert "exit 143 (stopped by SIGTERM)" in last_line(err)
    assert lake_files(emulators, emulator_filesystem, "out/") == {}


def test_a_secret_reaches_the_program_only_as_an_environment_variable(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    canary = "canary-7d1e0b42-exec-do-not-leak"
    emulators.seed_secret("api-token", canary)
    seed(emulators, emulator_filesystem, {"a.txt": b"a"})
    script = ('echo "stdout: $API_TOKEN"; echo "stderr: $API_TOKEN" >&2; '
              'cat /proc/$$/cmdline > "$1/program-cmdline"; '
              'cat /proc/$PPID/cmdline > "$1/harness-cmdline"; '
              'printf %s "$API_TOKEN" | wc -c > "$1/length"')
    proc, record = exec_task(emulator_env, tmp_path, "--input", "videos/in/a.txt", "--output",
                             "out", "--secret-env", "API_TOKEN=api-token", "--", "sh", "-c",
                             script, "sh", "{output_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[videos/in/a.txt] stdout: ***" in proc.stderr
    assert "[videos/in/a.txt] stderr: ***" in proc.stderr
    for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr),
                       ("result.json", json.dumps(record))):
        assert canary not in text, f"the secret is in {name}"
    lake = lake_files(emulators, emulator_filesystem, "")
    assert int(lake["out/length"]) == len(canary), "the program had the value"
    assert b"api-token" in lake["out/harness-cmdline"], "the harness's argv names the secret"
    for path, data in lake.items():
        assert canary.encode() not in data, f"the secret is in {path}"
    for path in (tmp_path / "exec").rglob("*"):
        assert not path.is_file() or canary.encode() not in path.read_bytes()


ARGV_DUMP = ("import json, os, sys; out = sys.argv[1]; "
             "json.dump({'argv': sys.argv[2:], 'exists': os.path.exists(sys.argv[2])}, "
             "open(os.path.join(out, sys.argv[3] + '.json'), 'w', encoding='utf-8'))")


def test_placeholders_with_spaces_and_non_ascii_names_survive(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, {"été 1.tar.gz": b"x", "a  b.txt": b"y"},
         folder="in/ünï code")
    proc, record = exec_task(
        emulator_env, tmp_path, "--input", "in/ünï code/*", "--output", "dumps", "--",
        sys.executable, "-c", ARGV_DUMP, "{output_dir}", "{input}", "{stem}", "{name}",
        "{ext}", "{input_dir}", "{{literal}}", "{a: 1}", "-o={stem}.x")
    assert proc.returncode == 0, proc.stderr[-3000:]
    dumps = lake_files(emulators, emulator_filesystem, "dumps/")
    assert sorted(dumps) == ["dumps/a  b.json", "dumps/été 1.tar.json"]
    got = json.loads(dumps["dumps/été 1.tar.json"])
    assert got["exists"] is True
    local, stem, name, ext, folder, *rest = got["argv"]
    assert local.endswith("/in/in/ünï code/été 1.tar.gz")
    assert (stem, name, ext) == ("été 1.tar", "été 1.tar.gz", ".gz")
    assert folder == str(Path(local).parent)
    assert rest == ["{literal}", "{a: 1}", "-o=été 1.tar.x"]
    assert {o["source"] for o in record["outputs"]} == {"in/ünï code/été 1.tar.gz",
                                                        "in/ünï code/a  b.txt"}


def test_once_runs_the_program_once_with_every_input(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, {"b 2.txt": b"two\n", "a 1.txt": b"one\n"})
    seed(emulators, emulator_filesystem, {"c.txt": b"three\n"}, folder="other")
    proc, record = exec_task(
        emulator_env, tmp_path, "--input", "videos/in/*.txt", "--input", "other/c.txt",
        "--output", "joined", "--once", "--", "sh", "-c",
        'out="$1"; shift; cat "$@" > "$out/all.txt"; echo $# > "$out/count"', "sh",
        "{output_dir}", "{inputs}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    joined = lake_files(emulators, emulator_filesystem, "joined/")
    assert joined == {"joined/all.txt": b"three\none\ntwo\n", "joined/count": b"3\n"}
    assert record["return_value"]["runs"] == 1
    assert all("source" not in o for o in record["outputs"])


def test_pass_exit_code_ends_the_task_with_the_programs_own_code(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, {"a.txt": b"a", "b.txt": b"b"})
    proc, record = exec_task(emulator_env, tmp_path, "--input", "videos/in/*.txt", "--output",
                             "out", "--pass-exit-code", "--parallel", "1", "--", "sh", "-c",
                             'case "$1" in *b.txt) echo "no b" >&2; exit 9;; esac; '
                             'cp "$1" "$2"', "sh", "{input}", "{output_dir}/{name}")
    assert proc.returncode == 9, proc.stderr[-3000:]
    assert record["exit_code"] == 9 and record["outputs"] == []
    assert "sh exited with 9 on 'videos/in/b.txt'; its last line: no b" in last_line(proc.stderr)
    assert lake_files(emulators, emulator_filesystem, "out/") == {}


def test_the_example_converts_its_clips_with_exec_and_with_the_python_api():
    script = Path(__file__).resolve().parent.parent / "examples" / "legacy" / "convert.sh"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKER_", "AZ_BATCH_"))}
    proc = subprocess.run(["bash", str(script)], env=dict(env, PYTHON=sys.executable),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listing = proc.stdout.split("--- the lake\n")[1].split("--- exec-result.json")[0]
    for folder in ("videos/avi", "videos/avi-py"):
        for name in ("clip one", "plain", "été"):
            assert f"{folder}/{name}.avi\n" in listing
    record = json.loads(proc.stdout.split("--- exec-result.json\n")[1])
    assert {o["source"] for o in record["outputs"]} == {
        "videos/in/clip one.mp4", "videos/in/plain.mp4", "videos/in/été.mp4"}


def test_a_failure_stops_the_other_runs_and_starts_no_more(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, {f"{c}.txt": c.encode() for c in "abcde"})
    script = 'case "$1" in *b.txt) sleep 0.3; exit 5;; *a.txt) exec sleep 3019;; esac; cp "$1" "$2"'
    started = time.monotonic()
    proc, record = exec_task(emulator_env, tmp_path, "--input", "videos/in/*.txt", "--output",
                             "out", "--parallel", "2", "--", "sh", "-c", script, "sh",
                             "{input}", "{output_dir}/{name}")
    assert time.monotonic() - started < 60, "the long run was stopped, not waited for"
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "sh exited with 5 on 'videos/in/b.txt'" in last_line(proc.stderr)
    assert "[videos/in/a.txt] stopping sh (asked to stop): SIGTERM" in proc.stderr
    for later in "cde":
        assert f"[videos/in/{later}.txt] running:" not in proc.stderr
    assert running_with(b"sleep\x003019") == []
    assert record["outputs"] == [] and lake_files(emulators, emulator_filesystem, "out/") == {}


def test_the_deadline_stops_the_programs_with_exit_124(
        tmp_path, emulators, emulator_filesystem, emulator_env):
    seed(emulators, emulator_filesystem, {"a.txt": b"a", "b.txt": b"b"})
    proc, record = exec_task(emulator_env, tmp_path, "--input", "videos/in/*.txt", "--output",
                             "out", "--timeout", "3", "--grace", "1", "--", "sh", "-c",
                             'cp "$1" "$2"; exec sleep 3023', "sh", "{input}",
                             "{output_dir}/{name}")
    assert proc.returncode == 124, proc.stderr[-3000:]
    assert "exit 124 (deadline exceeded)" in last_line(proc.stderr)
    assert "stopping sh (the task is stopping): SIGTERM to its process group" in proc.stderr
    assert running_with(b"sleep\x003023") == []
    assert record["status"] == "timed_out" and record["outputs"] == []
    assert lake_files(emulators, emulator_filesystem, "out/") == {}

"""``ctx.run``, ``ctx.stage_in``, ``ctx.stage_out`` and the placeholders of ``exec``,
in-process with real programs, real process groups and real signals (the end-to-end runs
of ``python -m worker exec`` are in test_exec.py)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from worker import errors
from worker.batch import TaskInfo
from worker.cancel import Cancellation
from worker.config import Config
from worker.context import Context
from worker.legacy import placeholders
from worker.redact import forget_all


@pytest.fixture
def make_ctx(tmp_path):
    made = []

    def make(grace: float = 2.0, **env: str):
        secrets = tmp_path / "secrets.json"
        secrets.write_text(json.dumps({"api-token": "t0ken-value-for-tests"}))
        config = Config.from_env(dict(WORKER_LAKE_URL=(tmp_path / "lake").as_uri(),
                                      WORKER_SECRETS_FILE=str(secrets), **env))
        task = TaskInfo.from_env({}, cwd=tmp_path)
        cancellation = Cancellation(grace=grace)
        ctx = Context(config, task, {}, cancellation, task_key="local/test")
        made.append(ctx)
        return ctx, cancellation

    yield make
    for ctx in made:
        ctx.abort()
        ctx.close()
    forget_all()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def lines_of(caplog, name: str):
    return [r.getMessage() for r in caplog.records if r.name == name]


# -- output, exit codes, errors ------------------------------------------------------------


def test_each_line_of_both_streams_is_logged_with_its_tag(make_ctx, caplog):
    ctx, _ = make_ctx()
    caplog.set_level(logging.INFO)
    done = ctx.run(["sh", "-c", "echo out one; echo err one >&2; printf 'a\\rb\\n'; "
                    "printf 'no end'"], tag="in/x.mp4")
    assert done.returncode == 0 and done.args[0] == "sh"
    assert done.stdout is None and done.stderr is None
    logged = lines_of(caplog, "program.sh")
    for line in ("out one", "err one", "a", "b", "no end"):
        assert f"[in/x.mp4] {line}" in logged
    assert any(m.startswith("[in/x.mp4] running: sh -c") for m in logged)
    assert any(m.startswith("[in/x.mp4] sh exited with 0 after") for m in logged)
    streams = {r.getMessage(): getattr(r, "stream", None) for r in caplog.records}
    assert streams["[in/x.mp4] out one"] == "stdout"
    assert streams["[in/x.mp4] err one"] == "stderr"
    from worker.logs import JsonFormatter

    record = next(r for r in caplog.records if r.getMessage() == "[in/x.mp4] err one")
    record.job_id, record.task_id = "j", "t"
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["logger"], entry["tag"], entry["stream"]) == ("program.sh", "in/x.mp4",
                                                                 "stderr")


def test_capture_output_returns_bytes_or_text_like_subprocess(make_ctx):
    ctx, _ = make_ctx()
    done = ctx.run(["sh", "-c", "printf 'h\\303\\251'; echo e >&2"], capture_output=True)
    assert done.stdout == "hé".encode() and done.stderr == b"e\n"
    done = ctx.run(["sh", "-c", "printf 'h\\303\\251'"], capture_output=True, text=True)
    assert done.stdout == "hé"


def test_a_non_zero_exit_raises_program_failed_with_its_last_line(make_ctx):
    ctx, _ = make_ctx()
    with pytest.raises(errors.ProgramFailed) as caught:
        ctx.run(["sh", "-c", "echo working; echo 'cannot open the file' >&2; exit 3"],
                tag="in/a.mp4")
    error = caught.value
    assert str(error) == ("sh exited with 3 on 'in/a.mp4'; its last line: cannot open the "
                          "file")
    assert error.returncode == 3 and error.exit_code == 1 and error.tag == "in/a.mp4"
    assert error.cmd[0] == "sh"
    assert ctx.run(["sh", "-c", "exit 3"], check=False).returncode == 3


def test_a_program_killed_by_a_signal_exits_128_plus_it(make_ctx):
    ctx, _ = make_ctx()
    with pytest.raises(errors.ProgramKilled) as caught:
        ctx.run(["sh", "-c", "kill -KILL $$"])
    assert caught.value.exit_code == 137 and caught.value.signal_number == 9
    assert str(caught.value).startswith("sh was killed by SIGKILL; nothing in the task sent it")
    assert "OOM killer" in str(caught.value)
    with pytest.raises(errors.ProgramKilled) as caught:
        ctx.run(["sh", "-c", "echo about to crash >&2; kill -SEGV $$"])
    assert caught.value.exit_code == 139
    assert str(caught.value) == "sh was killed by SIGSEGV; its last line: about to crash"
    assert errors.exit_meaning(139) == "a program was killed by SIGSEGV"
    assert ctx.run(["sh", "-c", "kill -TERM $$"], check=False).returncode == -signal.SIGTERM


@pytest.mark.parametrize("program, error, says", [
    (["no-such-program-xyz"], errors.ProgramNotFound,
     "program 'no-such-program-xyz' not found on the PATH; install it on the node"),
    (["./missing.sh"], errors.ProgramNotFound, "program './missing.sh' not found: no such file"),
    (["/etc/passwd"], errors.ProgramNotExecutable,
     "program '/etc/passwd' is not executable (/etc/passwd lacks the execute permission)"),
    (["/tmp"], errors.ProgramNotExecutable, "program '/tmp' is a folder"),
])
def test_a_program_not_found_or_not_executable_is_a_configuration_error(
        make_ctx, program, error, says):
    ctx, _ = make_ctx()
    with pytest.raises(error) as caught:
        ctx.run(program)
    assert str(caught.value).startswith(says)
    assert caught.value.exit_code == errors.USAGE and "\n" not in str(caught.value)


def test_a_file_on_the_path_without_execute_permission_is_not_executable(make_ctx, tmp_path):
    ctx, _ = make_ctx()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "convert-it").write_text("#!/bin/sh\necho hi\n")
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(errors.ProgramNotExecutable, match="'convert-it' is not executable"):
        ctx.run(["convert-it"], env=env)


def test_a_script_whose_interpreter_is_missing_or_without_a_shebang(make_ctx, tmp_path):
    ctx, _ = make_ctx()
    script = tmp_path / "old.sh"
    script.write_text("#!/opt/nowhere/python9\nprint(1)\n")
    script.chmod(0o755)
    with pytest.raises(errors.ProgramNotFound, match="its interpreter .* is missing"):
        ctx.run([str(script)])
    binary = tmp_path / "blob"
    binary.write_bytes(b"\x7fELF\x02\x01\x01garbage that is no program")
    binary.chmod(0o755)
    with pytest.raises(errors.ProgramNotExecutable, match="exec format error"):
        ctx.run([str(binary)])


def test_a_relative_program_is_found_from_cwd(make_ctx, tmp_path):
    ctx, _ = make_ctx()
    (tmp_path / "tools").mkdir()
    script = tmp_path / "tools" / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $(pwd)\n")
    script.chmod(0o755)
    done = ctx.run(["./hello.sh"], cwd=tmp_path / "tools", capture_output=True, text=True)
    assert done.stdout.strip() == f"hello from {tmp_path / 'tools'}"


# -- process groups and stops ----------------------------------------------------------------


def test_what_a_program_leaves_running_in_its_group_is_killed_when_it_exits(make_ctx, tmp_path):
    ctx, _ = make_ctx()
    pidfile = tmp_path / "bg.pid"
    ctx.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo started"])
    pid = int(pidfile.read_text())
    wait_for(lambda: not alive(pid))


def test_a_timeout_stops_the_whole_group_with_exit_124(make_ctx, tmp_path):
    ctx, _ = make_ctx()
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(errors.ProgramTimedOut) as caught:
        ctx.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], timeout=0.5,
                tag="slow")
    assert time.monotonic() - started < 20
    assert caught.value.exit_code == 124
    assert str(caught.value).startswith("sh ran past its timeout of 0.5s on 'slow'")
    wait_for(lambda: not alive(int(pidfile.read_text())))


def test_a_stop_of_the_task_terminates_the_program_and_raises_the_stop(make_ctx, tmp_path):
    ctx, cancellation = make_ctx()
    marker = tmp_path / "got-term"
    script = f"trap 'echo term > {marker}; exit 0' TERM; while :; do sleep 0.05; done"
    threading.Timer(0.5, cancellation.request, [errors.Cancelled("SIGTERM")]).start()
    with pytest.raises(errors.Cancelled):
        ctx.run(["sh", "-c", script])
    assert marker.read_text() == "term\n", "SIGTERM reached the program's group first"


def test_a_program_ignoring_sigterm_is_killed_after_the_grace(make_ctx, tmp_path):
    ctx, cancellation = make_ctx(grace=0.5)
    pidfile = tmp_path / "child.pid"
    script = f"trap '' TERM; sh -c 'trap \"\" TERM; sleep 300' & echo $! > {pidfile}; wait"
    threading.Timer(0.5, cancellation.request, [errors.DeadlineExceeded("deadline")]).start()
    with pytest.raises(errors.DeadlineExceeded):
        ctx.run(["sh", "-c", script])
    wait_for(lambda: not alive(int(pidfile.read_text())))


def test_a_stop_event_terminates_the_program(make_ctx):
    ctx, _ = make_ctx()
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    done = ctx.run(["sleep", "300"], stop=stop, check=False)
    assert done.returncode == -signal.SIGTERM


def test_closing_the_context_kills_programs_still_running(make_ctx, tmp_path):
    ctx, _ = make_ctx()
    pidfile = tmp_path / "p.pid"
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(ctx.run(
        ["sh", "-c", f"echo $$ > {pidfile}; trap '' TERM; sleep 300"], check=False)))
    thread.start()
    wait_for(pidfile.exists)
    wait_for(lambda: pidfile.read_text().strip() != "")
    ctx.close()
    thread.join(20)
    assert not thread.is_alive() and outcome[0].returncode == -signal.SIGKILL
    assert not alive(int(pidfile.read_text()))


# -- environment and secrets -----------------------------------------------------------------


def test_secret_env_reaches_the_environment_only_and_is_redacted(make_ctx, tmp_path, caplog):
    from worker.redact import redact

    ctx, _ = make_ctx()
    caplog.set_level(logging.INFO)
    dump = tmp_path / "cmdline"
    done = ctx.run(["sh", "-c", f"echo token=$API_TOKEN; cat /proc/$$/cmdline > {dump}"],
                   secret_env={"API_TOKEN": "api-token"}, capture_output=True)
    assert done.stdout == b"token=t0ken-value-for-tests\n", "the program got the value"
    assert b"t0ken" not in dump.read_bytes(), "and not in its command line"
    logged = [m for m in lines_of(caplog, "program.sh") if m.startswith("token=")]
    assert [redact(m) for m in logged] == ["token=***"], "the value is registered for redaction"


def test_secret_env_names_must_be_variable_names(make_ctx):
    ctx, _ = make_ctx()
    with pytest.raises(errors.ParameterError, match="'API-TOKEN' is not an environment"):
        ctx.run(["true"], secret_env={"API-TOKEN": "api-token"})
    with pytest.raises(errors.SecretNotFound):
        ctx.run(["true"], secret_env={"X": "no-such-secret"})


def test_env_replaces_the_environment_like_subprocess(make_ctx):
    ctx, _ = make_ctx()
    done = ctx.run(["/usr/bin/env"], env={"ONLY": "this"}, capture_output=True, text=True)
    assert done.stdout.strip().splitlines() == ["ONLY=this"]


# -- staging ---------------------------------------------------------------------------------


def seed(tmp_path, files):
    for path, data in files.items():
        target = tmp_path / "lake" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def test_stage_in_keeps_lake_paths_below_dest_and_refuses_an_empty_glob(make_ctx, tmp_path):
    ctx, _ = make_ctx()
    seed(tmp_path, {"v/in/a b.mp4": b"1", "v/in/é.mp4": b"2", "v/in/skip.txt": b"3",
                    "v/other/c.mp4": b"4"})
    dest = tmp_path / "staged"
    paths = ctx.stage_in(["v/in/*.mp4", "v/other/c.mp4"], dest=dest)
    assert paths == [dest / "v/in/a b.mp4", dest / "v/in/é.mp4", dest / "v/other/c.mp4"]
    assert [p.read_bytes() for p in paths] == [b"1", b"2", b"4"]
    default = ctx.stage_in("v/in")
    assert default[0] == ctx.scratch / "in" / "v/in/a b.mp4" and len(default) == 3
    with pytest.raises(errors.InputNotFound, match="no files match 'v/none/\\*.mp4'"):
        ctx.stage_in("v/none/*.mp4")
    with pytest.raises(errors.InputNotFound):
        ctx.stage_in("v/missing.mp4")


def test_stage_out_records_the_source_of_each_output(make_ctx, tmp_path):
    ctx, _ = make_ctx()
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "a.avi").write_bytes(b"aa")
    (out / "sub" / "b.avi").write_bytes(b"bbb")
    assert ctx.stage_out(out, "v/avi", source="v/in/a.mp4") == ["v/avi/a.avi", "v/avi/sub/b.avi"]
    ctx.stage_out(out / "a.avi", "v/single.avi")
    assert ctx.pending_outputs() == [
        {"path": "v/avi/a.avi", "bytes": 2, "md5": "4124bc0a9335c27f086f24ba207a4912",
         "source": "v/in/a.mp4"},
        {"path": "v/avi/sub/b.avi", "bytes": 3, "md5": "08f8e0260c64418510cefb2b06eee5cd",
         "source": "v/in/a.mp4"},
        {"path": "v/single.avi", "bytes": 2, "md5": "4124bc0a9335c27f086f24ba207a4912"},
    ]
    assert [o["source"] for o in ctx.commit()[:2]] == ["v/in/a.mp4"] * 2
    assert (tmp_path / "lake" / "v/avi/sub/b.avi").read_bytes() == b"bbb"


# -- placeholders ----------------------------------------------------------------------------


def test_placeholders_expand_per_argument_and_keep_spaces_and_braces():
    values = placeholders.for_input(Path("/s/in/v/été 1.tar.gz"), Path("/s/out/0"))
    argv = placeholders.expand(
        ["conv", "-i", "{input}", "{output_dir}/{stem}.avi", "{name}", "{ext}",
         "{input_dir}", "{{input}}", "{a: 1}", "x{stem}y"], values)
    assert argv == ["conv", "-i", "/s/in/v/été 1.tar.gz", "/s/out/0/été 1.tar.avi",
                    "été 1.tar.gz", ".gz", "/s/in/v", "{input}", "{a: 1}", "xété 1.tary"]


def test_inputs_becomes_one_argument_per_input_with_once():
    values = placeholders.for_all([Path("/s/in/a/x 1.mp4"), Path("/s/in/b/y.mp4")],
                                  Path("/s/out/all"))
    assert placeholders.expand(["cat", "{inputs}", "-o", "{output_dir}/all.txt",
                                "{input_dir}"], values) == [
        "cat", "/s/in/a/x 1.mp4", "/s/in/b/y.mp4", "-o", "/s/out/all/all.txt", "/s/in"]


@pytest.mark.parametrize("template, once, says", [
    (["cp", "{inptu}"], False, "unknown placeholder {inptu}"),
    (["cat", "{inputs}"], False, "{inputs} needs --once"),
    (["cat", "{input}"], True, "{input} names one input; with --once use {inputs}"),
    (["cat", "--files={inputs}"], True, "{inputs} must be an argument of its own"),
])
def test_bad_placeholders_are_refused_before_anything_runs(template, once, says):
    with pytest.raises(errors.ParameterError) as caught:
        placeholders.check(template, once)
    assert says in str(caught.value) and caught.value.exit_code == 2


def test_the_exec_task_needs_no_heavy_import_to_load():
    """exec's modules import nothing heavy on their own (the lake's SDK comes when used)."""
    code = ("import sys; import worker.legacy.task, worker.commands.exec; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('azure', 'duckdb', 'pyarrow', 'pandas', 'numpy')))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_exec_is_a_command_whose_module_loads_only_when_used(capsys):
    import subprocess

    from worker.cli import main

    assert main(["--help"]) == 0
    assert "exec" in capsys.readouterr().out
    assert main(["exec", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--input GLOB", "--keep-partial", "--secret-env NAME=SECRET", "{output_dir}",
                 "-- PROGRAM [ARG]..."):
        assert text in out
    code = ("import sys; from worker.cli import build_parser; "
            "build_parser(['run', 'x:y']).parse_args(['run', 'x:y']); "
            "print(sorted(m for m in sys.modules if m.startswith(('worker.legacy', 'worker.commands'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_exec_command_line_becomes_the_handlers_parameters():
    from worker.cli import build_parser
    from worker.commands.exec import params_of

    argv = ["exec", "--input", "a/*.mp4", "--input", "b/c.mp4", "--output", "out/", "--once",
            "--secret-env", "TOKEN=api-token", "--parallel", "3", "--", "conv", "--once",
            "{inputs}", "--", "x"]
    assert params_of(build_parser(argv).parse_args(argv)) == {
        "program": ["conv", "--once", "{inputs}", "--", "x"], "inputs": ["a/*.mp4", "b/c.mp4"],
        "output": "out/", "parallel": 3, "once": True, "secret_env": {"TOKEN": "api-token"}}

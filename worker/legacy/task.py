"""The built-in handler behind ``python -m worker exec``: stage the inputs in, run a legacy
program per input (or once for all), stage what it wrote out; the runner then commits
the outputs atomically, as for any handler.

Local layout, in the task's scratch folder (removed when the task ends)::

    exec/in/<lake path of each input>      the staged inputs ({input}, {input_dir})
    exec/out/<n>/                          {output_dir} of the n-th input's run
    exec/out/all/                          {output_dir} of the one run with --once

Each run writes into its own ``{output_dir}``, so every output file is attributed to the
input whose run wrote it (result.json ``source``); its path below that folder is its path
below ``--output`` in the lake. Two runs writing the same name is refused (exit 2).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import ParameterError, ProgramError, ProgramFailed, ProgramKilled
from . import placeholders
from .process import check_variable_names, find_program
from .staging import stage_in, stage_out_files

log = logging.getLogger("worker.exec")

SPEC = "worker.legacy.task:exec_task"


@dataclass
class _Job:
    """One run of the program."""

    argv: List[str]
    output_dir: Path
    source: Optional[str]  # the input's lake path (None for --once)
    tag: Optional[str]


def exec_task(
    ctx: Any,
    program: Sequence[str],
    inputs: Sequence[str],
    output: str,
    parallel: Optional[int] = None,
    once: bool = False,
    pass_exit_code: bool = False,
    keep_partial: bool = False,
    secret_env: Optional[Mapping[str, str]] = None,
) -> Dict[str, Any]:
    """Run ``program`` (a template argv) over the lake files ``inputs`` match and stage what
    it writes in ``{output_dir}`` for ``output``; see docs/legacy.md."""
    program, inputs = _strings("program", program), _strings("input", inputs)
    output = _output_key(output)
    _check(program, inputs, parallel, once, keep_partial, secret_env)
    if "{" not in program[0]:
        find_program(program[0], os.environ.get("PATH"))  # before anything is downloaded
    for secret in (secret_env or {}).values():
        ctx.secrets[secret]  # a missing secret fails before the downloads
    root = ctx.scratch / "exec"
    staged = stage_in(ctx.lake, inputs, root / "in")
    ctx.check_cancelled()
    jobs = _jobs(program, staged, root / "out", once)
    width = 1 if once else (parallel or _default_parallel(ctx))
    log.info("running %s for %d input(s), %d at once", program[0], len(staged), width)
    done, failed = _run_all(ctx, jobs, width, keep_partial, dict(secret_env or {}))
    ctx.check_cancelled()
    if failed and not keep_partial:
        raise _failure(failed, len(jobs), pass_exit_code, partial=False)
    items = _outputs(done, output)
    stage_out_files(ctx.lake, items)
    if failed:
        raise _failure(failed, len(jobs), pass_exit_code, partial=True)
    return {"program": program[0], "inputs": len(staged), "runs": len(jobs),
            "outputs": len(items), "parallel": width}


# -- the plan --------------------------------------------------------------------------------


def _strings(what: str, value: Any) -> List[str]:
    values = [value] if isinstance(value, str) else list(value or [])
    if not values or not all(isinstance(v, str) for v in values):
        fix = ("put the program and its arguments after --" if what == "program"
               else "give --input GLOB (a lake path or glob), once or more")
        raise ParameterError(f"exec needs a {what}: {fix}", code=f"params.{what}")
    return values


def _output_key(output: Any) -> str:
    from ..lake import STAGING_DIR
    from ..lake.paths import to_key

    try:
        key = to_key(output) if isinstance(output, str) else None
    except ValueError as e:
        raise ParameterError(f"--output {output!r}: {e}", code="params.output") from None
    if key is None or key == STAGING_DIR or key.startswith(STAGING_DIR + "/"):
        raise ParameterError(
            f"--output {output!r} is not a lake folder; give one such as videos/avi/",
            code="params.output")
    return key


def _check(program: List[str], inputs: List[str], parallel: Any, once: bool,
           keep_partial: bool, secret_env: Any) -> None:
    if parallel is not None and (not isinstance(parallel, int) or parallel < 1):
        raise ParameterError(f"--parallel {parallel!r} must be a whole number of at least 1",
                             code="params.parallel")
    if once and keep_partial:
        raise ParameterError(
            "--keep-partial needs one run per input; drop --once or --keep-partial",
            code="params.keep_partial")
    if secret_env is not None and not isinstance(secret_env, Mapping):
        raise ParameterError("secret_env must map variable names to secret names",
                             code="params.secret_env")
    check_variable_names(secret_env or {})
    placeholders.check(program, once)


def _default_parallel(ctx: Any) -> int:
    from ..resources import task_budget

    return task_budget(ctx.config).threads


def _jobs(program: List[str], staged: List[Tuple[str, Path]], out: Path,
          once: bool) -> List[_Job]:
    if once:
        folder = out / "all"
        values = placeholders.for_all([local for _, local in staged], folder)
        return [_Job(placeholders.expand(program, values), folder, None, None)]
    jobs = []
    for n, (key, local) in enumerate(staged):
        folder = out / str(n)
        argv = placeholders.expand(program, placeholders.for_input(local, folder))
        jobs.append(_Job(argv, folder, key, key))
    return jobs


# -- running ---------------------------------------------------------------------------------


def _run_all(ctx: Any, jobs: List[_Job], width: int, keep_partial: bool,
             secret_env: Dict[str, str]) -> Tuple[List[_Job], List[Tuple[_Job, ProgramError]]]:
    """Run the jobs, ``width`` at once. A failure stops the others (SIGTERM to their
    groups) and starts no more, unless ``keep_partial``; any other error (the task's stop)
    stops them all and is raised once they have ended."""
    stop = threading.Event()
    done: List[_Job] = []
    failed: List[Tuple[_Job, ProgramError]] = []
    fatal: List[BaseException] = []
    queue = iter(jobs)
    running: Dict[Future, _Job] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(width, len(jobs))),
                              thread_name_prefix="exec")
    try:
        while True:
            while not stop.is_set() and len(running) < width:
                job = next(queue, None)
                if job is None:
                    break
                running[pool.submit(_run_one, ctx, job, secret_env, stop)] = job
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                _sort(running.pop(future), future.exception(), done, failed, fatal)
            if fatal or (failed and not keep_partial):
                stop.set()
    except BaseException:  # the task's stop raised into this thread: the runner's end of
        stop.set()         # the task kills what still runs (Context.close)
        pool.shutdown(wait=False)
        raise
    pool.shutdown(wait=True)
    if fatal:
        raise fatal[0]
    return done, failed


def _run_one(ctx: Any, job: _Job, secret_env: Dict[str, str], stop: threading.Event) -> None:
    job.output_dir.mkdir(parents=True, exist_ok=True)
    ctx.run(job.argv, secret_env=secret_env, tag=job.tag, stop=stop)


def _sort(job: _Job, error: Optional[BaseException], done: List[_Job],
          failed: List[Tuple[_Job, ProgramError]], fatal: List[BaseException]) -> None:
    if error is None:
        done.append(job)
    elif isinstance(error, ProgramError):
        log.error("%s", error)
        failed.append((job, error))
    else:
        fatal.append(error)


def _failure(failed: List[Tuple[_Job, ProgramError]], runs: int, pass_exit_code: bool,
             partial: bool) -> ProgramError:
    """The task's error: the first failure (by input with --keep-partial, by time
    otherwise), its message saying what became of the other runs."""
    if partial:
        failed = sorted(failed, key=lambda f: f[0].source or "")
    job, error = failed[0]
    if partial:
        others = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
        error.args = (f"{len(failed)} of {runs} runs failed: {error}{others}; the outputs of "
                      f"the other {runs - len(failed)} are committed (--keep-partial)",)
        error.commit_staged = True
    elif runs > 1:
        error.args = (f"{error}; the other runs were stopped and nothing is committed",)
    if pass_exit_code and isinstance(error, ProgramFailed) and not isinstance(
            error, ProgramKilled) and error.returncode:
        error.exit_code = error.returncode
    return error


# -- outputs ---------------------------------------------------------------------------------


def _outputs(jobs: List[_Job], output: str) -> List[Tuple[Path, str, Optional[str]]]:
    """``(local file, lake path, source)`` for every file the runs wrote; two runs writing
    the same name is refused (ParameterError, exit 2)."""
    items: List[Tuple[Path, str, Optional[str]]] = []
    writers: Dict[str, Optional[str]] = {}
    for job in jobs:
        files = sorted(p for p in job.output_dir.rglob("*") if p.is_file())
        if not files:
            log.warning("%s wrote nothing in its {output_dir}%s", job.argv[0],
                        f" for {job.source!r}" if job.source else "")
        for local in files:
            rel = local.relative_to(job.output_dir).as_posix()
            key = f"{output}/{rel}" if output else rel
            if key in writers:
                raise ParameterError(
                    f"the runs for {writers[key]!r} and {job.source!r} both wrote {rel!r} in "
                    "{output_dir}; put {stem} or {name} in the output's file name",
                    code="params.output_clash")
            writers[key] = job.source
            items.append((local, key, job.source))
    return items

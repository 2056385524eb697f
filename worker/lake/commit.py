"""The commit: a task's staged writes become its outputs all together, or not at all.

Layout under the lake root (docs/guarantees.md says the same for users)::

    .worker-staging/<job>/<task>/<run>/<path>        a run's staged files
    .worker-staging/<job>/<task>/<run>.replaced/...  outputs' previous versions, moved aside
    .worker-staging/<job>/<task>/commit.json         the commit record
    .worker-staging/.claims/<hash of first output>   held while a commit runs

The staging folder is derived from the job and task ids (off Batch: from the handler and
its parameters), so a task's next run finds what an earlier run left:

1. **Recover** (first write or commit of a run): a record still ``committing`` means an
   earlier run was killed mid-commit: its remaining renames are done now (roll forward).
   Earlier runs' staged files are deleted. What earlier runs committed stays *owned* by
   the task: a rerun may replace it even with ``overwrite=False``.
2. **Claim** the commit (two or more outputs): a conditional create of a claim named after
   the first output, so two tasks committing the same outputs at once cannot interleave;
   the loser ends with :class:`CommitConflict` (exit 5) and touches nothing.
3. **Record**: ``commit.json`` lists every output (staged and final path, size, MD5).
4. **Move**: a folder that does not exist yet moves in one rename; every other output by a
   conditional rename (``If-None-Match: *``). An output that exists already is moved aside
   first (``overwrite=True``), or counts as done when its MD5 is ours, or is a conflict
   (``overwrite=False``).
5. **Finish**: the task's staging folder and the claim are deleted.

Any failure in step 4 rolls back what was moved (new files back to staging, previous
versions back in place), so a failed task leaves the final paths as they were. A run killed
in step 4 leaves the record ``committing`` and its next run finishes the commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from ..errors import CommitConflict
from .store import Store

log = logging.getLogger(__name__)

STAGING_DIR = ".worker-staging"
CLAIMS_DIR = f"{STAGING_DIR}/.claims"
RECORD = "commit.json"
REPLACED = ".replaced"  # suffix of a run's folder of previous versions
#: A claim older than this is an abandoned commit (its task was killed and not rerun).
STALE_CLAIM_S = 600.0


@dataclass
class Output:
    """One staged write on its way to ``path``."""

    path: str
    src: str
    size: int
    md5: str
    overwrite: bool
    rows: Optional[int] = None
    source: Optional[str] = None  # the input that produced it (``exec``, ``ctx.stage_out``)

    def record(self) -> Dict[str, Any]:
        """What result.json says of a committed output."""
        entry: Dict[str, Any] = {"path": self.path, "bytes": self.size, "md5": self.md5}
        if self.rows is not None:
            entry["rows"] = self.rows
        if self.source is not None:
            entry["source"] = self.source
        return entry


@dataclass
class _Move:
    """One rename done by this run, remembered to undo it."""

    src: str
    dst: str
    aside: Optional[str] = None  # where the previous version of ``dst`` went


def task_dir(task_key: str) -> str:
    return f"{STAGING_DIR}/{task_key}"


def is_staging(key: str) -> bool:
    """True for paths of the staging area (never listed as lake content)."""
    return key == STAGING_DIR or key.startswith(STAGING_DIR + "/")


class Committer:
    """Stages, commits and recovers the writes of one run of one task."""

    def __init__(self, store: Store, task_key: str, run_id: str,
                 parallel: Callable[[Callable[[Any], Any], Iterable[Any]], List[Any]]) -> None:
        self.store = store
        self.task_key = task_key
        self.run_id = run_id
        self._parallel = parallel
        self._recovered = False
        self._owned: Dict[str, str] = {}  # path -> md5 committed by earlier runs of the task
        self._previous: Optional[Dict[str, Any]] = None  # the record an earlier run left
        self._moves: List[_Move] = []

    @property
    def run_dir(self) -> str:
        return f"{task_dir(self.task_key)}/{self.run_id}"

    def staged_key(self, path: str) -> str:
        """Where a write to ``path`` is staged (recovering earlier runs first)."""
        self.recover()
        return f"{self.run_dir}/{path}"

    # -- recovery ----------------------------------------------------------------------------

    def recover(self) -> None:
        """Finish an earlier run's interrupted commit and drop earlier runs' staging."""
        if self._recovered:
            return
        self._recovered = True
        try:
            entries = list(self.store.list(task_dir(self.task_key), recursive=False))
        except FileNotFoundError:
            return
        record = self._read_record() if any(_name(e.path) == RECORD for e in entries) else None
        if record is not None:
            if record.get("state") == "committing":
                record = self._roll_forward(record)
            self._previous = record
            self._owned = dict(record.get("owned", {}))
            self._owned.update({o["path"]: o["md5"] for o in record["outputs"]})
        for entry in entries:
            if entry.is_dir and _name(entry.path) not in (self.run_id, self.run_id + REPLACED):
                log.info("removing the staging of an earlier run: %s", entry.path)
                self.store.delete(entry.path, recursive=True)

    def _roll_forward(self, record: Dict[str, Any]) -> Dict[str, Any]:
        run_dir = f"{task_dir(self.task_key)}/{record['run']}"
        staged = self._staged_files(run_dir)
        outputs = [Output(**o) for o in record["outputs"]]
        left = [o for o in outputs if o.src in staged]
        log.warning("an earlier run (%s) was stopped mid-commit: moving its %d remaining "
                    "output(s) of %d into place", record["run"], len(left), len(outputs))
        self._moves = []
        self._move_outputs(left, run_dir)
        record = dict(record, state="committed")
        self._write_record(record)
        self._release_claim(outputs)
        return record

    def _staged_files(self, run_dir: str) -> Set[str]:
        try:
            return {e.path for e in self.store.list(run_dir, recursive=True) if not e.is_dir}
        except FileNotFoundError:
            return set()

    # -- commit ------------------------------------------------------------------------------

    def commit(self, outputs: List[Output]) -> None:
        """Move ``outputs`` into place, all of them or (on any failure) none."""
        self.recover()
        if not outputs:
            self._drop(task_dir(self.task_key))
            self._prune_parents(task_dir(self.task_key))
            return
        self._claim(outputs)
        self._write_record({
            "version": 1, "task": self.task_key, "run": self.run_id, "state": "committing",
            "started_at": time.time(), "outputs": [asdict(o) for o in outputs],
            "owned": self._owned,
        })
        self._moves = []
        try:
            self._move_outputs(outputs, self.run_dir)
        except BaseException:
            self._undo()
            self._release_claim(outputs)
            raise
        self._drop(task_dir(self.task_key))
        self._prune_parents(task_dir(self.task_key))
        self._release_claim(outputs)

    def abort(self) -> None:
        """Drop this run's staged files (the task's record, if any, stays for its next run)."""
        self._drop(self.run_dir)
        self._prune_parents(self.run_dir)

    def _move_outputs(self, outputs: List[Output], run_dir: str) -> None:
        """Move each folder that does not exist yet in one rename, the other files one by
        one (in parallel)."""
        singles: List[Output] = []
        self._place(outputs, "", run_dir, singles)
        self._parallel(self._move_file, singles)

    def _place(self, outputs: List[Output], folder: str, run_dir: str,
               singles: List[Output]) -> None:
        """Outputs below ``folder``: subfolders holding several move whole if they are new
        (tried in parallel), else their files are added to ``singles``."""
        groups = _subfolders(outputs, folder)
        singles.extend(o for sub, members in groups if sub is None for o in members)
        candidates = [(sub, members) for sub, members in groups if sub is not None]
        moved = self._parallel(lambda g: self._move_folder(g[0], run_dir), candidates)
        for (sub, members), whole in zip(candidates, moved):
            if not whole:
                self._place(members, sub, run_dir, singles)

    def _move_folder(self, folder: str, run_dir: str) -> bool:
        src = f"{run_dir}/{folder}"
        try:
            self._landed(lambda: self.store.rename_folder(src, folder), src,
                         lambda: self.store.exists(folder))
        except FileExistsError:
            return False
        self._moves.append(_Move(src, folder))
        return True

    def _move_file(self, output: Output) -> None:
        try:
            self._landed(lambda: self.store.rename(output.src, output.path, overwrite=False),
                         output.src, lambda: self.store.content_md5(output.path) == output.md5)
            self._moves.append(_Move(output.src, output.path))
            return
        except FileExistsError:
            pass
        existing = self.store.content_md5(output.path)
        if existing == output.md5:  # already there, the same bytes: a rerun's own output
            self.store.delete(output.src)
            return
        owned = self._owned.get(output.path)
        if not output.overwrite and (owned is None or owned != existing):
            raise CommitConflict(
                f"{output.path!r} exists in the lake {self.store.url} with other content and "
                "overwrite=False; another task wrote it: write elsewhere, delete it, or pass "
                "overwrite=True")
        self._replace(output)

    def _replace(self, output: Output) -> None:
        """Move the previous version aside, then the output in: both can be undone."""
        aside = f"{_run_of(output.src, self.task_key)}{REPLACED}/{output.path}"
        self._landed(lambda: self.store.rename(output.path, aside, overwrite=True),
                     output.path, lambda: self.store.exists(aside))
        self._moves.append(_Move(output.src, output.path, aside))
        try:
            self._landed(lambda: self.store.rename(output.src, output.path, overwrite=False),
                         output.src, lambda: self.store.content_md5(output.path) == output.md5)
        except FileExistsError:
            raise CommitConflict(
                f"another task wrote {output.path!r} in the lake {self.store.url} during this "
                "commit; run the task again once the other has finished") from None

    def _landed(self, rename: Callable[[], None], src: str, arrived: Callable[[], bool]) -> None:
        """Run ``rename``. When the service did it but its answer was lost, the SDK's retry
        finds the source gone (404): that counts as done if the destination shows it."""
        try:
            rename()
        except FileNotFoundError:
            if self.store.exists(src) or not arrived():
                raise
            log.info("%s was moved by an attempt whose answer was lost", src)

    def _undo(self) -> None:
        """Put back what this run moved; if that fails too, the record stays ``committing``
        and the task's next run finishes the commit instead."""
        try:
            self._parallel(self._undo_move, list(reversed(self._moves)))
        except BaseException as e:
            log.error("could not roll back the commit (%s); the task's next run will finish "
                      "it", e)
            return
        log.info("rolled back %d move(s): nothing of this run is at its final path",
                 len(self._moves))
        if self._previous is not None:
            self._write_record(self._previous)
        else:
            self._drop(f"{task_dir(self.task_key)}/{RECORD}")
        self._drop(self.run_dir)
        self._drop(self.run_dir + REPLACED)

    def _undo_move(self, move: _Move) -> None:
        if self.store.exists(move.dst) and not self.store.exists(move.src):
            self.store.rename(move.dst, move.src, overwrite=True)
        if move.aside and self.store.exists(move.aside):
            self.store.rename(move.aside, move.dst, overwrite=False)

    # -- the claim and the record --------------------------------------------------------------

    def _claim(self, outputs: List[Output]) -> None:
        if len(outputs) < 2:
            return  # one rename is atomic by itself
        key = _claim_key(outputs)
        mine = json.dumps({"task": self.task_key, "run": self.run_id, "at": time.time()})
        try:
            self.store.put_exclusive(key, mine.encode())
            return
        except FileExistsError:
            pass
        holder = self._read_json(key) or {}
        age = time.time() - float(holder.get("at", 0))
        if holder.get("task") != self.task_key and age < STALE_CLAIM_S:
            raise CommitConflict(
                f"task {holder.get('task')!r} is committing the same outputs "
                f"({outputs[0].path!r} and {len(outputs) - 1} more) in the lake "
                f"{self.store.url} right now; run this task again once it has finished")
        log.warning("taking over the claim of %s on %r (%.0f s old)", holder.get("task"),
                    outputs[0].path, age)
        self.store.write_bytes(key, mine.encode())

    def _release_claim(self, outputs: List[Output]) -> None:
        if len(outputs) >= 2:
            self._drop(_claim_key(outputs))
            self._prune_parents(_claim_key(outputs))

    def _read_record(self) -> Optional[Dict[str, Any]]:
        return self._read_json(f"{task_dir(self.task_key)}/{RECORD}")

    def _write_record(self, record: Dict[str, Any]) -> None:
        data = json.dumps(record, sort_keys=True).encode()
        self.store.write_bytes(f"{task_dir(self.task_key)}/{RECORD}", data)

    def _read_json(self, key: str) -> Optional[Dict[str, Any]]:
        try:
            return json.loads(self.store.read_bytes(key).decode())
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("ignoring %s: not the JSON the worker writes", key)
            return None

    def _prune_parents(self, key: str) -> None:
        prune_empty_parents(self.store, key)

    def _drop(self, key: str) -> None:
        try:
            self.store.delete(key, recursive=True)
        except FileNotFoundError:
            pass
        except Exception as e:  # the outputs are safe; leftovers go at the next run or gc
            log.warning("could not remove %s from the staging area: %s", key, e)


def prune_empty_parents(store: Store, key: str) -> None:
    """Remove the folders above ``key`` that are now empty, up to the staging root, so a
    finished task leaves no trace (a folder still in use by others stays)."""
    parent = key.rsplit("/", 1)[0]
    while parent != STAGING_DIR and is_staging(parent):
        try:
            store.delete(parent, recursive=False)
        except Exception:  # not empty (another task's), gone, or unreachable: leave it
            return
        parent = parent.rsplit("/", 1)[0]


def _claim_key(outputs: List[Output]) -> str:
    first = min(o.path for o in outputs)
    return f"{CLAIMS_DIR}/{hashlib.sha256(first.encode()).hexdigest()[:32]}"


def _subfolders(outputs: List[Output], folder: str
                ) -> List[Tuple[Optional[str], List[Output]]]:
    """Outputs below ``folder`` grouped by the subfolder they lie in; files directly in
    ``folder``, and subfolders holding a single output, under None (moved one by one)."""
    start = len(folder) + 1 if folder else 0
    groups: Dict[Optional[str], List[Output]] = {}
    for output in sorted(outputs, key=lambda o: o.path):
        rest = output.path[start:]
        sub = output.path[:start] + rest.split("/", 1)[0] if "/" in rest else None
        groups.setdefault(sub, []).append(output)
    singles = [o for sub, members in groups.items() if sub is None or len(members) == 1
               for o in members]
    folders = [(sub, m) for sub, m in groups.items() if sub is not None and len(m) > 1]
    return ([(None, singles)] if singles else []) + folders  # type: ignore[return-value]


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _run_of(src: str, task_key: str) -> str:
    """The run folder a staged key lies in."""
    prefix = task_dir(task_key) + "/"
    return prefix + src[len(prefix):].split("/", 1)[0]


def sweep(store: Store, older_than: float, parallel: Callable[[Callable[[Any], Any],
          Iterable[Any]], List[Any]], dry_run: bool = False) -> List[str]:
    """Clean the staging area of tasks that have not run for ``older_than`` seconds (their
    runs were killed and never rerun): an interrupted commit is finished (rolled forward),
    everything else of theirs is deleted, and abandoned claims are released. Returns one
    line per action."""
    now = time.time()
    actions: List[str] = []
    for folder in _subfolder_keys(store, STAGING_DIR):
        if folder == CLAIMS_DIR:
            actions += _sweep_claims(store, now - older_than, dry_run)
            continue
        for task in _subfolder_keys(store, folder):
            newest = max((e.modified or 0 for e in store.list(task, recursive=True)),
                         default=0)
            if newest < now - older_than:
                actions.append(_sweep_task(store, task, parallel, dry_run))
        if not dry_run:
            prune_empty_parents(store, folder + "/-")  # the folder itself, if now empty
    return actions


def _sweep_task(store: Store, task: str, parallel: Callable[..., List[Any]],
                dry_run: bool) -> str:
    key = task[len(STAGING_DIR) + 1:]
    if dry_run:
        return f"would clean {task}"
    committer = Committer(store, key, "gc", parallel)
    try:
        committer.recover()  # rolls an interrupted commit forward
    except Exception as e:  # a conflict or a failure: keep it for a person to look at
        return f"could not finish the commit in {task}: {e}"
    committer._drop(task)
    return f"cleaned {task}" + (" (finished its interrupted commit)"
                                if committer._previous is not None else "")


def _sweep_claims(store: Store, before: float, dry_run: bool) -> List[str]:
    actions = []
    for claim in store.list(CLAIMS_DIR, recursive=False):
        if (claim.modified or 0) < before:
            if not dry_run:
                store.delete(claim.path)
            actions.append(("would release " if dry_run else "released ") + claim.path)
    return actions


def _subfolder_keys(store: Store, key: str) -> List[str]:
    try:
        return [e.path for e in store.list(key, recursive=False) if e.is_dir]
    except FileNotFoundError:
        return []

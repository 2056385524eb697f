"""The Data Lake Gen2 data model: file systems, directories and files, and their rules.

Everything the service decides, independent of HTTP: hierarchical paths with implicit
parents, ETags and conditional requests, appends staged at a position and committed by a
flush (a file's new bytes are visible to readers only once flushed), rename and paginated
recursive delete. Errors are :class:`LakeError` with the service's status and code; the
HTTP layer (``lake.py``) picks the JSON or XML shape.

One lock guards the whole store: operations are short, and file contents are immutable
``bytes`` handed out by reference, so large reads are served outside the lock.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
import uuid
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from . import lake_lease
from .lake_disk import Disk
from .lake_errors import LakeError

DIRECTORY_PERMISSIONS = "rwxr-x---"
FILE_PERMISSIONS = "rw-r-----"
_CONTENT_KEYS = ("Content-Type", "Content-Encoding", "Content-Language",
                 "Content-Disposition", "Cache-Control", "Content-MD5")
DEFAULT_PAGE = 5000


class Conditions(NamedTuple):
    """If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since (epoch seconds), and
    the x-ms-lease-id a write to a leased path must name."""

    if_match: Optional[str] = None
    if_none_match: Optional[str] = None
    if_modified_since: Optional[float] = None
    if_unmodified_since: Optional[float] = None
    lease_id: Optional[str] = None

    def holds(self, node: Optional[Node]) -> bool:
        """Whether the conditions hold for ``node`` (None: the path does not exist)."""
        if self.if_match is not None and (node is None or not _etag_matches(self.if_match, node)):
            return False
        if self.if_none_match is not None and node is not None and (
                self.if_none_match.strip() == "*" or _etag_matches(self.if_none_match, node)):
            return False
        if node is None:
            return True
        modified = int(node.last_modified)
        if self.if_modified_since is not None and modified <= self.if_modified_since:
            return False
        return not (self.if_unmodified_since is not None and modified > self.if_unmodified_since)


def _etag_matches(header: str, node: Node) -> bool:
    tags = [t.strip().strip('"') for t in header.split(",")]
    return "*" in tags or node.etag.strip('"') in tags


_etag_lock = threading.Lock()
_last_tick = [0]


def new_etag() -> str:
    """A fresh, strictly increasing ETag in the service's ``"0x8D..."`` shape."""
    with _etag_lock:
        tick = max(time.time_ns() // 100, _last_tick[0] + 1)
        _last_tick[0] = tick
    return '"0x8D%013X"' % (tick % (16 ** 13))


class Node:
    """A directory or a file: properties, committed bytes and staged appends; for the Blob
    API also its committed block list (``(block id, size)`` in order), its lease and the
    properties of the copy that made it."""

    __slots__ = ("is_dir", "etag", "last_modified", "created", "metadata", "content",
                 "data", "staged", "blob", "blocks", "lease", "copy")

    def __init__(self, is_dir: bool, metadata: Optional[Dict[str, str]] = None,
                 content: Optional[Dict[str, str]] = None) -> None:
        self.is_dir = is_dir
        self.created = time.time()
        self.metadata = dict(metadata or {})
        self.content = dict(content or {})
        self.data = b""
        self.staged: Dict[int, bytes] = {}
        self.blob = uuid.uuid4().hex  # the file name of its bytes under --data
        self.blocks: List[Tuple[str, int]] = []
        self.lease: Optional[lake_lease.Lease] = None
        self.copy: Dict[str, str] = {}
        self.touch()

    def touch(self) -> None:
        self.etag = new_etag()
        self.last_modified = time.time()


class FileSystem:
    """A file system (a blob container): properties, a flat ``path -> Node`` map, and the
    Blob API's uncommitted blocks by path (a blob being uploaded in blocks does not exist
    until its block list is committed)."""

    def __init__(self, name: str, metadata: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.metadata = dict(metadata or {})
        self.paths: Dict[str, Node] = {}
        self.pending: Dict[str, Dict[str, bytes]] = {}
        self.etag = new_etag()
        self.last_modified = time.time()

    def children(self, directory: str, recursive: bool) -> List[str]:
        """Sorted paths below ``directory`` ("" for the root)."""
        prefix = directory + "/" if directory else ""
        names = [p for p in self.paths if p.startswith(prefix)]
        if not recursive:
            names = [p for p in names if "/" not in p[len(prefix):]]
        return sorted(names)


def split_parent(path: str) -> str:
    return path.rpartition("/")[0]


def _is_folder(metadata: Dict[str, str]) -> bool:
    return any(k.lower() == "hdi_isfolder" and v.lower() == "true" for k, v in metadata.items())


def decode_properties(header: Optional[str]) -> Dict[str, str]:
    """``k1=b64(v1),k2=b64(v2)`` (DFS x-ms-properties) to a dict."""
    result = {}
    for item in (header or "").split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            result[key] = base64.b64decode(value).decode("utf-8")
    return result


class LakeStore:
    """All file systems of one account, in memory, mirrored to ``Disk`` when given."""

    def __init__(self, disk: Optional[Disk] = None, delete_page_size: int = DEFAULT_PAGE) -> None:
        self.lock = threading.RLock()
        self.disk = disk
        self.delete_page_size = delete_page_size
        self.filesystems: Dict[str, FileSystem] = disk.load(FileSystem, Node) if disk else {}

    # -- file systems -------------------------------------------------------------------

    def create_filesystem(self, name: str, metadata: Dict[str, str]) -> FileSystem:
        with self.lock:
            if name in self.filesystems:
                raise LakeError(409, "ContainerAlreadyExists",
                                "The specified container already exists.")
            fs = self.filesystems[name] = FileSystem(name, metadata)
            self.save()
            return fs

    def filesystem(self, name: str, code: str = "ContainerNotFound") -> FileSystem:
        fs = self.filesystems.get(name)
        if fs is None:
            raise LakeError(404, code, "The specified container does not exist."
                            if code == "ContainerNotFound" else
                            "The specified filesystem does not exist.")
        return fs

    def delete_filesystem(self, name: str) -> None:
        with self.lock:
            fs = self.filesystem(name)
            del self.filesystems[name]
            self.save(dropped=fs.paths.values())

    def empty_filesystems(self, names: Tuple[str, ...]) -> None:
        """Make each named file system exist and hold nothing (a fresh start for a test)."""
        with self.lock:
            dropped: List[Node] = []
            for name in names:
                old = self.filesystems.get(name)
                if old is not None:
                    dropped.extend(old.paths.values())
                self.filesystems[name] = FileSystem(name, {})
            self.save(dropped=dropped)

    def set_filesystem_metadata(self, name: str, metadata: Dict[str, str]) -> FileSystem:
        with self.lock:
            fs = self.filesystem(name)
            fs.metadata = dict(metadata)
            fs.etag, fs.last_modified = new_etag(), time.time()
            self.save()
            return fs

    def list_filesystems(self, prefix: str) -> List[FileSystem]:
        with self.lock:
            return [self.filesystems[n] for n in sorted(self.filesystems) if n.startswith(prefix)]

    # -- paths --------------------------------------------------------------------------

    def get(self, fs_name: str, path: str, fs_code: str = "ContainerNotFound",
            code: str = "BlobNotFound") -> Node:
        with self.lock:
            node = self.filesystem(fs_name, fs_code).paths.get(path)
            if node is None:
                raise LakeError(404, code, "The specified blob does not exist."
                                if code == "BlobNotFound" else "The specified path does not exist.")
            return node

    def create(self, fs_name: str, path: str, is_dir: bool, conditions: Conditions,
               metadata: Dict[str, str], content: Dict[str, str]) -> Node:
        """Create (or overwrite, for files) a path; missing parents are created."""
        with self.lock:
            fs = self.filesystem(fs_name, "FilesystemNotFound")
            existing = fs.paths.get(path)
            self._check_create(existing, is_dir, conditions)
            if existing is not None and existing.is_dir and is_dir:
                existing.metadata.update(metadata)
                existing.touch()
                self.save()
                return existing
            self._make_parents(fs, split_parent(path))
            node = fs.paths[path] = Node(is_dir, metadata, content)
            if existing is not None:
                node.lease = existing.lease
            self.save(dropped=[existing] if existing else ())
            return node

    def put(self, fs_name: str, path: str, data: bytes, conditions: Conditions,
            metadata: Dict[str, str], content: Dict[str, str]) -> Node:
        """Blob Put Blob: create or replace a file with ``data`` in one step; as on a
        hierarchical-namespace account, missing parent directories are created, and an
        empty blob with ``hdi_isfolder=true`` metadata is a directory (how Blob-only
        clients make folders)."""
        with self.lock:
            fs = self.filesystem(fs_name)
            existing = fs.paths.get(path)
            folder = _is_folder(metadata) and not data
            self.check_put(existing, conditions, folder)
            if folder:
                return self._put_folder(fs, path, existing, metadata)
            return self.replace_file(fs, path, existing, bytes(data), metadata, content)

    def check_put(self, existing: Optional[Node], conditions: Conditions,
                  folder: bool = False) -> None:
        """What a blob write over ``existing`` must pass: If-None-Match: *, the lease, the
        other conditions, and a file never replacing a directory (nor the reverse)."""
        if existing is not None and conditions.if_none_match == "*":
            raise LakeError(409, "BlobAlreadyExists", "The specified blob already exists.")
        self._require(conditions, existing)
        if existing is not None and existing.is_dir != folder:
            raise LakeError(409, "PathConflict",
                            "The specified path, or an element of the path, exists and its "
                            "resource type is invalid for this operation.")

    def replace_file(self, fs: FileSystem, path: str, existing: Optional[Node], data: bytes,
                     metadata: Dict[str, str], content: Dict[str, str],
                     blocks: Sequence[Tuple[str, int]] = ()) -> Node:
        """Make ``path`` a new file of ``data`` (its parents made, a lease on the one it
        replaces kept, uncommitted blocks dropped); under the lock, checks done."""
        self._make_parents(fs, split_parent(path))
        node = fs.paths[path] = Node(False, metadata, content)
        node.data = data
        node.blocks = list(blocks)
        if existing is not None:
            node.lease = existing.lease
        fs.pending.pop(path, None)
        self.save(dropped=[existing] if existing else (), flushed=(fs.name, path, node))
        return node

    def _put_folder(self, fs: FileSystem, path: str, existing: Optional[Node],
                    metadata: Dict[str, str]) -> Node:
        metadata = {k: v for k, v in metadata.items() if k.lower() != "hdi_isfolder"}
        if existing is not None:
            existing.metadata = metadata
            existing.touch()
        else:
            self._make_parents(fs, split_parent(path))
            existing = fs.paths[path] = Node(True, metadata)
        self.save()
        return existing

    @staticmethod
    def _check_create(existing: Optional[Node], is_dir: bool, conditions: Conditions) -> None:
        if existing is not None and conditions.if_none_match == "*":
            raise LakeError(409, "PathAlreadyExists", "The specified path already exists.")
        lake_lease.check(existing and existing.lease, conditions.lease_id, write=True)
        if not conditions.holds(existing):
            raise LakeError(412, "ConditionNotMet",
                            "The condition specified using HTTP conditional header(s) is not met.")
        if existing is not None and existing.is_dir != is_dir:
            raise LakeError(409, "PathConflict",
                            "The specified path, or an element of the path, exists and its "
                            "resource type is invalid for this operation.")

    @staticmethod
    def _make_parents(fs: FileSystem, directory: str) -> None:
        parts = directory.split("/") if directory else []
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            node = fs.paths.get(parent)
            if node is None:
                fs.paths[parent] = Node(True)
            elif not node.is_dir:
                raise LakeError(409, "PathConflict",
                                "The specified path, or an element of the path, exists and its "
                                "resource type is invalid for this operation.")

    def append(self, fs_name: str, path: str, position: int, data: bytes,
               lease_id: Optional[str] = None) -> None:
        """Stage ``data`` at ``position``; a retried append at the same position replaces it."""
        with self.lock:
            node = self.get(fs_name, path, "FilesystemNotFound", "PathNotFound")
            lake_lease.check(node.lease, lease_id, write=True)
            if node.is_dir:
                raise LakeError(409, "ResourceTypeMismatch", "The resource type specified in "
                                "the request does not match the type of the resource.")
            node.staged[position] = data

    def flush(self, fs_name: str, path: str, position: int, conditions: Conditions,
              content: Dict[str, str], retain: bool = False) -> Node:
        """Commit the staged appends up to ``position``; they must be contiguous."""
        with self.lock:
            node = self.get(fs_name, path, "FilesystemNotFound", "PathNotFound")
            self._require(conditions, node)
            node.data = self._assemble(node, position)
            node.blocks = []
            node.staged = {p: d for p, d in node.staged.items() if p >= position} if retain else {}
            node.content.update(content)
            node.touch()
            self.save(flushed=(fs_name, path, node))
            return node

    @staticmethod
    def _assemble(node: Node, position: int) -> bytes:
        pieces = sorted((p, d) for p, d in node.staged.items() if p < position)
        start = pieces[0][0] if pieces else len(node.data)
        cursor = start
        for piece_position, data in pieces:
            if piece_position != cursor:
                break
            cursor += len(data)
        if start > len(node.data) or cursor != position:
            raise LakeError(400, "InvalidFlushPosition", "The uploaded data is not contiguous "
                            "or the position query parameter value is not equal to the length "
                            "of the file after appending the uploaded data.")
        if not pieces:
            return node.data
        return b"".join(itertools.chain([node.data[:start]], (d for _, d in pieces)))

    def set_metadata(self, fs_name: str, path: str, metadata: Dict[str, str],
                     conditions: Conditions) -> Node:
        with self.lock:
            node = self.get(fs_name, path)
            self._require(conditions, node)
            node.metadata = dict(metadata)
            node.touch()
            self.save()
            return node

    def set_content(self, fs_name: str, path: str, content: Dict[str, str],
                    conditions: Conditions) -> Node:
        """Replace the content settings (Blob Set Properties)."""
        with self.lock:
            node = self.get(fs_name, path)
            self._require(conditions, node)
            node.content = {k: v for k, v in content.items() if k in _CONTENT_KEYS}
            node.touch()
            self.save()
            return node

    @staticmethod
    def _require(conditions: Conditions, node: Optional[Node]) -> None:
        """The conditional headers and the lease, for a write to ``node``."""
        lake_lease.check(node and node.lease, conditions.lease_id, write=True)
        if not conditions.holds(node):
            raise LakeError(412, "ConditionNotMet",
                            "The condition specified using HTTP conditional header(s) is not met.")

    # -- rename and delete ---------------------------------------------------------------

    def rename(self, source: Tuple[str, str], dest: Tuple[str, str],
               source_conditions: Conditions, conditions: Conditions) -> Node:
        """Move a file or directory (with its children); the destination parent must exist."""
        with self.lock:
            src_fs = self.filesystem(source[0], "SourcePathNotFound")
            dst_fs = self.filesystem(dest[0], "FilesystemNotFound")
            node = src_fs.paths.get(source[1])
            if node is None:
                raise LakeError(404, "SourcePathNotFound", "The source path for a rename "
                                "operation does not exist.")
            lake_lease.check(node.lease, source_conditions.lease_id, write=True)
            if not source_conditions.holds(node):
                raise LakeError(412, "SourceConditionNotMet", "The source condition specified "
                                "using HTTP conditional header(s) is not met.")
            self._check_rename_target(src_fs, dst_fs, source[1], dest[1], node, conditions)
            replaced = dst_fs.paths.get(dest[1])
            moved = self._move(src_fs, dst_fs, source[1], dest[1])
            self.save(dropped=[replaced] if replaced is not None else ())
            return moved

    def _check_rename_target(self, src_fs: FileSystem, dst_fs: FileSystem, src: str, dst: str,
                             node: Node, conditions: Conditions) -> None:
        if src_fs is dst_fs and (dst == src or dst.startswith(src + "/")):
            raise LakeError(400 if dst == src else 409, "InvalidRenameSourcePath",
                            "The source directory cannot be the same as the destination "
                            "directory, nor can the destination be a subdirectory of the "
                            "source directory.")
        parent = split_parent(dst)
        if parent and not (dst_fs.paths.get(parent) and dst_fs.paths[parent].is_dir):
            raise LakeError(404, "RenameDestinationParentPathNotFound",
                            "The parent directory of the destination path does not exist.")
        existing = dst_fs.paths.get(dst)
        if existing is not None and conditions.if_none_match == "*":
            raise LakeError(409, "PathAlreadyExists", "The specified path already exists.")
        self._require(conditions, existing)
        if existing is None:
            return
        if existing.is_dir != node.is_dir:
            raise LakeError(409, "InvalidSourceOrDestinationResourceType", "The source and "
                            "destination resource type must be identical.")
        if existing.is_dir and dst_fs.children(dst, recursive=False):
            raise LakeError(409, "PathAlreadyExists", "The specified path already exists.")

    @staticmethod
    def _move(src_fs: FileSystem, dst_fs: FileSystem, src: str, dst: str) -> Node:
        for child in src_fs.children(src, recursive=True):
            dst_fs.paths[dst + child[len(src):]] = src_fs.paths.pop(child)
        node = dst_fs.paths[dst] = src_fs.paths.pop(src)
        return node

    def delete(self, fs_name: str, path: str, recursive: Optional[bool], conditions: Conditions,
               paginated: bool = False) -> bool:
        """Delete a path; returns True while a paginated directory delete has more to do."""
        with self.lock:
            fs = self.filesystem(fs_name, "FilesystemNotFound")
            node = fs.paths.get(path)
            if node is None:
                raise LakeError(404, "PathNotFound", "The specified path does not exist.")
            self._require(conditions, node)
            children = fs.children(path, recursive=True) if node.is_dir else []
            if children and not recursive:
                raise LakeError(409, "DirectoryNotEmpty", "The recursive query parameter "
                                "value must be true to delete a non-empty directory.")
            # Deepest first, so a page never leaves an orphan below a deleted directory.
            batch = sorted(children, key=lambda p: (-p.count("/"), p))
            if paginated and len(batch) > self.delete_page_size:
                batch = batch[: self.delete_page_size]
            else:
                batch.append(path)
            dropped = [fs.paths.pop(p) for p in batch]
            self.save(dropped=dropped)
            return path in fs.paths

    # -- listing --------------------------------------------------------------------------

    def list_paths(self, fs_name: str, directory: str, recursive: bool, max_results: int,
                   marker: Optional[str]) -> Tuple[List[Tuple[str, Node]], Optional[str]]:
        """One page of ``(name, node)`` after ``marker``, and the next marker (or None)."""
        with self.lock:
            fs = self.filesystem(fs_name, "FilesystemNotFound")
            if directory and (directory not in fs.paths or not fs.paths[directory].is_dir):
                raise LakeError(404, "PathNotFound", "The specified path does not exist.")
            names = fs.children(directory, recursive)
            if marker is not None:
                names = [n for n in names if n > marker]
            page = names[:max_results]
            more = len(names) > max_results
            return [(n, fs.paths[n]) for n in page], (page[-1] if more and page else None)

    def iter_nodes(self) -> Iterator[Tuple[str, str, Node]]:
        with self.lock:
            items = [(f.name, p, n) for f in self.filesystems.values() for p, n in f.paths.items()]
        return iter(items)

    def save(self, dropped=(), flushed=None) -> None:
        """Write the change through to ``--data`` (a no-op in memory)."""
        if self.disk is not None:
            self.disk.save(self.filesystems, dropped=dropped, flushed=flushed)

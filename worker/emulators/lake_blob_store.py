"""The Blob API's own rules over the lake's store: blocks, copies, blob deletes, listings.

A block blob is written as uncommitted blocks (Put Block) that become its content in the
order a block list names them (Put Block List); until then the blob does not exist, and the
blocks are kept beside the file system's paths. Deleting through the Blob API answers as the
Blob service does on a hierarchical namespace: a directory goes only when it is empty. Each
function takes the store's lock, as the store's own methods do.
"""

from __future__ import annotations

import uuid
from typing import Dict, List, Optional, Tuple

from . import lake_lease
from .lake_errors import LakeError
from .lake_store import Conditions, FileSystem, LakeStore, Node
from .server import http_date

Block = Tuple[str, int]  # block id (base64, as sent) and its size
_INVALID_BLOCK = "The specified blob or block content is invalid."


def stage_block(store: LakeStore, fs_name: str, path: str, block_id: str, data: bytes,
                lease_id: Optional[str]) -> None:
    """Put Block: keep ``data`` as the uncommitted block ``block_id`` of ``path``."""
    with store.lock:
        fs = store.filesystem(fs_name)
        existing = fs.paths.get(path)
        if existing is not None:
            store.check_put(existing, Conditions(lease_id=lease_id))
        blocks = fs.pending.setdefault(path, {})
        lengths = {len(i) for i in blocks} | {len(i) for i, _ in (existing.blocks
                                                                  if existing else ())}
        if lengths and lengths != {len(block_id)}:
            raise LakeError(400, "InvalidBlobOrBlock", _INVALID_BLOCK)
        blocks[block_id] = bytes(data)


def _committed(node: Optional[Node]) -> Dict[str, memoryview]:
    """The committed blocks of ``node`` by id, as views of its bytes."""
    found: Dict[str, memoryview] = {}
    if node is None:
        return found
    view, offset = memoryview(node.data), 0
    for block_id, size in node.blocks:
        found.setdefault(block_id, view[offset:offset + size])
        offset += size
    return found


def commit_blocks(store: LakeStore, fs_name: str, path: str, entries: List[Tuple[str, str]],
                  conditions: Conditions, metadata: Dict[str, str],
                  content: Dict[str, str]) -> Node:
    """Put Block List: ``entries`` are ``(Committed|Uncommitted|Latest, block id)``."""
    with store.lock:
        fs = store.filesystem(fs_name)
        existing = fs.paths.get(path)
        store.check_put(existing, conditions)
        pending = fs.pending.get(path, {})
        committed = _committed(existing)
        pieces, blocks = [], []
        for kind, block_id in entries:
            piece = None
            if kind in ("Uncommitted", "Latest"):
                piece = pending.get(block_id)
            if piece is None and kind in ("Committed", "Latest"):
                piece = committed.get(block_id)
            if piece is None:
                raise LakeError(400, "InvalidBlockList", "The specified block list is invalid.")
            pieces.append(piece)
            blocks.append((block_id, len(piece)))
        return store.replace_file(fs, path, existing, b"".join(pieces), metadata, content,
                                  blocks)


def block_list(store: LakeStore, fs_name: str, path: str, lease_id: Optional[str]
               ) -> Tuple[Optional[Node], List[Block], List[Block]]:
    """Get Block List: the blob (None while only blocks exist), committed, uncommitted."""
    with store.lock:
        fs = store.filesystem(fs_name)
        node = fs.paths.get(path)
        pending = fs.pending.get(path, {})
        if (node is None or node.is_dir) and not pending:
            raise LakeError(404, "BlobNotFound", "The specified blob does not exist.")
        if node is not None:
            lake_lease.check(node.lease, lease_id, write=False)
        committed = list(node.blocks) if node is not None else []
        return node, committed, [(i, len(d)) for i, d in pending.items()]


def copy_blob(store: LakeStore, source: Tuple[str, str], dest: Tuple[str, str],
              source_url: str, conditions: Conditions, metadata: Optional[Dict[str, str]]
              ) -> Node:
    """Copy Blob within the account, done at once: the copy is complete when this returns
    (``x-ms-copy-status: success``), as small same-account copies are on Azure."""
    with store.lock:
        src = store.filesystem(source[0]).paths.get(source[1])
        if src is None:
            raise LakeError(404, "CannotVerifyCopySource", "The specified blob does not exist.")
        fs = store.filesystem(dest[0])
        existing = fs.paths.get(dest[1])
        store.check_put(existing, conditions, folder=src.is_dir)
        new_metadata = dict(src.metadata) if metadata is None else metadata
        if src.is_dir:
            return store.put(dest[0], dest[1], b"", conditions,
                             dict(new_metadata, hdi_isfolder="true"), {})
        node = store.replace_file(fs, dest[1], existing, src.data, new_metadata,
                                  dict(src.content))
        size = len(src.data)
        node.copy = {"x-ms-copy-id": str(uuid.uuid4()), "x-ms-copy-source": source_url,
                     "x-ms-copy-status": "success", "x-ms-copy-progress": "%d/%d" % (size, size),
                     "x-ms-copy-completion-time": http_date(node.last_modified)}
        return node


def delete_blob(store: LakeStore, fs_name: str, path: str, conditions: Conditions) -> None:
    """Delete Blob on a hierarchical namespace: a file, or a directory once it is empty."""
    with store.lock:
        fs = store.filesystem(fs_name)
        node = fs.paths.get(path)
        if node is None:
            if fs.pending.pop(path, None) is not None:
                return  # only uncommitted blocks: they go
            raise LakeError(404, "BlobNotFound", "The specified blob does not exist.")
        store.check_put(node, conditions, folder=node.is_dir)
        if node.is_dir and fs.children(path, recursive=False):
            raise LakeError(409, "DirectoryIsNotEmpty",
                            "This operation is not permitted on a non-empty directory.")
        del fs.paths[path]
        fs.pending.pop(path, None)
        store.save(dropped=[node])


def blob_names(fs: FileSystem, prefix: str, start: Optional[str]) -> List[str]:
    """Every path of ``fs`` that starts with ``prefix``, from ``start`` on, sorted."""
    names = sorted(p for p in fs.paths if p.startswith(prefix))
    if start:
        names = [n for n in names if n >= start]
    return names

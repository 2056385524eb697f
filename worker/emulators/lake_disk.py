"""Keeping the lake on disk (``--data DIR``) so that it survives a restart.

``DIR/lake.json`` holds the file systems and every path's properties; each file's committed
bytes live in ``DIR/blobs/<id>``. Both are written through on every change (bytes only when
a flush changes them), with write-then-rename so a crash never leaves half a file. Staged,
unflushed appends are kept in memory only.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Optional, Tuple


def _write_atomic(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Disk:
    """The on-disk mirror of a LakeStore."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.blobs = os.path.join(directory, "blobs")
        os.makedirs(self.blobs, exist_ok=True)
        self.index = os.path.join(directory, "lake.json")

    def save(self, filesystems: Dict[str, Any], dropped: Iterable[Any] = (),
             flushed: Optional[Tuple[str, str, Any]] = None) -> None:
        """Write the index, the bytes of a flushed file, and forget dropped files' bytes."""
        if flushed is not None:
            _write_atomic(os.path.join(self.blobs, flushed[2].blob), flushed[2].data)
        for node in dropped:
            self._remove_blob(node)
        state = {name: self._filesystem(fs) for name, fs in filesystems.items()}
        _write_atomic(self.index, json.dumps(state).encode("utf-8"))

    def _remove_blob(self, node: Any) -> None:
        try:
            os.remove(os.path.join(self.blobs, node.blob))
        except FileNotFoundError:
            pass

    @staticmethod
    def _filesystem(fs: Any) -> Dict[str, Any]:
        return {
            "etag": fs.etag, "last_modified": fs.last_modified, "metadata": fs.metadata,
            "paths": {path: Disk._node(node) for path, node in fs.paths.items()},
        }

    @staticmethod
    def _node(node: Any) -> Dict[str, Any]:
        return {
            "dir": node.is_dir, "etag": node.etag, "last_modified": node.last_modified,
            "created": node.created, "metadata": node.metadata, "content": node.content,
            "blob": node.blob, "size": len(node.data), "blocks": node.blocks,
        }

    def load(self, fs_cls: Any, node_cls: Any) -> Dict[str, Any]:
        """Rebuild the file systems written by ``save`` (empty when there is no index)."""
        if not os.path.exists(self.index):
            return {}
        with open(self.index, encoding="utf-8") as f:
            state = json.load(f)
        return {name: self._load_fs(name, raw, fs_cls, node_cls) for name, raw in state.items()}

    def _load_fs(self, name: str, raw: Dict[str, Any], fs_cls: Any, node_cls: Any) -> Any:
        fs = fs_cls(name, raw["metadata"])
        fs.etag, fs.last_modified = raw["etag"], raw["last_modified"]
        for path, item in raw["paths"].items():
            fs.paths[path] = self._load_node(item, node_cls)
        return fs

    def _load_node(self, item: Dict[str, Any], node_cls: Any) -> Any:
        node = node_cls(item["dir"], item["metadata"], item["content"])
        node.etag, node.last_modified, node.created = (
            item["etag"], item["last_modified"], item["created"])
        node.blob = item["blob"]
        node.blocks = [(block_id, size) for block_id, size in item.get("blocks", [])]
        blob_path = os.path.join(self.blobs, node.blob)
        if item["size"] and os.path.exists(blob_path):
            with open(blob_path, "rb") as f:
                node.data = f.read()
        return node

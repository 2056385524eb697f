"""Deterministic file contents, the same in a stack's process and in the test's."""

from __future__ import annotations

import hashlib


def payload(name: str, size: int) -> bytes:
    """``size`` bytes derived from ``name``: what a stack writes and the test expects."""
    block = b"".join(hashlib.sha256(("%s/%d" % (name, i)).encode()).digest() for i in range(64))
    return (block * (size // len(block) + 1))[:size]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

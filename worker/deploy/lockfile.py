"""Hashed lock files as uv writes them: one entry per pin, with its hashes and comments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import FrozenSet, List

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-fA-F]{64})")


def normalize(name: str) -> str:
    """The PEP 503 form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One pinned project: its name (normalized), version, allowed sha256s and lock text."""

    name: str
    version: str
    hashes: FrozenSet[str]
    text: str


def parse(text: str) -> List[Pin]:
    """The pins of a hashed lock, in file order; comments between entries are dropped."""
    pins = []
    for block in _blocks(text):
        match = _PIN.match(block)
        if match:
            hashes = frozenset(h.lower() for h in _HASH.findall(block))
            pins.append(Pin(normalize(match.group(1)), match.group(2), hashes, block))
    return pins


def _blocks(text: str) -> List[str]:
    """Entries: a line at column 0 and the indented lines after it."""
    blocks: List[List[str]] = []
    for line in text.splitlines():
        if line[:1].isspace() and blocks:
            blocks[-1].append(line)
        elif line.strip() and not line.startswith("#"):
            blocks.append([line])
    return ["\n".join(block) + "\n" for block in blocks]

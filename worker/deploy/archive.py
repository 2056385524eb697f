"""A reproducible zip: entries sorted by name, one fixed time, fixed modes.

Every entry gets mode 0644: nothing in a package may depend on an executable bit (Batch may
drop them when it extracts), and with none set the mistake shows up everywhere, not only on
Batch. Wheels are stored as they are (they are zips already); everything else is deflated.
The zip is written to a temporary file beside the target and renamed into place.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Dict, Union

from .errors import OutputError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_MODE = 0o100644 << 16
_UNIX = 3

Content = Union[bytes, Path]


class AtomicOutput:
    """The output path, claimed before the build starts: a temporary file beside it that
    becomes the output on :meth:`commit` and is removed otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            raise OutputError("cannot write %s: it is a folder" % path)
        self.tmp = path.with_name(".%s.tmp-%d" % (path.name, os.getpid()))
        try:
            self._handle = open(str(self.tmp), "xb")  # noqa: SIM115 (kept until commit)
        except OSError as e:
            raise OutputError("cannot write %s: %s" % (path, e.strerror or e)) from e

    def write_zip(self, entries: Dict[str, Content]) -> None:
        try:
            with zipfile.ZipFile(self._handle, "w", allowZip64=True) as archive:
                for name in sorted(entries):
                    archive.writestr(_info(name), _read(entries[name]))
            self._handle.flush()
        except OSError as e:
            raise OutputError("cannot write %s: %s" % (self.path, e.strerror or e)) from e

    def commit(self) -> None:
        self._handle.close()
        try:
            os.replace(str(self.tmp), str(self.path))
        except OSError as e:
            raise OutputError("cannot write %s: %s" % (self.path, e.strerror or e)) from e

    def discard(self) -> None:
        self._handle.close()
        try:
            os.unlink(str(self.tmp))
        except OSError:
            pass


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.create_system = _UNIX
    info.external_attr = _MODE
    info.compress_type = zipfile.ZIP_STORED if name.endswith(".whl") else zipfile.ZIP_DEFLATED
    return info


def _read(content: Content) -> bytes:
    return content.read_bytes() if isinstance(content, Path) else content


"""The standard library's top-level module names, per CPython version: what a handler may
import on a node without a requirement (``sys.stdlib_module_names`` exists from 3.10 only, and
a package is often built on another Python than its nodes').

Made from ``sys.stdlib_module_names`` of CPython 3.10 to 3.13, and for 3.8 and 3.9 from
3.10's with the modules their "What's New" pages list as added and removed (checked against
the modules of 3.8.18 and 3.9.18 themselves); every platform's modules are listed (a
handler may import ``winreg`` under a platform test). tests/test_package_imports.py checks
the list of the Python it runs on.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, List, Tuple

#: CPython 3.12's.
_BASE_NAMES = (
    "__future__ _abc _aix_support _ast _asyncio _bisect _blake2 _bz2 _codecs _codecs_cn "
    "_codecs_hk _codecs_iso2022 _codecs_jp _codecs_kr _codecs_tw _collections "
    "_collections_abc _compat_pickle _compression _contextvars _crypt _csv _ctypes _curses "
    "_curses_panel _datetime _dbm _decimal _elementtree _frozen_importlib "
    "_frozen_importlib_external _functools _gdbm _hashlib _heapq _imp _io _json _locale "
    "_lsprof _lzma _markupbase _md5 _msi _multibytecodec _multiprocessing _opcode _operator "
    "_osx_support _overlapped _pickle _posixshmem _posixsubprocess _py_abc _pydatetime "
    "_pydecimal _pyio _pylong _queue _random _scproxy _sha1 _sha2 _sha3 _signal "
    "_sitebuiltins _socket _sqlite3 _sre _ssl _stat _statistics _string _strptime _struct "
    "_symtable _thread _threading_local _tkinter _tokenize _tracemalloc _typing _uuid "
    "_warnings _weakref _weakrefset _winapi _zoneinfo abc aifc antigravity argparse array "
    "ast asyncio atexit audioop base64 bdb binascii bisect builtins bz2 cProfile calendar "
    "cgi cgitb chunk cmath cmd code codecs codeop collections colorsys compileall "
    "concurrent configparser contextlib contextvars copy copyreg crypt csv ctypes curses "
    "dataclasses datetime dbm decimal difflib dis doctest email encodings ensurepip enum "
    "errno faulthandler fcntl filecmp fileinput fnmatch fractions ftplib functools gc "
    "genericpath getopt getpass gettext glob graphlib grp gzip hashlib heapq hmac html http "
    "idlelib imaplib imghdr importlib inspect io ipaddress itertools json keyword lib2to3 "
    "linecache locale logging lzma mailbox mailcap marshal math mimetypes mmap modulefinder "
    "msilib msvcrt multiprocessing netrc nis nntplib nt ntpath nturl2path numbers opcode "
    "operator optparse os ossaudiodev pathlib pdb pickle pickletools pipes pkgutil platform "
    "plistlib poplib posix posixpath pprint profile pstats pty pwd py_compile pyclbr pydoc "
    "pydoc_data pyexpat queue quopri random re readline reprlib resource rlcompleter runpy "
    "sched secrets select selectors shelve shlex shutil signal site smtplib sndhdr socket "
    "socketserver spwd sqlite3 sre_compile sre_constants sre_parse ssl stat statistics "
    "string stringprep struct subprocess sunau symtable sys sysconfig syslog tabnanny "
    "tarfile telnetlib tempfile termios textwrap this threading time timeit tkinter token "
    "tokenize tomllib trace traceback tracemalloc tty turtle turtledemo types typing "
    "unicodedata unittest urllib uu uuid venv warnings wave weakref webbrowser winreg "
    "winsound wsgiref xdrlib xml xmlrpc zipapp zipfile zipimport zlib zoneinfo"
)
_BASE = frozenset(_BASE_NAMES.split())

#: What each other version has (more, fewer) than 3.12.
_CHANGES: Dict[str, Tuple[str, str]] = {
    "3.8": (
        "_bootlocale _dummy_thread _sha256 _sha512 asynchat asyncore binhex distutils "
        "dummy_threading formatter imp parser smtpd symbol",
        "_aix_support _pydatetime _pylong _sha2 _tokenize _typing _zoneinfo graphlib tomllib "
        "zoneinfo"),
    "3.9": (
        "_bootlocale _bootsubprocess _peg_parser _sha256 _sha512 asynchat asyncore binhex "
        "distutils formatter imp parser smtpd symbol",
        "_pydatetime _pylong _sha2 _tokenize _typing tomllib"),
    "3.10": (
        "_bootsubprocess _sha256 _sha512 asynchat asyncore binhex distutils imp smtpd",
        "_pydatetime _pylong _sha2 _tokenize _typing tomllib"),
    "3.11": (
        "_bootsubprocess _sha256 _sha512 asynchat asyncore distutils imp smtpd",
        "_pydatetime _pylong _sha2"),
    "3.13": (
        "_android_support _colorize _interpchannels _interpqueues _interpreters _ios_support "
        "_opcode_metadata _pyrepl _suggestions _sysconfig _wmi",
        "_crypt _msi aifc audioop cgi cgitb chunk crypt imghdr lib2to3 mailcap msilib nis "
        "nntplib ossaudiodev pipes sndhdr spwd sunau telnetlib uu xdrlib"),
}
#: Always importable, whatever the version.
_ALWAYS = frozenset(("__future__", "__main__"))


def stdlib_modules(python: str) -> FrozenSet[str]:
    """The top-level names of CPython ``python``'s standard library (``"3.8"``); a version
    not listed gets the nearest one's."""
    known = sorted(list(_CHANGES) + ["3.12"], key=_version)
    if python not in known:
        below = [v for v in known if _version(v) <= _version(python)]
        python = below[-1] if below else known[0]
    more, fewer = _CHANGES.get(python, ("", ""))
    return (_BASE | frozenset(more.split()) | _ALWAYS) - frozenset(fewer.split())


def stdlib_versions(name: str) -> List[str]:
    """The versions listed here whose standard library has the top-level module ``name``."""
    known = sorted(list(_CHANGES) + ["3.12"], key=_version)
    return [v for v in known if name in stdlib_modules(v)]


def _version(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))

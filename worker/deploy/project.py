"""The user's project: which files go into the package's ``app/``, which modules they hold,
where the requirements are declared, and whether anything looks like a secret.

A project is a folder of handler modules. Everything in it is packaged except caches and
tool folders (:data:`ALWAYS_IGNORED`), the control files (``.workerignore``,
``apt-sources.json``) and what ``.workerignore`` lists (gitignore syntax). A file whose name
or content looks like a secret refuses the build unless ``allow_secret_files`` is set.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .errors import NoHandlerError, PackageUsageError, SecretFileError

IGNORE_FILE = ".workerignore"
APT_SOURCES = "apt-sources.json"
DEPLOY_SPEC = "batch.toml"  # python -m worker spec's file: a job's settings, not the code's
#: Control files read by the builder (or by ``spec``), not packaged under app/.
CONTROL_FILES = (IGNORE_FILE, APT_SOURCES, DEPLOY_SPEC)

#: Never packaged (gitignore syntax): caches, version control, virtualenvs, tool state.
ALWAYS_IGNORED = (
    "__pycache__/", "*.py[cod]", ".git/", ".hg/", ".svn/", ".venv/", ".tox/", ".nox/",
    ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".ipynb_checkpoints/", "*.egg-info/",
    ".worker/", ".DS_Store", ".idea/", ".vscode/",
)

#: File names that look like secrets (case-insensitive globs on the file's name).
SECRET_NAMES: Dict[str, str] = {
    ".env": "a dotenv file",
    ".env.*": "a dotenv file",
    "*.pem": "a PEM key or certificate",
    "*.key": "a private key",
    "*.pfx": "a PKCS#12 certificate with its key",
    "*.p12": "a PKCS#12 certificate with its key",
    "*.jks": "a Java keystore",
    "*.keystore": "a keystore",
    "*.ppk": "a PuTTY private key",
    "*.kdbx": "a KeePass database",
    "*.publishsettings": "Azure publish settings",
    "id_rsa": "an SSH private key",
    "id_dsa": "an SSH private key",
    "id_ecdsa": "an SSH private key",
    "id_ed25519": "an SSH private key",
    "local.settings.json": "Azure Functions local settings",
    "secrets.json": "a secrets file",
    "secrets.yaml": "a secrets file",
    "secrets.yml": "a secrets file",
    "secrets.toml": "a secrets file",
    "credentials.json": "a credentials file",
    ".netrc": "a netrc file",
    ".pgpass": "a PostgreSQL password file",
    ".pypirc": "a PyPI credentials file",
    ".git-credentials": "git credentials",
}
#: Folders whose every file is a credential store (Azure CLI tokens, AWS keys, SSH keys, GnuPG).
SECRET_DIRS = (".azure", ".aws", ".ssh", ".gnupg")
#: A dotenv template (.env.example) holds no secrets.
TEMPLATE_SUFFIXES = (".example", ".sample", ".template", ".dist")
#: Content that is a secret wherever it is (files up to CONTENT_SCAN_BYTES are read).
SECRET_CONTENT = (
    (re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"), "a private key"),
    (re.compile(rb"AccountKey=[A-Za-z0-9+/]{40,}={0,2}"), "a storage account key"),
)
CONTENT_SCAN_BYTES = 1 << 20


@dataclass(frozen=True)
class Project:
    """What the builder takes from a project folder."""

    root: Path
    files: Tuple[Tuple[str, Path], ...]  # (path under app/, file), sorted
    modules: Tuple[str, ...]  # importable module names, sorted
    requirements: Optional[Path]  # requirements.txt or pyproject.toml, when it declares any
    apt_sources: Optional[Path]
    name: str
    version: str
    optional_imports: Tuple[str, ...] = ()  # modules the code runs without

    @property
    def module_files(self) -> List[Tuple[str, Path]]:
        """The packaged files that are importable modules: (path in the project, file)."""
        return [(rel, path) for rel, path in self.files if module_name(rel)]


def load_project(root: Path, allow_secret_files: bool = False,
                 exclude: Sequence[Path] = ()) -> Project:
    """Scan ``root``; raise the error that explains why it cannot be packaged."""
    if not root.is_dir():
        raise PackageUsageError("project folder not found: %s" % root)
    files = _collect(root, _ignore_spec(root), {p.resolve() for p in exclude})
    if not allow_secret_files:
        _refuse_secrets(root, files)
    modules = tuple(sorted({m for m in (module_name(rel) for rel, _ in files) if m}))
    if not modules:
        raise NoHandlerError(
            "no Python module in %s: a project is a folder of handler modules "
            "(e.g. handlers/sales.py with def daily(ctx, date))" % root
        )
    name, version, requirements = _declared(root)
    apt = root / APT_SOURCES
    return Project(root, tuple(files), modules, requirements, apt if apt.is_file() else None,
                   name, version, _optional_imports(root))


def _ignore_spec(root: Path):
    import pathspec

    lines = list(ALWAYS_IGNORED)
    ignore_file = root / IGNORE_FILE
    if ignore_file.is_file():
        lines += ignore_file.read_text(encoding="utf-8").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _collect(root: Path, spec, exclude) -> List[Tuple[str, Path]]:
    """Every packaged file as (relative posix path, path), in a stable order."""
    found = []
    for directory, dirnames, filenames in os.walk(str(root)):
        base = Path(directory)
        rel_dir = base.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for name in sorted(dirnames):
            rel = prefix + name
            if spec.match_file(rel + "/") or (base / name / "pyvenv.cfg").exists():
                continue
            if (base / name).is_symlink():
                raise PackageUsageError(
                    "%s is a symlinked folder, which is not packaged: copy it into the project "
                    "or list it in %s" % (root / rel, IGNORE_FILE))
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            rel = prefix + name
            path = base / name
            if rel in CONTROL_FILES or spec.match_file(rel) or path.resolve() in exclude:
                continue
            found.append((rel, path))
    return sorted(found)


def _refuse_secrets(root: Path, files: List[Tuple[str, Path]]) -> None:
    found = [(rel, why) for rel, why in ((rel, _secret_reason(rel, path)) for rel, path in files)
             if why]
    if found:
        rel, why = found[0]
        more = " (and %d more)" % (len(found) - 1) if len(found) > 1 else ""
        raise SecretFileError(
            "%s looks like a secret (%s)%s; remove it, list it in %s, or pass "
            "--allow-secret-files" % (root / rel, why, more, IGNORE_FILE))


def _secret_reason(rel: str, path: Path) -> str:
    """Why a file looks like a secret, or empty."""
    parts = rel.split("/")
    for folder in parts[:-1]:
        if folder.lower() in SECRET_DIRS:
            return "a file in a %s folder" % folder
    name = parts[-1].lower()
    if not name.endswith(TEMPLATE_SUFFIXES):
        for pattern, why in SECRET_NAMES.items():
            if fnmatch.fnmatchcase(name, pattern):
                return why
    return _secret_content(path)


def _secret_content(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(CONTENT_SCAN_BYTES)
    except OSError:
        return ""
    for pattern, why in SECRET_CONTENT:
        if pattern.search(head):
            return "it contains %s" % why
    return ""


def module_name(rel: str) -> str:
    """The module a .py file is imported as from app/, or empty."""
    if not rel.endswith(".py"):
        return ""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    if parts and all(part.isidentifier() for part in parts):
        return ".".join(parts)
    return ""


def _declared(root: Path) -> Tuple[str, str, Optional[Path]]:
    """Name, version and the requirements file: requirements.txt, else pyproject.toml's
    [project] (its name, version and static dependencies)."""
    name, version = root.resolve().name, "1.0.0"
    pyproject = root / "pyproject.toml"
    table = _project_table(pyproject) if pyproject.is_file() else None
    if table is not None:
        name = str(table.get("name") or name)
        version = str(table.get("version") or version)
    if (root / "requirements.txt").is_file():
        return name, version, root / "requirements.txt"
    if table is not None and "dependencies" in table.get("dynamic", []):
        raise PackageUsageError(
            "%s declares its dependencies as dynamic; list them in [project].dependencies or "
            "in a requirements.txt" % pyproject)
    if table is not None and table.get("dependencies"):
        return name, version, pyproject
    return name, version, None


def _project_table(path: Path) -> Optional[dict]:
    table = _toml(path).get("project")
    return table if isinstance(table, dict) else None


def _toml(path: Path) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, ValueError) as e:
        raise PackageUsageError("cannot read %s: %s" % (path, e)) from e


def _optional_imports(root: Path) -> Tuple[str, ...]:
    """Modules the code runs without: ``[package] optional_imports`` of batch.toml and
    ``[tool.batch-worker] optional-imports`` of pyproject.toml."""
    found: List[str] = []
    for name, section, key in ((DEPLOY_SPEC, ("package",), "optional_imports"),
                               ("pyproject.toml", ("tool", "batch-worker"), "optional-imports")):
        path = root / name
        if not path.is_file():
            continue
        table = _toml(path)
        for part in section:
            table = table.get(part) if isinstance(table, dict) else None
        value = table.get(key) if isinstance(table, dict) else None
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise PackageUsageError("%s: [%s] %s must be a list of module names, e.g. "
                                    '["ujson", "cupy"], got %r'
                                    % (path, ".".join(section), key, value))
        found.extend(value)
    return tuple(sorted(set(found)))

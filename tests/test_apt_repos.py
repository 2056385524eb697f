"""Third-party apt repositories in the start task: bootstrap/aptsources.py and bootstrap/aptrepo.sh.

The declaration's parser is tested in-process. The start task is tested for real, as root, with
this machine's apt, gpg and dpkg and no network beyond loopback: the module builds a throwaway
signing key (and a second one that signs nothing of ours), two small .debs (one whose preinst
refuses to install unless ACCEPT_EULA=Y, as msodbcsql17's does), and a signed repository
(Packages, Release and InRelease written here, signed with the throwaway key), served on a
loopback HTTP server that records every request.

These tests change the machine's real apt configuration, under names unique to the session
(worker-bwt<hex>-*.sources, worker-bwt<hex>-*.gpg, packages bwt<hex>-*), and each one removes
what it wrote: the packages are purged, the sources, keyrings, index files and cached .debs
deleted. Since they change the machine outside their own folders, they run only when asked:
WORKER_TEST_HOST_CHANGES=1 (.ci/run sets it); otherwise, and without root, apt, gpg or
dpkg-deb, they skip and say which. CI runs as root.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bootstrap"))

import aptsources  # noqa: E402
from test_starttask import (  # noqa: E402, F401  (the fixtures are used by name)
    cached_wheelhouse,
    last_stderr_line,
    node_env,
    python38,
    starttask,
    wheels,
)

SOURCES_DIR = Path("/etc/apt/sources.list.d")
KEYRINGS_DIR = Path("/etc/apt/keyrings")
LISTS_DIR = Path("/var/lib/apt/lists")
ARCHIVES_DIR = Path("/var/cache/apt/archives")
TOKEN = "bwt" + secrets.token_hex(3)  # this session's names: repositories and packages
EULA = TOKEN + "-eula"
EXTRA = TOKEN + "-extra"
MICROSOFT_FPR = "BC528686B50D79E339D3721CEB3E94ADBE1229CF"


# ---------------------------------------------------------------------------------------------
# The declaration, in-process
# ---------------------------------------------------------------------------------------------

def microsoft(**changes) -> Dict[str, object]:
    repo: Dict[str, object] = {
        "name": "microsoft-prod",
        "uris": ["https://packages.microsoft.com/ubuntu/22.04/prod"],
        "suites": ["jammy"],
        "components": ["main"],
        "architectures": ["amd64"],
        "key_url": "https://packages.microsoft.com/keys/microsoft.asc",
        "fingerprint": MICROSOFT_FPR,
        "packages": ["msodbcsql17", "mssql-tools", "unixodbc-dev"],
        "environment": {"ACCEPT_EULA": "Y"},
    }
    repo.update(changes)
    return {k: v for k, v in repo.items() if v is not None}


def parse(data: object, base: Optional[Path] = None) -> List[aptsources.Repository]:
    return aptsources.parse(json.dumps(data), base or Path("/nonexistent"))


def documented_example() -> Dict[str, object]:
    """The declaration shown in docs/starttask.md, "Third-party apt repositories"."""
    text = (REPO / "docs" / "starttask.md").read_text()
    section = text[text.index("## Third-party apt repositories") :]
    return json.loads(section[section.index("```json") + 7 : section.index("```\n", 10)])


def test_the_documented_example_plans_the_microsoft_repository():
    lines = aptsources.plan_lines(parse(documented_example()), "/etc/apt/keyrings")
    keyring = "/etc/apt/keyrings/worker-microsoft-prod.gpg"
    assert lines[:4] == [
        "repo\tmicrosoft-prod\t%s\t%s\turl\thttps://packages.microsoft.com/keys/microsoft.asc"
        % (MICROSOFT_FPR, keyring),
        "uris\thttps://packages.microsoft.com/ubuntu/22.04/prod",
        "packages\tmsodbcsql17 mssql-tools unixodbc-dev",
        "install\tmsodbcsql17 mssql-tools unixodbc-dev\tACCEPT_EULA=Y",
    ]
    source = [line[len("source\t") :] for line in lines[4:]]
    assert re.fullmatch(r"# stamp [0-9a-f]{64}", source[1])
    assert source[0].startswith("# Written by batch-worker's start task")
    assert source[2:] == [
        "Types: deb",
        "URIs: https://packages.microsoft.com/ubuntu/22.04/prod",
        "Suites: jammy",
        "Components: main",
        "Architectures: amd64",
        "Signed-By: " + keyring,
    ]


def test_packages_are_grouped_by_the_environment_their_install_needs():
    repo = parse({"repositories": [microsoft(packages=[
        "msodbcsql17",
        {"name": "unixodbc-dev", "environment": {"ACCEPT_EULA": "N", "ODBC": "a b=c"}},
        "mssql-tools",
    ])]})[0]
    assert repo.installs() == [
        (["msodbcsql17", "mssql-tools"], [("ACCEPT_EULA", "Y")]),
        (["unixodbc-dev"], [("ACCEPT_EULA", "N"), ("ODBC", "a b=c")]),
    ]
    assert parse({"repositories": [microsoft(environment=None)]})[0].installs() == [
        (["msodbcsql17", "mssql-tools", "unixodbc-dev"], [])
    ]


def stamp(repo: aptsources.Repository) -> str:
    return repo.source_lines("/etc/apt/keyrings")[1]


def test_the_stamp_follows_the_declaration_and_nothing_else(tmp_path):
    base = stamp(parse({"repositories": [microsoft()]})[0])
    reordered = dict(reversed(list(microsoft().items())))
    assert stamp(parse({"repositories": [reordered]}, tmp_path)[0]) == base
    spaced = microsoft(fingerprint=" ".join(re.findall("....", MICROSOFT_FPR)).lower())
    assert stamp(parse({"repositories": [spaced]})[0]) == base
    for changed in (
        microsoft(packages=["msodbcsql17"]),
        microsoft(environment={"ACCEPT_EULA": "N"}),
        microsoft(suites=["noble"]),
        microsoft(architectures=["amd64", "arm64"]),
    ):
        assert stamp(parse({"repositories": [changed]})[0]) != base
    assert parse({"repositories": [microsoft()]})[0].source_lines("/k")[1] != base
    (tmp_path / "key.asc").write_bytes(b"one")
    with_file = stamp(parse({"repositories": [microsoft(key_file="key.asc")]}, tmp_path)[0])
    (tmp_path / "key.asc").write_bytes(b"two")
    assert stamp(parse({"repositories": [microsoft(key_file="key.asc")]}, tmp_path)[0]) != with_file


def test_a_key_file_is_read_relative_to_the_declaration_and_wins_over_the_url(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "microsoft.asc").write_text("key")
    declaration = tmp_path / "apt-sources.json"
    declaration.write_text(json.dumps({"repositories": [microsoft(key_file="keys/microsoft.asc")]}))
    first = aptsources.plan(declaration, "/etc/apt/keyrings")[0].split("\t")
    assert first[4:] == ["file", str(tmp_path / "keys" / "microsoft.asc")]


def test_no_repositories_is_an_empty_plan(tmp_path):
    declaration = tmp_path / "apt-sources.json"
    declaration.write_text('{"repositories": []}')
    assert aptsources.plan(declaration, "/etc/apt/keyrings") == []


BAD = [
    ("[]", 'must be a JSON object with "repositories", got a list'),
    ('{"repositories": [], "repositories": []}', "duplicate field 'repositories'"),
    ('{"repos": []}', "unknown field 'repos' (expected repositories)"),
    ('{"repositories": {}}', '"repositories" must be a list, got an object'),
    ("{", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
]
BAD_REPO = [
    ({"name": "Microsoft"}, 'repositories[0].name must be lower-case letters, digits, \'.\', \'_\' or \'-\', got "Microsoft"'),
    ({"fingerprint": "BC52"}, 'repositories[0] (microsoft-prod).fingerprint must be the key\'s full fingerprint (40 or 64 hex digits), got "BC52"'),
    ({"fingerprint": None}, "repositories[0] (microsoft-prod): missing field 'fingerprint'"),
    ({"uris": "https://packages.microsoft.com/ubuntu/22.04/prod"}, "repositories[0] (microsoft-prod).uris must be a non-empty list of strings, got a string"),
    ({"uris": ["ftp://example.com/x"]}, 'repositories[0] (microsoft-prod).uris: "ftp://example.com/x" is not valid'),
    ({"suites": ["./"]}, 'repositories[0] (microsoft-prod).suites: "./" is not valid'),
    ({"components": []}, "repositories[0] (microsoft-prod).components must be a non-empty list of strings, got a list"),
    ({"architectures": ["amd64", "amd64"]}, "repositories[0] (microsoft-prod).architectures lists an entry twice"),
    ({"key_url": None}, "repositories[0] (microsoft-prod) needs key_url or key_file (the repository's signing key)"),
    ({"key_url": "packages.microsoft.com/keys/microsoft.asc"}, 'repositories[0] (microsoft-prod).key_url must be an http(s) URL, got "packages.microsoft.com/keys/microsoft.asc"'),
    ({"packages": []}, "repositories[0] (microsoft-prod).packages must be a non-empty list, got a list"),
    ({"packages": ["MSODBC"]}, 'repositories[0] (microsoft-prod).packages[0]: "MSODBC" is not a Debian package name'),
    ({"packages": [{"name": "msodbcsql17", "env": {}}]}, "repositories[0] (microsoft-prod).packages[0]: unknown field 'env' (expected name, environment)"),
    ({"environment": {"ACCEPT_EULA": True}}, "repositories[0] (microsoft-prod).environment.ACCEPT_EULA must be a one-line string"),
    ({"environment": {"ACCEPT-EULA": "Y"}}, "repositories[0] (microsoft-prod).environment: 'ACCEPT-EULA' is not a variable name"),
    ({"environment": {"LD_PRELOAD": "x.so"}}, "repositories[0] (microsoft-prod).environment: LD_PRELOAD is reserved: the start task sets it, or it changes how apt runs"),
    ({"environment": ["ACCEPT_EULA=Y"]}, 'repositories[0] (microsoft-prod).environment must be an object of NAME: "value", got a list'),
    ({"signed_by": "x"}, "repositories[0] (microsoft-prod): unknown field 'signed_by' (expected name, uris, suites, components, architectures, key_url, key_file, fingerprint, packages, environment)"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_malformed_declaration_is_one_line_naming_the_problem(text, message):
    with pytest.raises(aptsources.DeclarationError) as caught:
        aptsources.parse(text, Path("/nonexistent"))
    assert str(caught.value) == message


@pytest.mark.parametrize(("changes", "message"), BAD_REPO)
def test_a_malformed_repository_is_one_line_naming_the_field(changes, message):
    with pytest.raises(aptsources.DeclarationError) as caught:
        parse({"repositories": [microsoft(**changes)]})  # None removes the field
    assert str(caught.value) == message


def test_a_package_or_a_name_declared_twice_is_refused(tmp_path):
    with pytest.raises(aptsources.DeclarationError, match=r"^two repositories are named 'microsoft-prod'$"):
        parse({"repositories": [microsoft(), microsoft(packages=["odbc"])]})
    with pytest.raises(aptsources.DeclarationError, match=r"^package msodbcsql17 is declared twice \(in microsoft-prod and other\)$"):
        parse({"repositories": [microsoft(), microsoft(name="other", packages=["msodbcsql17"])]})
    with pytest.raises(aptsources.DeclarationError, match=r"^package odbc is declared twice \(in microsoft-prod and microsoft-prod\)$"):
        parse({"repositories": [microsoft(packages=["odbc", {"name": "odbc"}])]})


def test_a_missing_key_file_names_the_path(tmp_path):
    with pytest.raises(aptsources.DeclarationError) as caught:
        parse({"repositories": [microsoft(key_file="keys/microsoft.asc")]}, tmp_path)
    assert str(caught.value) == (
        "repositories[0] (microsoft-prod).key_file %s/keys/microsoft.asc cannot be read "
        "(No such file or directory)" % tmp_path
    )


def test_the_command_line_prints_one_line_naming_the_file(tmp_path, capsys):
    declaration = tmp_path / "apt-sources.json"
    declaration.write_text(json.dumps({"repositories": [microsoft(packages="msodbcsql17")]}))
    assert aptsources.main(["plan", "--keyrings", "/k", str(declaration)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "%s: repositories[0] (microsoft-prod).packages must be a non-empty list, got a string\n"
        % declaration
    )


def test_the_bootstrap_shell_is_shellcheck_clean_file_by_file():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck is not installed")
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "bootstrap").glob("*.sh"))
    result = subprocess.run([shellcheck, "-x", *files], cwd=str(REPO), stdout=subprocess.PIPE, text=True)
    assert result.returncode == 0, result.stdout


# ---------------------------------------------------------------------------------------------
# The start task, for real: a signed repository on loopback
# ---------------------------------------------------------------------------------------------

PREINST = """#!/bin/sh
set -e
if [ "$1" = install ] || [ "$1" = upgrade ]; then
  if [ "${ACCEPT_EULA:-}" != Y ]; then
    echo "The EULA was not accepted; set ACCEPT_EULA=Y" >&2
    exit 1
  fi
  echo "preinst of $DPKG_MAINTSCRIPT_PACKAGE: ACCEPT_EULA=$ACCEPT_EULA"
fi
"""


#: The opt-in to tests that change this machine outside their own folders (.ci/run sets it).
HOST_CHANGES = "WORKER_TEST_HOST_CHANGES"


@pytest.fixture(scope="module")
def root_apt_gpg() -> None:
    """Skip (saying why) unless asked to change this machine, and this is root with apt,
    dpkg-deb and gpg: before any other fixture of these tests does its work."""
    if os.environ.get(HOST_CHANGES) != "1":
        pytest.skip("installs and purges apt packages and writes /etc/apt on this machine: run "
                    "with %s=1 to allow it (.ci/run does)" % HOST_CHANGES)
    missing = [tool for tool in ("apt-get", "apt-cache", "dpkg-deb", "gpg", "gpgconf") if not shutil.which(tool)]
    if missing:
        pytest.skip("needs %s (the start task's apt tests use real apt and gpg)" % ", ".join(missing))
    if os.geteuid() != 0:
        pytest.skip("needs root: these tests install packages and write /etc/apt (CI runs as root)")


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


class Signer:
    """Throwaway OpenPGP keys, in a throwaway GNUPGHOME (a short path: gpg-agent's socket)."""

    def __init__(self) -> None:
        self.home = tempfile.mkdtemp(prefix="bwgpg", dir="/tmp")
        self.env = dict(os.environ, GNUPGHOME=self.home)

    def new_key(self, uid: str) -> str:
        self.gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        listing = self.gpg("--with-colons", "--list-keys", uid).stdout
        return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][0]

    def export(self, fingerprint: str, dest: Path) -> Path:
        self.gpg("--armor", "--output", str(dest), "--export", fingerprint)
        return dest

    def clearsign(self, fingerprint: str, source: Path, dest: Path) -> None:
        self.gpg("--yes", "--local-user", fingerprint, "--output", str(dest), "--clearsign", str(source))

    def gpg(self, *args: str) -> subprocess.CompletedProcess:
        return run("gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", *args, env=self.env)

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


def build_deb(work: Path, name: str, preinst: Optional[str]) -> Path:
    root = work / name
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: batch-worker tests "
        "<tests@example.invalid>\nDescription: a package of the apt repository tests\n" % name
    )
    if preinst:
        script = root / "DEBIAN" / "preinst"
        script.write_text(preinst)
        script.chmod(0o755)
    deb = work / ("%s_1.0_all.deb" % name)
    run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb))
    return deb


def publish_repository(top: Path, debs: List[Path], signer: Signer, fingerprint: str, arch: str) -> None:
    """A signed repository at ``top``: suite stable, component main, the .debs in pool/."""
    (top / "pool").mkdir(parents=True)
    stanzas = []
    for deb in debs:
        shutil.copy2(str(deb), str(top / "pool" / deb.name))
        data = deb.read_bytes()
        control = run("dpkg-deb", "--field", str(deb)).stdout.rstrip("\n")
        stanzas.append(
            "%s\nFilename: pool/%s\nSize: %d\nSHA256: %s\n"
            % (control, deb.name, len(data), hashlib.sha256(data).hexdigest())
        )
    dist = top / "dists" / "stable"
    index = "main/binary-%s/Packages" % arch
    (dist / index).parent.mkdir(parents=True)
    packages = "\n".join(stanzas).encode()
    (dist / index).write_bytes(packages)
    (dist / (index + ".gz")).write_bytes(gzip.compress(packages))
    release = [
        "Origin: batch-worker tests",
        "Label: batch-worker tests",
        "Suite: stable",
        "Codename: stable",
        "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime()),
        "Architectures: " + arch,
        "Components: main",
        "SHA256:",
    ]
    for name in (index, index + ".gz"):
        data = (dist / name).read_bytes()
        release.append(" %s %d %s" % (hashlib.sha256(data).hexdigest(), len(data), name))
    (dist / "Release").write_text("\n".join(release) + "\n")
    signer.clearsign(fingerprint, dist / "Release", dist / "InRelease")


class Server:
    """A loopback HTTP server for a folder, recording the path of every request."""

    def __init__(self, directory: Path) -> None:
        requests = self.requests = []  # type: List[str]

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def log_message(self, format, *args):  # noqa: A002 (the base class's name)
                requests.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Site:
    """What the module serves: keys/good.asc and keys/other.asc, and two repositories signed
    by the good key: main/ (declared by the tests) and other/ (never declared)."""

    def __init__(self, top: Path, signer: Signer, server: Server, good: str, other: str):
        self.top, self.signer, self.server = top, signer, server
        self.good, self.other = good, other

    @property
    def url(self) -> str:
        return self.server.url

    def requests(self) -> List[str]:
        return list(self.server.requests)


@pytest.fixture(scope="module")
def site(root_apt_gpg, tmp_path_factory) -> Site:
    arch = run("dpkg", "--print-architecture").stdout.strip()
    work = tmp_path_factory.mktemp("aptsite")
    top = work / "site"
    (top / "keys").mkdir(parents=True)
    signer = Signer()
    try:
        good = signer.new_key("batch-worker tests <good@example.invalid>")
        other = signer.new_key("batch-worker tests <other@example.invalid>")
        signer.export(good, top / "keys" / "good.asc")
        signer.export(other, top / "keys" / "other.asc")
        debs = [build_deb(work, EULA, PREINST), build_deb(work, EXTRA, None)]
        for folder in ("main", "other"):
            publish_repository(top / folder, debs, signer, good, arch)
    finally:
        signer.close()
    server = Server(top)
    yield Site(top, signer, server, good, other)
    server.close()


@pytest.fixture(scope="module")
def node(root_apt_gpg, tmp_path_factory, wheels) -> Dict[str, str]:  # noqa: F811
    """The environment of a provisioned node: the start task's runs take the worker
    environment's fast path, so what they do beyond it is the apt work."""
    env = node_env(tmp_path_factory.mktemp("aptnode") / "batch-worker", wheels)
    result = starttask(env)
    assert result.returncode == 0, result.stderr
    return env


def installed(package: str) -> bool:
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package], capture_output=True, text=True
    )
    return status.stdout == "ii "


def ours(names: List[str], port: int) -> List[str]:
    return sorted(n for n in names if TOKEN in n or n.startswith("127.0.0.1:%d_" % port))


def apt_state(site: Site) -> Dict[str, object]:
    """What the tests could leave behind on the machine, and the machine-wide trust."""
    def listing(path: Path) -> List[str]:
        return sorted(os.listdir(str(path))) if path.is_dir() else []

    return {
        "sources": ours(listing(SOURCES_DIR), site.server.port),
        "keyrings": ours(listing(KEYRINGS_DIR), site.server.port),
        "lists": ours(listing(LISTS_DIR), site.server.port),
        "trusted.gpg.d": listing(Path("/etc/apt/trusted.gpg.d")),
        "trusted.gpg": Path("/etc/apt/trusted.gpg").exists(),
        "installed": [p for p in (EULA, EXTRA) if installed(p)],
        "stages": sorted(str(p) for p in Path("/tmp").glob("worker-apt.*")),
    }


def remove_traces(site: Site) -> None:
    for package in (EULA, EXTRA):
        subprocess.run(["dpkg", "--purge", package], capture_output=True)
    for folder in (SOURCES_DIR, KEYRINGS_DIR, LISTS_DIR):
        for name in ours(os.listdir(str(folder)) if folder.is_dir() else [], site.server.port):
            (folder / name).unlink()
    for deb in ARCHIVES_DIR.glob(TOKEN + "-*.deb"):
        deb.unlink()


@pytest.fixture
def clean(site: Site) -> Iterator[Dict[str, object]]:
    """The machine's state before the test; afterwards everything the test wrote is removed."""
    remove_traces(site)
    before = apt_state(site)
    assert before["sources"] == before["keyrings"] == before["installed"] == []
    yield before
    remove_traces(site)


def declare(tmp_path: Path, site: Site, suffix: str, **changes) -> Path:
    repo = {
        "name": "%s-%s" % (TOKEN, suffix),
        "uris": [site.url + "/main"],
        "suites": ["stable"],
        "components": ["main"],
        "architectures": [run("dpkg", "--print-architecture").stdout.strip()],
        "key_url": site.url + "/keys/good.asc",
        "fingerprint": site.good,
        "packages": [EULA],
        "environment": {"ACCEPT_EULA": "Y"},
    }
    repo.update(changes)
    path = tmp_path / "apt-sources.json"
    path.write_text(json.dumps({"repositories": [{k: v for k, v in repo.items() if v is not None}]}))
    return path


def start(node: Dict[str, str], declaration: Path, *args: str) -> subprocess.CompletedProcess:
    result = starttask(dict(node, WORKER_APT_SOURCES=str(declaration)), *args)
    assert "up to date: %s/venv" % node["WORKER_ENV_ROOT"] in result.stdout or result.returncode
    return result


def apt_lines(result: subprocess.CompletedProcess) -> List[str]:
    """apt's own progress lines about indexes and downloads."""
    return [x for x in result.stdout.splitlines() if re.match(r"^(Get|Hit|Ign|Err):\d+ ", x)]


def test_the_declared_repository_installs_with_the_licence_variable(node, site, clean, tmp_path):
    declaration = declare(tmp_path, site, "install")
    requests = len(site.requests())
    result = start(node, declaration)
    assert result.returncode == 0, result.stderr
    assert "preinst of %s: ACCEPT_EULA=Y" % EULA in result.stdout
    assert installed(EULA)
    name = "%s-install" % TOKEN
    keyring = KEYRINGS_DIR / ("worker-%s.gpg" % name)
    source = (SOURCES_DIR / ("worker-%s.sources" % name)).read_text().splitlines()
    assert source[2:] == [
        "Types: deb",
        "URIs: %s/main" % site.url,
        "Suites: stable",
        "Components: main",
        "Architectures: " + run("dpkg", "--print-architecture").stdout.strip(),
        "Signed-By: %s" % keyring,
    ]
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o644
    shown = run("gpg", "--homedir", str(tmp_path), "--batch", "--with-colons", "--show-keys", str(keyring)).stdout
    assert [x.split(":")[9] for x in shown.splitlines() if x.startswith("fpr:")][:1] == [site.good]
    # The key and the declared repository's index were fetched once each, then the package;
    # apt fetched nothing else (no update of the machine's other sources).
    made = site.requests()[requests:]
    assert made.count("/keys/good.asc") == made.count("/main/dists/stable/InRelease") == 1, made
    assert "/main/pool/%s_1.0_all.deb" % EULA in made
    assert all(r == "/keys/good.asc" or r.startswith("/main/") for r in made), made
    assert apt_lines(result) and all(site.url + "/main" in line for line in apt_lines(result))
    assert "updating every source" not in result.stdout
    after = apt_state(site)
    for unchanged in ("trusted.gpg.d", "trusted.gpg"):
        assert after[unchanged] == clean[unchanged], unchanged
    # no staging folder left behind (another start task on this machine may come and go)
    assert not set(after["stages"]) - set(clean["stages"])
    assert not any("apt-key" in line for line in result.stdout.splitlines())


def test_a_rerun_is_a_no_op_and_a_changed_declaration_sets_up_again(node, site, clean, tmp_path):
    key = tmp_path / "keys" / "vendor.asc"
    key.parent.mkdir()
    shutil.copy2(str(site.top / "keys" / "good.asc"), str(key))
    declaration = declare(tmp_path, site, "rerun", key_url=None, key_file="keys/vendor.asc")
    assert start(node, declaration).returncode == 0
    sources = SOURCES_DIR / ("worker-%s-rerun.sources" % TOKEN)
    files = [sources, KEYRINGS_DIR / ("worker-%s-rerun.gpg" % TOKEN)]
    before = ([f.stat().st_mtime_ns for f in files], len(site.requests()), sources.read_text())

    again = start(node, declaration)
    assert again.returncode == 0, again.stderr
    assert "apt repositories up to date: %s-rerun" % TOKEN in again.stdout
    assert "step apt-repo-key" not in again.stdout and "+ " not in again.stdout
    assert ([f.stat().st_mtime_ns for f in files], len(site.requests()), sources.read_text()) == before

    changed = declare(tmp_path, site, "rerun", key_url=None, key_file="keys/vendor.asc", packages=[EULA, EXTRA])
    result = start(node, changed)
    assert result.returncode == 0, result.stderr
    assert "step apt-repo-install: done" in result.stdout
    assert installed(EULA) and installed(EXTRA)
    assert sources.read_text().splitlines()[1] != before[2].splitlines()[1]  # a new stamp


def test_the_key_is_trusted_for_the_declared_repository_only(node, site, clean, tmp_path):
    assert start(node, declare(tmp_path, site, "trust")).returncode == 0
    # other/ is signed by the same key; declared without Signed-By, apt must not trust it.
    work = Path(tempfile.mkdtemp(prefix="bwtrust", dir="/tmp"))
    try:
        os.chmod(str(work), 0o755)
        (work / "parts").mkdir()
        (work / "lists").mkdir()
        (work / "parts" / "other.sources").write_text(
            "Types: deb\nURIs: %s/other\nSuites: stable\nComponents: main\n" % site.url
        )
        update = run(
            "apt-get", "-q", "-o", "Dir::Etc::sourcelist=/dev/null",
            "-o", "Dir::Etc::sourceparts=%s/parts" % work, "-o", "Dir::State::Lists=%s/lists" % work,
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=", "update", check=False,
        )
    finally:
        shutil.rmtree(str(work))
    assert "NO_PUBKEY %s" % site.good[-16:] in update.stdout + update.stderr
    assert update.returncode != 0 or "W: GPG error" in update.stderr
    assert apt_state(site)["trusted.gpg.d"] == clean["trusted.gpg.d"]
    assert apt_state(site)["trusted.gpg"] == clean["trusted.gpg"]


def assert_nothing_changed(site: Site, before: Dict[str, object]) -> None:
    after = apt_state(site)
    # staging folders of /tmp: none left by this run (another start task may come and go)
    assert not set(after.pop("stages")) - set(before["stages"])  # type: ignore[call-overload]
    assert after == {k: v for k, v in before.items() if k != "stages"}


def test_a_wrong_fingerprint_is_refused_before_anything_changes(node, site, clean, tmp_path):
    requests = len(site.requests())
    result = start(node, declare(tmp_path, site, "wrongkey", fingerprint=site.other))
    assert result.returncode == 9, result.stderr
    assert last_stderr_line(result).endswith(
        "FAILED step=apt-repo-key exit=9: the key of repository '%s-wrongkey' (%s/keys/good.asc) "
        "has fingerprint %s, not the declared %s; nothing changed" % (TOKEN, site.url, site.good, site.other)
    )
    assert site.requests()[requests:] == ["/keys/good.asc"]  # the repository was never asked
    assert_nothing_changed(site, clean)


def test_a_repository_not_signed_by_the_declared_key_is_refused(node, site, clean, tmp_path):
    declaration = declare(tmp_path, site, "notsigned", key_url=site.url + "/keys/other.asc", fingerprint=site.other)
    result = start(node, declaration)
    assert result.returncode == 9, result.stderr
    line = last_stderr_line(result)
    assert re.search(
        r"FAILED step=apt-repo-index exit=9: repository '%s-notsigned' is not signed by the declared "
        r"key %s: GPG error: .*NO_PUBKEY %s; nothing changed$" % (TOKEN, site.other, site.good[-16:]), line
    ), line
    assert_nothing_changed(site, clean)


def test_a_missing_package_is_refused_before_anything_changes(node, site, clean, tmp_path):
    absent = TOKEN + "-absent"
    result = start(node, declare(tmp_path, site, "missing", packages=[EULA, absent]))
    assert result.returncode == 11, result.stderr
    assert last_stderr_line(result).endswith(
        "FAILED step=apt-repo-check exit=11: repository '%s-missing' (%s/main) has no package %s; "
        "nothing changed" % (TOKEN, site.url, absent)
    )
    assert_nothing_changed(site, clean)


def test_an_unreachable_repository_or_key_is_refused_before_anything_changes(node, site, clean, tmp_path):
    result = start(node, declare(tmp_path, site, "gone", uris=[site.url + "/gone"]))
    assert result.returncode == 10, result.stderr
    assert last_stderr_line(result).endswith(
        "FAILED step=apt-repo-index exit=10: repository '%s-gone' is unreachable: The repository "
        "'%s/gone stable Release' does not have a Release file; nothing changed" % (TOKEN, site.url)
    )
    assert_nothing_changed(site, clean)

    result = start(node, declare(tmp_path, site, "nokey", key_url=site.url + "/keys/gone.asc"))
    assert result.returncode == 10, result.stderr
    assert last_stderr_line(result).endswith(
        "FAILED step=apt-repo-key exit=10: cannot fetch the key of repository '%s-nokey' from "
        "%s/keys/gone.asc; nothing changed" % (TOKEN, site.url)
    )
    assert_nothing_changed(site, clean)


def test_a_failed_install_puts_the_sources_and_keyrings_back(node, site, clean, tmp_path):
    result = start(node, declare(tmp_path, site, "noeula", environment=None))
    assert result.returncode == 4, result.stderr
    assert "The EULA was not accepted; set ACCEPT_EULA=Y" in result.stdout + result.stderr
    assert last_stderr_line(result).endswith(
        "FAILED step=apt-repo-install exit=4: installing %s from repository '%s-noeula' failed "
        "(apt-get exited with 100, its output is above); the repositories' sources and keyrings "
        "were put back as they were" % (EULA, TOKEN)
    )
    assert_nothing_changed(site, clean)


def test_a_source_naming_the_repository_with_another_key_is_put_back(node, site, clean, tmp_path):
    """Some images ship their own source for the vendor's repository, with another keyring:
    apt would then refuse every command. (For the few seconds of this test, it does.)"""
    image = SOURCES_DIR / ("%s-image.list" % TOKEN)
    image.write_text("deb [signed-by=/usr/share/keyrings/%s-image.gpg] %s/main stable main\n" % (TOKEN, site.url))
    try:
        result = start(node, declare(tmp_path, site, "conflict"))
    finally:
        image.unlink()
    assert result.returncode == 4, result.stderr
    assert last_stderr_line(result).endswith(
        "FAILED step=apt-repo-commit exit=4: apt cannot read its sources with the declared "
        "repositories added: Conflicting values set for option Signed-By regarding source %s/main/ "
        "stable: /usr/share/keyrings/%s-image.gpg != /etc/apt/keyrings/worker-%s-conflict.gpg "
        "(another source on this node names the same repository with another key); the "
        "repositories' sources and keyrings were put back as they were" % (site.url, TOKEN, TOKEN)
    )
    assert_nothing_changed(site, clean)


def test_dry_run_prints_every_step_and_changes_nothing(node, site, clean, tmp_path):
    requests = len(site.requests())
    name = TOKEN + "-dry"
    result = start(node, declare(tmp_path, site, "dry"), "--dry-run")
    assert result.returncode == 0, result.stderr
    plan = [x[len("DRY-RUN: ") :] for x in result.stdout.splitlines() if x.startswith("DRY-RUN: ")]
    stage = "/tmp/worker-apt.XXXXXX"
    keyring = "/etc/apt/keyrings/worker-%s.gpg" % name
    expected = [
        "mktemp -d " + stage,
        "curl -fsSL --proto =https\\,http --max-time 60 -o %s/%s.key %s/keys/good.asc" % (stage, name, site.url),
        "(check that %s/%s.key is one key, %s)" % (stage, name, site.good),
        "gpg --homedir %s/gnupg --batch --no-autostart --yes --dearmor --output %s/%s.gpg %s/%s.key"
        % (stage, stage, name, stage, name),
        "chmod 0644 %s/%s.gpg" % (stage, name),
        "mkdir -p %s/%s" % (stage, name),
        "write_file %s/%s/worker-%s.sources " % (stage, name, name),
        "apt-get -q -o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts=%s/%s -o "
        "Dir::State::Lists=%s/lists -o APT::Get::List-Cleanup=0 -o Dir::Cache::pkgcache= -o "
        "Dir::Cache::srcpkgcache= update" % (stage, name, stage),
        "(check that repository %s has %s)" % (name, EULA),
        "install -d -m 0755 /etc/apt/keyrings",
        "install -m 0644 %s/%s.gpg %s.tmp." % (stage, name, keyring),
        "mv -f -- %s.tmp." % keyring,
        "write_file /etc/apt/sources.list.d/worker-%s.sources " % name,
        "cp -p -- %s/lists/\\(index\\ files\\) /var/lib/apt/lists/" % stage,
        "(check that apt reads every source)",
        "(apt-get update of every source, only if %s need packages from other sources)" % EULA,
        "env DEBIAN_FRONTEND=noninteractive ACCEPT_EULA=Y apt-get -q -y -o DPkg::Lock::Timeout=600 "
        "install --no-install-recommends " + EULA,
        "rm -rf -- " + stage,
    ]
    assert len(plan) == len(expected), plan
    for line, start_of in zip(plan, expected):
        assert line.startswith(start_of), (line, start_of)
    assert plan[12].endswith("\\nSigned-By: %s'" % keyring) and "ACCEPT_EULA" not in plan[12]
    assert not any("apt-key" in line for line in plan)
    assert site.requests()[requests:] == []
    assert_nothing_changed(site, clean)


def test_a_malformed_declaration_fails_the_start_task_before_apt(python38, tmp_path):  # noqa: F811
    declaration = tmp_path / "apt-sources.json"
    declaration.write_text(json.dumps({"repositories": [microsoft(fingerprint="BC52")]}))
    result = starttask(node_env(tmp_path / "root", None, WORKER_APT_SOURCES=str(declaration)))
    assert result.returncode == 2
    assert last_stderr_line(result).endswith(
        "FAILED step=apt-repo-plan exit=2: %s: repositories[0] (microsoft-prod).fingerprint must be "
        "the key's full fingerprint (40 or 64 hex digits), got \"BC52\"" % declaration
    )
    missing = starttask(node_env(tmp_path / "root", None, WORKER_APT_SOURCES=str(tmp_path / "nope.json")))
    assert missing.returncode == 2
    assert last_stderr_line(missing).endswith(
        "FAILED step=config exit=2: apt sources declaration not found: %s/nope.json (set "
        "WORKER_APT_SOURCES)" % tmp_path
    )
    assert not (tmp_path / "root").exists()


def test_the_package_declaration_beside_the_script_is_read_unless_the_variable_is_empty(python38, tmp_path):  # noqa: F811
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy2(str(REPO / "starttask.sh"), str(app / "starttask.sh"))
    shutil.copytree(str(REPO / "bootstrap"), str(app / "bootstrap"))
    shutil.copytree(str(REPO / "locks"), str(app / "locks"))
    (app / "apt-sources.json").write_text('{"repositories": [{"name": "x"}]}')
    env = node_env(tmp_path / "root", None)
    beside = subprocess.run(["bash", str(app / "starttask.sh")], env=env, capture_output=True, text=True)
    assert beside.returncode == 2
    assert last_stderr_line(beside).endswith(
        "FAILED step=apt-repo-plan exit=2: %s/apt-sources.json: repositories[0] (x): missing field 'uris'" % app
    )
    env["WORKER_APT_SOURCES"] = ""
    ignored = subprocess.run(["bash", str(app / "starttask.sh")], env=env, capture_output=True, text=True)
    assert "apt-repo" not in ignored.stdout + ignored.stderr
    assert "FAILED step=stamp exit=2: no worker wheel" in last_stderr_line(ignored)  # it went on

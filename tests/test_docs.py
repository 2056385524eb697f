"""The documentation: the MkDocs site under docs/ builds with ``--strict`` (no broken link or
anchor), its reference pages name every command, option, exit code and ``WORKER_*`` variable
the code has (so they cannot drift from it), and README.md stays a short front door whose
links land."""

from __future__ import annotations

import argparse
import inspect
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import markdown
import pytest
from conftest import REPO

DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
README_MAX_LINES = 250


def build_site(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True, text=True, timeout=300)


def pages() -> List[Path]:
    return sorted(DOCS.rglob("*.md"))


def headings(text: str) -> List[str]:
    """The ids Python-Markdown's toc (and so MkDocs) gives a page's headings."""
    md = markdown.Markdown(extensions=["toc", "tables", "fenced_code"])
    md.convert(text)

    def walk(tokens) -> Iterator[str]:
        for token in tokens:
            yield token["id"]
            yield from walk(token["children"])

    return list(walk(md.toc_tokens))


def heading_lines(text: str) -> List[str]:
    """The text of each ATX heading outside fenced code, its inline markup removed."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            out.append(re.sub(r"[`*]", "", line.lstrip("#").strip()))
    return out


def github_slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def markdown_slug(title: str) -> str:
    """Python-Markdown's default toc slug (MkDocs' anchors)."""
    value = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


# -- the site ---------------------------------------------------------------------------------


def test_the_site_builds_strictly_with_every_page_in_the_nav(tmp_path):
    result = build_site(REPO / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    built = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("*.html")}
    for page in pages():
        name = page.relative_to(DOCS).with_suffix("").as_posix()
        expected = "index.html" if name == "index" else name + "/index.html"
        assert expected in built, name


@pytest.mark.parametrize("link, complaint", [
    ("[x](handlers.md#no-such-anchor)", "no-such-anchor"),
    ("[x](no-such-page.md)", "no-such-page.md"),
    ("[x](../README.md)", "README.md"),
])
def test_a_broken_link_or_anchor_fails_the_build(tmp_path, link, complaint):
    """The strict build above would prove nothing if the validation settings let these by."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\n" + link + "\n")
    result = build_site(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert complaint in result.stderr, result.stderr


def test_every_heading_has_the_same_anchor_on_github_and_on_the_site():
    """Links with anchors work on both only if both slug a heading alike; ids are unique."""
    for page in pages() + [REPO / "README.md"]:
        titles = heading_lines(page.read_text())
        differ = [t for t in titles if github_slug(t) != markdown_slug(t)]
        assert not differ, (page.name, differ)
        slugs = [markdown_slug(t) for t in titles]
        assert len(slugs) == len(set(slugs)), (page.name, sorted(slugs))


def repo_paths(text: str) -> Set[str]:
    """Repository paths named in code spans: `worker/lake/http.py`, `tests/reliability/`."""
    found = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        if re.fullmatch(r"(worker|tests|bench|examples|bootstrap|locks|docs)/[\w./-]*", span):
            found.add(span)
    return found


def test_every_repository_path_the_docs_name_exists():
    """design.md is left out: it names the modules of features still being built."""
    missing = []
    for page in [p for p in pages() if p.name != "design.md"] + [REPO / "README.md"]:
        missing += ["%s: %s" % (page.name, p) for p in sorted(repo_paths(page.read_text()))
                    if not (REPO / p).exists()]
    assert not missing, missing


# -- the reference pages ----------------------------------------------------------------------


def sections(path: Path) -> Dict[str, str]:
    """Each ``##``/``###`` heading's text (without backticks) -> the text up to the next one."""
    out: Dict[str, str] = {}
    title = ""
    for line in path.read_text().splitlines():
        match = re.match(r"#{2,3} (.*)", line)
        if match:
            title = match.group(1).replace("`", "").strip()
            out[title] = ""
        else:
            out[title] = out.get(title, "") + line + "\n"
    return out


def commands() -> Iterator[Tuple[str, argparse.ArgumentParser]]:
    """Every command and subcommand of ``python -m worker``, with its parser (each command's
    arguments are added only when it is the one run, so the parser is built per command)."""
    from worker.cli import build_parser

    def subparsers(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    for name in subparsers(build_parser([])):
        parser = subparsers(build_parser([name]))[name]
        yield name, parser
        for sub, subparser in subparsers(parser).items():
            yield name + " " + sub, subparser


def test_the_commands_reference_has_every_command_and_option():
    reference = sections(REFERENCE / "commands.md")
    found = list(commands())
    assert len(found) >= 14
    missing = []
    for name, parser in found:
        if name not in reference:
            missing.append("no section '## %s' (or '### %s')" % (name, name))
            continue
        for action in parser._actions:
            longs = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
            missing += ["%s: %s" % (name, o) for o in longs
                        if not re.search(r"(?<![\w-])%s(?![\w-])" % o, reference[name])]
    assert not missing, "docs/reference/commands.md lacks: %s" % missing


def test_the_exit_codes_reference_has_every_code_and_error_of_errors_py():
    from worker import errors

    text = (REFERENCE / "exit-codes.md").read_text()
    task = sections(REFERENCE / "exit-codes.md")["Tasks: run and exec"]
    codes = {name: value for name, value in vars(errors).items()
             if name.isupper() and isinstance(value, int)}
    assert len(codes) >= 10
    for name, code in codes.items():
        row = r"^\| %d\+N " % code if name == "SIGNALLED" else r"^\| %d +\|" % code
        assert re.search(row, task, re.MULTILINE), (name, code)
    from worker.deploy.commandline import LAUNCHER_MEANINGS

    launcher = sections(REFERENCE / "exit-codes.md")["The task launcher (task.sh)"]
    for code in LAUNCHER_MEANINGS:  # status explains a task's exit with these too
        assert re.search(r"^\| %d +\|" % code, launcher, re.MULTILINE), code
    classes = [c for c in vars(errors).values() if inspect.isclass(c)
               and issubclass(c, BaseException) and c.__module__ == errors.__name__]
    assert len(classes) >= 20
    for cls in classes:
        row = re.search(r"^\| `worker\.(errors\.)?%s` \|.*$" % cls.__name__, text, re.MULTILINE)
        assert row, cls.__name__
        assert "`%s`" % cls.code in row.group(0), (cls.__name__, cls.code)


def variables_read() -> Set[str]:
    """Every WORKER_* variable the code reads: names the Python code quotes, variables the
    shell scripts expand with a default or test (``${WORKER_X:-...}``, ``${WORKER_X+set}``),
    and those the tests read from the environment."""
    found: Set[str] = set()
    for path in (REPO / "worker").rglob("*.py"):
        found |= set(re.findall(r"[\"'](WORKER_[A-Z0-9_]+)[\"']", path.read_text()))
    scripts = list((REPO / "bootstrap").glob("*.sh")) + [
        REPO / "starttask.sh", REPO / "task.sh", REPO / "tests" / "run.sh"]
    for path in scripts:
        found |= set(re.findall(r"\$\{(WORKER_[A-Z0-9_]+)(?::?[-=+?])", path.read_text()))
    for path in (REPO / "tests").rglob("*.py"):
        found |= set(re.findall(r"environ(?:\.get\(|\[)[\"'](WORKER_[A-Z0-9_]+)[\"']",
                                path.read_text()))
    return found - {"WORKER_TEST_MARKER"}  # a test handler's own marker, set by its test


def test_the_configuration_reference_has_every_variable_the_code_reads():
    found = variables_read()
    assert {"WORKER_LAKE_URL", "WORKER_SECRET_", "WORKER_ENV_ROOT", "WORKER_TEST_PYTHONS",
            "WORKER_RELIABILITY"} <= found
    text = (REFERENCE / "configuration.md").read_text()
    missing = sorted(v for v in found if "`" + v not in text)
    assert not missing, "docs/reference/configuration.md lacks: %s" % missing


def test_every_variable_the_configuration_reference_names_is_in_the_code():
    """The other way round: a variable the code no longer has does not linger in the docs."""
    code = "".join(p.read_text() for p in list((REPO / "worker").rglob("*.py"))
                   + list((REPO / "bootstrap").glob("*")) + list((REPO / "tests").rglob("*.py"))
                   + [REPO / "starttask.sh", REPO / "task.sh", REPO / "tests" / "run.sh"]
                   if p.is_file())
    named = set(re.findall(r"`(WORKER_[A-Z0-9_]+)", (REFERENCE / "configuration.md").read_text()))
    assert len(named) >= 30
    assert sorted(v for v in named if v not in code) == []


def test_every_command_the_docs_run_exists():
    names = {name for name, _ in commands()}
    used = set()
    for page in pages() + [REPO / "README.md"]:
        used |= set(re.findall(r"python -m worker ([a-z][a-z-]*(?: [a-z]+)?)", page.read_text()))
    assert len(used) >= 10
    parents = {name.split()[0] for name in names if " " in name}  # lake: lake ls, lake get...

    def known(use: str) -> bool:
        words = use.split()
        if words[0] in parents and len(words) > 1:
            return use in names
        return words[0] in names

    unknown = sorted(u for u in used if not known(u))
    assert not unknown, unknown


# -- README: the front door -------------------------------------------------------------------


def test_the_readme_is_a_short_front_door_into_every_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", text))
    every = {p.relative_to(REPO).as_posix() for p in pages()}
    assert every <= linked, sorted(every - linked)


def test_every_link_of_the_readme_lands():
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert len(links) >= 20
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        path, _, anchor = link.partition("#")
        target = REPO / path if path else REPO / "README.md"
        assert target.exists(), link
        if anchor:
            assert anchor in headings(target.read_text()), link


def test_the_readme_shows_the_test_commands_ci_runs():
    """CI runs the README's test command: the same lines, so a newcomer runs what CI runs."""
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    commands = [line.strip() for line in ci.splitlines() if "bash tests/run.sh" in line]
    assert "bash tests/run.sh" in commands
    for command in commands:
        assert re.search(r"^%s( |$)" % re.escape(command), readme, re.MULTILINE), command


# -- bench/RESULTS.md: the latest figures; history by date ------------------------------------


def test_bench_results_keep_the_latest_per_benchmark_and_the_history_by_date():
    bench = REPO / "bench"
    text = (bench / "RESULTS.md").read_text()
    for script in sorted(bench.glob("bench_*.py")):
        assert "bench/%s" % script.name in text, script.name  # each with its command
        assert "`bench/%s`" % script.name in (DOCS / "benchmarks.md").read_text(), script.name
    parts = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert len(parts) >= 10
    for part in parts:
        title = part.splitlines()[0]
        if title != "The network model":  # the method the others name
            assert re.search(r"(measured|run,)\s+20\d\d-\d\d-\d\d", part, re.I), title
    history = sorted((bench / "results").iterdir())
    assert history and all(re.fullmatch(r"20\d\d-\d\d-\d\d\.md", p.name) for p in history)
    for page in history:
        assert "](results/%s)" % page.name in text, page.name
        assert page.read_text().startswith("# Benchmark results of %s\n" % page.stem)

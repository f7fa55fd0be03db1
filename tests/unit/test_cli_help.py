"""Every `--help` fits 80 columns and ends with examples that name real commands and options; shell completion;
`demo --path`; the guides ship in the package and every topic a help text names exists."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kubeward.cli.docs import guides, referenced_topics
from kubeward.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def _commands() -> list[tuple[list[str], click.Command]]:
    ctx = click.Context(cli)
    out: list[tuple[list[str], click.Command]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])

    walk(cli, [])
    return out


COMMANDS = _commands()


def _help(path: list[str], columns: int = 80) -> str:
    r = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": str(columns)})
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "kubeward")
def test_help_fits_80_columns_and_ends_with_examples(path: list[str]) -> None:
    text = _help(path)
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert wide == []
    assert "\n  Examples:\n" in text
    wide_examples = _help(path, 200).split("\n  Examples:\n", 1)[1]
    assert text.split("\n  Examples:\n", 1)[1] == wide_examples  # examples are never wrapped: copy, paste, run
    assert "docs/" not in text  # a pip user has no docs/ folder: help points to `kubeward docs TOPIC`


def _example_commands(text: str) -> list[list[str]]:
    """The kubeward command lines of a help's Examples section (continuations joined, shell redirections cut)."""
    block = text.split("\n  Examples:\n", 1)[1]
    joined = block.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        words = shlex.split(line.strip(), comments=True)
        for i, w in enumerate(words):
            if w in (">", ">>", "|"):
                words = words[:i]
                break
        if words and words[0] == "kubeward":
            found.append(words[1:])
    return found


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "kubeward")
def test_examples_name_real_commands_and_options(path: list[str]) -> None:
    examples = _example_commands(_help(path, 200))
    assert examples
    ctx = click.Context(cli)
    for words in examples:
        cmd: click.Command = cli
        rest = list(words)
        while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
            sub = cmd.get_command(ctx, rest[0])
            assert sub is not None, f"{words}: no command {rest[0]!r}"
            cmd, rest = sub, rest[1:]
        assert not isinstance(cmd, click.Group) or not rest, words
        known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        for w in rest:
            if w.startswith("-") and w != "-":
                assert w.split("=", 1)[0] in known, f"{words}: {cmd.name} has no option {w}"


# ---- completion --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script(shell: str) -> None:
    r = CliRunner().invoke(cli, ["completion", shell])
    assert r.exit_code == 0 and "_KUBEWARD_COMPLETE" in r.stdout and f"{shell}_complete" in r.stdout
    if shell == "bash" and shutil.which("bash"):
        check = subprocess.run(["bash", "-n"], input=r.stdout, text=True, capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr


def _complete(words: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "_KUBEWARD_COMPLETE": "bash_complete",
           "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    out = subprocess.run([sys.executable, "-m", "kubeward.cli.main"], env=env, capture_output=True, text=True,
                         timeout=60)
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if "," in line]


def test_completion_completes_commands_and_options() -> None:
    assert "rbac" in _complete("kubeward rb")
    assert _complete("kubeward node check --show") == ["--show-passed"]
    assert "who-can" in _complete("kubeward rbac ")


def test_completion_rejects_an_unknown_shell() -> None:
    r = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert r.exit_code == 2


# ---- demo --path -----------------------------------------------------------------------------------------------

def test_demo_path_prints_where_the_demo_lives() -> None:
    r = CliRunner().invoke(cli, ["demo", "--path"])
    where = Path(r.stdout.strip())
    assert r.exit_code == 0 and where.is_absolute() and sorted(where.glob("*.yaml"))
    scanned = CliRunner().invoke(cli, ["scan", str(where), "-o", "json", "--fail-on", "none"])
    demo = CliRunner().invoke(cli, ["demo", "-o", "json", "--fail-on", "none"])
    assert scanned.exit_code == demo.exit_code == 0 and len(scanned.stdout) > 1000


# ---- the guides ------------------------------------------------------------------------------------------------

def test_every_docs_page_is_a_topic_and_prints() -> None:
    pages = guides()
    assert set(pages) == {p.stem for p in (REPO / "docs").glob("*.md")}
    r = CliRunner().invoke(cli, ["docs"])
    assert r.exit_code == 0 and "audit " in r.stdout and "Audit logging" in r.stdout
    r = CliRunner().invoke(cli, ["docs", "audit"])
    assert r.exit_code == 0 and r.stdout == (REPO / "docs/audit.md").read_text()


def test_unknown_topic_is_a_usage_error_with_a_suggestion() -> None:
    r = CliRunner().invoke(cli, ["docs", "audi"])
    assert r.exit_code == 2 and "did you mean audit" in r.stderr


def test_every_topic_a_help_text_names_exists() -> None:
    named: set[str] = set()
    for path, _ in COMMANDS:
        named |= referenced_topics(_help(path, 200))
    assert "audit" in named  # audit analyze --rules, audit policy generate --profile
    assert named <= set(guides()), named - set(guides())


def test_the_guides_are_package_data_and_a_build_ships_them(tmp_path: Path) -> None:
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "guides/*.md" in conf["tool"]["setuptools"]["package-data"]["kubeward"]
    link = REPO / "src/kubeward/guides"
    assert link.resolve() == (REPO / "docs").resolve()
    pytest.importorskip("setuptools")
    work = tmp_path / "tree"
    work.mkdir()
    shutil.copy(REPO / "pyproject.toml", work)
    shutil.copy(REPO / "README.md", work)
    shutil.copytree(REPO / "docs", work / "docs")
    shutil.copytree(REPO / "src", work / "src", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                            "--build-lib", str(tmp_path / "lib")], cwd=work, capture_output=True, text=True,
                           timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    shipped = tmp_path / "lib/kubeward/guides"
    assert not shipped.is_symlink() and (shipped / "audit.md").read_text() == (REPO / "docs/audit.md").read_text()


def _documented_command_lines() -> list[tuple[str, list[str]]]:
    """`kubeward …` lines of the code blocks in docs/ and the README (comments, pipes, redirections cut)."""
    found = []
    for page in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]:
        inside = False
        for n, line in enumerate(page.read_text().replace("\\\n", " ").splitlines(), 1):
            if line.startswith("```"):
                inside = not inside
                continue
            text = line.strip().removeprefix("$ ").removeprefix("# ")
            if not inside or not re.match(r"kubeward (-|[a-z0-9]+\b)", text) or ": " in text:
                continue  # outside code, or a line of output ("kubeward peak RSS: 168 MB")
            text = text.split(" #", 1)[0].split("|", 1)[0].split(">", 1)[0].split(";", 1)[0]
            try:
                words = shlex.split(text)
            except ValueError:
                continue
            found.append((f"{page.name}:{n}", [w for w in words[1:] if w not in ("…", "...")]))
    return found


def test_documented_commands_and_options_exist() -> None:
    ctx = click.Context(cli)
    lines = _documented_command_lines()
    assert len(lines) > 100
    wrong = []
    for where, words in lines:
        cmd: click.Command = cli
        rest = list(words)
        while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
            sub = cmd.get_command(ctx, rest[0])
            if sub is None:
                wrong.append(f"{where}: no command {rest[0]!r}")
                break
            cmd, rest = sub, rest[1:]
        subcommands: dict[str, click.Command] = getattr(cmd, "subcommands", {})  # `vulns update`
        if rest and rest[0] in subcommands:
            cmd, rest = subcommands[rest[0]], rest[1:]
        known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        for w in rest:
            flag = w.lstrip("[").split("=", 1)[0].rstrip("]")
            if flag.startswith("-") and flag != "-" and flag not in known:
                wrong.append(f"{where}: {cmd.name} has no option {flag}")
    assert wrong == []

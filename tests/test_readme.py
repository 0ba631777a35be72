"""Every ``readmit`` command and flag README.md names exists (issue 21: the README must not name
what the CLI does not have). Each named command's ``--help`` runs; each named flag is one of its
options."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from readmit.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def snippets(text: str) -> list[str]:
    """The readmit command lines of the README: inline code and lines of fenced blocks."""
    found = re.findall(r"`(readmit [^`]+)`", text)
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for part in re.split(r"&&|;", line.split(" #")[0]):
                part = part.strip().removeprefix("$ ")
                if part.startswith("readmit "):
                    found.append(part)
    return [s.split(" #")[0] for s in found]


def options(command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


def resolve(snippet: str, root) -> list[tuple[list[str], str | None]]:
    """(command path, flag or None) for each command and flag the snippet names; ``a \\| b``
    names sibling commands (``registry list \\| show``)."""
    tokens = [t for t in re.split(r"[\s\[\]()]+", snippet.replace("\\|", " | ")) if t][1:]
    named: list[tuple[list[str], str | None]] = []
    path: list[str] = []
    node, parent, in_path, previous = root, None, True, None
    for token in tokens:
        if token == "|":
            previous = token
            continue
        if previous == "|" and parent is not None and token in parent.commands:
            node, path = parent.commands[token], [*path[:-1], token]
            named.append((list(path), None))
        elif in_path and token in getattr(node, "commands", {}):
            parent, node, path = node, node.commands[token], [*path, token]
            named.append((list(path), None))
        elif token.startswith("--"):
            named.append((list(path), token.split("=")[0]))
            in_path = False
        else:
            in_path = False
        previous = token
    return named


def test_every_command_and_flag_the_readme_names_exists():
    root = typer.main.get_command(app)
    runner = CliRunner()
    found = [item for s in snippets(README.read_text()) for item in resolve(s, root)]
    commands = {tuple(p) for p, _ in found}
    assert {("run",), ("medallion",), ("registry", "show"), ("config", "validate")} <= commands
    missing = []
    for path, flag in found:
        node = root
        for name in path:
            node = node.commands[name]
        if flag is not None and flag not in options(node) | {"--help"}:
            missing.append(f"readmit {' '.join(path)} {flag}")
    assert missing == [], "README names flags the CLI does not have"
    for path in sorted(commands):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)


def test_the_resolver_catches_what_does_not_exist():
    root = typer.main.get_command(app)
    named = resolve("readmit run --quarantine", root)
    assert named == [(["run"], None), (["run"], "--quarantine")] and "--quarantine" not in options(root.commands["run"])
    assert resolve("readmit registry list \\| show VERSION \\| gc [--dry-run]", root) == [
        (["registry"], None), (["registry", "list"], None), (["registry", "show"], None), (["registry", "gc"], None),
        (["registry", "gc"], "--dry-run")]

"""Every ``tilewise`` command line the README shows is one the command accepts as
written (options renamed or removed break this test, not a newcomer's first try), and
those that finish in a moment run."""

import shlex
from pathlib import Path

import pytest

from tilewise.cli import build_parser, main

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[list[str]]:
    """The ``tilewise ...`` command lines of the README's shell blocks, comments cut,
    and the part after ``&&`` of an install-then-run line."""
    commands, shell = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            shell = line.strip() in ("```bash", "```sh", "```console")
            continue
        if not shell:
            continue
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words[:1] == ["tilewise"]:
                commands.append(words[1:])
    return commands


def test_the_readme_shows_the_main_commands():
    verbs = {tuple(c[:2]) if c[0] == "model" else (c[0],) for c in readme_commands()}
    assert {("model", "bench"), ("model", "compile"), ("model", "tune"), ("tune",),
            ("ops",)} <= verbs


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_each_readme_command_parses(argv):
    opts = build_parser().parse_args(argv)  # argparse exits (SystemExit) on a bad line
    assert callable(opts.func)


def test_the_quick_ones_run(capsys):
    for argv in readme_commands():
        if argv == ["ops"]:
            assert main(argv) == 0
    assert "gemm" in capsys.readouterr().out

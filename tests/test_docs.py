"""What the README and the documentation show works: every command composes, every link leads somewhere.

Each ``mnist-exp`` command in a ``bash`` block is run with ``--cfg job`` (a sweep's first
value standing for its range), so a renamed key or option breaks the suite, not a reader.
The other commands must know every option the page gives them (their ``--help``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep

from mnist_exp.config import compose
from mnist_exp.layout import checkout_root

ROOT = checkout_root()
pytestmark = pytest.mark.skipif(ROOT is None, reason="needs the source checkout")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))] if ROOT else []
BIN = Path(sys.executable).parent
PLACEHOLDER = "0123456789abcdef"  # stands for <run id>, <sweep A> and the like
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")
WRAPPERS = {"taskset": 2}  # a command that runs mnist-exp, and how many arguments it takes first


def bash_blocks(text: str) -> list[tuple[int, list[str]]]:
    """The fenced ``bash`` blocks of a page: (line number of the first line, lines)."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if current is None and stripped.startswith("```bash"):
            current, start = [], number + 1
        elif current is not None and stripped.startswith("```"):
            blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def logical_lines(lines: list[str], start: int) -> list[tuple[int, str, str | None]]:
    """(line number, shell line, heredoc body or None): continuations joined, heredoc bodies attached."""
    found, index = [], 0
    while index < len(lines):
        number, line = start + index, lines[index].strip()
        while line.endswith("\\") and index + 1 < len(lines):
            index += 1
            line = line[:-1] + " " + lines[index].strip()
        body = None
        if marker := HEREDOC.search(line):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == marker.group(1))
            body = "\n".join(lines[index + 1 : end])
            index = end
        found.append((number, line, body))
        index += 1
    return found


def command_words(line: str) -> list[str] | None:
    """The words of an mnist-exp command line (from the command on), or None for another command."""
    words = shlex.split(re.sub(r"<[^<>]+>", PLACEHOLDER, line), comments=True)
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        words = words[1:]  # VAR=value before the command
    if words and words[0] in WRAPPERS:
        words = words[WRAPPERS[words[0]] + 1 :]
    return words if words and words[0].startswith("mnist-exp") else None


def documented() -> list[tuple[str, list[str], list[str]]]:
    """Every mnist-exp command of the pages: (where, its words, the file-writing setup before it in its block)."""
    found = []
    for page in PAGES:
        for start, lines in bash_blocks(page.read_text()):
            setup: list[str] = []
            for number, line, body in logical_lines(lines, start):
                if body is not None:
                    setup.append(f"{line}\n{body}\n{HEREDOC.search(line).group(1)}")
                    continue
                words = command_words(line)
                if words:
                    found.append((f"{page.relative_to(ROOT)}:{number}", words, list(setup)))
    return found


def first_value(word: str) -> str:
    """An override as one job of its sweep would get it: the sweep's first value (an interval's start)."""
    if word.startswith("-") or "=" not in word:
        return word
    override = OverridesParser.create().parse_override(word)
    if not override.is_sweep_override():
        return word
    value = override.value()
    first = str(value.start) if isinstance(value, IntervalSweep) else next(iter(override.sweep_string_iterator()))
    return f"{override.get_key_element()}={first}"


def expand(word: str, home: Path) -> str:
    """A word as the shell would pass it, with ``home`` for the user's home folder."""
    word = word.replace("${HOME}", str(home)).replace("$HOME", str(home))
    return os.path.expandvars(re.sub(r"(^|=|\[|file://)~(?=/|$)", lambda m: m.group(1) + str(home), word))


COMMANDS = documented()


def test_the_pages_show_commands_and_the_readme_is_short() -> None:
    assert len(COMMANDS) >= 40, [where for where, _, _ in COMMANDS]
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_relative_link_of_the_readme_leads_to_a_file() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    local = [link for link in links if "://" not in link]
    assert local and [link for link in local if not (ROOT / link).exists()] == []


@pytest.mark.slow
@pytest.mark.parametrize(("where", "words", "setup"), COMMANDS, ids=[where for where, _, _ in COMMANDS])
def test_a_documented_command_composes(where: str, words: list[str], setup: list[str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"HOME": str(home)}
    for script in setup:  # the page's own `cat > file <<'EOF'` lines: the files its commands use
        subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True)
    program, args = words[0], [expand(word, home) for word in words[1:]]
    if program == "mnist-exp-server":
        compose(args, config_name="server")  # its arguments are overrides of conf/server.yaml
        return
    if program == "mnist-exp":
        if "launcher=ray" in args and importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
            pytest.skip("launcher=ray composes only with the [ray] extra installed")
        args = [first_value(word) for word in args if word not in ("-m", "--multirun")]
        if not {"--help", "--cfg", "--info"} & set(args):
            args = [*args, "--cfg", "job"]
        result = subprocess.run(
            [str(BIN / program), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{where}: {shlex.join(words)}\n{result.stderr[-3000:]}"
        return
    result = subprocess.run([str(BIN / program), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{where}: {program} --help\n{result.stderr[-2000:]}"
    unknown = [w.split("=")[0] for w in args if w.startswith("--") and w.split("=")[0] not in result.stdout]
    assert unknown == [], f"{where}: {program} has no option {unknown}"
    choices = re.search(r"\{([\w,]+)\}", result.stdout)
    if choices and args:  # a command with sub-commands: the page's must be one of them
        assert args[0] in choices.group(1).split(","), f"{where}: {program} has no sub-command {args[0]}"

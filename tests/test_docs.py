"""The docs stay true to the code: the proxy table is the registry's, every console-script flag the README and the
docs name exists in that command's parser, and the README stays short.

Flags are read from the commands in the markdown: fenced and indented code blocks and inline code spans that start
with a command (``lswag-bench ...``, ``python -m lswag_lightning.cli.<name> ...``). Files the docs include with
``--8<--`` are read too. Hydra commands (``lswag-train``, ``cli.bench_multirun``) are checked against Hydra's own
flags, and the ``lswag-bench`` flags a multirun passes in ``args=[...]`` against ``lswag-bench``'s parser. A span
that starts with a flag (an options list: ``--workers N``) must be a flag of some command.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from lswag_lightning.proxies import ProxyOutput, register_pass, register_proxy, temporary_registrations
from lswag_lightning.proxies.catalogue import proxy_table_markdown

ROOT = Path(__file__).resolve().parents[1]
PROXY_TABLE = ROOT / "docs" / "generated" / "proxy_table.md"
README_MAX_LINES = 150
PROJECT_NAME = "lswag-lightning"
HYDRA_MODULES = {"train", "bench_multirun"}  # Hydra entry points: their flags are Hydra's
WRAPPERS = {"nice", "time", "/usr/bin/time", "nohup", "exec"}


# ------------------------------------------------------------------------------------------------ the proxy table
def test_the_generated_proxy_table_is_the_registry():
    assert PROXY_TABLE.read_text() == proxy_table_markdown(), (
        "docs/generated/proxy_table.md is stale: the registry changed; run `make docs-tables` and commit it"
    )


def test_the_scoring_page_includes_the_generated_table():
    assert '--8<-- "docs/generated/proxy_table.md"' in (ROOT / "docs" / "scoring.md").read_text()


def test_a_new_proxy_appears_in_the_table_with_its_pass_orientation_and_escaped_description():
    before = proxy_table_markdown()
    with temporary_registrations():
        register_pass("toy doc pass", produces={"toy_doc_need": "a need for this test"})(lambda probe, work, p: 0)
        register_proxy(
            "toy_doc_proxy",
            higher_is_better=False,
            needs=("labels", "toy_doc_need"),
            description="toy: |x| <= 1, a_b",
        )(lambda data, options: ProxyOutput(value=0.0))
        table = proxy_table_markdown()
    row = next(line for line in table.splitlines() if line.startswith("| `toy_doc_proxy`"))
    assert row == (
        "| `toy_doc_proxy` | lower is better | `labels` (the probe batch), `toy_doc_need` (toy doc pass) | — "
        "| toy: \\|x\\| &lt;= 1, a\\_b |"
    )
    assert table != before and proxy_table_markdown() == before  # the page goes stale; the registry is restored


# ------------------------------------------------------------------------------------------------ the README
def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


# ------------------------------------------------------------------------------------------------ flags
@dataclass(frozen=True)
class FlagUse:
    """One flag of one command, where the docs name it."""

    command: str  # the console script (``lswag-bench``) or the module (``lswag_lightning.cli.demo``)
    module: str  # the CLI module's short name (``bench``)
    flag: str
    where: str  # ``file:line``


@cache
def console_scripts() -> dict[str, str]:
    """``lswag-bench`` -> ``bench`` for every ``[project.scripts]`` entry of pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+)\s*=\s*"lswag_lightning\.cli\.(\w+):main"', section, re.M))


def doc_files() -> list[Path]:
    """README.md, every page under docs/, and every file a page includes with ``--8<--``."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in list(files):
        for included in re.findall(r'^--8<-- "([^"]+\.md)"', page.read_text(), re.M):
            if ROOT / included not in files:
                files.append(ROOT / included)
    return files


def code_snippets(text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each code line (continuations joined) and of each inline code span."""
    lines, fenced, prose = text.splitlines(), False, []
    pending, start = "", 0
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            prose.append("")
            continue
        is_code = fenced or (line.startswith("    ") and not re.match(r"([-*+]|\d+\.|\|) ", line.lstrip()))
        prose.append("" if is_code else line)
        if not is_code:
            continue
        if not pending:
            start = number
        pending += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            yield start, pending
            pending = ""
    joined = "\n".join(prose)
    for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", joined):
        yield joined.count("\n", 0, match.start()) + 1, match.group(1).replace("\n", " ")


def commands_in(snippet: str) -> Iterator[tuple[str, str, list[str]]]:
    """(command, module, arguments) of each command of a shell snippet (``;``, ``&&``, ``|``, ``&`` separate them)."""
    for piece in re.split(r"\s(?:;|&&|\|\||\||&)(?=\s|$)|;(?=\s|$)", snippet):
        try:
            tokens = shlex.split(piece, comments=True)
        except ValueError:  # an unbalanced quote in prose: fall back to words
            tokens = piece.split("#", 1)[0].split()
        found = _command(tokens)
        if found is not None:
            yield found


def _command(tokens: list[str]) -> tuple[str, str, list[str]] | None:
    """The command a token list runs, after environment assignments and wrappers such as ``nice -n 10``."""
    i = 0
    while i < len(tokens) and (re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[i]) or tokens[i] in WRAPPERS):
        i += 3 if tokens[i] == "nice" and i + 1 < len(tokens) and tokens[i + 1] == "-n" else 1
        while i < len(tokens) and tokens[i - 1] in {"time", "/usr/bin/time"} and tokens[i] == "-v":
            i += 1
    if i >= len(tokens):
        return None
    name = tokens[i].rsplit("/", 1)[-1]
    if name.startswith("lswag-") and name != PROJECT_NAME:
        return name, console_scripts().get(name, ""), tokens[i + 1 :]
    is_python = re.fullmatch(r"python3?(\.\d+)?", name) is not None
    if is_python and tokens[i + 1 : i + 2] == ["-m"] and len(tokens) > i + 2:
        module = tokens[i + 2]
        if module.startswith("lswag_lightning.cli."):
            return module, module.rsplit(".", 1)[-1], tokens[i + 3 :]
    return None


def flags_of(arguments: list[str]) -> Iterator[tuple[str | None, str]]:
    """(module override, flag) of each flag: ``--name``, ``--name=value`` or ``-x``; a Hydra ``args=[--a,...]``
    list yields its flags for ``lswag-bench``."""
    for token in arguments:
        token = token.strip("[]()")
        if token.startswith("args=["):
            for item in token[len("args=[") :].rstrip("]").split(","):
                if item.startswith("--"):
                    yield "bench", item.split("=", 1)[0]
        elif re.fullmatch(r"--[a-z][a-z0-9-]*(=.*)?", token) or re.fullmatch(r"-[A-Za-z]", token):
            yield None, token.split("=", 1)[0]


def flag_uses(text: str, source: str) -> Iterator[FlagUse]:
    for number, snippet in code_snippets(text):
        for command, module, arguments in commands_in(snippet):
            if not module:
                yield FlagUse(command, "", "", f"{source}:{number}")  # an unknown command
                continue
            for override, flag in flags_of(arguments):
                shown = f"lswag-bench (in args=[...] of {command})" if override else command
                yield FlagUse(shown, override or module, flag, f"{source}:{number}")


@cache
def parser_flags(module: str) -> frozenset[str]:
    """Every option string of a CLI module's parser (Hydra's flags for the Hydra entry points)."""
    if module in HYDRA_MODULES:
        from hydra._internal.utils import get_args_parser

        parser = get_args_parser()
    else:
        parser = importlib.import_module(f"lswag_lightning.cli.{module}").build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    return frozenset(option for action in parser._actions for option in action.option_strings)


def unknown_flags(uses: list[FlagUse]) -> list[str]:
    problems = []
    for use in uses:
        if not use.module:
            problems.append(f"{use.where}: {use.command} is not a console script of pyproject.toml")
        elif use.flag and use.flag not in parser_flags(use.module):
            problems.append(f"{use.where}: {use.command} has no flag {use.flag}")
    return problems


def bare_flags(text: str) -> Iterator[tuple[int, str]]:
    """(line number, flag) of each inline code span that starts with a flag (``--workers N`` in an options list),
    outside paragraphs that describe a removed script of ``recipes/`` (their flags are history)."""
    prose = re.sub(r"(?ms)^\s*```.*?^\s*```", lambda m: "\n" * m.group(0).count("\n"), text)
    offset = 0
    for paragraph in re.split(r"(\n\s*\n)", prose):
        if "recipes/" not in paragraph:
            for match in re.finditer(r"(?<!`)`(--[a-z][a-z0-9-]*)[^`]*`(?!`)", paragraph):
                yield prose.count("\n", 0, offset + match.start()) + 1, match.group(1)
        offset += len(paragraph)


@cache
def every_command_flag() -> frozenset[str]:
    modules = {*console_scripts().values(), "demo", "bench_multirun"}
    return frozenset(flag for module in modules for flag in parser_flags(module))


def test_every_flag_the_docs_mention_alone_exists_in_some_command():
    problems = [
        f"{path.relative_to(ROOT)}:{number}: no command has the flag {flag}"
        for path in doc_files()
        for number, flag in bare_flags(path.read_text())
        if flag not in every_command_flag()
    ]
    assert not problems, "flags the docs mention that no command has:\n" + "\n".join(problems)


def test_the_bare_flag_check_skips_code_and_the_history_of_removed_recipes():
    text = (
        "Options: `--workers N`, `--no-such-flag`.\n\n```\n`--in-code`\n```\n\n"
        "`recipes/x.py --old-flag`, then `--old-flag` again\n"
    )
    assert list(bare_flags(text)) == [(1, "--workers"), (1, "--no-such-flag")]
    assert "--workers" in every_command_flag() and "--no-such-flag" not in every_command_flag()


def test_every_flag_the_docs_name_exists_in_its_command():
    uses = [use for path in doc_files() for use in flag_uses(path.read_text(), str(path.relative_to(ROOT)))]
    assert len({use.command for use in uses}) >= 8, "the scan found too few commands: the parser of the docs broke"
    problems = unknown_flags(uses)
    assert not problems, "flags the docs name that the commands do not have:\n" + "\n".join(problems)


SAMPLE = """
Run `lswag-search nb201 --budget 3 --no-such-search-flag`, or:

```bash
nice -n 10 lswag-bench nb201 --sample 40 \\
    --seed 0 --threads 1 --not-a-bench-flag &   # a comment --ignored-in-comments
lswag-bench nb201 --shard 1/2; wait
python -m lswag_lightning.cli.bench_multirun -m shards=2 merge=true 'args=[--n-boot,"200",--bogus-bench]'
lswag-nope --x
cd lswag-lightning && LSWAG_DATA_DIR=d .venv/bin/lswag-libra t.csv --accuracy acc
```

    lswag-train -m --config-name proxy_vs_accuracy \\
        --no-hydra-flag
"""


def test_the_flag_check_reads_blocks_spans_continuations_and_hydra_args():
    uses = list(flag_uses(SAMPLE, "sample.md"))
    seen = {(use.command, use.flag) for use in uses}
    assert {("lswag-bench", "--seed"), ("lswag-bench", "--shard"), ("lswag-libra", "--accuracy")} <= seen
    assert ("lswag-bench", "--ignored-in-comments") not in seen
    assert unknown_flags(uses) == [
        "sample.md:5: lswag-bench has no flag --not-a-bench-flag",
        "sample.md:8: lswag-bench (in args=[...] of lswag_lightning.cli.bench_multirun) has no flag --bogus-bench",
        "sample.md:9: lswag-nope is not a console script of pyproject.toml",
        "sample.md:13: lswag-train has no flag --no-hydra-flag",
        "sample.md:2: lswag-search has no flag --no-such-search-flag",
    ]


@pytest.mark.parametrize("script", sorted(console_scripts()))
def test_every_console_script_is_named_in_the_readme(script):
    assert f"`{script}`" in (ROOT / "README.md").read_text(), f"README.md: give {script} its one line"

"""The family tutorial: a family YAML file -> a short sweep -> LIBRA -> a zero-cost search -> top vs random picks.

The top candidates of the search are trained against random ones of the same size, each with several seeds
(``make family-tutorial``).

    python -m lswag_lightning.cli.family_tutorial --family examples/own_family/tiny_cnn.yaml --out runs/tutorial
    python -m lswag_lightning.cli.family_tutorial --family my_family.yaml --sweep 20 --budget 300 --epochs 3 \\
        --top 3 --seeds 3 --out runs/tutorial

The steps are the real commands (``lswag-train -m``, ``lswag-collect``, ``lswag-libra``, ``lswag-search``,
``lswag-train -m``), run one after another on the embedded digits data
(:mod:`lswag_lightning.demo.family_tutorial`); their logs go to ``<out>/logs/``, the comparison to
``<out>/tutorial.md`` and ``<out>/tutorial.json``. Exit codes: 0 done, 1 a step failed, 2 bad arguments or a bad
family file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from lswag_lightning.cli.options import build_parser as generate_parser
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.settings import CommandSettings, option
from lswag_lightning.settings import vocabulary as v
from lswag_lightning.settings.values import FilePath, Integer, TextList


@dataclass(kw_only=True)
class TutorialCommand(CommandSettings):
    """The settings of the family tutorial (see the module docstring)."""

    family: Path = option(FilePath(), metavar="FILE", help="the family's YAML file (a path or a name on the path)")
    out: Path = v.OUT.field(help="logs/, sweep/, collect/, libra/, search/, final/, tutorial.md, tutorial.json")
    sweep: int = option(
        Integer(20),
        20,
        metavar="N",
        help="candidates trained for LIBRA's table (default and least 20: LIBRA's held-out evaluation)",
    )
    epochs: int = option(Integer(1), 3, metavar="E", help="training epochs of every job (default 3)")
    budget: int = v.BUDGET.field(300, help="default 300")
    top: int = option(Integer(1), 3, metavar="K", help="best candidates of the search trained (default 3)")
    seeds: int = option(Integer(1), 3, metavar="S", help="training seeds of each final candidate (default 3)")
    random_seed: int = option(Integer(0), 0, metavar="S", help="seed of the draw of the random candidates")
    train_overrides: list[str] = option(
        TextList(),
        [],
        flags=("--train-override",),
        metavar="KEY=VALUE",
        help="extra lswag-train override for every training job (repeatable), e.g. trainer.limit_train_batches=2",
    )


def build_parser() -> argparse.ArgumentParser:
    """The tutorial's parser, generated from :class:`TutorialCommand`."""
    return generate_parser(
        TutorialCommand,
        prog="python -m lswag_lightning.cli.family_tutorial",
        description=__doc__.splitlines()[0],
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, check the family file, run the steps, print the comparison."""
    from lswag_lightning.demo.family_tutorial import TutorialError, TutorialPlan, run_tutorial
    from lswag_lightning.spaces import find_space_file, load_space

    parser = build_parser()
    args = parse_settings(TutorialCommand, parser, argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    family = find_space_file(args.family)
    try:
        if family is None:
            load_space(args.family)  # raises the one-line error naming the search path
        load_space(family).check()
    except ValueError as err:
        parser.error(str(err))
    plan = TutorialPlan(
        family=Path(family),
        out=args.out,
        sweep=args.sweep,
        epochs=args.epochs,
        budget=args.budget,
        top=args.top,
        seeds=args.seeds,
        random_seed=args.random_seed,
        train_overrides=list(args.train_overrides),
    )
    try:
        summary = run_tutorial(plan)
    except TutorialError as err:
        print(f"family tutorial: {err}", file=sys.stderr)
        return 1
    print((Path(args.out) / "tutorial.md").read_text())
    print(f"report: {Path(args.out) / 'tutorial.md'} ({summary['seconds']['total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

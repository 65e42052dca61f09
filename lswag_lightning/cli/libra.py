"""``lswag-libra``: LIBRA proxy selection, its held-out evaluation and a report; label-budget learning curves; a
ranking fitted on the trained architectures of a table.

Examples::

    lswag-libra runs/nb201/table.csv --accuracy cifar10_test_acc --params params --splits 20 --out runs/nb201/libra
    lswag-libra runs/nb201_val/table.csv --accuracy cifar10_val_acc cifar100_val_acc --budgets 10,20,50,half \
        --out runs/nb201_val/budget            # learning curves: learning_curve.csv, plots, learning_curve.md
    lswag-libra my_sweep/table.csv --accuracy val_acc --method auto --out runs/my_ranking   # rank the untrained
    lswag-libra published:nb201:cifar10 --budgets half --methods libra_rank_mean best_single all_log_rank

Without ``--budgets`` / ``--method`` it prints LIBRA's choice and the held-out Spearman numbers, and writes
``report.md`` + plots + ``libra.json`` to ``--out`` (default: ``<table stem>_libra/`` next to the table; one
sub-folder per accuracy column when several are given). Bad arguments exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lswag_lightning.analysis.auto import AUTO_RULES
from lswag_lightning.analysis.learned import KINDS, LearnedConfig
from lswag_lightning.analysis.libra import FUSION_METHODS, NONFINITE_POLICIES, evaluate
from lswag_lightning.analysis.libra_text import format_summary
from lswag_lightning.analysis.ranking_run import InputTable, join_structure, read_inputs
from lswag_lightning.analysis.table import default_proxy_columns, validate_table
from lswag_lightning.cli.options import build_parser as generate_parser
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.settings import CommandSettings, option
from lswag_lightning.settings import vocabulary as v
from lswag_lightning.settings.values import FilePath, Flag, Integer, Names, Number, Parsed, Text, TextList


def budget_list(text: str) -> list[str]:
    """``10,20,50,half`` -> ["10", "20", "50", "half"] (integers >= 3, or ``half`` = round(n / 2))."""
    items = [t.strip() for t in text.split(",") if t.strip()] if isinstance(text, str) else [str(t) for t in text]
    for item in items:
        if item != "half" and not (item.isdigit() and int(item) >= 3):
            raise ValueError(f"budgets are integers >= 3 or 'half', got {item!r}")
    if not items:
        raise ValueError("no budget given")
    return items


BUDGETS = "label budgets and learned rankings"


@dataclass(kw_only=True)
class LibraCommand(CommandSettings):
    """The settings of one ``lswag-libra`` command (see the module docstring)."""

    table: str = option(
        Text(),
        positional=True,
        help="result table (.csv, .tsv, .parquet, .json list of records, .jsonl), or published:<benchmark>[:<task>] "
        "/ published:all for NAS-Bench-Suite-Zero's published tables",
    )
    accuracy: list[str] | None = option(
        Names(), None, metavar="COL", help="accuracy column(s) (in %), higher is better"
    )
    params: str = option(Text(), "params", help="#params column, LIBRA's bias variable (default: params)")
    proxies: list[str] | None = v.PROXIES.field(
        None, help="the proxy columns (default: every numeric column except accuracy-, id- and time-like ones)"
    )
    where: list[str] = option(
        TextList(),
        [],
        metavar="COL=VALUE",
        help="keep only rows whose COL equals VALUE (compared as text); repeatable, e.g. --where dataset=cifar10 on "
        "a long table holding several datasets",
    )
    window: float = option(Number(above=0), 0.1, help="ρ window for candidates (default 0.1)")
    bins: int = option(Integer(2), 24, help="equal-frequency bins for IG (default 24)")
    fusion: str = option(Text(FUSION_METHODS), "rank_mean", help="how the chosen proxies are fused")
    splits: int = v.SPLITS.field(20, help="default 20")
    fit_fraction: float = option(Number(above=0, below=1), 0.5, help="fraction of rows to select on (default 0.5)")
    seed: int = option(Integer(0), 0, help="seed of the splits, draws and bootstrap (default 0)")
    n_boot: int = v.N_BOOT.field(1000, help="default 1000")
    nonfinite: str = option(
        Text(NONFINITE_POLICIES),
        "drop_rows",
        help="NaN/inf proxy values: drop those rows (proxies with >5% bad rows are excluded), exclude the proxy, or "
        "rank_last (keep every row; NaN/-inf rank last, AZ-NAS's rule)",
    )
    fixed_set: list[str] = option(
        TextList(),
        [],
        metavar="NAME=P1,P2,...",
        help="also evaluate the log-rank fusion of this fixed proxy set (nothing fitted); repeatable, e.g. "
        "az=az_expressivity,az_progressivity,az_trainability,flops",
    )
    greedy: bool = option(Flag(), False, help="also evaluate a log-rank set grown greedily on each selection half")
    lower_is_better: list[str] = option(
        Names(), [], metavar="NAME", help="proxies to negate before ranking (overrides the registry)"
    )
    higher_is_better: list[str] = option(
        Names(), [], metavar="NAME", help="proxies known to be higher-is-better (silences the 'assumed' note)"
    )
    accuracy_unit: str = option(Text(), "%", help="unit of the accuracy column for plot labels (default %)")
    title: str | None = option(Text(), None, help="report title")
    out: Path | None = v.OUT.field(None, help="the report's (default: <table stem>_libra/ beside the table)")
    no_report: bool = option(Flag(), False, help="print the numbers only")
    data_dir: Path | None = v.DATA_DIR.field(None, help="read for published:... tables")
    budgets: list[str] | None = option(
        Parsed(budget_list, "K,K,...|half"),
        None,
        group=BUDGETS,
        help="learning curves: comma-separated numbers k of labelled architectures (or 'half'); each method is fitted "
        "on k rows and scored on all the others, --draws times",
    )
    draws: int = option(Integer(1), 20, group=BUDGETS, help="seeded draws per budget (default 20)")
    methods: list[str] | None = option(
        Names(), None, metavar="M", group=BUDGETS, help="methods of the curves (default: all)"
    )
    method: str | None = option(
        Text(),
        None,
        metavar="M",
        group=BUDGETS,
        help="fit this method (auto, learned, greedy, best_single, libra_log_rank, ..., default) on the rows with a "
        "finite accuracy and rank every row: ranking.csv + ranking.json (a model any pool can use) in --out",
    )
    features: list[str] = option(Names(), [], metavar="COL", group=BUDGETS, help="structure feature columns (learned)")
    structure: Path | None = option(
        FilePath(), None, group=BUDGETS, help="structure table joined on arch; its columns become --features"
    )
    learned_kind: str = option(Text(KINDS), LearnedConfig.kind, group=BUDGETS, help="learned model (default blend)")
    learned_alpha: float = option(Number(), LearnedConfig.alpha, group=BUDGETS, help="ridge penalty (default 1)")
    auto_repeats: int = option(Integer(2), 10, group=BUDGETS, help="auto's inner splits (default 10)")
    auto_rule: str = option(
        Text(AUTO_RULES),
        "prefer_learned",
        group=BUDGETS,
        help="auto's choice: the learned ranking unless another method is better by one standard error on the same "
        "inner splits (default), the best mean inner ρ, or the simplest method within one standard error",
    )
    default_set: str | None = option(
        Text(),
        None,
        metavar="P1,P2",
        group=BUDGETS,
        help="proxies of method 'default' (default: the shipped k = 0 ranking, conf/ranking/default.yaml); give the "
        "set chosen without this table's benchmark to keep its labels out of the choice",
    )
    no_published_sets: bool = option(Flag(), False, group=BUDGETS, help="do not add AZ-NAS's / VKDNW_agg's fixed sets")
    no_plots: bool = option(Flag(), False, group=BUDGETS, help="learning curves without PNG plots")

    def check(self) -> None:
        if self.budgets and self.method:
            raise ValueError("--budgets (learning curves) and --method (fit one ranking) are separate runs; give one")


def build_parser() -> argparse.ArgumentParser:
    """``lswag-libra``'s parser, generated from :class:`LibraCommand`."""
    return generate_parser(
        LibraCommand,
        prog="lswag-libra",
        description="Choose LIBRA's three proxies on a result table, evaluate them on held-out architectures and "
        "write a markdown + PNG report; label-budget learning curves; a ranking fitted on the trained rows.",
    )


def parse_fixed_sets(items: Sequence[str]) -> dict[str, list[str]]:
    """``NAME=P1,P2`` items -> {NAME: [P1, P2]}; ``ValueError`` naming the malformed item."""
    sets: dict[str, list[str]] = {}
    for item in items:
        name, sep, names = item.partition("=")
        proxies = [p for p in names.split(",") if p]
        if not sep or not name or not proxies:
            raise ValueError(f"--fixed-set expects NAME=P1,P2,..., got {item!r}")
        sets[name] = proxies
    return sets


def _filtered(parser, table, conditions):
    for cond in conditions:
        col, sep, value = cond.partition("=")
        if not sep or not col:
            parser.error(f"--where expects COL=VALUE, got {cond!r}")
        if col not in table.columns:
            parser.error(
                f"--where column {col!r} not in the table; columns present: {', '.join(map(str, table.columns))}"
            )
        table = table[table[col].astype(str) == value]
        if table.empty:
            parser.error(f"no rows left after --where {cond}")
    return table.reset_index(drop=True)


def _orientation(parser, args, proxies, known) -> dict[str, bool]:
    both = set(args.lower_is_better) & set(args.higher_is_better)
    if both:
        parser.error(f"proxies named in both --lower-is-better and --higher-is-better: {', '.join(sorted(both))}")
    given = {**{n: True for n in args.higher_is_better}, **{n: False for n in args.lower_is_better}}
    unknown = [n for n in given if n not in proxies]
    if unknown:
        parser.error(
            f"orientation given for proxies not analysed: {', '.join(unknown)} (proxies: {', '.join(proxies)})"
        )
    return {**{k: v for k, v in known.items() if k in proxies}, **given}


def _prepare_input(parser, args, item: InputTable) -> tuple[InputTable, list[str], list[str], dict[str, bool]]:
    """The input after --where and --structure, its accuracy columns, proxies and orientation (exits on errors)."""
    table = _filtered(parser, item.table, args.where)
    features = list(args.features)
    if args.structure is not None:
        try:
            table, names = join_structure(table, args.structure)
        except (OSError, ValueError) as exc:
            parser.error(f"--structure: {exc}")
        features += [n for n in names if n not in features]
    accuracies = args.accuracy or item.accuracy
    if not accuracies:
        parser.error("--accuracy is required (the column(s) of trained accuracy)")
    proxies = args.proxies or item.proxies or default_proxy_columns(table, accuracies, exclude=features)
    if not proxies:
        parser.error(
            f"no proxy columns found in {item.label}; name them with --proxies "
            f"(columns present: {', '.join(map(str, table.columns))})"
        )
    params = args.params if args.params != "params" or item.params == "params" else item.params
    try:
        validate_table(table, [*accuracies, params, *proxies, *features])
    except ValueError as exc:
        parser.error(str(exc))
    item = InputTable(item.label, table, accuracies, proxies, item.higher_is_better, params)
    return item, proxies, features, _orientation(parser, args, proxies, item.higher_is_better)


def _pool_options(args, item: InputTable, features, orientation) -> dict:
    from lswag_lightning.analysis.defaults import load_default
    from lswag_lightning.analysis.rankers import PUBLISHED_FIXED_SETS

    fixed = parse_fixed_sets(args.fixed_set)
    if not args.no_published_sets:
        for name, names in PUBLISHED_FIXED_SETS.items():
            if name not in fixed and all(p in item.proxies for p in names):
                fixed[name] = list(names)
    return {
        "params": item.params,
        "features": features,
        "fixed_sets": fixed,
        "default_set": args.default_set.split(",") if args.default_set else load_default().proxies,
        "nonfinite": args.nonfinite,
        "higher_is_better": orientation,
        "window": args.window,
        "bins": args.bins,
        "learned": LearnedConfig(kind=args.learned_kind, alpha=args.learned_alpha, seed=args.seed),
        "auto_repeats": args.auto_repeats,
        "auto_rule": args.auto_rule,
    }


def _default_out(table: str, what: str) -> Path:
    """``<table stem>_<what>/`` beside a table file; ``<published spec>_<what>/`` in the working folder."""
    from lswag_lightning.analysis.report import safe_name

    if table.startswith("published:"):
        return Path(f"{safe_name(table)}_{safe_name(what)}")
    return Path(table).with_name(f"{Path(table).stem}_{safe_name(what)}")


def _run_curves(parser, args, inputs, command: str) -> int:
    from lswag_lightning.analysis.budget import learning_curve
    from lswag_lightning.analysis.budget_report import markdown, write_curves

    curves, labels = [], []
    for raw in inputs:
        item, proxies, features, orientation = _prepare_input(parser, args, raw)
        options = _pool_options(args, item, features, orientation)
        for accuracy in item.accuracy:
            n = int(item.table[accuracy].notna().sum())
            budgets = [int(round(0.5 * n)) if b == "half" else int(b) for b in args.budgets]
            try:
                curve = learning_curve(
                    item.table,
                    proxies,
                    accuracy,
                    budgets,
                    methods=args.methods,
                    draws=args.draws,
                    seed=args.seed,
                    **options,
                )
            except ValueError as exc:
                parser.error(f"{item.label} / {accuracy}: {exc}")
            label = accuracy if len(inputs) == 1 else f"{item.label} {accuracy}"
            curves.append(curve)
            labels.append(label)
            print("\n".join(markdown(curve, label)) + "\n", flush=True)
    out = args.out if args.out is not None else _default_out(args.table, "budget")
    path = write_curves(curves, out, labels, command=command, plots=not args.no_plots)
    print(f"learning curves: {path.parent / 'learning_curve.csv'}; summary: {path}")
    return 0


def _run_default(parser, args, item: InputTable) -> int:
    """``--method default`` without accuracy: the k = 0 ranking of every row."""
    from lswag_lightning.analysis.defaults import load_default
    from lswag_lightning.analysis.rankers import save_ranking
    from lswag_lightning.analysis.ranking_run import rank_without_labels

    table = _filtered(parser, item.table, args.where)
    proxies = args.default_set.split(",") if args.default_set else load_default().proxies
    try:
        ranking, ranked = rank_without_labels(table, proxies)
    except ValueError as exc:
        parser.error(str(exc))
    out = args.out if args.out is not None else _default_out(args.table, "default")
    out.mkdir(parents=True, exist_ok=True)
    ranked.to_csv(out / "ranking.csv", index=False)
    save_ranking(ranking, out / "ranking.json", table=item.label, n_labelled=0)
    print(f"k = 0 ranking (log-rank fusion of {', '.join(proxies)}, nothing fitted): {len(ranked)} rows ranked")
    print(f"{out / 'ranking.csv'}; saved ranking: {out / 'ranking.json'}")
    return 0


def _run_fit(parser, args, inputs) -> int:
    from lswag_lightning.analysis.rankers import save_ranking
    from lswag_lightning.analysis.ranking_run import fit_and_rank, ranking_summary

    if len(inputs) != 1:
        parser.error("--method fits one table; name a single table")
    if args.method == "default" and not (args.accuracy or inputs[0].accuracy):
        return _run_default(parser, args, inputs[0])
    item, proxies, features, orientation = _prepare_input(parser, args, inputs[0])
    if len(item.accuracy) != 1:
        parser.error("--method fits on one accuracy column")
    accuracy = item.accuracy[0]
    try:
        ranking, ranked = fit_and_rank(
            item.table, proxies, accuracy, args.method, **_pool_options(args, item, features, orientation)
        )
    except ValueError as exc:
        parser.error(str(exc))
    n_labelled = int(ranked["labelled"].sum())
    print("\n".join(ranking_summary(ranking, n_labelled)))
    out = args.out if args.out is not None else _default_out(args.table, args.method)
    out.mkdir(parents=True, exist_ok=True)
    ranked.to_csv(out / "ranking.csv", index=False)
    save_ranking(ranking, out / "ranking.json", table=item.label, accuracy=accuracy, n_labelled=n_labelled)
    unlabelled = ranked[~ranked["labelled"]]
    print(f"{len(ranked)} rows ranked ({len(unlabelled)} without accuracy): {out / 'ranking.csv'}")
    print(f"saved ranking (applies to any pool with its inputs): {out / 'ranking.json'}")
    return 0


def _run_libra(parser, args, item: InputTable, proxies, orientation, argv) -> int:
    """LIBRA's held-out evaluation and report, one accuracy column at a time (the classic lswag-libra)."""
    for accuracy in item.accuracy:
        try:
            ev = evaluate(
                item.table,
                proxies,
                accuracy,
                item.params,
                n_splits=args.splits,
                fit_fraction=args.fit_fraction,
                seed=args.seed,
                window=args.window,
                bins=args.bins,
                fusion=args.fusion,
                higher_is_better=orientation,
                nonfinite=args.nonfinite,
                fixed_sets=parse_fixed_sets(args.fixed_set),
                greedy=args.greedy,
            )
        except ValueError as exc:
            parser.error(str(exc))
        print(
            f"table: {args.table} ({len(item.table)} rows); accuracy: {accuracy}; params: {item.params}; "
            f"proxies ({len(proxies)}): {', '.join(proxies)}"
        )
        assumed = ev.selection.assumed_orientation
        if assumed:
            print(f"orientation assumed higher-is-better (unknown to the registry): {', '.join(assumed)}")
        print(format_summary(ev))
        if not args.no_report:
            _write_libra_report(args, item, proxies, orientation, accuracy, ev, argv)
    return 0


def _write_libra_report(args, item, proxies, orientation, accuracy, ev, argv) -> None:
    from lswag_lightning.analysis.report import safe_name, write_report

    out = args.out if args.out is not None else _default_out(args.table, "libra")
    if len(item.accuracy) > 1:
        out = out / safe_name(accuracy)
    path = write_report(
        item.table,
        out,
        accuracy=accuracy,
        proxies=proxies,
        params=item.params,
        title=args.title or f"Zero-cost proxies and LIBRA: {Path(args.table).name}",
        protocol_lines=[
            f"table: {args.table}",
            f"command: lswag-libra {' '.join(sys.argv[1:] if argv is None else argv)}",
        ],
        libra=ev,
        seed=args.seed,
        higher_is_better=orientation,
        accuracy_unit=args.accuracy_unit,
        n_boot=args.n_boot,
    )
    print(f"report: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-libra``; returns 0 on success (argparse exits with 2 on bad arguments)."""
    parser = build_parser()
    args = parse_settings(LibraCommand, parser, argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        parse_fixed_sets(args.fixed_set)
        inputs = read_inputs(args.table, args.data_dir)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read the table: {exc}")
    command = "lswag-libra " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.budgets:
        return _run_curves(parser, args, inputs, command)
    if args.method:
        return _run_fit(parser, args, inputs)
    for raw in inputs:
        item, proxies, _, orientation = _prepare_input(parser, args, raw)
        _run_libra(parser, args, item, proxies, orientation, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

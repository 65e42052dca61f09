"""Which proxies the searches' fitnesses use: LIBRA's trio (given, read from a ``lswag-libra`` result, or selected by
LIBRA on the 723 NASLib validation cells once per dataset, with that dataset's *validation* accuracy) and the fused
fitness's set (given, or the greedy set of a ``lswag-libra --greedy`` result). Validation labels choose; the test
accuracies of :mod:`.outcome` never do."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lswag_lightning.bench.ground_truth import NB201_VAL_FILE
from lswag_lightning.bench.search_eval.outcome import TEST_COLUMNS
from lswag_lightning.paths import resolve_data_dir

#: the proxies LIBRA may choose from by default
DEFAULT_CANDIDATES = "lswag,zico,naswot,synflow,jacov,snip,grad_norm,flops,params"
VAL_COLUMNS = {"cifar10": "cifar10_val_acc", "cifar100": "cifar100_val_acc", "imagenet16_120": "imagenet16_120_val_acc"}


def fused_selection(args) -> dict:
    """The fused fitness's proxies: ``--fused-proxies`` or the greedy set of ``--fused-result``; SystemExit with the
    fix when neither is given."""
    from lswag_lightning.search.fitness import load_greedy_set

    if args.fused_proxies and args.fused_result:
        raise ValueError("give --fused-proxies or --fused-result, not both")
    if args.fused_proxies:
        return {
            "proxies": list(args.fused_proxies),
            "how": "given with --fused-proxies",
        }
    if args.fused_result:
        return {"proxies": load_greedy_set(args.fused_result), "how": f"the greedy log-rank set of {args.fused_result}"}
    raise ValueError(
        "--fitnesses fused needs its set: --fused-proxies a,b,c,... or --fused-result "
        "<lswag-libra --greedy out>/libra.json"
    )


def validation_table(args, scorer, candidates) -> pd.DataFrame:
    """The NAS-Bench-Suite-Zero validation subset (723 cells): arch, params, the three validation accuracies and the
    candidates' values from ``scorer``. ``attrs["source"]`` names the file."""
    path = resolve_data_dir(args.data_dir, must_contain=NB201_VAL_FILE) / NB201_VAL_FILE
    val = pd.read_csv(path)
    space = scorer.space
    rows = []
    for _, row in val.iterrows():
        spec = space.decode(row["arch_str"])
        canon = space.encode(spec)
        result = scorer.score(spec, canon)
        rows.append(
            {
                "arch": canon,
                "params": space.param_count(spec),
                **{col: float(row[col]) for col in VAL_COLUMNS.values()},
                **{p: result.values[p] for p in candidates},
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["source"] = path.name
    return table


def select_libra_on_validation(table: pd.DataFrame, candidates, dataset: str = "cifar10") -> dict:
    """LIBRA's selection on :func:`validation_table` with ``dataset``'s validation accuracy."""
    from lswag_lightning.analysis.libra import select

    column = VAL_COLUMNS[dataset]
    sel = select(table[list(dict.fromkeys(["arch", "params", column, *candidates]))], candidates, column, "params")
    return {
        "proxies": sel.proxies,
        "higher_is_better": {p: sel.higher_is_better[p] for p in sel.proxies},
        "datasets": [dataset],
        "how": f"LIBRA select() on {sel.n_rows} NB201 archs of {table.attrs['source']} ({dataset} validation "
        f"accuracy), candidates {', '.join(candidates)}",
        "selection": sel.to_dict(),
    }


def libra_fitness_plan(selections: dict[str, dict]) -> dict[str, dict]:
    """Group per-dataset LIBRA selections by their trio: one search fitness per distinct trio, evaluated on the
    datasets that chose it. Keys: ``libra`` when every dataset chose the same trio, else ``libra[<datasets>]``."""
    groups: dict[tuple, dict] = {}
    for dataset, sel in selections.items():
        key = tuple(sel["proxies"])
        if key not in groups:
            groups[key] = {**sel, "datasets": [], "how": []}
        groups[key]["datasets"].append(dataset)
        groups[key]["how"].append(sel["how"])
    plan = {}
    for group in groups.values():
        name = "libra" if len(groups) == 1 else "libra[" + "+".join(group["datasets"]) + "]"
        group["how"] = "; ".join(dict.fromkeys(group["how"]))
        plan[name] = group
    return plan


def given_libra(args: Any) -> dict[str, dict]:
    """LIBRA's trio from ``--libra-proxies`` or ``--libra-result`` as a one-fitness plan for all three datasets, or
    {} when neither is given (then :func:`select_libra` chooses). ``ValueError`` when both are."""
    if args.libra_proxies and args.libra_result:
        raise ValueError("give --libra-proxies or --libra-result, not both")
    if args.libra_proxies:
        proxies = list(args.libra_proxies)
        return {
            "libra": {
                "proxies": proxies,
                "higher_is_better": {},
                "datasets": list(TEST_COLUMNS),
                "how": "given with --libra-proxies",
            }
        }
    if args.libra_result:
        from lswag_lightning.search import load_libra_result

        proxies, hib, _ = load_libra_result(args.libra_result)
        return {
            "libra": {
                "proxies": proxies,
                "higher_is_better": hib,
                "datasets": list(TEST_COLUMNS),
                "how": f"from {args.libra_result}",
            }
        }
    return {}


def select_libra(args: Any, scorer: Any) -> dict[str, dict]:
    """LIBRA's selection on the validation cells (``--libra-select``): once per dataset (``naslib-val``, each
    dataset searched with its own trio) or once on CIFAR-10 for all three (``naslib-val-cifar10``)."""
    candidates = args.libra_candidates
    datasets = list(TEST_COLUMNS) if args.libra_select == "naslib-val" else ["cifar10"]
    val_table = validation_table(args, scorer, candidates)
    libra = libra_fitness_plan({ds: select_libra_on_validation(val_table, candidates, ds) for ds in datasets})
    if args.libra_select == "naslib-val-cifar10":
        libra["libra"]["datasets"] = list(TEST_COLUMNS)
    for name, sel in libra.items():
        print(f"LIBRA selection {name}: {sel['proxies']} for {', '.join(sel['datasets'])}", flush=True)
    return libra


def make_fitnesses(names: list[str], libra: dict[str, dict], fused: dict | None) -> tuple[dict, dict]:
    """(search fitness name -> fitness, search fitness name -> the datasets its returned cell is evaluated on;
    plain proxy fitnesses are evaluated on all three)."""
    from lswag_lightning.search import make_fitness
    from lswag_lightning.search.fitness import FusedFitness, LibraFitness

    fitnesses, eval_datasets = {}, {}
    for name in names:
        if name == "libra":
            for fname, sel in libra.items():
                fitnesses[fname] = LibraFitness(
                    sel["proxies"], "rank_mean", sel.get("higher_is_better"), source=sel["how"]
                )
                eval_datasets[fname] = sel["datasets"]
        elif name == "fused":
            fitnesses[name] = FusedFitness(fused["proxies"], "log_rank", source=fused["how"])
        else:
            fitnesses[name] = make_fitness(name)
    return fitnesses, eval_datasets

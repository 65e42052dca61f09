"""Our NAS-Bench-101 / NAS-Bench-301 scores next to NAS-Bench-Suite-Zero's published proxy values on the same cells.

Joins a ``lswag-bench nb101|nb301`` table (``arch`` = the NASLib key) with the published values of
``naslib_zc_subsets/zc_nasbench{101,301}_subset.json`` and prints, as a markdown table, the Spearman ρ with the
published validation accuracy of every published proxy and of every proxy we scored (same cells), the ρ between
our value and the published one where both exist (agreement of rankings), and paired bootstrap differences of
L-SWAG against the best single proxy of either source and against #params.

    python recipes/bench/published_cross_check.py nb101 runs/nb101_all/table.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lswag_lightning.analysis.published import COUNTERPARTS  # our proxy -> its NB-Suite-Zero column
from lswag_lightning.analysis.table import add_vkdnw_single
from lswag_lightning.bench.score_tables import score_columns


def joined(benchmark: str, table_path: Path, data_dir: Path | None = None) -> tuple[pd.DataFrame, list, list]:
    from lswag_lightning.analysis.published import load_published

    pub = load_published(benchmark, data_dir=data_dir)
    ours = add_vkdnw_single(pd.read_csv(table_path))
    mine = [c for c in score_columns(ours) if c != "swap_reg"]
    theirs = pd.DataFrame(pub.table)[["arch", pub.accuracy, *pub.proxies]]
    theirs = theirs.rename(columns={p: f"published:{p}" for p in pub.proxies})
    table = ours[["arch", *mine]].merge(theirs, on="arch", how="inner", validate="one_to_one")
    if len(table) != len(ours):
        raise ValueError(f"{len(ours) - len(table)} of our rows have no published row: keys must be NASLib's")
    orient = {f"published:{p}": pub.higher_is_better.get(p, True) for p in pub.proxies}
    for p in pub.proxies:
        if not orient[f"published:{p}"]:
            table[f"published:{p}"] = -table[f"published:{p}"]
    return table, mine, [f"published:{p}" for p in pub.proxies]


def rho_rows(table: pd.DataFrame, columns: list[str], accuracy: str) -> pd.DataFrame:
    """ρ [95% bootstrap CI] with ``accuracy`` per column (ours oriented by the registry; the published ones are
    already oriented by :func:`joined`), and ρ between our value and its published counterpart where both exist."""
    from lswag_lightning.analysis.correlations import correlation_table

    published = {c: True for c in columns if c.startswith("published:")}
    rows = correlation_table(table, columns, accuracy, higher_is_better=published, kendall_ci=False)
    agree = []
    for col, higher in zip(rows["proxy"], rows["higher_is_better"]):
        other = f"published:{COUNTERPARTS.get(col, '')}"
        if other not in table:
            agree.append(np.nan)
            continue
        both = table[[col, other]].replace([np.inf, -np.inf], np.nan).dropna()
        ours = both[col] if higher else -both[col]  # both sides oriented: higher is better
        agree.append(ours.corr(both[other], method="spearman"))
    rows["rho_ours_vs_published"] = agree
    rows = rows.rename(columns={"spearman": "rho", "spearman_lo": "low", "spearman_hi": "high"})
    return rows.sort_values("rho", ascending=False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("benchmark", choices=("nb101", "nb301"))
    p.add_argument("table", type=Path, help="lswag-bench table.csv of that benchmark")
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args(argv)
    from lswag_lightning.analysis.correlations import paired_difference

    table, mine, published = joined(args.benchmark, args.table, args.data_dir)
    accuracy = "val_accuracy"
    rows = rho_rows(table, mine + published, accuracy)
    print(f"{args.benchmark}: {len(table)} cells, Spearman ρ with the published validation accuracy\n")
    print("| proxy | ρ [95% CI] | ours vs published ρ |\n|---|---|---|")
    for r in rows.itertuples():
        agree = "" if np.isnan(r.rho_ours_vs_published) else f"{r.rho_ours_vs_published:.3f}"
        print(f"| {r.proxy} | {r.rho:.3f} [{r.low:.3f}, {r.high:.3f}] | {agree} |")
    best = rows[rows.proxy != "lswag"].iloc[0].proxy
    hib = {c: True for c in published}
    for other in dict.fromkeys([best, "params", "zico", "naswot"]):
        d = paired_difference(table, "lswag", other, accuracy, higher_is_better=hib)
        print(f"\nL-SWAG − {other}: {d.delta:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] (n={d.n})", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

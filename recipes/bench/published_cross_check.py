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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_scores import add_vkdnw_single, score_columns  # noqa: E402

COUNTERPARTS = {"naswot": "nwot", "synflow": "synflow", "snip": "snip", "grad_norm": "grad_norm", "jacov": "jacov",
                "flops": "flops", "params": "params"}


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
    from lswag_lightning.analysis.correlations import bootstrap_spearman, percentile_interval, spearman
    from lswag_lightning.proxies.registry import get_proxy

    rows = []
    acc = table[accuracy].to_numpy(float)
    for col in columns:
        values = table[col].to_numpy(float)
        if not col.startswith("published:"):
            name = col.split(".")[0]
            if not get_proxy(name).higher_is_better:
                values = -values
        ok = np.isfinite(values) & np.isfinite(acc)
        low, high = percentile_interval(bootstrap_spearman(values[ok], acc[ok], n_boot=1000, seed=0))
        ours_vs_pub = np.nan
        if col in COUNTERPARTS and f"published:{COUNTERPARTS[col]}" in table.columns:
            other = table[f"published:{COUNTERPARTS[col]}"].to_numpy(float)
            both = ok & np.isfinite(other)
            ours_vs_pub = pd.Series(values[both]).corr(pd.Series(other[both]), method="spearman")
        rows.append({"proxy": col, "rho": spearman(values[ok], acc[ok]), "low": low, "high": high, "n": int(ok.sum()),
                     "rho_ours_vs_published": ours_vs_pub})
    return pd.DataFrame(rows).sort_values("rho", ascending=False)


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

"""Our NAS-Bench-101 / NAS-Bench-301 values next to NAS-Bench-Suite-Zero's published proxy values on the same cells
(``lswag-bench nb101|nb301 --vs-published``): a benchmark table (``arch`` = the NASLib key, from a run or from
``--score-table``) joined with the published values of ``naslib_zc_subsets/zc_nasbench{101,301}_subset.json``.

The report (markdown): the Spearman ρ [95% bootstrap CI] with the published validation accuracy of every published
proxy and of every proxy we scored (same cells), the ρ between our value and the published one where both exist
(:data:`~lswag_lightning.analysis.published.COUNTERPARTS`: agreement of rankings), and paired bootstrap differences
of L-SWAG against the best single proxy of either source, #params, ZiCo and NASWOT.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from lswag_lightning.analysis.published import COUNTERPARTS
from lswag_lightning.bench.score_tables import score_columns

ACCURACY = "val_accuracy"


def joined(
    benchmark: str, table: pd.DataFrame, data_dir: str | os.PathLike | None = None
) -> tuple[pd.DataFrame, list, list]:
    """(our table's proxy columns + the published accuracy and proxies on the same cells, our proxy columns, the
    published ones as ``published:<name>``, oriented higher-is-better). ``ValueError`` when a row has no published
    row (its ``arch`` is not a NASLib key)."""
    from lswag_lightning.analysis.published import load_published
    from lswag_lightning.analysis.table import add_vkdnw_single

    pub = load_published(benchmark, data_dir=data_dir)
    ours = add_vkdnw_single(table)
    mine = [c for c in score_columns(ours) if c != "swap_reg"]
    theirs = pd.DataFrame(pub.table)[["arch", pub.accuracy, *pub.proxies]]
    theirs = theirs.rename(columns={p: f"published:{p}" for p in pub.proxies})
    joined_table = ours[["arch", *mine]].merge(theirs, on="arch", how="inner", validate="one_to_one")
    if len(joined_table) != len(ours):
        raise ValueError(f"{len(ours) - len(joined_table)} of our rows have no published row: keys must be NASLib's")
    orient = {f"published:{p}": pub.higher_is_better.get(p, True) for p in pub.proxies}
    for p in pub.proxies:
        if not orient[f"published:{p}"]:
            joined_table[f"published:{p}"] = -joined_table[f"published:{p}"]
    return joined_table, mine, [f"published:{p}" for p in pub.proxies]


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


def agreement_report(benchmark: str, table: pd.DataFrame, data_dir: str | os.PathLike | None = None) -> str:
    """The markdown report of the module docstring for ``table`` (a benchmark table of ``benchmark``)."""
    from lswag_lightning.analysis.correlations import paired_difference

    joined_table, mine, published = joined(benchmark, table, data_dir)
    rows = rho_rows(joined_table, mine + published, ACCURACY)
    lines = [
        f"{benchmark}: {len(joined_table)} cells, Spearman ρ with the published validation accuracy",
        "",
        "| proxy | ρ [95% CI] | ours vs published ρ |",
        "|---|---|---|",
    ]
    for r in rows.itertuples():
        agree = "" if np.isnan(r.rho_ours_vs_published) else f"{r.rho_ours_vs_published:.3f}"
        lines.append(f"| {r.proxy} | {r.rho:.3f} [{r.low:.3f}, {r.high:.3f}] | {agree} |")
    best = rows[rows.proxy != "lswag"].iloc[0].proxy
    hib = {c: True for c in published}
    lines.append("")
    for other in dict.fromkeys([best, "params", "zico", "naswot"]):
        d = paired_difference(joined_table, "lswag", other, ACCURACY, higher_is_better=hib)
        lines.append(f"L-SWAG − {other}: {d.delta:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] (n={d.n})")
    return "\n".join(lines)

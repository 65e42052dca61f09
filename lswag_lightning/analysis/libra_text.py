"""Plain-text summary of a LIBRA evaluation (``lswag-libra`` and ``lswag-collect`` print it)."""

from __future__ import annotations

import math

from lswag_lightning.analysis.libra import LibraEvaluation


def _f(v) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def format_summary(ev: LibraEvaluation) -> str:
    """Plain-text summary of a LIBRA evaluation: the choice, per-proxy numbers, held-out ρ."""
    sel = ev.selection
    roles = dict(zip(sel.proxies, ("z1", "z2", "z3")))
    width = max(8, *(len(p) for p in sel.rho))
    out = [
        f"LIBRA selection on all {sel.n_rows} usable rows (window {sel.window:g}, {sel.bins} bins, "
        f"fusion {ev.fusion}): {', '.join(sel.proxies)}",
        f"b_val = Spearman(accuracy, params) = {_f(sel.bias_accuracy)}",
        f"  {'proxy':<{width}}  role  rho     IG(bits) bias",
    ]
    for p in sorted(sel.rho, key=lambda q: -sel.rho[q]):
        role = roles.get(p, "cand" if p in sel.candidates else "")
        ig = _f(sel.info_gain[p]) if p in sel.info_gain else ""
        out.append(f"  {p:<{width}}  {role:<4}  {_f(sel.rho[p]):<6}  {ig:<8} {_f(sel.bias[p])}")
    for name, why in sel.excluded.items():
        out.append(f"  excluded {name}: {why}")
    s = ev.summary()
    label_w = 34
    out += [
        "",
        f"Held-out Spearman over {ev.n_splits} random splits (select on {ev.n_fit}, evaluate on {ev.n_eval}; "
        f"seed {ev.seed}), mean ± std:",
        f"  {'method':<{label_w}}  {'held-out':<15}  in-sample (selection set)",
        f"  {'LIBRA (' + ev.fusion + ')':<{label_w}}  {_f(s['libra']['mean'])} ± {_f(s['libra']['std'])}"
        f"    {_f(ev.in_sample['libra'])}",
        f"  {'best single proxy (fit-chosen)':<{label_w}}  {_f(s['best_single']['mean'])} ± "
        f"{_f(s['best_single']['std'])}    {_f(ev.in_sample['best_single_rho'])} ({ev.in_sample['best_single']})",
        f"  {f'AZ-NAS log-rank, all {len(ev.proxies)} proxies':<{label_w}}  {_f(s['az_all']['mean'])} ± "
        f"{_f(s['az_all']['std'])}    {_f(ev.in_sample['az_all'])}",
        *[
            f"  {_method_label(k, ev):<{label_w}}  {_f(s[k]['mean'])} ± {_f(s[k]['std'])}    {_f(ev.in_sample[k])}"
            for k in ev.heldout
            if k.startswith("fixed:") or k == "greedy"
        ],
        f"  LIBRA − best single (paired): {_f(s['libra_minus_best']['mean'])} ± {_f(s['libra_minus_best']['std'])}",
        "Selections over splits: " + "; ".join(f"{','.join(t)} x{c}" for t, c in ev.triples),
    ]
    if ev.greedy_sets:
        out.append("Greedy sets over splits: " + "; ".join(f"{','.join(t)} x{c}" for t, c in ev.greedy_sets))
    out += [f"note: {n}" for n in ev.notes]
    return "\n".join(out)


def _method_label(key: str, ev: LibraEvaluation) -> str:
    if key == "greedy":
        return "greedy log-rank set (fit-chosen)"
    return f"fixed log-rank set {key.split(':', 1)[1]}"

"""The proxy catalogue of the docs, rendered from the registries: one row per registered proxy with its sub-values,
orientation, needs (and the pass producing each), own options and description (``ProxySpec.description``).

``docs/generated/proxy_table.md`` is this function's output, committed and included in the scoring page;
``tests/test_docs.py`` fails when it differs from the live registry, and ``make docs-tables`` rewrites it.
"""

from __future__ import annotations

import dataclasses
import re

from lswag_lightning.proxies.registry import INPUT_NEEDS, available_proxies, get_proxy, producer_of

HEADER = (
    "| proxy | orientation | needs (the pass producing each) | own options | what it measures |",
    "|---|---|---|---|---|",
)
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]>|])")  # the characters Python-Markdown unescapes


def proxy_table_markdown() -> str:
    """The catalogue of every registered proxy as a markdown table (sorted by name), ending with a newline."""
    rows = [*HEADER]
    for name in available_proxies():
        spec = get_proxy(name)
        proxy = f"`{name}`" + "".join(f" + `{extra}`" for extra in spec.extra_values)
        orientation = "higher is better" if spec.higher_is_better else "lower is better"
        options = ", ".join(f"`{f.name}`" for f in dataclasses.fields(spec.options)) if spec.options else "—"
        cells = (proxy, orientation, _needs_cell(spec.needs), options, _escape(spec.description))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _needs_cell(needs: frozenset[str]) -> str:
    """``need (pass)`` for each need, the probe batch's own needs first; an em dash for none."""
    if not needs:
        return "— (no pass: counted on the model)"
    ordered = sorted(needs, key=lambda need: (need not in INPUT_NEEDS, need))
    parts = []
    for need in ordered:
        producer = producer_of(need)
        source = "the probe batch" if producer is None else producer.name
        parts.append(f"`{need}` ({source})")
    return ", ".join(parts)


def _escape(text: str) -> str:
    """``text`` safe inside a markdown table cell: special characters backslash-escaped, ``<`` as an entity."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", " ".join(text.split())).replace("<", "&lt;")

"""The docs stay true to the code: the proxy table is the registry's."""

from __future__ import annotations

from pathlib import Path

from lswag_lightning.proxies import ProxyOutput, register_pass, register_proxy, temporary_registrations
from lswag_lightning.proxies.catalogue import proxy_table_markdown

ROOT = Path(__file__).resolve().parents[1]
PROXY_TABLE = ROOT / "docs" / "generated" / "proxy_table.md"


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

"""The committed score tables: each holds the proxies results/README.md says it holds (checked against the table's own
columns, not the live registry, so registering a proxy never breaks them), every one a registered name; the NB101 /
NB301 tables hold the right keys and values the engine reproduces on a CPU for the deterministic proxies (the tables
were scored on a GPU)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from lswag_lightning.proxies import higher_is_better
from lswag_lightning.spaces import get_space

RESULTS = Path(__file__).resolve().parents[1] / "results"
NASLIB = {
    "nb101": ("naslib_zc_subsets/zc_nasbench101_subset.json", "nb101", 500),
    "nb301": ("naslib_zc_subsets/zc_nasbench301_subset.json", "darts", 725),
}
#: the proxy score tables (the ``*_structure.parquet`` tables hold structure statistics, not proxies: checked below)
STRUCTURE_TABLES = sorted(p.name for p in RESULTS.glob("*_structure.parquet"))
TABLES = sorted(p.name for p in RESULTS.glob("*.parquet") if p.name not in STRUCTURE_TABLES)
# results/README.md: "every registered proxy (but `swap_reg` ...)" for these three, scored with `--proxies <the 17
# proxies of the run>`; `vkdnw_single` is added by the export. The registry of that run, as the tables record it.
BENCHMARK_TABLES = ("nb101_scores.parquet", "nb301_scores.parquet", "autoformer_ti_scores.parquet")
BENCHMARK_RUN_PROXIES = (
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "flops",
    "grad_norm",
    "jacov",
    "lswag",
    "meco",
    "naswot",
    "params",
    "snip",
    "swap",
    "synflow",
    "vkdnw",
    "vkdnw_layers",
    "zico",
    "zico_ps",
)
NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z]+)?$")


def readme_section(table: str) -> str:
    """The section of results/README.md on ``table``: from the paragraph that introduces it (starting with the
    backticked file name) to the next table's, whitespace collapsed."""
    paragraphs = re.split(r"\n\s*\n", (RESULTS / "README.md").read_text())
    introduces = [re.match(r"^((`[a-z0-9_]+\.parquet`(, )?)+):", p.strip()) for p in paragraphs]
    for index, match in enumerate(introduces):
        if match and f"`{table}`" in match.group(1):
            end = next((j for j in range(index + 1, len(paragraphs)) if introduces[j]), len(paragraphs))
            return " ".join(" ".join(paragraphs[index:end]).split())
    raise AssertionError(f"results/README.md does not introduce {table}")


def documented_proxies(table: str) -> set[str]:
    """The proxy columns results/README.md lists for ``table``: the backticked names of its first sentence, or the
    list after "one per proxy registry name:"; for the benchmark tables, the run's proxies, ``vkdnw_single`` and
    L-SWAG's Λ and Ψ."""
    paragraph = readme_section(table)
    if table in BENCHMARK_TABLES:
        assert "every registered proxy (but `swap_reg`" in paragraph and "adds `vkdnw_single`" in paragraph
        (count,) = re.findall(r"the (\d+) proxies of the run", paragraph)
        assert int(count) == len(BENCHMARK_RUN_PROXIES)
        return {*BENCHMARK_RUN_PROXIES, "vkdnw_single", "lswag.lambda", "lswag.psi"}
    first = paragraph.split(". ")[0]
    listed = re.search(r"one per proxy registry name: ([^)]*)\)", first)
    names = listed.group(1).split(", ") if listed else re.findall(r"`([^`]+)`", first)
    return {n for n in names if NAME.match(n) and not n.endswith(".parquet") and n != "arch"}


@pytest.mark.parametrize("table", TABLES)
def test_each_table_holds_the_proxies_the_readme_says(table):
    columns = set(pd.read_parquet(RESULTS / table).columns) - {"arch"}
    documented = documented_proxies(table)
    assert documented and columns == documented, (sorted(columns - documented), sorted(documented - columns))
    for column in columns:  # every recorded column is a registered proxy or sub-value, so readers can orient it
        assert higher_is_better(column) is not None, column


@pytest.mark.parametrize("table", STRUCTURE_TABLES)
def test_each_structure_table_holds_the_statistics_the_readme_lists(table):
    from lswag_lightning.proxies.architecture_stats import STAT_NAMES

    columns = list(pd.read_parquet(RESULTS / table).columns)
    paragraph = readme_section(table)
    listed = re.findall(r"`([a-z0-9_]+)`", paragraph.split("Columns, defined in", 1)[1].split("Labels are")[0])
    assert columns[0] == "arch" and set(columns[1:]) == set(STAT_NAMES) == set(listed) - {"arch"}, (columns, listed)


def committed_scores(benchmark: str) -> pd.DataFrame:
    path = RESULTS / f"{benchmark}_scores.parquet"
    if not path.is_file():
        pytest.skip(f"{path.name} not committed yet")
    return pd.read_parquet(path)


def naslib_records(shared_data_dir: Path, file: str) -> dict:
    data = json.loads((shared_data_dir / file).read_text())
    return data["cifar10"] if "cifar10" in data else next(iter(data.values()))["cifar10"]


@pytest.mark.parametrize("benchmark", sorted(NASLIB))
def test_naslib_score_tables_hold_every_key_and_the_published_parameter_counts(shared_data_dir, benchmark):
    file, space_name, rows = NASLIB[benchmark]
    scores = committed_scores(benchmark)
    records = naslib_records(shared_data_dir, file)
    assert len(scores) == rows and set(scores["arch"]) == set(records)  # the key strings exactly as in the file
    space = get_space(space_name)
    for key, params in zip(scores["arch"], scores["params"]):
        published = records[key]["params"]
        published = published["score"] if isinstance(published, dict) else published  # NB301 vs NB101 layout
        assert params == round(published * 1e6) == space.param_count(space.decode(key))


def rescore_first_row(shared_data_dir: Path, benchmark: str, proxies: list[str]) -> tuple[pd.Series, dict]:
    """The first stored row of ``benchmark``'s table and its ``proxies`` rescored here on a CPU, as lswag-bench
    scores it (its probe, build options and arch-seeded weights)."""
    from lswag_lightning.bench import arch_seed, resolve_build_options, table_row_values
    from lswag_lightning.probe import probe_batch
    from lswag_lightning.spaces.nb301 import NB301_BUILD_OPTIONS

    _, space_name, _ = NASLIB[benchmark]
    row = committed_scores(benchmark).iloc[0]
    preset = dict(NB301_BUILD_OPTIONS) if benchmark == "nb301" else {}
    build = resolve_build_options(space_name, preset=preset, num_classes=10)
    images, labels = probe_batch("bench", data_dir=shared_data_dir, batch_size=64, seed=0)
    space, device, seed = get_space(space_name), torch.device("cpu"), arch_seed(row["arch"])
    return row, table_row_values(space, row["arch"], images, labels, proxies, build, {}, device, seed)


@pytest.mark.parametrize("benchmark", sorted(NASLIB))
def test_stored_values_are_what_the_engine_computes_on_a_cpu(shared_data_dir, benchmark):
    """One stored row rescored here: counts exactly, gradient/activation proxies to GPU-vs-CPU round-off."""
    row, values = rescore_first_row(shared_data_dir, benchmark, ["params", "flops", "synflow", "naswot", "zico"])
    assert values["status"] == "ok"
    assert values["params"] == row["params"] and values["flops"] == row["flops"]
    for name in ("synflow", "naswot"):
        assert values[name] == pytest.approx(row[name], rel=1e-3), name
    # ZiCo sums log(1/std) of gradients, some of whose std are near zero: GPU round-off moves it by about 0.3%
    assert values["zico"] == pytest.approx(row["zico"], rel=1e-2)


def test_nb101_az_nas_values_are_what_the_engine_computes_on_a_cpu(shared_data_dir):
    """NB101's AZ-NAS columns were rescored on a CPU (results/README.md): a stored row is today's value, so the
    trainability of the stem block (whose input gradient an older engine missed: a constant -999,998 / 12 in every
    row) is measured, not a guard value."""
    proxies = ["az_expressivity", "az_progressivity", "az_trainability"]
    row, values = rescore_first_row(shared_data_dir, "nb101", proxies)
    assert values["status"] == "ok"
    for name in proxies:
        assert values[name] == pytest.approx(row[name], rel=1e-6), name
    assert -10 < row["az_trainability"] < 0

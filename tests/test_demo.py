"""``make demo``'s ground truth: size-spread candidates, the seed-agreement check, the per-space summary and the
published-truth section (shipped NB201 cells scored on a digits probe). The end-to-end demo run is in
test_sweep.py (slow)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.demo.nb201_truth import (
    ACCURACIES,
    CELLS_FILE,
    digits_probe,
    draw_cells,
    format_published,
    load_cells,
    published_summary,
    score_cells,
)
from lswag_lightning.demo.sweep import format_spaces, seed_agreement, seed_check_subset, spaces_summary, spread_indices
from lswag_lightning.spaces import get_space

NB201_DEMO = {"C": 8, "N": 1, "img_size": 16}


def test_spread_indices_span_the_pools_model_sizes_and_are_reproducible():
    space = get_space("nb201")
    chosen = spread_indices(space, 5, pool=64, build_options=NB201_DEMO)
    assert chosen == spread_indices(space, 5, pool=64, build_options=NB201_DEMO) and chosen == sorted(chosen)
    size = {i: space.param_count(space.sample(np.random.default_rng([0, i])), **NB201_DEMO) for i in range(64)}
    picked = sorted(size[i] for i in chosen)
    assert len(set(chosen)) == 5 and picked[0] == min(size.values()) and picked[-1] == max(size.values())
    assert len(set(picked)) == 5  # spread: five different sizes, not five alike samples
    with pytest.raises(ValueError, match="pool must be"):
        spread_indices(space, 10, pool=5)
    with pytest.raises(ValueError, match="n must be"):
        spread_indices(space, 0)


def test_seed_check_subset_keeps_both_ends():
    assert seed_check_subset([3, 8, 9, 12, 40], 3) == [3, 9, 40]
    assert seed_check_subset([3, 8], 5) == [3, 8] and seed_check_subset([3, 8], 0) == []


def _runs(acc_seed0, acc_seed1, space="s"):
    archs = [f"a{i}" for i in range(len(acc_seed0))]
    first = pd.DataFrame({"space": space, "arch": archs, "val_acc": acc_seed0})
    second = pd.DataFrame({"space": space, "arch": archs, "val_acc": acc_seed1})
    return first, second


def test_seed_agreement_pairs_the_same_candidates_per_space():
    a0, a1 = _runs([50.0, 60.0, 70.0, 80.0], [52.0, 58.0, 75.0, 79.0])
    b0, b1 = _runs([90.0, 91.0, 92.0], [92.0, 91.0, 90.0], space="t")
    first, second = pd.concat([a0, b0]), pd.concat([b1.iloc[::-1], a1])  # order must not matter
    got = seed_agreement(first, second)
    assert got == {"s": {"n": 4, "rho": 1.0}, "t": {"n": 3, "rho": -1.0}}
    with pytest.raises(ValueError, match="lacks the columns"):
        seed_agreement(first.drop(columns="arch"), second)


def test_spaces_summary_gives_each_space_its_own_correlations_and_agreement():
    table = pd.DataFrame(
        {
            "space": ["s"] * 4 + ["t"] * 3,
            "arch": list("abcdefg"),
            "lswag": [1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0],
            "params": [4.0, 3.0, 2.0, 1.0, 1, 1, 1],
            "val_acc": [10.0, 20.0, 30.0, 40.0, 10.0, 20.0, 30.0],
        }
    )
    got = spaces_summary(table, ["lswag", "params"], "val_acc", {"s": {"n": 4, "rho": 0.9}})
    assert got == {
        "s": {"n": 4, "seed_agreement_rho": 0.9, "spearman": {"lswag": 1.0, "params": -1.0}},
        "t": {"n": 3, "seed_agreement_rho": None, "spearman": {"lswag": -1.0, "params": None}},
    }
    text = format_spaces(got)
    assert "s: 4 candidates" in text and "0.900 (>= 0.8" in text and "t: 3 candidates" in text
    assert "not measured" in text


def test_shipped_cells_are_the_benchmarks_rows(shared_data_dir):
    """The shipped accuracies equal the NB201 table's (row i = NB201 index i), arch strings included."""
    from lswag_lightning.bench import NB201_TEST_FILE, read_csv_exact

    cells = load_cells()
    assert len(cells) >= 200 and cells["nb201_index"].is_unique
    full = read_csv_exact(shared_data_dir / NB201_TEST_FILE).iloc[cells["nb201_index"]]
    assert list(full["ArchitectureString"]) == list(cells["arch"])
    for ours, theirs in zip(
        ACCURACIES, ("CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs", "ImageNetTestAccuracy200Epochs")
    ):
        assert np.array_equal(cells[ours].to_numpy(), full[theirs].to_numpy())


def test_shipped_cells_are_drawn_again_byte_for_byte(shared_data_dir):
    """The provenance in resources/README.md: draw_cells() (lswag-bench's seed-0 sample of 200, sorted) writes the
    shipped file exactly."""
    assert draw_cells(data_dir=shared_data_dir).to_csv(index=False) == CELLS_FILE.read_text()


def test_digits_probe_shape_and_errors():
    x, y = digits_probe(16, 32, seed=1)
    assert x.shape == (16, 3, 32, 32) and y.shape == (16,) and abs(float(x.mean())) < 1e-5
    assert np.array_equal(digits_probe(16, 32, seed=1)[0].numpy(), x.numpy())
    with pytest.raises(ValueError, match="img_size"):
        digits_probe(16, 4)


def test_published_section_on_a_handful_of_cells_is_deterministic_and_complete():
    """24 shipped cells, 4 proxies, an 8-image probe: same table twice; ρ per proxy and dataset; LIBRA held-out."""
    cells = load_cells().head(24)
    x, y = digits_probe(8)
    proxies = ("lswag", "naswot", "synflow", "params")
    first = score_cells(cells, x, y, proxies=proxies, device="cpu")
    second = score_cells(cells, x, y, proxies=proxies, device="cpu")
    cols = list(proxies)
    pd.testing.assert_frame_equal(first[cols], second[cols])
    summary = published_summary(first, proxies, n_splits=3)
    assert summary == published_summary(second, proxies, n_splits=3)
    assert summary["n"] == 24 and set(summary["spearman"]) == set(ACCURACIES)
    for acc in ACCURACIES:
        assert set(summary["spearman"][acc]) == set(proxies)
        assert all(r is None or -1.0 <= r <= 1.0 for r in summary["spearman"][acc].values())
        libra = summary["libra_heldout"][acc]
        assert set(libra) == {"libra", "best_single", "choice", "n"} and 1 <= len(libra["choice"]) <= 3
        assert math.isfinite(libra["libra"]["mean"]) and libra["n"] <= 24
    text = format_published(summary, proxies)
    assert "24 NAS-Bench-201 cells" in text and "LIBRA held-out" in text and "ImageNet16-120" in text

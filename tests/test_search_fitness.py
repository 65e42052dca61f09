"""Search fitness: single-proxy orientation, LIBRA and fused-set rank fusion by hand, lswag-libra results."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.search import LibraFitness, ProxyFitness, load_libra_result, make_fitness
from lswag_lightning.search.fitness import FusedFitness, finite_or_worst, load_greedy_set

POOL = pd.DataFrame({"a": [1.0, 3.0, 2.0, 5.0], "b": [10.0, 10.0, 30.0, 20.0], "c": [0.1, 0.4, 0.3, 0.2]})
ORIENT = {"a": True, "b": True, "c": False}


def test_libra_rank_mean_by_hand():
    fit = LibraFitness(["a", "b", "c"], higher_is_better=ORIENT)(POOL)
    # a ranks 1,3,2,4 /4; b (tie at 10) 1.5,1.5,4,3 /4; c lower-is-better: 4,1,2,3 /4
    expected = [(0.25 + 0.375 + 1.0) / 3, (0.75 + 0.375 + 0.25) / 3, (0.5 + 1.0 + 0.5) / 3, (1.0 + 0.75 + 0.75) / 3]
    np.testing.assert_allclose(fit, expected)
    assert int(np.argmax(fit)) == 3


def test_libra_log_rank_by_hand():
    fit = LibraFitness(["a", "b", "c"], method="log_rank", higher_is_better=ORIENT)(POOL)
    expected = [
        math.log(0.25) + math.log(0.375) + math.log(1.0),
        math.log(0.75) + math.log(0.375) + math.log(0.25),
        math.log(0.5) + math.log(1.0) + math.log(0.5),
        math.log(1.0) + math.log(0.75) + math.log(0.75),
    ]
    np.testing.assert_allclose(fit, expected)


def test_libra_fitness_changes_with_the_pool_and_nan_ranks_last():
    pool = pd.concat([POOL, pd.DataFrame({"a": [4.0], "b": [np.nan], "c": [0.05]})], ignore_index=True)
    fit = LibraFitness(["a", "b", "c"], higher_is_better=ORIENT)(pool)
    # a and c are now ranked among 5 architectures, b among the 4 with a finite value
    np.testing.assert_allclose(
        fit[:4], [(0.2 + 0.375 + 0.8) / 3, (0.6 + 0.375 + 0.2) / 3, (0.4 + 1.0 + 0.4) / 3, (1.0 + 0.75 + 0.6) / 3]
    )
    assert math.isnan(fit[4])
    assert finite_or_worst(fit)[4] == -math.inf


def test_libra_fitness_validation():
    with pytest.raises(ValueError, match="distinct"):
        LibraFitness(["lswag", "lswag", "zico"])
    with pytest.raises(ValueError, match="LIBRA fuses 3 proxies"):
        LibraFitness(["lswag", "zico", "naswot", "synflow"])
    with pytest.raises(ValueError, match="unknown proxy 'lswg'.*Did you mean 'lswag'"):
        LibraFitness(["lswg", "zico", "naswot"])
    with pytest.raises(ValueError, match="fusion must be one of"):
        LibraFitness(["lswag", "zico", "naswot"], method="mean")


def test_proxy_fitness_orientation():
    assert ProxyFitness("lswag").higher_is_better is True
    neg = ProxyFitness("x", higher_is_better=False)
    np.testing.assert_allclose(neg(pd.DataFrame({"x": [1.0, -2.0]})), [-1.0, 2.0])
    assert not ProxyFitness("lswag").pool_dependent and LibraFitness(["lswag", "zico", "naswot"]).pool_dependent
    with pytest.raises(ValueError, match="unknown proxy"):
        ProxyFitness("not_a_proxy")


def test_make_fitness_from_the_command_line_values():
    assert isinstance(make_fitness("lswag"), ProxyFitness)
    f = make_fitness("libra", libra_proxies="lswag,naswot,synflow")
    assert isinstance(f, LibraFitness) and f.proxies == ("lswag", "naswot", "synflow") and f.method == "rank_mean"
    with pytest.raises(ValueError, match="needs its proxies"):
        make_fitness("libra")
    with pytest.raises(ValueError, match="only apply to --fitness libra"):
        make_fitness("lswag", libra_proxies="a,b,c")


def _noisy_copies_table(seed: int, n: int, noise: tuple[float, float, float]) -> pd.DataFrame:
    """An accuracy column, params tracking it loosely, three noisy copies of it (lswag, zico, naswot) and noise."""
    rng = np.random.default_rng(seed)
    acc = rng.normal(size=n)
    params = acc + rng.normal(scale=1.0, size=n)
    return pd.DataFrame(
        {
            "acc": 80 + acc,
            "params": 1e5 * np.exp(params / 4),
            **{p: acc + rng.normal(scale=s, size=n) for p, s in zip(("lswag", "zico", "naswot"), noise)},
            "synflow": rng.normal(size=n),
        }
    )


def _run_lswag_libra(table: pd.DataFrame, folder, out, *options: str):
    """``lswag-libra`` (2 splits, 10 bootstrap draws) on ``table`` written into ``folder``; its output in ``out``."""
    from lswag_lightning.cli import libra as libra_cli

    path = folder / "table.csv"
    table.to_csv(path, index=False)
    assert (
        libra_cli.main(
            [
                str(path),
                "--accuracy",
                "acc",
                "--params",
                "params",
                "--splits",
                "2",
                "--n-boot",
                "10",
                *options,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_load_libra_result_written_by_lswag_libra(tmp_path):
    out = _run_lswag_libra(
        _noisy_copies_table(0, 120, (0.5, 0.6, 0.7)),
        tmp_path,
        tmp_path / "libra",
        "--proxies",
        "lswag",
        "zico",
        "naswot",
        "synflow",
        "params",
        "--fusion",
        "log_rank",
    )
    written = json.loads((out / "libra.json").read_text())
    proxies, hib, fusion = load_libra_result(out)  # the folder or the file
    assert proxies == written["selection"]["proxies"] and len(proxies) == 3
    assert fusion == "log_rank" and set(hib) == set(proxies)
    fit = make_fitness("libra", libra_result=out / "libra.json")
    assert fit.proxies == tuple(proxies) and fit.method == "log_rank"
    with pytest.raises(ValueError, match="not both"):
        make_fitness("libra", libra_proxies="a,b,c", libra_result=out)


def test_load_libra_result_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="LIBRA result not found"):
        load_libra_result(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"something": 1}))
    with pytest.raises(ValueError, match="no LIBRA selection found"):
        load_libra_result(bad)


def test_fused_fitness_log_rank_of_any_set_by_hand():
    pool = POOL.assign(d=[2.0, 1.0, 4.0, 3.0])
    fit = FusedFitness(["a", "b", "c", "d"], higher_is_better={**ORIENT, "d": True})(pool)
    # as test_libra_log_rank_by_hand, plus d ranked 2,1,4,3 /4
    expected = [
        math.log(0.25) + math.log(0.375) + math.log(1.0) + math.log(0.5),
        math.log(0.75) + math.log(0.375) + math.log(0.25) + math.log(0.25),
        math.log(0.5) + math.log(1.0) + math.log(0.5) + math.log(1.0),
        math.log(1.0) + math.log(0.75) + math.log(0.75) + math.log(0.75),
    ]
    np.testing.assert_allclose(fit, expected)
    described = FusedFitness(["a", "b", "c", "d"], higher_is_better={**ORIENT, "d": True}).describe()
    assert (
        described["type"] == "fused"
        and described["method"] == "log_rank"
        and described["higher_is_better"]["c"] is False
    )


def test_make_fused_fitness_and_its_errors():
    f = make_fitness("fused", fused_proxies="vkdnw_single,jacov,az_expressivity,az_trainability,flops,synflow")
    assert isinstance(f, FusedFitness) and f.method == "log_rank" and len(f.proxies) == 6 and f.name == "fused"
    assert make_fitness("fused", fused_proxies=["lswag", "zico"], fusion="rank_mean").method == "rank_mean"
    with pytest.raises(ValueError, match="two or more proxies"):
        make_fitness("fused", fused_proxies="lswag")
    with pytest.raises(ValueError, match="needs its proxies: --fused-proxies"):
        make_fitness("fused")
    with pytest.raises(ValueError, match="--fused-proxies only applies to --fitness fused"):
        make_fitness("libra", libra_proxies="lswag,zico,naswot", fused_proxies="lswag,zico")
    with pytest.raises(ValueError, match="applies to --fitness libra"):
        make_fitness("fused", libra_proxies="lswag,zico,naswot")
    with pytest.raises(ValueError, match="unknown proxy"):
        make_fitness("fused", fused_proxies="lswag,not_a_proxy")


def test_fused_fitness_from_the_greedy_set_of_lswag_libra(tmp_path):
    table = _noisy_copies_table(1, 160, (0.6, 0.6, 0.6))
    candidates = ("--proxies", "lswag", "zico", "naswot", "synflow")
    out = _run_lswag_libra(table, tmp_path, tmp_path / "libra", *candidates, "--greedy")
    greedy = json.loads((out / "libra.json").read_text())["in_sample"]["greedy_set"].split(",")
    assert load_greedy_set(out) == greedy
    # three independent noisy copies of the accuracy: fusing them beats each alone, so the greedy set holds them
    assert set(greedy) >= {"lswag", "zico", "naswot"}
    fit = make_fitness("fused", libra_result=out)
    assert isinstance(fit, FusedFitness) and list(fit.proxies) == greedy and fit.method == "log_rank"
    with pytest.raises(ValueError, match="not both"):
        make_fitness("fused", fused_proxies="lswag,zico", libra_result=out)
    plain = _run_lswag_libra(table, tmp_path, tmp_path / "plain", *candidates)
    with pytest.raises(ValueError, match="no greedy set.*--greedy"):
        load_greedy_set(plain)

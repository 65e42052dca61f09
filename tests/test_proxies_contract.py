"""The contract of every registered proxy and pass, parametrised over the registries: a new proxy or pass is checked
without being listed anywhere (the checks are in ``contracts.py``).

Each proxy: complete metadata, a value or a status on a tiny CNN and a tiny ViT, the same value alone as with every
other proxy (to the bit), a known orientation. Each pass: described products that no other pass produces.
"""

from __future__ import annotations

import pytest
from contracts import (
    TINY_MODELS,
    check_alone_equals_together,
    check_orientation,
    check_pass_metadata,
    check_proxy_metadata,
    check_value_or_status,
    probe_batch,
)

from lswag_lightning.proxies import (
    available_needs,
    available_proxies,
    get_proxy,
    registered_passes,
    score_network,
)

PROXIES = available_proxies()
PASSES = [spec.name for spec in registered_passes()]


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def scored(request):
    """(model, every proxy scored together on it)."""
    model = TINY_MODELS[request.param]()
    x, y = probe_batch()
    return model, score_network(model, x, y, proxies="all")


@pytest.mark.parametrize("name", PROXIES)
def test_metadata_is_complete(name):
    check_proxy_metadata(name)


@pytest.mark.parametrize("name", PROXIES)
def test_orientation_is_known(name):
    check_orientation(name)


@pytest.mark.parametrize("name", PROXIES)
def test_a_value_or_a_status_on_tiny_models(scored, name):
    _, together = scored
    check_value_or_status(together, name)


@pytest.mark.parametrize("name", PROXIES)
def test_alone_equals_together(scored, name):
    model, together = scored
    check_alone_equals_together(model, name, together)


@pytest.mark.parametrize("pass_name", PASSES)
def test_pass_metadata_is_complete(pass_name):
    check_pass_metadata(pass_name)


def test_every_need_is_labels_or_produced_by_one_pass_and_used():
    produced = [need for spec in registered_passes() for need in spec.produces]
    assert len(produced) == len(set(produced))
    assert set(available_needs()) == {"labels", *produced}
    used = set().union(*(get_proxy(name).needs for name in PROXIES))
    assert used == set(available_needs())  # no pass computes something no proxy reduces

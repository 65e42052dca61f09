"""The probe batch's protocols (lswag_lightning.probe): each draws exactly what its published numbers were made with.

The fingerprints below were taken from the draws of the code before the protocols shared one module (bench's and the
search's ``load_probe_batch``, the NASLib check's ``probe_batch``): a change of any of them changes the README and
docs tables that depend on that protocol.
"""

from __future__ import annotations

import pytest
import torch

from lswag_lightning.probe import PROTOCOLS, crop_and_flip, probe_batch, probe_fingerprint

DRAWS = [  # protocol, keyword arguments, fingerprint of (images, labels)
    ("bench", dict(batch_size=64, seed=0, img_size=32), "751a2bc12bbc457b"),
    ("bench", dict(batch_size=8, seed=3, img_size=64), "56e6f2a8bbc3120c"),
    ("bench", dict(batch_size=16, seed=1, img_size=16), "5020beb3f18e58e7"),
    ("search", dict(batch_size=64, seed=0, img_size=32), "10e598f48787e156"),
    ("search", dict(batch_size=8, seed=2, img_size=16), "9d85af86779449e9"),
    ("search", dict(batch_size=4, seed=0, img_size=64), "fc757a1794ec0b2c"),
    ("naslib", dict(batch_size=32, seed=0), "62678d4e9db02b0c"),
    ("naslib", dict(batch_size=16, seed=5, augment=False), "8d07543ffdcbc2e6"),
]


@pytest.mark.parametrize("protocol, kwargs, fingerprint", DRAWS)
def test_protocols_draw_the_published_batches(shared_data_dir, protocol, kwargs, fingerprint):
    x, y = probe_batch(protocol, data_dir=shared_data_dir, **kwargs)
    assert probe_fingerprint(x, y) == fingerprint
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and len(x) == len(y) == kwargs["batch_size"]


@pytest.mark.parametrize(
    "kwargs, fingerprint",
    [
        (dict(batch_size=16, img_size=8, in_chans=3, seed=0), "6c80360950cff9a4"),
        (dict(batch_size=64, img_size=16, in_chans=1, seed=1), "f7893e5668c63f61"),
    ],
)
def test_search_digits(kwargs, fingerprint):
    assert probe_fingerprint(*probe_batch("search", data="digits", **kwargs)) == fingerprint


def test_the_protocols_draw_different_images(shared_data_dir):
    drawn = {p: probe_batch(p, data_dir=shared_data_dir, batch_size=16, seed=0)[1] for p in PROTOCOLS}
    assert not torch.equal(drawn["bench"], drawn["search"])  # the protocols draw different images


def test_protocol_errors(shared_data_dir):
    with pytest.raises(ValueError, match="unknown probe protocol 'cifar'"):
        probe_batch("cifar")
    with pytest.raises(ValueError, match="32x32"):
        probe_batch("naslib", data_dir=shared_data_dir, img_size=64)
    with pytest.raises(ValueError, match="batch_size must be an int >= 2"):
        probe_batch("bench", batch_size=1)


def test_crop_and_flip_by_hand():
    import numpy as np

    images = np.arange(3 * 4 * 4 * 1, dtype=np.uint8).reshape(3, 4, 4, 1)
    centre = np.full((3, 2), 4)
    np.testing.assert_array_equal(crop_and_flip(images, centre, np.zeros(3, bool)), images)
    np.testing.assert_array_equal(crop_and_flip(images, centre, np.ones(3, bool)), images[:, :, ::-1])

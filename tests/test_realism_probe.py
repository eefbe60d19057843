"""benchmarks/realism_probe.py on a phantom the test writes: each probe changes what it says and nothing else."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))   # `benchmarks` is a package at the repository root

from benchmarks.realism_probe import PROBES, band_ratios, fine_texture, probe, probed  # noqa: E402
from echo_from_noise.dataset import load_split  # noqa: E402
from echo_from_noise.phantom import make_phantom  # noqa: E402
from echo_from_noise.realism import inside_sector  # noqa: E402


@pytest.fixture(scope='module')
def frames(tmp_path_factory):
    real = make_phantom(tmp_path_factory.mktemp('probe') / 'real', 8, 32, seed=3, workers=1, progress=False)
    images, labels, _ = load_split(real, ['train', 'val', 'test'])
    return real, inside_sector(images, labels), labels


def test_every_probe_leaves_the_outside_of_the_sector_at_zero(frames):
    _, images, labels = frames
    for name in PROBES:
        out = probed(images, labels, name)
        assert out.dtype == np.uint8 and out.shape == images.shape
        assert not out[labels == 0].any(), name
    assert np.array_equal(probed(images, labels, 'none'), images)


def test_shuffle_keeps_each_structures_histogram_and_means_keeps_only_its_mean(frames):
    _, images, labels = frames
    shuffled, means = probed(images, labels, 'shuffle'), probed(images, labels, 'means')
    assert not np.array_equal(shuffled, images)
    for x, s, m, lab in zip(images, shuffled, means, labels):
        for k in np.unique(lab[lab > 0]):
            assert np.array_equal(np.sort(x[lab == k]), np.sort(s[lab == k]))
            assert np.ptp(m[lab == k]) == 0 and abs(float(m[lab == k][0]) - x[lab == k].mean()) <= 0.5


def test_fine_texture_sees_a_blur(frames):
    "A 1-px blur lowers the high-pass residual and the spectrum's high bands, and correlates neighbours more."
    _, images, labels = frames
    sharp, soft = fine_texture(images, labels, 8), fine_texture(probed(images, labels, 'blur1'), labels, 8)
    assert sharp['patches'] > 10
    assert soft['hp_sd'] < 0.6 * sharp['hp_sd'] and soft['corr_rows'] > sharp['corr_rows']
    bands = band_ratios(soft['power'], sharp['power'])
    assert bands[-1] < 0.2 < bands[0] and bands == sorted(bands, reverse=True)
    same = band_ratios(sharp['power'], sharp['power'])
    assert np.allclose(same, 1)


def test_the_report_has_a_row_per_probe(frames):
    real = frames[0]
    lines = probe(real, real, probes=('none', 'means'), seeds=(0,), steps=3)
    rows = [line for line in lines if line.startswith('| none') or line.startswith('| means')]
    assert len(rows) == 2 and any(line.startswith('| synthetic') for line in lines)
    with pytest.raises(ValueError, match='unknown probe'):
        probe(real, real, probes=('sharpen',), seeds=(0,), steps=3)

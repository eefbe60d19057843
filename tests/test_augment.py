"""Label-map augmentation as a dataset stage: test maps untouched, values kept, sector fixed, seeds, reporting."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from echo_from_noise.augment import (AugmentConfig, augment_dataset, deform, structure_report, warp_points)
from echo_from_noise.base import DataError
from echo_from_noise.dataset import load_frame, read_manifest
from echo_from_noise.labels import LabelError
from echo_from_noise.phantom import make_phantom


@pytest.fixture(scope='module')
def phantom(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp('ph') / 'ph', patients=10, size=64, seed=2, workers=1, progress=False)


def test_augment_dataset(phantom, tmp_path):
    counts = augment_dataset(phantom, tmp_path / 'aug', copies=3, seed=5, progress=False)
    src = read_manifest(phantom)
    aug = read_manifest(tmp_path / 'aug')
    trainval = src[src['split'] != 'test']
    assert len(aug) == 3 * len(trainval) == counts['written'] and counts['test_skipped'] == (src['split'] == 'test').sum()
    assert set(aug['split']) <= {'train', 'val'} and (aug['image'] == '').all()
    test_ids = set(src.loc[src['split'] == 'test', 'id'])
    assert not set(aug['label_source']) & test_ids          # no test map is ever deformed
    assert set(aug['label_source']) == set(trainval['id'])
    s = src.set_index('id')
    for _, row in aug.sample(12, random_state=0).iterrows():
        orig = s.loc[row['label_source']]
        assert (row['patient'], row['view'], row['phase'], row['split']) == \
               (orig['patient'], orig['view'], orig['phase'], orig['split'])
        _, new = load_frame(tmp_path / 'aug', row)
        _, old = load_frame(phantom, orig)
        assert ((new > 0) == (old > 0)).all()                 # the sector does not move
        assert set(np.unique(new)) <= set(np.unique(old))     # no new values
        assert (new != old).any()                             # but the anatomy did
        assert abs(float(row['rotation_deg'])) <= 5 and 0.8 <= float(row['scale']) <= 1.05
        assert float(row['dx']) == 0 and abs(float(row['dy'])) <= 0.05 * 64
        assert float(row['max_control_px']) <= 30 * 64 / 256 + 1e-6


def test_seeds_reproduce(phantom, tmp_path):
    augment_dataset(phantom, tmp_path / 'a', copies=2, seed=1, progress=False)
    augment_dataset(phantom, tmp_path / 'b', copies=2, seed=1, progress=False)
    augment_dataset(phantom, tmp_path / 'c', copies=2, seed=2, progress=False)
    f = read_manifest(tmp_path / 'a').iloc[1]['label']
    assert (tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' / f).read_bytes()
    assert (tmp_path / 'a' / f).read_bytes() != (tmp_path / 'c' / f).read_bytes()


def test_strength_zero_is_identity(phantom):
    df = read_manifest(phantom)
    _, lab = load_frame(phantom, df.iloc[0])
    out, d, rep = deform(lab, np.random.default_rng(0), AugmentConfig().scaled(0))
    assert (out == lab).all() and rep == dict(vanished=[], split=[])


def test_vanished_and_split_are_reported():
    before = np.full((20, 20), 4, np.uint8)
    before[2:6, 2:6] = 1
    before[10:14, 10:14] = 3
    after = before.copy()
    after[10:14, 10:14] = 4            # LA gone
    after[2:6, 4] = 4                  # LV cut in two
    assert structure_report(before, after) == dict(vanished=[3], split=[1])


def test_heavy_deformation_reports_lost_structures():
    lab = np.full((64, 64), 4, np.uint8)
    lab[30:32, 30:32] = 3              # a tiny atrium near the centre
    lab[5:60, 5:8] = 1
    found = [deform(lab, np.random.default_rng(k), AugmentConfig().scaled(3))[2] for k in range(30)]
    assert any(r['vanished'] or r['split'] for r in found)


def test_bad_inputs(phantom, tmp_path):
    with pytest.raises(DataError, match='copies must be at least 1'):
        augment_dataset(phantom, tmp_path / 'x', copies=0, progress=False)
    with pytest.raises(DataError, match='manifest.csv: not found'):
        augment_dataset(tmp_path / 'nothing', tmp_path / 'x', progress=False)
    with pytest.raises(LabelError, match=r'unexpected label values \[9\]'):
        deform(np.full((8, 8), 9, np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match='same number of points'):
        warp_points(np.full((8, 8), 4, np.uint8), [(1, 1)], [(2, 2), (3, 3)])
    assert not (tmp_path / 'x').exists()


def test_cli_augment(phantom, tmp_path):
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'augment', str(phantom), str(tmp_path / 'aug'),
                        '--copies', '2', '--seed', '3'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    n = (read_manifest(phantom)['split'] != 'test').sum()
    assert f'{2 * n} deformed label maps' in r.stdout and 'test maps left alone' in r.stdout


def test_the_released_codes_elastic_field_from_torchio(phantom, tmp_path):
    "elastic='torchio': TorchIO moves the anatomy inside the map's own sector, seeded; its grid locks rows, not columns."
    from echo_from_noise.augment import torchio_source_coords
    lab = load_frame(phantom, read_manifest(phantom).iloc[0])[1]
    cfg = AugmentConfig(elastic='torchio')
    out, d, _ = deform(lab, np.random.default_rng([3, 1]), cfg)
    again, _, _ = deform(lab, np.random.default_rng([3, 1]), cfg)
    assert (out == again).all() and (out != lab).any()
    assert ((out == 0) == (lab == 0)).all()                      # the sector does not move
    assert set(np.unique(out)) <= {0, 1, 2, 3, 4}
    c = d.control                                                # TorchIO's (10, rows, cols, 3) coarse field
    assert c.shape == (10, 10, 4, 3) and not c[..., 0].any()     # nothing along the singleton axis
    assert not c[:, [0, -1]].any() and c[1:-1, 1:-1][:, :, [0, -1], 1:].any()   # rows locked, columns free
    size = lab.shape[0]
    sy, sx = torchio_source_coords(c, size)
    yy, xx = np.mgrid[0:size, 0:size]
    u = np.hypot(sy - yy, sx - xx)
    assert 0 < np.nanmax(u) <= np.abs(c).max() * 1.5             # a B-spline field stays near its control range
    assert np.nanmean(u[:, [0, -1]]) > 0.2 * np.nanmean(u)       # its left and right edges move too
    zero = torchio_source_coords(np.zeros_like(c), size)
    ok = ~np.isnan(zero[0])                 # the identity, but for the corner that marks what lies outside
    assert ok.sum() >= size * size - 1 and np.allclose(zero[0][ok], yy[ok], atol=1e-3)
    assert np.allclose(zero[1][ok], xx[ok], atol=1e-3)
    from echo_from_noise.cli import main
    assert main(['augment', str(phantom), str(tmp_path / 'aug'), '--copies', '1', '--elastic', 'torchio']) == 0
    assert len(read_manifest(tmp_path / 'aug')) > 0

"""The phantom as a dataset: layout, splits, seeds, workers and the command line."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from echo_from_noise.base import DataError
from echo_from_noise.dataset import load_frame, read_manifest
from echo_from_noise.labels import sector_mask
from echo_from_noise.phantom import draw_patient, make_phantom, patient_frames, sector_of


def test_make_phantom_layout_and_splits(tmp_path):
    out = make_phantom(tmp_path / 'ph', patients=12, size=48, seed=4, workers=1, progress=False)
    df = read_manifest(out)
    assert len(df) == 12 * 4 and set(df['view']) == {'2CH', '4CH'} and set(df['phase']) == {'ED', 'ES'}
    assert df.groupby('patient')['split'].nunique().max() == 1
    per = df.groupby('patient')['split'].first().value_counts().to_dict()
    assert per == {'train': 10, 'val': 1, 'test': 1}
    assert (df['source'] == 'phantom').all() and df['ef'].astype(float).between(0.35, 0.70).all()
    img, lab = load_frame(out, df.iloc[0])
    assert img.shape == lab.shape == (48, 48) and set(np.unique(lab)) == {0, 1, 2, 3, 4}
    assert (img[lab == 0] == 0).all()  # black outside the sector


def test_workers_do_not_change_the_data(tmp_path):
    a = make_phantom(tmp_path / 'a', patients=3, size=32, seed=9, workers=1, progress=False)
    b = make_phantom(tmp_path / 'b', patients=3, size=32, seed=9, workers=2, progress=False)
    for f in ('manifest.csv', 'images/phantom0002_4CH_ES.png', 'labels/phantom0001_2CH_ED.png'):
        assert (a / f).read_bytes() == (b / f).read_bytes()


def test_more_patients_extend_fewer():
    assert all((x[2] == y[2]).all() for x, y in zip(patient_frames(1, 2, 32), patient_frames(1, 2, 32)))
    p1, p2 = draw_patient(np.random.default_rng([1, 0])), draw_patient(np.random.default_rng([2, 0]))
    assert p1['ef'] != p2['ef']


@pytest.mark.parametrize('size', [32, 64, 200])
def test_sector_recovered_at_any_size(size):
    for i in range(3):
        p = draw_patient(np.random.default_rng([7, i]))
        (_, _, img, lab, _), = patient_frames(7, i, size, views=('4CH',), phases=('ES',))
        true = sector_of(p, size)
        assert ((lab > 0) == true).all()
        est = sector_mask(img)
        assert (est & true).sum() / (est | true).sum() > 0.95


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match='patients must be at least 1'):
        make_phantom(tmp_path / 'x', patients=0, progress=False)
    with pytest.raises(DataError, match="unknown view '3CH'"):
        make_phantom(tmp_path / 'x', patients=1, views=['3CH'], progress=False)
    assert not (tmp_path / 'x').exists()


def test_exact_test_patients(tmp_path):
    out = make_phantom(tmp_path / 'ph', patients=10, size=32, seed=1, workers=1, progress=False, test_patients=4)
    df = read_manifest(out)
    per = df.groupby('patient')['split'].first()
    assert (per == 'test').sum() == 4 and set(per[per == 'test'].index) == {f'phantom{i:04d}' for i in range(6, 10)}
    assert (per == 'val').sum() == 1 and (per == 'train').sum() == 5     # val share 50/450 of the 6 others, at least 1
    with pytest.raises(DataError, match=r'test_patients must lie in \[0, patients - 1\]'):
        make_phantom(tmp_path / 'x', patients=3, test_patients=3, progress=False)


def test_cli_phantom(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'phantom', str(tmp_path / 'p'), '--patients', '2',
                        '--size', '32', '--views', '2CH', '--seed', '3'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '4 phantom frames of 2 patients' in r.stdout and 'phantom' in r.stderr  # progress bar
    assert len(read_manifest(tmp_path / 'p')) == 4

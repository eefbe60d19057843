"""`efn realism` and the realism measures on datasets the tests write: a phantom and a washed-out copy of it."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from echo_from_noise.base import DataError
from echo_from_noise.dataset import DatasetWriter, load_frame, read_manifest
from echo_from_noise.phantom import make_phantom
from echo_from_noise.realism import classifier_auc, realism


def _copy(src, out, fn, size=None):
    df = read_manifest(src)
    with DatasetWriter(out, size or load_frame(src, df.iloc[0])[1].shape[0]) as w:
        for _, r in df.iterrows():
            img, lab = load_frame(src, r)
            img, lab = fn(img, lab)
            w.add(r['id'], r['patient'], r['view'], r['phase'], r['split'], lab, img, source='test')
    return out


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('realism')
    real = make_phantom(tmp / 'real', 8, 32, seed=3, workers=1, progress=False)
    washed = _copy(real, tmp / 'washed', lambda i, l: (np.where(l > 0, 0.5 * i + 100, 0).astype(np.uint8), l))
    return real, washed, tmp


def test_cli_writes_the_table_and_separates_a_washed_out_copy(pair):
    real, washed, tmp = pair
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'realism', str(real), str(washed), '--out',
                        str(tmp / 'out'), '--steps', '80', '--repeats', '3', '--device', 'cpu'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'myocardium - cavity contrast' in r.stdout and 'classifier AUC' in r.stdout and '(sd over 3 seeds)' in r.stdout
    t = pd.read_csv(tmp / 'out' / 'realism.csv').set_index(['metric', 'structure'])
    assert (tmp / 'out' / 'realism_histograms.png').stat().st_size > 1000
    assert t.loc[('classifier_auc', 'all'), 'synthetic'] > 0.9
    assert 0 <= t.loc[('classifier_auc_sd', '3 seeds'), 'synthetic'] < 0.1      # a washed-out copy: every seed sees it
    assert t.loc[('classifier_loss', '3 seeds'), 'synthetic'] < 0.3 < np.log(2)  # it learned: its loss far below chance
    assert 'training loss' in r.stdout
    assert abs(t.loc[('contrast', 'myocardium-cavity'), 'ratio'] - 0.5) < 0.05     # 0.5 x + 100 halves every contrast
    for s in ('cavity', 'myocardium', 'LA', 'sector'):
        g = t.loc[('grey_mean', s)]
        assert abs(g['synthetic'] - (0.5 * g['real'] + 100)) < 0.6 and t.loc[('w1', s), 'synthetic'] > 20


def test_identical_sets_measure_as_identical(pair):
    real, _, _ = pair
    t, _ = realism(real, real, steps=5, progress=False)
    t = t.set_index(['metric', 'structure'])
    assert (t.loc['w1', 'synthetic'] == 0).all() and np.allclose(t.loc['grey_mean', 'ratio'], 1)


def test_other_size_and_too_few_frames_are_refused(pair):
    real, _, tmp = pair
    small = _copy(real, tmp / 'small', lambda i, l: (i[::2, ::2], l[::2, ::2]), size=16)
    with pytest.raises(DataError, match='32 px frames but .* 16 px'):
        realism(real, small, steps=1, progress=False)
    x = np.zeros((3, 8, 8), np.uint8)
    with pytest.raises(DataError, match='at least 4 frames'):
        classifier_auc(x, x, [0, 1, 2], [0, 1, 2], steps=1)


def test_repeated_classifier_tests_average_the_single_runs(pair):
    real, washed, _ = pair
    from echo_from_noise.dataset import load_split
    ri, _, rr = load_split(real, ['train', 'val', 'test'])
    si, _, sr = load_split(washed, ['train', 'val', 'test'])
    single = [classifier_auc(ri, si, rr['patient'], sr['patient'], steps=3, seed=s)['auc'] for s in (4, 14)]
    t, _ = realism(real, washed, seed=4, steps=3, repeats=2, progress=False)
    t = t.set_index(['metric', 'structure'])['synthetic']
    assert t[('classifier_auc', 'all')] == pytest.approx(np.mean(single))
    assert t[('classifier_auc_sd', '2 seeds')] == pytest.approx(np.std(single, ddof=1))
    with pytest.raises(DataError, match='repeats must be at least 1'):
        realism(real, washed, repeats=0, progress=False)
    for lr in (0, -1e-3, float('nan'), float('inf')):           # refused before any frame is read or any step taken
        with pytest.raises(DataError, match='--lr .*: must be a positive number'):
            realism(real, washed, lr=lr, progress=False)


def test_a_rim_outside_the_sector_does_not_move_the_auc(pair):
    "Real CAMUS frames carry a 1-px tissue rim outside their label map's sector; the measure compares inside it only."
    real, washed, tmp = pair
    from scipy import ndimage as ndi
    def rim(img, lab):
        ring = ndi.binary_dilation(lab > 0) & (lab == 0)
        return np.where(ring, 60, img).astype(np.uint8), lab
    rimmed = _copy(real, tmp / 'rimmed', rim)
    assert (np.stack([load_frame(rimmed, r)[0] for _, r in read_manifest(rimmed).iterrows()]) == 60).any()
    a, _ = realism(real, washed, seed=2, steps=20, repeats=2, progress=False)
    b, _ = realism(rimmed, washed, seed=2, steps=20, repeats=2, progress=False)
    pd.testing.assert_frame_equal(a, b)          # bit for bit: the rim never reaches a measure


def test_a_dataset_against_itself_scores_one_half(pair):
    "One patient split for both sets: a frame and its copy fall on the same side, so nothing can tell them apart."
    real, _, _ = pair
    t, details = realism(real, real, seed=1, steps=20, repeats=3, progress=False)
    t = t.set_index(['metric', 'structure'])['synthetic']
    assert t[('classifier_auc', 'all')] == 0.5 and t[('classifier_auc_sd', '3 seeds')] == 0
    assert len(details['extremes']['real']) == 4 and details['extremes']['synthetic'].shape[1:] == (32, 32)


def test_texture_and_brightness_spread_see_a_smoothed_copy(pair):
    "A copy blurred inside the sector and of one brightness: its texture and brightness spread read well below real."
    real, _, tmp = pair
    import cv2
    def smooth(img, lab):
        out = cv2.GaussianBlur(img, (5, 5), 1.5)
        return np.where(lab > 0, out - out[lab > 0].mean() + 90, 0).clip(0, 255).astype(np.uint8), lab
    flat = _copy(real, tmp / 'smooth', smooth)
    t, _ = realism(real, flat, steps=5, repeats=1, progress=False)
    t = t.set_index(['metric', 'structure'])['ratio']
    assert t[('gradient', 'myocardium')] < 0.5 and t[('hf_power', 'sector')] < 0.7 and t[('brightness_sd', 'sector')] < 0.2

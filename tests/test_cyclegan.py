"""The CycleGAN baseline at smoke scale: CLI round trip, checkpoints, divergence, and what it feeds downstream."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from echo_from_noise.cyclegan import (CYCLEGAN_KIND, cyclegan_generate, load_cyclegan, make_config as cyclegan_config,
                                      train_cyclegan)
from echo_from_noise.base import DataError
from echo_from_noise.dataset import load_frame, read_manifest
from echo_from_noise.phantom import make_phantom
from echo_from_noise.training import TrainingDiverged, load_checkpoint

EFN = [sys.executable, '-m', 'echo_from_noise']


@pytest.fixture(scope='module')
def phantom(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp('ph') / 'ph', patients=6, size=32, seed=2, workers=1, progress=False)


def test_cli_train_then_synthesize(phantom, tmp_path):
    run = tmp_path / 'run'
    r = subprocess.run(EFN + ['train-cyclegan', str(phantom), str(run), '--profile', 'smoke', '--set', 'steps=3'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'final cycle loss' in r.stdout and 'cyclegan:' in (run / 'config.yaml').read_text()
    for v in ('2CH', '4CH'):
        assert load_checkpoint(run / f'checkpoints/cyclegan_{v}.pt', CYCLEGAN_KIND)['step'] == 3
        assert (run / f'metrics/cyclegan_{v}_loss.png').exists()
    r = subprocess.run(EFN + ['augment', str(phantom), str(tmp_path / 'aug'), '--copies', '1'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(EFN + ['synthesize', str(run), str(tmp_path / 'aug'), str(tmp_path / 'syn'), '--generator', 'cyclegan'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    syn, aug = read_manifest(tmp_path / 'syn'), read_manifest(tmp_path / 'aug')
    assert len(syn) == len(aug) and (syn['generator'] == 'cyclegan').all()
    assert (syn['label_source'] == aug['label_source']).all()
    img, lab = load_frame(tmp_path / 'syn', syn.iloc[0])
    _, lab0 = load_frame(tmp_path / 'aug', aug.iloc[0])
    assert (lab == lab0).all() and img.shape == (32, 32) and (img[lab == 0] == 0).all() and img.max() > 0
    # the same maps give the same images (the generator is deterministic)
    model = load_cyclegan(run / f'checkpoints/cyclegan_{syn.iloc[0]["view"]}.pt')[0]
    assert np.array_equal(cyclegan_generate(model, lab[None])[0], img)
    r = subprocess.run(EFN + ['synthesize', str(tmp_path / 'none'), str(tmp_path / 'aug'), str(tmp_path / 's2'),
                              '--generator', 'cyclegan'], capture_output=True, text=True)
    assert r.returncode == 2 and 'cyclegan_' in r.stderr and 'efn train-cyclegan' in r.stderr


def test_checkpoint_from_a_different_model_is_refused(phantom, tmp_path):
    train_cyclegan(phantom, tmp_path / 'r', 'cg', '4CH', cyclegan_config('smoke', dict(steps=1)), progress=False)
    other = cyclegan_config('smoke', dict(steps=2, ngf=4))
    with pytest.raises(DataError, match=r'different model \(ngf=8, now 4\)'):
        train_cyclegan(phantom, tmp_path / 'r', 'cg', '4CH', other, progress=False)
    bad = tmp_path / 'r/checkpoints/cg.pt'
    bad.write_bytes(bad.read_bytes()[:1000])             # truncated
    with pytest.raises(DataError, match='not a readable checkpoint'):
        load_cyclegan(bad)


def test_nan_stops_and_keeps_last_good_checkpoint(phantom, tmp_path):
    import echo_from_noise.cyclegan as C
    real = C.ResnetGenerator.forward
    calls = {'n': 0}

    def poisoned(self, x):
        calls['n'] += 1
        out = real(self, x)
        return out * float('nan') if calls['n'] > 12 else out   # 6 generator calls per step: NaN from step 2
    C.ResnetGenerator.forward = poisoned
    try:
        with pytest.raises(TrainingDiverged, match='not finite at step 2'):
            train_cyclegan(phantom, tmp_path / 'r', 'cg', '4CH', cyclegan_config('smoke', dict(save_every=1)),
                           progress=False)
    finally:
        C.ResnetGenerator.forward = real
    ck = load_checkpoint(tmp_path / 'r/checkpoints/cg.pt', CYCLEGAN_KIND)
    assert ck['step'] == 2 and all(torch.isfinite(v).all() for v in ck['model'].values() if v.is_floating_point())


def test_wrong_size_data_names_the_fix(phantom, tmp_path):
    with pytest.raises(DataError, match='--size 64|size=32'):
        train_cyclegan(phantom, tmp_path / 'r', 'cg', '4CH', cyclegan_config('smoke', dict(size=64)), progress=False)

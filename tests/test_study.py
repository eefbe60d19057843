"""The study end to end at smoke scale, through papermill, as `efn paper` runs it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from echo_from_noise.dataset import DataError, read_manifest
from echo_from_noise.evaluate import table1
from echo_from_noise.study import STAGES, check_no_leak, run_stage


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp('study') / 'run'
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--out', str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return out, r


def test_all_outputs(study):
    out, r = study
    figs = [f'figures/{n}.{e}' for n in ('fig3', 'fig4', 'fig5', 'fig5_adherence') for e in ('png', 'pdf')]
    for f in ['config.yaml', 'table1.md', 'table1.csv', 'metrics/per_image.csv', 'metrics/summary.json',
              'metrics/adherence.csv', 'metrics/adherence_summary.csv', 'checkpoints/sdm_2CH.pt', 'checkpoints/sdm_4CH.pt',
              'checkpoints/cyclegan_2CH.pt', 'checkpoints/cyclegan_4CH.pt', 'synthetic_cyclegan/manifest.csv',
              'metrics/realism.csv', 'figures/realism_histograms.png'] + figs:
        assert (out / f).is_file(), f
    assert sorted(p.name for p in (out / 'notebooks').iterdir()) == [f'0{i}_{s}.ipynb' for i, s in enumerate(STAGES, 1)]
    assert all((out / 'stages' / f'{s}.json').exists() for s in STAGES)
    assert f'[{len(STAGES)}/{len(STAGES)}] figures: finished' in r.stdout and 'Table 1' in r.stdout


def test_table1_is_recomputed_from_the_per_image_csv(study):
    out, _ = study
    per = pd.read_csv(out / 'metrics/per_image.csv')
    assert set(per['row']) == {'SDM 4CH ED', 'SDM 4CH ES', 'SDM 2CH ED', 'SDM 2CH ES', 'All SDM frames', 'All real frames',
                               'All CycleGAN frames', 'Real + SDM frames'}
    md, df = table1(per, 'x')
    saved = pd.read_csv(out / 'table1.csv', keep_default_na=False)
    assert list(saved['Mean']) == list(df['Mean'].astype(str))
    g = per[per['row'] == 'All real frames']
    m = f"{g['dice_LV_endo'].mean() * 100:.1f} ± {g['dice_LV_endo'].std(ddof=0) * 100:.1f}"
    assert saved.loc[saved['row'] == 'All real frames (measured)', 'LV_endo'].item() == m
    assert (out / 'table1.md').read_text().count('quoted from the paper, not measured') == 1
    assert (out / 'table1.md').read_text().count('All CycleGAN frames (measured)') == 1
    # each per-view model was tested on the test frames of its own view and phase only
    sel = per[per['row'] == 'SDM 2CH ES']
    assert set(sel['view']) == {'2CH'} and set(sel['phase']) == {'ES'}


def test_no_test_patient_reaches_training(study):
    out, _ = study
    real = read_manifest(out / 'data/real')
    test_ids = set(real.loc[real['split'] == 'test', 'id'])
    test_patients = set(real.loc[real['split'] == 'test', 'patient'])
    for name in ('data/augmented', 'synthetic', 'synthetic_cyclegan'):
        d = read_manifest(out / name)
        assert not set(d['label_source']) & test_ids and not set(d['patient']) & test_patients
        assert set(d['split']) <= {'train', 'val'}
    # the SDMs and the real-data segmenter read the train split only: the recorded frame counts say so
    summary = json.loads((out / 'stages/segment.json').read_text())['result']
    n_train_real = int((real['split'] == 'train').sum())
    assert summary['All real frames']['train_frames'] == n_train_real
    n_train_syn = int((read_manifest(out / 'synthetic')['split'] == 'train').sum())
    assert summary['Real + SDM frames']['train_frames'] == n_train_real + n_train_syn


def test_realism_table_for_each_generator(study):
    out, _ = study
    t = pd.read_csv(out / 'metrics/realism.csv')
    assert set(t['generator']) == {'SDM', 'CycleGAN'}
    for gen, g in t.groupby('generator'):
        auc = g.query('metric == "classifier_auc"')['synthetic'].item()
        assert 0 <= auc <= 1
        grey = g.query('metric == "grey_mean"').set_index('structure')
        assert set(grey.index) == {'cavity', 'myocardium', 'LA', 'sector'}
        assert np.allclose(grey['ratio'], grey['synthetic'] / grey['real'])
    md = (out / 'table1.md').read_text()
    assert 'Table 1b. Realism' in md and md.count('classifier AUC') == 2
    result = json.loads((out / 'stages/evaluate.json').read_text())['result']['realism']
    assert set(result) == {'SDM', 'CycleGAN'} and set(result['SDM']['grey_ratio']) == {'cavity', 'myocardium', 'LA', 'sector'}


def test_resume_skips_finished_stages(study):
    out, _ = study
    before = (out / 'table1.md').stat().st_mtime
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--out', str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.count('done before, skipped') == len(STAGES)
    assert (out / 'table1.md').stat().st_mtime == before


def test_adherence_covers_every_generator_strength_and_test_map(study):
    from echo_from_noise.adherence import STRENGTHS
    out, _ = study
    per = pd.read_csv(out / 'metrics/adherence.csv')
    real = read_manifest(out / 'data/real')
    test_ids = set(real.loc[real['split'] == 'test', 'id'])
    assert set(per['id']) == test_ids and set(per['generator']) == {'SDM', 'CycleGAN'}
    assert set(per['strength']) == set(STRENGTHS) and len(per) == len(test_ids) * len(STRENGTHS) * 2
    assert per['dice_mean'].between(0, 1).all()
    # the CycleGAN was trained on the SDM's training frames: the train split's ED and ES frames of its view
    cg = json.loads((out / 'stages/cyclegan.json').read_text())['result']
    for v in ('2CH', '4CH'):
        n = int(((real['split'] == 'train') & real['phase'].isin(['ED', 'ES']) & (real['view'] == v)).sum())
        assert cg[v]['frames'] == n


def test_leak_check_fires(tmp_path):
    from echo_from_noise.augment import augment_dataset
    from echo_from_noise.phantom import make_phantom
    ph = make_phantom(tmp_path / 'ph', patients=6, size=32, seed=0, workers=1, progress=False)
    augment_dataset(ph, tmp_path / 'aug', copies=1, progress=False)
    check_no_leak(ph, tmp_path / 'aug')
    m = pd.read_csv(tmp_path / 'aug/manifest.csv', dtype=str, keep_default_na=False)
    real = read_manifest(ph)
    m.loc[0, 'label_source'] = real.loc[real['split'] == 'test', 'id'].iloc[0]
    m.to_csv(tmp_path / 'aug/manifest.csv', index=False)
    with pytest.raises(DataError, match='test data leaked'):
        check_no_leak(ph, tmp_path / 'aug')


def test_failing_stage_names_its_notebook(tmp_path):
    bad = tmp_path / 'bad'
    from echo_from_noise.phantom import make_phantom
    make_phantom(bad, patients=4, size=48, seed=0, workers=1, progress=False)   # 48 px: not the smoke size
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--data', str(bad),
                        '--out', str(tmp_path / 'run')], capture_output=True, text=True, timeout=300)
    assert r.returncode == 3
    assert 'stage data failed in' in r.stderr and '01_data.ipynb' in r.stderr and 'prepare the data with --size 32' in r.stderr


def test_run_stage_refuses_other_settings(tmp_path):
    run_stage('data', tmp_path / 'r', 'smoke', progress=False)
    with pytest.raises(DataError, match='use a new run directory'):
        run_stage('data', tmp_path / 'r', 'smoke', seed=3, progress=False)
    with pytest.raises(DataError, match='cyclegan=True'):      # the smoke run has a CycleGAN by default
        run_stage('data', tmp_path / 'r', 'smoke', with_cyclegan=False, progress=False)
    import yaml
    run_stage('data', tmp_path / 'off', 'smoke', with_cyclegan=False, progress=False)
    run_stage('data', tmp_path / 'off', 'smoke', progress=False)   # no switch: the run goes on as it was made
    assert yaml.safe_load((tmp_path / 'off/config.yaml').read_text())['study']['cyclegan'] is False
    out = run_stage('cyclegan', tmp_path / 'off', 'smoke', progress=False)
    assert out['result'] == dict(skipped='with_cyclegan is off')


def test_paper_refuses_a_run_of_other_settings(study, capsys):
    "A finished smoke run is not reported as done for another profile: refused before any stage, naming the setting."
    from echo_from_noise.cli import main
    out, _ = study
    before = sorted(p.name for p in (out / 'stages').iterdir())
    assert main(['paper', '--profile', 'cpu', '--out', str(out)]) == 2
    err = capsys.readouterr().err
    assert 'profile=smoke' in err and 'profile=cpu' in err and 'Table 1' not in err
    assert sorted(p.name for p in (out / 'stages').iterdir()) == before


def test_paper_without_cuda_fails_before_the_data_stage(tmp_path, capsys):
    import torch
    from echo_from_noise.cli import main
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    assert main(['paper', '--profile', 'smoke', '--device', 'cuda', '--out', str(tmp_path / 'run')]) == 2
    assert 'no CUDA GPU' in capsys.readouterr().err and not (tmp_path / 'run').exists()

"""The study end to end at smoke scale, through papermill, as `efn paper` runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from echo_from_noise.base import STAGES, DataError
from echo_from_noise.dataset import read_manifest
from echo_from_noise.evaluate import table1
from echo_from_noise.runner import run_stage
from echo_from_noise.study import check_no_leak


def lv_only_dataset(out, size=48):
    "A dataset of another size that labels only the LV cavity, as EchoNet-Dynamic does (myocardium and LA -> sector)."
    from echo_from_noise.dataset import DatasetWriter, load_frame
    from echo_from_noise.phantom import make_phantom
    ph = make_phantom(out.parent / 'ph_lv', patients=4, size=size, seed=5, workers=1, progress=False, test_patients=2)
    with DatasetWriter(out, size) as w:
        for _, row in read_manifest(ph).query('view == "4CH"').iterrows():
            img, lab = load_frame(ph, row)
            w.add(row['id'], row['patient'], '4CH', row['phase'], row['split'], np.where(np.isin(lab, (2, 3)), 4, lab),
                  img, source='lv-only', labelled='LV_endo')
    return out


# one changed setting per stage, through efn paper --set (the smoke defaults: copies 1, synth_steps 3, seg.epochs 3)
SET = ['copies=2', 'sdm.lr=0.002', 'cyclegan_train.lr=0.0003', 'synth_steps=2', 'seg.epochs=2', 'realism.steps=10']


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('study')
    out, lv = tmp / 'run', lv_only_dataset(tmp / 'lv_only')
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--out', str(out),
                        '--external', str(lv), '--set'] + SET, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return out, r


def test_external_dataset_scores_only_what_it_labels(study):
    "`--external` and `efn evaluate`: LV filled, the structures the dataset does not label said so, never 0."
    out, r = study
    md = (out / 'table_external.md').read_text()
    assert 'resized from 48 px' in md and 'Dice (%) on lv_only' in r.stdout
    t = pd.read_csv(out / 'external' / 'lv_only' / 'table.csv').set_index('row')
    assert 'All SDM frames' in t.index and 'All real frames' in t.index and 'SDM 2CH ED' not in t.index   # no 2CH frames
    assert (t['LV_epi'] == 'not labelled').all() and (t['LA'] == 'not labelled').all()
    assert t['LV_endo'].str.match(r'^\d+\.\d ± \d+\.\d$').all() and (t['LV_endo'] == t['Mean']).all()
    ev = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'evaluate', str(out), str(out.parent / 'lv_only'),
                         '--split', 'all', '--out', str(out.parent / 'ev')], capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-2000:]
    again = subprocess.run(ev.args, capture_output=True, text=True, timeout=300)       # never a silent overwrite
    assert again.returncode == 2 and 'already exists and is not empty; choose a new OUT or pass --overwrite' in again.stderr
    assert subprocess.run(ev.args + ['--overwrite'], capture_output=True, text=True, timeout=300).returncode == 0
    per = pd.read_csv(out.parent / 'ev' / 'per_image.csv')
    n_4ch = int((read_manifest(out.parent / 'lv_only')['view'] == '4CH').sum())
    assert per.query('row == "All real frames"')['id'].nunique() == n_4ch       # every split with --split all
    assert per['dice_LA'].isna().all() and per['dice_LV_endo'].between(0, 1).all() and (per['size'] == 48).all()
    bad = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'evaluate', str(out.parent), str(out.parent / 'lv_only')],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and 'is not a run directory' in bad.stderr


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
    assert f'[{len(STAGES)}/{len(STAGES)}] figures    finished in' in r.stdout
    assert sorted(p.name for p in (out / 'logs').iterdir()) == [f'0{i}_{s}.log' for i, s in enumerate(STAGES, 1)]


def test_console_is_one_line_per_stage_and_a_summary(study):
    "No papermill cell log, no kernel warning on the terminal (they are in RUN/logs); the table and the paths at the end."
    out, r = study
    lines = (r.stdout + r.stderr).splitlines()
    external = 1 + len(pd.read_csv(out / 'external' / 'lv_only' / 'table.csv'))     # this run's --external block
    assert len(lines) - external <= 25, '\n'.join(lines)
    assert not [l for l in lines if 'Executing' in l or 'WARNING' in l or l.startswith('INFO') or 'Kernel' in l]
    assert [l.split()[0] for l in lines[:len(STAGES)]] == [f'[{i}/{len(STAGES)}]' for i in range(1, len(STAGES) + 1)]
    assert any(l.startswith('All real frames ') for l in lines) and f'logs: {out / "logs"}' in r.stdout
    assert 'without encryption' in (out / 'logs' / '02_sdm.log').read_text()       # the kernel's stderr, kept


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
    for name in ('data/augmented', 'synthetic', 'synthetic_cyclegan', 'data/maps', 'synthetic_maps', 'synthetic_cyclegan_maps'):
        d = read_manifest(out / name)
        assert not set(d['label_source']) & test_ids and not set(d['patient']) & test_patients
        assert set(d['split']) <= {'train', 'val'}
    # the SDMs and the real-data segmenter read the train split only: the recorded frame counts say so
    summary = json.loads((out / 'stages/segment.json').read_text())['result']
    n_train_real = int((real['split'] == 'train').sum())
    assert summary['All real frames']['train_frames'] == n_train_real
    n_train_syn = int((read_manifest(out / 'synthetic')['split'] == 'train').sum())
    k = max(1, round(n_train_syn / n_train_real))      # mix='balanced': the real frames repeated k times ...
    assert summary['Real + SDM frames']['train_frames'] == k * n_train_real + n_train_syn
    assert summary['Real + SDM frames']['finish_frames'] == n_train_real     # ... then (finish) the real train frames alone
    assert 0 < summary['Real + SDM frames']['main_epochs'] < summary['Real + SDM frames']['epochs']
    # a generator's rows end on its images of the real train maps themselves and pick the epoch on those of the val maps
    maps = read_manifest(out / 'data/maps')
    assert sorted(maps['label_source']) == sorted(real.loc[real['split'] != 'test', 'id'])
    for row, name in (('All SDM frames', 'synthetic_maps'), ('All CycleGAN frames', 'synthetic_cyclegan_maps')):
        m = read_manifest(out / name)
        assert summary[row]['train_frames'] == int((read_manifest(out / name.replace('_maps', ''))['split'] == 'train').sum())
        assert (summary[row]['finish_frames'], summary[row]['val_frames']) == ((m['split'] == 'train').sum(), (m['split'] == 'val').sum())
    assert 'finish_frames' not in summary['All real frames']
    n_val_real = int((real['split'] == 'val').sum())
    assert summary['Real + SDM frames']['val_frames'] == n_val_real          # the epoch is chosen on real frames


def test_realism_table_for_each_generator(study):
    out, _ = study
    t = pd.read_csv(out / 'metrics/realism.csv')
    gens = {'SDM', 'CycleGAN', 'SDM (undeformed maps)', 'CycleGAN (undeformed maps)'}
    assert set(t['generator']) == gens
    for gen, g in t.groupby('generator'):
        auc = g.query('metric == "classifier_auc"')['synthetic'].item()
        assert 0 <= auc <= 1
        assert g.query('metric == "classifier_auc_sd"')['structure'].item() == '2 seeds'     # the smoke profile's repeats
        grey = g.query('metric == "grey_mean"').set_index('structure')
        assert set(grey.index) == {'cavity', 'myocardium', 'LA', 'sector'}
        assert np.allclose(grey['ratio'], grey['synthetic'] / grey['real'])
    md = (out / 'table1.md').read_text()
    assert 'Table 1b. Realism' in md and md.count('classifier AUC') == 4 and md.count('(sd over 2 seeds)') == 4
    result = json.loads((out / 'stages/evaluate.json').read_text())['result']['realism']
    assert set(result) == gens and set(result['SDM']['grey_ratio']) == {'cavity', 'myocardium', 'LA', 'sector'}
    assert result['SDM']['auc_sd'] >= 0


def test_resume_skips_finished_stages(study):
    out, _ = study
    before = (out / 'table1.md').stat().st_mtime
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--out', str(out),
                        '--set'] + SET, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.count('done before, skipped') == len(STAGES)
    assert (out / 'table1.md').stat().st_mtime == before
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--out', str(out),
                        '--set'] + SET[1:], capture_output=True, text=True, timeout=300)      # copies back to 1
    assert r.returncode == 2 and 'copies=2 but now copies=1 (that changes stage synthesize and every later one)' in r.stderr


def test_set_reaches_every_stage(study):
    "Each --set value is in config.yaml and in what its stage made (checkpoint configs, the synthesis record, data)."
    import yaml
    import torch
    out, _ = study
    conf = yaml.safe_load((out / 'config.yaml').read_text())['study']
    assert conf['set'] == dict(s.split('=', 1) for s in SET)
    assert (conf['copies'], conf['sdm']['lr'], conf['synth_steps'], conf['seg']['epochs']) == (2, 0.002, 2, 2)
    ck = lambda name: torch.load(out / 'checkpoints' / name, map_location='cpu', weights_only=True)['config']
    assert ck('sdm_4CH.pt')['lr'] == 0.002 and ck('cyclegan_4CH.pt')['lr'] == 0.0003
    assert ck('seg_all_real_frames.pt')['epochs'] == 2
    assert json.loads((out / 'stages/synthesize.json').read_text())['result']['steps'] == 2
    real, aug = read_manifest(out / 'data/real'), read_manifest(out / 'data/augmented', check_files=False)
    assert len(aug) == 2 * (real['split'] != 'test').sum()
    from echo_from_noise.cli import main
    assert main(['paper', '--profile', 'smoke', '--out', str(out.parent / 'x'), '--set', 'sdm.stepz=3']) == 2
    assert not (out.parent / 'x').exists()          # refused before anything was written


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


def test_run_stage_without_run_dir_shares_one_scratch_run(tmp_path, monkeypatch):
    "Pipeline notebooks run by hand (run_dir=None) share a scratch run under $EFN_SCRATCH_DIR and reuse its stages."
    from echo_from_noise.runner import scratch_run
    monkeypatch.setenv('EFN_SCRATCH_DIR', str(tmp_path))
    first = run_stage('data', None, 'smoke', progress=False)
    run = Path(first['run_dir'])
    assert run == scratch_run('smoke') and run.parent == tmp_path
    marker = run / 'stages' / 'data.json'
    stamp = marker.stat().st_mtime_ns
    again = run_stage('data', None, 'smoke', progress=False)      # nothing rerun: the recorded result comes back
    assert again['run_dir'] == first['run_dir'] and marker.stat().st_mtime_ns == stamp
    assert again['result']['frames'] == json.loads(json.dumps(first['result']['frames']))
    assert scratch_run('smoke', seed=1) != run and scratch_run('smoke', with_cyclegan=False) != run


def _rerun_with(study, tmp_path, prefix: str, setting: str) -> tuple:
    """A copy of the study's run, its SDM checkpoint's time stamp, and the efn paper command that resumes the copy with
    `setting` in place of the SET value that starts with `prefix`."""
    import shutil
    out, _ = study
    run = tmp_path / 'copy'
    shutil.copytree(out, run)
    new = [s for s in SET if not s.startswith(prefix)] + [setting]
    efn = [sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--out', str(run), '--set'] + new
    return run, (run / 'checkpoints/sdm_4CH.pt').stat().st_mtime_ns, efn


def test_redo_from_reruns_a_stage_with_new_settings(study, tmp_path):
    "--redo-from: the changed stage and the later ones run again, their old outputs kept aside, earlier ones untouched."
    import torch
    import yaml
    run, sdm_before, efn = _rerun_with(study, tmp_path, 'seg.', 'seg.epochs=1')
    bad = subprocess.run(efn + ['--redo-from', 'evaluate'], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and 'seg.epochs changed, which changes stage segment' in bad.stderr
    assert 'use --redo-from segment' in bad.stderr
    r = subprocess.run(efn + ['--redo-from', 'segment'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.count('done before, skipped') == STAGES.index('segment') and 'set aside in' in r.stdout
    kept = next((run / 'replaced').iterdir())
    assert (kept / 'checkpoints/seg_all_real_frames.pt').exists() and (kept / 'stages/segment.json').exists()
    assert (kept / 'table1.md').exists() and not (kept / 'checkpoints/sdm_4CH.pt').exists()
    load = lambda p: torch.load(p, map_location='cpu', weights_only=True)['config']
    assert load(run / 'checkpoints/seg_all_real_frames.pt')['epochs'] == 1
    assert load(kept / 'checkpoints/seg_all_real_frames.pt')['epochs'] == 2
    assert (run / 'checkpoints/sdm_4CH.pt').stat().st_mtime_ns == sdm_before
    assert yaml.safe_load((run / 'config.yaml').read_text())['study']['seg']['epochs'] == 1
    assert all((run / 'stages' / f'{s}.json').exists() for s in STAGES)


def test_seg_seed_trains_the_segmenters_again_on_the_same_frames(study, tmp_path):
    """`seg_seed`: the segment stage and the later ones again, the segmenters with a seed of their own; the SDMs and the
    frames they drew as they were (how much of a Table 1 difference is the segmenters' own draw)."""
    import torch
    run, sdm_before, efn = _rerun_with(study, tmp_path, 'seg_seed=', 'seg_seed=7')
    frames_before = (run / 'synthetic/manifest.csv').stat().st_mtime_ns
    bad = subprocess.run(efn, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and 'seg_seed=7' in bad.stderr and '--redo-from segment' in bad.stderr
    r = subprocess.run(efn + ['--redo-from', 'segment'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    kept = next((run / 'replaced').iterdir())
    load = lambda p: torch.load(p, map_location='cpu', weights_only=True)
    new, old = load(run / 'checkpoints/seg_all_real_frames.pt'), load(kept / 'checkpoints/seg_all_real_frames.pt')
    assert (new['config']['seed'], old['config']['seed']) == (7, 0)
    assert any(not torch.equal(new['model'][k], old['model'][k]) for k in new['model'])    # another draw of the weights
    assert (run / 'checkpoints/sdm_4CH.pt').stat().st_mtime_ns == sdm_before
    assert (run / 'synthetic/manifest.csv').stat().st_mtime_ns == frames_before


def test_more_deformed_copies_keep_the_sdm(study, tmp_path):
    """The deformed maps are drawn in the synthesize stage: a new `copies` reruns the study from there (the data and
    sdm stages and the SDM checkpoint untouched, the old maps set aside) and an earlier --redo-from is not needed."""
    run, sdm_before, efn = _rerun_with(study, tmp_path, 'copies=', 'copies=1')
    bad = subprocess.run(efn, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and 'changes stage synthesize' in bad.stderr and '--redo-from synthesize' in bad.stderr
    r = subprocess.run(efn + ['--redo-from', 'synthesize'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.count('done before, skipped') == STAGES.index('synthesize')
    real, aug = read_manifest(run / 'data/real'), read_manifest(run / 'data/augmented', check_files=False)
    assert len(aug) == (real['split'] != 'test').sum()              # one copy of each train/val map now
    kept = next((run / 'replaced').iterdir())
    assert len(read_manifest(kept / 'data/augmented', check_files=False)) == 2 * len(aug)
    assert not (kept / 'data/real').exists() and (run / 'checkpoints/sdm_4CH.pt').stat().st_mtime_ns == sdm_before
    assert len(read_manifest(run / 'synthetic')) == len(aug)


def test_procs_trains_the_models_one_process_would(tmp_path):
    "procs=2: the SDMs and CycleGANs (one per view) and the segmenters (one per row), two torchrun processes side by side, come out as one process trains them."
    import torch
    from echo_from_noise.config import CYCLEGAN_ROW, SEG_ROWS
    from echo_from_noise.rundir import row_slug
    from echo_from_noise.distributed import job_procs
    assert job_procs(2, 2, 'cpu') == 2            # procs=2 launches two torchrun workers here
    runs = dict(one=tmp_path / 'one', two=tmp_path / 'two')
    for name, run in runs.items():
        for stage in STAGES[:STAGES.index('segment') + 1]:
            run_stage(stage, run, 'smoke', progress=False, overrides={'procs': 1 if name == 'one' else 2})
    load = lambda run, f: torch.load(run / 'checkpoints' / f, map_location='cpu', weights_only=True)
    rows = SEG_ROWS + [CYCLEGAN_ROW]
    for f in [f'{m}_{v}.pt' for m in ('sdm', 'cyclegan') for v in ('2CH', '4CH')] + [f'seg_{row_slug(r[0])}.pt' for r in rows]:
        a, b = load(runs['one'], f), load(runs['two'], f)
        key = 'ema' if f.startswith('sdm') else 'model'
        worst = max((a[key][k].float() - b[key][k].float()).abs().max().item() for k in a[key])
        assert worst < 1e-3, (f, worst)
    from fixtures import images_by_id
    for name in ('synthetic', 'synthetic_cyclegan', 'synthetic_maps'):   # drawn by two processes, each with its share of the maps
        one, two = (images_by_id(runs[r] / name) for r in ('one', 'two'))
        assert sorted(one) == sorted(two) and len(one) > 4
        worst = max(abs(one[i] - two[i]).max() for i in one)
        assert worst <= 1, (name, worst)
    for v in ('2CH', '4CH'):       # each SDM trained in one process, not split over the two
        assert json.loads((runs['two'] / f'metrics/sdm_{v}_train.json').read_text())['world_size'] == 1
    seg = json.loads((runs['two'] / 'stages/segment.json').read_text())['result']
    assert set(seg) == {r[0] for r in rows} and all('best_val_dice' in s for s in seg.values())


@pytest.fixture(scope='module')
def one_view(tmp_path_factory):
    "A one-view phantom, and its data and sdm stages run in one process: the model the data-parallel runs must match."
    from echo_from_noise.phantom import make_phantom
    tmp = tmp_path_factory.mktemp('one_view')
    data = make_phantom(tmp / 'ph4', patients=6, size=32, seed=1, views=('4CH',), workers=1, progress=False)
    for stage in ('data', 'sdm'):
        run_stage(stage, tmp / 'one', 'smoke', data=data, progress=False, overrides={'procs': 1, 'sdm.bf16': False})
    return data, tmp / 'one'


def _check_two_rank_sdm(run, reference):
    "The SDM of `run` trained over two ranks kept in step, and the model one process trained (`reference`) within 1e-3."
    import torch
    summary = json.loads((run / 'metrics/sdm_4CH_train.json').read_text())
    assert summary['world_size'] == 2 and summary['max_rank_param_diff'] == 0.0
    load = lambda r: torch.load(r / 'checkpoints/sdm_4CH.pt', map_location='cpu', weights_only=True)['ema']
    a, b = load(reference), load(run)
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-3, worst      # the same global batch over two processes (Adam: float-order noise)


def test_procs_beyond_the_models_train_each_sdm_data_parallel(one_view, tmp_path):
    "One view, procs=2: the SDM stage trains the one SDM over two gloo processes (DDP), the model one process trains."
    data, one = one_view
    for stage in ('data', 'sdm'):
        run_stage(stage, tmp_path / 'two', 'smoke', data=data, progress=False, overrides={'procs': 2, 'sdm.bf16': False})
    _check_two_rank_sdm(tmp_path / 'two', one)


def test_sdm_budget_is_shared_by_the_views(one_view, tmp_path):
    """--set sdm_budget=N (the cpu profile's: 2400): the study's SDM steps shared equally by its views' SDMs, all of
    them to one view's SDM; the synthesize stage then takes the SDMs so trained as the run's own (`check_models`)."""
    from echo_from_noise.phantom import make_phantom
    one, _ = one_view
    two = make_phantom(tmp_path / 'ph', patients=6, size=32, seed=1, workers=1, progress=False)
    for name, data, want in (('one', one, {'4CH': 8}), ('two', two, {'2CH': 4, '4CH': 4})):
        run = tmp_path / name
        for stage in ('data', 'sdm', 'cyclegan', 'synthesize'):
            run_stage(stage, run, 'smoke', data=data, progress=False, overrides={'procs': 1, 'sdm_budget': 8})
        trained = {v: json.loads((run / f'metrics/sdm_{v}_train.json').read_text())['steps'] for v in want}
        assert trained == want and (run / 'stages/synthesize.json').exists()


def test_a_study_over_two_nodes_trains_its_sdm_over_both(one_view, tmp_path, monkeypatch):
    """efn paper --nodes 2 with efn join on the other node (here: both on this machine, one process each): the SDM
    stage's launch spans the two, its SDM trained over both (world size 2) as one process trains it; efn join returns
    when the head is done."""
    from echo_from_noise.distributed import cluster
    monkeypatch.setenv('EFN_HEAD_ADDRESS', '127.0.0.1')
    data, one = one_view
    run = tmp_path / 'nodes'
    with cluster(run, 2, 'job-1'):
        join = subprocess.Popen([sys.executable, '-m', 'echo_from_noise', 'join', str(run), '--nodes-id', 'job-1'],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for stage in ('data', 'sdm', 'cyclegan', 'synthesize', 'segment'):   # DDP, maps shared out, trainings shared out
            run_stage(stage, run, 'smoke', data=data, progress=False, with_cyclegan=False,
                      overrides={'procs': 1, 'sdm.bf16': False})
    said, _ = join.communicate(timeout=300)
    assert join.returncode == 0 and 'launch 0: efn stage-jobs' in said and 'took part in 3 of its launches' in said, said[-3000:]
    assert 'stage-jobs' in said.split('launch 2:')[1] and ' segment' in said.split('launch 2:')[1].split('\n')[0]
    seg = json.loads((run / 'stages/segment.json').read_text())['result']
    trained = {row for row, summary in seg.items() if 'best_val_dice' in summary}     # the 2CH rows: no frames here
    assert {'SDM 4CH ED', 'All SDM frames', 'All real frames', 'Real + SDM frames'} <= trained
    _check_two_rank_sdm(run, one)


def test_a_missing_segmenter_is_named_never_dropped(study, tmp_path):
    "A Table 1 row whose checkpoint was deleted: efn evaluate names it under its table; the evaluate stage refuses."
    import shutil
    out, _ = study
    run = tmp_path / 'copy'
    shutil.copytree(out, run)
    (run / 'checkpoints' / 'seg_all_real_frames.pt').unlink()
    ev = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'evaluate', str(run), str(out.parent / 'lv_only'),
                         '--out', str(tmp_path / 'ev')], capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert 'not evaluated: All real frames' in ev.stderr
    assert 'Not evaluated (no finished segmenter): All real frames' in (tmp_path / 'ev' / 'table.md').read_text()
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--out', str(run),
                        '--set', *SET, '--redo-from', 'evaluate'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 3 and 'Table 1 would lack 1 row(s) the segment stage trained: All real frames' in r.stderr


def test_an_sdm_copied_in_from_another_run_is_refused(study, tmp_path):
    "A checkpoint of another objective, put in place of the run's SDM, never draws the run's synthetic images."
    import shutil
    from echo_from_noise.config import study_config
    from echo_from_noise.sdm import train_sdm
    out, _ = study
    run = tmp_path / 'copy'
    shutil.copytree(out, run)
    cfg = study_config('smoke', overrides=SET + ['sdm.objective=paper'])
    train_sdm(run / 'data' / 'real', tmp_path / 'other', 'sdm_4CH', '4CH', cfg.sdm, progress=False)
    shutil.copy(tmp_path / 'other' / 'checkpoints' / 'sdm_4CH.pt', run / 'checkpoints' / 'sdm_4CH.pt')
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'smoke', '--out', str(run),
                        '--set', *SET, '--redo-from', 'synthesize'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "sdm_4CH.pt: was trained with a different model (objective='paper', now 'v')" in r.stderr
    assert 'efn paper --redo-from sdm' in r.stderr and not (run / 'synthetic').exists()

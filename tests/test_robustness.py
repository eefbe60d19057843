"""Bad input and rough handling, as a careless user or a cluster scheduler would give them: nothing lost, nothing
silently wrong, one line that names the setting or file and the fix (exit 2). Most run `efn` in-process through
`cli.main` (the same code path as the console script, without a second interpreter start-up)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
import yaml

from echo_from_noise.cli import main
from echo_from_noise.base import DataError
from echo_from_noise.dataset import read_manifest
from echo_from_noise.distributed import Terminated
from echo_from_noise.training import load_checkpoint
from echo_from_noise.sdm import SDM_KIND, make_config, train_sdm
from echo_from_noise.synthesis import synthesize

from fixtures import write_pngs


def efn(argv) -> int: return main([str(a) for a in argv])


def fails(argv, capsys, *needles):
    "`efn argv` exits 2 with one line on stderr holding every needle, and no traceback."
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [l for l in err.splitlines() if l.startswith('efn: error')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    for n in needles: assert n in lines[0], (n, lines[0])
    return lines[0]


# ------------------------------------------------------------------ 1. --overwrite never destroys the source

def test_overwrite_never_deletes_the_source(tmp_path, capsys, phantom):
    src = write_pngs(tmp_path / 'pngs' / 'same')
    before = sorted(p.relative_to(src) for p in src.rglob('*'))
    fails(['prepare', 'pngs', src, src, '--size', 32, '--overwrite'], capsys, 'the output folder is the source')
    assert sorted(p.relative_to(src) for p in src.rglob('*')) == before
    raw = write_pngs(tmp_path / 'parent' / 'raw')
    (tmp_path / 'parent' / 'notes.txt').write_text('unrelated')
    fails(['prepare', 'pngs', raw, tmp_path / 'parent', '--size', 32, '--overwrite'], capsys, 'contains the source')
    assert (tmp_path / 'parent/notes.txt').exists() and sorted(p.relative_to(raw) for p in raw.rglob('*')) == before
    ds = tmp_path / 'ds'
    shutil.copytree(phantom, ds)
    fails(['augment', ds, ds, '--overwrite'], capsys, 'the output folder is the source')
    fails(['augment', ds, ds / 'aug'], capsys, 'lies inside the source')
    assert len(read_manifest(ds)) == len(read_manifest(phantom))        # every image still there
    other = tmp_path / 'mine'; other.mkdir(); (other / 'thesis.tex').write_text('x')
    fails(['augment', ds, other, '--overwrite'], capsys, 'only replaces a dataset written by echo_from_noise')
    assert (other / 'thesis.tex').exists()


# ------------------------------------------------------------------ 2. SIGTERM saves like SIGINT

def test_sigterm_checkpoints_and_resumes(phantom, tmp_path):
    "`timeout`, SLURM and Kubernetes stop jobs with SIGTERM: the finished steps are saved and the run resumes."
    run = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'echo_from_noise', 'train-sdm', str(phantom), str(run), '--profile', 'smoke',
           '--views', '4CH', '--set', 'steps=100000', 'save_every=100000', 'log_every=5']
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: p.stderr.read(1), '')), daemon=True)
    reader.start()
    t0 = time.time()                               # wait for a few steps (none saved: save_every is far away)
    while time.time() - t0 < 180 and not [int(n) for n in re.findall(r'(\d+)/100000', ''.join(err)) if int(n) >= 3]:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120); reader.join(timeout=10)
    err = ''.join(err)
    assert p.returncode == 143, err[-2000:]
    assert 'stopped by SIGTERM' in err and 'Traceback' not in err
    done = load_checkpoint(run / 'checkpoints/sdm_4CH.pt', SDM_KIND)['step']
    assert 0 < done < 100000
    cmd[cmd.index('steps=100000')] = f'steps={done + 3}'         # a longer run of the same settings resumes
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_checkpoint(run / 'checkpoints/sdm_4CH.pt', SDM_KIND)['step'] == done + 3


def test_sigterm_in_sdm_cyclegan_and_segmenter_loops(phantom, tmp_path, monkeypatch):
    "The signal arrives mid-run (sent by the process to itself); each trainer stops at a boundary with its work saved."
    kill = lambda: os.kill(os.getpid(), signal.SIGTERM)
    cfg = make_config('smoke', dict(steps=50, save_every=100))
    with pytest.raises(Terminated, match='stopped by SIGTERM after step 4'):
        train_sdm(phantom, tmp_path / 's', 'sdm_4CH', '4CH', cfg, progress=False,
                  callback=lambda done, h: kill() if done == 3 else None)
    assert load_checkpoint(tmp_path / 's/checkpoints/sdm_4CH.pt', SDM_KIND)['step'] == 4
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL           # the handler is only there while training

    from echo_from_noise.cyclegan import CYCLEGAN_KIND, make_config as cyclegan_config, train_cyclegan
    with pytest.raises(Terminated, match='after step 2'):
        train_cyclegan(phantom, tmp_path / 'c', 'cyclegan_4CH', '4CH', cyclegan_config('smoke', dict(steps=50)),
                       progress=False, callback=lambda done, h: kill() if done == 2 else None)
    assert load_checkpoint(tmp_path / 'c/checkpoints/cyclegan_4CH.pt', CYCLEGAN_KIND)['step'] == 2

    import echo_from_noise.segment as S
    real, calls = S.augment_batch, []
    def augment_then_kill(*a):
        calls.append(1)
        if len(calls) == 3: kill()               # in the second epoch (two batches per epoch)
        return real(*a)
    monkeypatch.setattr(S, 'augment_batch', augment_then_kill)
    train = S.load_frames(phantom, 'train')
    val = S.load_frames(phantom, 'val')
    seg_cfg = S.SegConfig(size=32, width=2, epochs=5, batch_size=len(train[0]) // 2 + 1)
    with pytest.raises(Terminated, match='in epoch 2'):
        S.train_segmenter(train[:2], val[:2], tmp_path / 'seg.pt', seg_cfg, progress=False)
    ck = load_checkpoint(tmp_path / 'seg.pt', S.SEG_KIND)
    assert ck['epoch'] == 1 and not ck['finished']
    monkeypatch.setattr(S, 'augment_batch', real)
    assert S.train_segmenter(train[:2], val[:2], tmp_path / 'seg.pt', seg_cfg, progress=False)['epochs'] == 5


def test_segmenter_saves_at_most_every_save_every_s_and_resumes_exactly(phantom, tmp_path, monkeypatch):
    """A checkpoint after every epoch cost about a quarter of a short-epoch segmenter's time (nbs/07_segment): a call
    saves its first epoch, then at most every SAVE_EVERY_S seconds, and the end. Stopped later, it resumes from the
    epoch on disk and ends with the weights of an unbroken run."""
    import echo_from_noise.segment as S
    saved, real_save = [], S.save_checkpoint
    monkeypatch.setattr(S, 'save_checkpoint', lambda p, d: (saved.append(d.get('epoch', 'end')), real_save(p, d)))
    train, val = S.load_frames(phantom, 'train')[:2], S.load_frames(phantom, 'val')[:2]
    cfg = S.SegConfig(size=32, width=2, epochs=5, batch_size=len(train[0]))      # one batch per epoch
    S.train_segmenter(train, val, tmp_path / 'whole.pt', cfg, progress=False)
    assert saved == [1, 'end']

    real_augment, calls = S.augment_batch, []
    def augment_then_kill(*a):
        calls.append(1)
        if len(calls) == 4: os.kill(os.getpid(), signal.SIGTERM)      # in epoch 4: epochs 2 and 3 are not on disk
        return real_augment(*a)
    monkeypatch.setattr(S, 'augment_batch', augment_then_kill)
    with pytest.raises(Terminated, match='in epoch 4; .* resume from epoch 1'):
        S.train_segmenter(train, val, tmp_path / 'broken.pt', cfg, progress=False)
    monkeypatch.setattr(S, 'augment_batch', real_augment)
    S.train_segmenter(train, val, tmp_path / 'broken.pt', cfg, progress=False)
    whole, broken = (load_checkpoint(tmp_path / f'{n}.pt', S.SEG_KIND) for n in ('whole', 'broken'))
    assert [r['epoch'] for r in broken['log']] == [1, 2, 3, 4, 5]
    assert all(torch.equal(whole['model'][k], broken['model'][k]) for k in whole['model'])



def test_finishing_phase_trains_on_its_own_frames_and_resumes_only_with_them(phantom, tmp_path, monkeypatch):
    """A finishing phase (nbs/07_segment): the last finish_frac of the optimiser steps see only the finishing frames, the
    steps before only the main ones, the same number of steps in all; a checkpoint is resumed only with its finishing phase."""
    import echo_from_noise.segment as S
    train, val = S.load_frames(phantom, 'train')[:2], S.load_frames(phantom, 'val')[:2]
    finish = (train[0][:4], train[1][:4])
    seen, real_augment = [], S.augment_batch
    monkeypatch.setattr(S, 'augment_batch', lambda img, lab, cfg, g: (seen.append(img.clone()), real_augment(img, lab, cfg, g))[1])
    cfg = S.SegConfig(size=32, width=2, epochs=4, batch_size=len(train[0]))     # 4 steps: one a main epoch, one a finishing epoch
    s = S.train_segmenter(train, val, tmp_path / 'c.pt', cfg, progress=False, finish=finish, finish_frac=0.5)
    assert (s['main_epochs'], s['epochs'], s['finish_frames']) == (2, 4, 4)
    assert [len(x) for x in seen] == [len(train[0])] * 2 + [4] * 2
    lrs = [r['lr'] for r in load_checkpoint(tmp_path / 'c.pt', S.SEG_KIND)['log']]     # stable, then the cosine decay
    assert lrs == pytest.approx([cfg.lr, cfg.lr, cfg.lr, (cfg.lr + cfg.min_lr) / 2])
    as_set = lambda imgs: sorted(bytes(a) for a in imgs)
    for x in seen[2:]:       # each finishing batch is the four finishing frames, in some order
        assert as_set((x[:, 0] * 255).round().to(torch.uint8).numpy()) == as_set(finish[0])
    with pytest.raises(DataError, match=r'finishing phase .*\[0.5, 4\], asked for \[0.25, 4\]'):
        S.train_segmenter(train, val, tmp_path / 'c.pt', cfg, progress=False, finish=finish, finish_frac=0.25)
    with pytest.raises(DataError, match=r'\[0.5, 4\], asked for None'):
        S.train_segmenter(train, val, tmp_path / 'c.pt', cfg, progress=False)
    with pytest.raises(ValueError, match='finish_frac'):
        S.train_segmenter(train, val, tmp_path / 'd.pt', cfg, progress=False, finish=finish, finish_frac=1.0)

# ------------------------------------------------------------------ 8. resuming with other settings

def test_resume_refuses_other_settings_and_other_views(phantom, tmp_path, capsys):
    run = tmp_path / 'run'
    base = ['train-sdm', phantom, run, '--profile', 'smoke', '--views', '2CH', '--set', 'steps=2', 'lr=1e-4', 'seed=5']
    assert efn(base) == 0
    fails(base[:-3] + ['steps=4', 'lr=1e-3', 'seed=5'], capsys, 'sdm_2CH.pt', 'lr=0.0001, now 0.001')
    assert yaml.safe_load((run / 'config.yaml').read_text())['sdm']['lr'] == 1e-4    # the record is still true
    assert efn(base[:-3] + ['steps=4', 'lr=1e-4', 'seed=5']) == 0                       # only steps grew: resumes
    assert load_checkpoint(run / 'checkpoints/sdm_2CH.pt', SDM_KIND)['step'] == 4
    shutil.copy(run / 'checkpoints/sdm_2CH.pt', run / 'checkpoints/sdm_4CH.pt')        # a 2CH model under a 4CH name
    fails(['train-sdm', phantom, run, '--profile', 'smoke', '--views', '4CH', '--set', 'steps=4', 'lr=1e-4', 'seed=5'],
          capsys, 'sdm_4CH.pt: holds the 2CH model')


# ------------------------------------------------------------------ 10, 11. settings and data that cannot train

@pytest.mark.parametrize('setting', ['steps=0', 'steps=-5', 'save_every=0', 'batch_size=0', 'lr=nan', 'phases=XX',
                                     'device=cuda'])
def test_bad_settings_are_one_line(phantom, tmp_path, capsys, setting):
    if setting == 'device=cuda' and torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    fails(['train-sdm', phantom, tmp_path / 'run', '--profile', 'smoke', '--set', setting], capsys,
          'no CUDA GPU' if 'cuda' in setting else f'--set {setting.split("=")[0]}=')
    assert not (tmp_path / 'run').exists()


def test_data_that_cannot_train(phantom, tmp_path, capsys):
    test_only = tmp_path / 'test_only'
    shutil.copytree(phantom, test_only)
    df = read_manifest(test_only)
    df.assign(split='test').to_csv(test_only / 'manifest.csv', index=False)
    fails(['train-sdm', test_only, tmp_path / 'r1', '--profile', 'smoke'], capsys, 'no training frames')
    mixed = tmp_path / 'mixed'
    shutil.copytree(phantom, mixed)
    row = df[(df['split'] == 'train') & (df['view'] == '4CH') & (df['phase'] == 'ED')].iloc[-1]
    import cv2
    for col in ('image', 'label'):
        cv2.imwrite(str(mixed / row[col]), np.zeros((48, 48), np.uint8))
    fails(['train-sdm', mixed, tmp_path / 'r2', '--profile', 'smoke'], capsys, '48x48 px', 'one size')
    assert not (tmp_path / 'r2').exists()               # no config.yaml left behind for a run that never started


def test_bad_checkpoints(phantom, tmp_path, capsys):
    ck = tmp_path / 'run/checkpoints/sdm_4CH.pt'
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b'')
    fails(['train-sdm', phantom, tmp_path / 'run', '--profile', 'smoke', '--views', '4CH'], capsys,
          'sdm_4CH.pt: checkpoint is empty')


# ------------------------------------------------------------------ 11-13. synthesis checks everything first

@pytest.mark.parametrize('args, needle', [(['--steps', 0], 'at least 1 step'), (['--steps', 5000], 'more than the 1000'),
                                          (['--batch-size', 0], 'at least 1'), (['--guidance', -5], 'guidance scale'),
                                          (['--device', 'cuda'], 'no CUDA GPU')])
def test_synthesize_bad_options(trained, tmp_path, capsys, args, needle):
    if 'cuda' in args and torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    run, aug = trained
    fails(['synthesize', run, aug, tmp_path / 'out', *args], capsys, needle)
    assert not (tmp_path / 'out').exists()


def test_synthesize_fails_before_sampling(trained, tmp_path, monkeypatch, caplog):
    "A missing second-view model, an OUT that exists or cannot be written: refused before any image is drawn."
    import echo_from_noise.synthesis as S
    run, aug = trained
    drawn = []
    real = S.sdm_generate
    monkeypatch.setattr(S, 'sdm_generate', lambda *a, **k: drawn.append(1) or real(*a, **k))
    one = tmp_path / 'one'
    (one / 'checkpoints').mkdir(parents=True)
    shutil.copy(run / 'checkpoints/sdm_2CH.pt', one / 'checkpoints')
    with pytest.raises(DataError, match='sdm_4CH.pt: no SDM for view 4CH'):
        synthesize(one, aug, tmp_path / 'out', steps=2, progress=False)
    (tmp_path / 'full').mkdir(); (tmp_path / 'full/x').write_text('x')
    with pytest.raises(DataError, match='already exists'):
        synthesize(run, aug, tmp_path / 'full', steps=2, progress=False)
    if os.geteuid() != 0:                              # root may write anywhere
        ro = tmp_path / 'ro'; ro.mkdir(); ro.chmod(0o500)
        with pytest.raises(DataError, match='cannot write here'):
            synthesize(run, aug, ro / 'out', steps=2, progress=False)
    assert not drawn
    with caplog.at_level('WARNING', logger='echo_from_noise'):      # an unfinished model: a warning, then images
        ck = load_checkpoint(run / 'checkpoints/sdm_4CH.pt', SDM_KIND)
        ck['step'] = 1
        torch.save(ck, one / 'checkpoints/sdm_4CH.pt')
        synthesize(one, aug, tmp_path / 'out', steps=2, progress=False)
    assert 'training is unfinished (1 of 2 steps)' in caplog.text and drawn


# ------------------------------------------------------------------ small

def test_phantom_error_starts_its_own_line(tmp_path):
    (tmp_path / 'taken').mkdir(); (tmp_path / 'taken/x').write_text('x')
    r = subprocess.run([sys.executable, '-m', 'echo_from_noise', 'phantom', str(tmp_path / 'taken'), '--patients', '2',
                        '--size', '32'], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith('efn: error: '), r.stderr      # no progress bar drawn before it

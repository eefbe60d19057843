"""The SDM stage at smoke scale: resume, distributed equivalence, checkpoints, divergence, CLI round trip."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from echo_from_noise.base import DataError
from echo_from_noise.dataset import load_frame, read_manifest
from echo_from_noise.phantom import make_phantom
from echo_from_noise.training import TrainingDiverged, load_checkpoint, save_checkpoint
from echo_from_noise.sdm import (SDM_KIND, load_sdm, make_config,
                                 train_sdm)

from fixtures import images_by_id


@pytest.fixture(scope='module')
def phantom(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp('ph') / 'ph', patients=6, size=32, seed=1, workers=1, progress=False)


def params(path):
    return load_checkpoint(path, SDM_KIND)['model']


def test_resume_after_interruption_matches_uninterrupted(phantom, tmp_path):
    cfg = make_config('smoke', dict(steps=6, save_every=100))
    train_sdm(phantom, tmp_path / 'a', 'sdm_4CH', '4CH', cfg, progress=False)

    def interrupt(step, history):
        if step == 3: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_sdm(phantom, tmp_path / 'b', 'sdm_4CH', '4CH', cfg, progress=False, callback=interrupt)
    assert load_checkpoint(tmp_path / 'b/checkpoints/sdm_4CH.pt', SDM_KIND)['step'] == 3   # saved on the way out
    train_sdm(phantom, tmp_path / 'b', 'sdm_4CH', '4CH', cfg, progress=False)
    a, b = params(tmp_path / 'a/checkpoints/sdm_4CH.pt'), params(tmp_path / 'b/checkpoints/sdm_4CH.pt')
    assert all(torch.equal(a[k], b[k]) for k in a)
    ca, cb = load_checkpoint(tmp_path / 'a/checkpoints/sdm_4CH.pt', SDM_KIND), load_checkpoint(tmp_path / 'b/checkpoints/sdm_4CH.pt', SDM_KIND)
    assert all(torch.equal(ca['ema'][k], cb['ema'][k]) for k in ca['ema'])
    assert ca['optimizer']['state'][0]['step'] == cb['optimizer']['state'][0]['step'] == 6


def test_a_finished_sdm_returns_its_summary_without_building_anything(phantom, tmp_path, monkeypatch):
    "A study collects its finished SDMs by calling train_sdm again: that must not load frames or build the network."
    import echo_from_noise.sdm as S
    cfg = make_config('smoke', dict(steps=2))
    first = train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', cfg, progress=False)
    def refuse(*a, **k): raise AssertionError('built for a finished model')
    monkeypatch.setattr(S, 'FrameSet', refuse); monkeypatch.setattr(S, 'build_model', refuse)
    assert train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', cfg, progress=False) == first
    with pytest.raises(DataError, match='lr=0.001, now 0.002'):          # its settings are still checked
        train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', make_config('smoke', dict(steps=2, lr=2e-3)), progress=False)
    (tmp_path / 'r/metrics/sdm_4CH_train.json').write_text('{"ste')      # a torn record: trained again from the end
    monkeypatch.undo()
    assert train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', cfg, progress=False) == first
    assert json.loads((tmp_path / 'r/metrics/sdm_4CH_train.json').read_text()) == first

def test_two_process_gloo_matches_one_process(phantom, tmp_path):
    sets = ['steps=3', 'bf16=false', 'save_every=3', 'log_every=1']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        '-m', 'echo_from_noise', 'train-sdm', str(phantom), str(tmp_path / 'ddp'), '--profile', 'smoke',
                        '--views', '4CH', '--set', *sets], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / 'ddp/metrics/sdm_4CH_train.json').read_text())
    assert summary['world_size'] == 2 and summary['max_rank_param_diff'] == 0.0   # identical on both ranks
    one = make_config('smoke', sets)
    train_sdm(phantom, tmp_path / 'one', 'sdm_4CH', '4CH', one, progress=False)
    a, b = params(tmp_path / 'ddp/checkpoints/sdm_4CH.pt'), params(tmp_path / 'one/checkpoints/sdm_4CH.pt')
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-4, worst       # the same global batch, split over two processes


def test_micro_batches_accumulate_to_the_same_step(phantom, tmp_path):
    "micro_batch=2 or 3 of a batch of 4: the gradient of one pass of all 4 (each sample weighs 1/4), then one update."
    import contextlib
    from echo_from_noise.sdm import _sdm_batch, _sdm_step, _sdm_state, diffusion_for
    from echo_from_noise.training import FrameSet
    data = FrameSet(phantom, 'train', ['4CH'], ['ED', 'ES'], 32)
    grads = {}
    for micro in (0, 2, 3):
        cfg = make_config('smoke', ['bf16=false', f'micro_batch={micro}', 'grad_clip=1e9'])
        net, ema, _, _, _, _ = _sdm_state(cfg, torch.device('cpu'), None)
        opt = torch.optim.SGD(net.parameters(), lr=0.0)          # the gradient stays for the test to read
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        batch = _sdm_batch(data, cfg, 0, 0, 4, torch.device('cpu'))
        loss, terms, stop = _sdm_step(net, net, ema, opt, sched, diffusion_for(cfg), batch, cfg, 0,
                                      contextlib.nullcontext(), 1, lambda *a: 'diverged')
        assert terms['loss'].shape == (4,) and not stop
        grads[micro] = (float(loss), torch.cat([p.grad.flatten() for p in net.parameters()]))
    for micro in (2, 3):
        assert abs(grads[micro][0] - grads[0][0]) < 1e-5 * abs(grads[0][0])
        assert torch.allclose(grads[micro][1], grads[0][1], rtol=1e-4, atol=1e-7), micro
    with pytest.raises(DataError, match='micro_batch=-1: must be 0 or more'):
        make_config('smoke', ['micro_batch=-1'])
    train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', make_config('smoke', ['steps=2', 'micro_batch=2']), progress=False)
    more = make_config('smoke', ['steps=3', 'micro_batch=1'])          # resumes under another micro_batch
    assert train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', more, progress=False)['steps'] == 3


def test_corrupt_and_foreign_checkpoints_are_refused(phantom, tmp_path):
    bad = tmp_path / 'run/checkpoints/sdm_4CH.pt'
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b'\x80\x02garbage')
    with pytest.raises(DataError, match='sdm_4CH.pt: not a readable checkpoint'):
        load_checkpoint(bad, SDM_KIND)
    with pytest.raises(DataError, match='not a readable checkpoint'):
        train_sdm(phantom, tmp_path / 'run', 'sdm_4CH', '4CH', make_config('smoke'), progress=False)
    torch.save({'state_dict': {'w': torch.zeros(2)}}, bad)
    with pytest.raises(DataError, match='not an echo_from_noise SDM checkpoint'):
        load_checkpoint(bad, SDM_KIND)
    with pytest.raises(DataError, match='checkpoint not found'):
        load_checkpoint(tmp_path / 'nothing.pt', SDM_KIND)


def test_checkpoint_from_a_different_model_is_refused(phantom, tmp_path):
    train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', make_config('smoke', dict(steps=1)), progress=False)
    other = make_config('smoke', dict(steps=2, channels=(8, 16)))
    with pytest.raises(DataError, match=r'different model \(channels='):
        train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', other, progress=False)


def test_nan_stops_and_keeps_last_good_checkpoint(phantom, tmp_path):
    cfg = make_config('smoke', dict(steps=6, save_every=1))
    import echo_from_noise.sdm as S
    real = S.build_model

    def poisoned(c):
        m = real(c)
        state = {'n': 0}
        def hook(mod, inp, out):
            state['n'] += 1
            return out * float('nan') if state['n'] > 2 else out
        m.register_forward_hook(hook)
        return m
    S.build_model = poisoned
    try:
        with pytest.raises(TrainingDiverged, match='not finite at step 2'):
            train_sdm(phantom, tmp_path / 'r', 'sdm_4CH', '4CH', cfg, progress=False)
    finally:
        S.build_model = real
    ck = load_checkpoint(tmp_path / 'r/checkpoints/sdm_4CH.pt', SDM_KIND)
    assert ck['step'] == 2 and all(torch.isfinite(v).all() for v in ck['model'].values() if v.is_floating_point())


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    save_checkpoint(tmp_path / 'c.pt', dict(kind='echo_from_noise.sdm', x=torch.ones(3)))
    assert [p.name for p in tmp_path.iterdir()] == ['c.pt']


def test_a_maps_image_does_not_depend_on_its_batch_or_the_number_of_processes(phantom, tmp_path):
    "Each map's noise comes from the seed and its id: batch size 1, 5 and two torchrun processes draw the same images."
    from echo_from_noise.synthesis import synthesize
    run = tmp_path / 'run'
    train_sdm(phantom, run, 'sdm_4CH', '4CH', make_config('smoke', dict(steps=2, bf16=False)), progress=False)
    train_sdm(phantom, run, 'sdm_2CH', '2CH', make_config('smoke', dict(steps=2, bf16=False)), progress=False)
    for b in (1, 5):
        synthesize(run, phantom, tmp_path / f'b{b}', 'ddpm', 3, batch_size=b, seed=7, progress=False)
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        '-m', 'echo_from_noise', 'synthesize', str(run), str(phantom), str(tmp_path / 'w2'),
                        '--sampler', 'ddpm', '--steps', '3', '--batch-size', '2', '--seed', '7'],
                       capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    images = {name: images_by_id(tmp_path / name) for name in ('b1', 'b5', 'w2')}
    assert images['b1'].keys() == images['b5'].keys() == images['w2'].keys() and len(images['b1']) > 5
    for other in ('b5', 'w2'):      # equal up to the float rounding of a batched convolution: at most 1 grey level
        worst = max(np.abs(images['b1'][i] - images[other][i]).max() for i in images['b1'])
        assert worst <= 1, (other, worst)
    again = images_by_id(synthesize(run, phantom, tmp_path / 'seed8', 'ddpm', 3, batch_size=5, seed=8, progress=False))
    assert any(np.abs(again[i] - images['b5'][i]).max() > 10 for i in again)          # another seed, other images

def test_cli_train_then_synthesize(phantom, tmp_path):
    run = tmp_path / 'run'
    efn = [sys.executable, '-m', 'echo_from_noise']
    r = subprocess.run(efn + ['train-sdm', str(phantom), str(run), '--profile', 'smoke', '--set', 'steps=2'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (run / 'checkpoints/sdm_2CH.pt').exists() and (run / 'checkpoints/sdm_4CH.pt').exists()
    assert 'sdm:' in (run / 'config.yaml').read_text() and (run / 'metrics/sdm_4CH_loss.png').exists()
    r = subprocess.run(efn + ['augment', str(phantom), str(tmp_path / 'aug'), '--copies', '1'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(efn + ['synthesize', str(run), str(tmp_path / 'aug'), str(tmp_path / 'syn'), '--steps', '3',
                              '--sampler', 'ddim'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    syn, aug = read_manifest(tmp_path / 'syn'), read_manifest(tmp_path / 'aug')
    assert len(syn) == len(aug) and (syn['image'] != '').all() and (syn['source'] == 'synthetic').all()
    assert (syn['label_source'] == aug['label_source']).all() and syn['generator'].str.startswith('sdm:ddim:3').all()
    img, lab = load_frame(tmp_path / 'syn', syn.iloc[0])
    _, lab0 = load_frame(tmp_path / 'aug', aug.iloc[0])
    assert (lab == lab0).all() and img.shape == (32, 32) and (img[lab == 0] == 0).all()
    r = subprocess.run(efn + ['synthesize', str(tmp_path / 'nothing'), str(tmp_path / 'aug'), str(tmp_path / 's2')],
                       capture_output=True, text=True)
    assert r.returncode == 2 and 'sdm_' in r.stderr and 'efn train-sdm' in r.stderr


def test_mid_spade_conditions_the_middle_block_on_the_label_map(phantom, tmp_path):
    "MONAI's middle block never sees the label map; with mid_spade (the SDM's layout) it does, and it trains and reloads."
    from echo_from_noise.labels import one_hot
    from echo_from_noise.sdm import SDMNet, SemanticMidBlock, build_model
    torch.manual_seed(0)
    seen = {}
    for mid_spade in (False, True):
        net = SDMNet(build_model(make_config('smoke', dict(mid_spade=mid_spade))))
        for p in net.parameters(): torch.nn.init.normal_(p, std=0.05)      # past the zero-initialised output convs
        mid = net.unet.middle_block
        mid.register_forward_hook(lambda m, i, o, k=mid_spade: seen.setdefault(k, []).append(o.detach()))
        x, t = torch.randn(1, 1, 32, 32), torch.tensor([100])
        for lab in (torch.zeros(1, 32, 32, dtype=torch.long), torch.full((1, 32, 32), 2)):
            net(x, t, one_hot(lab))
        assert isinstance(mid, SemanticMidBlock) == mid_spade and getattr(mid, 'seg', None) is None
    assert torch.equal(*seen[False])                   # the same middle-block output whatever the map
    assert not torch.allclose(*seen[True])             # the map changes it
    cfg = make_config('smoke', dict(steps=3, mid_spade=True))
    train_sdm(phantom, tmp_path, 'sdm_4CH', '4CH', cfg, progress=False)
    net, loaded, _ = load_sdm(tmp_path / 'checkpoints/sdm_4CH.pt')
    assert loaded.mid_spade and isinstance(net.unet.middle_block, SemanticMidBlock)
    from dataclasses import asdict
    from echo_from_noise.sdm import saved_config
    older = {k: v for k, v in asdict(loaded).items() if k != 'mid_spade'}
    assert saved_config(older).mid_spade is False      # a checkpoint written before the setting was made with MONAI's block

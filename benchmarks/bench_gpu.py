#!/usr/bin/env python
"""The gpu profile on a CUDA GPU: training-step speed and peak memory of the SDM and the segmenter, sampling speed, and
one whole study (`runner.run_stage`, every stage in order) at the gpu profile's size and data, with the SDM's and the
segmenters' step counts cut to what `--budget` seconds allow (the rates measured first decide them; both counts are
written into the report). Writes `--report` (benchmarks/gpu_profile.md) after every part, so a run stopped early still
reports what it measured; `--artifacts DIR` also gets the study's Table 1, realism table, Figure 3 and SDM loss log.
benchmarks/gpu.md reads the results.

    python -m benchmarks.bench_gpu --budget 480 --artifacts DIR         # on a machine with a CUDA GPU
    python -m benchmarks.bench_gpu --profile smoke --device cpu --budget 300 --report /tmp/gpu.md   # a dry run here
    python -m benchmarks.bench_gpu --sdm-steps 400 --seg-steps 800 --budget 520 --artifacts DIR  # the study alone

Timing: each micro-benchmark runs warm-up steps first (cuDNN's algorithm search, allocator growth), then times a
fixed number of steps with the device synchronised before each clock read; the median over three timed blocks.
"""
import argparse
import importlib
import json
import math
import os
import platform
import shutil
import time
from datetime import date
from pathlib import Path

import torch

from echo_from_noise.base import STAGES
from echo_from_noise.config import study_config
from echo_from_noise.distributed import pick_device
from echo_from_noise.diffusion import bf16_native, sample
from echo_from_noise.labels import one_hot
from echo_from_noise.runner import run_stage
from echo_from_noise.sdm import SDMNet, build_model, diffusion_for
from echo_from_noise.segment import augment_batch, build_segmenter
from benchmarks.bench_gpu_step import setup, timed as step_timed

T0 = time.perf_counter()
R = dict(parts={})


def elapsed(): return time.perf_counter() - T0


def timed(fn, dev, warm: int, n: int) -> float:
    "`bench_gpu_step.timed` with three timed blocks."
    return step_timed(fn, dev, warm, n, blocks=3)


def peak_reset(dev):
    if dev.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(dev)


def peak_gib(dev): return torch.cuda.max_memory_allocated(dev) / 2 ** 30 if dev.type == 'cuda' else float('nan')


def sdm_steps(cfg, dev, batches):
    "s/step and peak memory of the SDM's training step (hybrid loss, fused AdamW, bf16 autocast where native)."
    rows = []
    for b in batches:
        peak_reset(dev)
        step, _, net = setup(cfg, dev, 'NCHW bf16' if cfg.bf16 else 'NCHW tf32', b)
        ema = [p.detach().clone() for p in net.parameters()]
        s = timed(step, dev, warm=5, n=10)
        params = list(net.parameters())
        loop = lambda: [e.lerp_(p, 1e-3) for e, p in zip(ema, params)]
        fused = lambda: torch._foreach_lerp_(ema, params, 1e-3)
        rows.append(dict(batch=b, s_step=s, img_s=b / s, peak_gib=peak_gib(dev),
                         ema_loop_ms=timed(loop, dev, 3, 10) * 1e3, ema_foreach_ms=timed(fused, dev, 3, 10) * 1e3,
                         params_m=sum(p.numel() for p in params) / 1e6))
        print(f'SDM step batch {b}: {s * 1e3:.1f} ms, {b / s:.0f} img/s, peak {rows[-1]["peak_gib"]:.2f} GiB', flush=True)
        net = ema = params = step = None     # freed before the next batch size's peak is measured
    return rows


def sampling(cfg, dev, sampler, steps, batches):
    "Images/s of `sampler` in `steps` network evaluations (the SDM untrained: speed does not depend on the weights)."
    torch.manual_seed(0)
    net = SDMNet(build_model(cfg)).to(dev).eval()
    d = diffusion_for(cfg)
    rows = []
    for b in batches:
        peak_reset(dev)
        seg = one_hot(torch.randint(0, 5, (b, cfg.size, cfg.size), device=dev))
        with torch.no_grad():
            s = timed(lambda: sample(net, seg, d, sampler, steps, bf16=cfg.bf16), dev, warm=1, n=1)
        rows.append(dict(batch=b, sampler=sampler, steps=steps, s_batch=s, img_s=b / s, peak_gib=peak_gib(dev)))
        print(f'sampling {sampler}-{steps} batch {b}: {b / s:.1f} img/s, peak {rows[-1]["peak_gib"]:.2f} GiB', flush=True)
    return rows


def seg_steps(cfg, dev):
    "s/step of the segmenter's training step as `train_segmenter` runs it (augmentation on the CPU included)."
    torch.manual_seed(0)
    peak_reset(dev)
    model = build_segmenter(cfg.size, cfg.width).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(cfg.batch_size, 1, cfg.size, cfg.size)
    Y = torch.randint(0, 4, (cfg.batch_size, cfg.size, cfg.size))

    def step(aug=True):
        x, y = augment_batch(X, Y, cfg, g) if aug else (X, Y)
        loss = torch.nn.functional.cross_entropy(model(x.to(dev)), y.to(dev))
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        loss.item()

    s = timed(step, dev, warm=5, n=20)
    s_net = timed(lambda: step(False), dev, warm=2, n=20)
    print(f'segmenter step batch {cfg.batch_size}: {s * 1e3:.1f} ms ({s_net * 1e3:.1f} ms without augmentation)', flush=True)
    return dict(batch=cfg.batch_size, width=cfg.width, s_step=s, s_step_no_aug=s_net, peak_gib=peak_gib(dev))


def study(args, dev, rep: Path):
    "One study, every stage, with the step counts that fit the time left; each stage's seconds recorded."
    full = study_config(args.profile, 'phantom', args.device, 0, False, {})
    # synthesis of the augmented maps (about 0.9 of the patients' 4 frames, times copies) at the measured rate, and
    # 120 s for data, evaluation, adherence and figures, come first; the SDM gets 2/3 of the rest, the segmenters 1/3
    if args.sdm_steps and args.seg_steps: n_sdm, n_seg = args.sdm_steps, args.seg_steps
    else:
        sdm, seg = R['parts']['sdm_step'][0], R['parts']['seg_step']
        rate = max(r['img_s'] for r in R['parts']['sampling'] if r['batch'] <= full.synth_batch) if 'sampling' in R['parts'] else 10
        left = args.budget - elapsed() - 0.9 * 4 * full.patients * full.copies / rate - 120
        n_sdm = int(min(full.sdm.steps, max(100, left * 2 / 3 / 2 / (1.3 * sdm['s_step'])) // 50 * 50))
        n_seg = int(min(full.seg.min_steps, max(50, left / 3 / 7 / (1.5 * seg['s_step'])) // 10 * 10))
    over = {**R.get('sampler_fallback', {}), 'sdm.steps': n_sdm, 'sdm.save_every': n_sdm, 'sdm.warmup': min(full.sdm.warmup, n_sdm // 5),
            'seg.epochs': 1, 'seg.min_steps': n_seg}
    R['study'] = dict(overrides=over, profile=args.profile, cyclegan=False, stages={}, run_dir=args.run_dir,
                      full=dict(sdm_steps=full.sdm.steps, seg_epochs=full.seg.epochs, seg_min_steps=full.seg.min_steps))
    print(f'study: {over}', flush=True)
    run = Path(args.run_dir)
    for st in STAGES:
        if args.budget - elapsed() < 15:
            R['study']['stages'][st] = 'not run: out of time'
            continue
        t = time.perf_counter()
        try:
            res = run_stage(st, run, args.profile, 'phantom', args.device, 0, progress=False, with_cyclegan=False,
                            overrides=over)['result']
            R['study']['stages'][st] = round(time.perf_counter() - t, 1)
            if st == 'synthesize': R['study']['images'] = res['images']
            if st == 'segment': R['study']['seg'] = {k: v for k, v in res.items() if isinstance(v, dict)}
        except Exception as e:      # keep what was measured; say what broke
            R['study']['stages'][st] = f'failed: {type(e).__name__}: {e}'[:300]
            print(f'{st} failed: {e}', flush=True)
            break
        print(f'stage {st}: {R["study"]["stages"][st]} s (elapsed {elapsed():.0f} s)', flush=True)
        write_report(rep)
        # copied after every stage, so a run stopped by its time limit still hands back what it made
        for name in ('table1.md', 'metrics/realism.csv', 'figures/fig3.png', 'metrics/sdm_4CH_loss.csv'):
            if args.artifacts and (run / name).exists(): shutil.copy(run / name, Path(args.artifacts) / Path(name).name)


def fmt(x, nd=1): return f'{x:.{nd}f}' if isinstance(x, (int, float)) and not math.isnan(x) else '-'


def write_report(path: Path):
    e, P = R['env'], R['parts']
    L = ['# The gpu profile on a GPU', '',
         f'Measured {e["date"]} on {e["gpu"]} ({e["gpu_gib"]} GiB, {e["cpus"]} CPU cores), torch {e["torch"]}, '
         f'bf16 native: {e["bf16"]}; profile "{e["profile"]}" ({e["size"]} px). `python -m benchmarks.bench_gpu` '
         'reproduces it; timings are medians of three timed blocks after warm-up, the device synchronised.', '']
    if 'sdm_step' in P:
        r0 = P['sdm_step'][0]
        L += [f'## SDM training step ({r0["params_m"]:.1f} M parameters; hybrid loss, fused AdamW, bf16 autocast)', '',
              '| batch | ms/step | images/s | peak GPU memory (GiB) | EMA update, loop (ms) | EMA update, foreach (ms) |',
              '|---|---|---|---|---|---|']
        L += [f'| {r["batch"]} | {fmt(r["s_step"] * 1e3)} | {fmt(r["img_s"], 0)} | {fmt(r["peak_gib"], 2)} | '
              f'{fmt(r["ema_loop_ms"], 2)} | {fmt(r["ema_foreach_ms"], 2)} |' for r in P['sdm_step']]
        L += ['']
    if 'sampling' in P:
        L += ['## Sampling (untrained SDM of the profile; speed does not depend on the weights)', '',
              '| sampler | steps | batch | s/batch | images/s | peak GPU memory (GiB) |', '|---|---|---|---|---|---|']
        L += [f'| {r["sampler"]} | {r["steps"]} | {r["batch"]} | {fmt(r["s_batch"], 2)} | {fmt(r["img_s"])} | '
              f'{fmt(r["peak_gib"], 2)} |' for r in P['sampling']]
        L += ['']
    if 'seg_step' in P:
        r = P['seg_step']
        L += ['## Segmenter training step', '', f'Batch {r["batch"]}, width {r["width"]}: {fmt(r["s_step"] * 1e3)} ms/step '
              f'as `train_segmenter` runs it (intensity and geometric augmentation on the CPU), '
              f'{fmt(r["s_step_no_aug"] * 1e3)} ms without the augmentation; peak {fmt(r["peak_gib"], 2)} GiB.', '']
    if 'study' in R:
        s = R['study']
        f = s['full']
        L += ['## One study at the profile\'s size and data, with cut step counts', '',
              f'`efn paper --profile {s["profile"]}` (no CycleGAN) with `--set` {", ".join(f"{k}={v}" for k, v in s["overrides"].items())}: '
              f'the profile itself trains each SDM {f["sdm_steps"]} steps and each segmenter at least '
              f'{f["seg_epochs"]} epochs and {f["seg_min_steps"]} steps. So Table 1 below shows that the whole study runs on '
              'the GPU and how long each stage takes per step; it is not the gpu profile\'s Table 1.', '',
              '| stage | seconds |', '|---|---|']
        L += [f'| {k} | {v} |' for k, v in s['stages'].items()]
        L += ['']
        if 'images' in s and isinstance(s['stages'].get('synthesize'), float):
            L += [f'Synthesis: {s["images"]} images in {s["stages"]["synthesize"]} s '
                  f'({s["images"] / s["stages"]["synthesize"]:.1f} images/s, model loading and PNG writing included).', '']
        if isinstance(s['stages'].get('sdm'), float):
            per = s['stages']['sdm'] / (2 * s['overrides']['sdm.steps'])
            bare = f', against {fmt(P["sdm_step"][0]["s_step"] * 1e3)} ms for the bare step above' if 'sdm_step' in P else ''
            L += [f'SDM stage: {fmt(per * 1e3)} ms per step in `train_sdm` (two views){bare}; at that rate the profile\'s '
                  f'{f["sdm_steps"]} steps per view take {fmt(2 * f["sdm_steps"] * per / 60)} min for the two views.', '']
        if (Path(s['run_dir']) / 'table1.md').exists():
            L += [(Path(s['run_dir']) / 'table1.md').read_text(), '']
    Path(path).write_text('\n'.join(L) + '\n')
    Path(path).with_suffix('.json').write_text(json.dumps(R, indent=1, default=str))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--profile', default='gpu')
    ap.add_argument('--device', default='auto')
    ap.add_argument('--budget', type=float, default=480, help='seconds for the whole script (the study gets the rest)')
    ap.add_argument('--report', default='benchmarks/gpu_profile.md')
    ap.add_argument('--artifacts', help='folder to copy the study\'s Table 1, realism table, Figure 3 and SDM loss log into')
    ap.add_argument('--run-dir', default='runs/bench_gpu')
    ap.add_argument('--sdm-steps', type=int, help='with --seg-steps: skip the micro-benchmarks, run the study at these counts')
    ap.add_argument('--seg-steps', type=int, help='steps per segmenter (every Table 1 row the same)')
    args = ap.parse_args()
    dev = pick_device(args.device)
    rep = Path(args.report)
    rep.parent.mkdir(parents=True, exist_ok=True)
    try: importlib.import_module('diffusers')      # the dpm++ samplers need it
    except ImportError as e:
        print(f'diffusers does not import here ({e}): DDIM stands in for the profile\'s sampler', flush=True)
        R['sampler_fallback'] = {'sampler': 'ddim'}
    cfg = study_config(args.profile, 'phantom', args.device, 0, False, R.get('sampler_fallback', {}))
    torch.backends.cudnn.benchmark = True
    gpu = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or 'cpu'
    gib = round(torch.cuda.get_device_properties(dev).total_memory / 2 ** 30) if dev.type == 'cuda' else '-'
    R['env'] = dict(date=str(date.today()), gpu=gpu, gpu_gib=gib, cpus=os.cpu_count(), torch=torch.__version__,
                    bf16=bf16_native(dev), profile=args.profile, size=cfg.size, python=platform.python_version())
    print(R['env'], flush=True)
    alone = bool(args.sdm_steps and args.seg_steps)      # the study alone, at the step counts given
    parts = [] if alone else [('sdm_step', lambda: sdm_steps(cfg.sdm, dev, (cfg.sdm.batch_size, 4 * cfg.sdm.batch_size))),
             ('sampling', lambda: sampling(cfg.sdm, dev, cfg.sampler, cfg.synth_steps, sorted({16, cfg.synth_batch}))),
             ('seg_step', lambda: seg_steps(cfg.seg, dev))]
    for name, fn in parts:
        try: R['parts'][name] = fn()
        except Exception as e:
            R['parts'][name + '_error'] = f'{type(e).__name__}: {e}'[:300]
            print(f'{name} failed: {e}', flush=True)
        write_report(rep)
    if alone or ('sdm_step' in R['parts'] and 'seg_step' in R['parts']): study(args, dev, rep)
    write_report(rep)
    print(rep.read_text())


if __name__ == '__main__':
    main()

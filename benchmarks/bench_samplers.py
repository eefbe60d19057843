#!/usr/bin/env python
"""Image quality against the number of sampling steps, on the trained cpu-profile SDMs of a finished run (default
runs/demo, made by `make demo`). Writes benchmarks/samplers.md.

Target (issue 5): DPM-Solver++ at 20 steps within noise of 1000-step ancestral DDPM on the downstream Dice, i.e. 50x
fewer network evaluations. For every sampler setting the same label maps (a seeded subset of the run's augmented
train and val maps, both views, ED and ES) are drawn by the run's SDMs, and scored twice:

- downstream Dice: a segmenter (the run's segmentation settings and seed) trained on those synthetic images alone,
  tested on the real test split, mean Dice over the three structures per test image;
- adherence Dice: the run's "All real frames" segmenter applied to the synthetic images, against the label maps that
  made them (how well the image shows the anatomy it was asked for).

Noise: the reference is run twice, with different sampling seeds and segmenter seeds; the difference between those
two runs is the noise floor of the downstream Dice. Each setting's difference from the reference comes with a 95 %
bootstrap interval over the paired test images. Samples and segmenters are kept under WORK (default
RUN/bench_samplers), so an interrupted benchmark resumes where it stopped.
"""
import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from echo_from_noise.dataset import read_manifest
from echo_from_noise.evaluate import frame_metrics
from echo_from_noise.sdm import pick_device, synthesize
from echo_from_noise.segment import SegConfig, load_frames, load_segmenter, segment, train_segmenter
from echo_from_noise.study import real_dataset, subset_dataset

# (name, sampler, steps, sampling seed, segmenter seed, bf16)
SETTINGS = [
    ('ddpm-1000', 'ddpm', 1000, 0, 0, True),
    ('ddpm-1000 (seeds 1)', 'ddpm', 1000, 1, 1, True),
    ('ddpm-50', 'ddpm', 50, 0, 0, True),
    ('ddpm-30', 'ddpm', 30, 0, 0, True),
    ('ddim-50', 'ddim', 50, 0, 0, True),
    ('ddim-20', 'ddim', 20, 0, 0, True),
    ('dpm++-25', 'dpm++', 25, 0, 0, True),
    ('dpm++-20', 'dpm++', 20, 0, 0, True),
    ('dpm++-20 fp32', 'dpm++', 20, 0, 0, False),
    ('dpm++-10', 'dpm++', 10, 0, 0, True),
]
REFERENCE, REFERENCE_2 = SETTINGS[0][0], SETTINGS[1][0]


def slug(name): return name.replace(' ', '_').replace('(', '').replace(')', '').replace('+', 'p')


def pick_maps(aug: Path, n_train: int, n_val: int, seed: int = 0) -> pd.DataFrame:
    "A seeded subset of the augmented maps: n_train from the train split, n_val from val, views and phases mixed."
    df = read_manifest(aug)
    rng = np.random.default_rng(seed)
    parts = []
    for split, n in (('train', n_train), ('val', n_val)):
        rows = df[df['split'] == split]
        if len(rows) < n: sys.exit(f'{aug}: only {len(rows)} {split} label maps, {n} asked for')
        parts.append(rows.iloc[np.sort(rng.choice(len(rows), n, replace=False))])
    return pd.concat(parts)


def bootstrap_ci(diff: np.ndarray, n: int = 10000, seed: int = 0) -> tuple:
    "95 % interval of the mean of paired differences, resampling the pairs."
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (n, len(diff)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--run', default='runs/demo', help='a finished cpu-profile run (make demo)')
    ap.add_argument('--work', default=None, help='where samples and segmenters are kept (default RUN/bench_samplers)')
    ap.add_argument('--train-maps', type=int, default=64)
    ap.add_argument('--val-maps', type=int, default=16)
    a = ap.parse_args()
    run = Path(a.run)
    work = Path(a.work) if a.work else run / 'bench_samplers'
    need = [run / 'config.yaml', run / 'data' / 'augmented' / 'manifest.csv', run / 'checkpoints' / 'seg_all_real_frames.pt']
    missing = [str(p) for p in need if not p.exists()] + [str(run / 'checkpoints') + '/sdm_*.pt'] * (
        not list((run / 'checkpoints').glob('sdm_*.pt')))
    if missing: sys.exit(f'{run}: not a finished run (missing {", ".join(missing)}); run `make demo` first')
    cfg = yaml.safe_load((run / 'config.yaml').read_text())['study']
    real = real_dataset(run, cfg)
    dev = pick_device(cfg['device'])
    work.mkdir(parents=True, exist_ok=True)
    labels = work / 'labels'
    subset_dataset(run / 'data' / 'augmented', pick_maps(run / 'data' / 'augmented', a.train_maps, a.val_maps), labels)
    judge, _, judge_norm = load_segmenter(run / 'checkpoints' / 'seg_all_real_frames.pt', dev)
    test_imgs, test_targets, test_meta = load_frames(real, 'test')
    results, per_test = [], {}
    for name, sampler, steps, seed, seg_seed, bf16 in SETTINGS:
        out = work / slug(name)
        timing = work / f'{slug(name)}.json'
        if not (out / 'manifest.csv').exists():
            t0 = time.perf_counter()
            synthesize(run, labels, out, sampler, steps, seed=seed, device=cfg['device'], bf16=bf16)
            timing.write_text(json.dumps(dict(seconds=time.perf_counter() - t0, images=len(read_manifest(out)))))
        t = json.loads(timing.read_text())
        # adherence: the real-image segmenter on the synthetic images, against their own label maps
        adh = []
        for split in ('train', 'val'):
            imgs, targets, _ = load_frames(out, split)
            preds = segment(judge, judge_norm, imgs, dev)
            adh += [frame_metrics(p, g)['dice_mean'] for p, g in zip(preds, targets)]
        # downstream: a segmenter trained on these synthetic images alone, tested on real test images
        seg_cfg = SegConfig(**dict(dict(size=cfg['size'], device=cfg['device']), **cfg['seg'], seed=seg_seed))
        train, val = load_frames(out, 'train'), load_frames(out, 'val')
        train_segmenter(train[:2], val[:2], work / f'seg_{slug(name)}.pt', seg_cfg, name, progress=True)
        model, _, norm = load_segmenter(work / f'seg_{slug(name)}.pt', dev)
        preds = segment(model, norm, test_imgs, dev)
        per_test[name] = np.array([frame_metrics(p, g)['dice_mean'] for p, g in zip(preds, test_targets)]) * 100
        results.append(dict(name=name, sampler=sampler, steps=steps, bf16=bf16, s_per_image=t['seconds'] / t['images'],
                            adherence=np.mean(adh) * 100, adherence_sd=np.std(adh) * 100,
                            downstream=per_test[name].mean()))
        print(f'{name}: adherence {results[-1]["adherence"]:.1f}, downstream {results[-1]["downstream"]:.1f}, '
              f'{results[-1]["s_per_image"]:.2f} s/image', flush=True)
    ref = per_test[REFERENCE]
    floor = abs(per_test[REFERENCE_2].mean() - ref.mean())
    rows = []
    for r in results:
        d = per_test[r['name']] - ref
        lo, hi = bootstrap_ci(d) if r['name'] != REFERENCE else (0.0, 0.0)
        within = r['name'] == REFERENCE or abs(d.mean()) <= floor or lo <= 0 <= hi
        rows.append((r, d.mean(), lo, hi, within))
    pd.DataFrame([dict(**r, delta=dm, ci_lo=lo, ci_hi=hi, within_noise=w) for r, dm, lo, hi, w in rows]).to_csv(
        work / 'samplers.csv', index=False)
    dpm = next(x for x in rows if x[0]['name'] == 'dpm++-20')
    lines = [
        '# Sampler benchmark: image quality against the number of sampling steps',
        '',
        f'Measured {date.today()} on {platform.machine()} with {os.cpu_count()} CPU cores, torch {torch.__version__}, '
        f'on the SDMs of `{run}` (profile "{cfg["profile"]}", {cfg["size"]} px, phantom data). '
        f'{a.train_maps} train + {a.val_maps} val label maps of the run\'s augmented set, the same for every setting; '
        f'{len(ref)} real test images. `python benchmarks/bench_samplers.py --run {run}` reproduces it.',
        '',
        '- downstream Dice: a segmenter trained on the setting\'s synthetic images only (the run\'s segmentation '
        'settings), mean Dice (%) over LV endo, LV epi and LA on the real test images;',
        '- delta: downstream Dice minus the 1000-step DDPM reference, 95 % bootstrap interval over the paired test images;',
        '- adherence Dice: the run\'s real-image segmenter on the synthetic images against their own label maps (mean +- sd);',
        f'- noise floor: the two reference runs (different sampling and segmenter seeds) differ by {floor:.1f} points; a '
        'setting is "within noise" when its delta is no larger or its interval holds 0.',
        '',
        '| setting | network evaluations | s/image (batch 16) | adherence Dice | downstream Dice | delta [95 % CI] | within noise |',
        '|---|---|---|---|---|---|---|',
        *[f'| {r["name"]} | {r["steps"]} | {r["s_per_image"]:.2f} | '
          f'{r["adherence"]:.1f} +- {r["adherence_sd"]:.1f} | {r["downstream"]:.1f} | '
          f'{dm:+.1f} [{lo:+.1f}, {hi:+.1f}] | {"reference" if r["name"] == REFERENCE else ("yes" if w else "no")} |'
          for r, dm, lo, hi, w in rows],
        '',
        f'Target: DPM-Solver++ at 20 steps within noise of the reference: '
        f'{"met" if dpm[4] else "NOT met"} (delta {dpm[1]:+.1f} points, 95 % interval [{dpm[2]:+.1f}, {dpm[3]:+.1f}], '
        f'noise floor {floor:.1f}). All settings sample in bf16 autocast except "fp32".',
    ]
    out = Path(__file__).with_name('samplers.md')
    out.write_text('\n'.join(lines) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

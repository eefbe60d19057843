#!/usr/bin/env python
"""Image quality against the number of sampling steps, on the trained cpu-profile SDMs of a finished run (default
runs/demo, made by `make demo`). Writes experiments/samplers.md.

Target (issues 5 and 14): the study's cpu sampler setting (STUDY_PROFILES['cpu']) within noise of 1000-step
ancestral DDPM on the downstream Dice, with the run's objective. For every sampler setting the same label maps (a seeded subset of the run's augmented
train and val maps, both views, ED and ES) are drawn by the run's SDMs, and scored twice:

- downstream Dice: a segmenter (the run's segmentation settings) trained on those synthetic images alone,
  tested on the real test split, mean Dice over the three structures per test image;
- adherence Dice: the run's "All real frames" segmenter applied to the synthetic images, against the label maps that
  made them (how well the image shows the anatomy it was asked for).

Noise: some settings are run with several seeds (sampling seed = segmenter seed); their scatter, pooled, is the
run-to-run noise of the downstream Dice, and a setting is within noise when its mean is within 1.96 standard errors of
the reference mean. Every setting's first run uses seed 0. Samples and segmenters are kept
under WORK (default RUN/bench_samplers), so an interrupted benchmark resumes where it stopped.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from dataclasses import replace

from benchmarks.common import measured_on, write_report
from echo_from_noise.dataset import load_frame, read_manifest
from echo_from_noise.diffusion import bf16_native
from echo_from_noise.evaluate import frame_metrics
from echo_from_noise.distributed import pick_device
from echo_from_noise.training import load_checkpoint
from echo_from_noise.sdm import SDM_KIND, saved_config
from echo_from_noise.synthesis import synthesize
from echo_from_noise.segment import load_frames, load_segmenter, segment, train_segmenter
from echo_from_noise.config import STUDY_PROFILES, saved_study
from echo_from_noise.dataset import subset_dataset
from echo_from_noise.rundir import Run

# (name, sampler, steps, bf16, seeds): each seed is one run (sampling seed = segmenter seed)
SETTINGS = [
    ('ddpm-1000', 'ddpm', 1000, True, (0,)),
    ('ddpm-50', 'ddpm', 50, True, (0,)),
    ('ddim-20', 'ddim', 20, True, (0,)),
    ('dpm++-20', 'dpm++', 20, True, (0,)),
    ('dpm++-15', 'dpm++', 15, True, (0, 1, 2)),       # the cpu study profile's setting
    ('dpm++-10', 'dpm++', 10, True, (0,)),
    ('dpm++sde-20', 'dpm++sde', 20, True, (0, 1)),
]
STUDY_SETTING = f"{STUDY_PROFILES['cpu']['sampler']}-{STUDY_PROFILES['cpu']['synth_steps']}"
REFERENCE = SETTINGS[0][0]


def slug(name, seed=0):
    base = name.replace(' ', '_').replace('(', '').replace(')', '').replace('+', 'p')
    return base if seed == 0 else f'{base}_seeds_{seed}'


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


def appearance(images, labels) -> tuple:
    "Mean grey level inside the sector and myocardium-minus-cavity contrast, averaged over images (0-255)."
    im = images.astype(float)
    sector = [i[l > 0].mean() for i, l in zip(im, labels)]
    contrast = [i[l == 2].mean() - i[l == 1].mean() for i, l in zip(im, labels) if (l == 1).any() and (l == 2).any()]
    return float(np.mean(sector)), float(np.mean(contrast))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--run', default='runs/demo', help='a finished cpu-profile run (make demo)')
    ap.add_argument('--work', default=None, help='where samples and segmenters are kept (default RUN/bench_samplers)')
    ap.add_argument('--train-maps', type=int, default=32)
    ap.add_argument('--val-maps', type=int, default=8)
    a = ap.parse_args()
    run = Path(a.run)
    work = Path(a.work) if a.work else run / 'bench_samplers'
    need = [run / 'config.yaml', run / 'data' / 'augmented' / 'manifest.csv', run / 'checkpoints' / 'seg_all_real_frames.pt']
    missing = [str(p) for p in need if not p.exists()] + [str(run / 'checkpoints') + '/sdm_*.pt'] * (
        not list((run / 'checkpoints').glob('sdm_*.pt')))
    if missing: sys.exit(f'{run}: not a finished run (missing {", ".join(missing)}); run `make demo` first')
    raw = yaml.safe_load((run / 'config.yaml').read_text())['study']
    cfg, device = saved_study(raw), raw.get('device', 'auto')
    real = Run(run).real(cfg.data)
    dev = pick_device(device)
    work.mkdir(parents=True, exist_ok=True)
    labels = work / 'labels'
    subset_dataset(run / 'data' / 'augmented', pick_maps(run / 'data' / 'augmented', a.train_maps, a.val_maps), labels)
    counts = read_manifest(labels)['split'].value_counts()
    if (counts.get('train', 0), counts.get('val', 0)) != (a.train_maps, a.val_maps):
        sys.exit(f'{labels}: holds {counts.get("train", 0)} train + {counts.get("val", 0)} val maps from an earlier call, '
                 f'not {a.train_maps} + {a.val_maps}; pass a new --work (or those numbers) to keep results comparable')
    judge, _, judge_norm = load_segmenter(run / 'checkpoints' / 'seg_all_real_frames.pt', dev)
    test_imgs, test_targets, _ = load_frames(real, 'test')
    runs = []
    for name, sampler, steps, bf16, seeds in SETTINGS:
        for seed in seeds:
            tag = slug(name, seed)
            out, timing = work / tag, work / f'{tag}.json'
            if not (out / 'manifest.csv').exists():
                t0 = time.perf_counter()
                synthesize(run, labels, out, sampler, steps, seed=seed, device=device, bf16=bf16)
                timing.write_text(json.dumps(dict(seconds=time.perf_counter() - t0, images=len(read_manifest(out)))))
            t = json.loads(timing.read_text())
            # adherence: the real-image segmenter on the synthetic images, against their own label maps
            adh, all_imgs, all_maps = [], [], []
            for split in ('train', 'val'):
                imgs, targets, meta = load_frames(out, split)
                preds = segment(judge, judge_norm, imgs, dev)
                adh += [frame_metrics(p, g)['dice_mean'] for p, g in zip(preds, targets)]
                all_imgs.append(imgs)
                all_maps += [load_frame(out, r)[1] for _, r in meta.iterrows()]
            sector, contrast = appearance(np.concatenate(all_imgs), all_maps)
            # downstream: a segmenter trained on these synthetic images alone, tested on the real test images
            seg_cfg = replace(cfg.seg, seed=seed, device=device)
            train, val = load_frames(out, 'train'), load_frames(out, 'val')
            train_segmenter(train[:2], val[:2], work / f'seg_{tag}.pt', seg_cfg, tag, progress=True)
            model, _, norm = load_segmenter(work / f'seg_{tag}.pt', dev)
            preds = segment(model, norm, test_imgs, dev)
            down = np.mean([frame_metrics(p, g)['dice_mean'] for p, g in zip(preds, test_targets)]) * 100
            runs.append(dict(setting=name, sampler=sampler, steps=steps, bf16=bf16, seed=seed,
                             s_per_image=t['seconds'] / t['images'], adherence=np.mean(adh) * 100,
                             adherence_sd=np.std(adh) * 100, downstream=down, sector=sector, contrast=contrast))
            print(f'{tag}: adherence {runs[-1]["adherence"]:.1f}, downstream {down:.1f}, '
                  f'{runs[-1]["s_per_image"]:.2f} s/image', flush=True)
    df = pd.DataFrame(runs)
    df.to_csv(work / 'samplers.csv', index=False)
    # run-to-run noise of the downstream Dice, pooled over the settings run with several seeds
    g = df.groupby('setting', sort=False)['downstream']
    dof = int((g.count() - 1).sum())
    sigma = float(np.sqrt(((df['downstream'] - g.transform('mean')) ** 2).sum() / dof))
    ref = g.mean()[REFERENCE]
    rows = []
    for name, part in df.groupby('setting', sort=False):
        se = sigma * np.sqrt(1 / len(part) + 1 / g.count()[REFERENCE])
        delta = part['downstream'].mean() - ref
        rows.append(dict(name=name, steps=int(part['steps'].iloc[0]), n=len(part), s_img=part['s_per_image'].mean(),
                         adh=part['adherence'].mean(), adh_sd=part['adherence_sd'].mean(),
                         each=' / '.join(f'{v:.1f}' for v in part['downstream']), mean=part['downstream'].mean(),
                         delta=delta, band=1.96 * se, within=abs(delta) <= 1.96 * se, sector=part['sector'].mean(),
                         contrast=part['contrast'].mean()))
    rtr = load_frames(real, 'train')
    real_look = appearance(rtr[0], [load_frame(real, r)[1] for _, r in rtr[2].iterrows()])
    dpm = next(r for r in rows if r['name'] == STUDY_SETTING)
    sde = next(r for r in rows if r['name'] == 'dpm++sde-20')
    fastest = min((r for r in rows if r['within'] or r['name'] == REFERENCE), key=lambda r: r['steps'])
    sdm_cfg = saved_config(load_checkpoint(sorted((run / 'checkpoints').glob('sdm_*.pt'))[0], SDM_KIND)['config'])
    native = bf16_native(torch.device(dev))
    lines = [
        '# Sampler benchmark: image quality against the number of sampling steps',
        '',
        f'{measured_on()}, '
        f'on the SDMs of `{run}` (profile "{cfg.profile}", {cfg.size} px, phantom data). '
        f'{a.train_maps} train + {a.val_maps} val label maps of the run\'s augmented set, the same for every setting; '
        f'{len(test_imgs)} real test images. `python -m experiments.samplers --run {run}` reproduces it '
        '(samples and segmenters are cached under the run, so a second call only adds new settings).',
        '',
        '- downstream Dice: a segmenter trained on the setting\'s synthetic images only (the run\'s segmentation '
        'settings), mean Dice (%) over LV endo, LV epi and LA on the real test images; one value per run (seed);',
        '- adherence Dice: the run\'s real-image segmenter on the synthetic images against their own label maps '
        '(mean +- sd over the maps, averaged over runs);',
        f'- noise: runs of one setting with different seeds (sampling noise and segmenter seed) scatter with a '
        f'standard deviation of {sigma:.2f} Dice points (pooled over the settings with several runs, {dof} degrees of '
        'freedom). A setting is "within noise" of the reference when its mean differs from the reference mean by no more '
        'than 1.96 standard errors of that difference (the +- column).',
        '- grey level, contrast: mean grey level (0-255) inside the sector, and LV myocardium minus LV cavity; '
        f'the real train images: {real_look[0]:.0f} and {real_look[1]:.0f}.',
        '',
        '| setting | network evaluations | s/image (batch 16) | runs | adherence Dice | downstream Dice per run | '
        'downstream mean | minus reference | within noise | grey level | contrast |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
        *[f'| {r["name"]} | {r["steps"]} | {r["s_img"]:.2f} | {r["n"]} | {r["adh"]:.1f} +- {r["adh_sd"]:.1f} | '
          f'{r["each"]} | {r["mean"]:.1f} | {r["delta"]:+.1f} +- {r["band"]:.1f} | '
          f'{"reference" if r["name"] == REFERENCE else ("yes" if r["within"] else "no")} | {r["sector"]:.0f} | '
          f'{r["contrast"]:.0f} |' for r in rows],
        '',
        f'Target: the study\'s cpu setting ({STUDY_SETTING}) within noise of the 1000-step DDPM reference on the '
        f'downstream Dice: {"met" if dpm["within"] else "NOT met"} ({dpm["delta"]:+.1f} +- {dpm["band"]:.1f} points). '
        f'dpm++sde at 20 steps: {sde["delta"]:+.1f} +- {sde["band"]:.1f} '
        f'({"within noise" if sde["within"] else "not within noise"}). Fewest network evaluations within noise: '
        f'{fastest["name"]}. SDM objective: {sdm_cfg.objective!r}. Sampling ran '
        f'{"in bf16 autocast" if native else "in float32 (this CPU has no native bf16, so autocast stays off)"}.',
        '',
        f'Grey level across settings {min(r["sector"] for r in rows):.0f}-{max(r["sector"] for r in rows):.0f} '
        f'against {real_look[0]:.0f} real; contrast {min(r["contrast"] for r in rows):.0f}-'
        f'{max(r["contrast"] for r in rows):.0f} against {real_look[1]:.0f}.',
    ]
    out = Path(__file__).with_name('samplers.md')
    write_report(out, lines, echo=False)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

#!/usr/bin/env python
"""How strongly the synthetic training maps are deformed, against the synthetic-only segmenter's Dice on real frames.
Writes experiments/strength.md.

Question (issue 14): at equal segmenter budgets "All SDM frames" stays 1.2-1.5 Dice below "All real frames" while the
SDM's grey levels match the real ones (benchmarks/demo.md). The synthetic training maps are the real training maps
deformed at the paper's strength (1x: affine and elastic, nbs/04_augment), and the SDM follows a deformed map less
well than an undeformed one: adherence 95.1 at 0x, 90.2 at 1x (experiments/guidance.md, v SDM, 4CH). If the images
disagree with their maps by a few Dice points, the synthetic-only segmenter learns from noisy labels. Arms, on a
finished cpu-profile demo run (its real data and its SDMs, untouched):

- strength 1 (the study's maps; their synthetic set is drawn again here, so all arms are drawn the same way);
- strength 0.5 and strength 0 (the real training maps themselves, five draws each: diversity from the sampler only);
- real only: the real train and val frames, the same segmenter settings and seeds (the row to reach);
- real frames warped with their maps: each real train/val frame and its map deformed together at strength 1
  (bench_pairwarp's `warp_pair`), as many copies as the synthetic set: the strength-1 shapes without the generator,
  so images that match their maps exactly. It separates the two ways deformation can cost Dice: label noise (the SDM
  drawing a deformed map less faithfully) or the shapes themselves (deformed hearts unlike the test hearts; the
  paper's scale range 0.8-1.05 also shrinks them on average);
- strength 1 with the scale range moved to 0.875-1.125 (the paper's width, centred on 1), synthetic and real-warped:
  whether the shrinking is what costs.

For each: `augment_dataset` at that strength (same copies and seed), `synthesize` with the run's SDMs and sampler,
then the synthetic-only segmenter (the run's segmenter settings; train and val frames synthetic, as the study's row)
for segmenter seeds 0 and 1, tested on the run's real test frames; paired per test image against strength 1.
Everything is kept under WORK (default runs/bench_strength): an interrupted benchmark resumes.
"""
import argparse
import os
import platform
from datetime import date
from pathlib import Path

import numpy as np
import yaml

from echo_from_noise.augment import AugmentConfig, augment_dataset
from echo_from_noise.config import saved_study
from echo_from_noise.segment import load_frames
from echo_from_noise.synthesis import synthesize

from benchmarks.common import paired, shown, splits, trained_dice, write_report
from experiments.pairwarp import warped_dataset

STRENGTHS = (1.0, 0.5, 0.0)
SYMMETRIC = (0.875, 1.125)   # the paper's scale range's width, centred on 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default='runs/demo', help='a finished cpu-profile study run (default: %(default)s)')
    ap.add_argument('--work', default='runs/bench_strength')
    ap.add_argument('--seeds', default='0,1')
    args = ap.parse_args()
    run, work = Path(args.run), Path(args.work)
    study = saved_study(yaml.safe_load((run / 'config.yaml').read_text())['study'])
    real = run / 'data' / 'real'
    test = load_frames(real, 'test')
    seeds = [int(s) for s in args.seeds.split(',')]
    dice, rows = {}, []

    def arm(key, label: str, slug: str, parts):
        "The segmenter of every seed on `parts` (kept under WORK/seg_SLUG_seedN), recorded as `key` and table row `label`."
        for seed in seeds:
            r = trained_dice(work / f'seg_{slug}_seed{seed}', *parts, study.seg, seed, label, test)
            dice[key, seed] = np.array(r['dice'])
            rows.append(dict(strength=label, seed=seed, mean=float(np.mean(r['dice'])), train=r['train'], epochs=r['epochs']))

    def drawn(tag: str, strength: float, family: AugmentConfig = AugmentConfig()) -> tuple:
        "The run's SDM images of its real maps deformed at `strength` of `family` (kept under WORK): their splits."
        maps, syn = work / f'maps_{tag}', work / f'synthetic_{tag}'
        if not (maps / 'manifest.csv').exists():
            augment_dataset(real, maps, study.copies, study.seed, strength, family, progress=False)
        if not (syn / 'manifest.csv').exists():
            synthesize(run, maps, syn, study.sampler, study.synth_steps, study.guidance, study.synth_batch, seed=study.seed,
                       device='cpu', progress=False)
        return splits(syn)

    def warped(tag: str, family: AugmentConfig = AugmentConfig()) -> tuple:
        "The real train/val frames warped together with their maps at strength 1 of `family`, as many as the synthetic set."
        return splits(warped_dataset(real, work / f'real_warped_{tag}', study.copies, 1.0, study.seed, views=('2CH', '4CH'),
                                     splits=('train', 'val'), originals=False, family=family))

    for k in STRENGTHS:
        arm(k, format(k, 'g'), format(k, 'g'), drawn(format(k, 'g'), k))
    arm('real', 'real only', 'real', splits(real))     # the real-only segmenter of the same data and seeds: the row to reach
    # the same shapes as the strength-1 synthetic maps, but images that match their maps exactly (no generator between)
    arm('real warped', 'real frames warped with their maps, 1', 'realwarped', warped('1'))
    # the paper's scale range (0.8, 1.05) shrinks the hearts by 7.5 % on average; the same width centred on 1
    sym = AugmentConfig(scale=SYMMETRIC)
    arm('1, symmetric scale', '1, symmetric scale', '1_symmetric-scale', drawn('1_symmetric', 1.0, sym))
    arm('real frames warped with their maps, 1, symmetric scale', 'real frames warped with their maps, 1, symmetric scale',
        'real-frames-warped-with-their-maps_1_symmetric-scale', warped('1_symmetric', sym))
    patients = np.asarray(test[2]['patient'])
    lines = [f'# Deformation strength of the synthetic training maps ({date.today()}, `experiments/strength.py --run {run}`)',
             '', f'{platform.machine()}, {os.cpu_count()} CPU cores. ' + __doc__.split('\n\n', 1)[1].rsplit('\n\n', 1)[0], '',
             f'Test: the {len(test[0])} real test frames of {run}; mean Dice over LV_endo, LV_epi, LA (%). The run\'s SDMs, '
             f'sampler {study.sampler} {study.synth_steps} steps; segmenters {study.seg.min_steps} steps.', '',
             '| strength | seed | synthetic train frames | epochs | mean Dice (%) |', '|---|---|---|---|---|']
    lines += [f"| {r['strength']} | {r['seed']} | {r['train']} | {r['epochs']} | {r['mean']:.2f} |" for r in rows]
    lines += ['', '## Paired against strength 1 (same seed, same test image; SE over test patients)', '',
              '| strength | seed | difference (Dice points) |', '|---|---|---|']
    lines += [f'| {k:g} | {seed} | {shown(paired(np.subtract(dice[k, seed], dice[1.0, seed]), patients))} |' for k in STRENGTHS[1:] for seed in seeds]
    lines += ['', '## Synthetic only minus real only (same seed, same test image; SE over test patients)', '',
              '| strength | seed | difference (Dice points) |', '|---|---|---|']
    lines += [f'| {k if isinstance(k, str) else format(k, "g")} | {seed} | {shown(paired(np.subtract(dice[k, seed], dice["real", seed]), patients))} |'
              for k in STRENGTHS + ('real warped', '1, symmetric scale', 'real frames warped with their maps, 1, symmetric scale')
              for seed in seeds]
    write_report(Path(__file__).with_name('strength.md'), lines)


if __name__ == '__main__':
    main()

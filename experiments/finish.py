#!/usr/bin/env python
"""The finishing phase (`finish`): segmenters with synthetic frames end on undeformed anatomy. Writes experiments/finish.md.

Question (issue 14): at equal optimiser steps the balanced Real + SDM row stayed 0.4-0.7 Dice below All real on the
phantom, and All SDM 1.2-1.3 below (benchmarks/demo.md). experiments/strength.md traced most of the synthetic-only gap
to the deformed shapes themselves: the test hearts are undeformed anatomy. The study's answer is a finishing phase:
the last quarter of the steps on undeformed anatomy, at a decaying learning rate (stable, then cosine decay). Arms,
each on a finished cpu-profile study run made before the finishing phase (its real data, its SDMs, its deformed
synthetic set, its segmenter settings and seed), every one with the same number of optimiser steps as a Table 1 row:

- Real + SDM, real finish: the balanced mix for 75 % of the steps, the real train frames alone for the last 25 %;
- All SDM, epoch chosen on undeformed maps: the run's synthetic set, the epoch chosen on the SDM's images of the real
  val maps instead of the deformed ones (no finishing phase: what the choice of epoch alone does);
- All SDM, undeformed finish: the same, and the last 25 % of the steps on the SDM's images of the real train maps
  (the study's All SDM row with `finish=0.25`).

The SDM's images of the undeformed maps are drawn here as the study draws them (`augment_dataset(strength=0,
tag='map')`, the run's sampler and seed). Paired per test image against the run's own All real, Real + SDM and All
SDM segmenters (made without a finishing phase); standard error over the test patients.

Two checks on the SDM's images of the undeformed maps. Copying: does the SDM reproduce the real image of a training
map more closely than that of a test map it never saw (pixel correlation inside the sector, raw and after removing
each structure's mean)? Realism: the classifier two-sample AUC of the run's deformed synthetic set and of as many
images of the undeformed maps (five draws per map), with the same ten classifier seeds, paired per seed.

Everything is kept under WORK (default runs/bench_finish), so an interrupted benchmark resumes.
"""
import argparse
import os
import platform
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from benchmarks.common import paired, shown, write_report
from echo_from_noise.augment import augment_dataset
from echo_from_noise.base import SPLITS
from echo_from_noise.config import saved_study
from echo_from_noise.dataset import load_frame, load_split, read_manifest
from echo_from_noise.evaluate import frame_metrics
from echo_from_noise.realism import classifier_auc
from echo_from_noise.segment import load_frames, load_segmenter, segment, train_segmenter
from echo_from_noise.dataset import subset_dataset
from echo_from_noise.rundir import Run
from echo_from_noise.segment import mixed_frames
from echo_from_noise.synthesis import synthesize


def drawn(run: Path, study, maps_of: Path, out: Path, copies: int = 1, strength: float = 0.0, tag: str = 'map') -> Path:
    "The run's SDM images of `maps_of`'s train/val maps (undeformed at strength 0), drawn as the study draws them."
    maps = out.with_name(out.name + '_labels')
    if not (maps / 'manifest.csv').exists():
        augment_dataset(maps_of, maps, copies, study.seed, strength, progress=False, tag=tag)
    if not (out / 'manifest.csv').exists():
        synthesize(run, maps, out, study.sampler, study.synth_steps, study.guidance, study.synth_batch, seed=study.seed,
                   device='cpu', progress=False)
    return out


def copying(run: Path, study, real: Path, train_maps: Path, work: Path) -> dict:
    "Mean correlation of SDM image and real image of the same map: train maps against test maps the SDM never saw."
    r = read_manifest(real)
    test_maps = work / f'{run.name}_testmaps'
    subset_dataset(real, r[r['split'] == 'test'], test_maps)
    test_syn = work / f'{run.name}_syn_testmaps'
    if not (test_syn / 'manifest.csv').exists():
        synthesize(run, test_maps, test_syn, study.sampler, study.synth_steps, study.guidance, study.synth_batch,
                   seed=study.seed, device='cpu', progress=False)
    by_id = r.set_index('id', drop=False)
    def corr(syn: Path, key: str) -> tuple:
        raw, resid = [], []
        for _, row in read_manifest(syn).iterrows():
            s_img, lab = load_frame(syn, row)
            r_img, _ = load_frame(real, by_id.loc[row[key]])
            a, b, m = s_img.astype(float), r_img.astype(float), lab > 0
            raw.append(np.corrcoef(a[m], b[m])[0, 1])
            for c in np.unique(lab):
                a[lab == c] -= a[lab == c].mean(); b[lab == c] -= b[lab == c].mean()
            resid.append(np.corrcoef(a[m], b[m])[0, 1])
        return np.mean(raw), np.mean(resid), len(raw)
    return dict(train=corr(train_maps, 'label_source'), test=corr(test_syn, 'id'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('runs', nargs='+', help='finished cpu-profile study runs made without a finishing phase')
    ap.add_argument('--work', default='runs/bench_finish')
    ap.add_argument('--frac', type=float, default=0.25, help='finishing share of the steps (default: %(default)s)')
    ap.add_argument('--auc-seeds', type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows, checks = [], []
    for run in map(Path, args.runs):
        study = saved_study(yaml.safe_load((run / 'config.yaml').read_text())['study'])
        real, syn = Run(run).real(study.data), Run(run).synthetic()
        und = drawn(run, study, real, work / f'{run.name}_synthetic_maps')
        parts = {s: (load_frames(d, 'train'), load_frames(d, 'val')) for s, d in (('real', real), ('synthetic', syn))}
        utr, uva = load_frames(und, 'train'), load_frames(und, 'val')
        test = load_frames(real, 'test')
        per = pd.read_csv(run / 'metrics' / 'per_image.csv').assign(dice=lambda d: 100 * d['dice_mean'])
        ref = per.pivot_table(index='id', columns='row', values='dice')
        mixed = mixed_frames(parts, 'balanced')
        arms = [('Real + SDM, real finish', 'Real + SDM frames', mixed[0], mixed[1], parts['real'][0]),
                ('All SDM, epoch chosen on undeformed maps', 'All SDM frames', parts['synthetic'][0], uva, None),
                ('All SDM, undeformed finish', 'All SDM frames', parts['synthetic'][0], uva, utr)]
        for arm, own_row, train, val, finish in arms:
            path = work / f'{run.name}_{arm.replace(", ", "_").replace(" ", "-").replace("+", "plus")}.pt'
            s = train_segmenter(train[:2], val[:2], path, study.seg, arm, progress=True,
                                finish=None if finish is None else finish[:2], finish_frac=args.frac)
            model, _, norm = load_segmenter(path)
            d = pd.DataFrame(dict(id=test[2]['id'].values, patient=test[2]['patient'].values,
                                  arm=[100 * frame_metrics(p, t)['dice_mean']
                                       for p, t in zip(segment(model, norm, test[0]), test[1])])).join(ref, on='id')
            rows.append(dict(run=run, seed=study.seed, arm=arm, own=own_row, steps=study.seg.min_steps,
                             epochs=s['epochs'], main=s.get('main_epochs', s['epochs']), best=s['best_epoch'],
                             dice=d['arm'].mean(), real=d['All real frames'].mean(), own_dice=d[own_row].mean(),
                             vs_real=shown(paired(d['arm'] - d['All real frames'], d['patient'])),
                             vs_own=shown(paired(d['arm'] - d[own_row], d['patient']))))
        c = copying(run, study, real, und, work)
        u5 = drawn(run, study, real, work / f'{run.name}_synthetic_maps5', copies=study.copies)
        ri, _, rr = load_split(real, list(SPLITS))
        aucs = {}
        for name, d in (('deformed', syn), ('undeformed', u5)):
            si, _, sr = load_split(d, list(SPLITS))
            aucs[name] = np.array([classifier_auc(ri, si, rr['patient'], sr['patient'], seed=study.seed + 10 * k,
                                                  progress=False)['auc'] for k in range(args.auc_seeds)])
        diff = aucs['deformed'] - aucs['undeformed']
        checks.append(dict(run=run, seed=study.seed, copy=c, auc=aucs, diff=(diff.mean(), diff.std(ddof=1) / np.sqrt(len(diff))),
                           frames=(len(ri), len(load_split(syn, list(SPLITS))[0]))))
    doc = __doc__.split('\n\n', 1)[1].rsplit('\n\n', 1)[0]
    lines = [f'# The finishing phase: ending on undeformed anatomy ({date.today()}, `experiments/finish.py '
             f'{" ".join(map(str, args.runs))}`)', '', f'{platform.machine()}, {os.cpu_count()} CPU cores, one thread per '
             f'segmenter. {doc}', '',
             '| run | seed | arm | optimiser steps | epochs (main + finish) | best epoch | All real | the run\'s own row | arm | '
             'arm - All real | arm - own row |', '|---|---|---|---|---|---|---|---|---|---|---|']
    lines += [f"| {r['run']} | {r['seed']} | {r['arm']} | {r['steps']} | {r['main']} + {r['epochs'] - r['main']} | "
              f"{r['best']} | {r['real']:.2f} | {r['own']} {r['own_dice']:.2f} | {r['dice']:.2f} | {r['vs_real']} | "
              f"{r['vs_own']} |" for r in rows]
    lines += ['', '## Does the SDM copy the real images of its training maps?', '',
              '| run | maps | images | correlation with the real image | after removing each structure\'s mean |',
              '|---|---|---|---|---|']
    for c in checks:
        for k, label in (('train', 'train/val maps (seen in training)'), ('test', 'test maps (never seen)')):
            raw, resid, n = c['copy'][k]
            lines.append(f"| {c['run']} | {label} | {n} | {raw:.3f} | {resid:.3f} |")
    lines += ['', '## Classifier AUC: deformed training set against images of the undeformed maps (same classifier seeds)', '',
              '| run | real frames | synthetic frames | deformed maps | undeformed maps | deformed - undeformed (paired by seed) |',
              '|---|---|---|---|---|---|']
    lines += [f"| {c['run']} | {c['frames'][0]} | {c['frames'][1]} | {c['auc']['deformed'].mean():.3f} ± "
              f"{c['auc']['deformed'].std(ddof=1):.3f} | {c['auc']['undeformed'].mean():.3f} ± "
              f"{c['auc']['undeformed'].std(ddof=1):.3f} | {c['diff'][0]:+.3f} ± {c['diff'][1]:.3f} |" for c in checks]
    lines += ['', f'AUC: mean ± sd over {args.auc_seeds} classifier seeds; the difference: mean ± standard error.']
    write_report(Path(__file__).with_name('finish.md'), lines)


if __name__ == '__main__':
    main()

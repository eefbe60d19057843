#!/usr/bin/env python
"""Real + SDM with a real-only finish (`mix='curriculum'`), against the same run's All real and balanced Real + SDM rows.
Writes benchmarks/curriculum.md.

Question (issue 14): at equal optimiser steps the balanced Real + SDM row stays 0.4-0.7 Dice below All real on the
phantom (benchmarks/demo.md, benchmarks/mix.md). The usual way to use plentiful synthetic data with some real data is
transfer: train on the large mixed set, then finish on the target domain's own frames, so that the weights the
segmenter ends with are fit to real images while the earlier steps have seen the synthetic set's variety. Arms, each
on a finished cpu-profile study run (its real data, its SDM images, its segmenter settings and seed), the same number
of optimiser steps as every Table 1 row: the balanced mix (real frames repeated to as many as the synthetic ones) for
the first 75 % or 50 % of the steps, then the real train frames alone (`train_segmenter(finish=..., finish_frac=...)`).
The epoch is chosen on the real val frames, as for the balanced row. Paired per test image against the run's own
All real and Real + SDM (balanced) segmenters; standard error over the test patients.

Each segmenter is kept under WORK (default runs/bench_curriculum), so an interrupted benchmark resumes.
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

from echo_from_noise.config import saved_study
from echo_from_noise.evaluate import frame_metrics
from echo_from_noise.segment import load_frames, load_segmenter, segment, train_segmenter
from echo_from_noise.study import mixed_frames


def paired(d: pd.DataFrame, a: str, b: str) -> str:
    diff = d[a] - d[b]
    per = diff.groupby(d['patient']).mean()
    return f'{diff.mean():+.2f} ± {per.std(ddof=1) / np.sqrt(len(per)):.2f}'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('runs', nargs='+', help='finished cpu-profile study runs (e.g. two seeds of make demo)')
    ap.add_argument('--work', default='runs/bench_curriculum')
    ap.add_argument('--fracs', default='0.25,0.5', help='finishing fractions of the steps (default: %(default)s)')
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows, work = [], Path(args.work)
    for run in map(Path, args.runs):
        cfg = saved_study(yaml.safe_load((run / 'config.yaml').read_text())['study'])
        real, syn = run / 'data' / 'real', run / 'synthetic'
        parts = {s: (load_frames(d, 'train'), load_frames(d, 'val')) for s, d in (('real', real), ('synthetic', syn))}
        train, val = mixed_frames(parts, 'balanced')
        test = load_frames(real, 'test')
        per = pd.read_csv(run / 'metrics' / 'per_image.csv').assign(dice=lambda d: 100 * d['dice_mean'])
        ref = per.pivot_table(index='id', columns='row', values='dice')
        for frac in map(float, args.fracs.split(',')):
            path = work / f'{run.name}_finish{frac}.pt'
            s = train_segmenter(train[:2], val[:2], path, cfg.seg, f'curriculum {frac}', progress=True,
                                finish=parts['real'][0][:2], finish_frac=frac)
            model, _, norm = load_segmenter(path)
            d = pd.DataFrame(dict(id=test[2]['id'].values, patient=test[2]['patient'].values,
                                  curriculum=[100 * frame_metrics(p, t)['dice_mean']
                                              for p, t in zip(segment(model, norm, test[0]), test[1])])).join(ref, on='id')
            rows.append(dict(run=run, seed=cfg.seed, frac=frac, steps=cfg.seg.min_steps, main=s['main_epochs'],
                             epochs=s['epochs'], best=s['best_epoch'], dice=d['curriculum'].mean(),
                             real=d['All real frames'].mean(), balanced=d['Real + SDM frames'].mean(),
                             vs_real=paired(d, 'curriculum', 'All real frames'),
                             vs_balanced=paired(d, 'curriculum', 'Real + SDM frames')))
    doc = __doc__.split('\n\n', 1)[1].rsplit('\n\n', 1)[0]
    lines = [f'# Real + SDM with a real-only finish ({date.today()}, `benchmarks/bench_curriculum.py '
             f'{" ".join(map(str, args.runs))}`)', '', f'{platform.machine()}, {os.cpu_count()} CPU cores, one thread per '
             f'segmenter. {doc}', '',
             '| run | seed | real-only finish | optimiser steps | epochs (mixed + real) | best epoch | All real | '
             'Real + SDM balanced | Real + SDM curriculum | curriculum - All real | curriculum - balanced |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    lines += [f"| {r['run']} | {r['seed']} | {r['frac']:.0%} | {r['steps']} | {r['main']} + {r['epochs'] - r['main']} | "
              f"{r['best']} | {r['real']:.2f} | {r['balanced']:.2f} | {r['dice']:.2f} | {r['vs_real']} | {r['vs_balanced']} |"
              for r in rows]
    out = Path(__file__).with_name('curriculum.md')
    out.write_text('\n'.join(lines) + '\n')
    print(out.read_text())


if __name__ == '__main__':
    main()

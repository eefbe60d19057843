#!/usr/bin/env python
"""Anatomical adherence of the generators on identical maps: the study's SDM (v objective), the CycleGAN baseline, and
the paper-objective SDM against a v SDM trained alike. Writes experiments/adherence_generators.md.

Question (issue 14): is the default SDM's adherence at 1x and 2x deformation above the paper objective's and above the
CycleGAN's? Inputs, all on the same built-in phantom (cpu profile, seed 0, 16 test patients):
- RUN (default runs/demo_cg): a finished `efn paper --profile cpu --with-cyclegan` run; its SDMs, its CycleGANs and its
  "All real frames" segmenter, the judge of every image here;
- BENCH (default runs/bench_objective): `experiments/objective.py`'s 4CH SDMs `paper-1200` and `v-1200` (same data, budget,
  seed and sampler; ED frames only, so on ES maps both draw end-diastolic anatomy alike).
Every generator draws the same deformed 4CH test maps (the adherence study's deformations at 0-3x the paper's ranges,
one draw per map); the judge segments them; Dice against the map each image was drawn from. Differences are paired per
map; their standard error is over the 16 test patients (the maps of one patient are not independent).
"""
import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

from benchmarks.common import measured_on, paired, write_report
from echo_from_noise.adherence import adherence_study, run_generators, summarize_adherence
from echo_from_noise.config import REAL_ROW, saved_study
from echo_from_noise.rundir import Run
from echo_from_noise.distributed import pick_device
from echo_from_noise.segment import load_segmenter

OUT = Path(__file__).parent / 'adherence_generators.md'


def paired_by_strength(per: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    "Per strength: generator a minus b in Dice points, paired per map (`common.paired`: SE over patients, wins)."
    p = per.pivot_table(index=['id', 'patient', 'strength'], columns='generator', values='dice_mean').reset_index()
    rows = [dict(strength=k, **paired((g[a] - g[b]) * 100, g['patient'])) for k, g in p.groupby('strength')]
    return pd.DataFrame(rows).rename(columns=dict(mean='diff'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default='runs/demo_cg')
    ap.add_argument('--bench', default='runs/bench_objective')
    ap.add_argument('--view', default='4CH')
    a = ap.parse_args()
    run, bench = Path(a.run), Path(a.bench)
    need = [run / 'checkpoints' / f'{k}_{a.view}.pt' for k in ('sdm', 'cyclegan')] + \
           [Run(run).segmenter(REAL_ROW)] + \
           [bench / n / 'checkpoints' / f'sdm_{a.view}.pt' for n in ('paper-1200', 'v-1200')]
    missing = [str(p) for p in need if not p.exists()]
    if missing: sys.exit(f'missing {", ".join(missing)}: run `efn paper --profile cpu --with-cyclegan --out {run}` '
                         'and experiments/objective.py first')
    cfg = saved_study(yaml.safe_load((run / 'config.yaml').read_text())['study'])
    dev = pick_device('auto')
    model, _, norm = load_segmenter(Run(run).segmenter(REAL_ROW), dev)
    study = run_generators(run, cfg.sampler, cfg.synth_steps, dev)
    gens = {'SDM (study: v, ED+ES)': study['SDM'], 'CycleGAN': study['CycleGAN'],
            'SDM v-1200 (ED)': run_generators(bench / 'v-1200', cfg.sampler, cfg.synth_steps, dev)['SDM'],
            'SDM paper-1200 (ED)': run_generators(bench / 'paper-1200', cfg.sampler, cfg.synth_steps, dev)['SDM']}
    per, _ = adherence_study(Run(run).real(cfg.data), gens, (model, norm, dev), seed=cfg.seed, views=[a.view])
    summ = summarize_adherence(per)
    lines = [f'# Adherence of the generators on identical maps ({a.view}, cpu profile, phantom)', '',
             f'{measured_on(str(dev))}; '
             f'`python -m experiments.adherence_generators --run {run} --bench {bench}` reproduces it. Sampler: '
             f'{cfg.sampler} with {cfg.synth_steps} steps for every SDM. {per["id"].nunique()} test maps of '
             f'{per["patient"].nunique()} patients, each deformed at {", ".join(f"{k:g}x" for k in sorted(per["strength"].unique()))} '
             'the paper\'s ranges (the same draw for every generator), judged by the run\'s "All real frames" '
             'segmenter. See the docstring of the script for what each generator is.', '',
             '## Mean Dice (%) ± sd over the maps', '',
             '| generator | ' + ' | '.join(f'{k:g}x' for k in sorted(per['strength'].unique())) + ' |',
             '|---|' + '---|' * per['strength'].nunique()]
    for g in gens:
        s = summ[summ['generator'] == g].sort_values('strength')
        lines.append(f'| {g} | ' + ' | '.join(f'{m:.1f} ± {d:.1f}' for m, d in zip(s['dice_mean'], s['dice_mean_sd'])) + ' |')
    lines += ['', '## Paired differences (Dice points; SE over patients; share of maps where the first is higher)', '',
              '| comparison | ' + ' | '.join(f'{k:g}x' for k in sorted(per['strength'].unique())) + ' |',
              '|---|' + '---|' * per['strength'].nunique()]
    for x, y in (('SDM (study: v, ED+ES)', 'CycleGAN'), ('SDM v-1200 (ED)', 'SDM paper-1200 (ED)')):
        p = paired_by_strength(per, x, y)
        lines.append(f'| {x} - {y} | ' + ' | '.join(f'{r.diff:+.1f} ± {r.se:.1f} ({r.wins:.0f} %)' for r in p.itertuples()) + ' |')
    per.to_csv(Path(a.bench) / 'adherence_generators.csv', index=False)
    write_report(OUT, lines)


if __name__ == '__main__':
    main()

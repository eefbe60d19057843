#!/usr/bin/env python
"""Wall time of each stage of the demo (`efn paper --profile cpu`) and its Table 1, written to benchmarks/demo.md
(the top of it: the sections of earlier runs below, from its first `## ` heading, stay).

Reads a finished run (default runs/demo, made by `make demo`); with --run-now it runs the demo first into a fresh
directory. Targets (issue 14): at most 20 minutes on 2 cores; "All SDM frames" at most 1 Dice point below "All real
frames" on the phantom test split, "Real + SDM frames" above it; the SDM's images within 10 % of real in grey level per
structure and 15 % in myocardium-cavity contrast, classifier two-sample AUC at most 0.75 (metrics/realism.csv).
The Dice targets are judged on the mean over seeds: `--seeds runs/demo_seed1 ...` adds finished runs of the same
profile with other seeds (`efn paper --profile cpu --seed 1 --out runs/demo_seed1`), each listed with its own gap.
"""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmarks.common import measured_on, write_report
from echo_from_noise.base import STAGES


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--run', default='runs/demo')
    ap.add_argument('--run-now', action='store_true', help='run the demo into a fresh directory first')
    ap.add_argument('--seeds', nargs='*', default=[], help='finished runs of the same profile with other seeds')
    a = ap.parse_args()
    run = Path(a.run)
    if a.run_now:
        shutil.rmtree(run, ignore_errors=True)
        subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'cpu', '--out', str(run)], check=True)
    if not all((run / 'stages' / f'{s}.json').exists() for s in STAGES):
        sys.exit(f'{run}: not a finished run; run `make demo` or pass --run-now')
    secs = {s: json.loads((run / 'stages' / f'{s}.json').read_text())['seconds'] for s in STAGES}
    total = sum(secs.values())
    runs = [run] + [Path(r) for r in a.seeds]
    gaps = pd.DataFrame([dice_gaps(r) for r in runs])
    gap, plus = gaps['gap'].mean(), gaps['plus'].mean()
    spread = lambda c: f' (mean of {len(gaps)} seeds, sd {gaps[c].std():.1f}; ' + ', '.join(
        f'seed {int(r["seed"])}: {r[c]:+.1f}' for _, r in gaps.iterrows()) + ')' if len(gaps) > 1 else ' (one seed)'
    met = lambda ok: 'met' if ok else 'NOT met'
    realism = []
    if (run / 'metrics' / 'realism.csv').exists():
        worst, con, auc = realism_errors(run)
        realism = [f'SDM images (seed {yaml_study(run)["seed"]}): largest grey-level error of a structure {100 * worst:.0f} % (target 10 %; {met(worst <= 0.1)}), '
                   f'myocardium-cavity contrast off by {100 * con:.0f} % (target 15 %; {met(con <= 0.15)}), classifier AUC '
                   f'{auc:.3f} (target at most 0.75; {met(auc <= 0.75)}).']
        for r in runs[1:]:
            worst, con, auc = realism_errors(r)
            realism.append(f'Seed {yaml_study(r)["seed"]}: largest grey-level error {100 * worst:.0f} %, contrast off by '
                           f'{100 * con:.0f} %, classifier AUC {auc:.3f}.')
        realism.append('')
    from echo_from_noise.diffusion import bf16_native
    from echo_from_noise.training import load_checkpoint
    from echo_from_noise.sdm import SDM_KIND, saved_config
    ck = sorted((run / 'checkpoints').glob('sdm_*.pt'))
    sdm = saved_config(load_checkpoint(ck[0], SDM_KIND)['config']) if ck else None
    cfg = json.dumps(yaml_study(run)) + (f'; SDM objective {sdm.objective!r}, min_snr {sdm.min_snr:g}' if sdm else '')
    lines = ['# Demo benchmark (`make demo` = `efn paper --profile cpu` on the phantom)', '',
             f'{measured_on(torch_version=False)} '
             f'({"with" if bf16_native("cpu") else "without"} native bf16, so the networks ran in '
             f'{"bf16" if bf16_native("cpu") else "float32"}). Stage times as recorded by the run itself (papermill '
             f'start-up excluded). Study settings: `{cfg}`.', '',
             '| stage | seconds |', '|---|---|', *[f'| {s} | {secs[s]:.0f} |' for s in STAGES],
             f'| **total** | **{total:.0f}** ({total / 60:.1f} min) |', '',
             f'Target: at most 20 minutes ({met(total <= 1200)}).', '',
             f'Mean Dice, all real frames minus all SDM frames: {gap:.1f} points{spread("gap")} (target: at most 1; '
             f'{met(gap <= 1)}). Real + SDM frames minus all real frames: {plus:+.1f}{spread("plus")} (target: above 0; '
             f'{met(plus > 0)}). Per phase (seed {gaps["seed"][0]}): {phase_line(run)}.', '',
             *realism, (run / 'table1.md').read_text()]
    write_report(Path(__file__).with_name('demo.md'), lines, keep_history=True)    # earlier runs' sections stay


def realism_errors(run):
    "(largest grey-level error of a structure, myocardium-cavity contrast error, classifier AUC) of a run's SDM images."
    t = pd.read_csv(run / 'metrics' / 'realism.csv').query('generator == "SDM"').set_index(['metric', 'structure'])
    return ((t.loc['grey_mean', 'ratio'] - 1).abs().max(), abs(t.loc[('contrast', 'myocardium-cavity'), 'ratio'] - 1),
            t.loc[('classifier_auc', 'all'), 'synthetic'])


def dice_gaps(run):
    "All real minus All SDM, and Real + SDM minus All real (mean Dice points) of one finished run, with its seed."
    if not (run / 'metrics' / 'per_image.csv').exists(): sys.exit(f'{run}: not a finished run (no metrics/per_image.csv)')
    mean = pd.read_csv(run / 'metrics' / 'per_image.csv').groupby('row')['dice_mean'].mean() * 100
    return dict(seed=yaml_study(run)['seed'], gap=mean.get('All real frames', float('nan')) - mean.get('All SDM frames', float('nan')),
                plus=mean.get('Real + SDM frames', float('nan')) - mean.get('All real frames', float('nan')))


def phase_line(run):
    "Mean Dice of the three all-frames rows on the ED and on the ES test frames."
    per = pd.read_csv(run / 'metrics' / 'per_image.csv')
    rows = ['All real frames', 'All SDM frames', 'Real + SDM frames']
    m = per[per['row'].isin(rows)].groupby(['row', 'phase'])['dice_mean'].mean().mul(100)
    return '; '.join(f'{r} ' + ' / '.join(f'{ph} {m[(r, ph)]:.1f}' for ph in ('ED', 'ES') if (r, ph) in m) for r in rows if r in m)


def yaml_study(run):
    import yaml
    return yaml.safe_load((run / 'config.yaml').read_text())['study']


if __name__ == '__main__':
    main()

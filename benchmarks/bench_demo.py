#!/usr/bin/env python
"""Wall time of each stage of the demo (`efn paper --profile cpu`) and its Table 1, written to benchmarks/demo.md.

Reads a finished run (default runs/demo, made by `make demo`); with --run-now it runs the demo first into a fresh
directory. Target (issue 6): under 30 minutes on 2 cores, and the synthetic-trained segmenter within 5 Dice points
of the real-trained one on the phantom test split.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd

from echo_from_noise.study import STAGES


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--run', default='runs/demo')
    ap.add_argument('--run-now', action='store_true', help='run the demo into a fresh directory first')
    a = ap.parse_args()
    run = Path(a.run)
    if a.run_now:
        shutil.rmtree(run, ignore_errors=True)
        subprocess.run([sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', 'cpu', '--out', str(run)], check=True)
    if not all((run / 'stages' / f'{s}.json').exists() for s in STAGES):
        sys.exit(f'{run}: not a finished run; run `make demo` or pass --run-now')
    secs = {s: json.loads((run / 'stages' / f'{s}.json').read_text())['seconds'] for s in STAGES}
    total = sum(secs.values())
    per = pd.read_csv(run / 'metrics' / 'per_image.csv')
    mean = per.groupby('row')['dice_mean'].mean() * 100
    gap = mean.get('All real frames', float('nan')) - mean.get('All SDM frames', float('nan'))
    lines = ['# Demo benchmark (`make demo` = `efn paper --profile cpu` on the phantom)', '',
             f'Measured {date.today()} on {platform.machine()} with {os.cpu_count()} CPU cores. Stage times as recorded '
             'by the run itself (papermill start-up excluded).', '',
             '| stage | seconds |', '|---|---|', *[f'| {s} | {secs[s]:.0f} |' for s in STAGES],
             f'| **total** | **{total:.0f}** ({total / 60:.1f} min) |', '',
             f'Target: under 30 minutes ({"met" if total < 1800 else "NOT met"}).', '',
             f'Mean Dice, all real frames minus all SDM frames: {gap:.1f} points (target: within 5; '
             f'{"met" if abs(gap) <= 5 else "NOT met"}).', '', (run / 'table1.md').read_text()]
    out = Path(__file__).with_name('demo.md')
    out.write_text('\n'.join(lines) + '\n')
    print(out.read_text())


if __name__ == '__main__':
    main()

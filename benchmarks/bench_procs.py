#!/usr/bin/env python
"""The study's sdm and segment stages with one process and with two side by side (`--set procs=N`), on this
machine. Writes benchmarks/procs.md.

Each arm runs the stage through `runner.run_stage`, as `efn paper` does, in a run directory of its own under WORK
(default runs/bench_procs) that shares a finished cpu-profile run's data and synthetic images (SOURCE, default
runs/demo; linked, not copied), with the cpu profile's networks and a cut budget (--sdm-steps per SDM, --seg-steps per
segmenter). The arms alternate, --rounds times, since this machine's speed drifts by 10-20 % over minutes; the
stage time is what the run records (stages/STAGE.json). The models of both arms are compared: the largest parameter
difference, which should be floating-point rounding only.
"""
import argparse
import json
import os
import shutil
from pathlib import Path

import torch

from benchmarks.common import measured_on
from echo_from_noise.config import SEG_ROWS
from echo_from_noise.rundir import row_slug
from echo_from_noise.distributed import cpu_cores
from echo_from_noise.runner import run_stage

STAGES = ('sdm', 'segment')


def arm(source: Path, work: Path, stage: str, procs: int, rnd: int, sdm_steps: int, seg_steps: int) -> float:
    "Seconds the stage took in a fresh run directory that links SOURCE's data and synthetic images."
    run = work / f'{stage}_procs{procs}_round{rnd}'
    marker = run / 'stages' / f'{stage}.json'
    if not marker.exists():
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        for d in ('data', 'synthetic'): (run / d).symlink_to((source / d).resolve())
        run_stage(stage, run, 'cpu', progress=False, overrides={'procs': procs, 'sdm.steps': sdm_steps,
                                                                 'seg.min_steps': seg_steps})
    return json.loads(marker.read_text())['seconds']


def largest_difference(a: Path, b: Path, stage: str) -> float:
    names = [f'sdm_{v}.pt' for v in ('2CH', '4CH')] if stage == 'sdm' else [f'seg_{row_slug(r[0])}.pt' for r in SEG_ROWS]
    worst = 0.0
    for n in names:
        x, y = (torch.load(r / 'checkpoints' / n, map_location='cpu', weights_only=True) for r in (a, b))
        key = 'ema' if stage == 'sdm' else 'model'
        worst = max(worst, max((x[key][k].float() - y[key][k].float()).abs().max().item() for k in x[key]))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--source', default='runs/demo', help='a finished cpu-profile run (data and synthetic images)')
    ap.add_argument('--work', default='runs/bench_procs')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--sdm-steps', type=int, default=150)
    ap.add_argument('--seg-steps', type=int, default=150)
    ap.add_argument('--out', default=str(Path(__file__).with_name('procs.md')))
    a = ap.parse_args()
    source, work = Path(a.source), Path(a.work)
    times = {(s, p): [] for s in STAGES for p in (1, 2)}
    for rnd in range(a.rounds):
        for s in STAGES:
            for p in (1, 2):
                times[s, p].append(arm(source, work, s, p, rnd, a.sdm_steps, a.seg_steps))
                print(s, p, rnd, times[s, p][-1], flush=True)
    rows = []
    for s in STAGES:
        one, two = (sum(times[s, p]) / len(times[s, p]) for p in (1, 2))
        what = f'{a.sdm_steps} steps per SDM, 2 SDMs' if s == 'sdm' else f'{a.seg_steps} steps per segmenter, {len(SEG_ROWS)} segmenters'
        diff = largest_difference(work / f'{s}_procs1_round0', work / f'{s}_procs2_round0', s)
        rows.append(f'| {s} | {what} | {" / ".join(f"{t:.0f}" for t in times[s, 1])} | '
                    f'{" / ".join(f"{t:.0f}" for t in times[s, 2])} | {two / one:.2f} | {diff:.1e} |')
    text = [
        '# Independent trainings side by side: `--set procs=N` (`benchmarks/bench_procs.py`)', '',
        f'{measured_on()}. '
        f'Each stage of a cpu-profile study run (the data and synthetic images of {a.source}) with one process (procs=1, '
        f'{cpu_cores()} threads) and with two side by side under torchrun (procs=2, one thread each); arms alternated, '
        f'{a.rounds} rounds. Seconds as the run records them (the stage, start-up of the processes included).', '',
        '| stage | budget | procs=1 (s, per round) | procs=2 (s, per round) | time procs=2 / procs=1 | largest parameter difference |',
        '|---|---|---|---|---|---|', *rows, '']
    Path(a.out).write_text('\n'.join(text))
    print('\n'.join(text))


if __name__ == '__main__':
    os.environ.setdefault('EFN_TEXT_PROGRESS', '1')
    main()

#!/usr/bin/env python
"""Which frames the SDM trains on: ED only (the paper) or ED and ES, judged by the segmenter its images train.
Writes experiments/phases.md.

Question (issue 14): the demo's "All SDM frames" row fell short of "All real frames" on the ES test frames only (ED
95.7 vs 96.1, ES 90.7 vs 95.5). An ED-only SDM never sees end-systolic anatomy (thicker wall, smaller cavity, the
mitral valve closed across the annulus), yet draws the ES images. Each arm trains one 4CH SDM (cpu profile, 1200 steps,
seed 0) on the study phantom's train split, draws an image for every deformed 4CH map of the train and val splits
(DPM-Solver++ with the study's steps), trains the cpu-profile segmenter on the ED and on the ES images, and tests it on
the 16 real 4CH test frames of that phase. Everything is kept under WORK (default runs/bench_phases): an interrupted
benchmark resumes.
"""
import argparse
import json
from pathlib import Path

import pandas as pd

from benchmarks.common import measured_on, write_report
from echo_from_noise.augment import augment_dataset
from echo_from_noise.dataset import read_manifest
from echo_from_noise.evaluate import frame_metrics
from echo_from_noise.phantom import make_phantom
from echo_from_noise.sdm import make_config, train_sdm
from echo_from_noise.synthesis import synthesize
from echo_from_noise.segment import SegConfig, load_frames, load_segmenter, segment, train_segmenter
from echo_from_noise.config import STUDY_PROFILES
from echo_from_noise.dataset import subset_dataset

ARMS = [('ED only (paper)', ('ED',)), ('ED and ES', ('ED', 'ES'))]
VIEW = '4CH'


def arm(work: Path, real: Path, labels: Path, phases: tuple, study: dict) -> dict:
    "Dice (%) per structure of the segmenters trained on this arm's ED and ES images, on the real test frames."
    run = work / '_'.join(phases)
    if (run / 'result.json').exists(): return json.loads((run / 'result.json').read_text())
    cfg = make_config('cpu', dict(study['sdm'], size=study['size'], seed=0, phases=phases))
    train_sdm(real, run, f'sdm_{VIEW}', VIEW, cfg, progress=False)
    if not (run / 'synthetic' / 'manifest.csv').exists():
        synthesize(run, labels, run / 'synthetic', study['sampler'], study['synth_steps'], seed=0, device='cpu',
                   progress=False)
    sc = SegConfig(**dict(dict(size=study['size'], seed=0, device='cpu'), **study['seg']))
    out = {}
    for ph in ('ED', 'ES'):
        tr, va = (load_frames(run / 'synthetic', s, [VIEW], [ph]) for s in ('train', 'val'))
        path = run / f'seg_{ph}.pt'
        train_segmenter(tr[:2], va[:2], path, sc, f'{"+".join(phases)} -> {ph}', progress=False)
        model, _, norm = load_segmenter(path)
        img, target, _ = load_frames(real, 'test', [VIEW], [ph])
        per = pd.DataFrame([frame_metrics(p, t) for p, t in zip(segment(model, norm, img), target)])
        out[ph] = dict(per.filter(like='dice').mean().mul(100).round(1), n=len(per))
    (run / 'result.json').write_text(json.dumps(out))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', default='runs/bench_phases')
    a = ap.parse_args()
    work, study = Path(a.work), STUDY_PROFILES['cpu']
    real, aug, labels = work / 'real', work / 'augmented', work / 'labels'
    if not (real / 'manifest.csv').exists():
        make_phantom(real, study['patients'], study['size'], seed=0, progress=False, test_patients=study['test_patients'])
    if not (aug / 'manifest.csv').exists(): augment_dataset(real, aug, study['copies'], 0, progress=False)
    df = read_manifest(aug)
    subset_dataset(aug, df[df['view'] == VIEW], labels)
    rows = []
    for name, phases in ARMS:
        res = arm(work, real, labels, phases, study)
        print(name, res, flush=True)
        for ph in ('ED', 'ES'):
            r = res[ph]
            rows.append(f'| {name} | {ph} | {r["dice_LV_endo"]:.1f} | {r["dice_LV_epi"]:.1f} | {r["dice_LA"]:.1f} | '
                        f'**{r["dice_mean"]:.1f}** | {r["n"]} |')
    lines = ['# SDM training frames: ED only or ED and ES', '', __doc__.split('\n\n', 1)[1].strip(), '',
             f'{measured_on()} (`python '
             'experiments/phases.py`).', '',
             '| SDM trained on | test phase (segmenter trained on SDM images of it) | LV_endo | LV_epi | LA | Mean | '
             'n test |', '|---|---|---|---|---|---|---|', *rows]
    write_report(Path(__file__).with_name('phases.md'), lines)


if __name__ == '__main__':
    main()

"""How much more real data lifts the real-only segmenter: the learning curve of Table 1's "All real frames" row against
the number of real train patients, the yardstick for what synthetic frames drawn from those same patients can add.

    python -m benchmarks.bench_real_curve DATASET [--patients 16 32 64 128 200] [--seg-seeds 3] [--profile cpu]
                                          [--set size=128 ...] [--label NAME]

The study's real-only segmenter (the profile's segmenter, augmentation and step budget, as `efn paper` trains it) is
trained on N of the train patients (`bench_real.fewer_train_patients`, spread over them), on the development split
(`bench_real.dev_split`: the val patients scored as test, a held-out eighth of the train patients choosing the epoch;
the test patients are never read), each N with `--seg-seeds` segmenter seeds (0, 1000, 2000, ...: the seeds of
bench_real's draws) and each test image scored by their mean. Writes benchmarks/real_curve.md and real_curve.json: the
Dice at each N, its difference from the largest N paired per test image (SE over test patients) and the gain per
doubling of the patients (least squares on log2 N), one curve per `--label` (default: the profile, the image size and
the settings; a curve of the same label is replaced). `--set` takes the study's settings, as `efn paper` does (e.g.
`size=128` with a dataset prepared at 128 px); the runs of each profile, settings and dataset have their own folder.
Real + SDM - All real asks the SDM's frames, drawn from the same patients' maps, to do what more patients would: the
curve says how many more patients a given gain is worth. The dataset stays outside the repository; numbers measured on
CAMUS cite it (Leclerc et al., IEEE TMI 2019).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_real import CITATION, ROWS, dev_split, fewer_train_patients
from benchmarks.common import ROOT, cpu_model, paired, shown
from echo_from_noise.config import seg_rows, study_config
from echo_from_noise.dataset import read_manifest
from echo_from_noise.distributed import pick_device
from echo_from_noise.evaluate import score_segmenters
from echo_from_noise.files import write_atomic
from echo_from_noise.segment import load_frames, train_segmenter

REPORT, RECORD = ROOT / 'benchmarks' / 'real_curve.md', ROOT / 'benchmarks' / 'real_curve.json'


def real_only(data: Path, out: Path, profile: str, seg_seed: int, sets: list = ()) -> pd.DataFrame:
    """Per-image Dice on `data`'s test split of the real-only segmenter trained on its train frames with `seg_seed` and
    the study settings `sets` (kept in `out`: a finished one is read again, an interrupted one resumes)."""
    scores = out / 'per_image.csv'
    if scores.exists(): return pd.read_csv(scores, dtype={'id': str, 'patient': str})
    cfg = study_config(profile, data=str(data), seed=0, overrides=[*sets, f'seg_seed={seg_seed}'])
    row, _, views, phases = next(r for r in seg_rows(cfg) if r[0] == ROWS[1])
    train, val = (load_frames(data, s, views, phases) for s in ('train', 'val'))
    if train[0].shape[-1] != cfg.seg.size:
        raise SystemExit(f'bench_real_curve: {data} holds {train[0].shape[-1]} px frames and profile {profile} trains at '
                         f'{cfg.seg.size} px: prepare the dataset at that size (efn prepare ... --size {cfg.seg.size}) '
                         f'or give the frames\' size (--set size={train[0].shape[-1]})')
    out.mkdir(parents=True, exist_ok=True)
    train_segmenter(train[:2], val[:2], out / 'segmenter.pt', cfg.seg, row, progress=False)
    per = score_segmenters([(row, out / 'segmenter.pt', views, phases)], data, 'test', pick_device(cfg.device))
    write_atomic(scores, per.to_csv(index=False))
    return per


def curve(per: dict) -> dict:
    """{N: per-image Dice (each image's mean over the segmenter seeds)} -> each N's Dice, its difference from the largest
    N (paired per test image) and the gain per doubling of N (least squares on log2 N, its SE from the residuals)."""
    top = max(per)
    d = pd.DataFrame({n: p.set_index(['id', 'patient'])['dice_mean'] for n, p in per.items()}).reset_index()
    points = {n: dict(dice=float(100 * d[n].mean()), minus_most=paired(100 * (d[n] - d[top]), d['patient']))
              for n in sorted(per)}
    x, y = np.log2(list(points)), np.array([p['dice'] for p in points.values()])
    slope, icpt = np.polyfit(x, y, 1)
    se = (float(np.sqrt(np.sum((y - (slope * x + icpt)) ** 2) / (len(x) - 2) / np.sum((x - x.mean()) ** 2)))
          if len(x) > 2 else None)                                   # two points: a line through both, no residual
    return dict(points=points, per_doubling=float(slope), per_doubling_se=se)


def write_report(record: dict) -> None:
    "benchmarks/real_curve.md: every curve of `record` ({label: entry}), one section each."
    lines = ['# The real-only segmenter against the number of real patients', '']
    for label, entry in record.items(): lines += [f'## {label}', ''] + _section(entry)
    write_atomic(REPORT, '\n'.join(lines))


def _section(entry: dict) -> list:
    n_train = entry['train_patients_in_dev']
    lines = [f'Measured on real CAMUS apical 4CH frames (ED and ES; {CITATION}); the frames stay outside the repository. '
             f'`{entry["command"]}`; profile {entry["profile"]}, {entry.get("size", 64)} px; {entry["machine"]}; '
             f'{entry["date"]}. The development '
             f'split: the val patients scored as test ({entry["test_images"]} images), the train patients kept '
             '(`--patients`, spread over them) split 7:1 into train and epoch-choosing val. Each N: the study\'s '
             f'"All real frames" segmenter trained with {entry["seg_seeds"]} seeds, each test image scored by their mean. '
             'Differences in Dice points from the largest N, paired per test image, ± the SE over test patients.', '',
             '| train patients kept | of them in train | Dice (All real frames) | minus the largest N |', '|---|---|---|---|']
    for n, p in entry['points'].items():
        lines.append(f'| {n} | {n_train[n]} | {p["dice"]:.1f} | {shown(p["minus_most"])} |')
    se = entry['per_doubling_se']
    lines += ['', f'Gain per doubling of the patients (least squares on log2 N): {entry["per_doubling"]:+.2f}'
              + (f' ± {se:.2f} Dice.' if se is not None else ' Dice (two points: no SE).'), '']
    if entry.get('note'): lines += [entry['note'], '']
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('dataset', help='a canonical dataset with train/val/test splits')
    ap.add_argument('--patients', nargs='+', type=int, default=[16, 32, 64, 128, 200])
    ap.add_argument('--seg-seeds', type=int, default=3, metavar='N')
    ap.add_argument('--profile', default='cpu')
    ap.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE', help="the study's settings, as efn paper's --set")
    ap.add_argument('--label', help="the curve's name in the report (default: the profile, image size and settings)")
    ap.add_argument('--note', help='a paragraph printed under the table')
    ap.add_argument('--work', default=str(Path.home() / 'echo_real_runs'), help='where the runs go (not the repository)')
    a = ap.parse_args(argv)
    if a.seg_seeds < 1: raise SystemExit(f'bench_real_curve: --seg-seeds must be at least 1, got {a.seg_seeds}')
    ns = sorted(set(a.patients))
    if len(ns) < 2: raise SystemExit('bench_real_curve: --patients needs two numbers or more')
    data, work = Path(a.dataset).resolve(), Path(a.work)
    size = study_config(a.profile, data=str(data), overrides=a.set).size     # bad settings refused before any training
    label = a.label or ', '.join([f'{a.profile} profile', f'{size} px', *(s for s in a.set if not s.startswith('size='))])
    # runs named by what made them, never by the label: a finished run is read again only under its own settings
    runs_dir = work / 'curve' / re.sub(r'[^A-Za-z0-9._=]+', '-', '-'.join([a.profile, *sorted(a.set), data.name]))
    per, n_train = {}, {}
    for n in ns:
        dev = dev_split(fewer_train_patients(data, work / f'{data.name}_p{n}', n), work / f'{data.name}_p{n}_dev')
        n_train[n] = int(read_manifest(dev).query('split == "train"')['patient'].nunique())
        runs = [real_only(dev, runs_dir / f'p{n}-seg{1000 * k}', a.profile, 1000 * k, a.set) for k in range(a.seg_seeds)]
        per[n] = pd.concat(runs).groupby(['id', 'patient'], as_index=False)['dice_mean'].mean()
        print(f'{n} patients ({n_train[n]} in train): {100 * per[n]["dice_mean"].mean():.1f}', flush=True)
    entry = dict(curve(per), profile=a.profile, size=size, settings=a.set, seg_seeds=a.seg_seeds, train_patients_in_dev=n_train,
                 test_images=int(next(iter(per.values()))['id'].nunique()), note=a.note,
                 dataset=data.name, date=datetime.date.today().isoformat(), machine=f'{os.cpu_count()} cores, {cpu_model()}',
                 command='python -m benchmarks.bench_real_curve DATASET --patients '
                         + ' '.join(map(str, ns)) + f' --seg-seeds {a.seg_seeds}'
                         + (f' --set {" ".join(a.set)}' if a.set else '') + (f' --label "{a.label}"' if a.label else ''),
                 citation=CITATION)
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    record[label] = entry
    write_atomic(RECORD, json.dumps(record, indent=1) + '\n')
    write_report(record)
    print(REPORT.read_text())


if __name__ == '__main__':
    main()

"""The study on a real dataset: Table 1's measured rows, the two differences that decide whether synthetic data helps
(All SDM - All real, Real + SDM - All real, paired per test image, SE over test patients), the realism of the synthetic
sets, each stage's wall time and the settings. Appends one entry per call to benchmarks/real.json and rewrites
benchmarks/real.md from it, so that every lever tried stays in the table.

    python -m benchmarks.bench_real DATASET [--seeds 0 1] [--set KEY=VALUE ...] [--split dev|test] [--label NAME]
                                   [--seg-seeds N] [--train-patients N] [--against LABEL]
    python -m benchmarks.bench_real --merge OTHER/benchmarks/real.json [--label NAME --note TEXT]

DATASET is any canonical dataset (`efn prepare` output) with train/val/test splits, e.g. CAMUS 4CH at 64 px. Settings
are chosen on the development split (`--split dev`, the default): the val patients are scored as the test split, a
held-out eighth of the train patients chooses the segmenters' epochs, and the test patients are never read. `--split
test` runs the dataset as it is, to report. The dataset itself stays outside the repository: only the numbers measured
on it are written here, with its citation (CAMUS: Leclerc et al., IEEE TMI 2019). `--train-patients N` keeps N of
the train patients (the SDM and the segmenters see only theirs): whether synthetic frames help where real labelled
frames are scarce, the use the project is for.

Each run's segmenters are trained `--seg-seeds` times (3 by default: the study's `seg_seed`, `efn paper --redo-from
segment` on copies of the run) and each test image is scored by their mean. On CAMUS at 64 px one draw of the
segmenters moves both differences by about 0.4-0.5 Dice (sd over four draws on the same synthetic frames), as much as
any lever tried since the SDM's step budget; the mean of three draws carries about 0.6 of that.

`--against LABEL` names the entry a lever changes one setting of: the report's levers table then gives the lever's
effect on both differences and on the AUC against that entry, seed by seed and paired segmenter draw by draw (the
issue's "one line per lever"), next to both entries' minutes.

`--merge OTHER/benchmarks/real.json` runs nothing: it copies into this record the entries another checkout's record
has and this one lacks (a lever tried on trial code in a scratch worktree, whose command does not run here), and with
`--label NAME --note TEXT` gives that entry its note.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import ROOT, cpu_model, paired
from echo_from_noise.config import BEFORE_REALISM
from echo_from_noise.dataset import DatasetWriter, extra_columns, load_frame, read_manifest
from echo_from_noise.files import write_atomic
from echo_from_noise.rundir import read_run_config

REPORT, RECORD = ROOT / 'benchmarks' / 'real.md', ROOT / 'benchmarks' / 'real.json'
ROWS = ('All SDM frames', 'All real frames', 'Real + SDM frames')
CITATION = ('CAMUS: S. Leclerc et al., "Deep Learning for Segmentation using an Open Large-Scale Dataset in 2D '
            'Echocardiography", IEEE Transactions on Medical Imaging 38(9), 2019')


def dev_split(dataset: Path, out: Path) -> Path:
    """`dataset` with its val patients as the test split, every eighth train patient (sorted) as val, and no frame of
    its test patients: the split settings are chosen on. Made once; kept as it is when `out` already holds it."""
    if (out / 'manifest.csv').exists(): return out
    df = read_manifest(dataset)
    train = sorted(df.loc[df['split'] == 'train', 'patient'].unique())
    new = {p: 'test' for p in df.loc[df['split'] == 'val', 'patient']}
    new.update({p: 'val' if i % 8 == 7 else 'train' for i, p in enumerate(train)})
    return write_subset(dataset, df, out, new)


def fewer_train_patients(dataset: Path, out: Path, n: int) -> Path:
    """`dataset` with `n` of its train patients (every k-th in sorted order, k = their number // n; the first n of
    those) and all of its val and test ones: the study where real labelled frames are scarce. The SDM and the
    segmenters then see only those patients' frames. Made once; kept as it is when `out` already holds it."""
    if (out / 'manifest.csv').exists(): return out
    df = read_manifest(dataset)
    train = sorted(df.loc[df['split'] == 'train', 'patient'].unique())
    if not 1 <= n <= len(train): sys.exit(f'bench_real: --train-patients {n}: {dataset} has {len(train)} train patients')
    new = {p: 'train' for p in train[::len(train) // n][:n]}
    new.update({p: s for p, s in zip(df['patient'], df['split']) if s != 'train'})
    return write_subset(dataset, df, out, new)


def write_subset(dataset: Path, df: pd.DataFrame, out: Path, split_of: dict) -> Path:
    "The frames of `dataset` (its manifest `df`) whose patients `split_of` names, written to `out` in those splits."
    keep = df[df['patient'].isin(split_of)]
    with DatasetWriter(out, load_frame(dataset, keep.iloc[0])[1].shape[0]) as w:
        for _, r in keep.iterrows():
            img, lab = load_frame(dataset, r)
            w.add(r['id'], r['patient'], r['view'], r['phase'], split_of[r['patient']], lab, img, source=r['source'],
                  **extra_columns(r))
    return out


def rows_paired(per: pd.DataFrame, a: str, b: str) -> dict:
    "Row `a` minus row `b` in Dice points, paired per test image (`common.paired`: SE over test patients)."
    d = per.pivot_table(index=['id', 'patient'], columns='row', values='dice_mean').reset_index()
    return paired(100 * (d[a] - d[b]), d['patient'])


def reuse_run(src: Path, out: Path) -> None:
    """`out` as a copy of the finished run `src` (its stage records pointed at the copy), for a lever that changes only
    later stages: `--redo-from` then moves those stages' outputs aside and runs them again (`efn paper --redo-from`)."""
    if out.exists(): return
    if not (src / 'stages' / 'figures.json').exists(): sys.exit(f'bench_real: --reuse {src}: not a finished run')
    shutil.copytree(src, out, symlinks=True)
    for p in (out / 'stages').glob('*.json'): p.write_text(p.read_text().replace(str(src), str(out)))


def run_study(data: Path, out: Path, profile: str, seed: int, sets: list, redo_from: str | None = None) -> None:
    "One `efn paper` run (resumed when `out` holds one)."
    cmd = [sys.executable, '-m', 'echo_from_noise', 'paper', '--profile', profile, '--data', str(data), '--out', str(out),
           '--seed', str(seed)] + (['--set', *sets] if sets else []) + (['--redo-from', redo_from] if redo_from else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: sys.exit(f'bench_real: efn paper failed ({r.returncode}):\n{r.stderr[-3000:]}')


def per_image(outs: list) -> pd.DataFrame:
    """Per-image Dice of Table 1's rows in the runs `outs` (one run, or one run and its segmenters trained again with
    other seeds on the same frames): each image's mean over them."""
    per = pd.concat([pd.read_csv(o / 'metrics' / 'per_image.csv', dtype={'id': str, 'patient': str}) for o in outs])
    return per.groupby(['row', 'id', 'patient'], as_index=False)['dice_mean'].mean()


def measure(outs: list, seed: int) -> dict:
    """What a run measured: Table 1's rows and the two differences (over its segmenter seeds, `per_image`), each
    segmenter seed's differences alone, the realism of its synthetic sets and the stages' time (of `outs[0]`)."""
    out = outs[0]
    stages = {p.stem: json.loads(p.read_text()) for p in (out / 'stages').glob('*.json')}
    per = per_image(outs)
    realism = stages['evaluate']['result'].get('realism', {})
    means = {row: float(100 * g['dice_mean'].mean()) for row, g in per.groupby('row') if row in ROWS}
    tex = pd.read_csv(out / 'metrics' / 'realism.csv') if (out / 'metrics' / 'realism.csv').exists() else None
    def texture(gen):
        if tex is None or 'gradient' not in set(tex['metric']): return {}
        t = tex[tex['generator'] == gen].set_index(['metric', 'structure'])['ratio']
        return {k: float(t[(m, s)]) for k, (m, s) in dict(gradient_myocardium=('gradient', 'myocardium'),
                gradient_cavity=('gradient', 'cavity'), hf_power=('hf_power', 'sector'),
                brightness_sd=('brightness_sd', 'sector')).items() if (m, s) in t.index}
    diffs = lambda p: dict(sdm_minus_real=rows_paired(p, ROWS[0], ROWS[1]), real_sdm_minus_real=rows_paired(p, ROWS[2], ROWS[1]))
    each = [{k: d['mean'] for k, d in diffs(per_image([o])).items()} for o in outs] if len(outs) > 1 else []
    budget = (read_run_config(out).get('study') or {}).get('realism') or {}
    return dict(seed=seed, dice=means, **diffs(per), seg_seeds=len(outs), per_seg_seed=each,
                realism_budget={**OLD_REALISM_BUDGET, **{k: budget[k] for k in OLD_REALISM_BUDGET if k in budget}},
                realism={g: dict(auc=v['auc'], auc_sd=v['auc_sd'], grey_ratio=v['grey_ratio'],
                                 contrast_ratio=v['contrast_ratio'], **texture(g)) for g, v in realism.items()},
                stage_seconds={s: stages[s]['seconds'] for s in stages},
                minutes=round(sum(stages[s]['seconds'] for s in stages) / 60, 1),
                test_images=int(per['id'].nunique()))


def seg_seed_runs(data: Path, out: Path, profile: str, seed: int, sets: list, n: int, fresh: bool = False) -> list:
    """`out` and `n - 1` copies of it whose segmenters are trained again with other seeds (`seg_seed`, from the
    segment stage on: the same synthetic frames), finished ones read again; `fresh` (`out` was just made or redone):
    copies left from an earlier `out` are made again."""
    outs = [out]
    for k in range(1, n):
        rep = out.with_name(f'{out.name}-seg{k}')
        if fresh and rep.exists(): shutil.rmtree(rep)
        done = (rep / 'stages' / 'figures.json').exists()
        reuse_run(out, rep)
        run_study(data, rep, profile, seed, sets + [f'seg_seed={1000 * k + seed}'], None if done else 'segment')
        outs.append(rep)
    return outs


def settings(train_patients: int | None, sets: list) -> list:
    "An entry's settings as words: `train_patients=N` for a scarce-data one, then its --set values."
    return ([f'train_patients={train_patients}'] if train_patients else []) + list(sets)


def recorded(path: Path | None = None) -> list:
    "The entries a real.json holds (this record's by default; none before the first run)."
    path = path or RECORD
    return json.loads(path.read_text())['entries'] if path.exists() else []


def merge_entries(record: list, others: list, label: str | None = None, note: str | None = None) -> tuple:
    """`record` with the entries of another real.json (`others`: e.g. a scratch worktree's, whose lever ran on trial
    code) that it lacks, and `others`' entry `label` given `note` (replacing this record's entry of that name, if
    any). (the merged record, the (label, split) of each entry taken)."""
    have = {(e['label'], e['split']): i for i, e in enumerate(record)}
    record, taken = list(record), []
    for e in others:
        key = (e['label'], e['split'])
        if key in have and e['label'] != label: continue
        e = dict(e, note=note) if e['label'] == label and note else e
        if key in have: record[have[key]] = e
        else: have[key] = len(record); record.append(e)
        taken.append(key)
    return record, taken


def write_record(record: list) -> None:
    "real.json, then real.md from it."
    write_atomic(RECORD, json.dumps(dict(headline(record), citation=CITATION, entries=record), indent=1) + '\n')
    write_report(record)


def per_seed(texts: list, values: list) -> str:
    "One cell of a table: each seed's text, then the mean of their values over the seeds when there are several."
    return ' / '.join(texts) + (f' (mean {np.mean(values):+.2f})' if len(values) > 1 else '')


def entry_line(e: dict) -> str:
    "One line of the entries table: each seed's value (± its SE over test patients), then the mean over the seeds."
    f = lambda key: per_seed([f'{r[key]["mean"]:+.1f} ± {r[key]["se"]:.1f}' for r in e['runs']],
                             [r[key]['mean'] for r in e['runs']])
    auc = lambda gen: ' / '.join(f'{r["realism"][gen]["auc"]:.2f}' if gen in r['realism'] else '-' for r in e['runs'])
    return (f'| {e["label"]} | {e["split"]} | {", ".join(settings(e.get("train_patients"), e["set"])) or "-"} | '
            f'{f("sdm_minus_real")} | '
            f'{f("real_sdm_minus_real")} | {auc("SDM")} | {auc("SDM (undeformed maps)")} | '
            f'{" / ".join(str(r["minutes"]) for r in e["runs"])} |')


DIFFS = ('sdm_minus_real', 'real_sdm_minus_real')
OLD_REALISM_BUDGET = dict(steps=300, **BEFORE_REALISM)   # the realism classifier's budget before 2026-12-04


def realism_budget(run: dict) -> dict:
    "The classifier budget a run's AUCs were read with (runs recorded before it was: the old one)."
    return run.get('realism_budget') or OLD_REALISM_BUDGET


def draws(run: dict) -> list:
    """A run's two differences per segmenter draw, in `seg_seed` order (a run of one draw: its own): two entries share
    a draw where they share the seed and the segmenter seed, so a lever is paired with its baseline draw by draw."""
    return run.get('per_seg_seed') or [{k: run[k]['mean'] for k in DIFFS}]


def lever_line(e: dict, base: dict) -> str | None:
    """One line of the levers table: entry `e` minus its baseline `base`, seed by seed (the seeds both ran) and, within
    a seed, over the segmenter draws both have; AUC and minutes as measured. None when they share no seed."""
    pairs = [(r, b) for r in e['runs'] for b in base['runs'] if r['seed'] == b['seed']]
    if not pairs: return None
    def delta(key):
        per = [float(np.mean([x[key] - y[key] for x, y in zip(draws(r), draws(b))])) for r, b in pairs]
        return per_seed([f'{v:+.2f}' for v in per], per)
    def auc(gen):
        d = [f"{r['realism'][gen]['auc'] - b['realism'][gen]['auc']:+.3f}" if realism_budget(r) == realism_budget(b)
             else 'other budgets' for r, b in pairs if gen in r['realism'] and gen in b['realism']]
        return ' / '.join(d) or '-'     # AUCs read with two classifier budgets are not compared (realism_budget.md)
    seeds = ', '.join(f'{r["seed"]} ({min(len(draws(r)), len(draws(b)))})' for r, b in pairs)
    minutes = lambda runs: ' / '.join(str(x['minutes']) for x in runs)
    return (f'| {e["label"]} | {base["label"]} | {seeds} | {delta(DIFFS[0])} | {delta(DIFFS[1])} | {auc("SDM")} | '
            f'{auc("SDM (undeformed maps)")} | {minutes([r for r, _ in pairs])} against {minutes([b for _, b in pairs])} |')


def levers_table(record: list) -> list:
    "The report's levers table: every entry recorded with a baseline (`--against`), against that entry of its split."
    by = {(x['label'], x['split']): x for x in record}
    lines = [lever_line(e, by[(e['against'], e['split'])]) for e in record
             if e.get('against') and (e['against'], e['split']) in by]
    if not any(lines): return []
    return ['', '## Each lever against its baseline', '',
            'One line per entry run against another (`--against LABEL`: the entry it changes one setting of, on the same '
            'split). Each difference is the entry\'s minus its baseline\'s, per seed both ran (in brackets: the '
            'segmenter draws both have, paired draw by draw: the same seed and segmenter seed); positive is better for '
            'Dice, negative for the AUC (0.5 = indistinguishable; "other budgets": the two were read with different '
            'classifier budgets, benchmarks/realism_budget.md). Minutes as each entry recorded them (a `--reuse` entry '
            'counts the reused run\'s SDM seconds; the machines differ between some entries: see each section).', '',
            '| lever | against | seeds (draws) | All SDM - All real | Real + SDM - All real | AUC training set | '
            'AUC undeformed maps | minutes |', '|---|---|---|---|---|---|---|---|', *filter(None, lines)]


def seed_spread(record: list, key: str) -> tuple:
    """(pooled sd of one seed's value around its entry's mean, entries it pools): how far one run of a setting is from
    the next, from every dev entry run on two seeds or more (with n seeds: n - 1 degrees of freedom each) on all of its
    train patients (a scarce-data entry, `--train-patients`, is another regime)."""
    groups = [[r[key]['mean'] for r in e['runs']] for e in record
              if e['split'] == 'dev' and len(e['runs']) > 1 and not e.get('train_patients')]
    dof = sum(len(g) - 1 for g in groups)
    if not dof: return float('nan'), 0
    return float(np.sqrt(sum(((np.array(g) - np.mean(g)) ** 2).sum() for g in groups) / dof)), len(groups)


def headline(record: list) -> dict:
    """real.json's top-level numbers: the newest entry on the test split (what is reported; a dev lever run later does
    not replace it), or the newest entry while no test entry exists. Means over the entry's seeds."""
    e = ([x for x in record if x['split'] == 'test'] or record)[-1]
    runs = e['runs']
    mean = lambda k: float(np.mean([r[k]['mean'] for r in runs]))
    aucs = [r['realism']['SDM']['auc'] for r in runs if 'SDM' in r['realism']]
    return dict(auc=float(np.mean(aucs)) if aucs else float('nan'),
                sdm_minus_real=mean('sdm_minus_real'), real_sdm_minus_real=mean('real_sdm_minus_real'),
                minutes=float(np.mean([r['minutes'] for r in runs])), label=e['label'], split=e['split'])


def write_report(record: list) -> None:
    sd_sdm, n = seed_spread(record, 'sdm_minus_real')
    sd_rs, _ = seed_spread(record, 'real_sdm_minus_real')
    views = sorted({v for e in record for v in e.get('views', ['4CH'])})   # entries that name none ran on CAMUS 4CH
    md = ['# The study on real echo', '',
          f'Measured on real CAMUS apical {" and ".join(views)} frames (ED and ES, {CITATION}); the frames stay '
          'outside the repository. '
          '`python -m benchmarks.bench_real DATASET --split dev|test --seeds ...` (one entry per call; '
          '`benchmarks/real.json` holds every number). **dev**: the val patients scored as test, settings chosen '
          'there; **test**: the held-out test patients, read only to report.', '',
          'Differences are in Dice points, paired per test image, ± the standard error over test patients; one value '
          'per seed, then their mean over the seeds; with `--seg-seeds N` each run\'s segmenters were trained N times on '
          'the same frames and each test image scored by their mean (its section gives each segmenter seed\'s '
          'differences: SDM - real, R+S - real). AUC: the realism classifier inside the sector (0.5 = indistinguishable), on the synthetic '
          'training set and on the generator\'s images of the real maps themselves (nbs/08b_realism); the entries made '
          'before 2026-12-04 read it with a classifier that had hardly begun to learn (300 steps at a learning rate of '
          '1e-3), and their AUCs are not a generator\'s: read again with the budget since (600 steps at 3e-3), the same '
          'synthetic sets of eight entries score 0.86-0.98 (training set) and 0.72-0.90 (undeformed maps) '
          '(benchmarks/realism_budget.md). Minutes: the '
          'stages\' own time on this machine (2 cores).' + (
              f' From one seed to the next, one setting\'s differences move by a pooled sd of {sd_sdm:.2f} (All SDM - '
              f'All real) and {sd_rs:.2f} (Real + SDM - All real) over the {n} dev entries run on two seeds or more: '
              'a lever that moves a difference by less than about twice that on two seeds is not told from noise.'
              if n else ''), '',
          '| entry | split | settings | All SDM - All real | Real + SDM - All real | AUC training set | AUC undeformed maps | minutes |',
          '|---|---|---|---|---|---|---|---|']
    md += [entry_line(e) for e in record]
    md += levers_table(record)
    for e in record:
        md += ['', f'## {e["label"]} ({e["split"]}, {e["date"]})', '',
               f'`{e["command"]}`; profile {e["profile"]}; dataset {e["dataset"]} ({e["runs"][0]["test_images"]} test '
               f'images); {e["machine"]}.', '',
               '| seed | All SDM | All real | Real + SDM | SDM - real | R+S - real | each segmenter seed | stage seconds |',
               '|---|---|---|---|---|---|---|---|']
        for r in e['runs']:
            d = r['dice']
            md.append(f'| {r["seed"]} | {d.get(ROWS[0], float("nan")):.1f} | {d.get(ROWS[1], float("nan")):.1f} | '
                      f'{d.get(ROWS[2], float("nan")):.1f} | {r["sdm_minus_real"]["mean"]:+.2f} ± {r["sdm_minus_real"]["se"]:.2f} | '
                      f'{r["real_sdm_minus_real"]["mean"]:+.2f} ± {r["real_sdm_minus_real"]["se"]:.2f} | '
                      + ('; '.join(f'{x["sdm_minus_real"]:+.2f}, {x["real_sdm_minus_real"]:+.2f}' for x in r['per_seg_seed'])
                         if r.get('per_seg_seed') else '-') + ' | '
                      + ', '.join(f'{k} {v:.0f}' for k, v in r['stage_seconds'].items()) + ' |')
        md += ['', '| seed | generator | AUC ± sd | grey ratios (cavity, myocardium, LA, sector) | contrast | texture ratios '
               '(myocardium, cavity) | high-freq. power | brightness sd |', '|---|---|---|---|---|---|---|---|']
        for r in e['runs']:
            for g, v in r['realism'].items():
                grey = ', '.join(f'{x:.2f}' for x in v['grey_ratio'].values())
                opt = lambda k, fmt='.2f': f'{v[k]:{fmt}}' if k in v else '-'
                md.append(f'| {r["seed"]} | {g} | {v["auc"]:.3f} ± {v["auc_sd"]:.3f} | {grey} | {v["contrast_ratio"]:.2f} | '
                          f'{opt("gradient_myocardium")}, {opt("gradient_cavity")} | {opt("hf_power")} | '
                          f'{opt("brightness_sd")} |')
        if e.get('note'): md += ['', e['note']]
    write_atomic(REPORT, '\n'.join(md) + '\n')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('dataset', nargs='?', help='a canonical dataset with train/val/test splits')
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    ap.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE', help='efn paper --set values')
    ap.add_argument('--profile', default='cpu')
    ap.add_argument('--split', choices=('dev', 'test'), default='dev')
    ap.add_argument('--label', help='the entry\'s name in the table (default: the profile and the --set values)')
    ap.add_argument('--note', help='a sentence printed under the entry')
    ap.add_argument('--reuse', metavar='LABEL', help='start each seed from a copy of the finished run of this entry '
                    '(same split and seed) and run again from --redo-from: for levers that change only later stages')
    ap.add_argument('--against', metavar='LABEL', help='the entry this one changes a setting of (same split): the '
                    'report\'s levers table gives the differences against it, paired by seed and segmenter draw')
    ap.add_argument('--redo-from', metavar='STAGE', help='with --reuse: the first stage the lever changes (e.g. synthesize)')
    ap.add_argument('--seg-seeds', type=int, default=3, metavar='N', help='train each run\'s segmenters N times '
                    '(other seeds, the same frames: `seg_seed`) and score each test image by their mean: one draw of '
                    'the segmenters moves the differences by about 0.4-0.5 Dice (sd) on CAMUS at 64 px, as much as '
                    'the levers being judged (each further seed: about 5 minutes at 64 px; 1 for a quick look)')
    ap.add_argument('--train-patients', type=int, metavar='N', help='keep only N of the dataset\'s train patients '
                    '(spread over them; val and test as they are): synthetic data where real data is scarce')
    ap.add_argument('--work', default=str(Path.home() / 'echo_real_runs'), help='where the runs go (not the repository)')
    ap.add_argument('--merge', metavar='REAL_JSON', help='instead of running: take the entries this record lacks from '
                    'another real.json (a scratch worktree\'s, for a lever tried on trial code); with --label and '
                    '--note, that entry with the note, replacing this record\'s of the same name')
    a = ap.parse_args(argv)
    if a.merge:
        src = Path(a.merge)
        if not src.is_file(): sys.exit(f'bench_real: --merge {src}: no such file (a real.json written by bench_real)')
        if bool(a.label) != bool(a.note): sys.exit('bench_real: with --merge, --label and --note go together')
        if a.dataset: sys.exit(f'bench_real: --merge runs nothing; give no DATASET ({a.dataset})')
        try: others = list(recorded(src))
        except (ValueError, KeyError, TypeError):
            sys.exit(f'bench_real: --merge {src}: not a real.json written by bench_real (no "entries" list)')
        if a.label and a.label not in {e['label'] for e in others}:
            sys.exit(f'bench_real: --label {a.label!r}: no entry of that name in {src}')
        record, taken = merge_entries(recorded(), others, a.label, a.note)
        write_record(record)
        print('merged: ' + (', '.join(f'{lab} ({split})' for lab, split in taken) or 'nothing new'))
        return
    if a.dataset is None: sys.exit('bench_real: give a DATASET to run, or --merge REAL_JSON')
    data, work = Path(a.dataset).resolve(), Path(a.work)
    if a.train_patients is not None:
        data = fewer_train_patients(data, work / f'{data.name}_p{a.train_patients}', a.train_patients)
    if a.split == 'dev': data = dev_split(data, work / f'{data.name}_dev')
    slug = lambda label: label.replace('/', '_').replace(' ', '_')
    default = [a.profile] + settings(a.train_patients, a.set)
    tag = slug(a.label or '_'.join(default))     # the runs' folders
    label = a.label or ' '.join(default)         # the entry's name in the report
    if bool(a.reuse) != bool(a.redo_from): sys.exit('bench_real: --reuse and --redo-from go together')
    if a.seg_seeds < 1: sys.exit(f'bench_real: --seg-seeds must be at least 1, got {a.seg_seeds}')
    if a.against == label:
        sys.exit(f'bench_real: --against {a.against!r} is this entry\'s own label: name the entry it changes')
    if a.against:
        before = recorded()
        if (a.against, a.split) not in {(e['label'], e['split']) for e in before}:
            sys.exit(f'bench_real: --against {a.against!r}: no {a.split} entry of that label in {RECORD}; its '
                     f'{a.split} entries: ' + ', '.join(repr(e['label']) for e in before if e['split'] == a.split))
    runs = []
    for s in a.seeds:
        out = work / f'{tag}-{a.split}-seed{s}'
        done = (out / 'stages' / 'figures.json').exists()      # a finished seed is read again, not redone
        if a.reuse: reuse_run(work / f'{slug(a.reuse)}-{a.split}-seed{s}', out)
        t0 = time.time()
        run_study(data, out, a.profile, s, a.set, None if done else a.redo_from)
        wall = round((time.time() - t0) / 60, 1)
        outs = seg_seed_runs(data, out, a.profile, s, a.set, a.seg_seeds, fresh=not done)
        runs.append(dict(measure(outs, s), wall_minutes=wall))
    cpu = cpu_model()
    entry = dict(label=label, split=a.split, set=a.set, profile=a.profile,
                 train_patients=a.train_patients, against=a.against,
                 dataset=Path(a.dataset).name, date=datetime.date.today().isoformat(), note=a.note,
                 machine=f'{os.cpu_count()} cores, {cpu}',
                 views=sorted(read_manifest(data)['view'].unique()),
                 command='python -m benchmarks.bench_real DATASET ' + ' '.join(
                     ([f'--profile {a.profile}'] if a.profile != 'cpu' else [])
                     + [f'--split {a.split}', '--seeds', *map(str, a.seeds)] + (['--set', *a.set] if a.set else [])
                     + ([f'--train-patients {a.train_patients}'] if a.train_patients else [])
                     + [f'--seg-seeds {a.seg_seeds}']
                     + (['--reuse', repr(a.reuse), '--redo-from', a.redo_from] if a.reuse else [])
                     + (['--against', repr(a.against)] if a.against else [])),
                 runs=runs)
    record, _ = merge_entries(recorded(), [entry], label, a.note)   # read now: a run takes hours; a rerun in place
    write_record(record)
    print(REPORT.read_text())


if __name__ == '__main__':
    main()

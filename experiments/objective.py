#!/usr/bin/env python
"""The SDM's training objective against the realism of its images, on the built-in phantom at the cpu profile (64 px).
Writes experiments/objective.md and experiments/objective_samples.png.

Question (issue 14): does the paper's objective (eps-prediction, learned variance, hybrid loss) or v-prediction give
images whose grey level and contrast match the real frames, and is any difference the objective or the training
budget? One SDM per (objective, steps) on the 4CH ED training frames of the study's phantom (52 patients, 16 of them
test), each with its own learning-rate schedule; every model draws an image for every 4CH label map (all splits, so the
real frame of the same map exists) with each sampler, and `echo_from_noise.realism` compares them with the real frames:
grey level per structure (ratio to real), the myocardium-cavity contrast ratio, the mean W1 distance of the four
structures' histograms, and the held-out AUC of the classifier two-sample test.

Targets (issue 14, cpu profile, the study's sampler): grey level per structure within 10 % of real, contrast within
15 %, classifier AUC at most 0.75. Models and samples are kept under WORK (default runs/bench_objective): an
interrupted benchmark resumes.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import measured_on, write_report as write_lines
from echo_from_noise.dataset import load_split
from echo_from_noise.phantom import make_phantom
from echo_from_noise.realism import REGIONS, classifier_auc, grey_table, region_histograms
from echo_from_noise.sdm import load_sdm, make_config, sdm_generate, train_sdm
from echo_from_noise.config import STUDY_PROFILES

# (name, objective, training steps, min-SNR gamma (0 = off))
MODELS = [('paper-1200', 'paper', 1200, 0.0), ('v-1200', 'v', 1200, 0.0), ('v-2400', 'v', 2400, 0.0),
          ('v-minsnr5-1200', 'v', 1200, 5.0), ('paper-2400', 'paper', 2400, 0.0)]
SAMPLERS = [('ddpm', 30), ('ddpm', 100), ('dpm++', 15)]
STUDY_SAMPLER = (STUDY_PROFILES['cpu']['sampler'], STUDY_PROFILES['cpu']['synth_steps'])


def samples(net, cfg, labels, sampler, steps, path, batch=16):
    "Images for every map (seeded per batch), cached in `path`."
    if path.exists(): return np.load(path)['images']
    out = np.concatenate([sdm_generate(net, cfg, labels[i:i + batch], sampler, steps, seed=i)
                          for i in range(0, len(labels), batch)])
    np.savez_compressed(path, images=out)
    return out


def correlation(a, b, labels):
    "Mean per-image Pearson correlation of two image stacks inside the sector."
    r = [np.corrcoef(x[l > 0].astype(float), y[l > 0].astype(float))[0, 1] for x, y, l in zip(a, b, labels)]
    return float(np.mean(r))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--work', default='runs/bench_objective')
    ap.add_argument('--models', nargs='+', default=[m[0] for m in MODELS[:4]], choices=[m[0] for m in MODELS],
                    help='models to train and compare (default: all but paper-2400)')
    a = ap.parse_args()
    work = Path(a.work)
    prof = STUDY_PROFILES['cpu']
    real = work / 'real'
    if not (real / 'manifest.csv').exists():
        make_phantom(real, prof['patients'], prof['size'], seed=0, test_patients=prof.get('test_patients'))
    imgs, labs, rows = load_split(real, ['train', 'val', 'test'], ['4CH'])
    real_h = region_histograms(imgs, labs)
    done = pd.read_csv(work / 'results.csv') if (work / 'results.csv').exists() else pd.DataFrame(columns=['model'])
    results = done[~done['model'].isin(a.models)].to_dict('records')     # rows of models not rerun now are kept
    shown = {}
    for name, objective, steps, min_snr in [m for m in MODELS if m[0] in a.models]:
        cfg = make_config('cpu', dict(objective=objective, steps=steps, min_snr=min_snr, seed=0, device='cpu'))
        t0 = time.perf_counter()
        train_sdm(real, work / name, 'sdm_4CH', '4CH', cfg)
        net, cfg, ck = load_sdm(work / name / 'checkpoints' / 'sdm_4CH.pt')
        print(f'{name}: trained ({time.perf_counter() - t0:.0f} s this call)', flush=True)
        for sampler, n in SAMPLERS:
            t0 = time.perf_counter()
            syn = samples(net, cfg, labs, sampler, n, work / name / f'samples_{sampler}-{n}.npz')
            t = grey_table(real_h, region_histograms(syn, labs)).set_index(['metric', 'structure'])
            auc = classifier_auc(imgs, syn, rows['patient'], rows['patient'])['auc']
            row = dict(model=name, objective=objective + (f' + min-SNR-{min_snr:g}' if min_snr else ''),
                       train_steps=steps, sampler=f'{sampler}-{n}',
                       **{f'grey_{r}': t.loc[('grey_mean', r), 'synthetic'] for r in REGIONS},
                       **{f'ratio_{r}': t.loc[('grey_mean', r), 'ratio'] for r in REGIONS},
                       contrast=t.loc[('contrast', 'myocardium-cavity'), 'synthetic'],
                       contrast_ratio=t.loc[('contrast', 'myocardium-cavity'), 'ratio'],
                       w1_mean=float(np.mean([t.loc[('w1', r), 'synthetic'] for r in REGIONS])),
                       auc=auc, corr_real=correlation(syn, imgs, labs))
            results.append(row)
            print(f"  {sampler}-{n}: ratios {[round(row[f'ratio_{r}'], 2) for r in REGIONS]}, contrast "
                  f"{row['contrast_ratio']:.2f}, AUC {auc:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        df = pd.DataFrame(results)      # the report after every model, so that a partial benchmark is readable
        df = df.sort_values('model', key=lambda c: c.map([m[0] for m in MODELS].index), kind='stable')
        df.to_csv(work / 'results.csv', index=False)
        sampler = f'samples_{STUDY_SAMPLER[0]}-{STUDY_SAMPLER[1]}.npz'
        shown = {m: np.load(work / m / sampler)['images'] for m in df['model'].unique() if (work / m / sampler).exists()}
        write_report(df, real_h, work, imgs, labs, shown)


def write_report(df, real_h, work, imgs, labs, shown):
    real_t = grey_table(real_h, real_h).set_index(['metric', 'structure'])
    lines = ['# Realism of SDM images: the training objective (`experiments/objective.py`)', '',
             f'{measured_on()}, CPU only. Built-in phantom, '
             'cpu profile (64 px, 52 patients of which 16 test), one SDM per row on the 4CH ED training frames, seed 0. '
             'Every model draws an image for each of the '
             f'{len(imgs)} 4CH label maps (all splits); they are compared with the real frames of the same maps by '
             '`echo_from_noise.realism` (what `efn realism` and every study run report).', '',
             'Real grey levels: ' + ', '.join(f'{r} {real_t.loc[("grey_mean", r), "real"]:.1f}' for r in REGIONS) +
             f'; myocardium - cavity contrast {real_t.loc[("contrast", "myocardium-cavity"), "real"]:.1f}.', '',
             '| objective | training steps | sampler | cavity | myocardium | LA | sector | contrast | mean W1 | '
             'classifier AUC | correlation with the real frame | targets met |', '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for _, r in df.iterrows():
        met = [(max(abs(r[f'ratio_{s}'] - 1) for s in REGIONS) <= 0.10, 'grey'),
               (abs(r['contrast_ratio'] - 1) <= 0.15, 'contrast'), (r['auc'] <= 0.75, 'AUC')]
        lines.append(f"| {r['objective']} | {r['train_steps']} | {r['sampler']} | " +
                     ' | '.join(f"{r[f'grey_{s}']:.1f} ({r[f'ratio_{s}']:.2f})" for s in REGIONS) +
                     f" | {r['contrast']:.1f} ({r['contrast_ratio']:.2f}) | {r['w1_mean']:.1f} | {r['auc']:.3f} | "
                     f"{r['corr_real']:.2f} | {', '.join(n for ok, n in met if ok) or 'none'} |")
    lines += ['', 'Grey levels are means over all pixels of the structure (0-255), with the ratio synthetic / real in '
              'brackets; contrast is myocardium minus cavity. AUC 0.5: the classifier cannot tell the images from real. Targets '
              '(issue 14): every structure within 10 % of its real grey level, contrast within 15 %, AUC at most 0.75. '
              f'Samples of each model ({STUDY_SAMPLER[0]}-{STUDY_SAMPLER[1]}, the study sampler) against the real '
              'frames: `experiments/objective_samples.png`.']
    report = write_lines(Path(__file__).with_name('objective.md'), lines, echo=False)
    if shown:
        from matplotlib.figure import Figure
        k = np.linspace(0, len(imgs) - 1, 6).astype(int)
        names = ['real'] + list(shown)
        fig = Figure(figsize=(1.6 * len(k), 1.7 * len(names)), layout='constrained')
        axs = fig.subplots(len(names), len(k), squeeze=False)
        for i, n in enumerate(names):
            stack = imgs if n == 'real' else shown[n]
            for j, idx in enumerate(k):
                axs[i, j].imshow(stack[idx], cmap='gray', vmin=0, vmax=255); axs[i, j].set_xticks([]); axs[i, j].set_yticks([])
            axs[i, 0].set_ylabel(n, fontsize=8)
        fig.savefig(Path(__file__).with_name('objective_samples.png'), dpi=80)
    print(report.read_text())


if __name__ == '__main__':
    sys.exit(main())

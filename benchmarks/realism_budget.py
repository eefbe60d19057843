"""Has the realism classifier learned? Its held-out AUC and training loss against its training steps and learning rate.

    python -m benchmarks.realism_budget REAL SYNTHETIC [--steps 300 600 1000 1500 2000] [--lr 1e-3 3e-3] [--seeds 0 10]

The study's own test (`realism.classifier_auc`: one classifier trained on half of the patients, scored on the other
half; the frames of `_compared_frames`, each inside its sector) for every steps x learning rate x seed. Each point is
a classifier trained from scratch: the training is deterministic for a seed, so the point at 600 steps is the one a
2000-step classifier passes through. Prints a markdown table: the AUC and the classifier's mean loss over its last 50
steps (0.69: it has learned nothing; near 0: it fits its training half). The budget of 2026-12-04 (600 steps at 3e-3)
was chosen from this curve on real CAMUS (benchmarks/realism_budget.md). The datasets stay where they are: nothing is
written. Numbers measured on CAMUS cite it (Leclerc et al., IEEE TMI 2019).
"""
from __future__ import annotations

import argparse

import numpy as np

from echo_from_noise.realism import _compared_frames, classifier_auc

from .common import measured_on


def auc_cells(runs: list, loss_digits: int = 3) -> str:
    "Three markdown cells of `classifier_auc` results: their mean AUC ± sd, each one's AUC, each one's training loss."
    auc = np.array([r['auc'] for r in runs])
    sd = f'{auc.std(ddof=1):.3f}' if len(auc) > 1 else '-'
    return (f'{auc.mean():.3f} ± {sd} | {", ".join(f"{a:.3f}" for a in auc)} | '
            + ', '.join(f'{r["train_loss"]:.{loss_digits}f}' for r in runs))


def curve(real, synthetic, steps=(300, 600, 1000, 1500, 2000), lrs=(1e-3, 3e-3), seeds=(0, 10, 20, 30)) -> list:
    "Markdown lines: one row per steps x lr, the mean AUC over `seeds` with its sd, each seed's AUC and loss."
    (ri, _, rr), (si, _, sr) = _compared_frames(real, synthetic)
    lines = [f'`{synthetic}` against `{real}`: {len(ri)} real, {len(si)} synthetic frames; {measured_on()}.', '',
             '| lr | steps | AUC (mean ± sd over seeds) | each seed | training loss, each seed |', '|---|---|---|---|---|']
    for lr in lrs:
        for n in steps:
            runs = [classifier_auc(ri, si, rr['patient'], sr['patient'], steps=n, lr=lr, seed=s) for s in seeds]
            lines.append(f'| {lr:g} | {n} | {auc_cells(runs, loss_digits=4)} |')
            print(lines[-1], flush=True)
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('real', help='a canonical dataset of real frames')
    ap.add_argument('synthetic', help='a canonical dataset of synthetic frames drawn from the real maps')
    ap.add_argument('--steps', nargs='+', type=int, default=[300, 600, 1000, 1500, 2000])
    ap.add_argument('--lr', nargs='+', type=float, default=[1e-3, 3e-3])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 10, 20, 30])
    a = ap.parse_args(argv)
    print('\n'.join(curve(a.real, a.synthetic, a.steps, a.lr, a.seeds)))


if __name__ == '__main__':
    main()

#!/usr/bin/env python
"""Classifier-free guidance against the SDM's adherence and grey levels, on the built-in phantom at the cpu profile.
Writes experiments/guidance.md.

Question (issue 14): at equal segmenter budgets the synthetic-only segmenter stays 1.2-1.5 Dice below the real one
(experiments/mix.md, demo.md) while the SDM's images already match the real grey levels; what is left looks like
label-image disagreement (adherence 95.5 at 0x deformation against about 96.7 for real frames). The SDM paper (Wang et
al. 2022) raised adherence with classifier-free guidance (eq. 1 of the echo paper, which dropped it for speed). A
guided model must also learn the unconditional score: trained with the label map dropped for a share `p_uncond` of
the samples. Screen, one view (4CH ED, as bench_objective's models; same data, seed, budget and sampler):
- v-1200: bench_objective's v SDM (p_uncond 0), unguided: the reference;
- v-1200-puncond0.2: the same with p_uncond 0.2 (the SDM paper's share), drawn at guidance s = 0, 1.5 and 3, and at
  s = 1.5 with the guided prediction rescaled to the conditional one's standard deviation per image, mixed 0.7 : 0.3
  with the unrescaled one (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed": their
  remedy for guidance's over-exposure); a wrapper here, not yet a sampler option;
- the same at s = 1.5 and 3 with the guidance term (conditional minus unconditional output) made zero-mean inside each
  label region of each image before it is added, so that guidance cannot move a region's mean level (a wrapper too).
Adherence: the adherence study's deformed 4CH test maps (0-3x), judged by RUN's "All real frames" segmenter (as
experiments/adherence_generators.py). Grey levels: every model draws the 4CH test maps undeformed; `realism.grey_table` against the
real test frames. Models are kept under WORK (default runs/bench_objective): an interrupted benchmark resumes.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from benchmarks.common import measured_on, write_report as write_lines
from experiments.adherence_generators import paired_by_strength
from echo_from_noise.adherence import adherence_study, summarize_adherence
from echo_from_noise.config import REAL_ROW, saved_study
from echo_from_noise.rundir import Run
from echo_from_noise.dataset import load_split
from echo_from_noise.realism import grey_table, region_histograms
from echo_from_noise.sdm import load_sdm, make_config, sdm_generate, train_sdm
from echo_from_noise.segment import load_segmenter
from echo_from_noise.synthesis import load_generator

OUT = Path(__file__).parent / 'guidance.md'
MODEL = 'v-1200-puncond0.2'
SCALES = (0.0, 1.5, 3.0)
RESCALED = (1.5, 0.7)       # guidance scale, rescale share
CENTRED = (1.5, 3.0)        # guidance scales with the guidance term zero-mean per label region


class RescaledGuidance(torch.nn.Module):
    "The network under classifier-free guidance with Lin et al.'s rescaling, as one plain call (sample with s = 0)."
    def __init__(self, net, s: float, phi: float):
        super().__init__(); self.net, self.s, self.phi = net, s, phi

    def forward(self, x, t, seg):
        out = self.net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([seg, torch.zeros_like(seg)])).float()
        (c, var), (u, _) = (o.chunk(2, dim=1) for o in out.chunk(2))
        g = c + self.s * (c - u)
        dims = tuple(range(1, g.ndim))
        r = g * c.std(dim=dims, keepdim=True) / g.std(dim=dims, keepdim=True).clamp(min=1e-8)
        return torch.cat([self.phi * r + (1 - self.phi) * g, var], dim=1)


class RegionCentredGuidance(torch.nn.Module):
    """The network under classifier-free guidance with the guidance term made zero-mean inside each label region of
    each image before it is added: guidance can sharpen what lies inside and across a region's edges but cannot move
    the region's mean level (in the v or eps output, hence in the x0 estimate, which is linear in it at a given t)."""
    def __init__(self, net, s: float):
        super().__init__(); self.net, self.s = net, s

    def forward(self, x, t, seg):
        out = self.net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([seg, torch.zeros_like(seg)])).float()
        (c, var), (u, _) = (o.chunk(2, dim=1) for o in out.chunk(2))
        m = seg.float()                                                   # (B, K, H, W) one-hot regions
        d = c - u                                                         # (B, 1, H, W)
        mean = (d * m).sum((2, 3), keepdim=True) / m.sum((2, 3), keepdim=True).clamp(min=1)   # (B, K, 1, 1)
        d = d - (m * mean).sum(1, keepdim=True)
        return torch.cat([c + self.s * d, var], dim=1)


def measure(run: Path, study, gens: dict):
    """Adherence of each generator {name: fn(label maps, seed)} on the adherence study's deformed 4CH test maps (judged by
    RUN's "All real frames" segmenter), and its grey levels on the undeformed 4CH test maps against the real frames."""
    model, _, norm = load_segmenter(Run(run).segmenter(REAL_ROW), 'cpu')
    real = Run(run).real(study.data)
    per, _ = adherence_study(real, {k: (lambda view, labs, seed, g=g: g(labs, seed)) for k, g in gens.items()},
                             (model, norm, 'cpu'), seed=study.seed, views=['4CH'])
    imgs, labs, _ = load_split(real, 'test', ['4CH'])
    real_h = region_histograms(imgs, labs)
    grey = {}
    for k, g in gens.items():
        syn = np.concatenate([g(labs[i:i + 16], i) for i in range(0, len(labs), 16)])
        grey[k] = grey_table(real_h, region_histograms(syn, labs))
    return per, summarize_adherence(per), grey


def tables(per, summ, grey: dict, ref: str) -> list:
    "Markdown lines: adherence per generator and strength, paired against generator `ref`, and the grey-level ratios."
    ks = sorted(per['strength'].unique())
    lines = ['## Adherence: mean Dice (%) ± sd over the maps', '',
             '| generator | ' + ' | '.join(f'{k:g}x' for k in ks) + ' |', '|---|' + '---|' * len(ks)]
    for g in grey:
        s = summ[summ['generator'] == g].sort_values('strength')
        lines.append(f'| {g} | ' + ' | '.join(f'{m:.1f} ± {d:.1f}' for m, d in zip(s['dice_mean'], s['dice_mean_sd'])) + ' |')
    lines += ['', f'## Paired against {ref} (Dice points; SE over patients; share of maps higher)', '',
              '| generator | ' + ' | '.join(f'{k:g}x' for k in ks) + ' |', '|---|' + '---|' * len(ks)]
    for g in grey:
        if g == ref: continue
        p = paired_by_strength(per, g, ref)
        lines.append(f'| {g} | ' + ' | '.join(f'{r.diff:+.1f} ± {r.se:.1f} ({r.wins:.0f} %)' for r in p.itertuples()) + ' |')
    lines += ['', '## Grey levels on the undeformed test maps (synthetic / real)', '',
              '| generator | cavity | myocardium | LA | sector | myocardium-cavity contrast |', '|---|---|---|---|---|---|']
    for g, t in grey.items():
        r = {(m, s): v for m, s, v in zip(t['metric'], t['structure'], t['ratio'])}
        lines.append(f'| {g} | ' + ' | '.join(f'{r[("grey_mean", s)]:.2f}' for s in ('cavity', 'myocardium', 'LA', 'sector'))
                     + f' | {r[("contrast", "myocardium-cavity")]:.2f} |')
    return lines


def write_report(out: Path, title: str, command: str, settings: str, per, summ, grey: dict, ref: str):
    "Write and print a `measure` report: its title, how it was made, then `tables` against generator `ref`."
    lines = [title, '', f'{measured_on()}; `python {command}` '
             f'reproduces it. {settings} {per["id"].nunique()} test maps of {per["patient"].nunique()} patients; see the '
             'script\'s docstring for the models.', ''] + tables(per, summ, grey, ref)
    write_lines(out, lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default='runs/demo_cg')
    ap.add_argument('--work', default='runs/bench_objective')
    a = ap.parse_args()
    run, work = Path(a.run), Path(a.work)
    ref = work / 'v-1200' / 'checkpoints' / 'sdm_4CH.pt'
    if not ref.exists(): sys.exit(f'missing {ref}: run experiments/objective.py first')
    cfg = make_config('cpu', dict(objective='v', steps=1200, seed=0, device='cpu', phases=('ED',), p_uncond=0.2))
    train_sdm(work / 'real', work / MODEL, 'sdm_4CH', '4CH', cfg)            # resumes; returns at once when done
    study = saved_study(yaml.safe_load((run / 'config.yaml').read_text())['study'])
    sampler, steps = study.sampler, study.synth_steps
    gens = {'v-1200, s = 0': load_generator(work / 'v-1200', '4CH', 'sdm', sampler, steps)[1]}
    for s in SCALES:
        gens[f'p_uncond 0.2, s = {s:g}'] = load_generator(work / MODEL, '4CH', 'sdm', sampler, steps, guidance=s)[1]
    net, mcfg, _ = load_sdm(work / MODEL / 'checkpoints' / 'sdm_4CH.pt')
    wrapped = RescaledGuidance(net, *RESCALED)
    gens[f'p_uncond 0.2, s = {RESCALED[0]:g}, rescaled {RESCALED[1]:g}'] = \
        lambda labs, seed: sdm_generate(wrapped, mcfg, labs, sampler, steps, 0.0, seed)
    for s in CENTRED:
        gens[f'p_uncond 0.2, s = {s:g}, region-centred'] = \
            lambda labs, seed, w=RegionCentredGuidance(net, s): sdm_generate(w, mcfg, labs, sampler, steps, 0.0, seed)
    per, summ, grey = measure(run, study, gens)
    write_report(OUT, '# Classifier-free guidance: adherence and grey levels (4CH ED, cpu profile, phantom)',
                 f'experiments/guidance.py --run {run} --work {work}',
                 f'Sampler {sampler}, {steps} steps (guided: two network calls per step).', per, summ, grey, 'v-1200, s = 0')

if __name__ == '__main__':
    main()

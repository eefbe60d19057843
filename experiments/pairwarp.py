#!/usr/bin/env python
"""An SDM trained on jointly deformed (image, label map) pairs, against the SDM's adherence to deformed maps.
Writes experiments/pairwarp.md.

Question (issue 14): the synthetic training maps are the real maps deformed at the paper's strength (nbs/04_augment),
and the SDM follows a deformed map less well than an undeformed one (adherence 95.1 at 0x, 90.2 at 1x,
experiments/guidance.md): it has only seen the real training maps' shapes. Drawing the maps at half the strength raised
the synthetic-only segmenter by about half a Dice point (experiments/strength.md), so label-image disagreement costs
Dice. Instead of deforming less, teach the SDM the deformations: warp each real training frame and its label map with
the same drawn deformation (the augmentation's own family and `source_coords`; the label map through `warp_labels`, so
the sector stays in place as in the synthetic maps; the image through bilinear resampling, a source point outside the
fan mirrored back across its edge so that no black is pulled inside it, then masked to the sector). A geometric warp of a B-mode frame is what the same heart at a slightly different shape and position looks
like, up to a small stretch of the speckle (at most a few pixels over a control cell here).

Models, one view (4CH ED, as bench_objective's; same cpu-profile SDM settings, seed and 1,200 steps):
- v-1200: bench_objective's v SDM on the real training frames (the reference);
- pairwarp-1x: the same on the real training frames plus COPIES warped copies of each, at strength 1.
Adherence (bench_guidance's measure: the adherence study's deformed 4CH test maps, judged by RUN's "All real frames"
segmenter) and grey levels on the undeformed test maps. Models and data are kept under WORK (default
runs/bench_objective): an interrupted benchmark resumes.
"""
import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import yaml
from scipy import ndimage as ndi

from benchmarks.common import paired, shown, splits, trained_dice
from experiments.guidance import measure, write_report
from echo_from_noise.augment import AugmentConfig, draw_deformation, source_coords, warp_labels
from echo_from_noise.config import saved_study
from echo_from_noise.dataset import DatasetWriter, load_frame, read_manifest
from echo_from_noise.labels import OUTSIDE
from echo_from_noise.sdm import make_config, train_sdm
from echo_from_noise.synthesis import load_generator

OUT = Path(__file__).parent / 'pairwarp.md'


def warp_pair(image, label, rng, cfg: AugmentConfig):
    """One drawn deformation applied to a frame and its 0-4 label map alike: (image, label map), the sector kept in place.
    Where an output pixel of the sector would sample outside the fan (a shrunk or shifted heart), its source point is
    mirrored back across the fan's edge (reflect padding, at the nearest sector pixel), so it gets speckle, not black."""
    n = label.shape[0]
    coords = source_coords(draw_deformation(rng, n, cfg), n)
    sector = label != OUTSIDE
    near = np.stack(ndi.distance_transform_edt(~sector, return_distances=False, return_indices=True)).astype(np.float64)
    r = np.clip(np.rint(coords), 0, n - 1).astype(int)
    edge = near[:, r[0], r[1]]                                      # nearest sector pixel of each source point
    outside = ~sector[r[0], r[1]]
    src = np.where(outside, 2 * edge - coords, coords)
    moved = ndi.map_coordinates(image.astype(np.float32), src, order=1, mode='mirror')
    return np.where(sector, np.clip(np.rint(moved), 0, 255), 0).astype(np.uint8), warp_labels(label, coords)


def warped_dataset(real: Path, out: Path, copies: int, strength: float, seed: int = 0, views=('4CH',),
                   splits=('train',), originals: bool = True, family: AugmentConfig = AugmentConfig()) -> Path:
    """`copies` jointly warped copies of each frame of `views` and `splits` of `real`, and the frames themselves when
    `originals` (a canonical dataset at `out`)."""
    if (out / 'manifest.csv').exists(): return out
    df = read_manifest(real)
    df = df[df['split'].isin(splits) & df['view'].isin(views)]
    cfg = family.scaled(strength)
    w = None
    for _, r in df.iterrows():
        img, lab = load_frame(real, r)
        w = w or DatasetWriter(out, lab.shape[0])
        if originals: w.add(r['id'], r['patient'], r['view'], r['phase'], r['split'], lab, img, source='real')
        for k in range(copies):
            im2, lab2 = warp_pair(img, lab, np.random.default_rng([seed, zlib.crc32(r['id'].encode()), k]), cfg)
            w.add(f'{r["id"]}_warp{k}', r['patient'], r['view'], r['phase'], r['split'], lab2, im2, source='pairwarp')
    w.commit()
    return out


def downstream(run: Path, work: Path, copies: int, strength: float, seeds=(0, 1)) -> list:
    """The study's question for pair-warped SDMs: both views' SDMs as RUN's (its settings, phases and data) but trained on
    the pair-warped frames, an image for every map of bench_strength's strength-1 maps (RUN's augmentation again), and
    the synthetic-only segmenter for `seeds`, paired per test image against bench_strength's strength-1 and real-only
    segmenters of the same seeds (run experiments/strength.py first)."""
    from echo_from_noise.segment import load_frames
    from echo_from_noise.synthesis import synthesize
    study = saved_study(yaml.safe_load((run / 'config.yaml').read_text())['study'])
    real, out = run / 'data' / 'real', work / f'pairwarp-{strength:g}x'
    data = warped_dataset(real, out / 'data', copies, strength, study.seed, views=('2CH', '4CH'))
    for v in ('2CH', '4CH'): train_sdm(data, out, f'sdm_{v}', v, study.sdm, progress=False)
    syn = out / 'synthetic'
    if not (syn / 'manifest.csv').exists():
        synthesize(out, work / 'maps_1', syn, study.sampler, study.synth_steps, study.guidance, study.synth_batch,
                   seed=study.seed, device='cpu', progress=False)
    test = load_frames(real, 'test')
    patients = np.asarray(test[2]['patient'])
    lines = ['| seed | synthetic only, pair-warped SDMs | minus strength 1 (study SDMs) | minus real only |', '|---|---|---|---|']
    for seed in seeds:
        d = trained_dice(out / f'seg_seed{seed}', *splits(syn), study.seg, seed, 'synthetic, pair-warped SDM', test)['dice']
        refs = [json.loads((work / ref / 'dice.json').read_text())['dice'] for ref in (f'seg_1_seed{seed}', f'seg_real_seed{seed}')]
        lines.append(f'| {seed} | {np.mean(d):.2f} | {shown(paired(np.subtract(d, refs[0]), patients))} | {shown(paired(np.subtract(d, refs[1]), patients))} |')
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default='runs/demo_cg')
    ap.add_argument('--work', default='runs/bench_objective')
    ap.add_argument('--copies', type=int, default=4)
    ap.add_argument('--strength', type=float, default=1.0)
    ap.add_argument('--downstream', metavar='RUN', help='instead: the synthetic-only segmenter of pair-warped SDMs on RUN '
                    '(a finished cpu-profile demo run; experiments/strength.py must have run on it, its WORK given as --work)')
    a = ap.parse_args()
    if a.downstream:
        lines = downstream(Path(a.downstream), Path(a.work), a.copies, a.strength)
        print('\n'.join(lines))
        with open(OUT, 'a') as f: f.write('\n## Downstream (`--downstream ' + a.downstream + '`)\n\n' + '\n'.join(lines) + '\n')
        return
    run, work = Path(a.run), Path(a.work)
    ref = work / 'v-1200' / 'checkpoints' / 'sdm_4CH.pt'
    if not ref.exists(): sys.exit(f'missing {ref}: run experiments/objective.py first')
    name = f'pairwarp-{a.strength:g}x'
    data = warped_dataset(work / 'real', work / f'real_{name}', a.copies, a.strength)
    cfg = make_config('cpu', dict(objective='v', steps=1200, seed=0, device='cpu', phases=('ED',)))
    train_sdm(data, work / f'v-1200-{name}', 'sdm_4CH', '4CH', cfg)          # resumes; returns at once when done
    study = saved_study(yaml.safe_load((run / 'config.yaml').read_text())['study'])
    sampler, steps = study.sampler, study.synth_steps
    gens = {'v-1200': load_generator(work / 'v-1200', '4CH', 'sdm', sampler, steps)[1],
            f'v-1200, {name}': load_generator(work / f'v-1200-{name}', '4CH', 'sdm', sampler, steps)[1]}
    per, summ, grey = measure(run, study, gens)
    write_report(OUT, '# SDM trained on jointly warped pairs: adherence and grey levels (4CH ED, cpu profile, phantom)',
                 f'experiments/pairwarp.py --run {run} --work {work} --copies {a.copies} --strength {a.strength:g}',
                 f'Sampler {sampler}, {steps} steps.', per, summ, grey, 'v-1200')

if __name__ == '__main__':
    main()

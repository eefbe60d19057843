#!/usr/bin/env python
"""How the "Real + SDM frames" segmenter mixes real and synthetic frames, judged on the real test split.
Writes experiments/mix.md.

Question (issue 14): in `make demo` the Real + SDM row fell below All real (95.3 vs 95.8). Pooled as they come, the
synthetic frames outnumber the real ones five to one (five deformed copies per map), in training and in the
validation set that picks the epoch, so the segmenter is fit and selected mostly for synthetic images while it is
tested on real ones. Arms, all with the study's cpu-profile segmenter settings, on a finished demo run (its real
phantom data and its SDM images), seeds 0 and 1:

- real only: the "All real frames" segmenter, trained again with the same seed (the baseline to beat);
- union: all frames pooled, validation on the pooled val frames (the study before `mix`; `--set mix=union`);
- union, real val: pooled training, the epoch chosen on the real val frames only;
- union, real val, 50 epochs: the same with as many optimiser steps as the balanced arm (a budget control);
- balanced: the real train frames repeated until they are as many as the synthetic ones, real val frames
  (`segment.mixed_frames`, the study's default since);
- real only, 300 epochs: the baseline with as many optimiser steps as the balanced arm (its budget control);
- synthetic only: the "All SDM frames" segmenter trained again (SDM train and val frames, as the study's row), and
  the same with 60 epochs: as many optimiser steps as the balanced arm and the real-only budget control.

Each segmenter is kept under WORK (default runs/bench_mix), so an interrupted benchmark resumes.
"""
import argparse
import json
import os
import platform
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.common import write_report
from echo_from_noise.evaluate import frame_metrics
from echo_from_noise.segment import SegConfig, load_frames, load_segmenter, segment, train_segmenter
from echo_from_noise.segment import mixed_frames

ARMS = [('real only', 'real', True, 30), ('union', 'union', False, 30), ('union, real val', 'union', True, 30),
        ('union, real val, 50 epochs', 'union', True, 50), ('balanced', 'balanced', True, 30),
        ('real only, 300 epochs', 'real', True, 300), ('synthetic only', 'synthetic', False, 30),
        ('synthetic only, 60 epochs', 'synthetic', False, 60)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--run', default='runs/demo', help='a finished cpu-profile study run (default: %(default)s)')
    ap.add_argument('--work', default='runs/bench_mix')
    ap.add_argument('--seeds', default='0,1')
    args = ap.parse_args()
    run, work = Path(args.run), Path(args.work)
    real, syn = run / 'data' / 'real', run / 'synthetic'
    parts = {s: (load_frames(d, 'train'), load_frames(d, 'val')) for s, d in (('real', real), ('synthetic', syn))}
    test = load_frames(real, 'test')
    rows = []
    for seed in [int(s) for s in args.seeds.split(',')]:
        for name, mix, real_val, epochs in ARMS:
            path = work / f'{name.replace(", ", "_").replace(" ", "-")}_seed{seed}'
            if not (path / 'result.json').exists():
                train, val = parts[mix] if mix in parts else mixed_frames(parts, mix)
                if real_val: val = parts['real'][1]
                cfg = SegConfig(size=test[0].shape[-1], seed=seed, device='cpu', min_steps=1000, epochs=epochs)
                s = train_segmenter(train[:2], val[:2], path / 'seg.pt', cfg, name, progress=False)
                model, _, norm = load_segmenter(path / 'seg.pt')
                dice = [frame_metrics(p, t)['dice_mean'] for p, t in zip(segment(model, norm, test[0]), test[1])]
                (path / 'result.json').write_text(json.dumps(dict(
                    dice=100 * float(np.mean(dice)), train=len(train[0]), val=len(val[0]), epochs=s['epochs'],
                    steps=s['epochs'] * -(-len(train[0]) // cfg.batch_size))))
            rows.append(dict(arm=name, seed=seed, **json.loads((path / 'result.json').read_text())))
    real_rows = json.loads((run / 'stages' / 'evaluate.json').read_text())['result']
    per = __import__('pandas').read_csv(run / 'metrics' / 'per_image.csv')
    all_real = 100 * per.loc[per['row'] == 'All real frames', 'dice_mean'].mean()
    lines = [f'# Real + SDM: how the two are mixed ({date.today()}, `experiments/mix.py --run {run}`)', '',
             f'{platform.machine()}, {os.cpu_count()} CPU cores. {__doc__.split(chr(10) + chr(10), 1)[1].rsplit(chr(10) + chr(10), 1)[0]}',
             '', f'Test: the {len(test[0])} real test frames of {run} (mean Dice over LV_endo, LV_epi, LA, %). The run\'s '
             f'own "All real frames" segmenter (seed of the run): {all_real:.1f}; its test images: {real_rows["test_images"]}.', '',
             '| arm | seed | train frames | val frames | epochs | optimiser steps | mean Dice (%) |', '|---|---|---|---|---|---|---|']
    lines += [f"| {r['arm']} | {r['seed']} | {r['train']} | {r['val']} | {r['epochs']} | {r['steps']} | {r['dice']:.2f} |"
              for r in rows]
    means = {a: np.mean([r['dice'] for r in rows if r['arm'] == a]) for a, *_ in ARMS}
    lines += ['', 'Mean over seeds: ' + '; '.join(f'{a} {m:.2f}' for a, m in means.items()) + '.', '']
    write_report(Path(__file__).with_name('mix.md'), lines)


if __name__ == '__main__':
    main()

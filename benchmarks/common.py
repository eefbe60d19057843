"""What every benchmark and experiment shares: the line that says where it was measured, the report writer, and the
paired statistics (a difference per test image, its standard error over test patients).

Run the scripts as modules from the repository root (`python -m benchmarks.bench_demo`,
`python -m experiments.strength --run runs/demo`), so that they import this module and each other as packages,
without editing `sys.path`.
"""
from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    "The CPU's model name (/proc/cpuinfo), or the machine type where that is not readable."
    info = Path('/proc/cpuinfo')
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def measured_on(device: str | None = None, torch_version: bool = True) -> str:
    """'Measured DATE on CPU (N CPU cores[, DEVICE]), torch VERSION': the first words of every report, so that any two
    numbers can be told apart by the machine that made them."""
    where = f'{cpu_model()} ({os.cpu_count()} CPU cores' + (f', {device}' if device else '') + ')'
    line = f'Measured {datetime.date.today()} on {where}'
    if torch_version:
        import torch
        line += f', torch {torch.__version__}'
    return line


def write_report(path, lines, echo: bool = True, keep_history: bool = False) -> Path:
    """Write a report's lines (markdown) to `path`, ending with a newline, and print them. `keep_history`: the old
    report's sections from its first `## ` heading on (measurements written by hand below the generated part, e.g.
    demo.md's earlier runs) stay after the new lines, which then may hold no `## ` heading of their own."""
    path = Path(path)
    text = '\n'.join(lines).rstrip('\n') + '\n'
    if keep_history and any(l.startswith('## ') for l in text.splitlines()):
        raise ValueError(f'{path}: keep_history keeps the sections from the first "## " heading on; the new report '
                         'must not have one')
    if echo: print(text, end='')
    if keep_history:
        old = path.read_text().splitlines(keepends=True) if path.exists() else []
        start = next((i for i, l in enumerate(old) if l.startswith('## ')), len(old))
        if start < len(old): text += '\n' + ''.join(old[start:])
    path.write_text(text)
    return path


def paired(diff, patients) -> dict:
    """Paired differences (one per test image, e.g. Dice points of model A minus model B on the same image): their
    mean, its standard error over the test patients' means (images of one patient are not independent), the share of
    images where the difference is positive, and the counts."""
    diff, patients = np.asarray(diff, float), np.asarray(patients)
    means = np.array([diff[patients == p].mean() for p in np.unique(patients)])
    se = float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float('nan')
    return dict(mean=float(diff.mean()), se=se, wins=float((diff > 0).mean() * 100), images=int(len(diff)),
                patients=int(len(means)))


def shown(p: dict) -> str:
    "A `paired` result as '+0.42 ± 0.13'."
    return f'{p["mean"]:+.2f} ± {p["se"]:.2f}'


def splits(dataset) -> tuple:
    "(train frames, val frames) of a canonical dataset, as `segment.load_frames` gives them."
    from echo_from_noise.segment import load_frames
    return load_frames(dataset, 'train'), load_frames(dataset, 'val')


def trained_dice(path, train, val, seg_cfg, seed: int, name: str, test) -> dict:
    """Train (once; kept at `path`) a segmenter with a study's settings `seg_cfg` and `seed` on `train`, `val` picking
    the epoch; {'dice': its Dice (%) per test frame of `test`, 'epochs', 'train': frames}. The experiments that compare
    training sets (strength, pairwarp) call it with the same seeds and test frames, so their results pair per image."""
    import dataclasses
    import json
    from echo_from_noise.evaluate import frame_metrics
    from echo_from_noise.segment import load_segmenter, segment, train_segmenter
    path = Path(path)
    if not (path / 'dice.json').exists():
        cfg = dataclasses.replace(seg_cfg, seed=seed, device='cpu')
        s = train_segmenter(train[:2], val[:2], path / 'seg.pt', cfg, name, progress=False)
        model, _, norm = load_segmenter(path / 'seg.pt')
        d = [100 * frame_metrics(p, t)['dice_mean'] for p, t in zip(segment(model, norm, test[0]), test[1])]
        (path / 'dice.json').write_text(json.dumps(dict(dice=d, epochs=s['epochs'], train=len(train[0]))))
    return json.loads((path / 'dice.json').read_text())

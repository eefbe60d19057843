"""benchmarks/bench_real_curve.py: the real-only segmenter trained on N train patients through the package's own
training and scoring, at the smoke profile on a small PNG dataset written here (no real data), and the curve's
arithmetic on numbers whose answer is known."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))   # `benchmarks` is a package at the repository root

from benchmarks import bench_real_curve as brc  # noqa: E402
from echo_from_noise.cli import main as efn  # noqa: E402


def test_curve_recovers_the_gain_per_doubling_and_pairs_by_image():
    ids = [f'i{k}' for k in range(6)]
    patients = ['a', 'a', 'b', 'b', 'c', 'c']
    base = np.array([0.80, 0.82, 0.85, 0.79, 0.90, 0.88])
    per = {n: pd.DataFrame(dict(id=ids, patient=patients, dice_mean=base + 0.01 * np.log2(n / 64)))
           for n in (16, 32, 64)}          # exactly one Dice point per doubling on every image
    c = brc.curve(per)
    assert c['per_doubling'] == pytest.approx(1.0) and c['per_doubling_se'] == pytest.approx(0.0, abs=1e-9)
    assert c['points'][64]['minus_most']['mean'] == pytest.approx(0.0)
    assert c['points'][16]['minus_most']['mean'] == pytest.approx(-2.0)
    assert c['points'][16]['minus_most']['patients'] == 3
    assert c['points'][32]['dice'] == pytest.approx(100 * base.mean() - 1.0)


def test_real_only_curve_trains_scores_and_reads_finished_runs_again(tmp_path, monkeypatch):
    from fixtures import write_pngs
    names = [f'patient{p:04d}_4CH_{ph}' for p in range(1, 31) for ph in ('ED', 'ES')]
    src = write_pngs(tmp_path / 'pngs', names=names, h=40, w=48)
    assert efn(['prepare', 'pngs', str(src), str(tmp_path / 'ds'), '--size', '32', '--test-share', '0.2',
                '--val-share', '0.2']) == 0
    monkeypatch.setattr(brc, 'REPORT', tmp_path / 'real_curve.md')
    monkeypatch.setattr(brc, 'RECORD', tmp_path / 'real_curve.json')
    args = [str(tmp_path / 'ds'), '--patients', '8', '16', '--seg-seeds', '1', '--profile', 'smoke',
            '--work', str(tmp_path / 'work')]
    brc.main(args)
    rec = json.loads((tmp_path / 'real_curve.json').read_text())['smoke profile, 32 px']   # the default label
    assert rec['train_patients_in_dev'] == {'8': 7, '16': 14}      # every eighth kept patient chooses the epoch
    assert rec['points']['16']['minus_most']['mean'] == 0.0 and rec['test_images'] == 2 * 6   # the 6 val patients
    assert all(0 <= p['dice'] <= 100 for p in rec['points'].values())
    ckpt = tmp_path / 'work' / 'curve' / 'smoke-ds' / 'p8-seg0' / 'segmenter.pt'
    assert ckpt.exists() and '| 8 | 7 |' in (tmp_path / 'real_curve.md').read_text()
    assert rec['size'] == 32 and rec['settings'] == []
    assert rec['per_doubling_se'] is None and 'two points: no SE' in (tmp_path / 'real_curve.md').read_text()
    stamp = ckpt.stat().st_mtime_ns
    brc.main(args + ['--set', 'size=32', '--label', 'again'])      # other settings, another label: both kept
    assert (tmp_path / 'work' / 'curve' / 'smoke-size=32-ds' / 'p8-seg0' / 'segmenter.pt').exists()   # its own runs
    record = json.loads((tmp_path / 'real_curve.json').read_text())
    assert list(record) == ['smoke profile, 32 px', 'again'] and record['again']['settings'] == ['size=32']
    assert '## again' in (tmp_path / 'real_curve.md').read_text()
    brc.main(args)                                                   # finished runs are read, not trained again
    assert ckpt.stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / 'real_curve.json').read_text())['smoke profile, 32 px']['points'] == rec['points']
    with pytest.raises(SystemExit, match=r'trains at 64 px.*--set size=32'):           # a dataset of another size is refused
        brc.main(args[:1] + ['--patients', '8', '16', '--seg-seeds', '1', '--work', str(tmp_path / 'w2')])

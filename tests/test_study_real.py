"""The study on a dataset made by `efn prepare`, run from its own folder with relative paths. A file of its own so
that `pytest -n 2 --dist loadfile` runs it beside the phantom study instead of after it."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd

from echo_from_noise.dataset import read_manifest


def test_paper_on_prepared_real_data(tmp_path):
    "The same command runs the study on a dataset from `efn prepare` (here PNG folders) instead of the phantom."
    from fixtures import write_pngs
    names = [f'patient{p:04d}_{v}_{ph}' for p in range(1, 9) for v in ('2CH', '4CH') for ph in ('ED', 'ES')]
    src = write_pngs(tmp_path / 'pngs', names=names, h=72, w=96)
    efn = [sys.executable, '-m', 'echo_from_noise']
    r = subprocess.run(efn + ['prepare', 'pngs', str(src), str(tmp_path / 'ds'), '--size', '32', '--test-share', '0.25',
                              '--val-share', '0.2'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    # relative paths, as in the README's `--data data/camus`: resolved before the stages run in the run directory
    r = subprocess.run(efn + ['paper', '--profile', 'smoke', '--data', 'ds', '--out', 'run', '--no-cyclegan'], cwd=tmp_path,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    per = pd.read_csv(tmp_path / 'run/metrics/per_image.csv')
    test_ids = set(read_manifest(tmp_path / 'ds').query("split == 'test'")['id'])
    assert set(per['id']) == test_ids and 'All real frames' in set(per['row'])
    assert f'dataset {tmp_path / "ds"}' in (tmp_path / 'run/table1.md').read_text()
    assert not (tmp_path / 'run/data/real').exists()           # the user's data is read in place, not copied

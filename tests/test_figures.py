"""Library figures never switch matplotlib's backend: a notebook that trains an SDM or draws the study's figures keeps
showing its own figures inline afterwards."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
import matplotlib, numpy as np, pandas as pd, sys
from pathlib import Path
matplotlib.use('module://matplotlib_inline.backend_inline')      # what a Jupyter kernel runs with
before = matplotlib.get_backend()
from echo_from_noise.phantom import make_phantom
from echo_from_noise.sdm import make_config, train_sdm
from echo_from_noise.evaluate import figure3
from echo_from_noise.adherence import plot_adherence, figure4, figure5
from echo_from_noise.editor import render_result
out = Path(sys.argv[1])
ph = make_phantom(out / 'ph', patients=3, size=32, seed=0, workers=1, progress=False)
train_sdm(ph, out / 'run', 'sdm_4CH', '4CH', make_config('smoke', dict(steps=2, save_every=100)), progress=False)
assert (out / 'run/metrics/sdm_4CH_loss.png').stat().st_size > 0
img, lab = np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8); lab[8:20, 8:20] = 1
paths = figure3([('4CH ED', img, lab)], out / 'fig3')
figure4([('map', img, lab)], out / 'fig4')
figure5([dict(generator='SDM', strength=k, image=img, label=lab, id='a') for k in (0, 1)], out / 'fig5')
rows = [dict(generator='SDM', strength=k, **{f'dice_{n}': 0.9 for n in ('LV_endo', 'LV_epi', 'LA', 'mean')})
        for k in (0, 1) for _ in range(2)]
plot_adherence(pd.DataFrame(rows), out / 'adh')
png = render_result(img, lab)
assert png[:4] == b'\x89PNG' and all(p.stat().st_size > 0 for p in paths)
print('BACKEND', before, matplotlib.get_backend())
'''


def test_training_and_figures_leave_the_backend_alone(tmp_path):
    r = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(l for l in r.stdout.splitlines() if l.startswith('BACKEND'))
    _, before, after = line.split()
    assert 'inline' in before and after == before
    for f in ('fig3.png', 'fig3.pdf', 'fig4.png', 'fig5.png', 'adh.png'): assert (tmp_path / f).stat().st_size > 0

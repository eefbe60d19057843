"""What does the realism classifier see? Its AUC after both sets are changed the same way, and the fine texture.

    python -m benchmarks.realism_probe REAL SYNTHETIC [--probes none blur1 ...] [--seeds 0 10 20]

The realism AUC says how well a small CNN tells real from synthetic frames, not what it uses. Each probe changes every
frame of both sets in one way first (inside its sector; 0 outside, as the study's test), then trains the study's own
classifier (`realism.classifier_auc`, the default budget) from scratch: what a probe removes, the classifier can no
longer use. If blurring both sets by 1 px brings the AUC near 0.5, the sets differ in their finest texture and not in
anatomy or brightness; if shuffling the pixels of each structure does, the grey-level histograms per structure match.
A second table reads the finest texture directly: the 1-px high-pass residual's sd and its correlation between
neighbouring pixels (along rows, along columns), and the power spectrum of 16-px patches inside the sector, synthetic
over real, in bands of spatial frequency. Findings on real CAMUS: benchmarks/realism_probe.md. Nothing is written;
numbers measured on CAMUS cite it (Leclerc et al., IEEE TMI 2019).
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage

from echo_from_noise.realism import _compared_frames, classifier_auc

from .common import measured_on
from .realism_budget import auc_cells


def _blur(s): return lambda x, lab, rng: ndimage.gaussian_filter(x, s)


def _highpass(x): return x - ndimage.gaussian_filter(x, 1.0)   # the 1-px high-pass residual


def _zscore(x, lab, rng):
    v = x[lab > 0]
    return (x - v.mean()) / (v.std() + 1e-6) * 40 + 100


def _equalize(x, lab, rng):
    m = lab > 0
    ranks = np.argsort(np.argsort(x[m] + rng.uniform(0, 1e-3, m.sum())))
    out = np.zeros_like(x)
    out[m] = ranks / max(m.sum() - 1, 1) * 255
    return out


def _per_structure(fn):
    def probe(x, lab, rng):
        out = x.copy()
        for k in np.unique(lab[lab > 0]): out[lab == k] = fn(x[lab == k], rng)
        return out
    return probe


# name: (what it keeps, the change to a float frame given its label map and a random generator)
PROBES = {
    'none': ('everything: the study\'s AUC', lambda x, lab, rng: x),
    'blur1': ('all but the finest texture (Gaussian blur, sigma 1 px)', _blur(1.0)),
    'blur2': ('coarse content only (sigma 2 px)', _blur(2.0)),
    'highpass1': ('the finest texture only (the frame minus its 1-px blur)', lambda x, lab, rng: _highpass(x) + 128),
    'zscore': ('all but each frame\'s brightness and contrast (mean and sd in the sector made equal)', _zscore),
    'equalize': ('all but each frame\'s grey-level histogram (ranks in the sector)', _equalize),
    'shuffle': ('each structure\'s grey-level histogram, no spatial pattern (pixels shuffled within each structure)',
                _per_structure(lambda v, rng: rng.permutation(v))),
    'means': ('each structure\'s mean grey only', _per_structure(lambda v, rng: np.full_like(v, v.mean()))),
}


def probed(images, labels, name: str, seed: int = 0) -> np.ndarray:
    "uint8 frames of `images` changed by probe `name` (`PROBES`), 0 outside each frame's sector."
    rng, fn = np.random.default_rng(seed), PROBES[name][1]
    out = np.stack([fn(x.astype(np.float32), lab, rng) for x, lab in zip(images, labels)])
    return np.clip(np.round(np.where(labels > 0, out, 0)), 0, 255).astype(np.uint8)


def fine_texture(images, labels, patch: int = 16) -> dict:
    """The 1-px high-pass residual inside the sector eroded by 3 px (`hp_sd`; `corr_rows`, `corr_cols`: the correlation
    of neighbours along a row and along a column) and the mean power spectrum of `patch`-px patches wholly inside the
    sector (`power`, patch x patch, zero frequency in the middle)."""
    sd, rows, cols, power, n = [], [], [], np.zeros((patch, patch)), 0
    window = np.outer(np.hanning(patch), np.hanning(patch))
    for x, lab in zip(images.astype(np.float32), labels):
        inner = ndimage.binary_erosion(lab > 0, iterations=3)
        if inner.sum() < 16: continue
        hp = _highpass(x)
        sd.append(hp[inner].std())
        for corr, a, b, m in ((rows, hp[:, :-1], hp[:, 1:], inner[:, :-1] & inner[:, 1:]),
                              (cols, hp[:-1], hp[1:], inner[:-1] & inner[1:])):
            corr.append(np.corrcoef(a[m], b[m])[0, 1])
        inside = ndimage.binary_erosion(lab > 0)
        for i in range(0, x.shape[0] - patch + 1, patch // 2):
            for j in range(0, x.shape[1] - patch + 1, patch // 2):
                if inside[i:i + patch, j:j + patch].all():
                    p = x[i:i + patch, j:j + patch]
                    power += np.abs(np.fft.fft2((p - p.mean()) * window)) ** 2; n += 1
    if not sd: raise ValueError('fine_texture: no frame has 16 pixels 3 px inside its sector')
    return dict(hp_sd=float(np.mean(sd)), corr_rows=float(np.mean(rows)), corr_cols=float(np.mean(cols)),
                power=np.fft.fftshift(power / max(n, 1)), patches=n)


BANDS = ((0.1, 0.25), (0.35, 0.5), (0.6, 0.75), (0.85, 1.0), (1.1, 1.4))   # in Nyquist: rings 1-2 ... 9-11 of 16 px


def band_ratios(synthetic_power, real_power, bands=BANDS) -> list:
    """Synthetic over real power of two `fine_texture` spectra in rings of `bands` (radius as a share of the Nyquist
    frequency, half the patch in cycles per patch; corners beyond 1); NaN where a set had no patch inside its sectors."""
    p = synthetic_power.shape[0]
    fy, fx = np.meshgrid(np.arange(p) - p // 2, np.arange(p) - p // 2, indexing='ij')
    r = np.hypot(fy, fx).round() / (p / 2)
    ring = lambda power, a, b: power[(r >= a - 1e-9) & (r <= b + 1e-9)].sum()
    return [float(ring(synthetic_power, a, b) / ring(real_power, a, b)) if ring(real_power, a, b) > 0 else float('nan')
            for a, b in bands]


def probe(real, synthetic, probes=tuple(PROBES), seeds=(0, 10, 20), **classifier) -> list:
    "Markdown lines: one row per probe (the AUC over `seeds`, each seed's, the training loss), then the fine texture."
    unknown = [name for name in probes if name not in PROBES]
    if unknown: raise ValueError(f'unknown probe {unknown[0]!r}; use one of {list(PROBES)}')
    (ri, rl, rr), (si, sl, sr) = _compared_frames(real, synthetic)
    lines = [f'`{synthetic}` against `{real}`: {len(ri)} real, {len(si)} synthetic frames; {measured_on()}.', '',
             '| probe | what the classifier still sees | AUC (mean ± sd over seeds) | each seed | training loss |',
             '|---|---|---|---|---|']
    for name in probes:
        a, b = probed(ri, rl, name), probed(si, sl, name, seed=1)
        runs = [classifier_auc(a, b, rr['patient'], sr['patient'], seed=s, **classifier) for s in seeds]
        lines.append(f'| {name} | {PROBES[name][0]} | {auc_cells(runs)} |')
        print(lines[-1], flush=True)
    patch = max(8, ri.shape[1] // 4)     # 16 px at 64 px
    tr, ts = fine_texture(ri, rl, patch), fine_texture(si, sl, patch)
    bands = band_ratios(ts['power'], tr['power'])
    lines += ['', f'| set | 1-px high-pass sd | neighbour correlation along rows, columns | power synthetic / real in '
              f'rings of {", ".join(f"{a:g}-{b:g}" for a, b in BANDS)} x Nyquist ({patch}-px patches) |', '|---|---|---|---|',
              f'| real | {tr["hp_sd"]:.2f} | {tr["corr_rows"]:.2f}, {tr["corr_cols"]:.2f} | - |',
              f'| synthetic | {ts["hp_sd"]:.2f} | {ts["corr_rows"]:.2f}, {ts["corr_cols"]:.2f} | '
              + ', '.join(f'{v:.2f}' for v in bands) + ' |']
    print('\n'.join(lines[-4:]), flush=True)
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('real', help='a canonical dataset of real frames')
    ap.add_argument('synthetic', help='a canonical dataset of synthetic frames drawn from the real maps')
    ap.add_argument('--probes', nargs='+', default=list(PROBES), choices=list(PROBES))
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 10, 20])
    ap.add_argument('--steps', type=int, default=None, help="the classifier's training steps (default: the study's)")
    a = ap.parse_args(argv)
    print('\n'.join(probe(a.real, a.synthetic, a.probes, a.seeds, **({'steps': a.steps} if a.steps else {}))))


if __name__ == '__main__':
    main()

"""Small fixtures in every source format, written by the tests themselves (no data is downloaded)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def fan(h: int, w: int, angle_deg: float = 80.0) -> np.ndarray:
    "An ultrasound fan of h x w pixels with its apex at the top centre."
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    ay, ax = 0.03 * h, 0.5 * w
    r = np.hypot((y - ay) / h, (x - ax) / w)
    th = np.degrees(np.arctan2((x - ax) / w, (y - ay) / h))
    return (r <= 0.93) & (np.abs(th) <= angle_deg / 2) & (y >= ay)


def ellipse(h, w, cy, cx, ry, rx):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return ((y - cy * h) / (ry * h)) ** 2 + ((x - cx * w) / (rx * w)) ** 2 <= 1


def camus_gt(h: int, w: int, phase: str = 'ED') -> np.ndarray:
    "A CAMUS-style ground truth (0 background, 1 LV cavity, 2 myocardium, 3 atrium): LV on top, LA below."
    k = 1.0 if phase == 'ED' else 0.85
    cav = ellipse(h, w, 0.40, 0.5, 0.18 * k, 0.09 * k)
    outer = ellipse(h, w, 0.40, 0.5, 0.18 * k + 0.04, 0.09 * k + 0.04)
    mitral = 0.40 * h + 0.18 * k * h
    rows = np.arange(h)[:, None] + 0.5
    gt = np.zeros((h, w), np.uint8)
    gt[outer & (rows < mitral)] = 2
    gt[cav & (rows < mitral)] = 1
    gt[ellipse(h, w, 0.40 + 0.18 * k + 0.10, 0.5, 0.09, 0.10) & (rows >= mitral)] = 3
    return gt


def echo_image(gt: np.ndarray, rng, zero_share: float = 0.1) -> np.ndarray:
    "A speckled image in the fan: bright myocardium, dark blood pools, some zero-valued speckle."
    h, w = gt.shape
    sector = fan(h, w)
    base = np.where(gt == 2, 200, np.where((gt == 1) | (gt == 3), 25, 110)).astype(np.float32)
    img = base * rng.rayleigh(1.0, (h, w)) / 1.25
    img = np.clip(img, 1, 255)
    img[rng.random((h, w)) < zero_share] = 0
    img[~sector] = 0
    return img.astype(np.uint8)


def write_camus_mhd(root: Path, train=('patient0001', 'patient0002', 'patient0003'),
                    testing=('patient0451', 'patient0452'), h: int = 128, w: int = 96, seed: int = 0) -> Path:
    "The CAMUS 2019 layout: training/ and testing/ with .mhd/.raw image and _gt files."
    import SimpleITK as sitk
    rng = np.random.default_rng(seed)
    for group, pats in (('training', train), ('testing', testing)):
        for p in pats:
            d = root / group / p
            d.mkdir(parents=True, exist_ok=True)
            for view in ('2CH', '4CH'):
                for phase in ('ED', 'ES'):
                    gt = camus_gt(h, w, phase)
                    sitk.WriteImage(sitk.GetImageFromArray(echo_image(gt, rng)), str(d / f'{p}_{view}_{phase}.mhd'))
                    sitk.WriteImage(sitk.GetImageFromArray(gt), str(d / f'{p}_{view}_{phase}_gt.mhd'))
            # sequences exist in the real release and must be ignored
            sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, h, w), np.uint8)), str(d / f'{p}_4CH_sequence.mhd'))
    return root


def write_camus_nifti(root: Path, splits=None, h: int = 112, w: int = 96, seed: int = 0) -> Path:
    "The public nifti release: database_nifti/patientNNNN/*.nii.gz (x first, as NIfTI stores it) and database_split/."
    import nibabel as nib
    splits = splits or {'training': ['patient0001', 'patient0002', 'patient0003'], 'validation': ['patient0004'],
                        'testing': ['patient0005']}
    rng = np.random.default_rng(seed)
    (root / 'database_split').mkdir(parents=True, exist_ok=True)
    for group, pats in splits.items():
        (root / 'database_split' / f'subgroup_{group}.txt').write_text('\n'.join(pats) + '\n')
        for p in pats:
            d = root / 'database_nifti' / p
            d.mkdir(parents=True, exist_ok=True)
            for view in ('2CH', '4CH'):
                for phase in ('ED', 'ES'):
                    gt = camus_gt(h, w, phase)
                    nib.save(nib.Nifti1Image(echo_image(gt, rng).T.copy(), np.eye(4)), str(d / f'{p}_{view}_{phase}.nii.gz'))
                    nib.save(nib.Nifti1Image(gt.T.copy(), np.eye(4)), str(d / f'{p}_{view}_{phase}_gt.nii.gz'))
    return root


def write_pngs(root: Path, names=('patient0001_4CH_ED', 'patient0001_4CH_ES', 'patient0002_2CH_ED',
                                  'patient0003_2CH_ES'), gray_levels: bool = False, gt_suffix: str = '_gt',
               h: int = 90, w: int = 120, seed: int = 0) -> Path:
    "An images/ and masks/ folder pair; masks as indices or as gray levels 0/85/170/255."
    rng = np.random.default_rng(seed)
    (root / 'images').mkdir(parents=True, exist_ok=True)
    (root / 'masks').mkdir(parents=True, exist_ok=True)
    for n in names:
        gt = camus_gt(h, w, 'ES' if 'ES' in n else 'ED')
        cv2.imwrite(str(root / 'images' / f'{n}.png'), echo_image(gt, rng))
        cv2.imwrite(str(root / 'masks' / f'{n}{gt_suffix}.png'), gt * 85 if gray_levels else gt)
    return root


def chords(hw_max: float, cx: float = 56.0, top: float = 22.0, bottom: float = 82.0) -> pd.DataFrame:
    "21 tracing lines: the long axis, then 20 chords across a cavity of maximal half-width `hw_max`."
    ys = np.linspace(top + 1.5, bottom - 1.5, 20)
    hw = hw_max * np.sqrt(np.clip(np.sin(np.pi * (ys - top) / (bottom - top)), 0, None))
    rows = [(cx, top, cx, bottom)] + [(cx - a, y, cx + a, y) for a, y in zip(hw, ys)]
    return pd.DataFrame(rows, columns=['X1', 'Y1', 'X2', 'Y2'])


def write_echonet(root: Path, n: int = 3, n_frames: int = 12, traced=(3, 8), split=('TRAIN', 'VAL', 'TEST'),
                  seed: int = 0, untraced: int = 0) -> Path:
    "EchoNet-Dynamic: Videos/*.avi (112x112 MJPG), FileList.csv, VolumeTracings.csv (ED traced with a wider LV)."
    rng = np.random.default_rng(seed)
    (root / 'Videos').mkdir(parents=True, exist_ok=True)
    fl, vt = [], []
    sector = fan(112, 112)
    for i in range(n + untraced):
        name = f'0X{i:04X}'
        fl.append(dict(FileName=name, EF=60.0, FrameHeight=112, FrameWidth=112, FPS=50,
                       NumberOfFrames=n_frames, Split=split[i % len(split)]))
        wr = cv2.VideoWriter(str(root / 'Videos' / f'{name}.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 50, (112, 112))
        for f in range(n_frames):
            img = np.where(sector, 120, 0).astype(np.uint8)
            wr.write(np.repeat(img[..., None], 3, -1))
        wr.release()
        if i >= n: continue
        # ES is listed first, as in EchoNet's files; the loader must use the areas, not the order
        for frame, hw in ((traced[0], 9.0), (traced[1], 14.0)):
            df = chords(hw).assign(FileName=f'{name}.avi', Frame=frame)
            vt.append(df[['FileName', 'X1', 'Y1', 'X2', 'Y2', 'Frame']])
    pd.DataFrame(fl).to_csv(root / 'FileList.csv', index=False)
    pd.concat(vt).to_csv(root / 'VolumeTracings.csv', index=False)
    return root


def images_by_id(dataset) -> dict:
    "{frame id: image as int array} of a canonical dataset, to compare two datasets drawn from the same maps."
    from echo_from_noise.dataset import load_frame, read_manifest
    return {row['id']: load_frame(dataset, row)[0].astype(int) for _, row in read_manifest(dataset).iterrows()}

"""The loaders: every format into the canonical layout, checked on real values, and every bad input."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from echo_from_noise.base import DataError
from echo_from_noise.dataset import load_frame, read_manifest
from echo_from_noise.labels import LabelError, apply_sector
from echo_from_noise.echonet import find_echonet
from echo_from_noise.prepare import (Skips, find_camus, find_pngs, parse_mask_values, parse_name,
                                     write_frames)

from fixtures import camus_gt, fan, write_camus_mhd, write_camus_nifti, write_echonet, write_pngs


def labels_of(ds: Path) -> dict:
    df = read_manifest(ds)
    return {r['id']: load_frame(ds, r) for _, r in df.iterrows()}


def no_leftovers(parent: Path):
    "No hidden temporary dataset folders left next to the output."
    return not [p for p in parent.iterdir() if p.name.startswith('.') and 'partial' in p.name]


# ---------------------------------------------------------------- CAMUS 2019 (.mhd/.raw)

def test_camus_mhd_values_splits_and_orientation(tmp_path):
    src = write_camus_mhd(tmp_path / 'camus', h=128, w=96)
    frames = find_camus(src)
    assert len(frames) == 5 * 4  # sequences ignored
    write_frames(frames, tmp_path / 'out', size=64, progress=False, source='camus', seed=3)
    df = read_manifest(tmp_path / 'out')
    assert len(df) == 20 and list(df.columns[:8]) == ['id', 'patient', 'view', 'phase', 'split', 'image', 'label', 'source']
    # official testing patients are the test split; the other three are train/val, no patient in two splits
    split = df.groupby('patient')['split'].agg(set)
    assert split['patient0451'] == {'test'} and split['patient0452'] == {'test'}
    assert all(len(s) == 1 for s in split)
    assert {next(iter(split[p])) for p in ('patient0001', 'patient0002', 'patient0003')} <= {'train', 'val'}
    assert (df['orig_height'] == '128').all() and (df['orig_width'] == '96').all()
    # label values after conversion: the 0-3 ground truth, clipped to the sector, class 4 in the rest of it
    gt = camus_gt(128, 96, 'ED')
    expected = cv2.resize(apply_sector(gt, fan(128, 96)), (64, 64), interpolation=cv2.INTER_NEAREST)
    img, lab = labels_of(tmp_path / 'out')['patient0001_4CH_ED']
    assert img.shape == lab.shape == (64, 64) and lab.dtype == np.uint8
    assert set(np.unique(lab)) == {0, 1, 2, 3, 4}
    for c in (1, 2, 3):  # structures come through exactly (they lie well inside the sector)
        assert ((lab == c) == (expected == c)).mean() > 0.995
    assert ((lab > 0) == (expected > 0)).mean() > 0.97  # the sector recovered from the speckled image
    # LV above LA, as in the source
    rows = np.arange(64)[:, None].repeat(64, 1)
    assert rows[lab == 1].mean() < rows[lab == 3].mean()


def test_camus_views_phases_and_split_file(tmp_path):
    src = write_camus_mhd(tmp_path / 'camus', train=('patient0001', 'patient0002'), testing=('patient0451',))
    frames = find_camus(src, views=['4CH'], phases=['ED'])
    assert sorted(f.id for f in frames) == ['patient0001_4CH_ED', 'patient0002_4CH_ED', 'patient0451_4CH_ED']
    sf = tmp_path / 'split.csv'
    sf.write_text('patient,split\npatient0001,test\npatient0451,train\n')
    write_frames(frames, tmp_path / 'out', size=32, split_file=sf, progress=False)
    df = read_manifest(tmp_path / 'out').set_index('patient')
    assert df.loc['patient0001', 'split'] == 'test' and df.loc['patient0451', 'split'] == 'train'


def test_camus_missing_gt_and_truncated_raw(tmp_path):
    src = write_camus_mhd(tmp_path / 'camus', train=('patient0001', 'patient0002'), testing=())
    gone = src / 'training/patient0001/patient0001_2CH_ES_gt.mhd'
    gone.unlink()
    with pytest.raises(DataError, match='patient0001_2CH_ES.mhd: no ground truth'):
        find_camus(src)
    skips = Skips(True)
    frames = find_camus(src, skips=skips)
    assert len(frames) == 7 and len(skips.items) == 1
    raw = src / 'training/patient0002/patient0002_4CH_ED.raw'
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(DataError, match='patient0002_4CH_ED.mhd: cannot read'):
        write_frames(frames, tmp_path / 'out', size=32, progress=False)
    assert not (tmp_path / 'out').exists() and no_leftovers(tmp_path)
    skips = Skips(True)
    rep = write_frames(frames, tmp_path / 'out', size=32, progress=False, skips=skips)
    assert rep.written == 6 and len(rep.skipped) == 1 and 'patient0002_4CH_ED' in rep.skipped[0]


def test_camus_gt_with_bad_values(tmp_path):
    import SimpleITK as sitk
    src = write_camus_mhd(tmp_path / 'camus', train=('patient0001',), testing=())
    p = src / 'training/patient0001/patient0001_4CH_ES_gt.mhd'
    gt = camus_gt(128, 96, 'ES'); gt[5, 5] = 7
    sitk.WriteImage(sitk.GetImageFromArray(gt), str(p))
    with pytest.raises(LabelError, match=r'patient0001_4CH_ES_gt.mhd: unexpected label values \[7\]'):
        write_frames(find_camus(src), tmp_path / 'out', size=32, progress=False)
    assert not (tmp_path / 'out').exists()


# ---------------------------------------------------------------- CAMUS public nifti

def test_camus_nifti_orientation_and_split_lists(tmp_path):
    src = write_camus_nifti(tmp_path / 'nifti', h=112, w=96)
    frames = find_camus(src)
    assert len(frames) == 20
    write_frames(frames, tmp_path / 'out', size=48, progress=False)
    df = read_manifest(tmp_path / 'out')
    sp = df.groupby('patient')['split'].first().to_dict()
    assert sp == {'patient0001': 'train', 'patient0002': 'train', 'patient0003': 'train',
                  'patient0004': 'val', 'patient0005': 'test'}
    assert (df['orig_height'] == '112').all() and (df['orig_width'] == '96').all()  # transposed back to rows x cols
    _, lab = labels_of(tmp_path / 'out')['patient0005_2CH_ES']
    rows = np.arange(48)[:, None].repeat(48, 1)
    assert rows[lab == 1].mean() < rows[lab == 3].mean()  # apex at the top


def test_camus_nifti_truncated(tmp_path):
    src = write_camus_nifti(tmp_path / 'nifti', splits={'training': ['patient0001'], 'testing': ['patient0002']})
    p = src / 'database_nifti/patient0002/patient0002_4CH_ED_gt.nii.gz'
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(DataError, match='patient0002_4CH_ED_gt.nii.gz: cannot read'):
        write_frames(find_camus(src), tmp_path / 'out', size=32, progress=False)
    assert not (tmp_path / 'out').exists() and no_leftovers(tmp_path)


def test_camus_empty_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='no CAMUS frames found'):
        find_camus(tmp_path / 'empty')


# ---------------------------------------------------------------- PNG folders

@pytest.mark.parametrize('gray_levels,suffix', [(False, '_gt'), (True, ''), (True, '_gt')])
def test_pngs_pairing_and_mask_conventions(tmp_path, gray_levels, suffix):
    src = write_pngs(tmp_path / 'pngs', gray_levels=gray_levels, gt_suffix=suffix, h=90, w=120)
    frames = find_pngs(src)
    assert {(f.patient, f.view, f.phase) for f in frames} == {
        ('patient0001', '4CH', 'ED'), ('patient0001', '4CH', 'ES'), ('patient0002', '2CH', 'ED'),
        ('patient0003', '2CH', 'ES')}
    write_frames(frames, tmp_path / 'out', size=64, progress=False, test_share=0.34, seed=0)
    df = read_manifest(tmp_path / 'out')
    assert df.groupby('patient')['split'].nunique().max() == 1
    gt = camus_gt(90, 120, 'ED')
    expected = cv2.resize(apply_sector(gt, fan(90, 120)), (64, 64), interpolation=cv2.INTER_NEAREST)
    _, lab = labels_of(tmp_path / 'out')['patient0001_4CH_ED']
    assert set(np.unique(lab)) == {0, 1, 2, 3, 4}
    for c in (1, 2, 3):  # gray levels 85/170/255 became classes 1/2/3
        assert ((lab == c) == (expected == c)).mean() > 0.995


def test_parse_name():
    assert parse_name('patient0042_4CH_ES') == dict(patient='patient0042', view='4CH', phase='ES')
    assert parse_name('Patient0042-a2c-ed_frame3') == dict(patient='patient0042', view='2CH', phase='ED')
    assert parse_name('scan17') == {}


def test_pngs_unparsed_names_need_view_and_phase(tmp_path):
    src = write_pngs(tmp_path / 'pngs', names=('scan1', 'scan2'))
    with pytest.raises(DataError, match=r'scan1.png: the name does not say its view and phase; pass --view'):
        find_pngs(src)
    with pytest.raises(DataError, match=r'scan1.png: cannot tell the patient from the name.*--patient-regex'):
        find_pngs(src, view='4CH', phase='ED')       # one patient per file would be a guess that can leak
    frames = find_pngs(src, view='4CH', phase='ED', patient_regex=r'(scan\d+)')
    assert [(f.patient, f.view, f.phase) for f in frames] == [('scan1', '4CH', 'ED'), ('scan2', '4CH', 'ED')]


def test_pngs_patient_is_the_name_before_view_and_phase(tmp_path):
    "case01_2CH_ED.png and case01_4CH_ES.png are one subject: never in two splits, whatever the case or spacing."
    names = [f'{p}_{v}_{ph}' for p in ('case01', 'case02', 'case03', 'case04', 'case05', 'case06')
             for v in ('2CH', '4CH') for ph in ('ED', 'ES')]
    names = [n.replace('case01_4CH', 'Case01_4CH').replace('case02_2CH_ES', 'case 02_2CH_ES') for n in names]
    src = write_pngs(tmp_path / 'pngs', names=names, h=40, w=52)
    assert parse_name('case01_2CH_ED') == dict(patient='case01', view='2CH', phase='ED')
    assert parse_name('2CH_ED_case01') == dict(view='2CH', phase='ED')        # nothing before the view: no patient
    assert parse_name('x_2CH_ED', r'^(\w)_')['patient'] == 'x'
    write_frames(find_pngs(src), tmp_path / 'out', size=32, test_share=0.34, progress=False)
    df = read_manifest(tmp_path / 'out')
    assert sorted(df['patient'].str.replace(' ', '').str.lower().unique()) == ['case01', 'case02', 'case03', 'case04', 'case05', 'case06']
    assert df['patient'].nunique() == 6                       # Case01 / case01 and 'case 02' / case02 are one each
    assert df.groupby('patient')['split'].nunique().max() == 1 and df.groupby('patient').size().eq(4).all()
    with pytest.raises(DataError, match='--patient-regex .* not a regular expression'):
        find_pngs(src, patient_regex='(')


def test_binary_masks_are_refused_unless_their_values_are_given(tmp_path):
    src = write_pngs(tmp_path / 'pngs')
    for m in (src / 'masks').iterdir():
        gt = cv2.imread(str(m), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(m), np.where(gt == 1, 255, 0).astype(np.uint8))          # a 0/255 LV-cavity mask
    with pytest.raises(LabelError, match=r'_gt.png: a binary 0/255 mask.*--mask-values 0:0,255:1'):
        write_frames(find_pngs(src), tmp_path / 'out', size=32, progress=False)
    write_frames(find_pngs(src, mask_values=parse_mask_values('0:0,255:1')), tmp_path / 'out', size=32, progress=False)
    df = read_manifest(tmp_path / 'out')
    labs = labels_of(tmp_path / 'out')
    assert (df['labelled'] == 'LV_endo').all() and all(set(np.unique(l)) <= {0, 1, 4} for _, l in labs.values())
    assert any((l == 1).any() for _, l in labs.values())
    with pytest.raises(DataError, match='classes must be 0-3'):
        parse_mask_values('0:0,255:9')


def test_twelve_bit_images_in_sixteen_bit_pngs_keep_their_brightness(tmp_path):
    src = write_pngs(tmp_path / 'pngs', names=('patient0001_4CH_ED',), h=64, w=64)
    p = src / 'images/patient0001_4CH_ED.png'
    img8 = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    img12 = (img8.astype(np.float64) * 2672 / img8.max()).round().astype(np.uint16)   # 12-bit data, max 2672
    cv2.imwrite(str(p), img12)
    write_frames(find_pngs(src), tmp_path / 'out', size=64, progress=False)
    img, _ = labels_of(tmp_path / 'out')['patient0001_4CH_ED']
    assert abs(int(img.max()) - round(2672 * 255 / 4095)) <= 1     # 166, not 10 (2672 / 257)


def test_split_file_naming_unknown_patients_warns(tmp_path, caplog):
    src = write_pngs(tmp_path / 'pngs')
    sf = tmp_path / 'split.csv'
    sf.write_text('patient,split\npatient0001,test\npatient9999,train\n')
    with caplog.at_level('WARNING', logger='echo_from_noise'):
        write_frames(find_pngs(src), tmp_path / 'out', size=32, split_file=sf, progress=False)
    assert 'not in the data' in caplog.text and 'patient9999' in caplog.text


def test_pngs_unpaired_files(tmp_path):
    src = write_pngs(tmp_path / 'pngs')
    (src / 'masks/patient0002_2CH_ED_gt.png').unlink()
    with pytest.raises(DataError, match=r'images/patient0002_2CH_ED.png: no mask for this image'):
        find_pngs(src)
    src2 = write_pngs(tmp_path / 'pngs2')
    (src2 / 'images/patient0003_2CH_ES.png').unlink()
    with pytest.raises(DataError, match=r'masks/patient0003_2CH_ES_gt.png: mask without an image'):
        find_pngs(src2)
    skips = Skips(True)
    assert len(find_pngs(src, skips=skips)) == 3 and len(skips.items) == 1


@pytest.mark.parametrize('bad', ['values', 'levels', 'colour', 'size', 'corrupt', 'empty'])
def test_pngs_bad_masks_and_images(tmp_path, bad):
    src = write_pngs(tmp_path / 'pngs')
    m = src / 'masks/patient0001_4CH_ES_gt.png'
    i = src / 'images/patient0001_4CH_ES.png'
    gt = camus_gt(90, 120, 'ES')
    if bad == 'values':
        gt[3, 3] = 5; cv2.imwrite(str(m), gt); err, msg = LabelError, r'unexpected mask values \[0, 1, 2, 3, 5\]'
    elif bad == 'levels':
        cv2.imwrite(str(m), (gt * 60).astype(np.uint8)); err, msg = LabelError, r'unexpected mask values \[0, 60, 120, 180\]'
    elif bad == 'colour':
        c = np.stack([gt, gt * 0, gt], -1); cv2.imwrite(str(m), c); err, msg = LabelError, 'colour mask'
    elif bad == 'size':
        cv2.imwrite(str(m), gt[:, :100]); err, msg = DataError, 'image is 120x90 but its mask is 100x90'
    elif bad == 'corrupt':
        i.write_bytes(i.read_bytes()[:40]); err, msg = DataError, 'cannot read this image'
    else:
        for p in (src / 'images').iterdir(): p.unlink()
        with pytest.raises(DataError, match='no images found'):
            find_pngs(src)
        return
    with pytest.raises(err, match=msg) as e:
        write_frames(find_pngs(src), tmp_path / 'out', size=32, progress=False)
    assert 'patient0001_4CH_ES' in str(e.value)  # the message names the file
    assert not (tmp_path / 'out').exists() and no_leftovers(tmp_path)
    rep = write_frames(find_pngs(src), tmp_path / 'out', size=32, progress=False, skips=Skips(True))
    assert rep.written == 3 and len(rep.skipped) == 1


def test_output_not_overwritten(tmp_path):
    src = write_pngs(tmp_path / 'pngs')
    write_frames(find_pngs(src), tmp_path / 'out', size=32, progress=False)
    before = (tmp_path / 'out/manifest.csv').read_text()
    with pytest.raises(DataError, match='already exists'):
        write_frames(find_pngs(src), tmp_path / 'out', size=32, progress=False)
    write_frames(find_pngs(src, views=['2CH']), tmp_path / 'out', size=32, progress=False, overwrite=True)
    assert (tmp_path / 'out/manifest.csv').read_text() != before and len(read_manifest(tmp_path / 'out')) == 2


# ---------------------------------------------------------------- EchoNet-Dynamic

def test_echonet_traced_frames(tmp_path):
    src = write_echonet(tmp_path / 'echonet', n=3, untraced=1)
    frames = find_echonet(src)
    assert len(frames) == 6  # the untraced video is left out
    write_frames(frames, tmp_path / 'out', size=64, progress=False, source='echonet')
    df = read_manifest(tmp_path / 'out')
    assert set(df['view']) == {'4CH'} and (df['labelled'] == 'LV_endo').all()
    assert df.groupby('patient')['split'].first().to_dict() == {'0X0000': 'train', '0X0001': 'val', '0X0002': 'test'}
    labs = labels_of(tmp_path / 'out')
    for v in ('0X0000', '0X0001', '0X0002'):
        ed, es = labs[f'{v}_ED'][1], labs[f'{v}_ES'][1]
        assert set(np.unique(ed)) == {0, 1, 4}
        # ED is the wider trace (half-width 14 vs 9 px): the cavity area ratio follows the chords
        assert 1.35 < (ed == 1).sum() / (es == 1).sum() < 1.75
    # the polygon lies where the chords are (56 +- 14 px of 112 -> 32 +- 8 px of 64)
    cols = np.nonzero(labs['0X0000_ED'][1] == 1)[1]
    assert 22 <= cols.min() and cols.max() <= 41


def test_echonet_truncated_and_missing_video(tmp_path):
    src = write_echonet(tmp_path / 'echonet', n=2, n_frames=12, traced=(3, 10))
    v = src / 'Videos/0X0001.avi'
    data = v.read_bytes()
    v.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r'0X0001.avi: (video ends after|cannot open)'):
        write_frames(find_echonet(src), tmp_path / 'out', size=32, progress=False)
    assert not (tmp_path / 'out').exists() and no_leftovers(tmp_path)
    v.unlink()
    with pytest.raises(DataError, match='0X0001.avi: video not found'):
        write_frames(find_echonet(src), tmp_path / 'out', size=32, progress=False)


def test_echonet_not_a_folder(tmp_path):
    (tmp_path / 'x').mkdir()
    with pytest.raises(DataError, match='FileList.csv: not found'):
        find_echonet(tmp_path / 'x')


@pytest.mark.parametrize('cell', ['', 'abc'])
def test_echonet_bad_tracing_cells_name_the_line(tmp_path, cell):
    "An empty coordinate used to give an empty mask (and swap ED/ES); text was a traceback."
    src = write_echonet(tmp_path / 'echonet', n=3)
    vt = pd.read_csv(src / 'VolumeTracings.csv', dtype=str)
    vt.loc[50, 'X1'] = cell                                    # video 0X0001 (rows 42-83)
    vt.to_csv(src / 'VolumeTracings.csv', index=False)
    what = 'empty' if not cell else "not a number \\('abc'\\)"
    with pytest.raises(DataError, match=f'VolumeTracings.csv: line 52 \\(video 0X0001\\): X1 is {what}'):
        find_echonet(src)
    frames = find_echonet(src, skips=Skips(True))
    assert sorted({f.patient for f in frames}) == ['0X0000', '0X0002']

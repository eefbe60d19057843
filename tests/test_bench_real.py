"""benchmarks/bench_real.py's own logic, on a small PNG dataset written here: the development split never holds a test
patient, and the report's seed statistics are the arithmetic they claim. No real data and no study run."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))   # `benchmarks` is a package at the repository root

from benchmarks import bench_real  # noqa: E402
from echo_from_noise.cli import main  # noqa: E402
from echo_from_noise.dataset import read_manifest  # noqa: E402


def _dataset(root: Path) -> Path:
    "A canonical dataset of 30 patients (ED and ES, 16 px), split into train, val and test by `efn prepare`."
    from fixtures import write_pngs
    names = [f'patient{p:04d}_4CH_{ph}' for p in range(1, 31) for ph in ('ED', 'ES')]
    src = write_pngs(root / 'pngs', names=names, h=40, w=48)
    assert main(['prepare', 'pngs', str(src), str(root / 'ds'), '--size', '16', '--test-share', '0.2',
                 '--val-share', '0.2']) == 0
    return root / 'ds'


def test_dev_split_scores_val_patients_and_never_reads_test_ones(tmp_path):
    full = read_manifest(_dataset(tmp_path))
    dev = read_manifest(bench_real.dev_split(tmp_path / 'ds', tmp_path / 'dev'))
    pats = lambda df, split: set(df.loc[df['split'] == split, 'patient'])
    assert pats(full, 'test') and not pats(full, 'test') & set(dev['patient'])      # no test patient, no frame of one
    assert pats(dev, 'test') == pats(full, 'val')                                   # the val patients are scored
    train = sorted(pats(full, 'train'))
    assert pats(dev, 'val') == set(train[7::8]) and pats(dev, 'train') == set(train) - set(train[7::8])
    assert len(dev) == 2 * (len(train) + len(pats(full, 'val')))                    # every frame of those patients
    # made once: a second call keeps the folder as it is
    before = (tmp_path / 'dev' / 'manifest.csv').read_text()
    bench_real.dev_split(tmp_path / 'ds', tmp_path / 'dev')
    assert (tmp_path / 'dev' / 'manifest.csv').read_text() == before


def test_fewer_train_patients_keeps_n_of_them_and_every_val_and_test_frame(tmp_path):
    full = read_manifest(_dataset(tmp_path))
    few = read_manifest(bench_real.fewer_train_patients(tmp_path / 'ds', tmp_path / 'few', 5))
    pats = lambda df, split: sorted(set(df.loc[df['split'] == split, 'patient']))
    train = pats(full, 'train')
    assert pats(few, 'train') == train[::len(train) // 5][:5] and len(pats(few, 'train')) == 5   # spread over them
    for split in ('val', 'test'): assert pats(few, split) == pats(full, split)      # the patients scored, untouched
    assert len(few) == 2 * (5 + len(pats(full, 'val')) + len(pats(full, 'test')))   # every frame of those patients
    with pytest.raises(SystemExit, match='train patients'):
        bench_real.fewer_train_patients(tmp_path / 'ds', tmp_path / 'many', len(train) + 1)


def _entry(label, split, values):
    run = lambda v: dict(sdm_minus_real=dict(mean=v, se=0.1), real_sdm_minus_real=dict(mean=-v, se=0.2),
                         realism={}, minutes=1.0)
    return dict(label=label, split=split, set=[], runs=[run(v) for v in values])


def test_seed_spread_pools_the_dev_entries_with_several_seeds():
    record = [_entry('a', 'dev', [0.0, 1.0]), _entry('b', 'dev', [1.0, 2.0, 3.0]),
              _entry('one seed', 'dev', [5.0]), _entry('a', 'test', [10.0, -10.0])]
    sd, n = bench_real.seed_spread(record, 'sdm_minus_real')
    assert n == 2 and sd == pytest.approx(((0.25 + 0.25 + 1 + 0 + 1) / 3) ** 0.5)    # 1 + 2 degrees of freedom
    assert bench_real.seed_spread(record, 'real_sdm_minus_real')[0] == pytest.approx(sd)
    assert bench_real.seed_spread([_entry('one seed', 'dev', [5.0])], 'sdm_minus_real')[1] == 0
    line = bench_real.entry_line(record[1])
    assert '+1.0 ± 0.1 / +2.0 ± 0.1 / +3.0 ± 0.1 (mean +2.00)' in line and '(mean -2.00)' in line
    assert '(mean' not in bench_real.entry_line(record[2])                          # one seed: no mean to add
    scarce = dict(_entry('few', 'dev', [-40.0, 40.0]), train_patients=4)          # another regime: not pooled
    assert bench_real.seed_spread(record + [scarce], 'sdm_minus_real') == (sd, n)
    assert '| train_patients=4 |' in bench_real.entry_line(scarce)


def test_headline_is_the_newest_test_entry_whatever_ran_after_it():
    record = [_entry('dev lever', 'dev', [0.5]), _entry('old test', 'test', [1.0, 3.0]),
              _entry('new test', 'test', [-1.0, 0.0]), _entry('later dev lever', 'dev', [9.0])]
    h = bench_real.headline(record)
    assert (h['label'], h['split']) == ('new test', 'test')
    assert h['sdm_minus_real'] == pytest.approx(-0.5) and h['real_sdm_minus_real'] == pytest.approx(0.5)
    assert h['minutes'] == 1.0 and h['auc'] != h['auc']                 # no realism in these runs: nan, not 0
    only_dev = bench_real.headline(record[:1] + record[3:])                 # no test entry yet: the newest one
    assert (only_dev['label'], only_dev['sdm_minus_real']) == ('later dev lever', 9.0)


def _finished_run(root: Path, dice: dict) -> Path:
    "A run directory with what `measure` reads: per-image Dice of Table 1's rows (two patients, two images each)."
    import json
    import pandas as pd
    (root / 'metrics').mkdir(parents=True)
    (root / 'stages').mkdir()
    pd.DataFrame([dict(row=r, id=f'p{i // 2}_{i % 2}', patient=f'p{i // 2}', dice_mean=v)
                  for r, vals in dice.items() for i, v in enumerate(vals)]).to_csv(root / 'metrics/per_image.csv', index=False)
    (root / 'stages/evaluate.json').write_text(json.dumps(dict(seconds=60, result=dict(realism={}))))
    (root / 'config.yaml').write_text('study:\n  realism: {steps: 600, lr: 0.003, repeats: 5}\n')
    return root


def test_segmenter_seeds_score_each_image_by_their_mean(tmp_path):
    sdm, real, both = bench_real.ROWS
    a = _finished_run(tmp_path / 'a', {sdm: [0.8, 0.9, 0.7, 0.6], real: [0.7] * 4, both: [0.9] * 4})
    b = _finished_run(tmp_path / 'b', {sdm: [0.6, 0.9, 0.9, 0.6], real: [0.9] * 4, both: [0.8] * 4})
    per = bench_real.per_image([a, b]).set_index(['row', 'id'])['dice_mean']
    assert per[(sdm, 'p0_0')] == pytest.approx(0.7) and per[(real, 'p1_1')] == pytest.approx(0.8) and len(per) == 12
    m = bench_real.measure([a, b], seed=3)
    # each seed alone: SDM - real +5 and -15 points, R+S - real +20 and -10; scored by the mean: -5 and +5
    assert [x['sdm_minus_real'] for x in m['per_seg_seed']] == pytest.approx([5.0, -15.0])
    assert [x['real_sdm_minus_real'] for x in m['per_seg_seed']] == pytest.approx([20.0, -10.0])
    assert m['sdm_minus_real']['mean'] == pytest.approx(-5.0) and m['real_sdm_minus_real']['mean'] == pytest.approx(5.0)
    assert m['dice'][real] == pytest.approx(80.0) and (m['seg_seeds'], m['seed'], m['minutes']) == (2, 3, 1.0)
    assert m['realism_budget'] == dict(steps=600, lr=3e-3)      # the classifier budget its config.yaml records
    one = bench_real.measure([a], seed=3)
    assert one['per_seg_seed'] == [] and one['sdm_minus_real']['mean'] == pytest.approx(5.0)


def test_levers_table_pairs_each_lever_with_its_baseline_by_seed_and_segmenter_draw():
    def run(seed, draws, aucs=(0.7, 0.6), minutes=20.0):
        d = dict(seed=seed, minutes=minutes, realism={'SDM': dict(auc=aucs[0]), 'SDM (undeformed maps)': dict(auc=aucs[1])},
                 per_seg_seed=[dict(sdm_minus_real=a, real_sdm_minus_real=b) for a, b in draws] if len(draws) > 1 else [])
        return dict(d, sdm_minus_real=dict(mean=draws[0][0], se=0.1), real_sdm_minus_real=dict(mean=draws[0][1], se=0.1))
    base = dict(label='base', split='dev', set=[], runs=[run(0, [(-1.0, 0.5), (-2.0, 0.0), (0.0, 1.0)]),
                                                          run(1, [(-1.0, 0.2)], minutes=21.0)])
    lever = dict(label='lever', split='dev', set=[], against='base',
                 runs=[run(0, [(-0.5, 0.5), (-1.0, 0.5)], aucs=(0.65, 0.62)), run(2, [(9.0, 9.0)])])
    line = bench_real.lever_line(lever, base)
    # seed 0 only (seed 2 has no baseline): draws 0 and 1 of both, +0.5 and +1.0 -> +0.75; R+S 0 and +0.5 -> +0.25
    assert '| lever | base | 0 (2) | +0.75 | +0.25 | -0.050 | +0.020 | 20.0 against 20.0 |' == line
    both = dict(lever, runs=[run(0, [(0.0, 1.0)]), run(1, [(-2.0, 0.2)])])      # one draw each: the run's own
    assert '| 0 (1), 1 (1) | +1.00 / -1.00 (mean +0.00) | +0.50 / +0.00 (mean +0.25) |' in bench_real.lever_line(both, base)
    assert bench_real.lever_line(dict(lever, runs=[run(5, [(0.0, 0.0)])]), base) is None      # no seed in common
    newer = dict(lever, runs=[dict(run(0, [(-0.5, 0.5), (-1.0, 0.5)]), realism_budget=dict(steps=600, lr=3e-3))])
    assert '| other budgets | other budgets |' in bench_real.lever_line(newer, base)   # AUCs of two classifier budgets
    other_split = dict(lever, split='test')                       # a baseline is looked up on the entry's own split
    table = bench_real.levers_table([base, lever, other_split])
    assert sum(r.startswith('| lever | base |') for r in table) == 1 and table[-1] == line
    assert bench_real.levers_table([base]) == []                    # no entry with a baseline: no table


def _full_entry(label, value):
    "An entry as bench_real writes it (what the report prints), with one seed."
    e = _entry(label, 'dev', [value])
    e['runs'][0].update(seed=0, test_images=4, dice={r: 90.0 for r in bench_real.ROWS}, stage_seconds=dict(sdm=60))
    return dict(e, date='2026-12-04', command='python -m benchmarks.bench_real DATASET', profile='cpu',
                dataset='tiny', machine='2 cores')


def test_merge_takes_only_new_entries_and_the_named_one_with_its_note(tmp_path, monkeypatch):
    here = [_full_entry('base', 0.0), _full_entry('lever', 1.0)]
    there = [_full_entry('base', 9.0), _full_entry('lever', 2.0), _full_entry('trial', 3.0)]
    merged, taken = bench_real.merge_entries(here, there)
    assert taken == [('trial', 'dev')] and [e['runs'][0]['sdm_minus_real']['mean'] for e in merged] == [0.0, 1.0, 3.0]
    merged, taken = bench_real.merge_entries(here, there, 'lever', 'why not adopted')
    assert taken == [('lever', 'dev'), ('trial', 'dev')] and len(merged) == 3
    assert merged[1]['note'] == 'why not adopted' and merged[1]['runs'][0]['sdm_minus_real']['mean'] == 2.0
    assert here[1].get('note') is None                                         # the record given is not changed
    # the command: real.json and real.md rewritten in the folder it is told, the other file read only
    monkeypatch.setattr(bench_real, 'RECORD', tmp_path / 'real.json')
    monkeypatch.setattr(bench_real, 'REPORT', tmp_path / 'real.md')
    bench_real.write_record(here)
    other = tmp_path / 'scratch' / 'real.json'
    other.parent.mkdir()
    other.write_text(json.dumps(dict(entries=there)))
    bench_real.main(['--merge', str(other), '--label', 'trial', '--note', 'a trial'])
    assert [e['label'] for e in bench_real.recorded()] == ['base', 'lever', 'trial']
    assert bench_real.recorded()[2]['note'] == 'a trial' and 'a trial' in (tmp_path / 'real.md').read_text()
    assert json.loads(other.read_text()) == dict(entries=there)                 # the other record is only read
    assert 'real CAMUS apical 4CH frames' in (tmp_path / 'real.md').read_text()  # entries that name no views: 4CH
    bench_real.write_record(here + [dict(_full_entry('two views', 4.0), views=['2CH', '4CH'])])
    assert 'real CAMUS apical 2CH and 4CH frames' in (tmp_path / 'real.md').read_text()   # the views the entries ran
    (tmp_path / 'notes.json').write_text('{"label": "not a record"}')
    for bad, why in ((['--merge', str(tmp_path / 'none.json')], 'no such file'),
                     (['--merge', str(tmp_path / 'notes.json')], 'not a real.json'),
                     (['data', '--merge', str(other)], 'give no DATASET'),
                     (['--merge', str(other), '--label', 'trial'], 'go together'),
                     (['--merge', str(other), '--label', 'nope', '--note', 'x'], 'no entry of that name'), ([], 'DATASET')):
        with pytest.raises(SystemExit, match=why): bench_real.main(bad)

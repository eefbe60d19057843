"""Trust boundaries, tried as a careful adversarial user would: a manifest cannot make a command read or write outside
its dataset, two writers of one output never race, a run directory proves what made it, every study value is checked
before the first stage, and OS errors (a full disk) are one line naming the file. Each case ends in a refusal of one
line, exit 2 (1 for an OS error), with nothing written outside the command's folders."""
from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from echo_from_noise.cli import main
from echo_from_noise.config import study_config
from echo_from_noise.dataset import DatasetWriter, load_frame, read_manifest
from echo_from_noise.files import output_lock


def refused(argv, capsys, *needles, code=2) -> str:
    "`efn argv` exits `code` with exactly one `efn: error:` line holding every needle, and no traceback."
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == code, err
    lines = [l for l in err.splitlines() if l.startswith('efn: error')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    for n in needles: assert n in lines[0], (n, lines[0])
    return lines[0]


def files_under(folder) -> set:
    return {p for p in folder.rglob('*')}


def edited(phantom, dest, **cells):
    "A copy of the phantom whose first row has the given manifest `cells` (column=value)."
    shutil.copytree(phantom, dest)
    df = read_manifest(dest)
    for col, value in cells.items(): df.loc[0, col] = value
    df.to_csv(dest / 'manifest.csv', index=False)
    return dest


# ------------------------------------------------------------------ 1, 2. a manifest stays inside its dataset

def test_a_manifest_id_cannot_write_outside(phantom, tmp_path, capsys, trained):
    "The issue's case: an id of '../../../ESCAPED' made `efn augment` write three folders above its output."
    deep = tmp_path / 'a' / 'b' / 'c'
    ds = edited(phantom, deep / 'ds', id='../../../ESCAPED')
    before = files_under(tmp_path)
    refused(['augment', ds, deep / 'aug'], capsys, 'manifest.csv', "'../../../ESCAPED' is not a plain file name")
    run, _ = trained
    refused(['synthesize', run, ds, deep / 'syn', '--steps', 2], capsys, 'is not a plain file name')
    refused(['train-sdm', ds, deep / 'run', '--profile', 'smoke'], capsys, 'is not a plain file name')
    assert files_under(tmp_path) == before and not list(tmp_path.rglob('ESCAPED*'))


@pytest.mark.parametrize('column, value, needle', [
    ('image', '../../../../etc/passwd', 'leaves the dataset folder'),
    ('label', '/etc/passwd', 'leaves the dataset folder'),
    ('image', 'images/../../outside.png', 'leaves the dataset folder'),
    ('image', 'images/link.png', 'leads out of the dataset folder'),
    ('label', 'labels/link.png', 'leads out of the dataset folder')])
def test_a_manifest_cannot_make_a_command_read_outside(phantom, tmp_path, capsys, column, value, needle):
    "Path escapes, absolute paths and symbolic links out of the dataset, even to a readable PNG, are refused."
    outside = tmp_path / 'outside.png'
    shutil.copy(phantom / read_manifest(phantom).loc[0, column], outside)       # a PNG that would be read fine
    ds = edited(phantom, tmp_path / 'ds', **{column: value})
    if 'link' in value: (ds / value).symlink_to(outside)
    refused(['augment', ds, tmp_path / 'aug'], capsys, f'{column}', needle)
    refused(['realism', ds, phantom, '--steps', 1, '--repeats', 1], capsys, needle)
    assert not (tmp_path / 'aug').exists()


# ------------------------------------------------------------------ 3. one writer per output

def test_two_synthesizers_of_one_output(trained, tmp_path, capsys):
    "The second writer of S is refused, naming the first; S ends with the first writer's images only."
    run, aug = trained
    out = tmp_path / 'S'
    first = subprocess.Popen([sys.executable, '-m', 'echo_from_noise', 'synthesize', str(run), str(aug), str(out),
                              '--steps', '400', '--batch-size', '4'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lock = tmp_path / '.S.lock'
    t0 = time.time()
    while not (lock.exists() and lock.read_text()) and time.time() - t0 < 120 and first.poll() is None: time.sleep(0.05)
    assert first.poll() is None, 'the first synthesizer ended before the second started; give it more steps'
    refused(['synthesize', run, aug, out, '--steps', 2, '--sampler', 'ddim'], capsys,
            f'{out}: another process is writing it now (PID {first.pid}')
    refused(['synthesize', run, aug, out, '--steps', 2, '--overwrite'], capsys, 'another process is writing it now')
    assert first.wait(timeout=600) == 0, first.stderr.read()[-2000:]
    assert set(read_manifest(out)['generator']) == {'sdm:ddpm:400:s=0:ema'} and not lock.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]          # no temporary folder left


def test_a_run_directory_has_one_writer(phantom, tmp_path, capsys):
    "efn paper, efn train-sdm and efn train-cyclegan of a RUN that another command holds are refused at once."
    run = tmp_path / 'run'
    with output_lock(run):              # as a running efn paper holds it
        refused(['paper', '--profile', 'smoke', '--out', run], capsys, 'another process is writing it now')
        refused(['train-sdm', phantom, run, '--profile', 'smoke'], capsys, 'another process is writing it now')
        refused(['train-cyclegan', phantom, run, '--profile', 'smoke'], capsys, 'another process is writing it now')
    assert not run.exists()


def test_commit_refuses_an_output_that_changed_after_its_check(phantom, tmp_path):
    "Between the check and the final rename another program wrote OUT: nothing it wrote is replaced."
    from echo_from_noise.base import DataError
    w = DatasetWriter(tmp_path / 'out', 32)
    _, lab = load_frame(phantom, read_manifest(phantom).iloc[0])
    w.add('a', 'p1', '4CH', 'ED', 'train', lab)
    (tmp_path / 'out').mkdir(); (tmp_path / 'out' / 'theirs.txt').write_text('keep')
    with pytest.raises(DataError, match='changed while this command wrote it'): w.commit()
    assert [p.name for p in (tmp_path / 'out').iterdir()] == ['theirs.txt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out']


# ------------------------------------------------------------------ 4. a run proves what made it

def smoke_run(tmp_path, config: str | None = None):
    "A run directory recorded as `efn paper --profile smoke` would record it (config.yaml), with one stage done."
    run = tmp_path / 'run'
    (run / 'stages').mkdir(parents=True)
    (run / 'config.yaml').write_text(yaml.safe_dump(dict(study=study_config('smoke').to_dict())) if config is None
                                     else config)
    (run / 'stages' / 'data.json').write_text('{"stage": "data", "seconds": 1.0, "result": {}}')
    return run


@pytest.mark.parametrize('config, needle', [('', 'config.yaml: empty, so this run cannot prove'),
                                            ('{unclosed', 'config.yaml: not readable YAML'),
                                            ('just text', 'config.yaml: holds no settings')])
def test_an_unreadable_config_is_never_a_new_run(phantom, tmp_path, capsys, config, needle):
    run = smoke_run(tmp_path, config)
    refused(['paper', '--profile', 'cpu', '--out', run], capsys, needle)
    refused(['paper', '--profile', 'smoke', '--out', run], capsys, needle)
    refused(['train-sdm', phantom, run, '--profile', 'smoke'], capsys, needle)
    assert sorted(p.name for p in run.iterdir()) == ['config.yaml', 'stages'] and (run / 'config.yaml').read_text() == config


def test_a_missing_config_beside_results_is_refused(tmp_path, capsys):
    run = smoke_run(tmp_path)
    (run / 'config.yaml').unlink()
    refused(['paper', '--profile', 'smoke', '--out', run], capsys, 'config.yaml: missing, though', 'stages/')


def test_a_torn_stage_record_is_not_a_stage_done(tmp_path, capsys):
    run = smoke_run(tmp_path)
    (run / 'stages' / 'data.json').write_text('')
    refused(['paper', '--profile', 'smoke', '--out', run], capsys, 'data.json: empty', '--redo-from data')
    (run / 'stages' / 'data.json').write_text('{"stage": "sdm", "result": {}}')
    refused(['paper', '--profile', 'smoke', '--out', run], capsys, 'data.json: not a record of stage data')


def test_config_yaml_is_written_atomically(phantom, tmp_path, monkeypatch):
    "A crash in the middle of writing config.yaml leaves the old record whole (and no temporary file)."
    import echo_from_noise.rundir as F
    run = tmp_path / 'run'
    assert main(['train-sdm', str(phantom), str(run), '--profile', 'smoke', '--views', '4CH', '--set', 'steps=1']) == 0
    before = (run / 'config.yaml').read_text()
    real_dump = F.yaml.safe_dump
    monkeypatch.setattr(F.yaml, 'safe_dump', lambda *a, **k: real_dump(*a, **k)[:20] + 1)   # fails half-way
    with pytest.raises(TypeError): F.update_run_config(run, study=dict(profile='smoke'))
    assert (run / 'config.yaml').read_text() == before and not list(run.glob('.config.yaml.tmp-*'))


# ------------------------------------------------------------------ 5. every study value checked before the first stage

LATE = [('synth_steps=0', 'synth_steps=0: must be at least 1'), ('copies=0', 'copies=0: must be at least 1'),
        ('patients=0', 'patients=0: must be at least 1'), ('seg.width=0', 'seg.width=0: must be at least 1'),
        ('sdm.timesteps=2', 'synth_steps=3: more sampling steps than the 2 diffusion steps'),
        ('realism.repeats=0', 'realism.repeats=0: must be at least 1'),
        ('realism.steps=0', 'realism.steps=0: must be at least 1'),
        ('guidance=nan', 'guidance=nan: must be a finite number'), ('seg.lr=inf', 'seg.lr=inf: must be a finite number'),
        ('test_patients=8', 'fewer than the 8 patients'), ('size=48', 'needs a power of two'),
        ('adherence_maps=0', 'must be at least 1, or none')]


@pytest.mark.parametrize('setting, needle', LATE)
def test_late_values_are_refused_before_the_first_stage(tmp_path, capsys, setting, needle):
    refused(['paper', '--profile', 'smoke', '--out', tmp_path / 'run', '--set', setting], capsys, needle)
    assert not list(tmp_path.iterdir())             # no run folder, no lock file


def test_an_external_dataset_without_test_frames(phantom, tmp_path, capsys):
    ext = tmp_path / 'ext'
    shutil.copytree(phantom, ext)
    read_manifest(ext).assign(split='train').to_csv(ext / 'manifest.csv', index=False)
    refused(['paper', '--profile', 'smoke', '--out', tmp_path / 'run', '--external', ext], capsys,
            'no test frames, and --external scores the test split')
    assert not (tmp_path / 'run').exists()


# ------------------------------------------------------------------ 6, 7. no number from nothing, no silent overwrite

def test_realism_refuses_an_untrained_classifier_and_an_old_output(phantom, tmp_path, capsys):
    refused(['realism', phantom, phantom, '--steps', 0], capsys, '--steps 0: the classifier needs at least 1 training step')
    out = tmp_path / 'out'
    assert main(['realism', str(phantom), str(phantom), '--steps', '2', '--repeats', '1', '--out', str(out)]) == 0
    first = (out / 'realism.csv').read_bytes()
    capsys.readouterr()
    refused(['realism', phantom, phantom, '--steps', 3, '--repeats', 1, '--out', out], capsys,
            'already exists and is not empty', '--overwrite')
    assert (out / 'realism.csv').read_bytes() == first
    assert main(['realism', str(phantom), str(phantom), '--steps', '3', '--repeats', '1', '--out', str(out),
                 '--overwrite']) == 0
    (out / 'thesis.tex').write_text('mine')
    capsys.readouterr()
    refused(['realism', phantom, phantom, '--steps', 3, '--repeats', 1, '--out', out, '--overwrite'], capsys,
            'only replaces a folder of efn realism results')
    assert (out / 'thesis.tex').exists()


# ------------------------------------------------------------------ 8. a full disk is one line, and nothing is left

def limited(argv, max_bytes: int, cwd=None):
    "`efn argv` in a process whose files may not grow past `max_bytes` (ulimit -f): writes fail as on a full disk."
    def limit(): resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return subprocess.run([sys.executable, '-m', 'echo_from_noise', *map(str, argv)], capture_output=True, text=True,
                          preexec_fn=limit, timeout=300, cwd=cwd)


def one_os_error(r, *needles) -> str:
    lines = [l for l in r.stderr.splitlines() if l.startswith('efn: error')]
    assert r.returncode == 1 and len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    for n in needles: assert n in lines[0], (n, lines[0])
    return lines[0]


def test_a_full_disk_in_every_writer(phantom, tmp_path, trained):
    run, aug = trained
    # a checkpoint: torch's writer fails without an errno
    r = limited(['train-sdm', phantom, tmp_path / 'run', '--profile', 'smoke', '--views', '4CH', '--set', 'steps=2'],
                100_000)
    one_os_error(r, 'sdm_4CH.pt', 'a file size limit was reached', 'run the same command again')
    assert not list((tmp_path / 'run').rglob('.*tmp-*'))
    # a PNG of a dataset (OpenCV's writer returns False) and a manifest (pandas names no file)
    r = limited(['phantom', tmp_path / 'ph', '--patients', 4, '--size', 128, '--workers', 1], 2_000)
    one_os_error(r, f'{tmp_path}/ph/images/', '.png: could not write the PNG (a file size limit was reached)')
    r = limited(['augment', phantom, tmp_path / 'aug', '--copies', 1], 1_000)
    one_os_error(r, f'{tmp_path}/aug/manifest.csv: File too large (a file size limit was reached)')
    r = limited(['synthesize', run, aug, tmp_path / 'syn', '--steps', 2], 500)
    one_os_error(r, 'a file size limit was reached')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run']       # no dataset, no temporary folder left
    # a results folder
    r = limited(['realism', phantom, phantom, '--steps', 2, '--repeats', 1, '--out', tmp_path / 'real'], 1_000)
    one_os_error(r, f'{tmp_path}/real/realism')
    assert not (tmp_path / 'real').exists()


def test_killed_writers_leave_nothing_the_next_run_keeps(phantom, tmp_path):
    "A checkpoint's temporary file left by a SIGKILLed trainer (no such process now) goes with the next write."
    stale = tmp_path / 'run' / 'checkpoints' / '.sdm_4CH.pt.tmp-999999999'
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'half a checkpoint')
    assert main(['train-sdm', str(phantom), str(tmp_path / 'run'), '--profile', 'smoke', '--views', '4CH',
                 '--set', 'steps=1']) == 0
    assert not stale.exists()


# ------------------------------------------------------------------ 9. messages

def test_settings_messages(tmp_path, capsys):
    refused(['paper', '--profile', 'smoke', '--out', tmp_path / 'r', '--set', 'sdm.channels=[16,x]'], capsys,
            'expected a list of int written with commas, such as 16,32')
    line = refused(['paper', '--profile', 'smoke', '--out', tmp_path / 'r', '--set', 'sampler=' + 'x' * 100_000], capsys,
                   'characters)')
    assert len(line) < 400
    refused(['paper', '--profile', 'smoke', '--out', tmp_path / 'r', '--set', 'copies=1', 'copies=2'], capsys,
            '--set copies is given twice')
    refused(['train-sdm', tmp_path, tmp_path / 'r', '--profile', 'smoke', '--set', 'lr=1', 'lr=2'], capsys,
            '--set lr is given twice')
    assert not list(tmp_path.iterdir())

"""The `efn` command line, run as a user would: a subprocess, exit codes, messages and outputs."""
from __future__ import annotations

import subprocess
import sys

import pytest

from echo_from_noise.dataset import read_manifest

from fixtures import write_camus_mhd, write_echonet, write_pngs


def efn(*args):
    return subprocess.run([sys.executable, '-m', 'echo_from_noise', *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize('cmd', [[], ['prepare'], ['prepare', 'camus'], ['prepare', 'pngs'], ['prepare', 'echonet']])
def test_help_everywhere(cmd):
    r = efn(*cmd, '--help')
    assert r.returncode == 0 and 'usage: efn' in r.stdout


def test_prepare_all_formats(tmp_path):
    r = efn('prepare', 'camus', write_camus_mhd(tmp_path / 'c'), tmp_path / 'o1', '--size', 32, '--views', '4CH')
    assert r.returncode == 0, r.stderr
    assert '10 frames written' in r.stdout and set(read_manifest(tmp_path / 'o1')['view']) == {'4CH'}
    r = efn('prepare', 'pngs', write_pngs(tmp_path / 'p'), tmp_path / 'o2', '--size', 32, '--phases', 'ED')
    assert r.returncode == 0, r.stderr
    assert set(read_manifest(tmp_path / 'o2')['phase']) == {'ED'}
    r = efn('prepare', 'echonet', write_echonet(tmp_path / 'e', n=2), tmp_path / 'o3', '--size', 32)
    assert r.returncode == 0, r.stderr
    assert len(read_manifest(tmp_path / 'o3')) == 4
    assert 'prepare echonet' in r.stderr  # the tqdm progress bar


def test_bad_input_exit_code_and_message(tmp_path):
    src = write_pngs(tmp_path / 'p')
    (src / 'masks/patient0001_4CH_ED_gt.png').write_bytes(b'not a png')
    r = efn('prepare', 'pngs', src, tmp_path / 'out', '--size', 32)
    assert r.returncode == 2
    assert 'patient0001_4CH_ED_gt.png: cannot read this mask' in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path / 'out').exists()
    r = efn('prepare', 'pngs', src, tmp_path / 'out', '--size', 32, '--skip-invalid')
    assert r.returncode == 0 and '3 frames written' in r.stdout and '1 skipped' in r.stdout
    assert 'WARNING: skipped' in r.stderr


def test_efn_console_script_installed():
    import shutil
    exe = shutil.which('efn', path=str(__import__('pathlib').Path(sys.executable).parent))
    assert exe, 'efn console script missing from the venv'
    assert subprocess.run([exe, '--help'], capture_output=True).returncode == 0


def test_print_config_runs_nothing(tmp_path):
    "`efn paper --print-config`: the resolved settings as config.yaml would record them, and no run directory."
    import yaml
    r = efn('paper', '--profile', 'cpu', '--out', str(tmp_path / 'run'), '--set', 'sdm.steps=3000', 'copies=2',
            '--print-config')
    assert r.returncode == 0, r.stderr
    shown = yaml.safe_load(r.stdout)
    assert (shown['study']['sdm']['steps'], shown['study']['copies'], shown['study']['seg']['min_steps']) == (3000, 2, 1200)
    assert shown['rows'][-1] == 'Real + SDM frames' and 'All CycleGAN frames' not in shown['rows']
    assert not (tmp_path / 'run').exists()

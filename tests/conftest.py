import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tests import fixtures.py

import pytest  # noqa: E402

from echo_from_noise.cli import main  # noqa: E402
from echo_from_noise.phantom import make_phantom  # noqa: E402


# Shared by the bad-input files (test_robustness, test_trust); a test file with a `phantom` of its own uses that one.
@pytest.fixture(scope='module')
def phantom(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp('ph') / 'ph', patients=6, size=32, seed=1, workers=1, progress=False)


@pytest.fixture(scope='module')
def trained(phantom, tmp_path_factory):
    "A run with a 2-step smoke SDM per view, and a label-only dataset of deformed maps."
    run = tmp_path_factory.mktemp('run') / 'run'
    assert main(['train-sdm', str(phantom), str(run), '--profile', 'smoke', '--set', 'steps=2']) == 0
    aug = run.parent / 'aug'
    assert main(['augment', str(phantom), str(aug), '--copies', '1']) == 0
    return run, aug

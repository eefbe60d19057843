"""The notebooks carry what they make (tools/run_notebooks.py writes it) and stay small enough for a repository and a
docs site: a few hundred KB each, PNG and text only, and the pipeline templates without outputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parent.parent / 'nbs'
LIMIT_KB = 400
ALLOWED = {'image/png', 'text/plain', 'text/markdown', 'text/html'}
# module notebooks whose examples draw pictures: each must show at least one
PICTURES = ['00_labels', '03_phantom', '04_augment', '06_sdm', '07_segment', '08_evaluate', '08b_realism',
            '10_cyclegan', '11_adherence', '12_editor']


def outputs(path: Path) -> list:
    return [o for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]


@pytest.mark.parametrize('path', sorted(NBS.rglob('*.ipynb')), ids=lambda p: str(p.relative_to(NBS)))
def test_notebook_is_small_and_holds_only_static_outputs(path):
    assert path.stat().st_size <= LIMIT_KB * 1024, f'{path}: {path.stat().st_size // 1024} KB (limit {LIMIT_KB} KB)'
    outs = outputs(path)
    if path.parent.name == 'pipeline': assert not outs, f'{path}: a papermill template must carry no outputs'
    for o in outs:
        assert o['output_type'] in ('stream', 'display_data', 'execute_result'), f'{path}: {o["output_type"]} output'
        if o['output_type'] == 'stream': assert o['name'] == 'stdout', f'{path}: stderr output (progress bars, warnings)'
        else: assert set(o['data']) <= ALLOWED, f'{path}: output of type {set(o["data"]) - ALLOWED}'


@pytest.mark.parametrize('name', PICTURES)
def test_module_notebook_shows_its_pictures(name):
    pngs = [o for o in outputs(NBS / f'{name}.ipynb') if 'image/png' in o.get('data', {})]
    assert pngs, f'nbs/{name}.ipynb shows no picture: run `make notebooks` and commit the notebooks'


@pytest.mark.parametrize('path', sorted(NBS.glob('[0-9]*.ipynb')), ids=lambda p: p.name)
def test_module_notebook_shows_what_it_makes(path):
    "Every module notebook carries at least one output (a table, a printed setting, a picture), as nbdev projects do."
    assert outputs(path), f'{path}: no output; run `make notebooks` (tools/run_notebooks.py) and commit the notebook'

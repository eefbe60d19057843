"""The label-map editor in a real browser: Voila serves a notebook that opens the widget on a phantom frame, headless
Chromium (Debian's, driven by Playwright; no browser download) drags a control point and presses an edit button, and
the map checksum the kernel computes must change each time. A screenshot is kept in test-artifacts/."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
ARTIFACTS = Path(__file__).resolve().parent.parent / 'test-artifacts'


def _missing() -> str | None:
    if not CHROMIUM: return 'Chromium is not installed: `make test-browser` installs it and runs this test'
    for mod in ('playwright', 'voila', 'ipyevents'):
        try: __import__(mod)
        except ImportError: return f'{mod} is not installed: `make test-browser` installs it'
    return None


pytestmark = [pytest.mark.browser, pytest.mark.skipif(_missing() is not None, reason=str(_missing()))]

NOTEBOOK_CODE = """
import json
import numpy as np
from echo_from_noise.editor import EditorWidget
editor = EditorWidget(np.load('label.npy'), display_px=384)
json.dump(dict(points=editor.state.dst.tolist(), names=editor.state.names, scale=editor.scale,
               size=int(editor.state.label.shape[0])), open('points.json', 'w'))
editor
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def voila(tmp_path):
    import nbformat
    from echo_from_noise.dataset import load_frame, read_manifest
    from echo_from_noise.phantom import make_phantom
    ph = make_phantom(tmp_path / 'ph', patients=3, size=64, seed=0, views=['4CH'], phases=['ED'], workers=1, progress=False)
    np.save(tmp_path / 'label.npy', load_frame(ph, read_manifest(ph).iloc[0])[1])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CODE)])
    nb.metadata['kernelspec'] = dict(name='python3', display_name='Python 3', language='python')
    nbformat.write(nb, tmp_path / 'editor.ipynb')
    port = _free_port()
    log = open(tmp_path / 'voila.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'voila', 'editor.ipynb', '--no-browser', f'--port={port}',
                             '--Voila.ip=127.0.0.1', '--Voila.tornado_settings={"allow_origin": "*"}'],
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    for _ in range(120):
        try:
            urllib.request.urlopen(url + 'api', timeout=2)
            break
        except OSError:
            if proc.poll() is not None: break
            time.sleep(0.5)
    try:
        yield url, tmp_path
    finally:
        proc.terminate()
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()


def test_drag_a_control_point_in_chromium(voila):
    from playwright.sync_api import sync_playwright
    url, tmp = voila
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1300, 'height': 1000})
        try:
            page.goto(url, timeout=180_000)
            page.wait_for_selector('.efn-checksum code', timeout=180_000)
            before = page.inner_text('.efn-checksum code')
            pts = json.loads((tmp / 'points.json').read_text())
            canvas = page.locator('.efn-map').first
            canvas.wait_for(state='visible')
            box = canvas.bounding_box()
            k = box['width'] / (pts['size'] * pts['scale'])          # screen px per canvas px
            xy = np.array(pts['points'])
            gaps = [np.sort(np.hypot(*(xy - q).T))[1] for q in xy]
            r, c = xy[int(np.argmax(gaps))]                            # the point farthest from any other
            shown = "() => { const im = document.querySelector('.efn-map'); return [im.complete, im.naturalWidth, im.src]; }"
            page.wait_for_function(f'() => ({shown})()[1] > 0', timeout=60_000)   # the map picture is loaded
            assert page.evaluate(shown)[1] == pts['size'] * pts['scale']
            src0 = page.evaluate(shown)[2]
            x, y = box['x'] + (c + 0.5) * pts['scale'] * k, box['y'] + (r + 0.5) * pts['scale'] * k
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 24, y + 12, steps=6)
            page.mouse.up()
            page.wait_for_function("b => document.querySelector('.efn-checksum code').innerText !== b", arg=before,
                                   timeout=60_000)
            dragged = page.inner_text('.efn-checksum code')
            assert page.evaluate(shown)[2] != src0                     # the picture on screen was redrawn
            page.wait_for_function("() => document.querySelector('.efn-status').innerText.includes('moved')",
                                   timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / 'editor-drag.png'), full_page=True)
            page.get_by_role('button', name='Remove LA').click()
            page.wait_for_function("b => document.querySelector('.efn-checksum code').innerText !== b", arg=dragged,
                                   timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / 'editor-remove-la.png'), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / 'editor-failure.png'), full_page=True)
            raise
        finally:
            browser.close()
    assert dragged != before and len(before) == len(dragged) == 8
    assert (ARTIFACTS / 'editor-drag.png').stat().st_size > 10_000

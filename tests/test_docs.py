"""The documentation site (`make docs`, tools/make_docs.py): one page per notebook with the notebook's pictures, a
sidebar to every page; then headless Chromium opens the index and a module page and sees the figures load."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import make_docs  # noqa: E402

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
ARTIFACTS = ROOT / 'test-artifacts'


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site') / '_docs'
    make_docs.main(['--out', str(out)])
    return out


def test_every_notebook_has_a_page_with_its_title_and_the_sidebar(site):
    nbs = sorted(p.stem for p in (ROOT / 'nbs').glob('[0-9]*.ipynb'))
    assert len(nbs) >= 15 and (site / 'index.html').exists()
    for stem in nbs:
        page = (site / f'{stem}.html').read_text()
        assert 'class="efn-sidebar"' in page and page.count('class="current"') == 1, stem
    sdm = (site / '06_sdm.html').read_text()
    assert '<title>The Semantic Diffusion Model' in sdm
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', sdm)) >= 2    # the notebook's figures, embedded
    assert '#| export' not in sdm and '#|' not in re.sub(r'<style.*?</style>', '', sdm, flags=re.S)
    assert (site / 'pipeline' / '01_data.html').exists() and 'href="../06_sdm.html"' in \
        (site / 'pipeline' / '01_data.html').read_text()


def test_hidden_cells_are_left_out():
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('# T'),
                                         nbformat.v4.new_code_cell('#| hide\nsecret = 1'),
                                         nbformat.v4.new_code_cell('#| export\nshown = 2'),
                                         nbformat.v4.new_code_cell('#| default_exp x')])
    srcs = [c.source for c in make_docs.prepare(nb).cells]
    assert srcs == ['# T', 'shown = 2'] and make_docs.title_of(nb) == 'T'


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason='Chromium is not installed: `make test-browser` installs it')
def test_the_site_in_chromium(site):
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    loaded = "() => Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1300, 'height': 900})
        try:
            page.goto((site / 'index.html').as_uri(), timeout=60_000)
            assert page.locator('nav.efn-sidebar a').count() >= 20
            page.get_by_role('link', name=re.compile('^The Semantic Diffusion Model')).click()
            page.wait_for_load_state('load')
            assert page.url.endswith('/06_sdm.html')
            assert page.locator('h1').first.inner_text().startswith('The Semantic Diffusion Model')
            assert page.evaluate(loaded) >= 2                       # the loss curve and the samples are on screen
            page.screenshot(path=str(ARTIFACTS / 'docs-06_sdm.png'))
            page.goto((site / '08_evaluate.html').as_uri(), timeout=60_000)
            assert page.evaluate(loaded) >= 1                       # Figure 3 on the phantom
        except Exception:
            page.screenshot(path=str(ARTIFACTS / 'docs-failure.png'), full_page=True)
            raise
        finally:
            browser.close()

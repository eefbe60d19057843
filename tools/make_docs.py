"""Build the documentation site from the notebooks into `_docs/`: `make docs`.

nbdev's own site builder renders with Quarto, and Quarto cannot be installed on this project's machines: its PyPI
package (`quarto-cli`) downloads the Quarto binary from outside the package registries while it installs, which a
fresh CI machine cannot reach, and no registry here ships the binary. So the site is rendered with nbconvert (already
a dependency through Jupyter), following nbdev's conventions: one page per notebook in reading order, titled by the
notebook's `# heading` and `> summary`, `#| hide` cells left out, the `#|` directives stripped, the outputs the
notebooks carry (`make notebooks`: figures as embedded PNG, tables) shown as they are, and a sidebar linking every
page. The pipeline notebooks (papermill templates) get a page each under `pipeline/`.

    python tools/make_docs.py [--out _docs]
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'

SIDEBAR_CSS = """
<style>
body { margin-left: 17rem !important; }
nav.efn-sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 15.5rem; overflow-y: auto; padding: 1rem;
  background: #f6f7f9; border-right: 1px solid #ddd; font: 14px/1.45 system-ui, sans-serif; }
nav.efn-sidebar a { display: block; padding: 2px 4px; color: #1a4f8b; text-decoration: none; border-radius: 3px; }
nav.efn-sidebar a.current { background: #dde7f3; font-weight: 600; }
nav.efn-sidebar h3 { font-size: 13px; margin: 1rem 0 .3rem; color: #555; text-transform: uppercase; }
</style>
"""


def pages(nbs: Path = NBS) -> list[tuple[Path, str]]:
    "(notebook, page path relative to the site) in reading order: index first, then nbs/, then nbs/pipeline/."
    out = [(nbs / 'index.ipynb', 'index.html'), (nbs / 'guide.ipynb', 'guide.html')]
    out += [(p, f'{p.stem}.html') for p in sorted(nbs.glob('[0-9]*.ipynb'))]
    out += [(p, f'pipeline/{p.stem}.html') for p in sorted((nbs / 'pipeline').glob('[0-9]*.ipynb'))]
    return [(p, rel) for p, rel in out if p.exists()]


def title_of(nb) -> str:
    "The notebook's first `# heading`, as nbdev titles its pages."
    for c in nb.cells:
        if c.cell_type == 'markdown':
            m = re.search(r'^#\s+(.+)$', c.source, re.M)
            if m: return m.group(1).replace('`', '').strip()
    return 'echo_from_noise'


def _directives(source: str) -> list[str]:
    return [l[2:].strip().replace(' ', '') for l in source.splitlines() if l.startswith('#|')]


def prepare(nb):
    "The notebook as the site shows it: hidden cells dropped, directive lines stripped, empty code cells dropped."
    cells = []
    for c in nb.cells:
        if c.cell_type == 'code':
            if 'hide' in _directives(c.source): continue
            c.source = '\n'.join(l for l in c.source.splitlines() if not l.startswith('#|')).strip('\n')
            if not c.source and not c.get('outputs'): continue
        cells.append(c)
    nb.cells = cells
    return nb


def sidebar(entries: list[tuple[str, str]], current: str) -> str:
    "The navigation block: every page's title, linked relative to the current page."
    up = '../' * current.count('/')
    parts, section = ['<nav class="efn-sidebar"><strong>echo_from_noise</strong>'], None
    for rel, title in entries:
        sec = 'Pipeline notebooks' if rel.startswith('pipeline/') else 'Modules'
        if rel not in ('index.html', 'guide.html') and sec != section:
            parts.append(f'<h3>{sec}</h3>')
            section = sec
        cls = ' class="current"' if rel == current else ''
        parts.append(f'<a href="{up}{rel}"{cls}>{html.escape(title)}</a>')
    return '\n'.join(parts + ['</nav>'])


def build(out: Path, nbs: Path = NBS) -> list[Path]:
    "Render every page into `out` (replaced whole); returns the written files."
    todo = [(p, rel, nbformat.read(p, as_version=4)) for p, rel in pages(nbs)]
    entries = [(rel, title_of(nb)) for _, rel, nb in todo]
    exporter = HTMLExporter(template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    if out.exists(): shutil.rmtree(out)
    if (nbs / 'images').is_dir(): shutil.copytree(nbs / 'images', out / 'images')     # pictures the pages link to
    written = []
    for (p, rel, nb), (_, title) in zip(todo, entries):
        body, _ = exporter.from_notebook_node(prepare(nb), resources={'metadata': {'name': title}})
        body = body.replace('</head>', SIDEBAR_CSS + '</head>', 1)
        body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + sidebar(entries, rel), body, count=1)
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(body, encoding='utf-8')
        written.append(dest)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', type=Path, default=ROOT / '_docs', help='site folder (replaced whole; default _docs/)')
    a = ap.parse_args(argv)
    written = build(a.out)
    print(f'docs: {len(written)} pages in {a.out} (open {a.out / "index.html"})')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Execute the module notebooks in place so that they carry what they make (phantom frames, training curves, samples,
tables, figures), at the smoke and phantom scale their example cells use: `make notebooks`.

Kept per output: text, markdown, small HTML tables and PNG images; dropped: progress bars and warnings (stderr),
widget state and execution counts, so that a rerun on the same code changes as little as possible. The pipeline
notebooks (nbs/pipeline) are papermill templates and stay without outputs. tests/test_notebooks.py checks the result
(sizes, kinds of output, pictures present).

    python tools/run_notebooks.py [NOTEBOOK ...]      # default: every nbs/*.ipynb
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from echo_from_noise.runner import logged_kernel_manager

ROOT = Path(__file__).resolve().parent.parent
KEEP_MIME = ('image/png', 'text/markdown', 'text/html', 'text/plain')


def _clean_output(o):
    "The output without what changes from run to run or does not render statically; None to drop it."
    if o.output_type == 'stream': return o if o.name == 'stdout' else None
    if o.output_type == 'error': raise RuntimeError(f"{o.ename}: {o.evalue}")
    data = {k: v for k, v in o.get('data', {}).items() if k in KEEP_MIME}
    if 'image/png' in data: data = {'image/png': data['image/png']}
    elif set(data) == {'text/plain'} and str(data['text/plain']).startswith(('HBox(', 'VBox(', '<Figure size')):
        return None                       # the text stand-in of a widget or of a figure already shown as PNG
    if not data: return None
    o['data'] = data
    o['metadata'] = {}
    if 'execution_count' in o: o['execution_count'] = None
    return o


def _skip(source: str) -> bool:
    "Cells nbdev-test skips: `#| eval: false`, and those carrying one of the project's test flags (pyproject)."
    lines = [l.replace(' ', '') for l in source.splitlines() if l.startswith('#|')]
    return '#|eval:false' in lines or any(l in ('#|notest', '#|slow') for l in lines)


def run(path: Path) -> float:
    "Execute one notebook in its folder and write it back with cleaned outputs; returns the seconds it took."
    t0 = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    skipped = {i: c.source for i, c in enumerate(nb.cells) if c.cell_type == 'code' and _skip(c.source)}
    for i in skipped: nb.cells[i].source = ''          # as nbdev-test: `#| eval: false` and flagged cells do not run
    NotebookClient(nb, timeout=900, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}},
                   kernel_manager_class=logged_kernel_manager(subprocess.DEVNULL)).execute()   # no kernel start-up noise
    for i, src in skipped.items(): nb.cells[i].source, nb.cells[i].outputs = src, []
    for c in nb.cells:
        if c.cell_type != 'code': continue
        c.execution_count = None
        c.metadata.pop('execution', None)
        c.outputs = [o for o in (_clean_output(o) for o in c.outputs) if o is not None]
    for k in ('widgets', 'language_info'): nb.metadata.pop(k, None)     # as nbdev-clean leaves them
    nbformat.write(nb, path)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    paths = [Path(p) for p in (argv or sys.argv[1:])] or sorted((ROOT / 'nbs').glob('*.ipynb'))
    with tempfile.TemporaryDirectory() as scratch:       # a pipeline-stage example reuses one scratch run, then it goes
        os.environ['EFN_SCRATCH_DIR'] = scratch
        os.environ.setdefault('OMP_NUM_THREADS', '1')
        for p in paths:
            if p.name == 'index.ipynb' or p.parent.name == 'pipeline': continue
            print(f'{p.resolve().relative_to(ROOT)}: {run(p):.0f} s, {p.stat().st_size / 1024:.0f} KB', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python
"""Render nbs/index.ipynb to README.md.

nbdev's own `nbdev-readme` renders through quarto, a binary that cannot be installed on machines without
general internet access; this does the same job for our index notebook: markdown cells as they are,
code cells (without nbdev directives, `#| hide` cells left out) as fenced Python, text outputs as fenced text;
image links relative to nbs/ (`images/...`) point at `nbs/images/` from the repository root.
`make export` runs it and `make test` checks that README.md is current.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    parts = []
    for cell in nb['cells']:
        src = ''.join(cell['source']).strip('\n')
        lines = src.splitlines()
        directives = [l[2:].strip() for l in lines if l.startswith('#|')]
        if any(d.startswith('hide') for d in directives): continue
        body = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
        if not body: continue
        if cell['cell_type'] == 'markdown':
            parts.append(body.replace('](images/', '](nbs/images/'))     # pictures live in nbs/images/
        elif cell['cell_type'] == 'code':
            parts.append(f'```python\n{body}\n```')
            for out in cell.get('outputs', []):
                text = out.get('text') or out.get('data', {}).get('text/plain')
                if text: parts.append('```\n' + ''.join(text).rstrip('\n') + '\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    out = render(ROOT / 'nbs' / 'index.ipynb')
    (ROOT / 'README.md').write_text(out)
    sys.exit(0)

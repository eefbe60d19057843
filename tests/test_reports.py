"""benchmarks/common.py's `write_report`: a benchmark that regenerates its report keeps the sections measured by hand
below it (demo.md's earlier runs), and refuses a new report that would mix its own `## ` headings with them."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))   # `benchmarks` is a package at the repository root

from benchmarks.common import write_report  # noqa: E402


def test_keep_history_replaces_the_top_and_keeps_every_section_below(tmp_path, capsys):
    path = tmp_path / 'demo.md'
    path.write_text('# Demo\n\nold run: 41.4 min\n\n## An earlier run\n\n19.5 min\n\n## Another\n\n| a |\n')
    write_report(path, ['# Demo', '', 'new run: 15.1 min'], keep_history=True)
    text = path.read_text()
    assert text == '# Demo\n\nnew run: 15.1 min\n\n## An earlier run\n\n19.5 min\n\n## Another\n\n| a |\n'
    assert 'old run' not in text and '19.5 min' not in capsys.readouterr().out    # only the new part is printed
    write_report(path, ['# Demo', '', 'newer run: 15.0 min'], keep_history=True)   # again: the history once, not twice
    assert path.read_text().count('## An earlier run') == 1 and 'new run' not in path.read_text()


def test_keep_history_on_a_new_file_or_one_without_sections_writes_the_report_alone(tmp_path):
    fresh, flat = tmp_path / 'fresh.md', tmp_path / 'flat.md'
    flat.write_text('# Old\n\nno sections\n')
    for p in (fresh, flat):
        write_report(p, ['# New', '', 'body'], echo=False, keep_history=True)
        assert p.read_text() == '# New\n\nbody\n'


def test_keep_history_refuses_a_report_with_its_own_sections_and_leaves_the_file_alone(tmp_path):
    path = tmp_path / 'sdm.md'
    path.write_text('# SDM\n\n## Training\n\nold\n')
    with pytest.raises(ValueError, match='sdm.md'):
        write_report(path, ['# SDM', '', '## Training', '', 'new'], echo=False, keep_history=True)
    assert path.read_text() == '# SDM\n\n## Training\n\nold\n'
    write_report(path, ['# SDM', '', '## Training', '', 'new'], echo=False)    # without it: replaced whole, as before
    assert path.read_text() == '# SDM\n\n## Training\n\nnew\n'

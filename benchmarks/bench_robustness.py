"""Robustness benchmark: every bad input of issue 13 run through the real `efn` commands, with the message each gives,
kill/resume checks (SIGKILL, SIGINT, SIGTERM) for train-sdm, train-cyclegan, synthesize and efn paper, and the trust
boundaries of issue 30 (manifest paths, one writer per output, run records, late values, full disks), at smoke scale.
Writes benchmarks/robustness.md. Everything is made here (phantom, PNG folders, EchoNet files); takes ~35 min.

    python -m benchmarks.bench_robustness [--work DIR] [--skip-kills] [--trust-only]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
from tests.fixtures import write_echonet, write_pngs

from echo_from_noise.cli import main
from echo_from_noise.dataset import read_manifest
from echo_from_noise.phantom import make_phantom
from echo_from_noise.training import load_checkpoint
from echo_from_noise.sdm import SDM_KIND

EFN = [sys.executable, '-m', 'echo_from_noise']


def run_inprocess(argv) -> tuple[int, str]:
    "Exit code and the last message line (error or warning) of `efn argv`, run in this process."
    err = io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter('%(levelname)s: %(message)s'))
    logging.getLogger('echo_from_noise').addHandler(handler)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([str(a) for a in argv])
    finally:
        logging.getLogger('echo_from_noise').removeHandler(handler)
    lines = [l for l in err.getvalue().splitlines() if l.startswith(('efn: error', 'WARNING'))]
    return code, (lines[-1] if lines else '(no message)')


def bad_inputs(work: Path, smoke_run: Path | None) -> list:
    "[(what, command, exit code, message)] for each bad input."
    ph = make_phantom(work / 'ph', patients=6, size=32, seed=1, workers=1, progress=False)
    rows = []

    def case(what, argv, shown=None):
        code, msg = run_inprocess(argv)
        shown = shown or 'efn ' + ' '.join(str(a).replace(str(work) + '/', '') for a in argv)
        rows.append((what, shown, code, msg.replace(str(work) + '/', '')))
        print(f'{code}  {what}: {msg[:150]}')

    pngs = write_pngs(work / 'pngs' / 'same')
    case('OUT is SRC, --overwrite', ['prepare', 'pngs', pngs, pngs, '--size', 32, '--overwrite'])
    raw = write_pngs(work / 'parent' / 'raw')
    (work / 'parent/notes.txt').write_text('unrelated')
    case('OUT is a parent of SRC, --overwrite', ['prepare', 'pngs', raw, work / 'parent', '--size', 32, '--overwrite'])
    ds = work / 'ds'; shutil.copytree(ph, ds)
    case('augment DS into DS, --overwrite', ['augment', ds, ds, '--overwrite'])
    foreign = work / 'thesis'; foreign.mkdir(); (foreign / 'thesis.tex').write_text('x')
    case('--overwrite of a folder the project did not write', ['augment', ds, foreign, '--overwrite'])
    case('PNG names without a patient', ['prepare', 'pngs', write_pngs(work / 'noname', names=('img017', 'img018')),
                                          work / 'o1', '--size', 32, '--view', '4CH', '--phase', 'ED'])
    case('PNG names without a patient, --patient-regex', ['prepare', 'pngs', work / 'noname', work / 'o1b', '--size', 32,
                                                           '--view', '4CH', '--phase', 'ED', '--patient-regex', r'img(\d+)'])
    binary = write_pngs(work / 'binary')
    import cv2
    for m in (binary / 'masks').iterdir():
        cv2.imwrite(str(m), np.where(cv2.imread(str(m), cv2.IMREAD_UNCHANGED) == 1, 255, 0).astype(np.uint8))
    case('binary 0/255 masks', ['prepare', 'pngs', binary, work / 'o2', '--size', 32])
    case('binary 0/255 masks, --mask-values 0:0,255:1', ['prepare', 'pngs', binary, work / 'o2b', '--size', 32,
                                                          '--mask-values', '0:0,255:1'])
    sixteen = write_pngs(work / 'sixteen', names=('patient0001_4CH_ED',), h=64, w=64)
    p = sixteen / 'images/patient0001_4CH_ED.png'
    im = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(p), (im.astype(float) * 2672 / im.max()).round().astype(np.uint16))
    code, _ = run_inprocess(['prepare', 'pngs', sixteen, work / 'o3', '--size', 64])
    top = int(cv2.imread(str(work / 'o3/images/patient0001_4CH_ED.png'), cv2.IMREAD_UNCHANGED).max())
    rows.append(('12-bit data (max 2672) in a 16-bit PNG', 'efn prepare pngs sixteen o3 --size 64', code,
                 f'(no message) brightest pixel after prepare: {top} of 255 (2672/4095 x 255 = 166; was 10 = 2672/257)'))
    for cell, what in (('', 'EchoNet: empty coordinate'), ('abc', 'EchoNet: text in a coordinate')):
        e = write_echonet(work / f'echonet{len(cell)}', n=3)
        vt = pd.read_csv(e / 'VolumeTracings.csv', dtype=str); vt.loc[50, 'X1'] = cell
        vt.to_csv(e / 'VolumeTracings.csv', index=False)
        case(what, ['prepare', 'echonet', e, work / f'o4{len(cell)}', '--size', 32])
    case('EchoNet: the same, --skip-invalid', ['prepare', 'echonet', work / 'echonet3', work / 'o5', '--size', 32,
                                               '--skip-invalid'])
    sf = work / 'split.csv'; sf.write_text('patient,split\npatient0001,test\npatient9999,train\n')
    case('split file naming a patient not in the data', ['prepare', 'pngs', write_pngs(work / 'p6'), work / 'o6',
                                                          '--size', 32, '--split-file', sf])

    run = work / 'run'
    base = ['train-sdm', ph, run, '--profile', 'smoke', '--views', '2CH', '--set', 'steps=2', 'lr=1e-4', 'seed=5']
    assert run_inprocess(base)[0] == 0
    case('resume with another lr', base[:-3] + ['steps=4', 'lr=1e-3', 'seed=5'])
    shutil.copy(run / 'checkpoints/sdm_2CH.pt', run / 'checkpoints/sdm_4CH.pt')
    case('a 2CH checkpoint copied as sdm_4CH.pt', ['train-sdm', ph, run, '--profile', 'smoke', '--views', '4CH', '--set',
                                                   'steps=2', 'lr=1e-4', 'seed=5'])
    if smoke_run:
        case('efn paper --profile cpu on a finished smoke run', ['paper', '--profile', 'cpu', '--out', smoke_run],
             'efn paper --profile cpu --out SMOKE_RUN')
    test_only = work / 'test_only'; shutil.copytree(ph, test_only)
    read_manifest(test_only).assign(split='test').to_csv(test_only / 'manifest.csv', index=False)
    case('train-sdm on a dataset without train rows', ['train-sdm', test_only, work / 'r1', '--profile', 'smoke'])
    for s in ('phases=XX', 'steps=0', 'steps=-5', 'save_every=0', 'batch_size=0', 'lr=nan', 'device=cuda'):
        case(f'--set {s}', ['train-sdm', ph, work / 'r2', '--profile', 'smoke', '--set', s])
    case('efn paper --device cuda (no GPU)', ['paper', '--profile', 'smoke', '--device', 'cuda', '--out', work / 'r3'])
    empty = work / 'r4/checkpoints/sdm_4CH.pt'; empty.parent.mkdir(parents=True); empty.write_bytes(b'')
    case('a zero-byte checkpoint', ['train-sdm', ph, work / 'r4', '--profile', 'smoke', '--views', '4CH'])
    mixed = work / 'mixed'; shutil.copytree(ph, mixed)
    df = read_manifest(mixed)
    row = df[(df['split'] == 'train') & (df['view'] == '4CH') & (df['phase'] == 'ED')].iloc[-1]
    for col in ('image', 'label'): cv2.imwrite(str(mixed / row[col]), np.zeros((48, 48), np.uint8))
    case('one frame of another size', ['train-sdm', mixed, work / 'r5', '--profile', 'smoke'])
    rows.append(('config.yaml left after a refused train-sdm', '(the two rows above)', '-',
                 f'run directory made: {(work / "r5").exists()}'))
    aug = work / 'aug'; assert run_inprocess(['augment', ph, aug, '--copies', 1])[0] == 0
    assert run_inprocess(['train-sdm', ph, run, '--profile', 'smoke', '--views', '4CH', '--set', 'steps=2', 'lr=1e-4',
                          'seed=5'])[0] == 2   # still the copied 2CH model
    (run / 'checkpoints/sdm_4CH.pt').unlink()
    assert run_inprocess(['train-sdm', ph, run, '--profile', 'smoke', '--views', '4CH', '--set', 'steps=2', 'lr=1e-4',
                          'seed=5'])[0] == 0
    for args in (['--steps', 0], ['--steps', 5000], ['--batch-size', 0], ['--device', 'cuda'], ['--guidance', -5]):
        case('synthesize ' + ' '.join(map(str, args)), ['synthesize', run, aug, work / 's1', *args])
    full = work / 'full'; full.mkdir(); (full / 'x').write_text('x')
    case('synthesize into an existing OUT', ['synthesize', run, aug, full, '--steps', 2])
    (work / 'afile').write_text('x')
    case('synthesize into an OUT that cannot be made', ['synthesize', run, aug, work / 'afile/out', '--steps', 2])
    one = work / 'one'; (one / 'checkpoints').mkdir(parents=True)
    shutil.copy(run / 'checkpoints/sdm_2CH.pt', one / 'checkpoints')
    t0 = time.perf_counter()
    case('synthesize, second view has no checkpoint', ['synthesize', one, aug, work / 's2', '--steps', 2])
    rows[-1] = rows[-1][:3] + (rows[-1][3] + f' (after {time.perf_counter() - t0:.1f} s, before any sampling)',)
    ck = load_checkpoint(run / 'checkpoints/sdm_4CH.pt', SDM_KIND); ck['step'] = 1
    torch.save(ck, one / 'checkpoints/sdm_4CH.pt')
    case('synthesize with an unfinished checkpoint', ['synthesize', one, aug, work / 's3', '--steps', 2])
    return rows


# ---------------------------------------------------------------------------------------------- kill / resume

def _start(cmd, cwd=None):
    # SIGINT back to its default in the child: a shell's background job (nohup ... &) ignores it, and Python keeps an
    # ignored SIGINT ignored instead of turning it into KeyboardInterrupt
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                         env=dict(os.environ, EFN_TEXT_PROGRESS='', PYTHONUNBUFFERED='1'),
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out = []
    t = threading.Thread(target=lambda: out.extend(iter(lambda: p.stdout.read(1), '')), daemon=True)
    t.start()
    return p, out, t


def _signal_when(p, out, pattern, sig, extra_wait=0.0, timeout=900):
    "Send `sig` once `pattern` shows in the output (or the process ends); the exit code."
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < timeout and not re.search(pattern, ''.join(out)):
        time.sleep(0.1)
    time.sleep(extra_wait)
    if p.poll() is None: p.send_signal(sig)
    return p.wait(timeout=600)


def _same_params(a: Path, b: Path, kind: str) -> str:
    ca, cb = load_checkpoint(a, kind), load_checkpoint(b, kind)
    ta, tb = ca['model'], cb['model']
    eq = sum(torch.equal(ta[k], tb[k]) for k in ta)
    return f'{eq}/{len(ta)} tensors equal'


def _cached(work: Path, part: str, fn) -> list:
    "Rows of one part of the benchmark, kept in WORK/PART.json so that a rerun with --resume skips finished parts."
    f = work / f'{part}.json'
    if f.exists(): return [tuple(r) for r in json.loads(f.read_text())]
    rows = fn()
    f.write_text(json.dumps(rows))
    return rows


def kill_checks(work: Path, paper: bool = True) -> list:
    "[(command, signal, exit code, what was kept, after resuming)]"
    ph = work / 'kph'
    if not (ph / 'manifest.csv').exists(): make_phantom(ph, patients=6, size=32, seed=1, workers=1, progress=False)
    rows = _cached(work, 'trainers', lambda: _trainer_kills(work, ph))
    rows += _cached(work, 'synthesis', lambda: _synthesis_kills(work, ph))
    if not paper: return rows, None
    paper_rows = _cached(work, 'paper', lambda: _paper_kills(work))
    return rows + paper_rows, work / 'paper-ref'


def _trainer_kills(work: Path, ph: Path) -> list:
    rows = []
    trainers = [('train-sdm', 'echo_from_noise.sdm', 'sdm_4CH', ['--set', 'steps=60', 'save_every=20', 'log_every=1']),
                ('train-cyclegan', 'echo_from_noise.cyclegan', 'cyclegan_4CH',
                 ['--set', 'steps=60', 'save_every=20', 'log_every=1'])]
    for cmd, kind, name, sets in trainers:
        ref = work / f'{cmd}-ref'
        r = subprocess.run(EFN + [cmd, str(ph), str(ref), '--profile', 'smoke', '--views', '4CH', *sets],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        for sig in (signal.SIGKILL, signal.SIGINT, signal.SIGTERM):
            run = work / f'{cmd}-{sig.name}'
            full = EFN + [cmd, str(ph), str(run), '--profile', 'smoke', '--views', '4CH', *sets]
            p, out, _ = _start(full)
            code = _signal_when(p, out, r'\b(2[5-9]|3\d)/60\b', sig)     # past the step-20 checkpoint
            kept = load_checkpoint(run / f'checkpoints/{name}.pt', kind)['step'] if \
                (run / f'checkpoints/{name}.pt').exists() else 'nothing'
            r = subprocess.run(full, capture_output=True, text=True)
            same = _same_params(ref / f'checkpoints/{name}.pt', run / f'checkpoints/{name}.pt', kind)
            rows.append((f'efn {cmd}', sig.name, code, f'checkpoint at step {kept}',
                         f'exit {r.returncode}; vs uninterrupted: {same}'))
            print(rows[-1])
    # the same under torchrun (2 gloo processes): the agent passes SIGTERM to both ranks, which stop after one step
    run = work / 'torchrun'
    tr = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m', 'echo_from_noise',
          'train-sdm', str(ph), str(run), '--profile', 'smoke', '--views', '4CH', '--set', 'steps=100000',
          'save_every=100000', 'bf16=false']
    p, out, _ = _start(tr)
    code = _signal_when(p, out, r'\b(1[0-9]|2\d)/100000\b', signal.SIGTERM)
    kept = load_checkpoint(run / 'checkpoints/sdm_4CH.pt', SDM_KIND)['step']
    ranks = ''.join(out).count('stopped by SIGTERM')
    tr[tr.index('steps=100000')] = f'steps={kept + 3}'
    r = subprocess.run(tr, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    rows.append(('torchrun (2 processes) efn train-sdm', 'SIGTERM to torchrun', code,
                 f'checkpoint at step {kept}; ranks that said "stopped by SIGTERM": {ranks} of 2',
                 f'exit {r.returncode}; resumed to step {load_checkpoint(run / "checkpoints/sdm_4CH.pt", SDM_KIND)["step"]}'))
    print(rows[-1])
    return rows


def _synthesis_kills(work: Path, ph: Path) -> list:
    "Synthesis has no checkpoint (its output is written atomically); a killed run leaves a .partial folder."
    rows = []
    srun = work / 'train-sdm-ref'                           # a 4CH model: the maps are those of a 4CH-only phantom
    ph4 = make_phantom(work / 'kph4', patients=6, size=32, seed=1, views=['4CH'], workers=1, progress=False)
    aug = work / 'kaug'
    assert subprocess.run(EFN + ['augment', str(ph4), str(aug), '--copies', '3'], capture_output=True).returncode == 0
    ref = work / 'syn-ref'
    syn = EFN + ['synthesize', str(srun), str(aug), '{out}', '--steps', '40', '--batch-size', '4']
    r = subprocess.run([a.replace('{out}', str(ref)) for a in syn], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    for sig in (signal.SIGKILL, signal.SIGINT, signal.SIGTERM):
        out_dir = work / f'syn-{sig.name}'
        cmd = [a.replace('{out}', str(out_dir)) for a in syn]
        p, out, _ = _start(cmd)
        code = _signal_when(p, out, r'synthesize.*\b[3-9]/\d+ ', sig)
        left = sorted(q.name for q in work.glob(f'.{out_dir.name}.partial-*'))
        r = subprocess.run(cmd, capture_output=True, text=True)
        left_after = sorted(q.name for q in work.glob(f'.{out_dir.name}.*'))
        same = all((np.array(cv2_read(out_dir / f)) == np.array(cv2_read(ref / f))).all()
                   for f in read_manifest(ref)['image'])
        rows.append(('efn synthesize', sig.name, code, f'nothing in OUT; {len(left)} partial folder(s) beside it',
                     f'exit {r.returncode}; leftovers after the rerun: {len(left_after)}; images identical to an '
                     f'uninterrupted run: {same}'))
        print(rows[-1])
    return rows


def _paper_kills(work: Path) -> list:
    "The study: a smoke run killed in its CycleGAN stage, resumed, against an uninterrupted one."
    rows = []
    ref = work / 'paper-ref'
    r = subprocess.run(EFN + ['paper', '--profile', 'smoke', '--out', str(ref)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for sig in (signal.SIGKILL, signal.SIGINT, signal.SIGTERM):
        run = work / f'paper-{sig.name}'
        cmd = EFN + ['paper', '--profile', 'smoke', '--out', str(run)]
        p, out, _ = _start(cmd)
        code = _signal_when(p, out, r'train cyclegan_2CH', sig)
        stages = sorted(q.stem for q in (run / 'stages').glob('*.json'))
        r = subprocess.run(cmd, capture_output=True, text=True)
        same = (run / 'table1.md').exists() and \
            (run / 'table1.md').read_text().replace(str(run), '') == (ref / 'table1.md').read_text().replace(str(ref), '')
        rows.append(('efn paper (smoke)', sig.name, code, f'stages done: {", ".join(stages) or "none"}',
                     f'exit {r.returncode}; Table 1 identical to an uninterrupted run: {same}'))
        print(rows[-1])
    return rows


# ---------------------------------------------------------------------------------------------- trust boundaries

def _snapshot(root: Path) -> dict:
    "{relative path: (size, mtime)} of every file under `root` (what a case may not touch outside its output)."
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in root.rglob('*') if not p.is_dir()}


def _effects(before: dict, after: dict, allowed=()) -> tuple:
    "(escapes, lost): files made outside the `allowed` folders, and files outside them that changed or went."
    free = lambda k: any(k == a or k.startswith(a + '/') for a in allowed)
    made = [k for k in after if k not in before and not free(k)]
    lost = [k for k in before if not free(k) and after.get(k) != before[k]]
    return made, lost


def trust_cases(work: Path) -> list:
    """Every case of issue 30 through the real commands: [(group, case, command, exit, message, verdict)]. A case is
    'refused' when it exits non-zero with one `efn: error:` line, no traceback, nothing made outside its output and
    nothing changed that was there before; 'done' when it is meant to succeed and did."""
    import resource
    from echo_from_noise.config import study_config
    from echo_from_noise.dataset import DatasetWriter, load_frame
    from echo_from_noise.files import output_lock
    import yaml
    work.mkdir(parents=True, exist_ok=True)
    ph = make_phantom(work / 'ph', patients=6, size=32, seed=1, workers=1, progress=False)
    run, aug = work / 'run', work / 'aug'
    assert main(['train-sdm', str(ph), str(run), '--profile', 'smoke', '--set', 'steps=2']) == 0
    assert main(['augment', str(ph), str(aug), '--copies', '1']) == 0
    rows, rel = [], lambda s: str(s).replace(str(work) + '/', '')

    def record(group, what, shown, code, err, tb, made, lost, expect):
        lines = [l for l in err.splitlines() if l.startswith(('efn: error', 'WARNING'))]
        msg = rel(lines[-1]) if lines else '(no message)'
        ok = (code == 0) if expect == 0 else (code not in (0, None) and len([l for l in lines if l.startswith('efn: error')]) == 1)
        problems = (['traceback'] * tb + [f'escape: {made[:2]}'] * bool(made) + [f'lost: {lost[:2]}'] * bool(lost) +
                    ['silent wrong (exit 0)'] * (expect != 0 and code == 0) + ['not as expected'] * (not ok))
        verdict = ', '.join(problems) or ('done' if expect == 0 else 'refused')
        rows.append((group, what, shown, code, msg, verdict))
        print(f'{verdict:<8} {code}  {what}: {msg[:140]}')

    def case(group, what, argv, out=(), expect=2, shown=None):
        before = _snapshot(work)
        err, tb, code = io.StringIO(), False, None
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main([str(a) for a in argv])
        except BaseException:
            import traceback
            tb, code = True, 'raised'
            err.write(traceback.format_exc())
        made, lost = _effects(before, _snapshot(work), [rel(o) for o in out])
        record(group, what, shown or 'efn ' + ' '.join(rel(a) for a in argv), code, err.getvalue(),
               tb or 'Traceback' in err.getvalue(), made, lost, expect)

    def limited(group, what, argv, max_bytes, out=()):
        before = _snapshot(work)
        lim = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
        r = subprocess.run(EFN + [str(a) for a in argv], capture_output=True, text=True, preexec_fn=lim, timeout=600)
        made, lost = _effects(before, _snapshot(work), [rel(o) for o in out])
        record(group, what, f'ulimit -f {max_bytes // 512}; efn ' + ' '.join(rel(a) for a in argv), r.returncode,
               r.stderr, 'Traceback' in r.stderr, made, lost, 2)

    def edited(name, **cells):
        d = work / name
        shutil.copytree(ph, d)
        df = read_manifest(d)
        for c, v in cells.items(): df.loc[0, c] = v
        df.to_csv(d / 'manifest.csv', index=False)
        return d

    # 1, 2. a manifest names only files inside its dataset
    g = 'manifest paths'
    deep = work / 'a' / 'b' / 'c'; deep.mkdir(parents=True)
    esc = edited('a/b/c/esc', id='../../../ESCAPED')
    case(g, "id '../../../ESCAPED' (wrote ESCAPED_aug0..4.png three levels up)", ['augment', esc, deep / 'aug'])
    case(g, 'the same id, efn synthesize', ['synthesize', run, esc, deep / 'syn', '--steps', 2])
    case(g, 'the same id, efn train-sdm', ['train-sdm', esc, deep / 'r', '--profile', 'smoke'])
    case(g, "id 'a/b' (a path separator)", ['augment', edited('slash', id='a/b'), work / 'o_slash'])
    case(g, "id '..'", ['augment', edited('dots', id='..'), work / 'o_dots'])
    case(g, "image '../../../../etc/passwd'", ['augment', edited('passwd', image='../../../../etc/passwd'), work / 'o1'])
    case(g, "image '../../../../etc/passwd', efn realism", ['realism', work / 'passwd', ph, '--steps', 1, '--repeats', 1])
    case(g, "label '/etc/passwd' (absolute)", ['augment', edited('abs', label='/etc/passwd'), work / 'o2'])
    case(g, "image 'images/../../outside.png'", ['realism', edited('dotdot', image='images/../../outside.png'), ph,
                                                 '--steps', 1, '--repeats', 1])
    outside = work / 'outside.png'
    shutil.copy(ph / read_manifest(ph).loc[0, 'image'], outside)
    link = edited('link', image='images/link.png')
    (link / 'images' / 'link.png').symlink_to(outside)
    case(g, 'image: a symbolic link to a PNG outside the dataset', ['realism', link, ph, '--steps', 1, '--repeats', 1])
    llink = edited('llink', label='labels/link.png')
    (llink / 'labels' / 'link.png').symlink_to(outside)
    case(g, 'label: a symbolic link to a PNG outside the dataset', ['augment', llink, work / 'o3'])

    # 3. one writer per output
    g = 'one writer'
    first = subprocess.Popen(EFN + ['synthesize', str(run), str(aug), str(work / 'S'), '--steps', '400',
                                    '--batch-size', '4'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = work / '.S.lock'
    t0 = time.time()
    while not (lock.exists() and lock.read_text()) and time.time() - t0 < 120 and first.poll() is None: time.sleep(0.05)
    case(g, 'a second efn synthesize of the same OUT (both exited 0; S held the second\'s images)',
         ['synthesize', run, aug, work / 'S', '--steps', 2, '--sampler', 'ddim'], out=[work / 'S'])
    case(g, 'the same, with --overwrite', ['synthesize', run, aug, work / 'S', '--steps', 2, '--overwrite'],
         out=[work / 'S'])
    rc = first.wait(timeout=900)
    gens = sorted(set(read_manifest(work / 'S')['generator'])) if rc == 0 else []
    rows.append((g, 'the first efn synthesize, after the two above', 'efn synthesize run aug S --steps 400', rc,
                 f'(no message) S holds {len(read_manifest(work / "S"))} images of {gens}', 'done' if rc == 0 else 'failed'))
    with output_lock(work / 'busy'):
        case(g, 'efn phantom OUT while another command writes OUT', ['phantom', work / 'busy', '--patients', 4,
                                                                      '--size', 32, '--workers', 1])
        case(g, 'efn prepare pngs SRC OUT while another command writes OUT',
             ['prepare', 'pngs', write_pngs(work / 'pngs'), work / 'busy', '--size', 32])
    with output_lock(work / 'locked'):
        case(g, 'efn paper --out RUN while another command writes RUN', ['paper', '--profile', 'smoke', '--out',
                                                                        work / 'locked'])
        case(g, 'efn train-sdm into a RUN another command writes', ['train-sdm', ph, work / 'locked', '--profile', 'smoke'])
        case(g, 'efn train-cyclegan into a RUN another command writes', ['train-cyclegan', ph, work / 'locked',
                                                                          '--profile', 'smoke'])
    before = _snapshot(work)
    w = DatasetWriter(work / 'raced', 32)
    w.add('a', 'p1', '4CH', 'ED', 'train', load_frame(ph, read_manifest(ph).iloc[0])[1])
    (work / 'raced').mkdir(); (work / 'raced' / 'theirs.txt').write_text('keep')
    before['raced/theirs.txt'] = _snapshot(work)['raced/theirs.txt']
    try: w.commit(); code, msg = 0, ''
    except Exception as e: code, msg = 2, f'efn: error: {e}'
    made, lost = _effects(before, _snapshot(work))
    record(g, 'another program wrote OUT between the check and the final rename', 'DatasetWriter.commit()', code, msg,
           False, made, lost, 2)

    # 4. a run proves what made it
    g = 'run records'
    def smoke_run(name, config=None, data='{"stage": "data", "seconds": 1.0, "result": {}}'):
        r = work / name
        (r / 'stages').mkdir(parents=True)
        (r / 'config.yaml').write_text(yaml.safe_dump(dict(study=study_config('smoke').to_dict()))
                                       if config is None else config)
        (r / 'stages' / 'data.json').write_text(data)
        return r
    e = smoke_run('empty', '')
    case(g, 'an empty config.yaml, efn paper --profile cpu (was: every stage "done before")',
         ['paper', '--profile', 'cpu', '--out', e])
    case(g, 'an empty config.yaml, efn paper --profile smoke', ['paper', '--profile', 'smoke', '--out', e])
    case(g, 'an empty config.yaml, efn train-sdm', ['train-sdm', ph, e, '--profile', 'smoke'])
    case(g, 'a config.yaml cut off mid-line', ['paper', '--profile', 'smoke', '--out', smoke_run('torn', 'study: {prof')])
    nc = smoke_run('noconf'); (nc / 'config.yaml').unlink()
    case(g, 'config.yaml deleted beside stages/', ['paper', '--profile', 'smoke', '--out', nc])
    case(g, 'a 0-byte stages/data.json', ['paper', '--profile', 'smoke', '--out', smoke_run('zero', data='')])
    case(g, 'stages/data.json holding another stage\'s record',
         ['paper', '--profile', 'smoke', '--out', smoke_run('other', data='{"stage": "sdm", "result": {}}')])

    # 5. every study value checked before the first stage
    g = 'late values'
    for s in ('synth_steps=0', 'copies=0', 'patients=0', 'seg.width=0', 'sdm.timesteps=2', 'realism.repeats=0',
              'realism.steps=0', 'guidance=nan', 'seg.lr=inf', 'sdm.lr=nan', 'seg.epochs=0', 'test_patients=8', 'size=48',
              'adherence_maps=0'):
        case(g, f'--set {s}', ['paper', '--profile', 'smoke', '--out', work / 'late', '--set', s])
    ext = work / 'ext'; shutil.copytree(ph, ext)
    read_manifest(ext).assign(split='train').to_csv(ext / 'manifest.csv', index=False)
    case(g, '--external DATASET without test frames', ['paper', '--profile', 'smoke', '--out', work / 'late',
                                                       '--external', ext])

    # 6, 7. no number from an untrained classifier; no silent overwrite
    g = 'results folders'
    case(g, 'efn realism --steps 0 (reported AUC 0.33 ± 0.21)', ['realism', ph, ph, '--steps', 0])
    case(g, 'efn realism --out OUT', ['realism', ph, ph, '--steps', 2, '--repeats', 1, '--out', work / 'real'],
         out=[work / 'real'], expect=0)
    case(g, 'efn realism --out OUT again (replaced the first results)', ['realism', ph, ph, '--steps', 3, '--repeats', 1,
                                                                          '--out', work / 'real'])
    (work / 'real' / 'thesis.tex').write_text('mine')
    case(g, 'efn realism --out OUT --overwrite, OUT holding a file of the user\'s',
         ['realism', ph, ph, '--steps', 3, '--repeats', 1, '--out', work / 'real', '--overwrite'])

    # 8. a full disk (a file size limit: writes fail as on a full disk)
    g = 'full disk'
    limited(g, 'efn train-sdm: the checkpoint (torch: "unexpected pos")', ['train-sdm', ph, work / 'fd_run',
            '--profile', 'smoke', '--views', '4CH', '--set', 'steps=2'], 100_000, out=[work / 'fd_run'])
    limited(g, 'efn phantom: a PNG (OpenCV returns False)', ['phantom', work / 'fd_ph', '--patients', 4, '--size', 128,
                                                             '--workers', 1], 2_000)
    limited(g, 'efn augment: the manifest (pandas names no file)', ['augment', ph, work / 'fd_aug', '--copies', 1], 1_000)
    limited(g, 'efn synthesize', ['synthesize', run, aug, work / 'fd_syn', '--steps', 2], 500)
    limited(g, 'efn realism --out', ['realism', ph, ph, '--steps', 2, '--repeats', 1, '--out', work / 'fd_real'], 1_000)
    limited(g, 'efn paper (smoke): a stage in its kernel, papermill\'s notebook', ['paper', '--profile', 'smoke', '--out',
                                                                               work / 'fd_paper'], 200_000, out=[work / 'fd_paper'])
    stale = work / 'stale' / 'checkpoints' / '.sdm_4CH.pt.tmp-999999999'
    stale.parent.mkdir(parents=True); stale.write_bytes(b'half a checkpoint')
    case(g, 'a temporary checkpoint left by a SIGKILLed trainer, then the trainer again',
         ['train-sdm', ph, work / 'stale', '--profile', 'smoke', '--views', '4CH', '--set', 'steps=1'],
         out=[work / 'stale'], expect=0)
    rows[-1] = rows[-1][:4] + (f'(no message) temporary file still there: {stale.exists()}',
                               rows[-1][5] if not stale.exists() else 'not removed')

    # 9. messages
    g = 'messages'
    case(g, '--set sdm.channels=[16,x] (said "invalid literal for int()")', ['paper', '--profile', 'smoke', '--out',
                                                                             work / 'm', '--set', 'sdm.channels=[16,x]'])
    case(g, 'a 100 KB value (was echoed whole)', ['paper', '--profile', 'smoke', '--out', work / 'm', '--set',
                                                  'sampler=' + 'x' * 100_000], shown='efn paper --set sampler=xxx... (100 KB)')
    case(g, 'a key given twice (took the last)', ['paper', '--profile', 'smoke', '--out', work / 'm', '--set',
                                                  'copies=1', 'copies=2'])
    case(g, 'a key given twice, efn train-sdm', ['train-sdm', ph, work / 'm', '--profile', 'smoke', '--set', 'lr=1',
                                                  'lr=2'])
    return rows


def study_cases(work: Path) -> list:
    "The cases that need a finished study: a copied-in SDM, a deleted segmenter, efn evaluate twice."
    work.mkdir(parents=True, exist_ok=True)
    ref = work / 'study'
    r = subprocess.run(EFN + ['paper', '--profile', 'smoke', '--out', str(ref)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = []

    def sub(what, argv, expect_code, needle_src):
        p = subprocess.run(EFN + [str(a) for a in argv], capture_output=True, text=True, timeout=900)
        lines = [l for l in p.stderr.splitlines() if l.startswith(('efn: error', 'WARNING'))]
        msg = (lines[-1] if lines else '(no message)').replace(str(work) + '/', '')
        ok = p.returncode == expect_code and 'Traceback' not in p.stderr and needle_src(p)
        rows.append(('study runs', what, 'efn ' + ' '.join(str(a).replace(str(work) + '/', '') for a in argv),
                     p.returncode, msg, ('refused' if expect_code else 'done') if ok else 'not as expected'))
        print(rows[-1])

    from echo_from_noise.config import study_config
    from echo_from_noise.sdm import train_sdm
    cp = work / 'copied'; shutil.copytree(ref, cp)
    train_sdm(cp / 'data' / 'real', work / 'other', 'sdm_4CH', '4CH', study_config('smoke', overrides=[
        'sdm.objective=paper']).sdm, progress=False)
    shutil.copy(work / 'other' / 'checkpoints' / 'sdm_4CH.pt', cp / 'checkpoints' / 'sdm_4CH.pt')
    sub('an SDM of another objective copied into the run, then the synthesize stage (was used as the run\'s own)',
        ['paper', '--profile', 'smoke', '--out', cp, '--redo-from', 'synthesize'], 3,
        lambda p: 'was trained with a different model' in p.stderr and not (cp / 'synthetic').exists())
    gone = work / 'gone'; shutil.copytree(ref, gone)
    (gone / 'checkpoints' / 'seg_all_real_frames.pt').unlink()
    sub('a segmenter checkpoint deleted, efn evaluate (its row vanished without a word)',
        ['evaluate', gone, ref / 'data' / 'real', '--out', work / 'ev_gone'], 0,
        lambda p: 'Not evaluated' in (work / 'ev_gone' / 'table.md').read_text())
    sub('the same, the evaluate stage', ['paper', '--profile', 'smoke', '--out', gone, '--redo-from', 'evaluate'], 3,
        lambda p: 'Table 1 would lack 1 row(s)' in p.stderr)
    sub('efn evaluate', ['evaluate', ref, ref / 'data' / 'real', '--out', work / 'ev'], 0, lambda p: True)
    before = (work / 'ev' / 'table.csv').read_bytes()
    sub('efn evaluate again into the same --out (replaced the first results)',
        ['evaluate', ref, ref / 'data' / 'real', '--out', work / 'ev'], 2,
        lambda p: (work / 'ev' / 'table.csv').read_bytes() == before)
    (work / 'ev' / 'notes.txt').write_text('mine')
    sub('efn evaluate --overwrite, --out holding a file of the user\'s', ['evaluate', ref, ref / 'data' / 'real', '--out',
        work / 'ev', '--overwrite'], 2, lambda p: (work / 'ev' / 'notes.txt').exists())
    return rows


def trust_markdown(rows: list, seconds: float) -> list:
    "The trust-boundary section of robustness.md, with its tally."
    esc = lambda s: str(s).replace('|', '\\|')
    bad = lambda word: sum(word in r[5] for r in rows)
    md = ['## Trust boundaries', '',
          f'`python -m benchmarks.bench_robustness --trust-only` ({seconds:.0f} s, {os.cpu_count()} cores, torch '
          f'{torch.__version__}): every case of issue 30, through the real commands. Each case snapshots the work folder '
          'before and after: **escape** is a file made outside the command\'s output, **lost** a file that was there '
          'and changed or went, **silent wrong** an exit 0 where a refusal was due. Disk-full cases run the command '
          'under a file size limit (`ulimit -f`), where every write fails as on a full disk; an OS error exits 1, a '
          'failed study stage 3.', '',
          f'Cases: {len(rows)}; tracebacks: {bad("traceback")}; silent wrong: {bad("silent wrong")}; data lost: '
          f'{bad("lost")}; escapes: {bad("escape")}; not as expected: {bad("not as expected")}.', '',
          '| group | case | command | exit | message | verdict |', '|---|---|---|---|---|---|']
    md += [f'| {g} | {esc(w)} | `{esc(c[:160])}` | {code} | {esc(m[:400])} | {v} |' for g, w, c, code, m, v in rows]
    return md


def merge_trust(md_path: Path, section: list) -> str:
    "robustness.md with its trust-boundary section put in (replaced when there is one), before the hand-written notes."
    old = md_path.read_text().splitlines() if md_path.exists() else ['# Robustness: bad input, kills and resumes']
    start = next((i for i, l in enumerate(old) if l == '## Trust boundaries'), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith(('## ', 'Notes on this run'))), len(old))
        old = old[:start] + old[end:]
    at = next((i for i, l in enumerate(old) if l.startswith('Notes on this run')), len(old))
    rows = sum(l.startswith('| ') and not l.startswith(('| input |', '| command |', '| group |')) for l in old + section)
    section = section + ['', f'With the bad-input and kill-and-resume rows above: {rows} cases in robustness.md.', '']
    return '\n'.join(old[:at] + section + old[at:]).rstrip('\n') + '\n'


def cv2_read(p):
    import cv2
    return cv2.imread(str(p), cv2.IMREAD_UNCHANGED)


def main_(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', default=str(ROOT / 'runs' / 'bench_robustness'))
    ap.add_argument('--skip-kills', action='store_true')
    ap.add_argument('--no-paper', action='store_true', help='leave out the efn paper kill checks (about 20 min)')
    ap.add_argument('--resume', action='store_true', help='keep WORK and the parts of the kill checks it has finished')
    ap.add_argument('--trust-only', action='store_true',
                    help='run only the trust-boundary cases (about 6 min) and put their section into robustness.md')
    a = ap.parse_args(argv)
    work = Path(a.work)
    md_path = ROOT / 'benchmarks' / 'robustness.md'
    if a.trust_only:
        shutil.rmtree(work / 'trust', ignore_errors=True)
        t0 = time.time()
        rows = trust_cases(work / 'trust') + study_cases(work / 'trust' / 'studies')
        md_path.write_text(merge_trust(md_path, trust_markdown(rows, time.time() - t0)))
        print(md_path.read_text())
        return
    if not a.resume: shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / 'bad', ignore_errors=True)
    t0 = time.time()
    kills, smoke = ([], None) if a.skip_kills else kill_checks(work / 'kills', not a.no_paper)
    bad = bad_inputs(work / 'bad', smoke)
    md = ['# Robustness: bad input, kills and resumes', '',
          f'`python -m benchmarks.bench_robustness` ({time.time() - t0:.0f} s on this machine, {os.cpu_count()} cores, '
          f'torch {torch.__version__}); every row below was produced by that run, through the real `efn` commands at '
          'smoke scale. Paths are shown relative to the work folder.', '',
          '## Bad input', '', '| input | command | exit | message |', '|---|---|---|---|']
    esc = lambda s: str(s).replace('|', '\\|')
    md += [f'| {esc(w)} | `{esc(c)}` | {code} | {esc(m)} |' for w, c, code, m in bad]
    if kills:
        md += ['', '## Kill and resume', '',
               'Each command was stopped by the signal while it worked, then run again unchanged (trainers: 60 smoke '
               'steps, periodic checkpoint every 20; the signal came after step 25). Exit -9 is SIGKILL; 130 is '
               'Ctrl-C; 143 is SIGTERM handled (the trainer finished its step and saved); -15 is SIGTERM outside a '
               'training loop, where there is nothing unsaved.', '',
               '| command | signal | exit | kept | after the same command again |', '|---|---|---|---|---|']
        md += [f'| {c} | {s} | {code} | {esc(k)} | {esc(r)} |' for c, s, code, k, r in kills]
    t1 = time.time()
    trust = trust_cases(work / 'trust') + study_cases(work / 'trust' / 'studies')
    md += [''] + trust_markdown(trust, time.time() - t1)
    md_path.write_text('\n'.join(md) + '\n')
    print('\n'.join(md))


if __name__ == '__main__':
    main_()

#!/usr/bin/env python
"""Why the gpu profile's SDM step is slow on a GPU, and what layout and precision buy: the gpu profile's network (128 px,
batch 16, v objective, hybrid loss, fused AdamW) timed as `train_sdm` runs it (NCHW, bf16 autocast), in channels_last,
in TF32 without autocast, and with torch.compile when time allows; each also as an inference forward pass (what a
sampler step costs). Then torch.profiler's top CUDA kernels of the default step. Writes `--report`.

    python -m benchmarks.bench_gpu_step --report benchmarks/gpu_step.md      # on the GPU machine
    python -m benchmarks.bench_gpu_step --no-profile --budget 600 --modes "NCHW bf16,NCHW bf16 compile,NCHW bf16 compile reduce-overhead"
"""
import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import measured_on
from echo_from_noise.distributed import pick_device
from echo_from_noise.diffusion import bf16_autocast
from echo_from_noise.labels import one_hot
from echo_from_noise.sdm import SDMNet, build_model, diffusion_for, make_config

T0 = time.perf_counter()


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def timed(fn, dev, warm: int = 5, n: int = 10, blocks: int = 2) -> float:
    "Median seconds per call of `fn` over `blocks` blocks of `n` calls, after `warm` calls, the device synchronised."
    for _ in range(warm): fn()
    sync(dev)
    per = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(n): fn()
        sync(dev)
        per.append((time.perf_counter() - t) / n)
    return statistics.median(per)


def setup(cfg, dev, mode: str = 'NCHW bf16', batch: int | None = None):
    "(training step, inference forward, the network) of the profile's SDM on `dev`, random data, `batch` (the profile's)."
    torch.manual_seed(0)
    fmt = torch.channels_last if 'channels_last' in mode else torch.contiguous_format
    net = SDMNet(build_model(cfg)).to(dev).to(memory_format=fmt)
    model = torch.compile(net, mode='reduce-overhead' if 'reduce-overhead' in mode else None) if 'compile' in mode else net
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, fused=True)
    d = diffusion_for(cfg)
    b = batch or cfg.batch_size
    x0 = (torch.rand(b, 1, cfg.size, cfg.size, device=dev) * 2 - 1).contiguous(memory_format=fmt)
    seg = one_hot(torch.randint(0, 5, (b, cfg.size, cfg.size), device=dev)).contiguous(memory_format=fmt)
    ac = bf16_autocast(dev, 'tf32' not in mode)

    def step():
        t = torch.randint(0, cfg.timesteps, (b,), device=dev)
        noise = torch.randn_like(x0)
        xt = d.q_sample(x0, t, noise)
        with ac: out = model(xt, t, seg)
        loss = d.training_losses(out, x0, xt, t, noise, cfg.vb_weight, cfg.min_snr)['loss'].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def forward():
        t = torch.randint(0, cfg.timesteps, (b,), device=dev)
        with ac: model(x0, t, seg)
    return step, forward, net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--report', default='benchmarks/gpu_step.md')
    ap.add_argument('--profile', default='gpu')
    ap.add_argument('--device', default='auto')
    ap.add_argument('--budget', type=float, default=150)
    ap.add_argument('--modes', default='NCHW bf16 (as train_sdm),channels_last bf16,NCHW tf32,channels_last bf16 compile',
                    help='comma-separated settings; a name holds what it sets: channels_last, tf32 (else bf16), compile, '
                         'reduce-overhead (torch.compile\'s CUDA-graph mode)')
    ap.add_argument('--no-profile', action='store_true', help='skip torch.profiler\'s table')
    args = ap.parse_args()
    dev = pick_device(args.device)
    cfg = make_config(args.profile)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or 'cpu'
    head = [f'# The gpu profile\'s SDM step on {name}: layout and precision', '',
            f'{measured_on(torch.cuda.get_device_name() if torch.cuda.is_available() else None)}; profile "{args.profile}" ({cfg.size} px, batch '
            f'{cfg.batch_size}); `python -m benchmarks.bench_gpu_step` reproduces it. Median of two timed blocks of 10 '
            'after 5 warm-up calls, the device synchronised.', '',
            '| setting | training step (ms) | forward, no grad (ms) |', '|---|---|---|']
    rows, prof_lines = [], []

    def write():
        Path(args.report).write_text('\n'.join(head + rows + [''] + prof_lines) + '\n')

    for mode in args.modes.split(','):
        if 'compile' in mode and time.perf_counter() - T0 > args.budget / 2:
            rows.append(f'| {mode} | not run (time) | |'); continue
        try:
            step, fwd, _ = setup(cfg, dev, mode)
            s, f = timed(step, dev), timed(fwd, dev)
            rows.append(f'| {mode} | {s * 1e3:.1f} | {f * 1e3:.1f} |')
        except Exception as e:
            rows.append(f'| {mode} | failed: {type(e).__name__}: {str(e)[:120]} | |')
        print(rows[-1], f'({time.perf_counter() - T0:.0f} s)', flush=True)
        write()
        if mode.startswith('NCHW bf16') and 'compile' not in mode and not args.no_profile:
            from torch.profiler import ProfilerActivity, profile
            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == 'cuda' else [])
            with profile(activities=acts) as prof:
                for _ in range(3): step()
                sync(dev)
            key = 'self_device_time_total' if dev.type == 'cuda' else 'self_cpu_time_total'
            ev = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
            tot = sum(getattr(e, key, 0) for e in ev)
            cpu = sum(e.self_cpu_time_total for e in ev)
            prof_lines += [f'Default step, 3 steps under torch.profiler: device time {tot / 3e3:.1f} ms/step, CPU (self, '
                           f'all ops) {cpu / 3e3:.1f} ms/step. Top operators by device time:', '',
                           '| operator | calls/step | device ms/step | share |', '|---|---|---|---|']
            prof_lines += [f'| {e.key[:70]} | {e.count / 3:.0f} | {getattr(e, key, 0) / 3e3:.2f} | '
                           f'{100 * getattr(e, key, 0) / max(tot, 1):.0f} % |' for e in ev[:18]]
            write()
            del step, fwd
    print(Path(args.report).read_text())


if __name__ == '__main__':
    main()

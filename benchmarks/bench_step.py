#!/usr/bin/env python
"""Where the SDM's training step spends its time on this machine, and what the usual CPU speed-ups buy: the cpu
profile's network (64 px, batch 8) trained with the v objective's hybrid loss and fused AdamW, in fp32 (bf16 only
where the CPU does it natively), eager, channels_last, torch.compile (inductor) and oneDNN switched off.
Writes benchmarks/step.md (its sections below the first `## ` heading, measured by hand, stay).

Each setting: 3 warm-up steps (compilation included for torch.compile), then the mean of 20 timed steps. The
profile lists the operators by self time over 5 eager steps.
"""
import time
from pathlib import Path

import torch

from benchmarks.common import measured_on, write_report
from echo_from_noise.diffusion import bf16_autocast, bf16_native
from echo_from_noise.labels import one_hot
from echo_from_noise.sdm import SDMNet, build_model, diffusion_for, make_config

SETTINGS = ('eager', 'channels_last', 'torch.compile', 'oneDNN off')


def setup(mode: str):
    torch.manual_seed(0)
    torch.backends.mkldnn.enabled = mode != 'oneDNN off'
    cfg = make_config('cpu')
    net = SDMNet(build_model(cfg))
    if mode == 'channels_last': net = net.to(memory_format=torch.channels_last)
    model = torch.compile(net) if mode == 'torch.compile' else net
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, fused=True)
    d = diffusion_for(cfg)
    x0 = torch.rand(cfg.batch_size, 1, cfg.size, cfg.size) * 2 - 1
    seg = one_hot(torch.randint(0, 5, (cfg.batch_size, cfg.size, cfg.size)))
    fmt = torch.channels_last if mode == 'channels_last' else torch.contiguous_format
    autocast = bf16_autocast('cpu', cfg.bf16)

    def step():
        t = torch.randint(0, cfg.timesteps, (cfg.batch_size,))
        noise = torch.randn_like(x0)
        xt = d.q_sample(x0, t, noise)
        with autocast:
            out = model(xt.contiguous(memory_format=fmt), t, seg.contiguous(memory_format=fmt))
        loss = d.training_losses(out, x0, xt, t, noise, cfg.vb_weight, cfg.min_snr)['loss'].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main():
    rows = []
    for mode in SETTINGS:
        step = setup(mode)
        t0 = time.perf_counter()
        for _ in range(3): step()
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(20): step()
        rows.append((mode, (time.perf_counter() - t0) / 20, warm))
        print(f'{mode}: {rows[-1][1]:.3f} s/step (warm-up {warm:.1f} s)', flush=True)
    torch.backends.mkldnn.enabled = True
    step = setup('eager')
    for _ in range(2): step()
    from torch.profiler import profile
    with profile() as prof:
        for _ in range(5): step()
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops)
    base = rows[0][1]
    lines = [
        '# SDM training step: where the time goes, and what CPU speed-ups buy',
        '',
        f'{measured_on()}; bf16 native: {bf16_native(torch.device("cpu"))} (without it the cpu '
        'profile trains in fp32). `python -m benchmarks.bench_step` reproduces it. cpu profile network, 64 px, batch 8, '
        'v objective, hybrid loss, fused AdamW; no data loading or EMA (see benchmarks/sdm.md for the whole `train_sdm`).',
        '',
        '| setting | s/step | vs eager | warm-up (3 steps) |',
        '|---|---|---|---|',
        *[f'| {m} | {s:.3f} | {s / base:.2f}x | {w:.1f} s |' for m, s, w in rows],
        '',
        'Operators by self time, 5 eager steps:',
        '',
        '| operator | share of the step |',
        '|---|---|',
        *[f'| {e.key} | {100 * e.self_cpu_time_total / total:.1f} % |' for e in ops[:8]],
        '',
    ]
    out = write_report(Path(__file__).with_name('step.md'), lines, echo=False, keep_history=True)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

"""Benchmark Le MuMo fusion-token routing: `pruned` (default) against `full` attention, one training step of `FusionTokenEncoder`.

Run `python benchmarks/fusion_routing.py` (CPU, batch 4) or e.g. `python benchmarks/fusion_routing.py --device cuda --batch 64`.
ViT-S (D=384, 12 layers, 6 heads), 224 px RGB + 1-channel depth, patch 16: N=196 patches, so the sequence is 1 + 3·196 = 589 tokens.
`pruned` runs the first layer for the 197 kept queries only (`pruned_first_block`: CLS over [CLS, RGB, companion], each fusion token
over its own 3 tokens; keys and values still come from all 589 tokens) and the other 11 layers over [CLS + fusion] = 197 tokens; `full`
runs all 12 layers unmasked over 589. `--with-persistent` adds the persistent routing (589 tokens, masked, every layer) to the table; it does not
enter the ratios. Both encoders hold the same weights. The last line printed is exactly `ratio=<full time / pruned time>` (medians).

A training step is: zero the grads, forward `enc(rgb, depth) -> (B, 1 + N, D)`, loss = mean of squares of the output, backward. Inputs
are float32 (`--dtype bfloat16` runs the step under autocast on CUDA).

FLOPs: one step under `torch.utils.flop_counter.FlopCounterMode`, with scaled-dot-product attention forced to the MATH backend for
that step only. The counter has no formula for PyTorch's fused CPU attention kernel (it would count attention as 0 FLOPs); the MATH
backend computes the same dense products as bmm, which it counts. A boolean mask does not make dense attention cheaper, so the masked
layers of `persistent` are counted (and run) at full cost; pruning is where the saving comes from.

Time: after one warm-up step of each variant, steps are measured alternately (pruned, full, full, pruned, ...) so that load changes
on a shared machine hit both; we report the median and minimum per variant. The number of rounds (2 to `--max-reps`) adapts to
`--budget` seconds, measured from the warm-up steps. On CUDA each step is synchronized before the clock is read.

On a shared CPU, use `--threads 1` unless the cores are idle: when another process holds a core, torch's OpenMP threads wait at
every barrier, which slows short operations most and so penalises the 197-token layers (measured here with one of two cores busy:
a ViT-S block at 197 tokens took 0.5 s with 2 threads against 0.11 s with 1, at 589 tokens 0.76 s against 0.42 s).
"""
from __future__ import annotations
import argparse, contextlib, os, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root, so jepa_lab imports without installation

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from jepa_lab.models import create_fusion_encoder

IMG, PATCH, PRESET = 224, 16, 'vit_small'

def encoders(routings: list[str], device: str) -> dict:
    "One ViT-S fusion encoder per routing, all with the weights of the first."
    torch.manual_seed(0)
    encs = {r: create_fusion_encoder(PRESET, r, img_size=IMG, patch_size=PATCH).to(device).train() for r in routings}
    for e in encs.values(): e.load_state_dict(encs[routings[0]].state_dict())
    return encs

def inputs(batch: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(batch)
    return torch.randn(batch, 3, IMG, IMG, generator=g).to(device), torch.randn(batch, 1, IMG, IMG, generator=g).to(device)

def sync(device: str) -> None:
    if device.startswith('cuda'): torch.cuda.synchronize()

def train_step(enc, rgb, depth, dtype) -> torch.Tensor:
    "Zero grads, forward, mean-square loss of the output tokens, backward; returns the loss."
    enc.zero_grad(set_to_none=True)
    amp = torch.autocast(rgb.device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    with amp: out = enc(rgb, depth)
    loss = out.float().pow(2).mean()
    loss.backward()
    return loss.detach()

def step_flops(enc, rgb, depth, dtype) -> tuple[int, int]:
    "FLOPs of one training step (forward+backward), and the part in attention matmuls (bmm under the MATH backend)."
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter: train_step(enc, rgb, depth, dtype)
    counts = counter.get_flop_counts()['Global']
    return counter.get_total_flops(), sum(v for k, v in counts.items() if 'bmm' in str(k))

def timed(enc, rgb, depth, dtype, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    train_step(enc, rgb, depth, dtype)
    sync(device)
    return time.perf_counter() - t0

def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--dtype', choices=['float32', 'bfloat16'], default='float32')
    p.add_argument('--budget', type=float, default=60.0, help='seconds for the timed rounds (after warm-up and FLOP counting)')
    p.add_argument('--max-reps', type=int, default=7)
    p.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument('--with-persistent', action='store_true', help='also time the persistent routing (not part of the ratios)')
    args = p.parse_args(argv)
    if args.threads: torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)

    names = ['pruned', 'full'] + (['persistent'] if args.with_persistent else [])
    n = (IMG // PATCH) ** 2
    dev = torch.cuda.get_device_name() if args.device.startswith('cuda') else f"CPU, {torch.get_num_threads()} threads, {os.cpu_count()} cpus"
    load = os.getloadavg()
    print(f"FusionTokenEncoder {PRESET} training step (forward+backward), {IMG} px, patch {PATCH}, N={n}, batch {args.batch}, "
          f"{args.dtype}; {dev}; torch {torch.__version__}, loadavg {load[0]:.2f}")
    if not args.device.startswith('cuda') and load[0] > 0.5:
        print(f"warning: the machine was already loaded (1-min loadavg {load[0]:.2f}) -- timings are contended"
              + ("; with busy cores, OpenMP threads wait at barriers: consider --threads 1" if torch.get_num_threads() > 1 else ''))

    t_start = time.perf_counter()
    encs, (rgb, depth) = encoders(names, args.device), inputs(args.batch, args.device)
    res = {k: {'times': []} for k in names}
    for k in names:
        res[k]['flops'], res[k]['attn_flops'] = step_flops(encs[k], rgb, depth, dtype)
        res[k]['warm'] = timed(encs[k], rgb, depth, dtype, args.device)
    per_round = sum(res[k]['warm'] for k in names)
    rounds = int(min(args.max_reps, max(2, args.budget // max(per_round, 1e-9))))
    for r in range(rounds):
        for k in (names if r % 2 == 0 else names[::-1]):   # interleave, alternating who goes first
            res[k]['times'].append(timed(encs[k], rgb, depth, dtype, args.device))

    tokens = {'pruned': f"{1 + 3 * n}->{1 + n}", 'full': f"{1 + 3 * n}", 'persistent': f"{1 + 3 * n} (masked)"}
    hdr = f"{'routing':11s} {'tokens':>11} {'GFLOPs/step':>12} {'attn GFLOPs':>12} {'median ms':>10} {'min ms':>10}  reps"
    print('\n' + hdr + '\n' + '-' * len(hdr))
    for k in names:
        r = res[k]
        print(f"{k:11s} {tokens[k]:>11} {r['flops'] / 1e9:12.1f} {r['attn_flops'] / 1e9:12.1f} "
              f"{statistics.median(r['times']) * 1e3:10.1f} {min(r['times']) * 1e3:10.1f}  {len(r['times'])}")
    med = {k: statistics.median(res[k]['times']) for k in names}
    print(f"\nFLOPs ratio (full / pruned): {res['full']['flops'] / res['pruned']['flops']:.2f}x "
          f"({res['full']['flops'] / 1e9:.1f} / {res['pruned']['flops'] / 1e9:.1f} GFLOPs per step)")
    load = os.getloadavg()
    print(f"benchmark wall time {time.perf_counter() - t_start:.1f} s; loadavg now {load[0]:.2f}")
    print(f"ratio={med['full'] / med['pruned']:.3f}")

if __name__ == '__main__':
    main()

"""Benchmark M3-JEPA's MoE predictor: top-k dispatch against running every expert densely, one training step of `MultiGateMoE`.

Run `python benchmarks/mmoe.py` (CPU) or e.g. `python benchmarks/mmoe.py --device cuda`. The predictor has n=12 experts and k=4
(seed 003's choice), width 768 in and out and an MoE width of 768 (`--width`); the experts are Linear(768, 768)–GELU–Linear(768, 768), the
released code's expert shape (`mlp_ratio=1`; `--mlp-ratio 4` gives a transformer-style 3072 hidden). The batch is 1024 inputs.
Both predictors hold the same weights and route the same way; they differ only in the dispatch:

- `topk`: each expert runs once, on the inputs that chose it (sort the 1024·4 assignments by expert, gather, run, weight,
  scatter-add back): k/n of the expert FLOPs;
- `dense`: every expert runs on every input, then the top-k outputs are gathered and weighted (as the released code does).

A training step is: zero the grads, forward `moe(x, 'prediction', 0)`, loss = mean of squares of the output, backward. The step
also holds what both variants share (input projection, gate, LayerNorm, output head), so the ratio is that of whole steps.

Time: after one warm-up step of each, steps are measured alternately (topk, dense, dense, topk, ...) so that load changes on a
shared machine hit both; we report the median and minimum per variant. On CUDA each step is synchronized before the clock is read.
Threads: by default as many as the process can get — the CPUs it may run on, less the load already on them, at least 1 (on a
shared machine OpenMP threads spin at barriers when another process holds a core); `--threads` overrides. The last line printed
is exactly `ratio=<top-k time / dense time>` (medians).
"""
from __future__ import annotations
import argparse, os, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root, so jepa_lab imports without installation

import torch
from torch.utils.flop_counter import FlopCounterMode

from jepa_lab.models.moe import MultiGateMoE

N_EXPERTS, K = 12, 4

def free_cpus() -> int:
    "CPUs this process may use, less the 1-minute load already on the machine; at least 1."
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    return max(1, min(cpus, round(cpus - os.getloadavg()[0])))

def predictors(width: int, mlp_ratio: float, device: str) -> dict:
    torch.manual_seed(0)
    moes = {d: MultiGateMoE(width, width, dim=width, n_experts=N_EXPERTS, k=K, mlp_ratio=mlp_ratio, dispatch=d).to(device).train()
            for d in ('topk', 'dense')}
    moes['dense'].load_state_dict(moes['topk'].state_dict())
    return moes

def sync(device: str) -> None:
    if device.startswith('cuda'): torch.cuda.synchronize()

def train_step(moe, x) -> torch.Tensor:
    moe.zero_grad(set_to_none=True)
    loss = moe(x, 'prediction', 0).pow(2).mean()
    loss.backward()
    return loss.detach()

def timed(moe, x, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    train_step(moe, x)
    sync(device)
    return time.perf_counter() - t0

def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch', type=int, default=1024)
    p.add_argument('--width', type=int, default=768, help='input, output and MoE width')
    p.add_argument('--mlp-ratio', type=float, default=1.0, help='expert hidden width / width (1: the released experts)')
    p.add_argument('--reps', type=int, default=7, help='timed steps per variant')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: the CPUs the process can get)')
    args = p.parse_args(argv)
    load = os.getloadavg()[0]
    if not args.device.startswith('cuda'): torch.set_num_threads(args.threads or free_cpus())
    dev = torch.cuda.get_device_name() if args.device.startswith('cuda') else f"CPU, {torch.get_num_threads()} threads, {os.cpu_count()} cpus"
    W = args.width
    hidden = int(args.mlp_ratio * W)
    print(f"MultiGateMoE training step (forward+backward): n={N_EXPERTS}, k={K}, batch {args.batch}, width {W}, "
          f"experts Linear({W},{hidden})-GELU-Linear({hidden},{W}); {dev}; torch {torch.__version__}, loadavg {load:.2f}")

    t_start = time.perf_counter()
    moes = predictors(W, args.mlp_ratio, args.device)
    x = torch.randn(args.batch, W, generator=torch.Generator().manual_seed(0)).to(args.device)
    losses = {k: train_step(m, x).item() for k, m in moes.items()}                      # also the warm-up
    assert abs(losses['topk'] - losses['dense']) <= 1e-4 * abs(losses['dense']), losses   # same weights, same function
    flops = {}
    for k, m in moes.items():
        counter = FlopCounterMode(display=False)
        with counter: train_step(m, x)
        flops[k] = counter.get_total_flops()
    times = {k: [] for k in moes}
    for r in range(args.reps):
        for k in (('topk', 'dense') if r % 2 == 0 else ('dense', 'topk')):       # interleave, alternating who goes first
            times[k].append(timed(moes[k], x, args.device))

    hdr = f"{'dispatch':9s} {'GFLOPs/step':>12} {'median ms':>10} {'min ms':>10}  reps"
    print('\n' + hdr + '\n' + '-' * len(hdr))
    for k in moes:
        print(f"{k:9s} {flops[k] / 1e9:12.1f} {statistics.median(times[k]) * 1e3:10.1f} {min(times[k]) * 1e3:10.1f}  {len(times[k])}")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nFLOPs ratio (topk / dense): {flops['topk'] / flops['dense']:.3f}")
    print(f"benchmark wall time {time.perf_counter() - t_start:.1f} s; loadavg now {os.getloadavg()[0]:.2f}")
    print(f"ratio={med['topk'] / med['dense']:.3f}")

if __name__ == '__main__':
    main()

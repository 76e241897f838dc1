"""Benchmark DMT-JEPA's overhead over I-JEPA: time per training step and peak memory, same encoder, predictor and masks.

Run `python benchmarks/dmt_overhead.py` (CPU: ViT-Tiny at 64 px, patch 8 -> an 8x8 grid, batch 16) or e.g.
`python benchmarks/dmt_overhead.py --device cuda --encoder vit_base --img 224 --patch 16 --batch 128` (the paper's Table 6 setting
is ViT-B/16, where DMT-JEPA costs 608.2 ms against I-JEPA's 606.4 ms per step and the same 21.9 GB).

A training step is what the trainer does: draw the step's multi-block masks, forward (target encoder on the image, MSN + target
LAT head for DMT-JEPA, context encoder on the context patches, context LAT head, predictor), backward, AdamW step, EMA update of the
target encoder (and head). Both methods share the context/target encoder and predictor weights, and draw the same masks at each step
(same mask seed, same step index). The predictor is the paper's (384 wide, 6 deep) unless `--pred-dim` / `--pred-depth` say otherwise.

Time: after `--warmup` steps of each, steps alternate (I-JEPA, DMT, DMT, I-JEPA, ...) so that load on a shared machine hits both; we
report the median and minimum per method. On CUDA each step is synchronized before the clock is read.
Memory: on CUDA, `torch.cuda.max_memory_allocated` over one step (after the warm-up). On CPU, the peak resident set size
(`ru_maxrss`) of a fresh subprocess per method running the warm-up plus three steps, minus its RSS after building the model and
inputs; the difference between the two methods is what MSN and the LAT heads add.

The last line printed is exactly `ratio=<DMT-JEPA median step time / I-JEPA median step time>`.
"""
from __future__ import annotations
import argparse, json, os, resource, statistics, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root, so jepa_lab imports without installation

import torch
from jepa_lab.methods import IJEPA, IJEPAConfig, DMTJEPA, DMTJEPAConfig

METHODS = ('ijepa', 'dmt_jepa')

def build(args, names=METHODS) -> dict:
    "I-JEPA and DMT-JEPA (or those of `names`) with the same encoder/predictor weights, each with its AdamW."
    kw = dict(encoder=args.encoder, img_size=args.img, patch_size=args.patch, pred_dim=args.pred_dim, pred_depth=args.pred_depth,
              min_keep=args.min_keep)
    torch.manual_seed(0)
    ij = IJEPA(IJEPAConfig(**kw))
    dmt = DMTJEPA(DMTJEPAConfig(**kw))
    missing = dmt.load_state_dict(ij.state_dict(), strict=False).missing_keys
    assert all(k.startswith(('context_head.', 'target_head.')) for k in missing), missing
    out = {}
    for name, m in (('ijepa', ij), ('dmt_jepa', dmt)):
        if name not in names: continue
        m.to(args.device).train()
        out[name] = (m, torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.04))
    return out

def inputs(args) -> dict:
    g = torch.Generator().manual_seed(0)
    return {'global': torch.randn(args.batch, 1, 3, args.img, args.img, generator=g).to(args.device)}

def sync(device: str) -> None:
    if device.startswith('cuda'): torch.cuda.synchronize()

def train_step(method, opt, views, step: int, total: int, amp: bool) -> float:
    "One trainer step: forward (masks drawn inside), backward, optimizer step, EMA; returns the loss."
    opt.zero_grad(set_to_none=True)
    with torch.autocast(views['global'].device.type, dtype=torch.bfloat16, enabled=amp):
        out = method(views, step)
    out.loss.float().backward()
    opt.step()
    method.on_step_end(step, total)
    return out.loss.item()

def timed(method, opt, views, step, total, args) -> tuple[float, float]:
    "Wall-clock and process CPU seconds of one training step."
    sync(args.device)
    t0, c0 = time.perf_counter(), time.process_time()
    train_step(method, opt, views, step, total, args.amp)
    sync(args.device)
    return time.perf_counter() - t0, time.process_time() - c0

def rss_mb() -> float:
    "Peak resident set size of this process so far (MB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def current_rss_mb() -> float:
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20

def cpu_peak_memory(name: str, args) -> float:
    "Peak RSS growth (MB) of a fresh process training `name` for warm-up + 3 steps (CPU)."
    argv = [sys.executable, __file__, '--memory-only', name] + [a for a in sys.argv[1:]]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if r.returncode: raise RuntimeError(f"memory run of {name} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])['peak_mb']

def memory_only(args) -> None:
    models, views = build(args, [args.memory_only]), inputs(args)
    m, opt = models[args.memory_only]
    base = current_rss_mb()
    for s in range(args.warmup + 3): train_step(m, opt, views, s, 1000, args.amp)
    print(json.dumps(dict(peak_mb=rss_mb() - base)))

def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--encoder', default='vit_tiny')
    p.add_argument('--img', type=int, default=64)
    p.add_argument('--patch', type=int, default=8)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--pred-dim', type=int, default=384)
    p.add_argument('--pred-depth', type=int, default=6)
    p.add_argument('--min-keep', type=int, default=4)
    p.add_argument('--reps', type=int, default=10, help='timed steps per method')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads (1 on a shared machine; at most 2 here)')
    p.add_argument('--amp', action='store_true', help='bf16 autocast (CUDA), as the trainer does on GPU')
    p.add_argument('--memory-only', choices=METHODS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_only: return memory_only(args)

    models, views = build(args), inputs(args)
    total = args.warmup + 2 * args.reps
    for s in range(args.warmup):
        for name in METHODS: train_step(*models[name], views, s, total, args.amp)
    times, cpu, mem = {n: [] for n in METHODS}, {n: [] for n in METHODS}, {}
    for r in range(args.reps):
        order = METHODS if r % 2 == 0 else METHODS[::-1]
        for name in order:
            if args.device.startswith('cuda'): torch.cuda.reset_peak_memory_stats()
            wall, proc = timed(*models[name], views, args.warmup + r, total, args)
            times[name].append(wall); cpu[name].append(proc)
            if args.device.startswith('cuda'): mem[name] = max(mem.get(name, 0.0), torch.cuda.max_memory_allocated() / 2**20)
    if not args.device.startswith('cuda'):
        del models
        mem = {n: cpu_peak_memory(n, args) for n in METHODS}
    n_params = {n: sum(p.numel() for p in (IJEPA if n == 'ijepa' else DMTJEPA)(
        (IJEPAConfig if n == 'ijepa' else DMTJEPAConfig)(encoder=args.encoder, img_size=args.img, patch_size=args.patch,
                                                         pred_dim=args.pred_dim, pred_depth=args.pred_depth, min_keep=args.min_keep)).parameters())
                for n in METHODS}
    grid = args.img // args.patch
    print(f"{args.encoder} {args.img}px patch {args.patch} ({grid}x{grid} grid), predictor {args.pred_dim}x{args.pred_depth}, batch {args.batch}, "
          f"device {args.device}, threads {torch.get_num_threads()}, amp {args.amp}, {args.reps} interleaved steps each")
    mem_kind = 'peak CUDA allocated' if args.device.startswith('cuda') else 'peak RSS growth'
    print(f"{'method':<10} {'median ms':>10} {'min ms':>9} {'median CPU ms':>14} {mem_kind + ' MB':>24} {'params (M)':>11}")
    for n in METHODS:
        print(f"{n:<10} {1e3 * statistics.median(times[n]):>10.1f} {1e3 * min(times[n]):>9.1f} {1e3 * statistics.median(cpu[n]):>14.1f} "
              f"{mem[n]:>24.1f} {n_params[n] / 1e6:>11.2f}")
    # on a shared CPU with one thread, process CPU time is what other jobs disturb least; on CUDA wall-clock is the measure
    key = cpu if args.device == 'cpu' and args.threads == 1 else times
    print(f"wall_ratio={statistics.median(times['dmt_jepa']) / statistics.median(times['ijepa']):.3f}  "
          f"cpu_ratio={statistics.median(cpu['dmt_jepa']) / statistics.median(cpu['ijepa']):.3f}  "
          f"memory_ratio={mem['dmt_jepa'] / mem['ijepa']:.3f}")
    print(f"ratio={statistics.median(key['dmt_jepa']) / statistics.median(key['ijepa']):.3f}")

if __name__ == '__main__':
    main()

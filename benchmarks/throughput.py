"""Benchmark the trainer's whole step against the bare model step (LeJEPA), and the fast path's samples/s and model FLOPs utilisation.

Run `python benchmarks/throughput.py`. On a GPU the default is the issue's setting: LeJEPA ViT-S/16, 2 global views at 224 px and no
local views, batch 256, bf16, fused AdamW, on scikit-learn's digits drawn at 224 px (`--compile`, `--gpu-augment` turn those on, in both
variants where they apply). On CPU it is the quickstart's run (`jepa-lab quickstart`, nbs/experiments/pretrain.ipynb): ViT-Nano/4 on
16 px digits, 2 global views of 16 px and 2 local of 8 px, batch 64 (`--quick`: batch 16 and a small projector, for the tests).

- `trainer`: `jepa_lab.train.train` itself, in-process, on a fresh run folder per round: data loading, per-sample (or device)
  augmentation, forward, backward, gradient clipping, AdamW, the online probes (and their optimizer), the diagnostics and the metrics
  log, every step (`log_every=1`). Its time per step is the trainer's own `sec_per_step` (the wall time between consecutive log rows,
  so every part of the loop counts), from `metrics.jsonl`; the first `--warmup` steps of each round are left out.
- `bare`: the same method (same seed) on one pre-made, already collated batch on the device: forward (autocast as the trainer),
  backward, gradient clipping, AdamW step; nothing else. Timed per step, synchronised on CUDA.

The variants alternate, round after round (trainer, bare, bare, trainer, ...), so that load changes on a shared machine hit both; the
medians over all timed steps are reported. Torch threads are set as the trainer sets them (`jepa_lab.train.fast.set_threads`:
`--threads` or the cores this process may use less the DataLoader workers, `--num-workers`, by default
`jepa_lab.data.default_workers()`). Model FLOPs per step (forward and backward, attention included) are counted once with
`jepa_lab.train.profile.step_flops`; MFU = FLOPs / time / the GPU's dense bf16 peak (H100/H200: 989 TFLOP/s; `--peak-tflops` for others).
The last line printed is exactly `ratio=<trainer median time per step / bare median time per step>`.
"""
from __future__ import annotations
import argparse, json, os, statistics, sys, tempfile, time, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root, so jepa_lab imports without installation

import torch
from torch import nn

from jepa_lab.data import default_workers, make_dataset
from jepa_lab.train import RunConfig, build_method, param_groups, resolve_device, train
from jepa_lab.train.fast import compile_method, make_optimizer, set_threads, use_channels_last
from jepa_lab.train.profile import ssl_batch, step_flops

PEAK_TFLOPS = {'H100': 989.0, 'H200': 989.0, 'A100': 312.0, 'L40S': 362.0}   # dense bf16

QUICKSTART = dict(encoder='vit_nano', patch_size=4, global_size=16, local_size=8, n_local=2, global_scale=(0.4, 1.0),
                  local_scale=(0.15, 0.4), proj_hidden=512, proj_dim=64, n_slices=256)   # nbs/experiments/pretrain.ipynb's defaults

def config(args, device: torch.device, out_dir) -> RunConfig:
    "The run both variants share: the issue's GPU setting, the quickstart's on CPU (`--quick`: its model, a smaller batch)."
    gpu = device.type == 'cuda' and not args.quick
    m = dict(encoder='vit_small', patch_size=16, global_size=224, local_size=96, n_local=0) if gpu else dict(QUICKSTART)
    m.update({k: v for k, v in dict(encoder=args.encoder, patch_size=args.patch, global_size=args.img, n_local=args.n_local).items() if v is not None})
    if args.quick: m.update(proj_hidden=32, proj_dim=8, n_slices=32)
    batch = args.batch or (256 if gpu else 16 if args.quick else 64)
    data = args.dataset or 'digits'
    dargs = dict(size=m['global_size'], **({'n': max(4 * batch, 512)} if data == 'shapes' else {}))
    return RunConfig(method='lejepa', method_args=m, dataset=data, dataset_args=dargs, batch_size=batch,
                     steps=args.warmup + args.steps, log_every=1, ckpt_every=10**9, progress=False, device=str(device),
                     compile=args.compile, gpu_augment=args.gpu_augment, threads=args.threads, out_dir=str(out_dir),
                     num_workers=default_workers() if args.num_workers is None else args.num_workers)

def trainer_round(cfg: RunConfig, warmup: int) -> list[float]:
    "Seconds per step of `train(cfg)` on a fresh run folder, after `warmup` steps."
    with tempfile.TemporaryDirectory() as d:
        cfg = RunConfig.from_dict({**cfg.to_dict(), 'out_dir': d})
        train(cfg)
        rows = [json.loads(l) for l in (Path(d) / 'metrics.jsonl').read_text().splitlines()]
    return [r['sec_per_step'] for r in rows if r['step'] > warmup]

class Bare:
    "The method's forward, backward, clipping and AdamW step on one pre-made batch."
    def __init__(self, cfg: RunConfig, device: torch.device):
        self.device, self.bf16 = device, device.type == 'cuda' and cfg.precision != 'fp32'
        self.method = compile_method(build_method(cfg).to(device), cfg)
        use_channels_last(self.method, device)
        data = make_dataset(cfg.dataset, split='train', **cfg.dataset_args)
        self.views = ssl_batch(self.method, [data[i][0] for i in range(cfg.batch_size)], cfg.batch_size, device)
        self.opt = make_optimizer(param_groups(self.method), cfg, device)
        self.clip, self.i = cfg.grad_clip, 0

    def step(self, optimizer: bool = True):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.method(self.views, self.i).loss
        self.opt.zero_grad(set_to_none=True)
        loss.float().backward()
        nn.utils.clip_grad_norm_(self.method.parameters(), self.clip)
        if optimizer: self.opt.step()
        self.i += 1

    def timed(self, n: int) -> list[float]:
        out = []
        for _ in range(n):
            if self.device.type == 'cuda': torch.cuda.synchronize(self.device)
            t0 = time.perf_counter()
            self.step()
            if self.device.type == 'cuda': torch.cuda.synchronize(self.device)
            out.append(time.perf_counter() - t0)
        return out

def peak_flops(device: torch.device, override: float | None) -> float | None:
    if override: return override * 1e12
    if device.type != 'cuda': return None
    name = torch.cuda.get_device_name(device)
    return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in name), None)

def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='auto')
    p.add_argument('--quick', action='store_true', help='tiny model and few steps (the tests)')
    p.add_argument('--encoder'); p.add_argument('--img', type=int); p.add_argument('--patch', type=int); p.add_argument('--batch', type=int)
    p.add_argument('--n-local', type=int, default=None); p.add_argument('--dataset')
    p.add_argument('--steps', type=int, default=None, help='timed steps per round and variant')
    p.add_argument('--warmup', type=int, default=None, help='untimed steps at the start of each trainer round (and once for bare)')
    p.add_argument('--rounds', type=int, default=None)
    p.add_argument('--compile', action='store_true'); p.add_argument('--gpu-augment', action='store_true')
    p.add_argument('--threads', type=int, default=None); p.add_argument('--num-workers', type=int, default=None)
    p.add_argument('--peak-tflops', type=float, default=None)
    args = p.parse_args(argv)
    args.steps = args.steps or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.rounds = args.rounds or (1 if args.quick else 3)
    warnings.filterwarnings('ignore', message='.*compile.*skipped')

    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as d:
        cfg = config(args, device, d)
    threads = set_threads(cfg, 1, cfg.num_workers if device.type == 'cpu' else 0)   # as the trainer sets them
    load = os.getloadavg()
    print(f"LeJEPA {cfg.method_args['encoder']}/{cfg.method_args['patch_size']} at {cfg.method_args['global_size']} px, "
          f"2 global + {cfg.method_args['n_local']} local views, batch {cfg.batch_size}, {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{threads[0]} threads'}); compile={cfg.compile} "
          f"gpu_augment={cfg.gpu_augment} num_workers={cfg.num_workers}; torch {torch.__version__}; loadavg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    bare = Bare(cfg, device)
    for _ in range(args.warmup): bare.step()
    flops = step_flops(lambda: bare.step(optimizer=False))
    times = {'trainer': [], 'bare': []}
    t_start = time.perf_counter()
    for r in range(args.rounds):
        for k in (('trainer', 'bare') if r % 2 == 0 else ('bare', 'trainer')):
            times[k] += trainer_round(cfg, args.warmup) if k == 'trainer' else bare.timed(args.steps)

    peak = peak_flops(device, args.peak_tflops)
    print(f"\nmodel FLOPs per step (forward + backward): {flops / 1e9:.2f} GFLOP")
    print(f"{'variant':8s} {'median ms':>10} {'min ms':>9} {'samples/s':>10} {'TFLOP/s':>8} {'MFU':>6}  steps")
    for k, ts in times.items():
        med = statistics.median(ts)
        mfu = f"{flops / med / peak:6.1%}" if peak else f"{'-':>6}"
        print(f"{k:8s} {med * 1e3:10.1f} {min(ts) * 1e3:9.1f} {cfg.batch_size / med:10.1f} {flops / med / 1e12:8.2f} {mfu}  {len(ts)}")
    load = os.getloadavg()
    print(f"benchmark wall time {time.perf_counter() - t_start:.1f} s; loadavg now {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"ratio={statistics.median(times['trainer']) / statistics.median(times['bare']):.3f}")

if __name__ == '__main__':
    main()

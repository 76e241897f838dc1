"""Benchmark `jepa_lab.losses.sigreg` (fast custom autograd) against `sigreg_reference` (broadcast N×K×T), on CPU or a GPU.

Run `python benchmarks/sigreg.py` (N in {512, 2048, 8192}) or `python benchmarks/sigreg.py --quick` (N=512 only); `--device cuda`
(the default when CUDA is present) times it on the GPU. D=128, K=1024 directions, T=17 knots, float32, torch's default number of
threads. The last line printed is exactly `ratio=<fast time / reference time at N=2048>` (at N=512 with --quick); on CPU that is the
ratio measured with the busy neighbour (below) unless `--no-busy`.

On a GPU both of jepa_lab's algorithms are timed, `powers` (the streamed complex powers) and `dense` (cosine and sine of the broadcast
chunk, large kernels), beside the straightforward one; `jepa_lab` is the one `sigreg` picks there (`SIGREG_ALGORITHM['cuda']`), and the
table says which of the two was faster, so that the default can follow the measurement.

Busy neighbour (CPU): after the quiet measurement, the benchmark starts a second process that keeps one core busy (a Python process
running a 512×512 matmul loop on one torch thread) and measures jepa_lab against the straightforward algorithm again, interleaved, at
the ratio's N, in the same run, then stops it. This is the situation of a machine shared with other work, where a many-small-op
algorithm running on several threads waits at every op's barrier for a thread that the scheduler parked.

Time: one forward+backward (`loss.backward()` w.r.t. z) per sample. After a warm-up call of each implementation,
the two are measured alternately (fast, ref, ref, fast, ...) so that load changes on a shared machine hit both; we report the
median and the minimum of the repeats, and the ratio uses the medians. The number of repeats (1 to 7) adapts to a time budget per
N and a total deadline, so the whole run stays under 2 minutes even on a loaded machine.

Peak memory: the extra bytes the torch CPU allocator holds during forward+backward, above what was allocated before the call.
We record the call under `torch.profiler.profile(profile_memory=True)`: every allocation and free of a torch tensor storage is a
`[memory]` event with a signed byte count, so the running sum of the events in time order is the live torch memory and its
maximum is the peak. This is exact at the allocator level and independent of glibc's heap caching, which makes RSS-based numbers
(`VmHWM` in /proc/self/status) unreliable inside a process that has run anything before (freed pages stay resident, and the
high-water mark cannot see a peak lower than an earlier one). `tracemalloc` would see nothing: torch does not allocate through
Python. The memory of the inputs (z, directions) is not included; the 0.5 MB z.grad that survives the call is. The profiled
call is the warm-up, so profiler overhead never enters the timings. `--rss-check` additionally measures the VmHWM rise in a fresh
subprocess per (implementation, N), after resetting the high-water mark via /proc/self/clear_refs, as an independent cross-check.

The reference materialises several N×K×T float32 tensors (x, cos x, sin x and their gradients: about 6 × N·K·T·4 bytes, 3.4 GB at
N=8192); it is skipped, with the reason printed, if that estimate does not fit comfortably in the available memory.
"""
from __future__ import annotations
import argparse, os, statistics, subprocess, sys, time
from pathlib import Path

os.environ.setdefault('KINETO_LOG_LEVEL', '5')  # silence the profiler's C++ log lines
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root, so jepa_lab imports without installation

import torch
from torch.profiler import ProfilerActivity, profile

from jepa_lab.losses import SIGReg, sigreg, sigreg_reference
from jepa_lab.losses.sigreg import SIGREG_ALGORITHM

D, K, T = 128, 1024, 17
IMPLS = {'jepa_lab': sigreg, 'straightforward': sigreg_reference}
GPU_IMPLS = {'jepa_lab': sigreg, 'powers': lambda z, A: sigreg(z, A, algorithm='powers'), 'dense': lambda z, A: sigreg(z, A, algorithm='dense'),
             'straightforward': sigreg_reference}
BUSY = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True: a = torch.tanh(a @ a)"
DEVICE = torch.device('cpu')

def sync():
    if DEVICE.type == 'cuda': torch.cuda.synchronize(DEVICE)
REF_TENSORS = 6  # live N×K×T float32 tensors at the reference's peak (measured: 204 MB = 6 × 34 MB at N=512)

def inputs(n: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    "Embeddings z (n, D), mildly non-Gaussian so the statistic is not tiny, and unit directions (D, K)."
    g = torch.Generator().manual_seed(n)
    z = (1.2 * torch.randn(n, D, generator=g) + 0.1).to(dtype)
    return z.to(DEVICE), SIGReg(n_slices=K).directions(D, step=0).to(DEVICE, dtype)

def fwd_bwd(fn, z: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    "One forward+backward w.r.t. z; returns the loss."
    z = z.detach().requires_grad_()
    loss = fn(z, A)
    loss.backward()
    return loss.detach()

def timed(fn, z, A) -> float:
    sync(); t0 = time.perf_counter()
    fwd_bwd(fn, z, A)
    sync(); return time.perf_counter() - t0

class _quiet_stderr:
    "Send fd 2 to /dev/null (the profiler's C++ start/stop log lines ignore KINETO_LOG_LEVEL)."
    def __enter__(self):
        sys.stderr.flush()
        self.saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2); os.close(devnull)
    def __exit__(self, *exc):
        os.dup2(self.saved, 2); os.close(self.saved)

def peak_bytes(fn, z, A) -> tuple[int, float]:
    "Peak extra torch-allocator bytes during one forward+backward (profiler memory events; on CUDA the allocator's peak), and that call's wall time."
    if DEVICE.type == 'cuda':
        sync(); torch.cuda.reset_peak_memory_stats(DEVICE); base = torch.cuda.memory_allocated(DEVICE); t0 = time.perf_counter()
        fwd_bwd(fn, z, A)
        sync(); return torch.cuda.max_memory_allocated(DEVICE) - base, time.perf_counter() - t0
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        t0 = time.perf_counter()
        fwd_bwd(fn, z, A)
        wall = time.perf_counter() - t0
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]'), key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak, wall

def rss_peak_bytes(impl: str, n: int) -> int:
    "Cross-check: VmHWM rise of one forward+backward in a fresh subprocess (HWM reset via /proc/self/clear_refs)."
    out = subprocess.run([sys.executable, __file__, '--_rss-child', impl, str(n)], capture_output=True, text=True, timeout=300)
    if out.returncode != 0: raise RuntimeError(out.stderr[-2000:])
    return int(out.stdout.strip().splitlines()[-1])

def _status_kb(key: str) -> int:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key + ':'): return int(line.split()[1])
    raise KeyError(key)

def _rss_child(impl: str, n: int) -> None:
    z, A = inputs(n)
    z = z.detach().requires_grad_()
    Path('/proc/self/clear_refs').write_text('5')  # reset VmHWM to the current RSS
    before = _status_kb('VmHWM')
    IMPLS[impl](z, A).backward()
    print((_status_kb('VmHWM') - before) * 1024)

def available_bytes() -> int:
    for line in Path('/proc/meminfo').read_text().splitlines():
        if line.startswith('MemAvailable:'): return int(line.split()[1]) * 1024
    return 0

def reference_skip_reason(n: int) -> str | None:
    "Why the straightforward algorithm cannot run at this N, or None if it fits."
    need = REF_TENSORS * n * K * T * 4
    avail = torch.cuda.mem_get_info(DEVICE)[0] if DEVICE.type == 'cuda' else available_bytes()
    if need > 0.6 * avail:
        return f"needs ~{need / 2**30:.1f} GiB ({REF_TENSORS} x N*K*T*4 B) but only {avail / 2**30:.1f} GiB available"
    return None

def accuracy(n: int = 512) -> dict[str, float]:
    "Relative errors of the float32 implementations against the float64 reference, value and gradient."
    z, A = inputs(n)
    z64 = z.double().requires_grad_()
    v64 = sigreg_reference(z64, A.double())
    v64.backward()
    out = {}
    for name, fn in IMPLS.items():
        z32 = z.clone().requires_grad_()
        v = fn(z32, A)
        v.backward()
        out[name] = (abs(v.item() - v64.item()) / abs(v64.item()),
                     ((z32.grad.double() - z64.grad).norm() / z64.grad.norm()).item())
    return out, v64.item()

def bench(n: int, budget_s: float, rss: bool, deadline: float, impls=None) -> dict:
    impls = impls or list(IMPLS)
    z, A = inputs(n)
    skip = {'straightforward': reference_skip_reason(n)}
    names = [k for k in impls if not skip.get(k)]
    res = {k: {'times': [], 'skip': skip.get(k)} for k in impls}
    for k in names:                                    # warm-up call, profiled for memory
        res[k]['peak'], res[k]['warm'] = peak_bytes(IMPLS[k], z, A)
        if rss: res[k]['rss'] = rss_peak_bytes(k, n)
    per_round = sum(res[k]['warm'] for k in names)
    rounds = int(min(7, max(2, budget_s // max(per_round, 1e-9))))
    rounds = int(max(1, min(rounds, (deadline - time.perf_counter()) // max(per_round, 1e-9))))  # stay inside the total budget
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]   # interleave, alternating who goes first
        for k in order: res[k]['times'].append(timed(IMPLS[k], z, A))
    return res

def busy_bench(n: int, budget_s: float, deadline: float) -> tuple[dict, tuple]:
    "jepa_lab against the straightforward algorithm at N=n while a neighbour process keeps one core busy; and the load average then."
    proc = subprocess.Popen([sys.executable, '-c', BUSY])
    try:
        time.sleep(1.0)                                # the neighbour is running before the first call
        res = bench(n, budget_s, False, deadline, ['jepa_lab', 'straightforward'])
        return res, os.getloadavg()
    finally:
        proc.kill(); proc.wait()

def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='N=512 only (smoke run)')
    p.add_argument('--rss-check', action='store_true', help='also measure the VmHWM rise in a fresh subprocess per (impl, N)')
    p.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument('--device', default='auto', help="'cpu', 'cuda' or 'auto' (CUDA when present)")
    p.add_argument('--no-busy', action='store_true', help='CPU: skip the measurement beside a busy neighbour process')
    p.add_argument('--_rss-child', nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._rss_child: return _rss_child(args._rss_child[0], int(args._rss_child[1]))
    if args.threads: torch.set_num_threads(args.threads)
    global DEVICE, IMPLS
    DEVICE = torch.device('cuda' if args.device == 'auto' and torch.cuda.is_available() else 'cpu' if args.device == 'auto' else args.device)
    if DEVICE.type == 'cuda': IMPLS, args.rss_check, args.no_busy = GPU_IMPLS, False, True

    sizes = [512] if args.quick else [512, 2048, 8192]
    budgets = {512: 6.0, 2048: 15.0, 8192: 30.0}
    load = os.getloadavg()
    where = torch.cuda.get_device_name(DEVICE) + f", jepa_lab = {SIGREG_ALGORITHM['cuda']!r}" if DEVICE.type == 'cuda' else 'CPU'
    print(f"SIGReg forward+backward, {where} float32, D={D} K={K} T={T}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} cpus, loadavg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 0.5:
        print(f"warning: the machine was already loaded (1-min loadavg {load[0]:.2f}) -- timings are contended")

    acc, v64 = accuracy(512)
    print(f"\naccuracy at N=512 vs float64 sigreg_reference (value {v64:.6g}):")
    for k, (ev, eg) in acc.items():
        print(f"  {k:16s} float32  value rel.err {ev:.2e}   grad rel.err {eg:.2e}")

    rows, ratios = [], {}
    t_start = time.perf_counter()
    deadline = t_start + 90.0  # total time for the timed rounds; a heavily loaded machine gets fewer repeats, never fewer than 1
    for n in sizes:
        res = bench(n, budgets[n], args.rss_check, deadline)
        for k in IMPLS:
            r = res[k]
            if r['skip']:
                rows.append((n, k, None, None, None, None, r['skip']))
            else:
                rows.append((n, k, statistics.median(r['times']), min(r['times']), r['peak'], r.get('rss'), f"{len(r['times'])} reps"))
        if not res['straightforward']['skip']:
            ratios[n] = statistics.median(res['jepa_lab']['times']) / statistics.median(res['straightforward']['times'])

    hdr = f"{'N':>6} {'impl':16s} {'median ms':>10} {'min ms':>10} {'peak MB':>9}" + (f" {'RSS MB':>8}" if args.rss_check else '') + "  note"
    print('\n' + hdr + '\n' + '-' * len(hdr))
    for n, k, med, mn, peak, rss, note in rows:
        if med is None:
            print(f"{n:>6} {k:16s} {'-':>10} {'-':>10} {'-':>9}" + (f" {'-':>8}" if args.rss_check else '') + f"  skipped: {note}")
            continue
        print(f"{n:>6} {k:16s} {med * 1e3:10.1f} {mn * 1e3:10.1f} {peak / 2**20:9.1f}"
              + (f" {rss / 2**20:8.1f}" if args.rss_check else '') + f"  {note}")
    print("\nspeed-up (straightforward / jepa_lab, medians): "
          + ', '.join(f"N={n}: {1 / r:.2f}x" for n, r in ratios.items()))
    if DEVICE.type == 'cuda':
        med = {(n, k): m for n, k, m, *_ in rows if m is not None}
        print("faster on this GPU (powers vs dense, medians): "
              + ', '.join(f"N={n}: {'powers' if med[n, 'powers'] < med[n, 'dense'] else 'dense'} ({med[n, 'powers'] / med[n, 'dense']:.2f})" for n in sizes))
    key = 512 if args.quick else 2048
    if not args.no_busy:
        res, busy_load = busy_bench(key, budgets[key], time.perf_counter() + 60.0)
        med = {k: statistics.median(res[k]['times']) for k in res}
        ratios[key] = med['jepa_lab'] / med['straightforward']
        print(f"\nwith a busy neighbour (1-thread matmul loop; loadavg {busy_load[0]:.2f}), N={key}: jepa_lab {med['jepa_lab'] * 1e3:.1f} ms, "
              f"straightforward {med['straightforward'] * 1e3:.1f} ms (medians of {len(res['jepa_lab']['times'])}), ratio {ratios[key]:.3f}")
    load = os.getloadavg()
    print(f"benchmark wall time {time.perf_counter() - t_start:.1f} s; loadavg now {load[0]:.2f}")
    print(f"ratio={ratios[key]:.3f}")

if __name__ == '__main__':
    main()

"""`jepa_lab.launch` and distributed correctness (issue 17): gloo processes on CPU through torch's elastic launcher.

N processes × batch b must train the model one process trains on batch N·b (same data, BatchNorm and SIGReg over the global batch,
DDP's averaged gradients), two simulated nodes meet at a c10d rendezvous on 127.0.0.1 and write one run folder, a killed rank ends the
run with an error naming it, and an unreachable rendezvous fails within the timeout, naming the endpoint.
"""
from __future__ import annotations
import json, os, re, signal, socket, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, tiny_config
from jepa_lab.files import load_checkpoint, read_metrics
from jepa_lab.launch import LaunchError, launch
from jepa_lab.train import build_method

NODE, BN_WORKER = ROOT / 'tests' / 'launch_node.py', ROOT / 'tests' / 'launch_bn_worker.py'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def start_node(cfg, *options) -> subprocess.Popen:
    "`jepa-lab launch OPTIONS CONFIG.json` in its own process group (tests/launch_node.py)."
    path = Path(cfg.out_dir).with_suffix('.json')
    path.write_text(json.dumps(cfg.to_dict()))
    return subprocess.Popen([sys.executable, str(NODE), *options, str(path)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)

def finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    "The output of `proc` once it exits; the whole process group is killed if it does not within `timeout`."
    try: return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"still running after {timeout} s\n--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}")

def checkpoint(run: Path) -> dict:
    return load_checkpoint(run / 'checkpoints' / 'last.pt')

def max_diff(a: dict, b: dict, masks: dict | None = None) -> float:
    "Largest |a - b| over the floating tensors (within `masks[k]` where given)."
    assert a.keys() == b.keys()
    masks = masks or {}
    diffs = [(a[k].double() - b[k].double()).abs()[masks.get(k, ...)] for k in a if a[k].is_floating_point()]
    return max((d.max().item() for d in diffs if d.numel()), default=0.0)

def loss_dependent(cfg, state: dict) -> dict[str, torch.Tensor]:
    """The elements of the method's parameters the loss depends on: float64 gradient above 1e-12 on a batch of views. The others get
    exactly zero gradient (a bias followed by BatchNorm, the encoder's final LayerNorm bias that only the projector sees, attention key
    biases: softmax ignores them), about 1e-16 here against at least 1e-9 for the rest; AdamW turns float32 rounding noise there
    into lr-sized steps in any run, one process or several, so there they differ between any two runs and say nothing of the sync."""
    m = build_method(cfg)
    m.load_state_dict(state)
    m.double().train()
    g = torch.Generator().manual_seed(0)
    views = {'global': torch.rand(32, 2, 3, 16, 16, generator=g, dtype=torch.float64),
             'local': torch.rand(32, 2, 3, 8, 8, generator=g, dtype=torch.float64)}
    m(views, 0).loss.backward()
    return {k: p.grad.abs() > 1e-12 for k, p in m.named_parameters()}

def test_two_ranks_of_batch_32_train_the_model_one_process_trains_on_batch_64(tmp_path):
    cfg = lambda name: tiny_config(tmp_path / name, steps=20, batch_size=64, log_every=1, ckpt_every=20, device='cpu')
    one, two = launch(cfg('one'), nproc_per_node=1), launch(cfg('two'), nproc_per_node=2, timeout=120)
    assert one['status'] == two['status'] == 'finished' and len(list((tmp_path / 'two' / 'logs').glob('*/attempt_0/1'))) == 1
    rows1, rows2 = read_metrics(tmp_path / 'one'), read_metrics(tmp_path / 'two')
    assert [r['step'] for r in rows1] == [r['step'] for r in rows2] == list(range(1, 21))
    dloss = max(abs(a[k] - b[k]) for a, b in zip(rows1, rows2) for k in ('loss', 'invariance', 'sigreg'))
    ck1, ck2 = checkpoint(tmp_path / 'one'), checkpoint(tmp_path / 'two')
    live = loss_dependent(cfg('one'), ck1['method'])
    free = {k for k, m in live.items() if not m.all()}
    assert all(re.search(r'(projector\.\d+\.bias|encoder\.norm\.bias|attn\.qkv\.bias)$', k) for k in free), free
    params = {k: v for k, v in ck1['method'].items() if k in live}
    dw = max_diff(params, {k: ck2['method'][k] for k in params}, live)
    dvar = max_diff(*({k: c['method'][k] for k in c['method'] if k.endswith('running_var')} for c in (ck1, ck2)))
    dprobe = max_diff(ck1['probes'], ck2['probes'])
    print(f"max |Δloss| over 20 steps {dloss:.1e}; max |Δweight| {dw:.1e} over the {sum(int(m.sum()) for m in live.values())} weights "
          f"the loss depends on ({max_diff(params, {k: ck2['method'][k] for k in params}):.1e} with the "
          f"{sum(int((~m).sum()) for m in live.values())} it ignores), running variances {dvar:.1e}, probes {dprobe:.1e}")
    assert dloss < 1e-4 and dw < 1e-4 and dvar < 1e-4
    assert dprobe < 1e-3                                # the probes see the encoder's last LayerNorm bias, which the loss ignores
    assert max(r['loss'] for r in rows1) - min(r['loss'] for r in rows1) > 1e-2                    # it trained: the checks can fail
    init = build_method(cfg('one')).state_dict()
    assert max_diff(params, {k: init[k] for k in params}, live) > 1e-3

def test_two_simulated_nodes_train_to_completion_in_one_run_folder(tmp_path):
    cfg, endpoint = tiny_config(tmp_path / 'run', steps=4, device='cpu'), f'127.0.0.1:{free_port()}'
    node1 = start_node(cfg, '--nnodes', '2', '--node-rank', '1', '--rdzv-endpoint', endpoint, '--timeout', '90')
    try: summary = launch(cfg, nproc_per_node=1, nnodes=2, node_rank=0, rdzv_endpoint=endpoint, timeout=90)
    finally: out, err = finish(node1, 90)
    assert node1.returncode == 0, err[-3000:]
    assert summary['status'] == 'finished' and 'finished after 4 steps' in out          # both nodes see the one run folder
    assert [r['step'] for r in read_metrics(cfg.out_dir)] == [2, 4]
    assert len(list((tmp_path / 'run' / 'logs').glob('*/attempt_0/0'))) == 2            # one rank on each of the two nodes

def test_a_follower_node_joins_each_launch_the_notebook_on_node_0_posts(tmp_path, monkeypatch):
    "A cluster job of two nodes: the notebook runs on node 0 and launches twice; node 1 runs `jepa-lab launch --follow` (no config)."
    from jepa_lab.files import write_json
    job, endpoint = tmp_path / 'job', f'127.0.0.1:{free_port()}'
    write_json(dict(status='running', started=time.strftime('%Y-%m-%d %H:%M:%S')), job / 'run.json')     # what run_notebook records
    node1 = subprocess.Popen([sys.executable, str(NODE), '--follow', str(job), '--nnodes', '2', '--node-rank', '1', '--rdzv-endpoint', endpoint,
                              '--timeout', '90'], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    monkeypatch.setenv('JEPA_LAB_LAUNCH_DIR', str(job))
    try:
        for name in ('a', 'b'):                                              # two trainings, as a sweep notebook makes
            summary = launch(tiny_config(job / name, steps=2, device='cpu'), 1, 2, endpoint, 0, timeout=90)
            assert summary['status'] == 'finished' and len(list((job / name / 'logs').glob('*/attempt_0/0'))) == 2   # a rank on each node
        write_json(dict(status='finished', started='2000-01-01 00:00:00'), job / 'run.json')                         # the notebook ended
    finally: out, err = finish(node1, 90)
    assert node1.returncode == 0 and 'joined 2 launch(es)' in out, err[-3000:]
    assert not list((job / '.launches').glob('*.json'))                     # each posted launch is removed when it ends

def _children(pid: int) -> list[int]:
    "Every process descended from `pid` (from /proc)."
    parent = {}
    for p in Path('/proc').iterdir():
        if p.name.isdigit():
            try: parent[int(p.name)] = int((p / 'stat').read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError): pass
    out, todo = [], [pid]
    while todo:
        me = todo.pop()
        kids = [c for c, pp in parent.items() if pp == me]
        out, todo = out + kids, todo + kids
    return out

def _environ(pid: int) -> dict[str, str]:
    try: raw = Path(f'/proc/{pid}/environ').read_bytes()
    except OSError: return {}
    return dict(kv.decode(errors='replace').split('=', 1) for kv in raw.split(b'\0') if b'=' in kv)

@pytest.mark.skipif(not Path('/proc/self/environ').exists(), reason='finds the ranks through /proc')
def test_a_killed_rank_stops_the_other_with_an_error_naming_it(tmp_path):
    cfg = tiny_config(tmp_path / 'run', steps=100_000, log_every=1, ckpt_every=100_000, device='cpu')
    proc = start_node(cfg, '--nproc-per-node', '2', '--timeout', '60')
    metrics, deadline = Path(cfg.out_dir) / 'metrics.jsonl', time.time() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):                 # both ranks are training
        if proc.poll() is not None or time.time() > deadline: pytest.fail(f"training did not start: {finish(proc, 10)[1][-3000:]}")
        time.sleep(0.2)
    ranks = {_environ(p).get('RANK'): p for p in _children(proc.pid) if 'TORCHELASTIC_RUN_ID' in _environ(p)}
    assert set(ranks) == {'0', '1'}, ranks
    os.kill(ranks['1'], signal.SIGKILL)
    t0 = time.time()
    out, err = finish(proc, 60)
    elapsed = time.time() - t0
    print(f"the launch ended {elapsed:.1f} s after rank 1 was killed:\n{err.strip().splitlines()[-1]}")
    assert proc.returncode == 1 and elapsed < 30
    assert re.search(r"jepa-lab launch: rank 1 \(local rank 1 on .*\) was killed by SIGKILL.*the launcher stopped the run", err), err[-3000:]
    assert not Path(f'/proc/{ranks["0"]}').exists()                                               # rank 0 is gone too

@pytest.mark.parametrize('node_rank,why', [(1, 'no rendezvous store answered there'), (0, 'not every node joined')])
def test_an_unreachable_rendezvous_fails_within_the_timeout_naming_it(tmp_path, node_rank, why):
    "Node 1 finds no store at the endpoint; node 0 hosts it and no other node comes: both fail after about `timeout` seconds."
    endpoint, t0 = f'127.0.0.1:{free_port()}', time.time()
    with pytest.raises(LaunchError, match=f"did not meet at the rendezvous {re.escape(endpoint)} within 5 s: {why}"):
        launch(tiny_config(tmp_path, device='cpu'), nproc_per_node=1, nnodes=2, node_rank=node_rank, rdzv_endpoint=endpoint, timeout=5)
    assert time.time() - t0 < 30

def test_cpu_batchnorm_sync_matches_one_process_on_the_whole_batch(tmp_path):
    "2 gloo ranks, each on half a batch through AllReduceBatchNorm + DDP: outputs, gradients, running statistics of the whole batch."
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '--max_restarts=0', str(BN_WORKER), str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _, err = finish(proc, 120)
    assert proc.returncode == 0, err[-3000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    sys.path.insert(0, str(BN_WORKER.parent))
    from launch_bn_worker import STEPS, batch, build, loss_fn
    proj = build()
    opt, errs = torch.optim.SGD(proj.parameters(), lr=0.1), []
    assert ranks[0]['kinds'].count('AllReduceBatchNorm') == 2
    for step in range(STEPS):
        x, w = batch(step)
        x.requires_grad_()
        out = proj(x)
        opt.zero_grad(); loss_fn(out, w).backward()
        for r, res in enumerate(ranks):
            got = res['steps'][step]
            errs += [(got['out'] - out.detach().chunk(2)[r]).abs().max(), (got['x_grad'] - x.grad.chunk(2)[r]).abs().max()]
            errs += [(got['grads'][k] - p.grad).abs().max() for k, p in proj.named_parameters()]
            errs += [(got['buffers'][k].double() - b.double()).abs().max() for k, b in proj.named_buffers()]
        opt.step()
    print(f"largest difference from one process on the whole batch: {max(errs):.1e}")
    assert max(errs) < 1e-5
    local = build()(batch(0)[0].chunk(2)[0])                 # plain BatchNorm on half the batch: what the sync is for
    assert (local - ranks[0]['steps'][0]['out']).abs().max() > 1e-2

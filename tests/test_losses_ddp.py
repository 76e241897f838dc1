"""`jepa_lab.losses.sigreg` under DistributedDataParallel: two gloo ranks on CPU vs one process on the whole batch.

One `torchrun --standalone --nproc_per_node=2` launch (module fixture) runs `tests/ddp_sigreg_worker.py`; each rank saves its
SIGReg value and the DDP-averaged gradients. The tests check, for a flat (N, D) batch, stacked (V, N, D) views and an uneven
split, that every rank's value is the whole-batch value and that the applied gradient is the whole-batch gradient, against the
fast `sigreg` and the float64 `sigreg_reference` oracle; and that the test can fail: the local-batch value and the naively
averaged local gradient are measurably different from the global ones.
"""
from __future__ import annotations
import importlib.util, os, signal, subprocess, sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name('ddp_sigreg_worker.py')
RTOL = 1e-5
TIMEOUT_S = 120

def _load_worker():
    spec = importlib.util.spec_from_file_location('ddp_sigreg_worker', WORKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

W = _load_worker()
from jepa_lab.losses import sigreg, sigreg_reference  # noqa: E402  (the worker module put ROOT on sys.path)

def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    "Relative error ||a - b|| / ||b|| in float64."
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).norm() / b.norm()).item()

def _run_torchrun(out_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '--max_restarts=0',
           str(WORKER), str(out_dir)]
    # own session so that on timeout the whole tree (torchrun + both workers) is killed, not just torchrun
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun timed out after {TIMEOUT_S} s\n--- stdout ---\n{out}\n--- stderr ---\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    "The two ranks' saved results, from a single torchrun launch."
    out_dir = tmp_path_factory.mktemp('ddp_sigreg')
    res = _run_torchrun(out_dir)
    files = [out_dir / f'rank{r}.pt' for r in range(2)]
    if res.returncode != 0 or not all(f.exists() for f in files):
        pytest.fail(f"torchrun failed (rc={res.returncode}, files={[f.name for f in files if f.exists()]})\n"
                    f"--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}")
    return [torch.load(f) for f in files]

def _whole_batch(x: torch.Tensor, fn, dtype=torch.float32) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    "SIGReg value and parameter gradients of the worker's model on the whole batch `x`, in one process."
    model = W.build_model().to(dtype)
    loss = fn(model(x.to(dtype)), W.directions().to(dtype))
    loss.backward()
    return loss.detach(), {k: p.grad.detach() for k, p in model.named_parameters()}

CASES = list(W.cases())

def test_world_and_cases(ranks):
    assert [r['rank'] for r in ranks] == [0, 1] and all(r['world'] == 2 for r in ranks)
    assert all(set(CASES) <= set(r) for r in ranks)

@pytest.mark.parametrize('case', CASES)
def test_value_is_whole_batch_value(ranks, case):
    x, _ = W.cases()[case]
    fast, _ = _whole_batch(x, sigreg)
    oracle, _ = _whole_batch(x, sigreg_reference, torch.float64)
    assert _rel(fast, oracle) < RTOL, (case, fast.item(), oracle.item())
    for r in ranks:
        assert _rel(r[case]['loss'], fast) < RTOL, (case, r['rank'], r[case]['loss'].item(), fast.item())
        assert _rel(r[case]['loss'], oracle) < RTOL, (case, r['rank'], r[case]['loss'].item(), oracle.item())

@pytest.mark.parametrize('case', CASES)
def test_applied_gradient_is_whole_batch_gradient(ranks, case):
    x, _ = W.cases()[case]
    _, fast = _whole_batch(x, sigreg)
    _, oracle = _whole_batch(x, sigreg_reference, torch.float64)
    assert set(fast) == set(ranks[0][case]['grads']) == set(ranks[1][case]['grads'])
    for k in fast:
        g0, g1 = ranks[0][case]['grads'][k], ranks[1][case]['grads'][k]
        assert torch.equal(g0, g1), f"{case}/{k}: DDP left different gradients on the two ranks"
        assert _rel(g0, fast[k]) < RTOL, (case, k, _rel(g0, fast[k]))
        assert _rel(g0, oracle[k]) < RTOL, (case, k, _rel(g0, oracle[k]))

@pytest.mark.parametrize('case', CASES)
def test_checks_can_fail(ranks, case):
    "Without the all-reduce (local-batch SIGReg) or without the world-size factor the checks above would fail."
    x, sizes = W.cases()[case]
    glob_val, glob_grad = _whole_batch(x, sigreg)
    local = [_whole_batch(W.local_part(x, sizes, r), sigreg) for r in range(2)]
    for r, (val, _) in enumerate(local):               # each rank's local-batch statistic is not the global one
        assert _rel(val, glob_val) > 100 * RTOL, (case, r, val.item(), glob_val.item())
    naive = {k: (local[0][1][k] + local[1][1][k]) / 2 for k in glob_grad}      # DDP average of local-batch gradients
    assert max(_rel(naive[k], glob_grad[k]) for k in glob_grad) > 100 * RTOL
    unscaled = {k: ranks[0][case]['grads'][k] / 2 for k in glob_grad}          # all-reduce without the world-size factor
    assert max(_rel(unscaled[k], glob_grad[k]) for k in glob_grad) > 100 * RTOL

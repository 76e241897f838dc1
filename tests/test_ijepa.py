"""I-JEPA / DMT-JEPA across modules: exact resume through the trainer, the experiment notebook under papermill, the overhead benchmark."""
import json, subprocess, sys
import pytest
import torch
from conftest import ROOT, timeless

from jepa_lab.train import RunConfig, train
from jepa_lab.files import read_metrics
from jepa_lab.eval import load_method

TINY = dict(encoder='vit_nano', img_size=16, patch_size=4, pred_dim=32, pred_depth=1, min_keep=2)

def config(out_dir, method='dmt_jepa', **kw):
    run = dict(dataset='digits', dataset_args=dict(size=16), steps=4, batch_size=16, log_every=1, ckpt_every=2, progress=False,
               weight_decay=0.04, weight_decay_end=0.4)
    return RunConfig(method=method, method_args=dict(TINY), out_dir=str(out_dir), **{**run, **kw})

@pytest.mark.parametrize('method', ['ijepa', 'dmt_jepa'])
def test_interrupted_run_resumes_exactly(tmp_path, method):
    "Masks are a function of the step and the EMA targets are checkpointed, so a run cut in step 4 resumes to the same metrics and weights."
    from jepa_lab.train import build_method
    from jepa_lab.files import load_checkpoint
    torch.set_num_threads(1)
    cfg = lambda d: config(d, method, steps=6, log_every=2, ckpt_every=3)
    train(cfg(tmp_path / 'ref'))
    m = build_method(cfg(tmp_path / 'cut'))
    calls = [0]
    def interrupt(module, inp, out):
        calls[0] += 1
        if calls[0] > 3: raise KeyboardInterrupt           # one context-encoder call per step: interrupted in step 4
    m.encoder.blocks[0].register_forward_hook(interrupt)
    with pytest.raises(KeyboardInterrupt): train(cfg(tmp_path / 'cut'), m)
    ck = load_checkpoint(tmp_path / 'cut' / 'checkpoints' / 'last.pt')
    assert ck['step'] == 3 and any(k.startswith('target_encoder.') for k in ck['method'])
    train(cfg(tmp_path / 'cut'))
    assert timeless(read_metrics(tmp_path / 'cut')) == timeless(read_metrics(tmp_path / 'ref'))
    a, b = (load_checkpoint(tmp_path / d / 'checkpoints' / 'last.pt')['method'] for d in ('ref', 'cut'))
    assert all(torch.equal(a[k], b[k]) for k in a)

def test_lr_and_wd_schedules_reach_the_recipe_values(tmp_path):
    "The I-JEPA weight-decay schedule (0.04 -> 0.4) is the trainer's; the target encoder is not in the optimizer."
    train(config(tmp_path, steps=3))
    rows = read_metrics(tmp_path)
    assert abs(rows[0]['wd'] - 0.04) < 1e-9 and rows[-1]['wd'] > 0.3
    m = load_method(tmp_path)[0]
    assert all(not p.requires_grad for p in [*m.target_encoder.parameters(), *m.target_head.parameters()])

def jepa_lab(*args):
    code = 'import sys; from jepa_lab.cli import main; sys.exit(main(sys.argv[1:]))'
    return subprocess.run([sys.executable, '-c', code, *args], capture_output=True, text=True, timeout=900, cwd=ROOT)

def test_experiment_notebook_writes_its_table(tmp_path):
    variants = "{'I-JEPA': ['ijepa', {}], 'DMT-JEPA': ['dmt_jepa', {}], 'LAT off': ['dmt_jepa', {'lat': False}]}"
    r = jepa_lab('run', str(ROOT / 'nbs' / 'experiments' / 'ijepa_dmt.ipynb'), '-p', 'steps', '3', '-p', 'batch_size', '16',
                 '-p', 'dataset_args', "{'size': 32, 'n': 64}", '-p', 'n_train_eval', '64', '-p', 'n_test_eval', '32',
                 '-p', 'n_dense_train', '6', '-p', 'n_dense_test', '4', '-p', 'n_videos', '2', '-p', 'video_frames', '3',
                 '-p', 'knn_k', '5', '-p', 'threads', '1',
                 '-p', 'variants', variants, '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    table = json.loads((tmp_path / 'results.json').read_text())
    assert [row['variant'] for row in table] == ['I-JEPA', 'DMT-JEPA', 'LAT off', 'random init']
    assert all(0 <= row[k] <= 1 for row in table for k in ('linear_acc', 'knn_acc', 'dense_acc', 'dense_miou', 'prop_j'))
    assert all(row['final_loss'] > 0 for row in table[:3])
    assert (tmp_path / 'results.md').read_text().splitlines()[3].startswith('| DMT-JEPA |')
    assert (tmp_path / 'figures' / 'ijepa_dmt_losses.png').exists() and (tmp_path / 'DMT-JEPA' / 'checkpoints' / 'last.pt').exists()

def test_overhead_benchmark_prints_its_ratio():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'dmt_overhead.py'), '--encoder', 'vit_nano', '--img', '32', '--patch', '4',
                        '--batch', '4', '--pred-dim', '32', '--pred-depth', '1', '--reps', '2', '--warmup', '1'],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith('ratio=') and float(last.split('=')[1]) > 0

def test_mask_stats_benchmark_prints_its_ratio():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'mask_stats.py'), '--draws', '200'], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert lines[-1].startswith('ratio=') and 0.85 < float(lines[-1].split('=')[1]) < 0.98          # the reference's union is smaller
    assert any(l.startswith('| target_last_row | 0.000 |') for l in lines)                          # reference column first: never covered

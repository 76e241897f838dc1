import json, os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault('OMP_NUM_THREADS', '1')

def tiny_method_args(**kw):
    "A LeJEPA small enough to train a few steps on CPU in about a second."
    return {**dict(encoder='vit_nano', patch_size=4, global_size=16, local_size=8, n_local=2, proj_hidden=32, proj_dim=8, n_slices=32), **kw}

def tiny_config(out_dir, **kw):
    from jepa_lab.train import RunConfig
    run = dict(dataset='digits', dataset_args=dict(size=16), steps=6, batch_size=16, log_every=2, ckpt_every=3, progress=False)
    return RunConfig(method_args=tiny_method_args(**kw.pop('method_args', {})), out_dir=str(out_dir), **{**run, **kw})

def timeless(rows): return [{k: v for k, v in r.items() if k != 'sec_per_step'} for r in rows]

@pytest.fixture(autouse=True)
def _keep_torch_threads():
    "Tests may change torch's thread count; restore it, so that a later in-process run matches its subprocess bit for bit."
    import torch
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)

import json, os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault('OMP_NUM_THREADS', '1')

def tiny_config(out_dir, **kw):
    "A LeJEPA run small enough to train a few steps on CPU in about a second (`RunConfig.tiny`)."
    from jepa_lab.train import RunConfig
    return RunConfig.tiny(out_dir, **kw)

def tiny_method_args(**kw):
    "The method arguments of `tiny_config`, with `kw` over them."
    return {**tiny_config('.').method_args, **kw}

def timeless(rows): return [{k: v for k, v in r.items() if k != 'sec_per_step'} for r in rows]

@pytest.fixture(autouse=True)
def _keep_torch_threads():
    "Tests may change torch's thread count; restore it, so that a later in-process run matches its subprocess bit for bit."
    import torch
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)

"""Le MuMo methods end to end: 3-step runs through the one trainer on driving scenes, frozen encoders stay at init, bad input named."""
import json
import pytest
import torch
from jepa_lab.methods import METHODS
from jepa_lab.methods import MUMO_METHODS
from jepa_lab.train import RunConfig, train, build_method
from jepa_lab.files import load_checkpoint

TINY = dict(encoder='vit_nano', patch_size=8, global_size=32, local_size=16, n_local=2, probe_size=32, proj_hidden=32, n_slices=32)
EXTRA = dict(dino_rgb=dict(n_prototypes=64, ibot_dim=64, head_hidden=32, head_bottleneck=16),
             multimae_ss=dict(n_local=0, decoder_width=32, decoder_heads=2), multimae_mt=dict(n_local=0, decoder_width=32, decoder_heads=2))

def run_config(out_dir, method, **args):
    return RunConfig(method=method, method_args={**TINY, **EXTRA.get(method, {}), **args}, dataset='driving_scenes',
                     dataset_args=dict(n=16, size=40), steps=3, batch_size=4, log_every=1, ckpt_every=3, progress=False, out_dir=str(out_dir))

def test_all_registered():
    assert set(MUMO_METHODS) <= set(METHODS)

@pytest.mark.parametrize('method,args', [('lemumo', {}), ('lemumo', dict(objective='sigreg_3pass')), ('dino_rgb', {}), ('multimae_mt', {})])
def test_three_step_run(tmp_path, method, args):
    torch.set_num_threads(2)
    s = train(run_config(tmp_path, method, **args))
    assert s['status'] == 'finished' and s['steps'] == 3
    rows = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows] == [1, 2, 3] and all(torch.isfinite(torch.tensor(r['loss'])) for r in rows)

def test_frozen_encoder_stays_at_init(tmp_path):
    torch.set_num_threads(2)
    cfg = run_config(tmp_path, 'rgb_lejepa', frozen=True)
    init = build_method(cfg).state_dict()
    train(cfg)
    after = load_checkpoint(tmp_path / 'checkpoints' / 'last.pt')['method']
    enc = [k for k in init if k.startswith('encoder.')]
    assert enc and all(torch.equal(init[k], after[k]) for k in enc)
    assert not all(torch.equal(init[k], after[k]) for k in init if k.startswith('projector.') and 'weight' in k)

def test_missing_companion_is_named(tmp_path):
    cfg = run_config(tmp_path, 'lemumo', companion='thermal')
    m = build_method(cfg)
    item = {'rgb': torch.zeros(3, 40, 40, dtype=torch.uint8), 'depth': torch.zeros(1, 40, 40)}
    with pytest.raises(ValueError, match="no 'thermal' companion"): m.train_transform()(item)
    with pytest.raises(ValueError, match=r"rgb \(3, 40, 40\) and thermal \(1, 20, 40\) are not aligned"):
        m.train_transform()({**item, 'thermal': torch.zeros(1, 20, 40)})

@pytest.mark.parametrize('method', MUMO_METHODS)
def test_bf16_autocast_step(method):
    "Each method's step runs under bf16 autocast (the trainer's GPU precision), here on CPU."
    from torch.utils.data import default_collate
    from jepa_lab.data import make_dataset
    torch.set_num_threads(2); torch.manual_seed(0)
    m = build_method(run_config('unused', method))
    scenes = make_dataset('driving_scenes', n=4, size=40)
    views = default_collate([m.train_transform()(scenes[i]) for i in range(4)])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = m(views, 0)
    out.loss.float().backward()
    assert torch.isfinite(out.loss.float())

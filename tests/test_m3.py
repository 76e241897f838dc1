"""M3-JEPA through the shared trainer: alternating directions step by step, caption retrieval through the read-out, the cache."""
import torch
from jepa_lab.train import RunConfig, train
from jepa_lab.files import read_metrics
from jepa_lab.eval import load_method, caption_retrieval
from jepa_lab.data import make_dataset
from jepa_lab.methods import M3JEPAConfig

def m3_config(out_dir, **kw):
    args = {**M3JEPAConfig.tiny().to_dict(), **kw.pop('method_args', {})}
    return RunConfig(method='m3_jepa', method_args=args, dataset='captioned_shapes', dataset_args=dict(size=32, n=32), steps=4, batch_size=8,
                     log_every=1, ckpt_every=2, progress=False, out_dir=str(out_dir), **kw)

def test_agd_alternates_directions_in_the_shared_trainer_and_the_run_reads_out(tmp_path):
    train(m3_config(tmp_path / 'agd'))
    rows = read_metrics(tmp_path / 'agd')
    assert [('contrastive_image_to_text' in r, 'contrastive_text_to_image' in r) for r in rows] == [(True, False), (False, True)] * 2
    train(m3_config(tmp_path / 'joint', method_args=dict(schedule='joint')))
    assert all('contrastive_image_to_text' in r and 'contrastive_text_to_image' in r for r in read_metrics(tmp_path / 'joint'))
    m, _ = load_method(tmp_path / 'agd')
    r = caption_retrieval(m, make_dataset('captioned_shapes', 'test', n=8, size=32))
    assert 0 <= r['image→text']['R@1'] <= 1 and r['chance_r1'] == 1 / 8

def test_cached_and_uncached_training_agree(tmp_path):
    a = train(m3_config(tmp_path / 'cached'))
    b = train(m3_config(tmp_path / 'full', method_args=dict(cache='none')))
    ra, rb = read_metrics(tmp_path / 'cached'), read_metrics(tmp_path / 'full')
    assert all(abs(x['loss'] - y['loss']) < 1e-4 for x, y in zip(ra, rb)), (ra, rb)

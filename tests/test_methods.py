"""Every registered method, built from its config's tiny CPU preset: forward and backward on its own views, then the feature read-out."""
import subprocess, sys
import pytest
import torch
from torch.utils.data import Subset, default_collate
import jepa_lab
from jepa_lab.core import eval_mode
from jepa_lab.data import collate_scenes
from jepa_lab.methods import METHODS, Features
from jepa_lab.views import ViewDataset

SMALL = {'shapes': dict(n=8, size=16), 'av_clips': dict(n=8), 'driving_scenes': dict(n=8, size=32), 'captioned_shapes': dict(n=8, size=32)}

def test_registries_are_complete_after_a_plain_import():
    code = "import jepa_lab; print(len(jepa_lab.list_methods()), ','.join(jepa_lab.list_datasets()))"
    n, datasets = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()
    assert int(n) == 15 and set(datasets.split(',')) == {'av_clips', 'digits', 'driving_scenes', 'image_folder', 'scene_frames', 'shapes',
                                                         'captioned_shapes', 'captioned_av_clips', 'karpathy_captions', 'clotho', 'audiocaps', 'vqa_v2',
                                                         'lazy_image_folder', 'tar_shards'}

@pytest.mark.parametrize('name', jepa_lab.list_methods())
def test_every_method_trains_a_step_and_reads_out(name):
    torch.manual_seed(0)
    cls = METHODS.lookup(name)
    m = cls(cls.config_class.tiny())
    data = jepa_lab.make_dataset(m.data, 'train', **SMALL[m.data])
    views, labels = default_collate([ViewDataset(data, m.train_transform())[(i, 0)] for i in range(4)])
    out = m(views, 0)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters()), f"{name}: no gradient reached a parameter"
    clean = [m.eval_transform()(data[i] if isinstance(data[i], dict) else data[i][0]) for i in range(3)]
    batch = collate_scenes(clean) if m.data == 'driving_scenes' else default_collate(clean)
    with eval_mode(m): f = m.features(batch)
    assert isinstance(f, Features) and f.embedding.ndim == 2 and len(f.embedding) == 3 and torch.isfinite(f.embedding).all()
    if f.patches is not None: assert f.patches.ndim == 4 and f.patches.shape[:2] == (3, f.embedding.shape[1])
    if name == 'av_jepa':
        assert set(f.modalities) == set(f.projections) == {'audio', 'video'}
        layout, maps = m.token_layout(), m.attention_maps(batch)
        assert f.tokens.shape[:2] == (3, layout['audio'].stop) and maps['last layer'].shape == (3, layout['audio'].stop, layout['audio'].stop)
        assert torch.allclose(maps['last layer'].sum(-1), torch.ones(3, layout['audio'].stop), atol=1e-5)   # rows are distributions
    if name in ('ijepa', 'dmt_jepa'):
        maps = m.attention_maps(batch)
        assert maps['target attention'].shape == (3, 16) and ('LAT attention' in maps) == (name == 'dmt_jepa')
    if name == 'av_finetune': assert f.logits.shape == (3, m.cfg.n_classes)
    if name == 'm3_jepa': assert {'image→text', 'text'} <= set(f.projections) and f.projections['image→text'].shape == f.projections['text'].shape
    if m.data == 'driving_scenes': assert f.patches.shape[-2:] == (4, 4)      # 32 px probe views, 8 px patches

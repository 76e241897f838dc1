"""Embedded driving scenes and their synchronized views through the data pipeline: the registry, DataLoader workers,
batching of variable object counts, and views that are a function of the scene alone."""
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from jepa_lab.data import make_dataset
from jepa_lab.views import MultiModalViews
from jepa_lab.data import DrivingScenes, collate_scenes


class _Views(Dataset):
    "Views of scene `i` seeded by `i` alone, so they do not depend on the worker that draws them."
    def __init__(self, scenes, views): self.scenes, self.views = scenes, views
    def __len__(self): return len(self.scenes)
    def __getitem__(self, i):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(i)
            return self.views(self.scenes[i])


def test_registered_by_name():
    ds = make_dataset('driving_scenes', split='test', n=3, size=32, grid=(8, 8))
    assert isinstance(ds, DrivingScenes) and len(ds) == 3
    item = ds[2]
    assert item['rgb'].shape == (3, 32, 32) and item['occupancy'].shape == (8, 8)


def test_workers_give_the_same_batches():
    ds = DrivingScenes('train', n=8, size=32)
    one = list(DataLoader(ds, batch_size=4, collate_fn=collate_scenes))
    two = list(DataLoader(ds, batch_size=4, collate_fn=collate_scenes, num_workers=2))
    for a, b in zip(one, two):
        for k in ('rgb', 'depth', 'thermal', 'seg', 'occupancy'): assert torch.equal(a[k], b[k]), k
        for k, v in a['objects'].items(): assert torch.equal(v, b['objects'][k]), k
    n = [len(ds[i]['objects']['labels']) for i in range(8)]
    assert one[0]['objects']['mask'].sum(1).tolist() == n[:4] and one[0]['objects']['labels'].shape[1] == max(n[:4])


def test_views_batch_and_are_deterministic_per_scene():
    ds = _Views(DrivingScenes('train', n=4, size=32), MultiModalViews('thermal', global_size=32, local_size=16, n_local=4))
    a = next(iter(DataLoader(ds, batch_size=4)))
    b = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert a['global']['rgb'].shape == (4, 2, 3, 32, 32) and a['local']['thermal'].shape == (4, 4, 1, 16, 16)
    assert all(torch.equal(a[g][k], b[g][k]) for g in ('global', 'local') for k in ('rgb', 'thermal', 'crop'))


def test_empty_scenes_batch():
    ds = DrivingScenes('test', n=2, size=32, n_objects=0)
    batch = collate_scenes([ds[0], ds[1]])
    assert batch['objects']['labels'].shape == (2, 0) and batch['objects']['centers'].shape == (2, 0, 3)
    assert not batch['occupancy'].any() and not batch['objects']['mask'].any()
    clean = MultiModalViews(probe_size=32).clean(ds[0])
    assert clean['objects']['boxes2d'].shape == (0, 4) and np.isin(clean['seg'].unique().numpy(), [0, 1, 2]).all()


# ---------------------------------------------------------------- data_recipes/driving_scenes.py on tiny fake inputs
import importlib.util, json, sys
import pytest
from PIL import Image
from conftest import ROOT
from jepa_lab.data import SceneFrames


def _load_recipe():
    spec = importlib.util.spec_from_file_location('driving_scenes_recipe', ROOT / 'data_recipes' / 'driving_scenes.py')
    mod = sys.modules['driving_scenes_recipe'] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

recipe = _load_recipe()


def test_waymo_style_export_keeps_every_fifth_frame(tmp_path):
    ds = DrivingScenes('test', n=19, size=16, grid=(4, 4))
    segments = [('segA', (ds[i] for i in range(12))), ('segB', (ds[i] for i in range(12, 19)))]
    meta = recipe.export_segments(segments, tmp_path, 'train', every=5, native_hz=10.0, rgb_format='png')
    names = sorted(p.name for p in (tmp_path / 'train').glob('*.json'))
    assert names == ['segA_000000.json', 'segA_000005.json', 'segA_000010.json', 'segB_000000.json', 'segB_000005.json']
    split = json.loads((tmp_path / 'metadata.json').read_text())['splits']['train']
    assert split == meta['splits']['train'] and meta['hz'] == 2.0 and meta['every'] == 5
    assert (split['segments'], split['frames'], split['written']) == (2, 19, 5)
    assert split['per_segment'] == {'segA': dict(frames=12, written=3), 'segB': dict(frames=7, written=2)}
    export = SceneFrames(tmp_path, 'train')
    assert len(export) == 5 and torch.equal(export[4]['rgb'], ds[17]['rgb']) and torch.equal(export[1]['seg'], ds[5]['seg'])
    assert (export[1]['depth'] - ds[5]['depth']).abs().max() <= 0.5 / 256 + 1e-6, "16-bit PNG depth, 1/256 m steps"
    recipe.export_segments([('segC', (ds[i] for i in range(3)))], tmp_path, 'test', every=5)
    assert set(json.loads((tmp_path / 'metadata.json').read_text())['splits']) == {'train', 'test'}, "splits accumulate"


def test_objects_from_3d_boxes_match_the_scene():
    s = DrivingScenes('test', n=4, n_objects=5)[3]
    o = {k: v.numpy() for k, v in s['objects'].items()}
    boxes = [(recipe.OBJECT_CLASSES[k], c, lhw, y) for k, c, lhw, y in zip(o['labels'], o['centers'], o['sizes'], o['yaw'])]
    got = recipe.objects_from_boxes(boxes + [('sign', o['centers'][0], o['sizes'][0], 0.0), ('car', -o['centers'][0], o['sizes'][0], 0.0)],
                                    s['K'].numpy(), 64, 64)
    assert np.array_equal(got['labels'], o['labels']) and np.allclose(got['boxes2d'], o['boxes2d'], atol=1e-3)
    assert recipe.objects_from_boxes([], s['K'].numpy(), 64, 64)['centers'].shape == (0, 3)


def test_flir_pairs_with_coco_boxes(tmp_path):
    rgb_dir, th_dir = tmp_path / 'rgb', tmp_path / 'thermal'
    rgb_dir.mkdir(); th_dir.mkdir()
    for stem in ('a', 'b', 'c'):
        Image.fromarray(np.full((20, 40), 200 if stem == 'a' else 50, np.uint8)).save(th_dir / f'{stem}.jpg')
    Image.fromarray(np.zeros((30, 60, 3), np.uint8)).save(rgb_dir / 'a.jpg')
    (rgb_dir / 'b.jpg').write_bytes(b'garbage')                           # c has no RGB partner at all
    coco = dict(categories=[{'id': 3, 'name': 'car'}, {'id': 1, 'name': 'person'}],
                images=[{'id': i, 'file_name': f'data/{s}.jpg', 'width': 40, 'height': 20} for i, s in enumerate('abc')],
                annotations=[{'image_id': 0, 'category_id': 3, 'bbox': [4, 2, 10, 6]}, {'image_id': 0, 'category_id': 1, 'bbox': [20, 0, 4, 8]}])
    (tmp_path / 'coco.json').write_text(json.dumps(coco))
    meta = recipe.export_flir(rgb_dir, th_dir, tmp_path / 'coco.json', tmp_path / 'out', 'test', size=(10, 20))
    assert meta['classes'] == ['person', 'car'] and meta['source'] == 'flir'
    assert meta['splits']['test'] == dict(images=3, written=1, unpaired=1, unreadable=1, boxes=2)
    item = SceneFrames(tmp_path / 'out', 'test')[0]
    assert item['rgb'].shape == (3, 10, 20) and item['thermal'].shape == (1, 10, 20) and item['thermal'].mean() > 150
    assert item['objects']['labels'].tolist() == [1, 0] and item['objects']['boxes2d'].tolist() == [[2, 1, 7, 4], [10, 0, 12, 4]]
    assert set(item['objects']) == {'labels', 'boxes2d'} and 'K' not in item and 'depth' not in item, "2D-only: no fake 3D targets"
    views = MultiModalViews('thermal', global_size=16, local_size=8, n_local=2)(item)
    assert views['global']['thermal'].shape == (2, 1, 16, 16)
    recipe.main(['flir', '--rgb', str(rgb_dir), '--thermal', str(th_dir), '--coco', str(tmp_path / 'coco.json'),
                 '--split', 'train', '--out', str(tmp_path / 'out')])
    assert len(SceneFrames(tmp_path / 'out', 'train')) == 1 and SceneFrames(tmp_path / 'out', 'train')[0]['rgb'].shape == (3, 20, 40)


def test_sdk_recipes_say_what_to_install():
    if importlib.util.find_spec('tensorflow') is not None: pytest.skip('tensorflow is installed')
    with pytest.raises(ImportError, match='pip install tensorflow'): next(recipe.waymo_segments(['x.tfrecord']))


def test_scenes_and_views_need_no_extras():
    import subprocess
    code = ("import sys; import jepa_lab.data.scenes, jepa_lab.data.scene_files, jepa_lab.views.multimodal;"
            "bad = [m for m in ('matplotlib', 'papermill', 'nbdev', 'plotly', 'IPython', 'fastcore', 'tensorflow', 'nuscenes') if m in sys.modules];"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd='/')
    assert r.returncode == 0, r.stderr

"""The frozen patch-probe stage across modules: DrivingScenes -> MultiModalViews.clean -> a frozen FusionTokenEncoder ->
jepa_lab.patch_probes -> the jepa_lab.eval metrics."""
import copy
import math

import torch
from torch.utils.data import DataLoader

from jepa_lab.views import MultiModalViews
from jepa_lab.models import create_fusion_encoder
from jepa_lab.probes import CleanViews, SemanticSegProbe, encoder_feature_fn, evaluate_patch_probes, fit_patch_probes
from jepa_lab.data import DrivingScenes, collate_scenes

torch.set_num_threads(min(2, torch.get_num_threads()))
SMALL = dict(det3d=dict(hidden=32), det2d=dict(hidden=32))


def _scenes(n_train=8, n_val=4, size=32):
    return list(DrivingScenes('train', n=n_train, size=size)), list(DrivingScenes('test', n=n_val, size=size))


def test_fusion_encoder_probe_stage_leaves_the_encoder_untouched():
    torch.manual_seed(0)
    enc = create_fusion_encoder('vit_nano', routing='pruned', img_size=32, patch_size=8)
    before = copy.deepcopy(enc.state_dict())
    train, val = _scenes()
    m = fit_patch_probes(encoder_feature_fn(enc, 'depth'), train, val, steps=3, batch_size=4, val_every=2, probe_args=SMALL)
    for k in ('det3d/mAP_xz', 'det3d/mAP_xy', 'det3d/ADE_xz', 'seg/mIoU', 'depth/MAE', 'occupancy/IoU'):
        assert math.isfinite(m[k]), (k, m)
    assert 0 <= m['seg/mIoU'] <= 1 and m['depth/MAE'] > 0 and {m[f'{n}/best_step'] for n in ('seg', 'depth')} <= {2, 3}
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in before.items()), "the frozen encoder changed"


def test_thermal_companion_2d_detection():
    torch.manual_seed(0)
    enc = create_fusion_encoder('vit_nano', img_size=32, patch_size=8)
    train, val = _scenes()
    views = MultiModalViews('thermal', n_local=0, probe_size=32)
    m = fit_patch_probes(encoder_feature_fn(enc, 'thermal'), train, val, probes=('det2d',), steps=2, batch_size=4, val_every=1,
                         views=views, probe_args=SMALL)
    assert set(m) == {'det2d/mAP50', 'det2d/AP50/car', 'det2d/AP50/pedestrian', 'det2d/AP50/cyclist', 'det2d/best_step'}
    assert 0 <= m['det2d/mAP50'] <= 1


def test_given_probes_are_trained_in_place_and_keep_their_best_state():
    torch.manual_seed(0)
    enc = create_fusion_encoder('vit_nano', img_size=32, patch_size=8)
    fn = encoder_feature_fn(enc, 'depth')
    train, val = _scenes()
    seg = SemanticSegProbe(enc.embed_dim, 6, (32, 32))
    init = copy.deepcopy(seg.state_dict())
    hist = []
    m = fit_patch_probes(fn, train, val, probes={'seg': seg}, steps=6, lr=1e-2, batch_size=4, val_every=2, history=hist)
    assert not all(torch.equal(v, seg.state_dict()[k]) for k, v in init.items())
    loader = DataLoader(CleanViews(val, MultiModalViews(probe_size=32)), batch_size=4, collate_fn=collate_scenes)
    assert math.isclose(evaluate_patch_probes({'seg': seg}, fn, loader)['seg/mIoU'], m['seg/mIoU'], rel_tol=1e-9)
    assert m['seg/mIoU'] == max(h['seg/mIoU'] for h in hist) and [h['step'] for h in hist] == [2, 4, 6]

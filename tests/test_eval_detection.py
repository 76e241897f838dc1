"2D AP50 of `jepa_lab.eval.detection` (COCO convention) against pycocotools' COCOeval itself."
import contextlib, io
import numpy as np
import pytest
from jepa_lab.eval.detection import box_ap, detection_2d_metrics

pytest.importorskip('pycocotools', reason="pycocotools is not installed (it is in the 'dev' extra): the COCO reference is unavailable")
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

CLASSES = ('car', 'person', 'bicycle', 'ghost')   # 'ghost' is predicted but never present: COCO leaves it out (precision -1)

def _coco(images, cats, anns):
    c = COCO()
    c.dataset = dict(images=images, categories=cats, annotations=anns)
    with contextlib.redirect_stdout(io.StringIO()): c.createIndex()
    return c

def coco_ap50(preds, gts, n_classes):
    "Per-class AP at IoU 0.5 (NaN where COCO has precision -1) and stats[1] (AP@[IoU=0.50], area all, maxDets 100) from COCOeval."
    images, cats = [{'id': f + 1} for f in range(len(gts))], [{'id': c + 1} for c in range(n_classes)]
    xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
    gt_anns = [dict(id=i + 1, image_id=f, category_id=c, bbox=b, area=b[2] * b[3], iscrowd=0) for i, (f, c, b) in enumerate(
        (f + 1, int(l) + 1, xywh(x)) for f, g in enumerate(gts) for x, l in zip(g['boxes2d'], g['labels']))]
    dts = [dict(image_id=f + 1, category_id=int(l) + 1, bbox=xywh(x), score=float(s))
           for f, p in enumerate(preds) for x, l, s in zip(p['boxes2d'], p['labels'], p['scores'])]
    cg = _coco(images, cats, gt_anns)
    with contextlib.redirect_stdout(io.StringIO()):
        cd = cg.loadRes(dts) if dts else _coco(images, cats, [])
        E = COCOeval(cg, cd, 'bbox')
        E.evaluate(); E.accumulate(); E.summarize()
    assert E.params.iouThrs[0] == 0.5 and E.params.maxDets[-1] == 100 and E.params.areaRngLbl[0] == 'all'
    prec = E.eval['precision'][0, :, :, 0, -1]      # (101 recall points, K) at IoU 0.5, area 'all', maxDets 100
    return np.array([prec[:, k].mean() if (prec[:, k] > -1).all() else np.nan for k in range(n_classes)]), E.stats[1]

def _random_frames(rng, n_frames, tie_levels=None, n_classes=3):
    "Objects and detections: noisy copies (some duplicated, some mislabelled, some 'ghost'), random false positives, optional tied scores."
    preds, gts = [], []
    for _ in range(n_frames):
        n = rng.integers(0, 9)
        place = lambda k: (lambda lo: np.concatenate([lo, lo + rng.uniform(4, 30, (k, 2))], 1))(rng.uniform(0, 80, (k, 2)))
        objs, labels = place(n), rng.integers(0, n_classes, n)
        src = rng.choice(n, rng.integers(0, n + 3), replace=True) if n else np.zeros(0, int)
        x = np.concatenate([objs[src] + rng.normal(0, 3, (len(src), 4)), place(rng.integers(0, 3))])
        x = np.concatenate([np.minimum(x[:, :2], x[:, 2:]), np.maximum(x[:, :2], x[:, 2:])], 1)
        pl = np.concatenate([np.where(rng.random(len(src)) < 0.85, labels[src], rng.integers(0, n_classes, len(src))),
                             rng.integers(0, n_classes + 1, len(x) - len(src))])
        scores = rng.random(len(x)) if tie_levels is None else rng.integers(0, tie_levels, len(x)) / tie_levels
        preds.append(dict(boxes2d=x, labels=pl, scores=scores)); gts.append(dict(boxes2d=objs, labels=labels))
    return preds, gts

def _cases():
    rng = np.random.default_rng(0)
    out = {f'random, tie_levels={t}': _random_frames(rng, 60, t) for t in (None, 4)}
    preds, gts = out['random, tie_levels=4']
    out['perfect'] = [dict(boxes2d=g['boxes2d'], labels=g['labels'], scores=np.linspace(1, 0.5, len(g['labels']))) for g in gts], gts
    out['no predictions'] = [dict(boxes2d=np.zeros((0, 4)), labels=np.zeros(0, int), scores=np.zeros(0)) for _ in gts], gts
    # IoU exactly 0.5, and a detection with IoU 0.6 to two objects (COCO's loop gives it the last one), then one with IoU 1 to the first
    out['IoU ties and 0.5'] = ([dict(boxes2d=np.array([[0., 0, 10, 5], [2.5, 20, 12.5, 30], [0, 20, 10, 30]]), labels=np.array([0, 0, 0]),
                                     scores=np.array([0.9, 0.8, 0.7]))],
                               [dict(boxes2d=np.array([[0., 0, 10, 10], [0, 20, 10, 30], [5, 20, 15, 30]]), labels=np.array([0, 0, 0]))])
    # more than maxDets = 100 detections of one class in one image: COCO keeps the 100 best
    many = rng.uniform(0, 50, (150, 2))
    out['over maxDets'] = ([dict(boxes2d=np.concatenate([many, many + 10], 1), labels=np.zeros(150, int), scores=rng.random(150))],
                           [dict(boxes2d=np.concatenate([many[::3], many[::3] + 10], 1) + 0.5, labels=np.zeros(50, int))])
    return out

@pytest.mark.parametrize('name', list(_cases()))
def test_ap50_matches_pycocotools(name):
    "AP50 (COCO) per class and mAP50 equal COCOeval's on random and crafted detections, to 1e-9."
    preds, gts = _cases()[name]
    ours, ours_map = box_ap(preds, gts, CLASSES), detection_2d_metrics(preds, gts, CLASSES)['mAP50']
    ref, ref_map = coco_ap50(preds, gts, len(CLASSES))
    assert (np.isnan(ours) == np.isnan(ref)).all(), (ours, ref)
    worst = max(np.nanmax(np.abs(ours - ref)), abs(ours_map - ref_map))
    print(f'{name}: largest |ours - pycocotools| = {worst:.3g}')
    assert worst <= 1e-9, (name, ours, ref, ours_map, ref_map)

def test_stepwise_differs_from_coco():
    "The step-wise option is a different number on the same matches (it is what the tables reported before)."
    preds, gts = _cases()['random, tie_levels=None']
    assert np.nanmax(np.abs(box_ap(preds, gts, CLASSES, convention='stepwise') - box_ap(preds, gts, CLASSES))) > 1e-3

"""Benchmark M3-JEPA's frozen-feature cache: one training step with the frozen layers' output read from the cache, against the
same step recomputing both encoders in full; same model, same batch, one run.

Run `python benchmarks/m3_cache.py` (CPU: an image ViT as deep as the seed's DINOv2-L, 24 blocks, at ViT-Small width, 128 px,
patch 16, random weights; all-MiniLM-L6-v2 for text; batch 32 of the embedded captioned scenes; LoRA r=4 on the last 3 layers of
each, as seed 003 / Table 6 place it, so 21 of 24 image blocks and 3 of 6 text layers are frozen). `--timm '' --encoder vit_small`
measures the 12-block jepa_lab ViT-S instead (9 of 12 frozen, a smaller share to cache); on a GPU node e.g.
`python benchmarks/m3_cache.py --device cuda --timm vit_large_patch14_dinov2 --depth 0 --img 224 --patch 14 --batch 256`.

A step is what the trainer does: both encoders (image: 21 frozen + 3 LoRA-adapted blocks by default; text: 3 + 3), the MoE predictor on one AGD
direction, (1-α)·InfoNCE + α·smooth-L1, backward, AdamW step. The cached variant has seen the batch once before (a warm cache, as
from the second epoch on); both variants share the weights, so the script first checks that they give the same loss. Steps
alternate (cached, full, full, cached, ...) after a warm-up so that load on a shared machine hits both; we report median and
minimum. The last line printed is exactly `ratio=<cached median step time / full median step time>`.
"""
from __future__ import annotations
import argparse, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root, so jepa_lab imports without installation

import torch
from torch.utils.data import default_collate
from jepa_lab.data import make_dataset
from jepa_lab.methods import M3JEPA, M3JEPAConfig
from jepa_lab.views import ViewDataset

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--encoder', default='vit_small'); p.add_argument('--img', type=int, default=128); p.add_argument('--patch', type=int, default=16)
    p.add_argument('--batch', type=int, default=32); p.add_argument('--reps', type=int, default=5); p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--lora-layers', type=int, default=3); p.add_argument('--device', default='cpu')
    p.add_argument('--timm', default='vit_small_patch16_224', help="a timm ViT (random weights, nothing downloaded); '' for the jepa_lab --encoder preset")
    p.add_argument('--depth', type=int, default=24, help='with --timm: its depth (24, as DINOv2-L, the seed\'s image encoder; 0: the model\'s own)')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: what this process may use)')
    a = p.parse_args(argv)
    import os
    torch.set_num_threads(a.threads or max(1, len(os.sched_getaffinity(0))))
    dev = torch.device(a.device)
    torch.manual_seed(0)
    kw = dict(encoder=a.encoder, img_size=a.img, patch_size=a.patch, lora_layers=a.lora_layers, moe_dim=512, cl_dim=256, moe_dropout=0.0,
              image_timm=a.timm, image_timm_args={'depth': a.depth} if a.depth else {})
    m = M3JEPA(M3JEPAConfig(**kw, cache='memory')).to(dev)
    full = M3JEPA(M3JEPAConfig(**kw, cache='none')).to(dev)
    full.load_state_dict(m.state_dict())
    ds = make_dataset('captioned_shapes', 'train', n=a.batch, size=a.img)
    views, _ = default_collate([ViewDataset(ds, m.train_transform())[(i, 0)] for i in range(a.batch)])
    views = {'image': views['image'].to(dev), 'caption': views['caption']}
    opts = {k: torch.optim.AdamW([q for q in v.parameters() if q.requires_grad], lr=1e-4) for k, v in (('cached', m), ('full', full))}
    models = {'cached': m, 'full': full}

    def step(name, i):
        model, opt = models[name], opts[name]
        if dev.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter()
        loss = model(views, i).loss
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        if dev.type == 'cuda': torch.cuda.synchronize()
        return time.perf_counter() - t, loss.item()

    with torch.no_grad(): same = abs(m(views, 0).loss.item() - full(views, 0).loss.item())   # also fills the cache: a warm cache
    assert same < 1e-4, f"the cached and full models disagree by {same}"
    for i in range(a.warmup): step('cached', i); step('full', i)
    times = {'cached': [], 'full': []}
    for r in range(a.reps):
        for name in (('cached', 'full') if r % 2 == 0 else ('full', 'cached')): times[name].append(step(name, a.warmup + r)[0])
    lora = {k: v['trainable'] for k, v in m.lora.items()}
    print(f"image {a.timm or a.encoder} at {a.img} px (LoRA on the last {a.lora_layers} of {len(m.image.layers)} blocks), text all-MiniLM-L6-v2 "
          f"(last {a.lora_layers} of {len(m.text.layers)} layers); batch {a.batch}, {dev}, {torch.get_num_threads()} thread(s); LoRA params {lora}")
    print(f"{'variant':8s} {'median ms':>10s} {'min ms':>8s} reps")
    for k, v in times.items(): print(f"{k:8s} {1e3 * statistics.median(v):10.1f} {1e3 * min(v):8.1f} {len(v)}")
    print(f"loss difference cached vs full before training: {same:.2e}; cache hits {m.encode['image'].hits + m.encode['text'].hits}")
    print(f"ratio={statistics.median(times['cached']) / statistics.median(times['full']):.3f}")

if __name__ == '__main__': main()

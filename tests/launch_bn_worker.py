"""One rank of tests/test_launch.py's BatchNorm check, launched as `python -m torch.distributed.run --standalone --nproc_per_node=2
tests/launch_bn_worker.py OUT_DIR`: a Projector with its BatchNorm synchronised (`sync_batchnorm`, on CPU: AllReduceBatchNorm) under
DDP takes two SGD steps on this rank's half of a fixed batch; each rank saves its outputs, input gradients, parameter gradients and
running statistics. The test recomputes all of it in one process on the whole batch. Model and batch are defined here for both sides."""
from __future__ import annotations
import os, sys
from pathlib import Path
import torch

STEPS, N = 2, 64

def build():
    "The projector both sides train: 8 -> 32 -> 32 -> 4, two BatchNorm layers."
    from jepa_lab.models.heads import Projector
    torch.manual_seed(0)
    return Projector(8, 32, 4, n_layers=3)

def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    "The global batch (N, 8) of `step`, its two halves far apart (so local statistics are not global ones), and target weights (N, 4)."
    g = torch.Generator().manual_seed(step)
    x = torch.randn(N, 8, generator=g)
    x[: N // 2] = 2 * x[: N // 2] + 3
    return x, torch.randn(N, 4, generator=g)

def loss_fn(out: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    "A mean over the batch (so DDP's gradient average is the whole-batch gradient), not linear in the output."
    return ((out * w).sum(-1) + out.square().sum(-1)).mean()

def main(out_dir: str):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from jepa_lab.train.distributed import init_distributed, sync_batchnorm
    torch.set_num_threads(1)
    rank, world = init_distributed()
    proj = sync_batchnorm(build(), 'cpu')
    model, opt = DDP(proj), torch.optim.SGD(proj.parameters(), lr=0.1)
    res = dict(rank=rank, world=world, kinds=[type(m).__name__ for m in proj], steps=[])
    for step in range(STEPS):
        x, w = (t.chunk(world)[rank] for t in batch(step))
        x.requires_grad_()
        out = model(x)
        opt.zero_grad(); loss_fn(out, w).backward()
        res['steps'].append(dict(out=out.detach(), x_grad=x.grad.detach() / world,   # the sum over ranks' losses: the mean's × world
                                 grads={k: p.grad.clone() for k, p in proj.named_parameters()},
                                 buffers={k: b.clone() for k, b in proj.named_buffers()}))
        opt.step()
    tmp = Path(out_dir) / f'.rank{rank}.pt'
    torch.save(res, tmp)
    tmp.rename(tmp.with_name(f'rank{rank}.pt'))
    dist.barrier()

if __name__ == '__main__':
    main(sys.argv[1])
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)   # gloo may abort in interpreter teardown after the work is done (tests/ddp_sigreg_worker.py)

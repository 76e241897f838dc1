"""Worker for `tests/test_losses_ddp.py`: one rank of a 2-process gloo/CPU DDP run of `jepa_lab.losses.sigreg`.

Launched as `python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_sigreg_worker.py OUT_DIR`.
Every rank takes its share of a fixed global batch, computes SIGReg of a DDP-wrapped model's output, runs backward, and
saves its loss values and the DDP-averaged gradients to `OUT_DIR/rank{RANK}.pt`. The test recomputes everything on the
whole batch in one process. The model, the batches, the splits and the directions are defined here and imported by the test,
so both sides use identical inputs.
"""
from __future__ import annotations
import os, sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root, so jepa_lab imports without installation
from jepa_lab.losses import SIGReg, sigreg  # noqa: E402

IN_DIM, OUT_DIM, N_SLICES, STEP = 8, 16, 64, 5

def build_model() -> nn.Module:
    "Tiny deterministic model (8 -> 16); identical on every rank and in the test process."
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(IN_DIM, 16), nn.Tanh(), nn.Linear(16, OUT_DIM))

def directions() -> torch.Tensor:
    "SIGReg directions (16, 64) for step 5, as every rank draws them."
    return SIGReg(n_slices=N_SLICES).directions(OUT_DIM, step=STEP)

def cases() -> dict[str, tuple[torch.Tensor, list[int]]]:
    "Name -> (global batch (..., N, 8), per-rank sizes along the batch dim -2)."
    g = torch.Generator().manual_seed(1234)
    return {
        'flat': (1.3 * torch.randn(64, IN_DIM, generator=g) + 0.2, [32, 32]),           # (N, D)
        'views': (torch.randn(3, 48, IN_DIM, generator=g) - 0.1, [24, 24]),            # (V, N, D) stacked views
        'uneven': (0.7 * torch.randn(60, IN_DIM, generator=g), [40, 20]),               # unequal per-rank batches
    }

def local_part(x: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
    "Rank `rank`'s share of the global batch `x` along dim -2."
    return torch.split(x, sizes, dim=-2)[rank]

def main(out_dir: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.set_num_threads(1)
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    assert world == 2, f"expected world size 2, got {world}"
    model = DDP(build_model())
    A = directions()
    result = {'rank': rank, 'world': world}
    for name, (x, sizes) in cases().items():
        model.zero_grad(set_to_none=True)
        loss = sigreg(model(local_part(x, sizes, rank)), A)
        loss.backward()
        result[name] = {'loss': loss.detach().clone(),
                        'grads': {k: p.grad.detach().clone() for k, p in model.module.named_parameters()}}
    tmp = Path(out_dir) / f'.rank{rank}.pt.tmp'
    torch.save(result, tmp)
    tmp.rename(tmp.with_name(f'rank{rank}.pt'))  # atomic: the test never reads a half-written file
    dist.barrier()
    dist.destroy_process_group()

if __name__ == '__main__':
    main(sys.argv[1])
    # torch 2.15 + gloo: about 1 exit in 10 aborts during interpreter teardown ("terminate called without an active
    # exception", SIGABRT) even for a bare init_process_group + all_reduce script, after all work is done. Skip the C++
    # static destructors so that torchrun's exit status reflects the work, not that teardown race.
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)

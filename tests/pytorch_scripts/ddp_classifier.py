"""Data-parallel training the way PyTorch DDP scripts are written: init_process_group
from the launcher's environment, a DistributedSampler with set_epoch, the model wrapped in
DistributedDataParallel, gradient accumulation under no_sync(), a metric all-reduced, rank
0 alone printing and saving. Run it with ``mpiexec -n N python ddp_classifier.py OUT``:
on torch (gloo, rendezvous on localhost from the MPI ranks) or on gradflow (mpi).
Rank 0 writes OUT/result.json (losses per epoch, the final parameters' sums)."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import FRAMEWORK, seeded_init  # noqa: E402

# mpiexec names the ranks PMI_*; torch's env:// rendezvous reads RANK / WORLD_SIZE
os.environ.setdefault("RANK", os.environ.get("PMI_RANK", "0"))
os.environ.setdefault("WORLD_SIZE", os.environ.get("PMI_SIZE", "1"))
os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
os.environ.setdefault("MASTER_PORT", os.environ.get("DDP_PORT", "29541"))

if FRAMEWORK == "torch":
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
    BACKEND = "gloo"
else:
    import gradflow as torch
    import gradflow.distributed as dist
    import gradflow.nn as nn
    import gradflow.nn.functional as F
    from gradflow.nn.parallel import DistributedDataParallel as DDP
    from gradflow.utils.data import DataLoader, DistributedSampler, TensorDataset
    BACKEND = "mpi"


def make_data(n=96, d=10, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2, (classes, d))
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(0, 1, (n, d))
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def main(out):
    dist.init_process_group(BACKEND)
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = make_data()
    dataset = TensorDataset(x, y)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=8, sampler=sampler)
    model = seeded_init(nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3)), torch)
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        ddp.train()
        total = torch.zeros(2)
        for i, (xb, yb) in enumerate(loader):
            if i % 2 == 0:
                opt.zero_grad()
                with ddp.no_sync():  # accumulate two batches, reduce once
                    loss = F.cross_entropy(ddp(xb), yb) / 2
                    loss.backward()
            else:
                loss = F.cross_entropy(ddp(xb), yb) / 2
                loss.backward()
                opt.step()
            total += torch.tensor([2 * loss.item() * len(yb), float(len(yb))])
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        losses.append(float(total[0] / total[1]))
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {losses[-1]:.4f}")
    if rank == 0:
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump({"losses": losses, "world": world,
                       "param_sums": [float(p.detach().sum()) for p in model.parameters()]}, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])

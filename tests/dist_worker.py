"""Programs the distributed tests run under ``mpiexec -n 2`` (or alone, as world size 1).

    python tests/dist_worker.py SCENARIO OUTDIR [ARGS...]

Each rank writes what the test checks to OUTDIR/SCENARIO.rank<R>.npz (or .txt); the test
process compares against a one-process computation of its own."""
from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

import gradflow as gf
import gradflow.distributed as dist
from gradflow import nn, optim
from gradflow.nn import functional as F
from gradflow.nn.models import LeNet5, MLP

STEPS = 3
BATCH = 8


def make_model(kind):
    m = MLP(1, 8, 10, hidden=16) if kind == "mlp" else LeNet5(1, 28, 10)
    return m.double()


def make_data(kind, steps=STEPS):
    rng = np.random.default_rng(1234)
    size = 8 if kind == "mlp" else 28
    xs = rng.standard_normal((steps, BATCH, 1, size, size))
    ys = rng.integers(0, 10, (steps, BATCH))
    return xs, ys


def make_optimizer(name, params):
    if name == "sgd":
        return optim.SGD(params, lr=0.1, momentum=0.9)
    return optim.Adam(params, lr=0.01)


def equivalence(out, rank, world, kind, opt_name):
    """Replicas start from different seeds (DDP must broadcast rank 0's); each rank trains on
    its slice of every batch; saves the parameters after each step and the first averaged grads."""
    gf.manual_seed(100 + rank)
    model = make_model(kind)
    gf.manual_seed(0)
    ref = make_model(kind)  # what rank 0 would have built with seed 0: the single-process start
    if rank == 0:
        model.load_state_dict(ref.state_dict())
    ddp = nn.DistributedDataParallel(model, bucket_cap_mb=0.01)  # several buckets
    opt = make_optimizer(opt_name, model.parameters())
    xs, ys = make_data(kind)
    per = BATCH // world
    saved = {}
    for step in range(STEPS):
        x = gf.tensor(xs[step, rank * per:(rank + 1) * per])
        y = gf.tensor(ys[step, rank * per:(rank + 1) * per])
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        if step == 0:
            for n, p in model.named_parameters():
                saved[f"grad0/{n}"] = p.grad.numpy().copy()
        opt.step()
        for n, p in model.named_parameters():
            saved[f"step{step}/{n}"] = p.detach().numpy().copy()
    np.savez(os.path.join(out, f"equiv-{kind}-{opt_name}.rank{rank}.npz"), **saved)


def accumulation(out, rank, world):
    """Two micro-batches under no_sync, then one synchronised: the step equals one process
    on the concatenation of all ranks' micro-batches (the loss scaled per micro-batch)."""
    gf.manual_seed(0)
    model = make_model("mlp")
    ddp = nn.DistributedDataParallel(model)
    xs, ys = make_data("mlp", steps=2)
    per = BATCH // world
    x = [gf.tensor(xs[i, rank * per:(rank + 1) * per]) for i in range(2)]
    y = [gf.tensor(ys[i, rank * per:(rank + 1) * per]) for i in range(2)]
    with ddp.no_sync():
        F.cross_entropy(ddp(x[0]), y[0]).backward()
    local = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    F.cross_entropy(ddp(x[1]), y[1]).backward()
    saved = {f"local/{n}": g for n, g in local.items()}
    saved.update({f"synced/{n}": p.grad.numpy().copy() for n, p in model.named_parameters()})
    np.savez(os.path.join(out, f"accum.rank{rank}.npz"), **saved)


def buffers(out, rank, world):
    """BatchNorm running statistics follow rank 0's: rank 1's are perturbed, then both ranks
    run one training forward on the same input."""
    gf.manual_seed(rank)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 2)).double()
    ddp = nn.DistributedDataParallel(model)
    start = {n: b.numpy().copy() for n, b in model.named_buffers()}
    if rank == 1:
        with gf.no_grad():
            model[1].running_mean.add_(5.0)
    x = gf.tensor(np.random.default_rng(0).standard_normal((4, 1, 6, 6)))
    ddp(x).sum().backward()
    saved = {f"start/{n}": v for n, v in start.items()}
    saved.update({f"after/{n}": b.numpy().copy() for n, b in model.named_buffers()})
    np.savez(os.path.join(out, f"buffers.rank{rank}.npz"), **saved)


def mismatch(out, rank, world):
    model = nn.Sequential(nn.Linear(4, 3 if rank == 0 else 5))
    try:
        nn.DistributedDataParallel(model)
        msg = "no error"
    except RuntimeError as e:
        msg = str(e)
    with open(os.path.join(out, f"mismatch.rank{rank}.txt"), "w") as f:
        f.write(msg)


def unused(out, rank, world):
    """A parameter outside the loss: the next forward says which one."""
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = nn.Linear(3, 1), nn.Linear(3, 1)

        def forward(self, x):
            return self.used(x)
    ddp = nn.DistributedDataParallel(Two())
    x = gf.ones(2, 3)
    ddp(x).sum().backward()
    try:
        ddp(x)
        msg = "no error"
    except RuntimeError as e:
        msg = str(e)
    with open(os.path.join(out, f"unused.rank{rank}.txt"), "w") as f:
        f.write(msg)


def collectives(out, rank, world):
    """Every collective once, results saved for the test to check."""
    res = {}
    t = gf.tensor([1.0, 2.0, 3.0]) * (rank + 1)
    dist.all_reduce(t)
    res["sum"] = t.numpy().copy()
    for op in ("avg", "max", "min", "prod"):
        t = gf.tensor([1.0, -2.0]) * (rank + 1)
        dist.all_reduce(t, op)
        res[op] = t.numpy().copy()
    t = (gf.arange(6.0).reshape(2, 3) * (rank + 1)).t()  # not contiguous
    dist.all_reduce(t)
    res["noncontig"] = t.numpy().copy()
    t = gf.tensor([rank, rank], dtype=gf.int64)
    dist.all_reduce(t)
    res["int"] = t.numpy().copy()
    t = gf.full((3,), float(rank))
    dist.broadcast(t, src=world - 1)
    res["bcast"] = t.numpy().copy()
    lst = [gf.zeros(2) for _ in range(world)]
    dist.all_gather(lst, gf.tensor([rank, rank + 0.5]))
    res["gather"] = np.stack([x.numpy().copy() for x in lst])
    o = gf.zeros(2 * world)
    dist.all_gather_into_tensor(o, gf.tensor([rank, rank + 0.5]))
    res["gather_into"] = o.numpy().copy()
    o = gf.zeros(2)
    dist.reduce_scatter(o, [gf.tensor([1.0, 2.0]) * (r + 1) * (rank + 1) for r in range(world)])
    res["rscatter"] = o.numpy().copy()
    o = gf.zeros(2)
    dist.reduce_scatter_tensor(o, gf.arange(2.0 * world) * (rank + 1), "avg")
    res["rscatter_avg"] = o.numpy().copy()
    w = dist.all_reduce(t2 := gf.ones(4) * rank, async_op=True)
    w.wait()
    res["async"] = t2.numpy().copy()
    objs = [None] * world
    dist.all_gather_object(objs, {"rank": rank})
    res["objects"] = np.array([o["rank"] for o in objs])
    lst = [f"from {rank}"]
    dist.broadcast_object_list(lst, src=0)
    res["bobj"] = np.array(lst)
    dist.barrier()
    res["weighted"] = np.array(dist.weighted_mean([float(rank), 1.0], 10 + rank))
    np.savez(os.path.join(out, f"collectives.rank{rank}.npz"), **res)


def fault(out, rank, world, how):
    """Rank 1 dies (SIGKILL) or hangs (sleeps) before the second all_reduce; rank 0 records
    the error it gets."""
    t = gf.ones(2)
    dist.all_reduce(t)
    if rank == 1:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(120)
    try:
        dist.all_reduce(t)
        msg = "no error"
    except dist.DistributedError as e:
        msg = f"{type(e).__name__}: {e}"
    with open(os.path.join(out, f"fault.rank{rank}.txt"), "w") as f:
        f.write(msg)
    raise SystemExit(msg)


def main():
    scenario, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    timeout = float(os.environ.get("GRADFLOW_DIST_TIMEOUT") or 60)
    dist.init_process_group("mpi", timeout=timeout)
    rank, world = dist.get_rank(), dist.get_world_size()
    if scenario == "equiv":
        for kind in args[0].split(","):
            for opt_name in args[1].split(","):
                equivalence(out, rank, world, kind, opt_name)
    elif scenario == "misc":
        accumulation(out, rank, world)
        buffers(out, rank, world)
        mismatch(out, rank, world)
        unused(out, rank, world)
        collectives(out, rank, world)
    elif scenario == "fault":
        fault(out, rank, world, args[0])
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

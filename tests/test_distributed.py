"""gradflow.distributed, DistributedDataParallel and DistributedSampler.

The multi-process tests start ``mpiexec -n 2`` on tests/dist_worker.py (2 ranks fit the
2-core CI machine) and compare what each rank saved with a one-process computation here;
they skip with the reason where mpi4py or mpiexec is missing (``pip install -e
".[distributed]"``). Every run is bounded by a subprocess timeout."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import gradflow as gf
import gradflow.distributed as dist
from gradflow import nn
from gradflow.data import DistributedSampler
from gradflow.data.distributed import shard, shard_batches
from gradflow.distributed.launch import find_mpiexec, mpi_unavailable_reason
from gradflow.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "dist_worker.py")
_reason = mpi_unavailable_reason()
requires_mpi = pytest.mark.skipif(_reason is not None, reason=f"MPI unavailable: {_reason}")


def _load_worker():
    spec = importlib.util.spec_from_file_location("dist_worker", WORKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def mpirun(args, n=2, timeout=240, mpiexec_flags=(), **env):
    cmd = [find_mpiexec(), *mpiexec_flags, "-n", str(n), sys.executable, WORKER, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(**env),
                          cwd=ROOT)


def _ok(r):
    assert r.returncode == 0, f"rc={r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"


def _text(path):
    with open(path) as f:
        return f.read()


def _npz(path):
    with np.load(path) as z:
        return dict(z)


# -- without MPI: the API's errors and the samplers ------------------------------------------------------
def test_uninitialized_group_errors():
    assert dist.is_available() and not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(RuntimeError, match="init_process_group"):
            call()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(gf.ones(2))
    with pytest.raises(RuntimeError, match="init_process_group"):
        nn.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="backend 'gloo' is not supported"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="timeout must be"):
        dist.init_process_group("mpi", timeout=-1)
    assert not dist.is_initialized()


def _run_py(code, timeout=120, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=_env(**env), cwd=ROOT)


def test_init_without_mpi4py_says_what_to_install():
    r = _run_py("import sys; sys.modules['mpi4py'] = None\n"
                "import gradflow.distributed as dist\n"
                "assert not dist.is_mpi_available()\n"
                "try:\n    dist.init_process_group('mpi')\n"
                "except RuntimeError as e:\n    print('ERR', e)\n")
    _ok(r)
    assert "ERR" in r.stdout and "pip install 'gradflow[distributed]'" in r.stdout


def test_nccl_without_cupy_is_a_clear_error():
    r = _run_py("import sys; sys.modules['mpi4py'] = None; sys.modules['cupy'] = None\n"
                "import gradflow.distributed as dist\n"
                "assert not dist.is_nccl_available()\n"
                "try:\n    dist.init_process_group('nccl')\n"
                "except RuntimeError as e:\n    print('ERR', e)\n")
    _ok(r)
    assert "ERR" in r.stdout and "CuPy" in r.stdout


@pytest.mark.parametrize("n,world,drop_last", [(12, 3, False), (10, 3, False), (10, 3, True),
                                               (7, 2, False), (2, 4, False)])
def test_distributed_sampler_partitions_an_epoch(n, world, drop_last):
    for epoch in (0, 1):
        shares = []
        for r in range(world):
            s = DistributedSampler(range(n), num_replicas=world, rank=r, seed=5, drop_last=drop_last)
            s.set_epoch(epoch)
            shares.append(list(s))
            assert len(shares[-1]) == len(s)
        assert len({len(x) for x in shares}) == 1  # equal shares: the ranks step together
        flat = [i for x in shares for i in x]
        if n % world == 0:
            assert sorted(flat) == list(range(n))  # each sample seen by exactly one rank
        elif drop_last:
            assert len(set(flat)) == len(flat) == (n // world) * world
        else:
            assert set(flat) == set(range(n)) and len(flat) == -(-n // world) * world
    a = [list(DistributedSampler(range(n), world, 0, seed=5)) for _ in range(2)]
    assert a[0] == a[1]  # the same on every call for an epoch: every rank agrees
    s = DistributedSampler(range(n), world, 0, seed=5)
    s.set_epoch(1)
    if n > 3:
        assert list(s) != a[0]  # set_epoch reshuffles
    assert list(DistributedSampler(range(n), world, 0, shuffle=False)) == list(range(0, n, world))[:len(a[0])]


def test_distributed_sampler_bad_arguments():
    with pytest.raises(ValueError, match="invalid rank 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be a positive"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))


def test_shard_batches_splits_the_one_process_batches():
    from gradflow.train import epoch_batches
    one = epoch_batches(23, 6, 3, 0)
    parts = [shard_batches(one, r, 2) for r in (0, 1)]
    assert all(len(p) == len(one) for p in parts)  # 4 of 6 and a last of 5: none dropped
    for k, batch in enumerate(one):
        assert sorted(parts[0][k] + parts[1][k]) == sorted(batch)
        assert not set(parts[0][k]) & set(parts[1][k])
        assert abs(len(parts[0][k]) - len(parts[1][k])) <= 1
    assert shard_batches(one) is one  # no process group: one process
    # a last batch of one sample cannot be split over two ranks: dropped on both
    last = epoch_batches(13, 6, 0, 0)
    assert [len(b) for b in last] == [6, 6, 1]
    assert [len(shard_batches(last, r, 2)) for r in (0, 1)] == [2, 2]


def test_shard_splits_a_dataset():
    from gradflow.data import Subset
    sub = Subset(list(range(100)), [5, 9, 2, 7, 3])
    parts = [shard(sub, r, 2) for r in (0, 1)]
    assert [p.indices for p in parts] == [[5, 2, 3], [9, 7]] and parts[0].dataset is sub.dataset
    assert [list(shard(range(5), r, 2)) for r in (0, 1)] == [[0, 2, 4], [1, 3]]
    assert shard(sub) is sub  # no process group: one process


# -- 2 ranks --------------------------------------------------------------------------------------------
KINDS, OPTS = ("mlp", "lenet5"), ("sgd", "adam")


@pytest.fixture(scope="module")
def equiv_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("equiv"))
    _ok(mpirun(["equiv", out, ",".join(KINDS), ",".join(OPTS)]))
    return out


def _single_process(kind, opt_name):
    """One process on the whole batch, from the seed-0 model rank 0 builds."""
    w = _load_worker()
    gf.manual_seed(0)
    model = w.make_model(kind)
    opt = w.make_optimizer(opt_name, model.parameters())
    xs, ys = w.make_data(kind)
    saved = {}
    for step in range(w.STEPS):
        opt.zero_grad()
        F.cross_entropy(model(gf.tensor(xs[step])), gf.tensor(ys[step])).backward()
        if step == 0:
            saved.update({f"grad0/{n}": p.grad.numpy().copy() for n, p in model.named_parameters()})
        opt.step()
        saved.update({f"step{step}/{n}": p.detach().numpy().copy() for n, p in model.named_parameters()})
    return saved


@requires_mpi
@pytest.mark.distributed
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("opt_name", OPTS)
def test_two_ranks_on_half_batches_equal_one_process(equiv_dir, kind, opt_name):
    ranks = [_npz(os.path.join(equiv_dir, f"equiv-{kind}-{opt_name}.rank{r}.npz")) for r in (0, 1)]
    ref = _single_process(kind, opt_name)
    assert set(ranks[0]) == set(ref)
    for key, want in ref.items():
        assert ranks[0][key].dtype == np.float64
        np.testing.assert_allclose(ranks[0][key], want, rtol=1e-10, atol=1e-12, err_msg=key)
    assert not np.array_equal(ranks[0]["step0/" + key.split("/", 1)[1]], ranks[0]["step2/" + key.split("/", 1)[1]])
    # and the replicas are bit-identical after every step (same averaged gradient everywhere)
    for key in ranks[0]:
        assert np.array_equal(ranks[0][key], ranks[1][key]), key


@pytest.fixture(scope="module")
def misc_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("misc"))
    _ok(mpirun(["misc", out]))
    return out


@requires_mpi
@pytest.mark.distributed
def test_collectives_two_ranks(misc_dir):
    for r in (0, 1):
        z = _npz(os.path.join(misc_dir, f"collectives.rank{r}.npz"))
        np.testing.assert_array_equal(z["sum"], [3, 6, 9])
        np.testing.assert_array_equal(z["avg"], [1.5, -3])
        np.testing.assert_array_equal(z["max"], [2, -2])
        np.testing.assert_array_equal(z["min"], [1, -4])
        np.testing.assert_array_equal(z["prod"], [2, 8])
        np.testing.assert_array_equal(z["noncontig"], 3 * np.arange(6.0).reshape(2, 3).T)
        assert z["int"].dtype == np.int64 and z["int"].tolist() == [1, 1]
        np.testing.assert_array_equal(z["bcast"], [1, 1, 1])
        np.testing.assert_array_equal(z["gather"], [[0, 0.5], [1, 1.5]])
        np.testing.assert_array_equal(z["gather_into"], [0, 0.5, 1, 1.5])
        # rank r receives sum over ranks q of input_list[r] = [1, 2] * (r + 1) * (q + 1)
        np.testing.assert_array_equal(z["rscatter"], np.array([1.0, 2.0]) * (r + 1) * 3)
        np.testing.assert_array_equal(z["rscatter_avg"], np.arange(4.0)[2 * r:2 * r + 2] * 1.5)
        np.testing.assert_array_equal(z["async"], [1, 1, 1, 1])
        assert z["objects"].tolist() == [0, 1] and z["bobj"].tolist() == ["from 0"]
        np.testing.assert_allclose(z["weighted"], [11 / 21, 1.0])


@requires_mpi
@pytest.mark.distributed
def test_no_sync_accumulates_locally_then_reduces(misc_dir):
    w = _load_worker()
    z = [_npz(os.path.join(misc_dir, f"accum.rank{r}.npz")) for r in (0, 1)]
    gf.manual_seed(0)
    model = w.make_model("mlp")
    xs, ys = w.make_data("mlp", steps=2)
    half = w.BATCH // 2
    for r in (0, 1):  # inside no_sync: this rank's own gradient only
        model.zero_grad()
        F.cross_entropy(model(gf.tensor(xs[0, r * half:(r + 1) * half])),
                        gf.tensor(ys[0, r * half:(r + 1) * half])).backward()
        for n, p in model.named_parameters():
            np.testing.assert_allclose(z[r][f"local/{n}"], p.grad.numpy(), rtol=1e-12, atol=1e-14)
    model.zero_grad()  # the synchronised one: the mean over ranks of both micro-batches' sums
    for i in (0, 1):
        F.cross_entropy(model(gf.tensor(xs[i])), gf.tensor(ys[i])).backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(z[0][f"synced/{n}"], p.grad.numpy(), rtol=1e-10, atol=1e-12)
        assert np.array_equal(z[0][f"synced/{n}"], z[1][f"synced/{n}"])


@requires_mpi
@pytest.mark.distributed
def test_buffers_follow_rank_0(misc_dir):
    z = [_npz(os.path.join(misc_dir, f"buffers.rank{r}.npz")) for r in (0, 1)]
    for key in z[0]:
        assert np.array_equal(z[0][key], z[1][key]), key  # rank 1's +5 drift was overwritten
    assert not np.array_equal(z[0]["start/1.running_mean"], z[0]["after/1.running_mean"])


@requires_mpi
@pytest.mark.distributed
def test_ddp_shape_mismatch_and_unused_parameter(misc_dir):
    for r in (0, 1):
        msg = _text(os.path.join(misc_dir, f"mismatch.rank{r}.txt"))
        assert "rank 0 has parameter '0.weight' of shape (3, 4)" in msg
        assert "rank 1 has parameter '0.weight' of shape (5, 4)" in msg
        msg = _text(os.path.join(misc_dir, f"unused.rank{r}.txt"))
        assert "got no gradient: spare.weight, spare.bias" in msg


@requires_mpi
@pytest.mark.distributed
def test_world_size_one_without_mpiexec(tmp_path):
    r = subprocess.run([sys.executable, WORKER, "equiv", str(tmp_path), "mlp", "sgd"],
                       capture_output=True, text=True, timeout=120, env=_env(), cwd=ROOT)
    _ok(r)
    got = _npz(tmp_path / "equiv-mlp-sgd.rank0.npz")
    for key, want in _single_process("mlp", "sgd").items():
        np.testing.assert_allclose(got[key], want, rtol=1e-12, atol=1e-14)


@requires_mpi
@pytest.mark.distributed
def test_launcher_rank_that_disagrees_with_mpi(tmp_path):
    r = _run_py("import gradflow.distributed as dist\n"
                "try:\n    dist.init_process_group('mpi', world_size=4)\n"
                "except ValueError as e:\n    print('ERR', e)\n"
                "assert not dist.is_initialized()\n")
    _ok(r)
    assert "world_size=4 but MPI says world_size is 1" in r.stdout


# -- faults: bounded, never a hang ------------------------------------------------------------------------
def _fault(tmp_path, how, seconds):
    """Run the fault scenario: the job must fail, and well within the test's bound."""
    t0 = time.monotonic()
    r = mpirun(["fault", str(tmp_path), how], timeout=100, GRADFLOW_DIST_TIMEOUT=seconds)
    assert r.returncode != 0
    assert time.monotonic() - t0 < 90
    return r


@requires_mpi
@pytest.mark.distributed
def test_hung_rank_times_out_naming_rank_and_collective(tmp_path):
    _fault(tmp_path, "hang", "3")  # the sleeping rank (120 s) is aborted with the job
    msg = (tmp_path / "fault.rank0.txt").read_text()
    assert msg.startswith("DistributedTimeoutError")
    assert "all_reduce (collective #2) timed out on rank 0 of 2 after 3 s" in msg


@requires_mpi
@pytest.mark.distributed
def test_killed_rank_makes_the_other_exit(tmp_path):
    # MPICH's mpiexec ends the job when a rank dies (even with -disable-auto-cleanup its
    # process manager takes rank 0 down within seconds); the collective timeout is set far
    # beyond the bound so this shows the job does not wait for it
    r = _fault(tmp_path, "kill", "300")
    assert "signal 9" in r.stdout + r.stderr or "EXIT CODE: 9" in r.stdout + r.stderr
    assert not (tmp_path / "fault.rank0.txt").exists()  # rank 0 never got past the collective


# -- gradflow train --nproc 2 ----------------------------------------------------------------------------
def _train(out, *args, timeout=400):
    cmd = [sys.executable, "-m", "gradflow", "train", "--no-progress", "--out", str(out), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)
    _ok(r)
    with open(os.path.join(out, "metrics.json")) as f:
        import json
        return r, json.load(f)


def _compare_runs(tmp_path, args, points):
    r1, m1 = _train(tmp_path / "one", *args)
    r2, m2 = _train(tmp_path / "two", "--nproc", "2", *args)
    assert m1["processes"] == 1 and m2["processes"] == 2
    assert "2 processes (data-parallel)" in r2.stdout
    assert r2.stdout.count("epoch | train loss") == 1  # only rank 0 prints the table
    assert len(m2["epochs"]) == len(m1["epochs"])
    assert abs(m2["final"]["test_acc"] - m1["final"]["test_acc"]) <= points / 100, \
        (m1["final"], m2["final"])
    return m1, m2


@requires_mpi
@pytest.mark.distributed
def test_train_nproc_2_matches_one_process_and_resumes_in_one(tmp_path):
    args = ["--model", "mlp", "--epochs", "2", "--limit", "1000", "--no-augment"]
    m1, m2 = _compare_runs(tmp_path, args, points=1)
    # the same global batches, the gradients averaged: the same run up to float32 rounding
    for a, b in zip(m1["epochs"], m2["epochs"]):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-3
        assert abs(a["train_acc"] - b["train_acc"]) <= 0.005  # global (all-reduced), not rank 0's
    from gradflow.serialization import load
    ck1, ck2 = load(str(tmp_path / "one" / "model.npz")), load(str(tmp_path / "two" / "model.npz"))
    for k, v in ck1["model"].items():
        np.testing.assert_allclose(ck2["model"][k].numpy(), v.numpy(), rtol=1e-4, atol=1e-5)
    # the 2-process checkpoint resumes in one process
    r3, m3 = _train(tmp_path / "resumed", "--resume", str(tmp_path / "two" / "model.npz"),
                    "--epochs", "3")
    assert "resuming" in r3.stdout and "after epoch 2" in r3.stdout
    assert [e["epoch"] for e in m3["epochs"]] == [1, 2, 3] and m3["processes"] == 1
    assert m3["epochs"][:2] == m2["epochs"]


@requires_mpi
@pytest.mark.distributed
@pytest.mark.slow
def test_train_lenet5_default_run_two_processes_within_a_point(tmp_path):
    _compare_runs(tmp_path, [], points=1)  # LeNet-5, bundled digits, 12 epochs, augmentation


@requires_mpi
@pytest.mark.distributed
def test_train_under_mpiexec_and_bad_nproc(tmp_path):
    cmd = [find_mpiexec(), "-n", "2", sys.executable, "-m", "gradflow", "train", "--no-progress",
           "--model", "mlp", "--epochs", "1", "--limit", "200", "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(), cwd=ROOT)
    _ok(r)
    assert "2 processes (data-parallel)" in r.stdout and (tmp_path / "model.npz").exists()
    cmd[cmd.index("--out")] = "--nproc"
    cmd[cmd.index("--nproc") + 1] = "3"
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(), cwd=ROOT)
    assert r.returncode != 0 and "--nproc 3 is invalid inside an MPI job of 2 processes" in r.stderr


def test_argv_round_trip():
    import argparse

    from gradflow import train
    from gradflow.distributed.launch import argv_from_namespace
    p = argparse.ArgumentParser()
    train.add_arguments(p)
    for argv in ([], ["--model", "mlp", "--no-augment", "--lr", "0.01", "--nproc", "2"],
                 ["--augment", "--no-progress", "--limit", "5", "--out", "x y"]):
        args = p.parse_args(argv)
        back = argv_from_namespace(p, args, drop={"nproc"})
        again = p.parse_args(back)
        assert {k: v for k, v in vars(again).items() if k != "nproc"} == \
            {k: v for k, v in vars(args).items() if k != "nproc"}
        assert "--nproc" not in back


# -- a PyTorch DDP program with its imports switched ---------------------------------------------------
def _free_port():
    """A localhost TCP port free just now (torch's gloo rendezvous listens on it)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@requires_mpi
@pytest.mark.distributed
def test_pytorch_ddp_program_runs_under_mpiexec(tmp_path):
    import json
    script = os.path.join(HERE, "pytorch_scripts", "ddp_classifier.py")
    results = {}
    frameworks = ["gradflow"] + (["torch"] if importlib.util.find_spec("torch") else [])
    for fw in frameworks:
        out = tmp_path / fw
        out.mkdir()
        r = subprocess.run([find_mpiexec(), "-n", "2", sys.executable, script, str(out)],
                           capture_output=True, text=True, timeout=300, cwd=ROOT,
                           env=_env(PROGRAM_FRAMEWORK=fw, DDP_PORT=str(_free_port())))
        _ok(r)
        assert r.stdout.count("epoch 3: loss") == 1  # rank 0 alone prints
        results[fw] = json.loads((out / "result.json").read_text())
    g = results["gradflow"]
    assert g["world"] == 2 and g["losses"][-1] < 0.5 * g["losses"][0]
    if "torch" in results:  # same start, same shards, same steps: the same numbers
        np.testing.assert_allclose(g["losses"], results["torch"]["losses"], rtol=1e-4)
        np.testing.assert_allclose(g["param_sums"], results["torch"]["param_sums"], rtol=1e-4, atol=1e-5)


# -- NCCL: world size 1 on a GPU (NCCL cannot put two ranks on one GPU) ------------------------------------
def _cuda_reason():
    from gradflow.backends import unavailable_reason
    return unavailable_reason("cupy") or (None if dist.is_nccl_available() else "no cupy.cuda.nccl")


@pytest.mark.requires_cuda
@pytest.mark.skipif(_cuda_reason() is not None, reason=f"NCCL unavailable: {_cuda_reason()}")
def test_nccl_world_size_one():
    r = _run_py("import gradflow as gf, gradflow.distributed as dist\n"
                "dist.init_process_group('nccl', timeout=30)\n"
                "assert dist.get_backend() == 'nccl' and dist.get_world_size() == 1\n"
                "t = gf.arange(6.0, backend='cupy').reshape(2, 3)\n"
                "dist.all_reduce(t, 'avg'); dist.broadcast(t, 0); dist.barrier()\n"
                "o = gf.zeros(6, backend='cupy'); dist.all_gather_into_tensor(o, t)\n"
                "m = gf.nn.DistributedDataParallel(gf.nn.Linear(3, 2).to('cupy'))\n"
                "m(t).sum().backward()\n"
                "print('OK', t.tolist(), o.tolist())\n")
    _ok(r)
    assert "OK [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]" in r.stdout

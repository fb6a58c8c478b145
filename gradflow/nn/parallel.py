"""``DistributedDataParallel``: data-parallel training over a ``gradflow.distributed`` group.

Each process holds a full replica and trains on its own share of every batch. At
construction rank 0's parameters and buffers are broadcast to all ranks (after checking
that every rank built the same parameter shapes). During backward each parameter's
post-accumulate-grad hook counts it ready in its bucket; a bucket whose parameters are all
ready is packed into one flat array and its SUM all-reduce is started at once (non-blocking),
buckets always in the same order on every rank; when the last bucket is out, all are awaited,
divided by the world size and written back as the parameters' ``.grad``. Since every rank
then holds the same averaged gradient, identical optimizer steps keep the replicas
bit-identical.

Buffers (BatchNorm's running statistics) follow PyTorch: with ``broadcast_buffers=True``
rank 0's are broadcast at the start of every training-mode forward.
"""
from __future__ import annotations

import contextlib
import weakref

from ..autograd import is_grad_enabled, no_grad
from ..tensor import Tensor
from .modules.module import Module

_MB = 1024 * 1024


def _groups(tensors):
    """Tensors grouped by (backend, dtype), order kept: each group packs into one flat array."""
    out = {}
    for t in tensors:
        out.setdefault((t.backend.name, str(t.dtype)), []).append(t)
    return list(out.values())


def _pack(be, arrays):
    return be.concat([be.reshape(a, (-1,)) for a in arrays], 0)


def _pieces(be, flat, tensors):
    """Views of ``flat`` shaped like each of ``tensors``, in order."""
    off = 0
    for t in tensors:
        n = t.numel()
        yield t, be.reshape(be.getitem(flat, slice(off, off + n)), t.shape)
        off += n


def broadcast_coalesced(tensors, src=0):
    """Overwrite ``tensors`` in place with rank ``src``'s, one broadcast per (backend, dtype)."""
    from .. import distributed as dist
    for group in _groups(tensors):
        be = group[0].backend
        flat = Tensor._make(_pack(be, [t.array for t in group]), be)
        dist.broadcast(flat, src)
        for t, piece in _pieces(be, flat.array, group):
            be.copyto_(t.array, piece)
            t._version[0] += 1


class _Bucket:
    __slots__ = ("index", "params", "ready", "flat", "work")

    def __init__(self, index, params):
        self.index, self.params = index, params
        self.ready, self.flat, self.work = 0, None, None


class DistributedDataParallel(Module):
    """``DistributedDataParallel(module, broadcast_buffers=True, bucket_cap_mb=25)``.

    Call it like ``module``; ``ddp.module`` is the wrapped network (save
    ``ddp.module.state_dict()`` to resume in any number of processes). Needs
    ``gradflow.distributed.init_process_group()`` first. Every parameter that requires a
    gradient must receive one in each synchronised backward (``find_unused_parameters`` is
    not supported). ``device_ids``, ``output_device``, ``dim``, ``gradient_as_bucket_view``,
    ``static_graph`` and ``check_reduction`` are accepted for PyTorch compatibility."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False,
                 check_reduction=False, gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        from .. import distributed as dist
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a gradflow.nn.Module, got "
                            f"{type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group is not "
                               "initialized; call gradflow.distributed.init_process_group() first")
        if find_unused_parameters:
            raise NotImplementedError("DistributedDataParallel: find_unused_parameters=True is not "
                                      "supported; every parameter must take part in the loss")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got "
                             f"{bucket_cap_mb!r}")
        self.module = module
        d = self.__dict__  # plain attributes, kept out of Module's registries
        d["broadcast_buffers"] = broadcast_buffers
        d["require_backward_grad_sync"] = True
        d["world_size"], d["rank"] = dist.get_world_size(), dist.get_rank()
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._check_same_layout(module)
        with no_grad():
            broadcast_coalesced([p for _, p in module.named_parameters()] +
                                [b for _, b in module.named_buffers()], 0)
        d["_names"] = {id(p): n for n, p in named}
        d["_buckets"] = self._make_buckets([p for _, p in named], bucket_cap_mb * _MB)
        d["_bucket_of"] = {id(p): b for b in self._buckets for p in b.params}
        d["_armed"], d["_next"], d["_seen"] = False, 0, set()
        me = weakref.ref(self)

        def on_grad(p):
            ddp = me()
            if ddp is not None:
                ddp._ready(p)
        handles = [p.register_post_accumulate_grad_hook(on_grad) for _, p in named]
        d["_handles"] = handles
        weakref.finalize(self, _remove_all, handles)

    # -- construction -----------------------------------------------------------------------------
    def _check_same_layout(self, module):
        """Every rank must have built the same parameters and buffers (names, shapes, dtypes):
        the flat buckets would otherwise mix up values silently. All ranks raise together."""
        from .. import distributed as dist
        mine = [("parameter", n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters()]
        mine += [("buffer", n, tuple(b.shape), str(b.dtype)) for n, b in module.named_buffers()]
        every = [None] * self.world_size
        dist.all_gather_object(every, mine)
        ref = every[0]
        for r, theirs in enumerate(every[1:], 1):
            if theirs == ref:
                continue
            for a, b in zip(ref, theirs):
                if a != b:
                    raise RuntimeError(
                        f"DistributedDataParallel: the replicas differ: rank 0 has {a[0]} {a[1]!r} "
                        f"of shape {a[2]} {a[3]}, rank {r} has {b[0]} {b[1]!r} of shape {b[2]} "
                        f"{b[3]}; every rank must build the same model")
            raise RuntimeError(f"DistributedDataParallel: the replicas differ: rank 0 has "
                               f"{len(ref)} parameters and buffers, rank {r} has {len(theirs)}")

    @staticmethod
    def _make_buckets(params, cap_bytes):
        """Buckets of at most ``cap_bytes`` (a larger parameter gets its own), filled in reverse
        registration order -- roughly the order backward produces the gradients."""
        buckets, current, size, key = [], [], 0, None
        for p in reversed(params):
            k = (p.backend.name, str(p.dtype))
            nbytes = p.numel() * p.dtype.itemsize
            if current and (k != key or size + nbytes > cap_bytes):
                buckets.append(_Bucket(len(buckets), current))
                current, size = [], 0
            current.append(p)
            size += nbytes
            key = k
        if current:
            buckets.append(_Bucket(len(buckets), current))
        return buckets

    # -- the forward ----------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        self._check_previous_backward()
        if self.broadcast_buffers and self.training and self.world_size > 1:
            bufs = [b for _, b in self.module.named_buffers()]
            if bufs:
                with no_grad():
                    broadcast_coalesced(bufs, 0)
        d = self.__dict__
        d["_armed"] = self.require_backward_grad_sync and is_grad_enabled()
        d["_next"] = 0
        self._seen.clear()
        for b in self._buckets:
            b.ready, b.flat, b.work = 0, None, None
        return self.module(*args, **kwargs)

    def _check_previous_backward(self):
        if not self._armed or not any(b.ready for b in self._buckets):
            return  # no backward since the last forward (evaluation, a skipped step): fine
        missing = [n for i, n in self._names.items() if i not in self._seen]
        raise RuntimeError(
            f"DistributedDataParallel: the previous backward did not reduce every gradient; "
            f"parameters that got no gradient: {', '.join(missing[:8])}"
            f"{' ...' if len(missing) > 8 else ''}. Every parameter that requires grad must take "
            f"part in the loss (find_unused_parameters is not supported)")

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate ``.grad`` locally; the first synchronised
        backward after it all-reduces the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.__dict__["require_backward_grad_sync"] = False
        try:
            yield
        finally:
            self.__dict__["require_backward_grad_sync"] = old

    # -- the gradient reduction ---------------------------------------------------------------------------
    def _ready(self, p):
        if not self._armed:
            return
        b = self._bucket_of.get(id(p))
        if b is None:
            return
        b.ready += 1
        self._seen.add(id(p))
        buckets = self._buckets
        while self._next < len(buckets) and buckets[self._next].ready == len(buckets[self._next].params):
            self._launch(buckets[self._next])
            self.__dict__["_next"] += 1
        if self._next == len(buckets):
            self._finish()

    def _launch(self, b):
        from .. import distributed as dist
        be = b.params[0].backend
        b.flat = Tensor._make(_pack(be, [p.grad.array for p in b.params]), be)
        b.work = dist.all_reduce(b.flat, dist.ReduceOp.SUM, async_op=True)

    def _finish(self):
        self.__dict__["_armed"] = False
        for b in self._buckets:
            b.work.wait()
            be = b.params[0].backend
            avg = be.binary("div", b.flat.array, self.world_size)
            for p, piece in _pieces(be, avg, b.params):
                p.grad = Tensor._make(piece, be)
            b.flat = b.work = None

    def extra_repr(self):
        return f"world_size={self.world_size}, buckets={len(self._buckets)}"


def _remove_all(handles):
    for h in handles:
        h.remove()

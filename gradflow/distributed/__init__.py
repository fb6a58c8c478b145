"""``gradflow.distributed``: data-parallel training across processes and machines, with
``torch.distributed``'s names, on MPI (CPU, through mpi4py) or NCCL (GPU, through CuPy).

    # mpiexec -n 2 python train.py
    import gradflow.distributed as dist
    dist.init_process_group("mpi")
    model = gradflow.nn.parallel.DistributedDataParallel(model)
    sampler = gradflow.data.DistributedSampler(dataset, shuffle=True, seed=0)
    ...
    dist.destroy_process_group()

Install the MPI engine with ``pip install 'gradflow[distributed]'`` (mpi4py and the MPICH
wheel). Every collective is bounded by the group's timeout (``init_process_group(timeout=)``,
``$GRADFLOW_DIST_TIMEOUT``, default 300 s): a rank that dies or hangs makes the others raise
:class:`DistributedTimeoutError` naming their rank and the collective, and the job is aborted.
"""
from .errors import DistributedError, DistributedTimeoutError  # noqa: F401
from .group import (ReduceOp, init_process_group, destroy_process_group, is_initialized,  # noqa: F401
                    is_available, is_mpi_available, is_nccl_available, get_rank, get_world_size,
                    get_backend, all_reduce, broadcast, all_gather, all_gather_into_tensor,
                    reduce_scatter, reduce_scatter_tensor, barrier, all_gather_object,
                    broadcast_object_list, launched_world_size, DEFAULT_TIMEOUT)
from .metrics import weighted_mean  # noqa: F401

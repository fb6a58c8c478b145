"""``gradflow bench``: time workloads on every backend (and PyTorch) in one run.

Modules, one job each: ``workloads`` (what runs, for gradflow and PyTorch),
``models`` (the benchmark networks), ``flops`` (FLOP counts), ``timing``
(first call, warm-up, synchronised repeats), ``runner`` (the loop),
``machine`` (the machine line), ``report`` (ratios, crossover, tables, JSON),
``plot`` (``--plot``), ``cli`` (arguments)."""

"""The machine line: what the numbers were measured on.

CPU model, cores and threads, BLAS (threadpoolctl when installed, else
``numpy.show_config``), Numba threading, GPU name, library versions and the
load average (other processes on the machine make timings noisy)."""
from __future__ import annotations

import importlib
import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo, or None when unknown."""
    try:
        cores, phys = set(), "0"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    cores.add((phys, line.split(":", 1)[1].strip()))
        return len(cores) or None
    except OSError:
        return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def blas_info() -> list[dict]:
    """One dict per BLAS/OpenMP library loaded (threadpoolctl), else NumPy's build config."""
    try:
        import threadpoolctl
        return [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                for d in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    try:
        import numpy
        cfg = numpy.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return [{"internal_api": blas.get("name"), "version": blas.get("version"),
                 "num_threads": os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get(
                     "OMP_NUM_THREADS") or "default", "source": "numpy.show_config"}]
    except Exception as e:  # old NumPy: no dict mode
        return [{"error": f"{type(e).__name__}: {e}"}]


def _version(mod: str) -> str | None:
    try:
        return getattr(importlib.import_module(mod), "__version__", "?")
    except Exception:
        return None


def gpu_info(use_cupy: bool = True, use_torch: bool = True) -> dict | None:
    """The first CUDA device through CuPy (else torch, else nvidia-smi), or None.
    Libraries the run does not use are not imported (importing torch takes seconds)."""
    try:
        if not use_cupy:
            raise ImportError
        import cupy
        dev = cupy.cuda.Device(0)
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"]
        return {"name": name.decode() if isinstance(name, bytes) else name,
                "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
                "driver": cupy.cuda.runtime.driverGetVersion()}
    except Exception:
        pass
    try:
        if not use_torch:
            raise ImportError
        import torch
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            return {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                    "cuda_runtime": torch.version.cuda}
    except Exception:
        pass
    return _nvidia_smi()


def _nvidia_smi() -> dict | None:
    import shutil
    import subprocess
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=10).stdout.strip().splitlines()
        name, mem, driver = [x.strip() for x in out[0].split(",")]
        return {"name": name, "memory_gib": round(float(mem) / 1024, 1), "driver": driver}
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def git_revision() -> str | None:
    """``<short hash>`` of the checkout gradflow was imported from, with ``+dirty`` when
    files under gradflow/ differ from it; None outside a git checkout."""
    import subprocess
    import gradflow
    if os.environ.get("GRADFLOW_GIT_REVISION"):  # a copy without .git (e.g. a remote GPU box)
        return os.environ["GRADFLOW_GIT_REVISION"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(gradflow.__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "gradflow"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def collect(backends: list[str] = (), with_torch: bool = False) -> dict:
    import numpy
    import gradflow
    info = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "gradflow": gradflow.__version__,
        "git": git_revision(),
        "blas": blas_info(),
        "loadavg_start": load_average(),
        "gpu": gpu_info(use_cupy="cupy" in backends, use_torch=with_torch),
    }
    if "numba" in backends:
        info.update(numba_info())
    if "cupy" in backends:
        info["cupy"] = _version("cupy")
    if with_torch:
        try:
            import torch
            info["torch"] = torch.__version__
            info["torch_threads"] = torch.get_num_threads()
            info["torch_cuda"] = torch.cuda.is_available()
        except ImportError:
            pass
    return info


def numba_info() -> dict:
    """numba's version, thread count and threading layer, read through gradflow's numba
    backend: calling numba.get_num_threads() first would start numba's thread pool
    before the backend configures it (layer, OpenMP wait policy), slowing it down."""
    from gradflow.backends import get_backend, unavailable_reason
    if unavailable_reason("numba") is not None:
        return {}
    inf = get_backend("numba").info()
    return {"numba": str(inf["numba"]), "numba_threads": int(inf["threads"]),
            "numba_threading_layer": str(inf["threading_layer"])}


def _numba_layer() -> str:
    import numba
    try:
        return numba.threading_layer()
    except ValueError:  # not chosen until a parallel kernel has run
        return str(numba.config.THREADING_LAYER) + " (not yet initialised)"


def summary(info: dict) -> str:
    """One or two human lines for the report header."""
    cores = info.get("physical_cores")
    cpu = (f"{info['cpu']}, {cores if cores else '?'} cores / {info['logical_cpus']} threads"
           + (f" ({info['affinity_cpus']} usable)" if info.get("affinity_cpus") not in
              (None, info["logical_cpus"]) else ""))
    blas = "; ".join(
        f"{b.get('internal_api')} {b.get('version')} threads={b.get('num_threads')}"
        + (f" {b['architecture']}" if b.get("architecture") else "")
        for b in info.get("blas", []) if "error" not in b) or "unknown"
    libs = [f"python {info['python']}", f"numpy {info['numpy']}",
            f"gradflow {info['gradflow']}" + (f" (git {info['git']})" if info.get("git") else "")]
    if info.get("numba"):
        libs.append(f"numba {info['numba']} ({info.get('numba_threads')} threads, "
                    f"{info.get('numba_threading_layer')})")
    if info.get("cupy"):
        libs.append(f"cupy {info['cupy']}")
    if info.get("torch"):
        libs.append(f"torch {info['torch']} ({info.get('torch_threads')} threads)")
    if info.get("jax"):
        libs.append(f"jax {info['jax']} (Python {info.get('jax_python')}, "
                    f"{info.get('jax_threads')} CPUs)")
    gpu = info.get("gpu")
    gpu_s = (f"{gpu['name']} ({gpu.get('memory_gib')} GiB, CUDA runtime {gpu.get('cuda_runtime')})"
             if gpu else "none")
    load = info.get("loadavg_start")
    end = info.get("loadavg_end")
    load_s = f"load avg {load}" + (f" -> {end}" if end else "")
    return (f"CPU: {cpu}; BLAS: {blas}\nGPU: {gpu_s}\n{', '.join(libs)}\n"
            f"{info['platform']}; {load_s}")

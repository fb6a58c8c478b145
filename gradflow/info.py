"""``gradflow info``: which backends run here, and the facts each reports
(versions, threading layer, thread count, compile cache, GPU memory), and which one
is the default. An invalid ``$GRADFLOW_BACKEND`` (unknown, or not available here) is
reported after the rest and makes the exit status 2, as every other command refuses
to run with it."""
from __future__ import annotations

import json
import platform


def collect() -> dict:
    from .backends import get_backend, registered_backends, unavailable_reason
    out = {"python": platform.python_version(), "platform": platform.platform(), "backends": {}}
    for name in registered_backends():
        reason = unavailable_reason(name)
        if reason is not None:
            out["backends"][name] = {"available": False, "reason": reason}
            continue
        try:
            info = dict(get_backend(name).info())
        except Exception as e:  # a broken backend must not hide the others
            info = {"error": f"{type(e).__name__}: {e}"}
        info["available"] = True
        out["backends"][name] = info
    out["default_backend"] = default_backend()
    return out


def default_backend() -> dict:
    """``{"name", "source"}`` of the backend new tensors use, or ``{"error"}`` when
    ``$GRADFLOW_BACKEND`` names one that cannot be used."""
    from .cli import CommandError, check_backend, env_backend
    env = env_backend()
    if env is None:
        return {"name": "numpy", "source": "$GRADFLOW_BACKEND is not set"}
    try:
        return {"name": check_backend(env, "GRADFLOW_BACKEND"), "source": f"$GRADFLOW_BACKEND={env}"}
    except CommandError as e:
        return {"error": str(e)}


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args) -> int:
    from .cli import CommandError
    data = collect()
    default = data["default_backend"]
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        _print(data)
    if "error" in default:
        raise CommandError(default["error"])
    return 0


def _print(data):
    print(f"python {data['python']} on {data['platform']}")
    for name, info in data["backends"].items():
        if not info.pop("available"):
            print(f"  {name:6s} unavailable: {info['reason']}")
            continue
        print(f"  {name:6s} available")
        for k, v in info.items():
            if k != "name":
                print(f"         {k}: {v}")
    default = data["default_backend"]
    if "name" in default:
        print(f"default backend: {default['name']} ({default['source']})")

"""``gradflow info``: which backends run here, and the facts each reports
(versions, threading layer, thread count, compile cache, GPU memory)."""
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
    return out


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args) -> int:
    data = collect()
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"python {data['python']} on {data['platform']}")
    for name, info in data["backends"].items():
        if not info.pop("available"):
            print(f"  {name:6s} unavailable: {info['reason']}")
            continue
        print(f"  {name:6s} available")
        for k, v in info.items():
            if k != "name":
                print(f"         {k}: {v}")
    return 0

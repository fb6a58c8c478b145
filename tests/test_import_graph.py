"""Imports flow one way (docs/DESIGN.md, "Layers"): the package's import graph, read from
the source with ``ast`` (module-level and function-local imports alike), has no import
that runs up a layer and no cycle among modules.

Layers, bottom to top (a module may import its own layer or any layer below):

    leaf      gradflow.geometry, unsupported    imports nothing from gradflow
    backends  gradflow.backends.*               the Backend ABC and its implementations
    core      dtypes, device, layout, printing, autograd, tensor, creation
    ops       gradflow.ops.*, linalg            the differentiable primitives
    surface   tensor_methods, tensor_extra,     Tensor's operators/methods, torch.* functions
              functions
    library   nn, optim, data, datasets, utils, serialization (+ _npz_members,
              _weights_only), amp, distributed
    tools     vis, bench, cli, train, capture, info, testing, jit, onnx, __main__, warmup,
              compile_progress, and the package facade
              gradflow/__init__
"""
from __future__ import annotations

import ast
import pathlib


ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "gradflow"

LAYERS = [
    ("leaf", ["gradflow.geometry", "gradflow.unsupported"]),
    ("backends", ["gradflow.backends"]),
    ("core", ["gradflow.dtypes", "gradflow.device", "gradflow.layout", "gradflow.printing",
              "gradflow.autograd", "gradflow.tensor", "gradflow.creation"]),
    ("ops", ["gradflow.ops", "gradflow.linalg"]),
    ("surface", ["gradflow.tensor_methods", "gradflow.tensor_extra", "gradflow.functions"]),
    ("library", ["gradflow.nn", "gradflow.optim", "gradflow.data", "gradflow.datasets",
                 "gradflow.utils", "gradflow.serialization", "gradflow._npz_members",
                 "gradflow._weights_only", "gradflow.amp", "gradflow.distributed"]),
    # the package facade imports everything; tools may ``import gradflow`` (the cycle check
    # below keeps the facade and the tools from importing each other in a circle)
    ("tools", ["gradflow.vis", "gradflow.bench", "gradflow.cli", "gradflow.train",
               "gradflow.capture",
               "gradflow.info", "gradflow.testing", "gradflow.jit", "gradflow.onnx",
               "gradflow.__main__", "gradflow.warmup", "gradflow.compile_progress",
               "gradflow"]),
]

# (importer, imported): why this edge is allowed although it breaks the rules above.
# Empty: the engine (gradflow.autograd) gets the Tensor class from tensor.py registering
# it, the ops never import the Tensor surface, and the modules import no package above.
ALLOWED: dict[tuple[str, str], str] = {}


def _module_names():
    mods = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _module_names()


def _resolve(importer, is_package, node):
    """The gradflow modules one import statement loads (submodules where named)."""
    if isinstance(node, ast.Import):
        return [_nearest(a.name) for a in node.names if a.name.split(".")[0] == "gradflow"]
    if node.level:
        base = importer.split(".")
        if not is_package:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "gradflow":
        return []
    return [target + "." + a.name if target + "." + a.name in MODULES else _nearest(target)
            for a in node.names]


def _nearest(name):
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _edges():
    """{(importer, imported): [line, ...]} over every import statement in the package."""
    edges = {}
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(mod, path.name == "__init__.py", node):
                    if target != mod:
                        edges.setdefault((mod, target), []).append(node.lineno)
    return edges


EDGES = _edges()


def _layer(mod):
    best = None
    for rank, (name, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            # "gradflow" itself names the package facade only, not everything below it
            inside = mod.startswith(p + ".") and p != "gradflow"
            if (mod == p or inside) and (best is None or len(p) > best[2]):
                best = (rank, name, len(p))
    return best


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if _layer(m) is None]
    assert not missing, f"modules without a layer in LAYERS (add them): {missing}"


def test_geometry_is_a_leaf():
    assert not [t for (m, t) in EDGES if m == "gradflow.geometry"]


def test_no_import_runs_up_a_layer():
    bad = []
    for (mod, target), lines in sorted(EDGES.items()):
        lm, lt = _layer(mod), _layer(target)
        if lt[0] > lm[0] and (mod, target) not in ALLOWED:
            bad.append(f"{mod} ({lm[1]}) imports {target} ({lt[1]}) at line(s) {lines}")
    assert not bad, "imports running up a layer:\n" + "\n".join(bad)


def _cycles(edges):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles():
    cycles = _cycles(e for e in EDGES if e not in ALLOWED)
    assert not cycles, "import cycles among modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_can_fail():
    """The cycle finder and the layer table catch what they are meant to catch."""
    assert _cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]
    assert _layer("gradflow.ops.conv")[1] == "ops"
    assert _layer("gradflow.tensor_methods")[1] == "surface"
    assert _layer("gradflow")[1] == "tools"
    assert _layer("gradflow.not_in_the_table") is None
    node = ast.parse("from ..tensor import Tensor").body[0]
    assert _resolve("gradflow.ops.conv", False, node) == ["gradflow.tensor"]


def test_allowed_exceptions_still_exist():
    """An exception that no longer occurs is removed from ALLOWED."""
    stale = [edge for edge in ALLOWED if edge not in EDGES]
    assert not stale, f"no longer imported, remove from ALLOWED: {stale}"

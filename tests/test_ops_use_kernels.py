"""The primitives compute on backend arrays through Backend methods only: an operator
applied to a tensor's ``.array`` inside ``gradflow/ops`` would bypass the backend (and a
captured step, which replays kernel calls, would freeze its result)."""
from __future__ import annotations

import ast
import pathlib

OPS = pathlib.Path(__file__).resolve().parent.parent / "gradflow" / "ops"


def _operators_on_arrays(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp):
            sides = [node.left, node.right]
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
        elif isinstance(node, ast.UnaryOp):
            sides = [node.operand]
        elif isinstance(node, ast.AugAssign):
            sides = [node.target, node.value]
        else:
            continue
        if any(isinstance(s, ast.Attribute) and s.attr == "array" for s in sides):
            yield node.lineno, ast.unparse(node)


def test_the_scan_sees_an_operator_on_an_array():
    found = list(_operators_on_arrays("y = x.array * 2\nok = be.binary('mul', x.array, 2)\n"
                                      "z = -t.array\nw.array += 1\n"))
    assert sorted(line for line, _ in found) == [1, 3, 4]


def test_no_operator_on_a_tensors_array_in_ops():
    hits = [f"{path.name}:{line}: {code}" for path in sorted(OPS.glob("*.py"))
            for line, code in _operators_on_arrays(path.read_text())]
    assert not hits, "operators on .array in gradflow/ops (use backend methods):\n" + "\n".join(hits)

"""Differentiable primitives, one module per family; each primitive is a
:class:`gradflow.autograd.Function` with its forward and backward side by side."""

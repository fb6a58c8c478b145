"""The tensor memory-layout API against PyTorch: ``stride``, ``is_contiguous``,
``storage_offset``, ``contiguous`` copying only views, and the memory_format constants
(``channels_last`` ...) accepted as no-op layout hints."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn

from conftest import requires_torch


@requires_torch
def test_stride_contiguity_and_offset_match_torch(backend):
    import torch
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    x, xt = gf.tensor(a), torch.tensor(a)
    views = [lambda t: t, lambda t: t.transpose(0, 2), lambda t: t[1:, :, 2:],
             lambda t: t.permute(1, 0, 2), lambda t: t[:, 1], lambda t: t.expand(2, 3, 4, 5)]
    for v in views:
        g, t = v(x), v(xt)
        assert g.stride() == t.stride()
        assert g.is_contiguous() == t.is_contiguous()
        assert g.storage_offset() == t.storage_offset()
        for d in range(-g.ndim, g.ndim):
            assert g.stride(d) == t.stride(d)
    assert x[2:].storage_offset() == 40 and x.storage_offset() == 0
    with pytest.raises(IndexError, match=r"stride: dimension 3 out of range.*\(3, 4, 5\)"):
        x.stride(3)


def test_contiguous_copies_only_views(backend):
    x = gf.randn(4, 6, requires_grad=True)
    assert x.contiguous() is x
    v = x.t()
    assert not v.is_contiguous() and v.stride() == (1, 6)
    c = v.contiguous()
    assert c.is_contiguous() and c.stride() == (4, 1)
    np.testing.assert_array_equal(c.numpy(), x.numpy().T)
    (c * gf.arange(24.0).reshape(6, 4)).sum().backward()  # differentiable copy
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(24.0).reshape(6, 4).T)


@requires_torch
def test_memory_format_hints_are_accepted_no_ops(backend):
    import torch
    assert repr(gf.channels_last) == repr(torch.channels_last) == "torch.channels_last"
    assert {repr(f) for f in (gf.contiguous_format, gf.preserve_format, gf.channels_last_3d)} == \
        {repr(f) for f in (torch.contiguous_format, torch.preserve_format, torch.channels_last_3d)}
    assert pickle.loads(pickle.dumps(gf.channels_last)) is gf.channels_last
    x = gf.randn(2, 3, 4, 5)
    for y in (x.to(memory_format=gf.channels_last), x.contiguous(memory_format=gf.channels_last),
              x.clone(memory_format=gf.preserve_format),
              x.to(gf.float64, memory_format=gf.contiguous_format)):
        np.testing.assert_array_equal(y.numpy(), x.numpy().astype(y.dtype))
        assert y.shape == (2, 3, 4, 5) and y.stride() == (60, 20, 5, 1)  # still NCHW
    # contiguity is reported truthfully: gradflow's arrays stay NCHW ...
    assert x.is_contiguous(memory_format=gf.contiguous_format)
    assert not x.contiguous(memory_format=gf.channels_last).is_contiguous(
        memory_format=gf.channels_last)
    # ... while a real NHWC-strided view is recognised, as torch recognises it
    nhwc = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    tn = torch.tensor(x.numpy()).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert nhwc.stride() == tn.stride()
    assert nhwc.is_contiguous(memory_format=gf.channels_last) == \
        tn.is_contiguous(memory_format=torch.channels_last) is True
    assert nhwc.is_contiguous() == tn.is_contiguous() is False
    model = nn.Conv2d(3, 2, 3).to(memory_format=gf.channels_last)
    assert model(x).shape == (2, 2, 2, 3)
    with pytest.raises(TypeError, match="contiguous: memory_format must be one of"):
        x.contiguous(memory_format="nhwc")
    with pytest.raises(TypeError, match="to: memory_format"):
        x.to(memory_format=3)

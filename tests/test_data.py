"""gradflow.data: DataLoader coverage/reproducibility, default collate (PyTorch rules),
random_split, transforms."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import gradflow as gf
from gradflow.data import (ArrayDataset, ConcatDataset, DataLoader, Dataset, Subset, TensorDataset,
                           default_collate, random_split)
from gradflow.data.transforms import Compose, Normalize, RandomCrop, Standardize, ToTensor
from conftest import requires_torch


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2,), i, dtype=np.float32), i


@pytest.mark.parametrize("n,bs,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False), (5, 8, False)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_once_per_epoch(n, bs, drop_last, shuffle):
    loader = DataLoader(Squares(n), batch_size=bs, shuffle=shuffle, drop_last=drop_last, seed=3)
    for _ in range(2):
        seen = []
        sizes = []
        for x, y in loader:
            assert isinstance(x, gf.Tensor) and isinstance(y, gf.Tensor)
            np.testing.assert_array_equal(x.numpy()[:, 0], y.numpy())
            seen += y.tolist()
            sizes.append(len(y))
        expected = n - (n % bs if drop_last else 0)
        assert len(seen) == expected == sum(sizes)
        assert len(set(seen)) == expected
        assert len(sizes) == len(loader)
        if not drop_last:
            assert sorted(seen) == list(range(n))
        if not shuffle:
            assert seen == list(range(expected))


def test_shuffle_reproducible_with_seed_and_differs_between_epochs():
    def orders(seed):
        dl = DataLoader(Squares(50), batch_size=50, shuffle=True, seed=seed)
        return [next(iter(dl))[1].tolist() for _ in range(3)]

    a, b, c = orders(7), orders(7), orders(8)
    assert a == b and a != c
    assert a[0] != a[1]  # a new permutation each epoch


def test_shuffle_follows_manual_seed_without_seed():
    gf.manual_seed(11)
    a = next(iter(DataLoader(Squares(30), batch_size=30, shuffle=True)))[1].tolist()
    gf.manual_seed(11)
    b = next(iter(DataLoader(Squares(30), batch_size=30, shuffle=True)))[1].tolist()
    assert a == b and a != list(range(30))


def test_tensor_dataset_fast_path_and_backend(backend):
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    for ds in (TensorDataset(gf.tensor(x), gf.tensor(y)), TensorDataset(x, y)):
        batches = list(DataLoader(ds, batch_size=4, shuffle=True, seed=0))
        assert [len(b[0]) for b in batches] == [4, 4, 2]
        xs = np.concatenate([b[0].numpy() for b in batches])
        ys = np.concatenate([b[1].numpy() for b in batches])
        np.testing.assert_array_equal(xs, x[ys])
        assert batches[0][0].backend.name == backend
        assert batches[0][1].dtype == np.int64
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(gf.zeros(3), gf.zeros(4))
    assert len(TensorDataset(x, y)) == 10
    xi, yi = TensorDataset(gf.tensor(x), gf.tensor(y))[3]
    assert xi.tolist() == [6.0, 7.0] and yi.item() == 3


def test_default_collate_like_pytorch():
    b = default_collate([(np.zeros((2, 3), np.float32), 1, 0.5, True), (np.ones((2, 3), np.float32), 2, 1.5, False)])
    x, i, f, t = b
    assert x.shape == (2, 2, 3) and x.dtype == np.float32
    assert i.dtype == np.int64 and i.tolist() == [1, 2]
    assert f.dtype == np.float64 and t.dtype == np.bool_
    d = default_collate([{"a": 1, "s": "x"}, {"a": 2, "s": "y"}])
    assert d["a"].tolist() == [1, 2] and d["s"] == ["x", "y"]
    P = namedtuple("P", "x y")
    p = default_collate([P(np.float32(1), 2), P(np.float32(3), 4)])
    assert isinstance(p, P) and p.x.dtype == np.float32 and p.y.tolist() == [2, 4]
    ts = default_collate([gf.ones(2), gf.zeros(2)])
    assert ts.shape == (2, 2)
    nested = default_collate([[np.zeros(1), [1, 2]], [np.ones(1), [3, 4]]])
    assert nested[1][0].tolist() == [1, 3]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError):
        default_collate([object(), object()])


@requires_torch
def test_default_collate_matches_torch_dtypes():
    from torch.utils.data import default_collate as tc
    samples = [(np.zeros(3, np.float32), 1, 2.5), (np.ones(3, np.float32), 0, 1.0)]
    ours, theirs = default_collate(samples), tc(samples)
    for o, t in zip(ours, theirs):
        assert str(o.dtype) == str(t.dtype).replace("torch.", "")
        np.testing.assert_array_equal(o.numpy(), t.numpy())


def test_custom_collate_and_batch_size_none():
    dl = DataLoader(Squares(4), batch_size=2, collate_fn=lambda b: [s[1] for s in b])
    assert list(dl) == [[0, 1], [2, 3]]
    dl = DataLoader(Squares(3), batch_size=None)
    assert [s[1] for s in dl] == [0, 1, 2]
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Squares(3), batch_size=0)


def test_random_split_fractions_and_reproducible():
    ds = Squares(103)
    a = random_split(ds, [0.8, 0.1, 0.1], seed=0)
    assert [len(s) for s in a] == [83, 10, 10]
    idx = [i for s in a for i in s.indices]
    assert sorted(idx) == list(range(103))
    b = random_split(ds, [0.8, 0.1, 0.1], seed=0)
    assert [s.indices for s in a] == [s.indices for s in b]
    c = random_split(ds, [100, 3], seed=1)
    assert len(c[1]) == 3
    with pytest.raises(ValueError, match="sum of input lengths"):
        random_split(ds, [10, 10])
    g = gf.data.Generator().manual_seed(0)
    assert random_split(ds, [0.8, 0.1, 0.1], generator=g)[0].indices == a[0].indices


def test_subset_and_concat():
    s = Subset(Squares(10), [9, 2])
    assert len(s) == 2 and s[0][1] == 9
    c = ConcatDataset([Squares(2), Squares(3)])
    assert len(c) == 5 and c[3][1] == 1 and c[-1][1] == 2


def test_array_dataset_batched_equals_per_sample():
    data = (np.arange(6 * 4 * 4) % 256).astype(np.uint8).reshape(6, 4, 4)
    tf = Compose([ToTensor(), Normalize([0.5], [0.25])])
    ds = ArrayDataset(data, np.arange(6), transform=tf)
    fast = ds._fetch_batch([5, 0, 3])
    slow = default_collate([ds[i] for i in [5, 0, 3]])
    np.testing.assert_allclose(fast[0], slow[0].numpy(), rtol=1e-6)
    assert fast[0].shape == (3, 1, 4, 4)
    # a transform without apply_batch falls back to per-sample calls
    ds2 = ArrayDataset(data, np.arange(6), transform=lambda im: im.astype(np.float32).sum(keepdims=True))
    (x, y), = list(DataLoader(ds2, batch_size=6))
    assert x.shape == (6, 1, 1) and y.tolist() == list(range(6))


def test_transforms():
    img = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    t = ToTensor()(img)
    assert t.shape == (1, 2, 2) and t.dtype == np.float32
    np.testing.assert_allclose(t[0], [[0, 1], [0.2, 0.4]], rtol=1e-6)
    hwc = np.zeros((4, 5, 3), np.uint8)
    assert ToTensor(channels_last=True)(hwc).shape == (3, 4, 5)
    n = Normalize((0.5,), (0.5,))(t)
    np.testing.assert_allclose(n[0], [[-1, 1], [-0.6, -0.2]], rtol=1e-6)
    rgb = Normalize([0, 1, 2], [1, 1, 1])(np.zeros((3, 2, 2), np.float32))
    assert rgb[2, 0, 0] == -2
    with pytest.raises(ValueError):
        Normalize([0], [0])


def test_standardize_uses_training_statistics():
    train = np.array([[[0, 255]], [[255, 255]]], dtype=np.uint8)  # values 0,1,1,1 after scaling
    s = Standardize.fit(train)
    assert s.mean[0] == pytest.approx(0.75) and s.std[0] == pytest.approx(np.std([0, 1, 1, 1]))
    out = s.apply_batch(ToTensor().apply_batch(train))
    assert out.mean() == pytest.approx(0, abs=1e-6) and out.std() == pytest.approx(1, rel=1e-5)
    rgb = np.random.default_rng(0).integers(0, 255, (5, 3, 4, 4)).astype(np.uint8)
    sc = Standardize.fit(rgb, per_channel=True)
    out = sc.apply_batch(ToTensor().apply_batch(rgb))
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_random_crop_is_a_shift():
    x = np.arange(2 * 1 * 5 * 5, dtype=np.float32).reshape(2, 1, 5, 5) + 1
    rc = RandomCrop(5, padding=2, seed=0)
    for out in (rc.apply_batch(x), np.stack([rc(s) for s in x])):
        assert out.shape == x.shape
        for o, s in zip(out, x):  # every non-zero value comes from the image, in order
            vals = o[o != 0]
            assert set(vals.tolist()) <= set(s.ravel().tolist())
    assert RandomCrop(3)(x[0]).shape == (1, 3, 3)


def test_utils_data_alias():
    from gradflow.utils.data import DataLoader as DL, TensorDataset as TD
    import gradflow.utils.data as ud
    assert DL is DataLoader and TD is TensorDataset and ud is gf.data


def _crop_one_by_one(x, size, padding, seed):
    """The per-sample formulation RandomCrop.apply_batch must equal: the same draws
    (all row offsets, then all column offsets), each sample padded and sliced alone."""
    rng = np.random.default_rng(seed)
    th, tw = size
    h, w = x.shape[-2] + 2 * padding, x.shape[-1] + 2 * padding
    i = rng.integers(0, h - th + 1, size=len(x))
    j = rng.integers(0, w - tw + 1, size=len(x))
    width = [(0, 0)] * (x.ndim - 3) + [(padding, padding)] * 2
    return np.stack([np.pad(s, width)[..., a:a + th, b:b + tw] for s, a, b in zip(x, i, j)])


@pytest.mark.parametrize("shape,size,padding", [((7, 1, 6, 5), (6, 5), 2), ((5, 3, 8, 8), (5, 7), 1),
                                                ((4, 9, 9), (9, 9), 3), ((3, 2, 4, 4), (2, 3), 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_random_crop_batch_equals_per_sample_reference(shape, size, padding, dtype):
    x = (np.arange(np.prod(shape)) % 251 + 1).astype(dtype).reshape(shape)
    out = RandomCrop(size, padding=padding, seed=11).apply_batch(x)
    np.testing.assert_array_equal(out, _crop_one_by_one(x, size, padding, seed=11))
    assert out.dtype == dtype and out.flags.c_contiguous and out.shape == shape[:-2] + size
    with pytest.raises(ValueError, match="RandomCrop"):
        RandomCrop(20, padding=1).apply_batch(x)


def _loaders(ds, **kw):
    """The gathered batches and, for comparison, the per-sample path (a collate_fn
    turns the dataset's _fetch_batch off: one __getitem__ per sample + default_collate)."""
    return DataLoader(ds, **kw), DataLoader(ds, collate_fn=default_collate, **kw)


@pytest.mark.parametrize("kind", ["tensors", "arrays", "array_dataset", "subset"])
@pytest.mark.parametrize("kw", [dict(batch_size=4), dict(batch_size=4, shuffle=True, seed=5),
                                dict(batch_size=3, shuffle=True, seed=9, drop_last=True),
                                dict(batch_size=5, drop_last=True), dict(batch_size=32, shuffle=True, seed=1)])
def test_gathered_batches_equal_per_sample_batches(kind, kw):
    rng = np.random.default_rng(0)
    x = rng.random((11, 2, 3)).astype(np.float32)
    y = rng.integers(0, 10, 11)
    if kind == "tensors":
        ds = TensorDataset(gf.tensor(x), gf.tensor(y))
    elif kind == "arrays":
        ds = TensorDataset(x, y.astype(np.float64))
    elif kind == "array_dataset":
        ds = ArrayDataset((x * 255).astype(np.uint8), y)
    else:
        ds = Subset(TensorDataset(gf.tensor(x), gf.tensor(y)), [10, 3, 4, 0, 7, 7, 2, 9, 1])
    fast, slow = _loaders(ds, **kw)
    for _ in range(2):  # two epochs: the shuffles must advance identically
        got, want = list(fast), list(slow)
        assert len(got) == len(want) == len(fast)
        for gb, wb in zip(got, want):
            assert len(gb) == len(wb) == 2
            for g, w in zip(gb, wb):
                assert isinstance(g, gf.Tensor) and g.dtype == w.dtype and g.shape == w.shape
                np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_gathered_batches_follow_samplers():
    from gradflow.data import BatchSampler, SequentialSampler
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    ds = TensorDataset(x, np.arange(10))
    bs = [[3, 1], [9], [0, 0, 5]]
    for kw in (dict(batch_sampler=bs), dict(sampler=[4, 2, 8, 6], batch_size=3),
               dict(batch_sampler=BatchSampler(SequentialSampler(ds), 4, drop_last=False))):
        fast, slow = _loaders(ds, **kw)
        for (gx, gy), (wx, wy) in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(gx.numpy(), wx.numpy())
            np.testing.assert_array_equal(gy.numpy(), wy.numpy())
    assert [b[1].tolist() for b in DataLoader(ds, batch_sampler=bs)] == bs


@pytest.mark.parametrize("shape", [(9, 1, 3, 4), (6, 5, 2), (1, 2, 2, 2), (0, 1, 3, 3)])
def test_random_flip_batch_equals_per_sample(shape):
    from gradflow.data.transforms import RandomHorizontalFlip
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = RandomHorizontalFlip(p=0.5, seed=4).apply_batch(x)
    one = RandomHorizontalFlip(p=0.5, seed=4)
    ref = np.stack([one(s) for s in x]) if len(x) else x
    np.testing.assert_array_equal(out, ref)
    assert out.shape == x.shape and out.flags.c_contiguous
    if len(x) > 5:  # some flipped, some not
        flipped = [not np.array_equal(o, s) for o, s in zip(out, x)]
        assert any(flipped) and not all(flipped)
    # in a Compose, the dataset builds its batches by the gather path
    data = (np.arange(8 * 3 * 3) % 200).astype(np.uint8).reshape(8, 3, 3)
    ds = ArrayDataset(data, np.arange(8), transform=Compose([ToTensor(), RandomHorizontalFlip(seed=1)]))
    (xb, yb), = list(DataLoader(ds, batch_size=8))
    ref_flip = RandomHorizontalFlip(seed=1)
    np.testing.assert_array_equal(xb.numpy(), np.stack([ref_flip(ToTensor()(s)) for s in data]))
    assert ds._fetch_batch([0, 1]) is not None  # (advances the flip's stream: checked last)


@pytest.mark.parametrize("kind", ["arrays", "tensors", "mixed"])
def test_concat_dataset_gathers_like_per_sample(kind):
    rng = np.random.default_rng(2)
    parts = [(rng.random((n, 3)).astype(np.float32), rng.integers(0, 9, n)) for n in (5, 1, 7)]
    if kind == "arrays":
        dsets = [TensorDataset(x, y) for x, y in parts]
    elif kind == "tensors":
        dsets = [TensorDataset(gf.tensor(x), gf.tensor(y)) for x, y in parts]
    else:  # NumPy fields from one part, Tensors from another: the per-sample path
        dsets = [TensorDataset(*parts[0]), TensorDataset(*map(gf.tensor, parts[1])), TensorDataset(*parts[2])]
    ds = ConcatDataset(dsets)
    assert (ds._fetch_batch([0, 5]) is None) == (kind == "mixed")  # 5 is the 1-sample part
    if kind == "mixed":
        return  # (default_collate itself cannot stack a Tensor with an array)
    for kw in (dict(batch_size=4, shuffle=True, seed=3), dict(batch_size=5, drop_last=True)):
        fast, slow = _loaders(ds, **kw)
        for gb, wb in zip(fast, slow, strict=True):
            for g, w in zip(gb, wb, strict=True):
                assert g.dtype == w.dtype
                np.testing.assert_array_equal(g.numpy(), w.numpy())
    x, y = ds._fetch_batch([-1, 5, 0, -13])  # negative indices count from the end, as ds[i]
    np.testing.assert_array_equal(x.numpy() if kind == "tensors" else x,
                                  np.stack([parts[2][0][-1], parts[1][0][0], parts[0][0][0], parts[0][0][0]]))
    with pytest.raises(IndexError, match="ConcatDataset"):
        ds._fetch_batch([13])

"""FLOP counts per workload (one call / one training step).

Convention: a multiply-add counts as 2 FLOPs, and only the GEMM-like layers are
counted (matmul, linear, conv2d). Bias adds, activations, pooling, softmax and
the optimizer update are left out: they are memory-bound and small next to the
GEMMs, and leaving them out keeps the counts checkable by hand.

Backward of a GEMM-like layer costs its forward twice: once for the input
gradient, once for the weight gradient. A training step therefore counts
forward + weight gradients of every layer + input gradients of every layer but
the first (the input images need no gradient, and no engine computes it).
"""
from __future__ import annotations


def matmul(n: int, m: int | None = None, k: int | None = None) -> int:
    """C (n x m) = A (n x k) @ B (k x m): 2*n*m*k FLOPs (square when m, k omitted)."""
    m = n if m is None else m
    k = n if k is None else k
    return 2 * n * m * k


def linear(batch: int, fan_in: int, fan_out: int) -> int:
    """y = x W^T (+ b): 2 * batch * fan_in * fan_out (the bias is not counted)."""
    return 2 * batch * fan_in * fan_out


def conv_out(size: int, k: int, stride: int = 1, pad: int = 0) -> int:
    return (size + 2 * pad - k) // stride + 1


def conv2d(n: int, c: int, h: int, w: int, k: int, kh: int, kw: int,
           stride: int = 1, pad: int = 0) -> int:
    """Forward conv: 2 * N * K * OH * OW * C * kH * kW (groups 1, dilation 1)."""
    oh, ow = conv_out(h, kh, stride, pad), conv_out(w, kw, stride, pad)
    return 2 * n * k * oh * ow * c * kh * kw


def training_step(layer_flops: list[int]) -> int:
    """forward + weight grads of every layer + input grads of all but the first."""
    fwd = sum(layer_flops)
    return fwd + fwd + (fwd - layer_flops[0])


# -- the networks, layer by layer (forward FLOPs per layer) ----------------------------------------
def mlp_layers(batch: int) -> list[int]:
    """784-256-10."""
    return [linear(batch, 784, 256), linear(batch, 256, 10)]


def lenet5_layers(batch: int) -> list[int]:
    """conv 1->6 5x5 pad 2 on 28x28 (-> 28x28, pool -> 14x14), conv 6->16 5x5
    (-> 10x10, pool -> 5x5), 400-120-84-10."""
    return [conv2d(batch, 1, 28, 28, 6, 5, 5, pad=2),
            conv2d(batch, 6, 14, 14, 16, 5, 5),
            linear(batch, 400, 120), linear(batch, 120, 84), linear(batch, 84, 10)]


#: the small VGG-style CIFAR net: (in, out) channels of the 3x3 pad-1 convs per stage,
#: a 2x2 max-pool after each stage, then the classifier widths.
CONVNET_STAGES = [(3, 32), (32, 32)], [(32, 64), (64, 64)]
CONVNET_FC = (64 * 8 * 8, 128, 10)


def convnet_layers(batch: int) -> list[int]:
    out, size = [], 32
    for stage in CONVNET_STAGES:
        for cin, cout in stage:
            out.append(conv2d(batch, cin, size, size, cout, 3, 3, pad=1))
        size //= 2
    for a, b in zip(CONVNET_FC[:-1], CONVNET_FC[1:]):
        out.append(linear(batch, a, b))
    return out


def mlp_step(batch: int) -> int:
    return training_step(mlp_layers(batch))


def lenet5_step(batch: int) -> int:
    return training_step(lenet5_layers(batch))


def convnet_step(batch: int) -> int:
    return training_step(convnet_layers(batch))

"""The numba kernels of the numba backend (:mod:`gradflow.backends.numba_backend`).

Each is declared with :func:`~gradflow.backends.numba_runtime.kernel`: a numba
signature template with ``{f}`` for float32/float64, compiled on first call per
float type and loop mode (see :mod:`gradflow.backends.numba_runtime`, which also
sets numba up: cache folder, threading layer, fastmath policy). Arrays are
C-contiguous and of one float type (the backend checks); kernels that write an
output take it as an argument. ``prange`` loops run serially unless the backend
calls ``kernel.parallel(...)``.
"""
from __future__ import annotations

import numpy as np
from numba import prange, uint64

from .numba_runtime import kernel as _k
from .numba_runtime import njit_inline

I = "int64"  # noqa: E741


# ---------------------------------------------------------------------------
# the window-loop helper shared by im2col and col2im
# ---------------------------------------------------------------------------
# (The pooling kernels keep their own per-tap bounds tests: rewritten with this
# helper, the average-pool forward measured 3-5x slower.)
@njit_inline
def _tap_range(off, step, size, count):
    """[lo, hi): the t in [0, count) with 0 <= off + t*step < size (step >= 1) -- the
    outputs of one im2col tap row whose reads fall inside the input. Empty (lo == hi)
    when there are none."""
    lo = 0 if off >= 0 else (-off + step - 1) // step
    hi = (size - 1 - off) // step + 1 if size - 1 - off >= 0 else 0
    lo = min(lo, count)
    hi = max(min(hi, count), lo)
    return lo, hi


# ---------------------------------------------------------------------------
# convolution: im2col / col2im with the padding handled in-kernel
# ---------------------------------------------------------------------------
# ``cols`` is a flat buffer; element (n, r, l) of the chunk lives at
# n*sn + r*sr + l, with r = (c*kh + i)*kw + j and l = oy*ow + ox. Sample-major
# layout (m, C*kh*kw, L) is sn = CKK*L, sr = L; "K-major" (C*kh*kw, m*L) is
# sn = L, sr = m*L (one GEMM over the whole chunk).

@_k(f"void({{f}}[:,:,:,::1], {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, "
    f"{{f}}[::1], {I}, {I})", parallel=True)
def im2col(x, n0, m, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols, sn, sr):
    # Flat indices are uint64 (non-negative by construction): numba then skips its
    # negative-index wraparound select and LLVM vectorises the row copies (3-4x
    # faster on LeNet's short rows than signed indexing).
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    xf = x.reshape(-1)
    for t in prange(m * C):
        n = t // C
        c = t - n * C
        plane = ((n0 + n) * C + c) * H * W
        for i in range(kh):
            for j in range(kw):
                base = n * sn + ((c * kh + i) * kw + j) * sr
                off = j * dw - pw
                lo, hi = _tap_range(off, sw, W, ow)
                cnt = uint64(hi - lo)
                usw = uint64(sw)
                for y in range(oh):
                    ih = y * sh + i * dh - ph
                    o = uint64(base + y * ow)
                    if ih < 0 or ih >= H:
                        for xx in range(uint64(ow)):
                            cols[o + xx] = 0
                    else:
                        for xx in range(uint64(lo)):
                            cols[o + xx] = 0
                        s0 = uint64(plane + ih * W + lo * sw + off)
                        o2 = o + uint64(lo)
                        if sw == 1:
                            for xx in range(cnt):
                                cols[o2 + xx] = xf[s0 + xx]
                        else:
                            for xx in range(cnt):
                                cols[o2 + xx] = xf[s0 + xx * usw]
                        for xx in range(uint64(hi), uint64(ow)):
                            cols[o + xx] = 0


@_k(f"void({{f}}[::1], {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, "
    f"{{f}}[:,:,:,::1], {I}, {I})", parallel=True)
def col2im(cols, n0, m, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, dx, sn, sr):
    """dx[n0:n0+m] = adjoint of im2col (each (n, c) plane zeroed, then accumulated)."""
    C = dx.shape[1]
    H = dx.shape[2]
    W = dx.shape[3]
    dxf = dx.reshape(-1)
    for t in prange(m * C):
        n = t // C
        c = t - n * C
        plane = ((n0 + n) * C + c) * H * W
        for a in range(uint64(plane), uint64(plane + H * W)):
            dxf[a] = 0
        for i in range(kh):
            for j in range(kw):
                base = n * sn + ((c * kh + i) * kw + j) * sr
                off = j * dw - pw
                lo, hi = _tap_range(off, sw, W, ow)
                cnt = uint64(hi - lo)
                usw = uint64(sw)
                for y in range(oh):
                    ih = y * sh + i * dh - ph
                    if ih < 0 or ih >= H:
                        continue
                    o = uint64(base + y * ow + lo)
                    d0 = uint64(plane + ih * W + lo * sw + off)
                    if sw == 1:
                        for xx in range(cnt):
                            dxf[d0 + xx] += cols[o + xx]
                    else:
                        for xx in range(cnt):
                            dxf[d0 + xx * usw] += cols[o + xx]


@_k(f"void({{f}}[:,::1], {{f}}[::1], {{f}}[::1], {{f}}[:,:,::1], {I}, {I}, {I})", parallel=True)
def gemm_small_fwd(w, cols, b, y, n0, m, relu):
    """y[n0+n, k, :] = b[k] + sum_r w[k, r] * cols[r*m*L + n*L : ... + L] (then ReLU when
    ``relu``): the forward GEMM with K-major columns and the NCHW scatter in one pass,
    for tiny weights (LeNet conv1: 6x25) where BLAS is inefficient."""
    K = w.shape[0]
    R = w.shape[1]
    L = y.shape[2]
    yf = y.reshape(-1)
    uL = uint64(L)
    mL = uint64(m * L)
    for t in prange(m * K):
        n = t // K
        k = t - n * K
        o = uint64(((n0 + n) * K + k) * L)
        bk = b[k]
        for l in range(uL):
            yf[o + l] = bk
        cb = uint64(n * L)
        for r in range(R):
            wk = w[k, r]
            c0 = uint64(r) * mL + cb
            for l in range(uL):
                yf[o + l] += wk * cols[c0 + l]
        if relu:
            for l in range(uL):
                v = yf[o + l]
                yf[o + l] = v if not (v <= 0) else 0  # as the relu kernel: -inf -> 0


@_k(f"void({{f}}[:,::1], {{f}}[::1], {{f}}[:,::1])", parallel=True)
def gemm_nt_small(g, cols, out):
    """out[k, r] += sum_l g[k, l] * cols[r*L + l]: the weight gradient with K-major
    columns when out is tiny (LeNet: 6x25, 16x150) and L = N*OH*OW is long -- a
    shape BLAS handles poorly; here one vectorised dot product per output."""
    K = g.shape[0]
    L = g.shape[1]
    R = out.shape[1]
    gf = g.reshape(-1)
    uL = uint64(L)
    zero = np.zeros(1, dtype=out.dtype)[0]     # not gf[0] * 0: NaN when gf[0] is inf
    for r in prange(R):
        cb = uint64(r) * uL
        for k in range(K):
            gb = uint64(k) * uL
            s = zero
            for l in range(uL):
                s += gf[gb + l] * cols[cb + l]
            out[k, r] += s


@_k(f"void({{f}}[:,::1], {{f}}[::1], {{f}}[:,:,::1], {I}, {I}, {I})", parallel=True)
def kmajor_to_nkl(src, b, y, n0, m, relu):
    """y[n0+n, k, l] = src[k, n*L + l] + b[k] (then max(., 0) when ``relu``)."""
    K = y.shape[1]
    L = y.shape[2]
    for t in prange(m * K):
        n = t // K
        k = t - n * K
        bk = b[k]
        o = n * L
        if relu:
            for l in range(L):
                v = src[k, o + l] + bk
                y[n0 + n, k, l] = v if not (v <= 0) else 0
        else:
            for l in range(L):
                y[n0 + n, k, l] = src[k, o + l] + bk


@_k(f"void({{f}}[:,:,::1], {I}, {I}, {{f}}[:,::1], float64[::1])", parallel=True)
def nkl_to_kmajor(gy, n0, m, dst, acc):
    """dst[k, n*L + l] = gy[n0+n, k, l]; acc[k] += the sum of what was copied (the bias
    gradient, float64)."""
    K = gy.shape[1]
    L = gy.shape[2]
    for k in prange(K):
        s = 0.0
        for n in range(m):
            o = n * L
            for l in range(L):
                v = gy[n0 + n, k, l]
                dst[k, o + l] = v
                s += v
        acc[k] += s


@_k(f"void({{f}}[:,:,::1], {{f}}[::1], {I})", parallel=True)
def bias_act_(y, b, relu):
    """y[n, k, :] += b[k] in place (then max(., 0) when ``relu``)."""
    N = y.shape[0]
    K = y.shape[1]
    L = y.shape[2]
    for t in prange(N * K):
        n = t // K
        k = t - n * K
        bk = b[k]
        if relu:
            for l in range(L):
                v = y[n, k, l] + bk
                y[n, k, l] = v if not (v <= 0) else 0
        else:
            for l in range(L):
                y[n, k, l] += bk


@_k(f"void({{f}}[:,:,::1], {{f}}[::1])", parallel=True)
def channel_sum(gy, out):
    """out[k] = sum over n, l of gy[n, k, l] (float64 accumulator)."""
    N = gy.shape[0]
    K = gy.shape[1]
    L = gy.shape[2]
    for k in prange(K):
        s = 0.0
        for n in range(N):
            for l in range(L):
                s += gy[n, k, l]
        out[k] = s


# ---------------------------------------------------------------------------
# direct convolution for tiny weights (stride 1, no dilation, groups 1)
# ---------------------------------------------------------------------------
# A sample's input is copied once into a zero-padded buffer with row pitch
# Wp = W + 2*pw. On that grid an output row band is "wide": output (oy, ox)
# sits at oy*Wp + ox and tap (c, i, j) reads the buffer at c*S + i*Wp + j plus
# that offset, so each tap is one long contiguous multiply-add over OH*Wp
# elements (OW of every Wp are real outputs, the rest are discarded). For
# LeNet's conv1 (1 -> 6 channels, 5x5) this keeps everything in L1 instead of
# writing and re-reading a 25x larger im2col buffer.

@njit_inline
def _fill_padded(x, n, ph, pw, xp, S, Wp):
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    for a in range(xp.shape[0]):
        xp[a] = 0
    for c in range(C):
        for h in range(H):
            o = c * S + (h + ph) * Wp + pw
            for w_ in range(W):
                xp[o + w_] = x[n, c, h, w_]


@_k(f"void({{f}}[:,:,:,::1], {{f}}[:,:,:,::1], {{f}}[::1], {{f}}[:,:,:,::1], {I}, {I}, {I}, {I}, "
    f"{I})", parallel=True)
def conv_direct_fwd(x, w, b, y, n0, m, ph, pw, relu):
    """y[n0:n0+m] = conv(x, w) + b (then ReLU when ``relu``), stride 1, direct."""
    C = x.shape[1]
    K = w.shape[0]
    KH = w.shape[2]
    KW = w.shape[3]
    OH = y.shape[2]
    OW = y.shape[3]
    Wp = x.shape[3] + 2 * pw
    S = (x.shape[2] + 2 * ph) * Wp + KW       # per-channel stride, with a tail for wide reads
    P = uint64(OH * Wp)
    for n in prange(m):
        xp = np.empty(C * S, dtype=y.dtype)
        acc = np.empty(P, dtype=y.dtype)
        _fill_padded(x, n0 + n, ph, pw, xp, S, Wp)
        for k in range(K):
            bk = b[k]
            for p in range(P):
                acc[p] = bk
            for c in range(C):
                for i in range(KH):
                    j = 0
                    while j + 5 <= KW:    # five taps per pass: one load/store of acc for 5 FMAs
                        base = uint64(c * S + i * Wp + j)   # unsigned: see im2col
                        w0 = w[k, c, i, j]
                        w1 = w[k, c, i, j + 1]
                        w2 = w[k, c, i, j + 2]
                        w3 = w[k, c, i, j + 3]
                        w4 = w[k, c, i, j + 4]
                        b1 = base + uint64(1)
                        b2 = base + uint64(2)
                        b3 = base + uint64(3)
                        b4 = base + uint64(4)
                        for p in range(P):
                            acc[p] += (w0 * xp[base + p] + w1 * xp[b1 + p] + w2 * xp[b2 + p]
                                       + w3 * xp[b3 + p] + w4 * xp[b4 + p])
                        j += 5
                    while j < KW:
                        wv = w[k, c, i, j]
                        base = uint64(c * S + i * Wp + j)
                        for p in range(P):
                            acc[p] += wv * xp[base + p]
                        j += 1
            for oy in range(OH):
                for ox in range(OW):
                    v = acc[oy * Wp + ox]
                    if relu:
                        v = v if not (v <= 0) else 0  # as the relu kernel: -inf -> 0
                    y[n0 + n, k, oy, ox] = v


@_k(f"void({{f}}[:,:,:,::1], {{f}}[:,:,:,::1], {{f}}[:,:,:,::1], {I}, {I}, {I}, {I})")
def conv_direct_dw(x, gy, dw, n0, m, ph, pw):
    """dw += the weight gradient of samples n0..n0+m (stride 1, direct): one dot
    product over the wide output grid per tap and sample."""
    C = x.shape[1]
    K = gy.shape[1]
    KH = dw.shape[2]
    KW = dw.shape[3]
    OH = gy.shape[2]
    OW = gy.shape[3]
    Wp = x.shape[3] + 2 * pw
    S = (x.shape[2] + 2 * ph) * Wp + KW
    P = uint64(OH * Wp)
    xp = np.empty(C * S, dtype=dw.dtype)
    g = np.zeros(K * OH * Wp, dtype=dw.dtype)  # gy on the wide grid, zeros off the outputs
    zero = g[0]
    for n in range(m):
        _fill_padded(x, n0 + n, ph, pw, xp, S, Wp)
        for k in range(K):
            for oy in range(OH):
                for ox in range(OW):
                    g[k * OH * Wp + oy * Wp + ox] = gy[n0 + n, k, oy, ox]
        for k in range(K):
            gk = uint64(k) * P
            for c in range(C):
                for i in range(KH):
                    j = 0
                    while j + 5 <= KW:    # five taps per pass share each load of g
                        base = uint64(c * S + i * Wp + j)
                        s0 = zero
                        s1 = zero
                        s2 = zero
                        s3 = zero
                        s4 = zero
                        b1 = base + uint64(1)
                        b2 = base + uint64(2)
                        b3 = base + uint64(3)
                        b4 = base + uint64(4)
                        for p in range(P):
                            gv = g[gk + p]
                            s0 += gv * xp[base + p]
                            s1 += gv * xp[b1 + p]
                            s2 += gv * xp[b2 + p]
                            s3 += gv * xp[b3 + p]
                            s4 += gv * xp[b4 + p]
                        dw[k, c, i, j] += s0
                        dw[k, c, i, j + 1] += s1
                        dw[k, c, i, j + 2] += s2
                        dw[k, c, i, j + 3] += s3
                        dw[k, c, i, j + 4] += s4
                        j += 5
                    while j < KW:
                        base = uint64(c * S + i * Wp + j)
                        s = zero
                        for p in range(P):
                            s += g[gk + p] * xp[base + p]
                        dw[k, c, i, j] += s
                        j += 1


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
# The 2x2 stride-2 unpadded window (LeNet's, VGG's) has kernels of its own: a
# process compiles only the kernels of the geometries it uses.
@_k("void({f}[:,:,:,::1], {f}[:,:,:,::1], int8[:,:,:,::1])", parallel=True)
def maxpool2_fwd(x, y, idx):
    """maxpool_fwd for kernel 2x2, stride 2, no padding/dilation, 2*OH <= H, 2*OW <= W."""
    N = x.shape[0]
    C = x.shape[1]
    OH = y.shape[2]
    OW = y.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            for ox in range(OW):
                a = x[n, c, 2 * oy, 2 * ox]
                b = x[n, c, 2 * oy, 2 * ox + 1]
                d = x[n, c, 2 * oy + 1, 2 * ox]
                e = x[n, c, 2 * oy + 1, 2 * ox + 1]
                best = a
                bi = 0
                if b > best or (b != b and best == best):
                    best = b
                    bi = 1
                if d > best or (d != d and best == best):
                    best = d
                    bi = 2
                if e > best or (e != e and best == best):
                    best = e
                    bi = 3
                y[n, c, oy, ox] = best
                idx[n, c, oy, ox] = bi


@_k("void({f}[:,:,:,::1], int8[:,:,:,::1], {f}[:,:,:,::1])", parallel=True)
def maxpool2_bwd(gy, idx, dx):
    """maxpool_bwd for the geometry of maxpool2_fwd: the windows do not overlap, so
    every dx element is written once and there is no zeroing pass."""
    N = dx.shape[0]
    C = dx.shape[1]
    H = dx.shape[2]
    W = dx.shape[3]
    OH = gy.shape[2]
    OW = gy.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            for ox in range(OW):
                k = idx[n, c, oy, ox]
                g = gy[n, c, oy, ox]
                dx[n, c, 2 * oy, 2 * ox] = g if k == 0 else 0
                dx[n, c, 2 * oy, 2 * ox + 1] = g if k == 1 else 0
                dx[n, c, 2 * oy + 1, 2 * ox] = g if k == 2 else 0
                dx[n, c, 2 * oy + 1, 2 * ox + 1] = g if k == 3 else 0
            for b in range(2 * OW, W):      # odd width: the last column is in no window
                dx[n, c, 2 * oy, b] = 0
                dx[n, c, 2 * oy + 1, b] = 0
        for a in range(2 * OH, H):          # odd height: the last row
            for b in range(W):
                dx[n, c, a, b] = 0


@_k(f"void({{f}}[:,:,:,::1], {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, "
    f"{{f}}[:,:,:,::1], int8[:,:,:,::1])", parallel=True)
def maxpool_fwd(x, kh, kw, sh, sw, ph, pw, dh, dw, y, idx):
    """Window max and the tap index (i*kw + j) of its first maximum; a NaN wins.
    Taps outside the input (padding, ceil_mode overhang) are skipped."""
    N = x.shape[0]
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    OH = y.shape[2]
    OW = y.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            for ox in range(OW):
                best = -np.inf  # a window wholly in the padding is -inf (as NumPy, PyTorch)
                bi = -1
                for i in range(kh):
                    ih = oy * sh - ph + i * dh
                    if ih < 0 or ih >= H:
                        continue
                    for j in range(kw):
                        iw = ox * sw - pw + j * dw
                        if iw < 0 or iw >= W:
                            continue
                        v = x[n, c, ih, iw]
                        if bi < 0 or v > best or (v != v and best == best):
                            best = v
                            bi = i * kw + j
                y[n, c, oy, ox] = best
                idx[n, c, oy, ox] = bi


@_k(f"void({{f}}[:,:,:,::1], int8[:,:,:,::1], {I}, {I}, {I}, {I}, {I}, {I}, {I}, {I}, "
    f"{{f}}[:,:,:,::1])", parallel=True)
def maxpool_bwd(gy, idx, kh, kw, sh, sw, ph, pw, dh, dw, dx):
    """dx = 0, then each output's gradient added at its argmax tap (per plane)."""
    N = dx.shape[0]
    C = dx.shape[1]
    H = dx.shape[2]
    W = dx.shape[3]
    OH = gy.shape[2]
    OW = gy.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for a in range(H):
            for b in range(W):
                dx[n, c, a, b] = 0
        for oy in range(OH):
            for ox in range(OW):
                k = idx[n, c, oy, ox]
                if k < 0:  # the window held no input element: nothing to route back
                    continue
                i = k // kw
                j = k - i * kw
                dx[n, c, oy * sh - ph + i * dh, ox * sw - pw + j * dw] += gy[n, c, oy, ox]


@_k(f"void({{f}}[:,:,:,::1], {I}, {I}, {I}, {I}, {I}, {I}, {I}, {{f}}[:,:,:,::1])", parallel=True)
def avgpool_fwd(x, kh, kw, sh, sw, ph, pw, include_pad, y):
    """Window mean with PyTorch's divisor (count_include_pad and ceil_mode rules)."""
    N = x.shape[0]
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    OH = y.shape[2]
    OW = y.shape[3]
    zero = np.zeros(1, dtype=y.dtype)[0]     # not x[...] * 0: NaN when that is inf
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oy in range(OH):
            h0 = oy * sh - ph
            h1 = min(h0 + kh, H + ph)
            ch = h1 - h0
            h0c = max(h0, 0)
            h1c = min(h1, H)
            for ox in range(OW):
                w0 = ox * sw - pw
                w1 = min(w0 + kw, W + pw)
                cw = w1 - w0
                w0c = max(w0, 0)
                w1c = min(w1, W)
                s = zero
                for a in range(h0c, h1c):
                    for b in range(w0c, w1c):
                        s += x[n, c, a, b]
                div = ch * cw if include_pad else (h1c - h0c) * (w1c - w0c)
                y[n, c, oy, ox] = s / div


@_k(f"void({{f}}[:,:,:,::1], {I}, {I}, {I}, {I}, {I}, {I}, {I}, {{f}}[:,:,:,::1])", parallel=True)
def avgpool_bwd(gy, kh, kw, sh, sw, ph, pw, include_pad, dx):
    N = dx.shape[0]
    C = dx.shape[1]
    H = dx.shape[2]
    W = dx.shape[3]
    OH = gy.shape[2]
    OW = gy.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for a in range(H):
            for b in range(W):
                dx[n, c, a, b] = 0
        for oy in range(OH):
            h0 = oy * sh - ph
            h1 = min(h0 + kh, H + ph)
            ch = h1 - h0
            h0c = max(h0, 0)
            h1c = min(h1, H)
            for ox in range(OW):
                w0 = ox * sw - pw
                w1 = min(w0 + kw, W + pw)
                cw = w1 - w0
                w0c = max(w0, 0)
                w1c = min(w1, W)
                div = ch * cw if include_pad else (h1c - h0c) * (w1c - w0c)
                g = gy[n, c, oy, ox] / div
                for a in range(h0c, h1c):
                    for b in range(w0c, w1c):
                        dx[n, c, a, b] += g


# ---------------------------------------------------------------------------
# softmax cross-entropy (rows of logits), activations, optimizer updates
# ---------------------------------------------------------------------------
@_k(f"void({{f}}[:,::1], int64[::1], {{f}}[::1], {{f}}[:,::1])")
def sce_fwd(x, t, loss, logp):
    """logp = x - max - log(sum(exp(x - max))) (max replaced by 0 when not finite,
    as the NumPy backend); loss = -logp[t]."""
    N = x.shape[0]
    C = x.shape[1]
    for n in range(N):
        m = -np.inf
        nan = False
        for c in range(C):
            v = x[n, c]
            if v > m:
                m = v
            if v != v:
                nan = True
        if nan or m - m != 0:  # NaN, or +-inf (inf - inf is NaN)
            m = 0.0
        s = 0.0
        for c in range(C):
            s += np.exp(x[n, c] - m)
        lse = np.log(s)
        for c in range(C):
            logp[n, c] = (x[n, c] - m) - lse
        loss[n] = -logp[n, t[n]]


@_k(f"void({{f}}[:,::1], int64[::1], {{f}}[:], {{f}}[:,::1])")
def sce_bwd(logp, t, gl, g):
    """g = (exp(logp) - onehot(t)) * gl[:, None]."""
    N = logp.shape[0]
    C = logp.shape[1]
    for n in range(N):
        s = gl[n]
        for c in range(C):
            g[n, c] = np.exp(logp[n, c])
        g[n, t[n]] -= 1
        for c in range(C):
            g[n, c] *= s


# ---------------------------------------------------------------------------
# scatter-add along one axis (the backward of pad / interpolate gathers)
# ---------------------------------------------------------------------------
@_k("void({f}[:,:,::1], int64[::1], {f}[:,:,::1])", parallel=True)
def index_add_axis(g, index, out):
    """out[p, index[j], :] += g[p, j, :] for every j, out zeroed first; ``index``
    values in [0, out.shape[1]). Each p is one task, so repeats accumulate in order."""
    P = g.shape[0]
    J = g.shape[1]
    Q = g.shape[2]
    for p in prange(P):
        for t in range(out.shape[1]):
            for q in range(Q):
                out[p, t, q] = 0
        for j in range(J):
            t = index[j]
            for q in range(Q):
                out[p, t, q] += g[p, j, q]


@_k("void({f}[::1], {f}[::1])", parallel=True)
def relu(x, y):
    for i in prange(x.shape[0]):
        v = x[i]
        y[i] = v if not (v <= 0) else 0   # NaN passes through


@_k("void({f}[::1], {f}[::1], {f}[::1])", parallel=True)
def relu_bwd(gy, y, gx):
    for i in prange(gy.shape[0]):
        g = gy[i]
        gx[i] = g if y[i] > 0 else g - g   # g - g == g * 0 as NumPy: NaN/Inf in gy propagate


@_k("void({f}[::1], {f}[::1], {f}[::1], {f}, {f}, {f}, {f}, int64, int64, int64)")
def sgd_(p, g, buf, lr, momentum, damp1, wd, nesterov, first, use_momentum):
    """PyTorch SGD in one pass; ``damp1`` = 1 - dampening."""
    for i in range(p.shape[0]):
        d = g[i]
        if wd != 0:
            d = d + wd * p[i]
        if use_momentum:
            if first:
                b = d
            else:
                b = momentum * buf[i] + damp1 * d
            buf[i] = b
            if nesterov:
                d = d + momentum * b
            else:
                d = b
        p[i] -= lr * d


@_k("void({f}[::1], {f}[::1], {f}[::1], {f}[::1], {f}, {f}, {f}, {f}, {f}, {f}, {f}, {f}, {f})")
def adam_(p, g, m, v, step_size, beta1, c1, beta2, c2, inv_sqrt_bc2, eps, l2, decay):
    """Adam/AdamW in one pass. ``decay`` = 1 - lr*wd (AdamW) or 1 (Adam); ``l2`` = wd
    (Adam) or 0 (AdamW); step_size = lr / (1 - beta1**t); c1 = 1 - beta1; c2 = 1 - beta2."""
    for i in range(p.shape[0]):
        pi = p[i]
        gi = g[i]
        if l2 != 0:
            gi = gi + l2 * pi
        if decay != 1:
            pi = pi * decay
        mi = beta1 * m[i] + c1 * gi
        vi = beta2 * v[i] + c2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = pi - step_size * (mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps))


"""CUDA kernels of the CuPy backend, compiled on first use and cached.

Every kernel is a ``cupy.ElementwiseKernel`` (type-generic: one source serves
float32 and float64, CuPy compiles one binary per dtype and caches it on disk)
except the fused softmax-cross-entropy forward, a warp-per-row ``RawModule``
template. Only :mod:`gradflow.backends.cupy_backend` imports this module, and
only after CuPy has been found, so nothing here runs on a machine without CUDA.

Indexing convention: array arguments marked ``raw`` are passed as contiguous
1-D arrays and indexed with flat ``long long`` offsets computed here; index
arithmetic is 64-bit so tensors past 2**31 elements stay correct.

Gradients that several outputs feed (col2im, pooling backward) are computed in
*gather* form: one thread per input pixel sums every window tap that read it,
in a fixed order. No atomics, so results are deterministic run to run.
"""
from __future__ import annotations

import functools

import cupy

INT32_MAX = 2**31 - 1


def _width(src: str, big: bool) -> str:
    """Kernel text with 64-bit (``big``) or 32-bit index arithmetic. Integer division
    is the cost of these kernels, and 64-bit division is several times slower on the
    GPU, so 32-bit is used whenever every index of the call fits."""
    return src if big else src.replace("long long", "int").replace("int64", "int32")


# The gather kernels (col2im, max/avg-pool backward) walk, for one input pixel, the
# window taps that read it: this is that walk's step, shared as a CUDA preamble.
_GATHER_PREAMBLE = r"""
// The output coordinate whose window tap k reads input coordinate h (one axis; window
// padding P, dilation D, stride S, O outputs): (h + P - k*D) / S when that divides
// exactly and lies in [0, O); -1 when tap k reads h for no output; -2 when no later tap
// can either (h + P - k*D < 0 and taps are walked in increasing k).
template<typename I>
__device__ __forceinline__ I gather_out(I h, I k, I P, I D, I S, I O) {
    const I hh = h + P - k * D;
    if (hh < 0) return -2;
    I o = hh;
    if (S != 1) { if (hh % S) return -1; o = hh / S; }
    return o < O ? o : -1;
}
"""


def _ek(in_params, out_params, body, name, big, preamble=""):
    """An ElementwiseKernel whose body indexes with ``I`` (``i`` at the chosen width).
    A parameter type written ``=int64`` keeps 64 bits at either width (data, not indices)."""
    return cupy.ElementwiseKernel(_width(in_params, big).replace("=int32", "int64").replace("=int64", "int64"),
                                  out_params,
                                  _width("const long long I = i;\n" + body, big),
                                  name + ("" if big else "_i32"), preamble=preamble)


# geometry shared by the sliding-window kernels, as kernel parameters
_GEOM = ("int64 H, int64 W, int64 OH, int64 OW, int64 KH, int64 KW, int64 SH, int64 SW, "
         "int64 PH, int64 PW, int64 DH, int64 DW")


# -- convolution ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def im2col_gemm(big=True):
    """x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW): the GEMM operand, padding read as 0."""
    return _ek(
        f"raw T x, int64 N, int64 C, {_GEOM}",
        "T col",
        """
        const long long L = N * OH * OW;
        const long long q = I % L, r = I / L;
        const long long ow = q % OW, oh = (q / OW) % OH, n = q / (OW * OH);
        const long long kj = r % KW, ki = (r / KW) % KH, c = r / (KW * KH);
        const long long ih = oh * SH - PH + ki * DH, iw = ow * SW - PW + kj * DW;
        col = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[((n * C + c) * H + ih) * W + iw] : (T)0;
        """,
        "gradflow_im2col_gemm", big)


@functools.lru_cache(maxsize=None)
def col2im_gather(big=True):
    """dx (N, C, H, W) = sum of the column entries that read each pixel (adjoint of
    im2col). ``col`` is indexed by element strides (sN, sC, sKI, sKJ, sOH, sOW), so
    both the GEMM layout and the (N, C, KH, KW, OH, OW) layout work."""
    return _ek(
        f"raw T col, int64 C, {_GEOM}, int64 sN, int64 sC, int64 sKI, int64 sKJ, "
        "int64 sOH, int64 sOW",
        "T dx",
        """
        const long long w = I % W, h = (I / W) % H, c = (I / (W * H)) % C, n = I / (W * H * C);
        const long long base = n * sN + c * sC;
        T s = (T)0;
        for (long long ki = 0; ki < KH; ++ki) {
            const long long oh = gather_out(h, ki, PH, DH, SH, OH);
            if (oh == -2) break;
            if (oh < 0) continue;
            for (long long kj = 0; kj < KW; ++kj) {
                const long long ow = gather_out(w, kj, PW, DW, SW, OW);
                if (ow == -2) break;
                if (ow < 0) continue;
                s += col[base + ki * sKI + kj * sKJ + oh * sOH + ow * sOW];
            }
        }
        dx = s;
        """,
        "gradflow_col2im_gather", big, _GATHER_PREAMBLE)


@functools.lru_cache(maxsize=None)
def gemm_to_nchw(big=True):
    """y (N, K, P) = yg (K, N, P) transposed, plus bias b (K,) when has_b."""
    return _ek(
        "raw T yg, raw T b, int64 N, int64 K, int64 P, int32 has_b",
        "T y",
        """
        const long long p = I % P, k = (I / P) % K, n = I / (P * K);
        T v = yg[(k * N + n) * P + p];
        if (has_b) v += b[k];
        y = v;
        """,
        "gradflow_gemm_to_nchw", big)


_CONV_SRC = r"""
// im2col into the GEMM layout: grid (ceil(P / block), C*KH*KW rows, ceil(N / NPER)); one
// thread per output position p = oh*OW + ow and row (c, ki, kj), looping over NPER images:
// the index divisions (the costly part: GPUs have no integer divider) are paid once per
// thread, and every store of a warp is coalesced.
template<typename T>
__global__ void im2col_grid(const T* __restrict__ x, T* __restrict__ col,
                            int N, int C, int H, int W, int OH, int OW, int KH, int KW,
                            int SH, int SW, int PH, int PW, int DH, int DW, int NPER) {
    const int P = OH * OW;
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= P) return;
    const int row = blockIdx.y;
    const int n0 = blockIdx.z * NPER;
    const int n1 = min(N, n0 + NPER);
    const int kj = row % KW, ki = (row / KW) % KH, c = row / (KW * KH);
    const int oh = p / OW, ow = p - oh * OW;
    const int ih = oh * SH - PH + ki * DH, iw = ow * SW - PW + kj * DW;
    const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
    const long long img = (long long)C * H * W;
    long long src = (((long long)n0 * C + c) * H + ih) * W + iw;
    long long dst = (long long)row * ((long long)N * P) + (long long)n0 * P + p;
    for (int n = n0; n < n1; ++n, src += img, dst += P)
        col[dst] = inside ? x[src] : (T)0;
}

// col2im in gather form: grid (ceil(H*W / block), C, ceil(N / NPER)); each input pixel
// sums, in tap order, the column entries that read it (no atomics: deterministic). ``col``
// is addressed by element strides, so the GEMM layout and the (N, C, KH, KW, OH, OW)
// layout both work.
template<typename T>
__global__ void col2im_grid(const T* __restrict__ col, T* __restrict__ dx,
                            int N, int C, int H, int W, int OH, int OW, int KH, int KW,
                            int SH, int SW, int PH, int PW, int DH, int DW, int NPER,
                            long long sN, long long sC, long long sKI, long long sKJ,
                            long long sOH, long long sOW) {
    const int HW = H * W;
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= HW) return;
    const int c = blockIdx.y;
    const int n0 = blockIdx.z * NPER;
    const int n1 = min(N, n0 + NPER);
    const int h = p / W, w = p - h * W;
    for (int n = n0; n < n1; ++n) {
        const T* base = col + n * sN + c * sC;
        T s = (T)0;
        for (int ki = 0; ki < KH; ++ki) {
            const int oh = gather_out(h, ki, PH, DH, SH, OH);
            if (oh == -2) break;
            if (oh < 0) continue;
            for (int kj = 0; kj < KW; ++kj) {
                const int ow = gather_out(w, kj, PW, DW, SW, OW);
                if (ow == -2) break;
                if (ow < 0) continue;
                s += base[ki * sKI + kj * sKJ + oh * sOH + ow * sOW];
            }
        }
        dx[((long long)n * C + c) * HW + p] = s;
    }
}
"""


@functools.lru_cache(maxsize=None)
def _conv_module():
    return cupy.RawModule(code=_GATHER_PREAMBLE + _CONV_SRC, options=("-std=c++14",),
                          name_expressions=tuple(f"{k}<{t}>" for k in ("im2col_grid", "col2im_grid")
                                                 for t in ("float", "double")))


def conv_grid(kind, dtype):
    """``im2col_grid`` / ``col2im_grid`` for float32 or float64."""
    t = "float" if dtype == cupy.float32 else "double"
    return _conv_module().get_function(f"{kind}<{t}>")


def grid_block(n):
    """Threads per block for ``n`` positions: a multiple of 32, at most 256."""
    return min(256, max(32, (n + 31) // 32 * 32))


def images_per_thread(outputs, n):
    """How many images one thread of im2col/col2im walks, given the number of elements
    the call writes: enough to amortise the index divisions, few enough to leave
    ~2**19 threads for the GPU to schedule."""
    return max(1, min(n, outputs >> 19))


# -- pooling ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def max_pool_fwd(big=True):
    """Window max and its tap index (ki*KW + kj); out-of-image taps count as -inf;
    the first NaN wins (NumPy's argmax rule), ties keep the first tap."""
    return _ek(
        f"raw T x, {_GEOM}, T ninf",
        "T y, int32 idx",
        """
        const long long ow = I % OW, oh = (I / OW) % OH, nc = I / (OW * OH);
        const long long base = nc * H * W;
        T m = ninf;
        int best = 0;
        for (long long ki = 0; ki < KH; ++ki) {
            const long long ih = oh * SH - PH + ki * DH;
            if (ih < 0 || ih >= H) continue;
            for (long long kj = 0; kj < KW; ++kj) {
                const long long iw = ow * SW - PW + kj * DW;
                if (iw < 0 || iw >= W) continue;
                const T v = x[base + ih * W + iw];
                if (m == m && (v > m || v != v)) { m = v; best = (int)(ki * KW + kj); }
            }
        }
        y = m;
        idx = best;
        """,
        "gradflow_max_pool_fwd", big)


@functools.lru_cache(maxsize=None)
def max_pool_bwd(big=True):
    """dx: each pixel gathers gy of the windows whose argmax tap is this pixel."""
    return _ek(
        f"raw T gy, raw int32 am, {_GEOM}",
        "T dx",
        """
        const long long w = I % W, h = (I / W) % H, nc = I / (W * H);
        T s = (T)0;
        for (long long ki = 0; ki < KH; ++ki) {
            const long long oh = gather_out(h, ki, PH, DH, SH, OH);
            if (oh == -2) break;
            if (oh < 0) continue;
            for (long long kj = 0; kj < KW; ++kj) {
                const long long ow = gather_out(w, kj, PW, DW, SW, OW);
                if (ow == -2) break;
                if (ow < 0) continue;
                const long long o = (nc * OH + oh) * OW + ow;
                if (am[o] == (int)(ki * KW + kj)) s += gy[o];
            }
        }
        dx = s;
        """,
        "gradflow_max_pool_bwd", big, _GATHER_PREAMBLE)


# divisor of an average-pooling window (PyTorch's rule), as device code
_AVG_DIV = """
        long long hs = oh * SH - PH, he = hs + KH; if (he > H + PH) he = H + PH;
        long long ws = ow * SW - PW, we = ws + KW; if (we > W + PW) we = W + PW;
        if (!include_pad) {
            if (hs < 0) hs = 0;
            if (ws < 0) ws = 0;
            if (he > H) he = H;
            if (we > W) we = W;
        }
        const T dv = (T)((he - hs) * (we - ws));
"""


@functools.lru_cache(maxsize=None)
def avg_pool_fwd(big=True):
    return _ek(
        f"raw T x, {_GEOM}, int32 include_pad",
        "T y",
        """
        const long long ow = I % OW, oh = (I / OW) % OH, nc = I / (OW * OH);
        const long long base = nc * H * W;
        T s = (T)0;
        for (long long ki = 0; ki < KH; ++ki) {
            const long long ih = oh * SH - PH + ki;
            if (ih < 0 || ih >= H) continue;
            for (long long kj = 0; kj < KW; ++kj) {
                const long long iw = ow * SW - PW + kj;
                if (iw < 0 || iw >= W) continue;
                s += x[base + ih * W + iw];
            }
        }
        """ + _AVG_DIV + """
        y = s / dv;
        """,
        "gradflow_avg_pool_fwd", big)


@functools.lru_cache(maxsize=None)
def avg_pool_bwd(big=True):
    return _ek(
        f"raw T gy, {_GEOM}, int32 include_pad",
        "T dx",
        """
        const long long w = I % W, h = (I / W) % H, nc = I / (W * H);
        T s = (T)0;
        for (long long ki = 0; ki < KH; ++ki) {
            const long long oh = gather_out(h, ki, PH, (long long)1, SH, OH);
            if (oh == -2) break;
            if (oh < 0) continue;
            for (long long kj = 0; kj < KW; ++kj) {
                const long long ow = gather_out(w, kj, PW, (long long)1, SW, OW);
                if (ow == -2) break;
                if (ow < 0) continue;
        """ + _AVG_DIV + """
                s += gy[(nc * OH + oh) * OW + ow] / dv;
            }
        }
        dx = s;
        """,
        "gradflow_avg_pool_bwd", big, _GATHER_PREAMBLE)


# -- softmax cross-entropy --------------------------------------------------------------------
_SXENT_SRC = r"""
template<typename T>
__device__ __forceinline__ T warp_max(T v) {
    for (int o = 16; o > 0; o >>= 1) {
        T u = __shfl_xor_sync(0xffffffffu, v, o);
        v = (u > v || u != u) ? u : v;   // NaN propagates
    }
    return v;
}

template<typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// one warp per row: logp = x - max - log(sum(exp(x - max))), loss = -logp[t]
template<typename T>
__global__ void sxent_fwd(const T* __restrict__ x, const long long* __restrict__ t,
                          T* __restrict__ loss, T* __restrict__ logp,
                          long long N, long long C) {
    const long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row >= N) return;              // whole warps leave together
    const T* xr = x + row * C;
    T* lr = logp + row * C;
    T m = xr[0];
    for (long long j = lane; j < C; j += 32) {
        const T v = xr[j];
        m = (v > m || v != v) ? v : m;
    }
    m = warp_max(m);
    if (!isfinite(m)) m = (T)0;        // as the reference: all -inf rows give NaN, not a crash
    T s = (T)0;
    for (long long j = lane; j < C; j += 32) s += exp(xr[j] - m);
    s = warp_sum(s);
    const T lse = log(s);
    for (long long j = lane; j < C; j += 32) lr[j] = (xr[j] - m) - lse;
    if (lane == 0) loss[row] = -((xr[t[row]] - m) - lse);
}
"""


@functools.lru_cache(maxsize=None)
def _sxent_module():
    return cupy.RawModule(code=_SXENT_SRC, options=("-std=c++14",),
                          name_expressions=("sxent_fwd<float>", "sxent_fwd<double>"))


def sxent_fwd(dtype):
    name = "sxent_fwd<float>" if dtype == cupy.float32 else "sxent_fwd<double>"
    return _sxent_module().get_function(name)


@functools.lru_cache(maxsize=None)
def sxent_bwd(big=True):
    """g = (exp(logp) - onehot(t)) * gl[row]."""
    return _ek(
        "T logp, raw =int64 t, raw T gl, int64 C",
        "T g",
        """
        const long long r = I / C, j = I % C;
        g = (exp(logp) - (j == t[r] ? (T)1 : (T)0)) * gl[r];
        """,
        "gradflow_sxent_bwd", big)


# -- activations ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def relu_bwd():
    # gy * (y > 0), exactly the reference's arithmetic (NaN/Inf in gy behave alike)
    return cupy.ElementwiseKernel("T gy, T y", "T gx", "gx = gy * (T)(y > (T)0)",
                                  "gradflow_relu_bwd")


@functools.lru_cache(maxsize=None)
def bias_relu():
    """y = max(x + b, 0) with b broadcast by the caller (one pass, one output)."""
    return cupy.ElementwiseKernel("T x, T b", "T y",
                                  "const T v = x + b; y = v > (T)0 ? v : (v != v ? v : (T)0)",
                                  "gradflow_bias_relu")


# -- optimizers (in place) --------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def sgd_plain():
    return cupy.ElementwiseKernel(
        "T g, T lr, T wd", "T p",
        """
        T d = g;
        if (wd != (T)0) d += wd * p;
        p -= lr * d;
        """,
        "gradflow_sgd_plain")


@functools.lru_cache(maxsize=None)
def sgd_momentum():
    return cupy.ElementwiseKernel(
        "T g, T lr, T mom, T damp1, T wd, int32 nesterov, int32 first", "T p, T buf",
        """
        T d = g;
        if (wd != (T)0) d += wd * p;
        const T b = first ? d : mom * buf + damp1 * d;
        buf = b;
        p -= lr * (nesterov ? d + mom * b : b);
        """,
        "gradflow_sgd_momentum")


@functools.lru_cache(maxsize=None)
def adam():
    return cupy.ElementwiseKernel(
        "T g, T step_size, T beta1, T beta2, T one_m_b1, T one_m_b2, T sqrt_bc2, T eps, "
        "T wd, int32 decoupled, T decay",
        "T p, T m, T v",
        """
        T gg = g;
        if (wd != (T)0) {
            if (decoupled) p *= decay; else gg += wd * p;
        }
        const T m2 = beta1 * m + one_m_b1 * gg;
        const T v2 = beta2 * v + one_m_b2 * (gg * gg);
        m = m2;
        v = v2;
        p -= step_size * (m2 / (sqrt(v2) / sqrt_bc2 + eps));
        """,
        "gradflow_adam")

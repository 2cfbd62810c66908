/* cx_nn: the neural-network primitives the Mask R-CNN engine (src/mrcnn) is built from: a small
 * thread pool for the non-GEMM work, and float32 ops on activations stored channel-major
 * (C x N x H x W; N = 1 for a feature map, N = number of RoIs in the mask head), all on cblas_sgemm.
 * Nothing here allocates: callers pass output and scratch buffers (a worker's arena). */
#ifndef CX_NN_H
#define CX_NN_H

#include <stddef.h>
#include "cx_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Thread pool: a parallel-for over task indices; 1 thread runs inline. ---- */
typedef struct cx_pool cx_pool;
typedef void (*cx_pool_fn)(void *ctx, int task);
cx_status cx_pool_new(int n_threads, cx_pool **out, cx_error *err);
void cx_pool_free(cx_pool *p);
int cx_pool_threads(const cx_pool *p);
/* Runs fn(ctx, i) for i in [0, n_tasks) on the pool's threads and the caller; returns when all are
 * done. Not reentrant: one run at a time per pool. p == NULL runs inline. */
void cx_pool_run(cx_pool *p, int n_tasks, cx_pool_fn fn, void *ctx);
/* The calling thread's slot in the pool running the current task: 0 for the thread that called
 * cx_pool_run (or any non-worker thread), 1..threads-1 for the pool's workers. A task indexes its
 * per-thread scratch with it. */
int cx_pool_slot(void);
/* Task t of n's even share [*lo, *hi) of [0, total): the split every op uses for its tasks. */
static inline void cx_pool_range(int total, int t, int n, int *lo, int *hi)
{
    *lo = (int)((long)total * t / n);
    *hi = (int)((long)total * (t + 1) / n);
}

/* Sets OpenBLAS to one thread (process-wide: every op here splits its GEMMs over our own pool) and
 * returns the kernel name ("Haswell", ...). */
const char *cx_nn_blas_setup(void);
const char *cx_nn_blas_corename(void);

/* ---- Convolution (groups = 1). Weights are [cout][cin][kh][kw], bias [cout] (may be NULL). ---- */
typedef struct cx_conv {
    int cin, cout, kh, kw, stride, pad, dil;
    const float *w, *b;
    /* Optional Winograd form (cx_winograd.h) of a 3x3 stride-1 conv: U for F(wino_m x wino_m, 3x3).
     * When set, cx_conv2d uses it wherever the output has enough tiles to keep the GEMMs wide. */
    const float *wino;
    int wino_m;
} cx_conv;

static inline int cx_conv_out(int in, int k, int stride, int pad, int dil)
{
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/* out[cout][n][oh][ow] = conv(in[cin][n][h][w]) + b (+ add, same layout as out) (then ReLU if relu).
 * scratch: at least cx_conv_scratch_floats() floats (one im2col tile per pool thread; 0 for 1x1
 * stride 1 pad 0).
 * out must not alias in; add may alias out only if it IS out (accumulate). */
size_t cx_conv_scratch_floats(const cx_pool *pool, const cx_conv *c, int n, int h, int w);
void cx_conv2d(cx_pool *pool, const cx_conv *c, const float *in, int n, int h, int w, float *out,
               const float *add, int relu, float *scratch);

/* Transposed conv 2x2 stride 2 pad 0 (MaskRCNNPredictor.conv5_mask): w is [cin][cout][2][2].
 * in [cin][n][h][w] -> out [cout][n][2h][2w]; scratch: 4*cout*n*h*w floats. */
void cx_deconv2x2(cx_pool *pool, int cin, int cout, const float *w, const float *b, const float *in,
                  int n, int h, int wd, float *out, int relu, float *scratch);

/* Max pool (k, stride, pad; padding never wins; NaN wins) over [c][h][w]. scratch: NULL, or
 * cx_pool_threads(pool) * w floats for the fast 3x3 stride-2 pad-1 path (the stem's pool). */
void cx_maxpool2d(cx_pool *pool, const float *in, int c, int h, int w, int k, int stride, int pad,
                  float *out, int oh, int ow, float *scratch);

/* out[c][oh][ow] += nearest-resize(src[c][h][w]) with PyTorch's "nearest" index rule. */
void cx_upsample_nearest_add(cx_pool *pool, float *out, int c, int oh, int ow, const float *src,
                             int h, int w);

/* y[n][out] = x[n][in] * W^T + b, W is [out][in] (torch.nn.Linear); ReLU if relu. */
void cx_linear(cx_pool *pool, const float *x, int n, int in, const float *w, const float *b, int out, float *y,
               int relu);

float cx_sigmoidf(float x);
/* In-place softmax of each of n rows of length k. */
void cx_softmax_rows(float *x, int n, int k);

/* Bilinear resize, align_corners = False, PyTorch's CPU rule (source index clamped at 0, scale =
 * in/out). One plane [h][w] -> [oh][ow]. PyTorch has two kernels whose rounding differs: the
 * channels-last one (taken for 1-channel tensors, which are also channels-last contiguous)
 * weights the 4 neighbours by products of the 1-D weights; the generic one interpolates along x,
 * then y. one_channel selects the former. */
void cx_resize_bilinear(const float *in, int h, int w, float *out, int oh, int ow, int one_channel);
/* One output index o of a half-pixel-centred bilinear resize along a side of `in` samples, scale
 * = in / out (as PyTorch computes it, in float): the two source indices and their weights. Shared
 * with the mask paste (cx_mrcnn), which is PyTorch's interpolate too. */
void cx_bilinear_index(int o, int in, float scale, int *i0, int *i1, float *l0, float *l1);

#ifdef __cplusplus
}
#endif
#endif

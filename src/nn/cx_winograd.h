/* cx_winograd: 3x3 stride-1 convolution by Winograd's minimal filtering (Lavin & Gray 2015, "Fast
 * Algorithms for Convolutional Neural Networks"), F(m x m, 3x3) with m = 2 (4x4 input tiles, 16
 * GEMMs) or m = 4 (6x6 input tiles, 36 GEMMs). Same activation layout and semantics as cx_conv2d
 * ([C][N][H][W], weights [cout][cin][3][3]); the weights are transformed once (at model load) into
 * U, the activations tile by tile inside the call. Nothing here allocates. */
#ifndef CX_WINOGRAD_H
#define CX_WINOGRAD_H

#include <stddef.h>

#include "cx_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when c is a 3x3 kernel with stride 1, dilation 1 and pad 0..2 (what cx_conv2d_wino computes). */
int cx_wino_eligible(const cx_conv *c);

/* Floats of the transformed weights U for F(m x m, 3x3): (m+2)^2 * cout * cin. */
size_t cx_wino_weights_floats(int m, int cin, int cout);

/* U = G g G^T for every (cout, cin) pair of c->w, computed in double; U is laid out [(m+2)^2][cout][cin]
 * (one row-major cout x cin GEMM operand per tile position). c->b is not used (bias is applied in
 * cx_conv2d_wino from c->b). */
void cx_wino_transform_weights(int m, const cx_conv *c, float *U);

/* Floats of scratch cx_conv2d_wino needs for this call with this pool (all threads' tile buffers;
 * depends on the pool's thread count, the shape and cx_wino_set_chunk). 0 when the output is empty. */
size_t cx_wino_scratch_floats(const cx_pool *pool, int m, const cx_conv *c, int n, int h, int w);

/* out[cout][n][oh][ow] = conv3x3(in[cin][n][h][w]) + c->b (+ add) (then ReLU if relu), exactly as
 * cx_conv2d, with U from cx_wino_transform_weights(m, c, U) (same m). c must be eligible; c->w is
 * not read. Runs single-threaded cblas_sgemm calls from the pool's threads: OpenBLAS must be set
 * to 1 thread (cx_nn_blas_setup) when the pool has more than one. out must not alias in; add may
 * alias out only if it IS out. scratch: cx_wino_scratch_floats(pool, m, c, n, h, w) floats,
 * computed with the same pool. Results differ from cx_conv2d by rounding only: max|diff| /
 * max|out| is under 1e-6 for m = 2 and 1e-5 .. 2e-5 for m = 4 at 256 channels (bench/cx_bench_wino). */
void cx_conv2d_wino(cx_pool *pool, int m, const cx_conv *c, const float *U, const float *in, int n,
                    int h, int w, float *out, const float *add, int relu, float *scratch);

/* Tiles per task chunk (tuning/benchmark knob, process-wide; 0 = automatic, the default). Must not
 * change between cx_wino_scratch_floats and the cx_conv2d_wino call it sizes. */
void cx_wino_set_chunk(int tiles);

#ifdef __cplusplus
}
#endif
#endif

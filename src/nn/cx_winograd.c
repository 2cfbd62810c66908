/* cx_winograd: F(m x m, 3x3) convolution, m = 2 or 4 (Lavin & Gray 2015). With t = m + 2 and
 * K = t * t, each m x m block of outputs of one image ("tile") reads a t x t input patch d and is
 *     Y = A^T [ sum_ci (G g G^T)[co][ci] .* (B^T d[ci] B) ] A,
 * so, with U[k][co][ci] = (G g G^T) at position k (precomputed) and V[k][ci][tile] = (B^T d B) at k,
 * the whole conv is K independent GEMMs M[k] = U[k] (cout x cin) * V[k] (cin x tiles) plus cheap
 * transforms. Tiles of all n images are numbered together and cut into chunks of Tc; one pool task
 * handles one chunk end to end (input transform -> K single-threaded sgemms per block of 64 output
 * channels -> output transform, bias, add, ReLU) in its thread's scratch, so the threads never
 * synchronise inside a conv. sgemm repacks its U operand on every call, i.e. all of U once per
 * chunk, so chunks are as wide as a 6 MB/thread budget allows (measured: Tc 128 is up to 30% faster
 * than 32 at 256 channels). When there are few tiles and U is large (cin * cout >= 192^2) and
 * everything fits the threads' budgets together, the conv runs instead as one "whole" job in
 * three parallel phases (input transform by channel ranges, the K x cout-block GEMMs, output
 * transform by channel ranges) on shared V and M, so U is packed once per call.
 * The transforms work on WL tiles at once with the tile index innermost (plain loops that the
 * compiler vectorises). Tiles that overhang the output are computed on zero-padded input and only
 * their valid pixels are written. c->w is never read (only U, c->b and the shape). */
#include <config.h>

#include <cblas.h>
#include <string.h>

#include "cx_winograd.h"

#define WL 8                      /* tiles transformed together (vector lanes) */
#define TC_MIN 32                 /* smallest automatic chunk (narrower GEMMs lose efficiency) */
#define TC_MAX 256                /* largest automatic chunk */
#define TC_CAP 1024               /* largest chunk at all (cx_wino_set_chunk) */
#ifndef THREAD_FLOATS
#define THREAD_FLOATS ((size_t)6 << 18)   /* V + M budget per thread: 6 MB */
#endif
#ifndef COUT_BLOCK
#define COUT_BLOCK 64             /* output channels per GEMM + output transform pass */
#endif
#ifndef TC_BAL
#define TC_BAL 64                 /* chunks narrower than this are not made for balance alone */
#endif
#define CHUNKS_PER_THREAD 4
#define WHOLE_MIN_CC (192L * 192)  /* cin * cout from which few tiles run as one whole-conv job */

static int chunk_override;

void cx_wino_set_chunk(int tiles)
{
    chunk_override = tiles < 0 ? 0 : (tiles > TC_CAP ? TC_CAP : tiles);
}

int cx_wino_eligible(const cx_conv *c)
{
    return c->kh == 3 && c->kw == 3 && c->stride == 1 && c->dil == 1 && c->pad >= 0 && c->pad <= 2;
}

size_t cx_wino_weights_floats(int m, int cin, int cout)
{
    size_t t = (size_t)m + 2;
    return t * t * (size_t)cout * (size_t)cin;
}

/* ---- Weight transform U = G g G^T (double precision, rounded once). ---- */

static const double G2[4][3] = {
    {1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double G4[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1}};

void cx_wino_transform_weights(int m, const cx_conv *c, float *U)
{
    int t = m + 2;
    const double(*G)[3] = m == 2 ? G2 : G4;
    size_t plane = (size_t)c->cout * c->cin;
    for (int o = 0; o < c->cout; o++) {
        for (int ci = 0; ci < c->cin; ci++) {
            const float *g = c->w + ((size_t)o * c->cin + ci) * 9;
            double tmp[6][3];
            for (int i = 0; i < t; i++)
                for (int j = 0; j < 3; j++)
                    tmp[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
            float *u = U + (size_t)o * c->cin + ci;
            for (int i = 0; i < t; i++)
                for (int j = 0; j < t; j++)
                    u[(size_t)(i * t + j) * plane] =
                        (float)(tmp[i][0] * G[j][0] + tmp[i][1] * G[j][1] + tmp[i][2] * G[j][2]);
        }
    }
}

/* ---- 1-D transforms (B^T z for input columns/rows, A^T s for output). ---- */

static inline void bt4(const float z[4], float o[4])
{
    o[0] = z[0] - z[2];
    o[1] = z[1] + z[2];
    o[2] = z[2] - z[1];
    o[3] = z[1] - z[3];
}

static inline void bt6(const float z[6], float o[6])
{
    float p = z[4] - 4.0f * z[2], q = z[3] - 4.0f * z[1];
    float r = z[4] - z[2], s = 2.0f * (z[3] - z[1]);
    o[0] = 4.0f * z[0] - 5.0f * z[2] + z[4];
    o[1] = p + q;
    o[2] = p - q;
    o[3] = r + s;
    o[4] = r - s;
    o[5] = 4.0f * z[1] - 5.0f * z[3] + z[5];
}

static inline void at4(const float s[4], float y[2])
{
    y[0] = s[0] + s[1] + s[2];
    y[1] = s[1] - s[2] - s[3];
}

static inline void at6(const float s[6], float y[4])
{
    float a = s[1] + s[2], b = s[1] - s[2], c = s[3] + s[4], d = s[3] - s[4];
    y[0] = s[0] + a + c;
    y[1] = b + 2.0f * d;
    y[2] = a + 4.0f * c;
    y[3] = b + 8.0f * d + s[5];
}

/* v = B^T d B for WL tiles; d and v are [t*t][WL] (row-major t x t per lane). */
static void in_tf2(const float (*restrict d)[WL], float (*restrict v)[WL])
{
    float tmp[16][WL];
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < WL; l++) {
            float z[4] = {d[c][l], d[4 + c][l], d[8 + c][l], d[12 + c][l]}, o[4];
            bt4(z, o);
            for (int i = 0; i < 4; i++)
                tmp[4 * i + c][l] = o[i];
        }
    for (int r = 0; r < 4; r++)
        for (int l = 0; l < WL; l++) {
            float z[4] = {tmp[4 * r][l], tmp[4 * r + 1][l], tmp[4 * r + 2][l], tmp[4 * r + 3][l]}, o[4];
            bt4(z, o);
            for (int i = 0; i < 4; i++)
                v[4 * r + i][l] = o[i];
        }
}

static void in_tf4(const float (*restrict d)[WL], float (*restrict v)[WL])
{
    float tmp[36][WL];
    for (int c = 0; c < 6; c++)
        for (int l = 0; l < WL; l++) {
            float z[6], o[6];
            for (int i = 0; i < 6; i++)
                z[i] = d[6 * i + c][l];
            bt6(z, o);
            for (int i = 0; i < 6; i++)
                tmp[6 * i + c][l] = o[i];
        }
    for (int r = 0; r < 6; r++)
        for (int l = 0; l < WL; l++) {
            float z[6], o[6];
            for (int i = 0; i < 6; i++)
                z[i] = tmp[6 * r + i][l];
            bt6(z, o);
            for (int i = 0; i < 6; i++)
                v[6 * r + i][l] = o[i];
        }
}

/* y = A^T s A (+ bias) for WL tiles; s is [t*t][WL], y is [m*m][WL]. */
static void out_tf2(const float (*restrict s)[WL], float bias, float (*restrict y)[WL])
{
    float tmp[8][WL];
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < WL; l++) {
            float z[4] = {s[c][l], s[4 + c][l], s[8 + c][l], s[12 + c][l]}, o[2];
            at4(z, o);
            tmp[c][l] = o[0];
            tmp[4 + c][l] = o[1];
        }
    for (int r = 0; r < 2; r++)
        for (int l = 0; l < WL; l++) {
            float z[4] = {tmp[4 * r][l], tmp[4 * r + 1][l], tmp[4 * r + 2][l], tmp[4 * r + 3][l]}, o[2];
            at4(z, o);
            y[2 * r][l] = o[0] + bias;
            y[2 * r + 1][l] = o[1] + bias;
        }
}

static void out_tf4(const float (*restrict s)[WL], float bias, float (*restrict y)[WL])
{
    float tmp[24][WL];
    for (int c = 0; c < 6; c++)
        for (int l = 0; l < WL; l++) {
            float z[6], o[4];
            for (int i = 0; i < 6; i++)
                z[i] = s[6 * i + c][l];
            at6(z, o);
            for (int i = 0; i < 4; i++)
                tmp[6 * i + c][l] = o[i];
        }
    for (int r = 0; r < 4; r++)
        for (int l = 0; l < WL; l++) {
            float z[6], o[4];
            for (int i = 0; i < 6; i++)
                z[i] = tmp[6 * r + i][l];
            at6(z, o);
            for (int i = 0; i < 4; i++)
                y[4 * r + i][l] = o[i] + bias;
        }
}

/* ---- Chunking and scratch. ---- */

typedef struct wino_plan {
    int t, K, oh, ow, tiles_y, tiles_x, tc, n_chunks, cob;
    int whole;           /* 1: all tiles at once in shared V and M, three parallel phases */
    long T;
    size_t vk, mk;       /* floats between the K planes of V and of M (padded: no cache-set aliasing) */
    size_t per_thread;   /* floats of V + M for one thread, rounded to 64 bytes */
} wino_plan;

static long round_up(long x, long q)
{
    return (x + q - 1) / q * q;
}

static wino_plan make_plan(int threads, int m, const cx_conv *c, int n, int h, int w)
{
    wino_plan p;
    memset(&p, 0, sizeof p);
    p.t = m + 2;
    p.K = p.t * p.t;
    p.oh = cx_conv_out(h, 3, 1, c->pad, 1);
    p.ow = cx_conv_out(w, 3, 1, c->pad, 1);
    if (p.oh <= 0 || p.ow <= 0 || n <= 0)
        return p;
    p.tiles_y = (p.oh + m - 1) / m;
    p.tiles_x = (p.ow + m - 1) / m;
    p.T = (long)n * p.tiles_y * p.tiles_x;
    p.cob = c->cout <= COUT_BLOCK * 3 / 2 ? c->cout : COUT_BLOCK;
    long tc;
    if (chunk_override > 0) {
        tc = round_up(chunk_override, WL);
    } else {
        /* Every chunk repacks all of U inside sgemm, once per chunk: the widest chunk that fits
         * the budget, then as many chunks as a multiple of the threads (equal shares), and more
         * (up to CHUNKS_PER_THREAD each) only while they stay TC_BAL tiles wide. */
        size_t per_tile = (size_t)p.K * ((size_t)c->cin + p.cob);
        long tmax = (long)(THREAD_FLOATS / per_tile) / WL * WL;
        tmax = tmax < TC_MIN ? TC_MIN : (tmax > TC_MAX ? TC_MAX : tmax);
        long chunks = (p.T + tmax - 1) / tmax;
        if (threads > 1) {
            long bal = p.T / TC_BAL;
            if (bal > (long)CHUNKS_PER_THREAD * threads)
                bal = (long)CHUNKS_PER_THREAD * threads;
            if (chunks < bal)
                chunks = bal;
            chunks = round_up(chunks, threads);
        }
        tc = round_up((p.T + chunks - 1) / chunks, WL);
    }
    long tr = round_up(p.T, WL);
    if (tc > tr)
        tc = tr;
    if (threads > 1 && !chunk_override && tc < tr && tr <= TC_CAP && (long)c->cin * c->cout >= WHOLE_MIN_CC &&
        (size_t)p.K * ((size_t)c->cin + c->cout) * (size_t)tr <= THREAD_FLOATS * (size_t)threads) {
        /* The whole conv fits the threads' budgets together: no chunks, so U is packed once, not
         * once per chunk. Pays where U is large (measured: 2x at 512 channels, 1.2-1.7x at 256);
         * at 128 channels cache-sized chunks were faster. */
        p.whole = 1;
        p.tc = (int)tr;
        p.n_chunks = 1;
        p.vk = (size_t)c->cin * tr + 16;
        p.mk = (size_t)c->cout * tr + 16;
        p.per_thread = (size_t)round_up((long)((size_t)p.K * (p.vk + p.mk)), 16);
        return p;
    }
    p.tc = (int)tc;
    p.n_chunks = (int)((p.T + tc - 1) / tc);
    /* a power-of-two plane stride would put all K planes of a tile in one cache set */
    p.vk = (size_t)c->cin * tc + 16;
    p.mk = (size_t)p.cob * tc + 16;
    p.per_thread = (size_t)round_up((long)((size_t)p.K * (p.vk + p.mk)), 16);
    return p;
}

size_t cx_wino_scratch_floats(const cx_pool *pool, int m, const cx_conv *c, int n, int h, int w)
{
    int threads = cx_pool_threads(pool);
    wino_plan p = make_plan(threads, m, c, n, h, w);
    return p.whole ? p.per_thread : p.per_thread * (size_t)threads;
}

/* ---- The conv. ---- */

typedef struct wino_job {
    const cx_conv *c;
    const float *U, *in, *add;
    float *out, *scratch;
    int m, n, h, w, relu;
    wino_plan p;
} wino_job;

/* Input transform of one chunk: V[k][ci][i] for tiles i < ncr (lanes past the chunk are zero). */
static void input_chunk(const wino_job *j, const int *tn, const int *ty0, const int *tx0, int ncr, int c0, int c1,
                        float *V)
{
    const cx_conv *c = j->c;
    const int t = j->p.t, K = j->p.K, tc = j->p.tc, h = j->h, w = j->w, pad = c->pad;
    const size_t hw = (size_t)h * w, vk = j->p.vk;
    float d[36][WL], v[36][WL];
    for (int ci = c0; ci < c1; ci++) {
        const float *plane = j->in + (size_t)ci * j->n * hw;
        for (int g = 0; g < ncr; g += WL) {
            for (int l = 0; l < WL; l++) {
                int i = g + l;
                if (tn[i] < 0) {
                    for (int k = 0; k < K; k++)
                        d[k][l] = 0.0f;
                    continue;
                }
                const float *src = plane + (size_t)tn[i] * hw;
                int y0 = ty0[i] - pad, x0 = tx0[i] - pad;
                if (y0 >= 0 && x0 >= 0 && y0 + t <= h && x0 + t <= w) {
                    const float *s = src + (size_t)y0 * w + x0;
                    if (t == 4) {
#pragma GCC unroll 4
                        for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
                            for (int q = 0; q < 4; q++)
                                d[r * 4 + q][l] = s[(size_t)r * w + q];
                    } else {
#pragma GCC unroll 6
                        for (int r = 0; r < 6; r++)
#pragma GCC unroll 6
                            for (int q = 0; q < 6; q++)
                                d[r * 6 + q][l] = s[(size_t)r * w + q];
                    }
                } else {
                    /* border tile: zeros, then the window that lies inside the image */
                    int r0 = y0 < 0 ? -y0 : 0, r1 = h - y0 < t ? h - y0 : t;
                    int q0 = x0 < 0 ? -x0 : 0, q1 = w - x0 < t ? w - x0 : t;
                    for (int k = 0; k < K; k++)
                        d[k][l] = 0.0f;
                    for (int r = r0; r < r1; r++) {
                        const float *row = src + (size_t)(y0 + r) * w;
                        for (int q = q0; q < q1; q++)
                            d[r * t + q][l] = row[x0 + q];
                    }
                }
            }
            if (t == 4)
                in_tf2((const float(*)[WL])d, v);
            else
                in_tf4((const float(*)[WL])d, v);
            float *dst = V + (size_t)ci * tc + g;
            for (int k = 0; k < K; k++)
                memcpy(dst + (size_t)k * vk, v[k], sizeof v[k]);
        }
    }
}

/* Writes lane l of y (m x m, bias included) to dst (row stride ow): + add, ReLU, rows x cols valid. */
static inline void emit(float *dst, const float *a, size_t ow, const float (*restrict y)[WL], int l, int m,
                        int rows, int cols, int relu)
{
    if (rows == m && cols == m && !a) {
        /* ReLU without add was applied to y already */
        if (m == 2) {
            dst[0] = y[0][l], dst[1] = y[1][l];
            dst[ow] = y[2][l], dst[ow + 1] = y[3][l];
        } else {
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++)
                    dst[(size_t)r * ow + q] = y[r * 4 + q][l];
        }
        return;
    }
    for (int r = 0; r < rows; r++) {
        for (int q = 0; q < cols; q++) {
            float val = y[r * m + q][l];
            if (a) {
                val += a[(size_t)r * ow + q];
                if (relu && val < 0.0f)
                    val = 0.0f;
            }
            dst[(size_t)r * ow + q] = val;
        }
    }
}

/* Output transform of one chunk from M[k][co][i]: bias, add, ReLU, valid pixels only. */
static void output_chunk(const wino_job *j, const int *tn, const int *ty0, const int *tx0, int ncr, int o0, int o1,
                         const float *M)
{
    const cx_conv *c = j->c;
    const int m = j->m, K = j->p.K, tc = j->p.tc, oh = j->p.oh, ow = j->p.ow, n = j->n, relu = j->relu;
    const size_t ohw = (size_t)oh * ow, mk = j->p.mk;
    float *const out = j->out;
    const float *const add = j->add;
    float s[36][WL], y[16][WL];
    for (int o = o0; o < o1; o++) {
        float bias = c->b ? c->b[o] : 0.0f;
        for (int g = 0; g < ncr; g += WL) {
            const float *src = M + (size_t)(o - o0) * tc + g;
            for (int k = 0; k < K; k++)
                memcpy(s[k], src + (size_t)k * mk, sizeof s[k]);
            if (m == 2)
                out_tf2((const float(*)[WL])s, bias, y);
            else
                out_tf4((const float(*)[WL])s, bias, y);
            if (relu && !add)
                for (int k = 0; k < m * m; k++)
                    for (int l = 0; l < WL; l++)
                        y[k][l] = y[k][l] > 0.0f ? y[k][l] : 0.0f;
            for (int l = 0; l < WL; l++) {
                int i = g + l;
                if (tn[i] < 0)
                    break;
                size_t off = ((size_t)o * n + tn[i]) * ohw + (size_t)ty0[i] * ow + tx0[i];
                int rows = oh - ty0[i] < m ? oh - ty0[i] : m, cols = ow - tx0[i] < m ? ow - tx0[i] : m;
                emit(out + off, add ? add + off : NULL, (size_t)ow, (const float(*)[WL])y, l, m, rows, cols, relu);
            }
        }
    }
}

/* Coordinates of tiles t0 .. t0+ncr-1 (image, first output row and column); -1 past the last tile. */
static void tile_coords(const wino_job *j, long t0, int ncr, int *tn, int *ty0, int *tx0)
{
    int m = j->m, per_img = j->p.tiles_y * j->p.tiles_x;
    for (int i = 0; i < ncr; i++) {
        long idx = t0 + i;
        if (idx >= j->p.T) {
            tn[i] = -1;
            continue;
        }
        int rem = (int)(idx % per_img);
        tn[i] = (int)(idx / per_img);
        ty0[i] = rem / j->p.tiles_x * m;
        tx0[i] = rem % j->p.tiles_x * m;
    }
}

/* Chunked mode: one task = one chunk of tiles, end to end, in its thread's scratch. */
static void wino_task(void *ctx, int task)
{
    const wino_job *j = ctx;
    const cx_conv *c = j->c;
    int tc = j->p.tc, K = j->p.K;
    float *V = j->scratch + (size_t)cx_pool_slot() * j->p.per_thread;
    float *M = V + (size_t)K * j->p.vk;
    long t0 = (long)task * tc;
    int nc = j->p.T - t0 < tc ? (int)(j->p.T - t0) : tc;
    int ncr = (int)round_up(nc, WL);
    int tn[TC_CAP], ty0[TC_CAP], tx0[TC_CAP];
    tile_coords(j, t0, ncr, tn, ty0, tx0);
    input_chunk(j, tn, ty0, tx0, ncr, 0, c->cin, V);
    for (int o0 = 0; o0 < c->cout; o0 += j->p.cob) {
        int nco = c->cout - o0 < j->p.cob ? c->cout - o0 : j->p.cob;
        for (int k = 0; k < K; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nco, ncr, c->cin, 1.0f,
                        j->U + ((size_t)k * c->cout + o0) * c->cin, c->cin, V + (size_t)k * j->p.vk, tc, 0.0f,
                        M + (size_t)k * j->p.mk, tc);
        output_chunk(j, tn, ty0, tx0, ncr, o0, o0 + nco, M);
    }
}

/* Whole mode (few tiles): V and M for all tiles are shared; phase 1 splits the input transform by
 * input channels, phase 2 runs the K x (cout blocks) GEMMs (each U block packed once per call, not
 * once per chunk), phase 3 splits the output transform by output channels. */
typedef struct whole_job {
    const wino_job *j;
    int n_tasks, phase;
} whole_job;

static void whole_task(void *ctx, int task)
{
    const whole_job *wj = ctx;
    const wino_job *j = wj->j;
    const cx_conv *c = j->c;
    int tc = j->p.tc, K = j->p.K;
    float *V = j->scratch, *M = V + (size_t)K * j->p.vk;
    if (wj->phase == 2) {
        int nob = (c->cout + j->p.cob - 1) / j->p.cob;
        int k = task / nob, o0 = task % nob * j->p.cob;
        int nco = c->cout - o0 < j->p.cob ? c->cout - o0 : j->p.cob;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nco, tc, c->cin, 1.0f,
                    j->U + ((size_t)k * c->cout + o0) * c->cin, c->cin, V + (size_t)k * j->p.vk, tc, 0.0f,
                    M + (size_t)k * j->p.mk + (size_t)o0 * tc, tc);
        return;
    }
    int tn[TC_CAP], ty0[TC_CAP], tx0[TC_CAP];
    tile_coords(j, 0, tc, tn, ty0, tx0);
    int nch = wj->phase == 1 ? c->cin : c->cout;
    int a = (int)((long)nch * task / wj->n_tasks), b = (int)((long)nch * (task + 1) / wj->n_tasks);
    if (a >= b)
        return;
    if (wj->phase == 1)
        input_chunk(j, tn, ty0, tx0, tc, a, b, V);
    else
        output_chunk(j, tn, ty0, tx0, tc, a, b, M + (size_t)a * tc);
}

void cx_conv2d_wino(cx_pool *pool, int m, const cx_conv *c, const float *U, const float *in, int n,
                    int h, int w, float *out, const float *add, int relu, float *scratch)
{
    wino_job j;
    j.p = make_plan(cx_pool_threads(pool), m, c, n, h, w);
    if (j.p.T <= 0)
        return;
    j.c = c;
    j.U = U;
    j.in = in;
    j.add = add;
    j.out = out;
    j.scratch = scratch;
    j.m = m;
    j.n = n;
    j.h = h;
    j.w = w;
    j.relu = relu;
    if (!j.p.whole) {
        cx_pool_run(pool, j.p.n_chunks, wino_task, &j);
        return;
    }
    int threads = cx_pool_threads(pool);
    whole_job wj = {&j, 4 * threads, 1};
    cx_pool_run(pool, wj.n_tasks, whole_task, &wj);
    wj.phase = 2;
    wj.n_tasks = j.p.K * ((c->cout + j.p.cob - 1) / j.p.cob);
    cx_pool_run(pool, wj.n_tasks, whole_task, &wj);
    wj.phase = 3;
    wj.n_tasks = 4 * threads;
    cx_pool_run(pool, wj.n_tasks, whole_task, &wj);
}

/* cx_winograd: F(m x m, 3x3) convolution, m = 2 or 4 (Lavin & Gray 2015). With t = m + 2 and
 * K = t * t, each m x m block of outputs of one image ("tile") reads a t x t input patch d and is
 *     Y = A^T [ sum_ci (G g G^T)[co][ci] .* (B^T d[ci] B) ] A,
 * so, with U[k][co][ci] = (G g G^T) at position k (precomputed) and V[k][ci][tile] = (B^T d B) at k,
 * the whole conv is K independent GEMMs M[k] = U[k] (cout x cin) * V[k] (cin x tiles) plus cheap
 * transforms. Tiles of all n images are numbered together and cut into chunks of Tc; one pool task
 * handles one chunk end to end (input transform -> K single-threaded sgemms per block of cob output
 * channels -> output transform, bias, add, ReLU) in its thread's scratch, so the threads never
 * synchronise inside a conv. OpenBLAS's packed sgemm would repack all of U once per chunk (and V
 * once per block of output channels); instead, blocks of 32 output channels and chunks of at most
 * 64 tiles (and cob * Tc * cin <= 1e6) keep every GEMM on its small-matrix kernel, which packs
 * nothing (measured 1.2-1.4x faster at 256 channels than 64-channel blocks of 128-tile chunks).
 * When there are few tiles and U is large (cin * cout >= 192^2) and
 * everything fits the threads' budgets together, the conv runs instead as one "whole" job in
 * three parallel phases (input transform by channel ranges, the K x cout-block GEMMs, output
 * transform by channel ranges) on shared V and M, so U is packed once per call.
 * The transforms work on groups of WL tiles with the tile index innermost (plain loops that the
 * compiler vectorises; compiled for AVX-512F, AVX2 and the baseline, same bits). A group is cut
 * into segments, runs of tiles along one tile row: the input rows of a segment are copied
 * contiguously (no per-tile gather), transformed along the columns, then along the rows across
 * lanes (stride-m loads from L1); the output transform ends with the m x m blocks of a segment
 * interleaved into contiguous output rows. Tiles that overhang the image are computed on
 * zero-padded input and only their valid pixels are written. c->w is never read (only U, c->b
 * and the shape). */
#include <config.h>

#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

#include "cx_winograd.h"

#define WL 16                     /* tiles transformed together (vector lanes) */
#define TC_MIN 16                 /* smallest automatic chunk */
#define TC_MAX 64                 /* largest automatic chunk */
#define TC_CAP 1024               /* largest chunk at all (cx_wino_set_chunk) */
#ifndef THREAD_FLOATS
#define THREAD_FLOATS ((size_t)6 << 18)   /* V + M budget per thread: 6 MB */
#endif
#ifndef COUT_BLOCK
#define COUT_BLOCK 32             /* output channels per GEMM + output transform pass */
#endif
#ifndef SMALL_MNK
/* OpenBLAS (0.3.x, SkylakeX/Cooperlake kernels, also picked on Zen 4) multiplies small matrices
 * (m * n * k <= 1e6, n = 8, 16 or 32 in its column-major view, i.e. our cob) with a kernel that
 * packs neither operand; chunks are cut to stay within it. Elsewhere the GEMMs are just a little
 * narrower than they could be. */
#define SMALL_MNK 1000000L
#endif
#ifndef TC_BAL
#define TC_BAL 64                 /* chunks narrower than this are not made for balance alone */
#endif
#define CHUNKS_PER_THREAD 4
#define WHOLE_MIN_CC (192L * 192)  /* cin * cout from which few tiles run as one whole-conv job */

#define CX_ALWAYS_INLINE inline __attribute__((always_inline))

/* The transforms are compiled for AVX-512F and AVX2 as well as the baseline, picked at load time
 * (GNU ifunc). They only add, subtract and multiply elementwise, and ISO C mode keeps the compiler
 * from contracting into FMA (-ffp-contract=off), so every variant gives the same bits. */
#if !defined(CX_WINO_CLONES) && defined(__x86_64__) && defined(__gnu_linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CX_WINO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef CX_WINO_CLONES
#define CX_WINO_CLONES
#endif

static atomic_int chunk_override; /* set by tests and benchmarks while engines may run */

void cx_wino_set_chunk(int tiles)
{
    atomic_store_explicit(&chunk_override, tiles < 0 ? 0 : (tiles > TC_CAP ? TC_CAP : tiles), memory_order_relaxed);
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
    int forced = atomic_load_explicit(&chunk_override, memory_order_relaxed);
    if (forced > 0) {
        tc = round_up(forced, WL);
    } else {
        /* The widest chunk that fits the budget and OpenBLAS's small-matrix kernel (up to
         * TC_MAX), then as many chunks as a multiple of the threads (equal shares), and more (up
         * to CHUNKS_PER_THREAD each) only while they stay TC_BAL tiles wide. */
        size_t per_tile = (size_t)p.K * ((size_t)c->cin + p.cob);
        long tmax = (long)(THREAD_FLOATS / per_tile) / WL * WL;
        long tsmall = SMALL_MNK / ((long)p.cob * c->cin) / WL * WL;
        if (tmax > tsmall)
            tmax = tsmall;
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
    if (threads > 1 && !forced && tc < tr && tr <= TC_CAP && (long)c->cin * c->cout >= WHOLE_MIN_CC &&
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

/* A run of consecutive tiles of one tile row of one image, inside one group of WL lanes: chunk
 * lanes i0 .. i0 + len - 1, whose output origins are (ty0, tx0), (ty0, tx0 + m), ... */
typedef struct wino_seg {
    int i0, len, img, ty0, tx0;
} wino_seg;

/* Cuts the ncr (a multiple of WL) tiles of a chunk into segments that never cross a group of WL
 * lanes; group g's are sg[gs[g / WL]] .. sg[gs[g / WL + 1] - 1]. Lanes past the last tile are in none. */
static void make_segs(int m, const int *tn, const int *ty0, const int *tx0, int ncr, wino_seg *sg, int *gs)
{
    int ns = 0;
    for (int g = 0; g < ncr; g += WL) {
        gs[g / WL] = ns;
        for (int i = g; i < g + WL && tn[i] >= 0; i++) {
            if (i > g && tn[i] == tn[i - 1] && ty0[i] == ty0[i - 1] && tx0[i] == tx0[i - 1] + m)
                sg[ns - 1].len++;
            else
                sg[ns++] = (wino_seg){i, 1, tn[i], ty0[i], tx0[i]};
        }
    }
    gs[ncr / WL] = ns;
}

/* 1 when the segments of the group starting at lane g cover all its WL lanes */
static int group_full(const wino_seg *sg, const int *gs, int g)
{
    int s1 = gs[g / WL + 1];
    return s1 > gs[g / WL] && sg[s1 - 1].i0 + sg[s1 - 1].len == g + WL;
}

/* ---- The transforms. The 1-D ones, spelt out with scalars in the loops below (gcc 12 leaves
 * the loops scalar when they go through small arrays):
 *   B^T z, t = 4: z0 - z2, z1 + z2, z2 - z1, z1 - z3
 *   B^T z, t = 6: 4 z0 - 5 z2 + z4, p + q, p - q, r + s, r - s, 4 z1 - 5 z3 + z5
 *                 with p = z4 - 4 z2, q = z3 - 4 z1, r = z4 - z2, s = 2 (z3 - z1)
 *   A^T s, m = 2: s0 + s1 + s2, s1 - s2 - s3
 *   A^T s, m = 4: s0 + a + c, b + 2 d, a + 4 c, b + 8 d + s5
 *                 with a = s1 + s2, b = s1 - s2, c = s3 + s4, d = s3 - s4 ---- */

/* out[.][x] = B^T (in[0][x] .. in[t-1][x]) for x < nx (spelt out per m with scalars: with the 1-D
 * transform on arrays gcc 12 leaves the t = 6 loop scalar). */
static CX_ALWAYS_INLINE void bt_cols(const int m, int nx, const float (*restrict in)[4 * WL],
                                     float (*restrict out)[4 * WL])
{
    if (m == 2) {
        for (int x = 0; x < nx; x++) {
            float z0 = in[0][x], z1 = in[1][x], z2 = in[2][x], z3 = in[3][x];
            out[0][x] = z0 - z2;
            out[1][x] = z1 + z2;
            out[2][x] = z2 - z1;
            out[3][x] = z1 - z3;
        }
    } else {
        for (int x = 0; x < nx; x++) {
            float z0 = in[0][x], z1 = in[1][x], z2 = in[2][x], z3 = in[3][x], z4 = in[4][x], z5 = in[5][x];
            float p = z4 - 4.0f * z2, q = z3 - 4.0f * z1;
            float r = z4 - z2, s = 2.0f * (z3 - z1);
            out[0][x] = 4.0f * z0 - 5.0f * z2 + z4;
            out[1][x] = p + q;
            out[2][x] = p - q;
            out[3][x] = r + s;
            out[4][x] = r - s;
            out[5][x] = 4.0f * z1 - 5.0f * z3 + z5;
        }
    }
}

/* dst[k * vk + l] = (B^T d_l B)[k] for the WL lanes l of the group starting at chunk lane g, for
 * one input channel (plane: its [N][h][w]); d_l is lane l's t x t input patch (zero outside the
 * image; lanes in no segment: zero). The patch rows of a segment are copied contiguously: lane l's
 * columns 0 .. m-1 to S[r][m*l ..], its columns m, m+1 (the next lane's 0, 1) to R[r][2*l ..]. The
 * column transform then runs along those rows and the row transform across lanes, with the same
 * operations in the same order as B^T (d B) tile by tile. */
static CX_ALWAYS_INLINE void in_group(const int m, const float *plane, size_t hw, int h, int w, int pad,
                                      const wino_seg *sg, int ns, int g, int full, float *restrict dst, size_t vk)
{
    const int t = m + 2;
    float S[6][4 * WL], R[6][4 * WL], E[6][4 * WL], F[6][4 * WL];   /* R, F: 2 * WL used */
    if (!full) {
        memset(S, 0, sizeof S);
        memset(R, 0, sizeof R);
    }
    for (int si = 0; si < ns; si++) {
        const wino_seg *q = sg + si;
        int l0 = q->i0 - g, len = q->len, nc = m * len;
        int y0 = q->ty0 - pad, x0 = q->tx0 - pad;
        const float *src = plane + (size_t)q->img * hw;
        for (int r = 0; r < t; r++) {
            float *sr = S[r] + m * l0, *rr = R[r] + 2 * l0;
            int y = y0 + r;
            if (y < 0 || y >= h) {
                memset(sr, 0, (size_t)nc * sizeof(float));
                memset(rr, 0, (size_t)len * 2 * sizeof(float));
                continue;
            }
            const float *row = src + (size_t)y * w;
            if (x0 >= 0 && x0 + nc + 2 <= w) {
                memcpy(sr, row + x0, (size_t)nc * sizeof(float));
                rr[2 * len - 2] = row[x0 + nc];
                rr[2 * len - 1] = row[x0 + nc + 1];
            } else {
                for (int p = 0; p < nc; p++) {
                    int x = x0 + p;
                    sr[p] = x >= 0 && x < w ? row[x] : 0.0f;
                }
                for (int p = 0; p < 2; p++) {
                    int x = x0 + nc + p;
                    rr[2 * len - 2 + p] = x >= 0 && x < w ? row[x] : 0.0f;
                }
            }
            for (int p = 0; p + 1 < len; p++) {
                rr[2 * p] = sr[m * (p + 1)];
                rr[2 * p + 1] = sr[m * (p + 1) + 1];
            }
        }
    }
    /* B^T along the patch columns */
    bt_cols(m, m * WL, S, E);
    bt_cols(m, 2 * WL, (const float(*)[4 * WL])R, (float(*)[4 * WL])F);
    /* then along the rows, lane by lane (scalars: an array here would keep the loop scalar) */
    for (int i = 0; i < t; i++) {
        const float *e = E[i], *f = F[i];
        float *restrict o = dst + (size_t)i * t * vk;
        if (m == 2) {
            for (int l = 0; l < WL; l++) {
                float z0 = e[2 * l], z1 = e[2 * l + 1], z2 = f[2 * l], z3 = f[2 * l + 1];
                o[l] = z0 - z2;
                o[vk + l] = z1 + z2;
                o[2 * vk + l] = z2 - z1;
                o[3 * vk + l] = z1 - z3;
            }
        } else {
            float v[6][WL];
            for (int l = 0; l < WL; l++) {
                float z0 = e[4 * l], z1 = e[4 * l + 1], z2 = e[4 * l + 2], z3 = e[4 * l + 3];
                float z4 = f[2 * l], z5 = f[2 * l + 1];
                float p = z4 - 4.0f * z2, q = z3 - 4.0f * z1;
                float r = z4 - z2, s = 2.0f * (z3 - z1);
                v[0][l] = 4.0f * z0 - 5.0f * z2 + z4;
                v[1][l] = p + q;
                v[2][l] = p - q;
                v[3][l] = r + s;
                v[4][l] = r - s;
                v[5][l] = 4.0f * z1 - 5.0f * z3 + z5;
            }
            for (int k = 0; k < 6; k++)
                memcpy(o + k * vk, v[k], sizeof v[k]);
        }
    }
}

/* Input transform of one chunk, input channels c0 .. c1-1: V[k][ci][i] for lanes i < ncr (lanes
 * past the last tile are zero). */
CX_WINO_CLONES
static void input_chunk(const wino_job *j, const wino_seg *sg, const int *gs, int ncr, int c0, int c1, float *V)
{
    const int pad = j->c->pad, tc = j->p.tc, h = j->h, w = j->w;
    const size_t hw = (size_t)h * w, vk = j->p.vk;
    for (int ci = c0; ci < c1; ci++) {
        const float *plane = j->in + (size_t)ci * j->n * hw;
        for (int g = 0; g < ncr; g += WL) {
            const wino_seg *s = sg + gs[g / WL];
            int ns = gs[g / WL + 1] - gs[g / WL], full = group_full(sg, gs, g);
            float *dst = V + (size_t)ci * tc + g;
            if (j->m == 2)
                in_group(2, plane, hw, h, w, pad, s, ns, g, full, dst, vk);
            else
                in_group(4, plane, hw, h, w, pad, s, ns, g, full, dst, vk);
        }
    }
}

/* One output channel, the group of WL lanes starting at chunk lane g: y_l = A^T s_l A + bias from
 * s_l[k] = src[k * mk + l], + add, ReLU, written for the valid pixels of the segments' tiles. The
 * rows of the m x m results are interleaved into Y[r] (lane l at m*l) and stored row segment by row
 * segment. out_o and add_o point at the channel's [N][oh][ow]. */
static CX_ALWAYS_INLINE void out_group(const int m, const float *restrict src, size_t mk, float bias, int relu,
                                       const wino_seg *sg, int ns, int g, int oh, int ow, float *out_o,
                                       const float *add_o)
{
    const int t = m + 2;
    float T[4][6][WL], Y[4][4 * WL];
    /* A^T along the columns, straight from M (row i of column c: src + (i * t + c) * mk) */
    for (int c = 0; c < t; c++) {
        const float *restrict p = src + (size_t)c * mk;
        const size_t rs = (size_t)t * mk;
        if (m == 2) {
            for (int l = 0; l < WL; l++) {
                float s0 = p[l], s1 = p[rs + l], s2 = p[2 * rs + l], s3 = p[3 * rs + l];
                T[0][c][l] = s0 + s1 + s2;
                T[1][c][l] = s1 - s2 - s3;
            }
        } else {
            for (int l = 0; l < WL; l++) {
                float s0 = p[l], s1 = p[rs + l], s2 = p[2 * rs + l], s3 = p[3 * rs + l], s4 = p[4 * rs + l],
                      s5 = p[5 * rs + l];
                float a = s1 + s2, b = s1 - s2, e = s3 + s4, d = s3 - s4;
                T[0][c][l] = s0 + a + e;
                T[1][c][l] = b + 2.0f * d;
                T[2][c][l] = a + 4.0f * e;
                T[3][c][l] = b + 8.0f * d + s5;
            }
        }
    }
    /* then along the rows, + bias (scalars, as in in_group) */
    for (int r = 0; r < m; r++) {
        float *y = Y[r];
        if (m == 2) {
            for (int l = 0; l < WL; l++) {
                float s0 = T[r][0][l], s1 = T[r][1][l], s2 = T[r][2][l], s3 = T[r][3][l];
                y[2 * l] = s0 + s1 + s2 + bias;
                y[2 * l + 1] = s1 - s2 - s3 + bias;
            }
        } else {
            for (int l = 0; l < WL; l++) {
                float s0 = T[r][0][l], s1 = T[r][1][l], s2 = T[r][2][l], s3 = T[r][3][l], s4 = T[r][4][l],
                      s5 = T[r][5][l];
                float a = s1 + s2, b = s1 - s2, c = s3 + s4, d = s3 - s4;
                y[4 * l] = s0 + a + c + bias;
                y[4 * l + 1] = b + 2.0f * d + bias;
                y[4 * l + 2] = a + 4.0f * c + bias;
                y[4 * l + 3] = b + 8.0f * d + s5 + bias;
            }
        }
    }
    if (relu && !add_o)
        for (int r = 0; r < m; r++)
            for (int x = 0; x < m * WL; x++)
                Y[r][x] = Y[r][x] > 0.0f ? Y[r][x] : 0.0f;
    for (int si = 0; si < ns; si++) {
        const wino_seg *q = sg + si;
        const float *yr = Y[0] + m * (q->i0 - g);
        int cnt = ow - q->tx0 < m * q->len ? ow - q->tx0 : m * q->len;
        for (int r = 0; r < m && q->ty0 + r < oh; r++, yr += 4 * WL) {
            size_t off = ((size_t)q->img * oh + q->ty0 + r) * ow + q->tx0;
            float *d = out_o + off;
            if (!add_o) {
                memcpy(d, yr, (size_t)cnt * sizeof(float));
            } else if (add_o == out_o) {
                for (int p = 0; p < cnt; p++) {
                    float v = yr[p] + d[p];
                    d[p] = relu && v < 0.0f ? 0.0f : v;
                }
            } else {
                const float *a = add_o + off;
                for (int p = 0; p < cnt; p++) {
                    float v = yr[p] + a[p];
                    d[p] = relu && v < 0.0f ? 0.0f : v;
                }
            }
        }
    }
}

/* Output transform of one chunk, output channels o0 .. o1-1, from M[k][o - o0][i]: bias, add,
 * ReLU, valid pixels only. */
CX_WINO_CLONES
static void output_chunk(const wino_job *j, const wino_seg *sg, const int *gs, int ncr, int o0, int o1,
                         const float *M)
{
    const cx_conv *c = j->c;
    const int tc = j->p.tc, oh = j->p.oh, ow = j->p.ow;
    const size_t cstride = (size_t)j->n * oh * ow, mk = j->p.mk;
    for (int o = o0; o < o1; o++) {
        float bias = c->b ? c->b[o] : 0.0f;
        float *out_o = j->out + (size_t)o * cstride;
        const float *add_o = !j->add ? NULL : (j->add == j->out ? out_o : j->add + (size_t)o * cstride);
        for (int g = 0; g < ncr; g += WL) {
            const wino_seg *s = sg + gs[g / WL];
            int ns = gs[g / WL + 1] - gs[g / WL];
            const float *src = M + (size_t)(o - o0) * tc + g;
            if (j->m == 2)
                out_group(2, src, mk, bias, j->relu, s, ns, g, oh, ow, out_o, add_o);
            else
                out_group(4, src, mk, bias, j->relu, s, ns, g, oh, ow, out_o, add_o);
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
    int tn[TC_CAP], ty0[TC_CAP], tx0[TC_CAP], gs[TC_CAP / WL + 1];
    wino_seg sg[TC_CAP];
    tile_coords(j, t0, ncr, tn, ty0, tx0);
    make_segs(j->m, tn, ty0, tx0, ncr, sg, gs);
    input_chunk(j, sg, gs, ncr, 0, c->cin, V);
    for (int o0 = 0; o0 < c->cout; o0 += j->p.cob) {
        int nco = c->cout - o0 < j->p.cob ? c->cout - o0 : j->p.cob;
        for (int k = 0; k < K; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nco, ncr, c->cin, 1.0f,
                        j->U + ((size_t)k * c->cout + o0) * c->cin, c->cin, V + (size_t)k * j->p.vk, tc, 0.0f,
                        M + (size_t)k * j->p.mk, tc);
        output_chunk(j, sg, gs, ncr, o0, o0 + nco, M);
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
    int nch = wj->phase == 1 ? c->cin : c->cout;
    int a, b;
    cx_pool_range(nch, task, wj->n_tasks, &a, &b);
    if (a >= b)
        return;
    int tn[TC_CAP], ty0[TC_CAP], tx0[TC_CAP], gs[TC_CAP / WL + 1];
    wino_seg sg[TC_CAP];
    tile_coords(j, 0, tc, tn, ty0, tx0);
    make_segs(j->m, tn, ty0, tx0, tc, sg, gs);
    if (wj->phase == 1)
        input_chunk(j, sg, gs, tc, a, b, V);
    else
        output_chunk(j, sg, gs, tc, a, b, M + (size_t)a * tc);
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

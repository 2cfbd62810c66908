/* cx_nn ops: convolution as tiled im2col + cblas_sgemm (the tile bounds scratch memory whatever
 * the image size), and the element-wise/pooling ops around it. Layout is channel-major
 * [C][N][H][W] so a batch of RoIs goes through one GEMM per tile, like one wide image. */
#include <config.h>

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cx_nn.h"
#include "cx_winograd.h"

/* Threading: OpenBLAS runs single-threaded (cx_nn_blas_setup) and every op splits its work over our
 * pool, each task calling cblas_sgemm on its own piece. Two thread teams on 2 cores fight: OpenBLAS's
 * workers spin (sched_yield) between calls while ours do im2col, which cost 14% of a run. */

/* One task's im2col tile: about this many floats (4 MB), so the weights OpenBLAS packs per call are
 * amortised over a wide tile while the tile itself stays near the cache. */
#define CX_TILE_FLOATS ((size_t)1 << 20)

const char *cx_nn_blas_setup(void)
{
    openblas_set_num_threads(1);
    return openblas_get_corename();
}

const char *cx_nn_blas_corename(void)
{
    return openblas_get_corename();
}

static int is_pointwise(const cx_conv *c)
{
    return c->kh == 1 && c->kw == 1 && c->stride == 1 && c->pad == 0;
}

/* How a conv is split over the pool. Column tiles (each task: im2col of its tile, a GEMM with all
 * the weights, the epilogue) suit wide maps; each tile re-packs the whole weight matrix, so when
 * the map is narrow next to the weights (cout * tiles > columns * threads: layer4 at 16x16, say)
 * the conv is split by output channels instead: one shared im2col, then each task packs only its
 * rows of the weights. Tiles come in multiples of the thread count so no thread idles. */
typedef struct conv_plan {
    int by_rows;
    size_t cols;       /* column tile (by_rows: all columns) */
    size_t scratch;    /* floats */
} conv_plan;

static conv_plan plan_conv(const cx_conv *c, size_t total, int threads)
{
    conv_plan p = {0, total, 0};
    size_t k = (size_t)c->cin * c->kh * c->kw, nt = (size_t)threads;
    size_t cmax = CX_TILE_FLOATS / k;
    cmax = cmax < 32 ? 32 : cmax;
    size_t ntiles = nt * ((total + nt * cmax - 1) / (nt * cmax));
    if (threads > 1 && (size_t)c->cout * ntiles > total * nt && c->cout >= 32 * threads) {
        p.by_rows = 1;
        p.scratch = is_pointwise(c) ? 0 : k * total;
        return p;
    }
    size_t cols = (total + ntiles - 1) / ntiles;
    cols = (cols + 15) & ~(size_t)15;
    p.cols = cols < total ? cols : total;
    p.scratch = is_pointwise(c) ? 0 : nt * p.cols * k;
    return p;
}

/* Winograd pays once each of its (m+2)^2 GEMMs is wide enough: below this many output tiles the
 * direct im2col path is as fast (bench/cx_bench_wino). */
#define CX_WINO_MIN_TILES 16

static int use_wino(const cx_conv *c, int n, int oh, int ow)
{
    if (!c->wino)
        return 0;
    size_t tiles = (size_t)n * ((oh + c->wino_m - 1) / c->wino_m) * ((ow + c->wino_m - 1) / c->wino_m);
    return tiles >= CX_WINO_MIN_TILES;
}

size_t cx_conv_scratch_floats(const cx_pool *pool, const cx_conv *c, int n, int h, int w)
{
    int oh = cx_conv_out(h, c->kh, c->stride, c->pad, c->dil);
    int ow = cx_conv_out(w, c->kw, c->stride, c->pad, c->dil);
    if (use_wino(c, n, oh, ow))
        return cx_wino_scratch_floats(pool, c->wino_m, c, n, h, w);
    return plan_conv(c, (size_t)n * oh * ow, cx_pool_threads(pool)).scratch;
}

/* col[k][0..cols) = the input samples under kernel tap k for output positions j0..j0+cols. */
static void im2col(const cx_conv *c, const float *in, int n, int h, int w, int oh, int ow, size_t j0, size_t cols,
                   float *col)
{
    size_t plane = (size_t)oh * ow;
    for (int ci = 0; ci < c->cin; ci++) {
        for (int ky = 0; ky < c->kh; ky++) {
            for (int kx = 0; kx < c->kw; kx++) {
                float *row = col + (((size_t)ci * c->kh + ky) * c->kw + kx) * cols;
                size_t j = j0, end = j0 + cols;
                while (j < end) {
                    size_t ni = j / plane, rem = j % plane;
                    int oy = (int)(rem / ow), ox0 = (int)(rem % ow);
                    size_t seg = (size_t)(ow - ox0);
                    if (seg > end - j)
                        seg = end - j;
                    float *dst = row + (j - j0);
                    int iy = oy * c->stride - c->pad + ky * c->dil;
                    if (iy < 0 || iy >= h) {
                        memset(dst, 0, seg * sizeof(float));
                    } else {
                        const float *src = in + (((size_t)ci * n + ni) * h + iy) * w;
                        int ix = ox0 * c->stride - c->pad + kx * c->dil;
                        if (c->stride == 1 && ix >= 0 && ix + (int)seg <= w) {
                            memcpy(dst, src + ix, seg * sizeof(float));
                        } else if (c->stride == 1) {
                            /* zeros left of the image, a copy, zeros right of it */
                            long a = ix < 0 ? -(long)ix : 0, b = (long)w - ix;
                            a = a < (long)seg ? a : (long)seg;
                            b = b < (long)seg ? b : (long)seg;
                            b = b > a ? b : a;
                            memset(dst, 0, (size_t)a * sizeof(float));
                            memcpy(dst + a, src + ix + a, (size_t)(b - a) * sizeof(float));
                            memset(dst + b, 0, (seg - (size_t)b) * sizeof(float));
                        } else {
                            for (size_t q = 0; q < seg; q++, ix += c->stride)
                                dst[q] = (ix >= 0 && ix < w) ? src[ix] : 0.0f;
                        }
                    }
                    j += seg;
                }
            }
        }
    }
}

/* y[o][j0..j0+cols) += b[o] (+ a[o][...]), then ReLU: rows of leading dimension ld. */
static void epilogue_rows(float *out, const float *add, const float *b, size_t ld, size_t j0, size_t cols, int o0,
                          int o1, int relu)
{
    for (int o = o0; o < o1; o++) {
        float *restrict y = out + (size_t)o * ld + j0;
        const float *a = add ? add + (size_t)o * ld + j0 : NULL;
        float bv = b ? b[o] : 0.0f;
        if (a) {
            for (size_t j = 0; j < cols; j++)
                y[j] = y[j] + bv + a[j];
        } else if (bv != 0.0f) {
            for (size_t j = 0; j < cols; j++)
                y[j] += bv;
        }
        if (relu)
            for (size_t j = 0; j < cols; j++)
                y[j] = y[j] > 0.0f ? y[j] : 0.0f;
    }
}

typedef struct conv_job {
    const cx_conv *c;
    const float *in, *add;
    float *out, *scratch;
    int n, h, w, oh, ow, relu, n_tasks;
    size_t total, cols, per_slot;
} conv_job;

/* GEMM of weight rows [o0, o1) against columns [j0, j0 + nc) of b (leading dimension ldb), then the
 * epilogue on that block while it is in cache. add == out accumulates into out (beta 1). */
static void conv_gemm(const conv_job *jb, int o0, int o1, size_t j0, size_t nc, const float *bm, int ldb)
{
    const cx_conv *c = jb->c;
    int k = c->cin * c->kh * c->kw;
    const float *add = jb->add == jb->out ? NULL : jb->add;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, o1 - o0, (int)nc, k, 1.0f, c->w + (size_t)o0 * k, k, bm,
                ldb, jb->add == jb->out ? 1.0f : 0.0f, jb->out + (size_t)o0 * jb->total + j0, (int)jb->total);
    if (add || c->b || jb->relu)
        epilogue_rows(jb->out, add, c->b, jb->total, j0, nc, o0, o1, jb->relu);
}

/* One column tile: im2col (unless pointwise), one single-threaded GEMM, the epilogue. */
static void conv_task(void *ctx, int t)
{
    const conv_job *jb = ctx;
    size_t j0 = (size_t)t * jb->cols, nc = jb->total - j0 < jb->cols ? jb->total - j0 : jb->cols;
    if (is_pointwise(jb->c)) {
        conv_gemm(jb, 0, jb->c->cout, j0, nc, jb->in + j0, (int)jb->total);
    } else {
        float *col = jb->scratch + (size_t)cx_pool_slot() * jb->per_slot;
        im2col(jb->c, jb->in, jb->n, jb->h, jb->w, jb->oh, jb->ow, j0, nc, col);
        conv_gemm(jb, 0, jb->c->cout, j0, nc, col, (int)nc);
    }
}

/* By rows: im2col of all columns split by input channel, then GEMMs split by output channel. */
static void im2col_rows_task(void *ctx, int t)
{
    const conv_job *jb = ctx;
    cx_conv part = *jb->c;
    int c0, c1;
    cx_pool_range(part.cin, t, jb->n_tasks, &c0, &c1);
    part.cin = c1 - c0;
    im2col(&part, jb->in + (size_t)c0 * jb->n * jb->h * jb->w, jb->n, jb->h, jb->w, jb->oh, jb->ow, 0, jb->total,
           jb->scratch + (size_t)c0 * part.kh * part.kw * jb->total);
}

static void rows_task(void *ctx, int t)
{
    const conv_job *jb = ctx;
    int o0, o1;
    cx_pool_range(jb->c->cout, t, jb->n_tasks, &o0, &o1);
    const float *bm = is_pointwise(jb->c) ? jb->in : jb->scratch;
    conv_gemm(jb, o0, o1, 0, jb->total, bm, (int)jb->total);
}

void cx_conv2d(cx_pool *pool, const cx_conv *c, const float *in, int n, int h, int w, float *out,
               const float *add, int relu, float *scratch)
{
    int oh = cx_conv_out(h, c->kh, c->stride, c->pad, c->dil);
    int ow = cx_conv_out(w, c->kw, c->stride, c->pad, c->dil);
    size_t total = (size_t)n * oh * ow;
    if (total == 0)
        return;
    if (use_wino(c, n, oh, ow)) {
        cx_conv2d_wino(pool, c->wino_m, c, c->wino, in, n, h, w, out, add, relu, scratch);
        return;
    }
    int nt = cx_pool_threads(pool);
    conv_plan p = plan_conv(c, total, nt);
    conv_job jb = {c, in, add, out, scratch, n, h, w, oh, ow, relu, nt, total, p.cols,
                   p.cols * (size_t)c->cin * c->kh * c->kw};
    if (p.by_rows) {
        if (!is_pointwise(c)) {
            jb.n_tasks = nt < c->cin ? nt : c->cin;
            cx_pool_run(pool, jb.n_tasks, im2col_rows_task, &jb);
        }
        /* 2 tasks per thread: whichever thread finishes first takes the spare */
        jb.n_tasks = 2 * nt;
        cx_pool_run(pool, jb.n_tasks, rows_task, &jb);
        return;
    }
    cx_pool_run(pool, (int)((total + p.cols - 1) / p.cols), conv_task, &jb);
}

typedef struct deconv_job {
    const float *w, *b, *in;
    float *out, *scratch;
    int cin, cout, n, h, wd, relu, per_task;   /* per_task: images (RoIs) per task */
} deconv_job;

/* Images [i0, i1): tmp[(o,dy,dx)][j] = sum_c w[c][o][dy][dx] * in[c][j] as one GEMM with W transposed,
 * then each (o, dy, dx) plane scattered to out[o][i][2y+dy][2x+dx] (+ bias, ReLU). */
static void deconv_task(void *ctx, int t)
{
    const deconv_job *d = ctx;
    int i0 = t * d->per_task, i1 = i0 + d->per_task < d->n ? i0 + d->per_task : d->n;
    size_t hw = (size_t)d->h * d->wd, tot = (size_t)d->n * hw, j0 = (size_t)i0 * hw, nc = (size_t)(i1 - i0) * hw;
    float *tmp = d->scratch + 4 * (size_t)d->cout * j0;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d->cout * 4, (int)nc, d->cin, 1.0f, d->w, d->cout * 4,
                d->in + j0, (int)tot, 0.0f, tmp, (int)nc);
    for (int o = 0; o < d->cout; o++) {
        float bv = d->b ? d->b[o] : 0.0f;
        for (int k = 0; k < 4; k++) {
            int dy = k >> 1, dx = k & 1;
            const float *src = tmp + ((size_t)o * 4 + k) * nc;
            for (int ni = i0; ni < i1; ni++) {
                float *dst = d->out + ((size_t)o * d->n + ni) * 4 * hw;
                for (int y = 0; y < d->h; y++) {
                    const float *sr = src + (size_t)(ni - i0) * hw + (size_t)y * d->wd;
                    float *r = dst + (size_t)(2 * y + dy) * 2 * d->wd + dx;
                    for (int x = 0; x < d->wd; x++) {
                        float v = sr[x] + bv;
                        r[2 * x] = (d->relu && v < 0.0f) ? 0.0f : v;
                    }
                }
            }
        }
    }
}

void cx_deconv2x2(cx_pool *pool, int cin, int cout, const float *w, const float *b, const float *in,
                  int n, int h, int wd, float *out, int relu, float *scratch)
{
    int nt = cx_pool_threads(pool), tasks = n < 2 * nt ? n : 2 * nt;
    if (tasks < 1)
        return;
    int per = (n + tasks - 1) / tasks;
    deconv_job d = {w, b, in, out, scratch, cin, cout, n, h, wd, relu, per};
    cx_pool_run(pool, (n + per - 1) / per, deconv_task, &d);
}

typedef struct plane_job {
    const float *in;
    float *out;
    int c, h, w, k, stride, pad, oh, ow, n_tasks;
    float *row;   /* one input row per thread (3x3 stride-2 path), or NULL */
} plane_job;

static void maxpool_planes(const float *in, int c0, int c1, int h, int w, int k, int stride, int pad, float *out,
                           int oh, int ow)
{
    for (int ci = c0; ci < c1; ci++) {
        const float *src = in + (size_t)ci * h * w;
        float *dst = out + (size_t)ci * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                float m = -INFINITY;
                for (int ky = 0; ky < k; ky++) {
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h)
                        continue;
                    for (int kx = 0; kx < k; kx++) {
                        int ix = ox * stride - pad + kx;
                        if (ix < 0 || ix >= w)
                            continue;
                        float v = src[(size_t)iy * w + ix];
                        if (v > m || isnan(v))
                            m = v;
                    }
                }
                dst[(size_t)oy * ow + ox] = m;
            }
        }
    }
}

/* max that lets a NaN win, as PyTorch's max_pool2d kernel does (val > max || isnan(val)) */
static inline float max_nan(float m, float v)
{
    return (v > m || v != v) ? v : m;
}

/* The stem's pool (3x3, stride 2, pad 1): the max of three input rows first (a vectorisable pass),
 * then of three neighbours along it. Same result as maxpool_planes: the max of the same window,
 * NaN winning; equal values are equal (the planes come from a ReLU: no -0.0). */
static void maxpool3s2_planes(const float *in, int c0, int c1, int h, int w, float *out, int oh, int ow,
                              float *row)
{
    for (int ci = c0; ci < c1; ci++) {
        const float *src = in + (size_t)ci * h * w;
        float *dst = out + (size_t)ci * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            int y0 = 2 * oy - 1, y1 = y0 + 3;
            y0 = y0 < 0 ? 0 : y0;
            y1 = y1 > h ? h : y1;
            const float *r0 = src + (size_t)y0 * w;
            for (int x = 0; x < w; x++)
                row[x] = r0[x];
            for (int y = y0 + 1; y < y1; y++) {
                const float *r = src + (size_t)y * w;
                for (int x = 0; x < w; x++)
                    row[x] = max_nan(row[x], r[x]);
            }
            float *d = dst + (size_t)oy * ow;
            for (int ox = 0; ox < ow; ox++) {
                int x0 = 2 * ox - 1, x1 = x0 + 3;
                x0 = x0 < 0 ? 0 : x0;
                x1 = x1 > w ? w : x1;
                float m = row[x0];
                for (int x = x0 + 1; x < x1; x++)
                    m = max_nan(m, row[x]);
                d[ox] = m;
            }
        }
    }
}

static void maxpool_task(void *ctx, int t)
{
    const plane_job *j = ctx;
    int c0, c1;
    cx_pool_range(j->c, t, j->n_tasks, &c0, &c1);
    if (j->k == 3 && j->stride == 2 && j->pad == 1 && j->row)
        maxpool3s2_planes(j->in, c0, c1, j->h, j->w, j->out, j->oh, j->ow, j->row + (size_t)cx_pool_slot() * j->w);
    else
        maxpool_planes(j->in, c0, c1, j->h, j->w, j->k, j->stride, j->pad, j->out, j->oh, j->ow);
}

void cx_maxpool2d(cx_pool *pool, const float *in, int c, int h, int w, int k, int stride, int pad,
                  float *out, int oh, int ow, float *scratch)
{
    int nt = cx_pool_threads(pool);
    plane_job j = {in, out, c, h, w, k, stride, pad, oh, ow, nt < c ? nt : c, scratch};
    if (j.n_tasks >= 1)
        cx_pool_run(pool, j.n_tasks, maxpool_task, &j);
}

/* PyTorch's nearest source index (UpSample.h nearest_idx). */
static int nearest_idx(int o, int in, int out)
{
    if (out == in)
        return o;
    if (out == 2 * in)
        return o >> 1;
    float scale = (float)in / (float)out;
    int i = (int)floorf((float)o * scale);
    return i < in - 1 ? i : in - 1;
}

typedef struct up_job {
    float *out;
    const float *src;
    int c, oh, ow, h, w, n_tasks;
} up_job;

static void upsample_task(void *ctx, int t)
{
    const up_job *j = ctx;
    int c0, c1;
    cx_pool_range(j->c, t, j->n_tasks, &c0, &c1);
    int oh = j->oh, ow = j->ow, h = j->h, w = j->w;
    for (int ci = c0; ci < c1; ci++) {
        const float *s = j->src + (size_t)ci * h * w;
        float *d = j->out + (size_t)ci * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *sr = s + (size_t)nearest_idx(y, h, oh) * w;
            float *dr = d + (size_t)y * ow;
            if (ow == 2 * w) {
                for (int x = 0; x < ow; x++)
                    dr[x] += sr[x >> 1];
            } else {
                for (int x = 0; x < ow; x++)
                    dr[x] += sr[nearest_idx(x, w, ow)];
            }
        }
    }
}

void cx_upsample_nearest_add(cx_pool *pool, float *out, int c, int oh, int ow, const float *src, int h,
                             int w)
{
    int nt = cx_pool_threads(pool);
    up_job j = {out, src, c, oh, ow, h, w, nt < c ? nt : c};
    if (j.n_tasks >= 1)
        cx_pool_run(pool, j.n_tasks, upsample_task, &j);
}

typedef struct linear_job {
    const float *x, *w, *b;
    float *y;
    int n, in, out, relu, per_task;
} linear_job;

/* Output features [o0, o1): one GEMM against those rows of W, then bias and ReLU. */
static void linear_task(void *ctx, int t)
{
    const linear_job *j = ctx;
    int o0 = t * j->per_task, o1 = o0 + j->per_task < j->out ? o0 + j->per_task : j->out;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, o1 - o0, j->in, 1.0f, j->x, j->in,
                j->w + (size_t)o0 * j->in, j->in, 0.0f, j->y + o0, j->out);
    for (int i = 0; i < j->n; i++) {
        float *r = j->y + (size_t)i * j->out;
        for (int o = o0; o < o1; o++) {
            float v = r[o] + (j->b ? j->b[o] : 0.0f);
            r[o] = (j->relu && v < 0.0f) ? 0.0f : v;
        }
    }
}

void cx_linear(cx_pool *pool, const float *x, int n, int in, const float *w, const float *b, int out, float *y,
               int relu)
{
    /* one task per thread: each task packs all of x, so more tasks would only repeat that */
    int nt = cx_pool_threads(pool);
    int per = (out + nt - 1) / nt;
    per = (per + 15) & ~15;
    linear_job j = {x, w, b, y, n, in, out, relu, per};
    if (n > 0 && out > 0)
        cx_pool_run(pool, (out + per - 1) / per, linear_task, &j);
}

float cx_sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

void cx_softmax_rows(float *x, int n, int k)
{
    for (int i = 0; i < n; i++) {
        float *r = x + (size_t)i * k;
        float m = r[0];
        for (int j = 1; j < k; j++)
            m = r[j] > m ? r[j] : m;
        float s = 0.0f;
        for (int j = 0; j < k; j++) {
            r[j] = expf(r[j] - m);
            s += r[j];
        }
        for (int j = 0; j < k; j++)
            r[j] /= s;
    }
}

void cx_bilinear_index(int o, int in, float scale, int *i0, int *i1, float *l0, float *l1)
{
    /* PyTorch's CPU bilinear kernel: float scale, but the source index and the lambdas are
     * computed in double (checked against torch 1.13 with impulse inputs). */
    double sd = (double)scale * ((double)o + 0.5) - 0.5;
    if (sd < 0)
        sd = 0;
    int i = (int)sd;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    double l = sd - (double)i;
    l = l < 0 ? 0 : (l > 1 ? 1 : l);
    *l1 = (float)l;
    *l0 = 1.0f - *l1;
}

void cx_resize_bilinear(const float *in, int h, int w, float *out, int oh, int ow, int one_channel)
{
    float sh = (float)h / (float)oh, sw = (float)w / (float)ow;
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float ly0, ly1;
        cx_bilinear_index(y, h, sh, &y0, &y1, &ly0, &ly1);
        const float *r0 = in + (size_t)y0 * w, *r1 = in + (size_t)y1 * w;
        for (int x = 0; x < ow; x++) {
            int x0, x1;
            float lx0, lx1;
            cx_bilinear_index(x, w, sw, &x0, &x1, &lx0, &lx1);
            if (one_channel)
                out[(size_t)y * ow + x] = r0[x0] * (ly0 * lx0) + r0[x1] * (ly0 * lx1) + r1[x0] * (ly1 * lx0) +
                                          r1[x1] * (ly1 * lx1);
            else
                out[(size_t)y * ow + x] = (r0[x0] * lx0 + r0[x1] * lx1) * ly0 + (r1[x0] * lx0 + r1[x1] * lx1) * ly1;
        }
    }
}

/* cx_nn ops: convolution as tiled im2col + cblas_sgemm (the tile bounds scratch memory whatever
 * the image size), and the element-wise/pooling ops around it. Layout is channel-major
 * [C][N][H][W] so a batch of RoIs goes through one GEMM per tile, like one wide image. */
#include <config.h>

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cx_nn.h"

/* im2col tile: at most this many floats (16 MB), at least one output row. */
#define CX_IM2COL_BUDGET ((size_t)1 << 22)

const char *cx_nn_blas_setup(int n_threads)
{
    openblas_set_num_threads(n_threads);
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

static size_t tile_cols(const cx_conv *c, size_t total, int ow)
{
    size_t k = (size_t)c->cin * c->kh * c->kw;
    size_t cols = CX_IM2COL_BUDGET / k;
    if (cols < (size_t)ow)
        cols = (size_t)ow;
    if (cols < 256)
        cols = 256;
    return cols < total ? cols : total;
}

size_t cx_conv_scratch_floats(const cx_conv *c, int n, int h, int w)
{
    if (is_pointwise(c))
        return 0;
    int oh = cx_conv_out(h, c->kh, c->stride, c->pad, c->dil);
    int ow = cx_conv_out(w, c->kw, c->stride, c->pad, c->dil);
    size_t total = (size_t)n * oh * ow;
    return tile_cols(c, total, ow) * (size_t)c->cin * c->kh * c->kw;
}

typedef struct im2col_job {
    const cx_conv *c;
    const float *in;
    int n, h, w, oh, ow;
    size_t j0, cols;
    float *col;
    int n_tasks;
} im2col_job;

static void im2col_task(void *ctx, int t)
{
    const im2col_job *jb = ctx;
    const cx_conv *c = jb->c;
    int c0 = (int)((long)c->cin * t / jb->n_tasks), c1 = (int)((long)c->cin * (t + 1) / jb->n_tasks);
    size_t plane = (size_t)jb->oh * jb->ow;
    for (int ci = c0; ci < c1; ci++) {
        for (int ky = 0; ky < c->kh; ky++) {
            for (int kx = 0; kx < c->kw; kx++) {
                float *row = jb->col + (((size_t)ci * c->kh + ky) * c->kw + kx) * jb->cols;
                size_t j = jb->j0, end = jb->j0 + jb->cols;
                while (j < end) {
                    size_t ni = j / plane, rem = j % plane;
                    int oy = (int)(rem / jb->ow), ox0 = (int)(rem % jb->ow);
                    size_t seg = (size_t)(jb->ow - ox0);
                    if (seg > end - j)
                        seg = end - j;
                    float *dst = row + (j - jb->j0);
                    int iy = oy * c->stride - c->pad + ky * c->dil;
                    if (iy < 0 || iy >= jb->h) {
                        memset(dst, 0, seg * sizeof(float));
                    } else {
                        const float *src = jb->in + (((size_t)ci * jb->n + ni) * jb->h + iy) * jb->w;
                        int ix = ox0 * c->stride - c->pad + kx * c->dil;
                        if (c->stride == 1 && ix >= 0 && ix + (int)seg <= jb->w) {
                            memcpy(dst, src + ix, seg * sizeof(float));
                        } else {
                            for (size_t q = 0; q < seg; q++, ix += c->stride)
                                dst[q] = (ix >= 0 && ix < jb->w) ? src[ix] : 0.0f;
                        }
                    }
                    j += seg;
                }
            }
        }
    }
}

typedef struct epi_job {
    float *out;
    const float *add, *b;
    size_t ld, j0, cols;
    int cout, relu, n_tasks;
} epi_job;

static void epi_task(void *ctx, int t)
{
    const epi_job *e = ctx;
    int o0 = (int)((long)e->cout * t / e->n_tasks), o1 = (int)((long)e->cout * (t + 1) / e->n_tasks);
    for (int o = o0; o < o1; o++) {
        float *y = e->out + (size_t)o * e->ld + e->j0;
        const float *a = e->add ? e->add + (size_t)o * e->ld + e->j0 : NULL;
        float bv = e->b ? e->b[o] : 0.0f;
        if (a) {
            for (size_t j = 0; j < e->cols; j++)
                y[j] = y[j] + bv + a[j];
        } else if (bv != 0.0f) {
            for (size_t j = 0; j < e->cols; j++)
                y[j] += bv;
        }
        if (e->relu)
            for (size_t j = 0; j < e->cols; j++)
                y[j] = y[j] > 0.0f ? y[j] : 0.0f;
    }
}

static void epilogue(cx_pool *pool, float *out, const float *add, const float *b, size_t ld, size_t j0,
                     size_t cols, int cout, int relu)
{
    if (!add && !b && !relu)
        return;
    int nt = cx_pool_threads(pool);
    epi_job e = {out, add, b, ld, j0, cols, cout, relu, nt < cout ? nt : cout};
    cx_pool_run(pool, e.n_tasks, epi_task, &e);
}

void cx_conv2d(cx_pool *pool, const cx_conv *c, const float *in, int n, int h, int w, float *out,
               const float *add, int relu, float *scratch)
{
    int oh = cx_conv_out(h, c->kh, c->stride, c->pad, c->dil);
    int ow = cx_conv_out(w, c->kw, c->stride, c->pad, c->dil);
    size_t total = (size_t)n * oh * ow;
    int k = c->cin * c->kh * c->kw;
    if (is_pointwise(c)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, (int)total, k, 1.0f, c->w, k,
                    in, (int)total, 0.0f, out, (int)total);
        epilogue(pool, out, add, c->b, total, 0, total, c->cout, relu);
        return;
    }
    size_t cols = tile_cols(c, total, ow);
    int nt = cx_pool_threads(pool);
    for (size_t j0 = 0; j0 < total; j0 += cols) {
        size_t nc = total - j0 < cols ? total - j0 : cols;
        im2col_job jb = {c, in, n, h, w, oh, ow, j0, nc, scratch, nt < c->cin ? nt : c->cin};
        cx_pool_run(pool, jb.n_tasks, im2col_task, &jb);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, (int)nc, k, 1.0f, c->w, k,
                    scratch, (int)nc, 0.0f, out + j0, (int)total);
        epilogue(pool, out, add, c->b, total, j0, nc, c->cout, relu);
    }
}

typedef struct deconv_job {
    const float *tmp, *b;
    float *out;
    int cout, n, h, w, relu, n_tasks;
} deconv_job;

static void deconv_task(void *ctx, int t)
{
    const deconv_job *d = ctx;
    size_t hw = (size_t)d->h * d->w, tot = (size_t)d->n * hw;
    int o0 = (int)((long)d->cout * t / d->n_tasks), o1 = (int)((long)d->cout * (t + 1) / d->n_tasks);
    for (int o = o0; o < o1; o++) {
        float bv = d->b ? d->b[o] : 0.0f;
        for (int k = 0; k < 4; k++) {
            int dy = k >> 1, dx = k & 1;
            const float *src = d->tmp + ((size_t)o * 4 + k) * tot;
            for (int ni = 0; ni < d->n; ni++) {
                float *dst = d->out + ((size_t)o * d->n + ni) * 4 * hw;
                for (int y = 0; y < d->h; y++) {
                    const float *s = src + ni * hw + (size_t)y * d->w;
                    float *r = dst + (size_t)(2 * y + dy) * 2 * d->w + dx;
                    for (int x = 0; x < d->w; x++) {
                        float v = s[x] + bv;
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
    /* tmp[(o,dy,dx)][pos] = sum_c w[c][o][dy][dx] * in[c][pos]: one GEMM with W transposed. */
    size_t tot = (size_t)n * h * wd;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cout * 4, (int)tot, cin, 1.0f, w, cout * 4,
                in, (int)tot, 0.0f, scratch, (int)tot);
    int nt = cx_pool_threads(pool);
    deconv_job d = {scratch, b, out, cout, n, h, wd, relu, nt < cout ? nt : cout};
    cx_pool_run(pool, d.n_tasks, deconv_task, &d);
}

void cx_maxpool2d(cx_pool *pool, const float *in, int c, int h, int w, int k, int stride, int pad,
                  float *out, int oh, int ow)
{
    (void)pool;
    for (int ci = 0; ci < c; ci++) {
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

void cx_upsample_nearest_add(cx_pool *pool, float *out, int c, int oh, int ow, const float *src, int h,
                             int w)
{
    (void)pool;
    for (int ci = 0; ci < c; ci++) {
        const float *s = src + (size_t)ci * h * w;
        float *d = out + (size_t)ci * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *sr = s + (size_t)nearest_idx(y, h, oh) * w;
            float *dr = d + (size_t)y * ow;
            for (int x = 0; x < ow; x++)
                dr[x] += sr[nearest_idx(x, w, ow)];
        }
    }
}

void cx_linear(const float *x, int n, int in, const float *w, const float *b, int out, float *y, int relu)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    for (int i = 0; i < n; i++) {
        float *r = y + (size_t)i * out;
        for (int o = 0; o < out; o++) {
            float v = r[o] + (b ? b[o] : 0.0f);
            r[o] = (relu && v < 0.0f) ? 0.0f : v;
        }
    }
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

static void linear_index(int o, int in, int out, float scale, int *i0, int *i1, float *l0, float *l1)
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
    (void)out;
}

void cx_resize_bilinear(const float *in, int h, int w, float *out, int oh, int ow, int one_channel)
{
    float sh = (float)h / (float)oh, sw = (float)w / (float)ow;
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float ly0, ly1;
        linear_index(y, h, oh, sh, &y0, &y1, &ly0, &ly1);
        const float *r0 = in + (size_t)y0 * w, *r1 = in + (size_t)y1 * w;
        for (int x = 0; x < ow; x++) {
            int x0, x1;
            float lx0, lx1;
            linear_index(x, w, ow, sw, &x0, &x1, &lx0, &lx1);
            if (one_channel)
                out[(size_t)y * ow + x] = r0[x0] * (ly0 * lx0) + r0[x1] * (ly0 * lx1) + r1[x0] * (ly1 * lx0) +
                                          r1[x1] * (ly1 * lx1);
            else
                out[(size_t)y * ow + x] = (r0[x0] * lx0 + r0[x1] * lx1) * ly0 + (r1[x0] * lx0 + r1[x1] * lx1) * ly1;
        }
    }
}

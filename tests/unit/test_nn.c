/* Unit tests of src/nn: every op against a direct (naive, double-precision) computation, including
 * the tiled im2col path, batched (N > 1) channel-major layouts and the thread pool. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cx_nn.h"
#include "cx_ref_conv.h"
#include "cx_test.h"

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *rnd(size_t n, unsigned seed)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = frand(&seed);
    return p;
}

static void check_conv(int cin, int cout, int k, int stride, int pad, int dil, int n, int h, int w, int use_add,
                       int relu, int threads)
{
    cx_pool *pool = NULL;
    cx_error err;
    CU_ASSERT_FATAL(cx_pool_new(threads, &pool, &err) == CX_OK);
    float *in = rnd((size_t)cin * n * h * w, 1), *wt = rnd((size_t)cout * cin * k * k, 2), *b = rnd(cout, 3);
    cx_conv c = {.cin = cin, .cout = cout, .kh = k, .kw = k, .stride = stride, .pad = pad, .dil = dil, .w = wt, .b = b};
    int oh = cx_conv_out(h, k, stride, pad, dil), ow = cx_conv_out(w, k, stride, pad, dil);
    size_t on = (size_t)cout * n * oh * ow;
    float *add = use_add ? rnd(on, 4) : NULL, *out = malloc(on * sizeof(float));
    size_t sf = cx_conv_scratch_floats(pool, &c, n, h, w);
    float *scr = sf ? malloc(sf * sizeof(float)) : NULL;
    cx_conv2d(pool, &c, in, n, h, w, out, add, relu, scr);
    double *ref = malloc(on * sizeof(double)), maxerr = 0;
    cx_ref_conv(&c, in, n, h, w, add, relu, ref);
    for (size_t i = 0; i < on; i++)
        maxerr = fmax(maxerr, fabs(ref[i] - out[i]));
    free(ref);
    CU_ASSERT(maxerr < 1e-3);
    free(in), free(wt), free(b), free(add), free(out), free(scr);
    cx_pool_free(pool);
}

static void test_conv_shapes(void)
{
    check_conv(3, 5, 3, 1, 1, 1, 1, 9, 11, 0, 0, 1);      /* 3x3 same */
    check_conv(2, 4, 7, 2, 3, 1, 1, 17, 16, 0, 1, 2);     /* stem-like 7x7 s2 */
    check_conv(4, 6, 1, 1, 0, 1, 1, 8, 8, 1, 1, 2);       /* pointwise + residual + relu */
    check_conv(4, 6, 1, 2, 0, 1, 1, 9, 8, 0, 0, 1);       /* downsample 1x1 s2 */
    check_conv(3, 4, 3, 1, 2, 2, 1, 10, 10, 0, 0, 2);     /* dilation 2 */
    check_conv(5, 3, 3, 1, 1, 1, 4, 6, 6, 0, 1, 2);       /* batch of RoIs, channel-major */
    /* small maps, many output channels: split by output rows over a shared im2col */
    check_conv(48, 128, 3, 2, 1, 1, 1, 11, 9, 1, 1, 2);   /* strided 3x3 + residual */
    check_conv(64, 96, 1, 1, 0, 1, 2, 4, 5, 0, 1, 2);     /* pointwise, batch of 2 */
    check_conv(64, 100, 1, 1, 0, 1, 1, 3, 3, 1, 0, 3);    /* rows not a multiple of the tasks */
}

static void test_conv_tiled(void)
{
    /* K = 64*9 = 576, 100*100 outputs: more than one im2col tile */
    check_conv(64, 8, 3, 1, 1, 1, 1, 100, 100, 1, 1, 2);
}

static void test_deconv(void)
{
    int cin = 3, cout = 4, n = 2, h = 3, w = 5;
    float *in = rnd((size_t)cin * n * h * w, 5), *wt = rnd((size_t)cin * cout * 4, 6), *b = rnd(cout, 7);
    float *out = malloc(sizeof(float) * cout * n * 4 * h * w), *scr = malloc(sizeof(float) * 4 * cout * n * h * w);
    cx_deconv2x2(NULL, cin, cout, wt, b, in, n, h, w, out, 1, scr);
    double maxerr = 0;
    for (int o = 0; o < cout; o++)
        for (int ni = 0; ni < n; ni++)
            for (int y = 0; y < 2 * h; y++)
                for (int x = 0; x < 2 * w; x++) {
                    double s = b[o];
                    for (int c = 0; c < cin; c++)
                        s += (double)in[(((size_t)c * n + ni) * h + y / 2) * w + x / 2] *
                             wt[((c * cout + o) * 2 + y % 2) * 2 + x % 2];
                    s = s < 0 ? 0 : s;
                    maxerr = fmax(maxerr, fabs(s - out[(((size_t)o * n + ni) * 2 * h + y) * 2 * w + x]));
                }
    CU_ASSERT(maxerr < 1e-5);
    free(in), free(wt), free(b), free(out), free(scr);
}

/* The stem pool's fast path (3x3 stride 2 pad 1, row scratch) equals the generic one, NaN included,
 * on odd and even sizes and with 1 and 2 threads. */
static void test_pool_fast_path(void)
{
    const int sizes[][2] = {{5, 5}, {8, 6}, {17, 12}, {1, 1}, {2, 9}};
    for (int th = 1; th <= 2; th++) {
        cx_pool *pool = NULL;
        cx_error err;
        CU_ASSERT_FATAL(cx_pool_new(th, &pool, &err) == CX_OK);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            int h = sizes[k][0], w = sizes[k][1], c = 3, oh = cx_conv_out(h, 3, 2, 1, 1), ow = cx_conv_out(w, 3, 2, 1, 1);
            float *in = rnd((size_t)c * h * w, 7 + (unsigned)k), *a = malloc(sizeof(float) * c * oh * ow);
            float *b = malloc(sizeof(float) * c * oh * ow), *row = malloc(sizeof(float) * th * w);
            in[(size_t)h * w / 2] = NAN;    /* a NaN wins its windows */
            cx_maxpool2d(pool, in, c, h, w, 3, 2, 1, a, oh, ow, NULL);
            cx_maxpool2d(pool, in, c, h, w, 3, 2, 1, b, oh, ow, row);
            int same = 1, nans = 0;
            for (int i = 0; i < c * oh * ow; i++) {
                nans += isnan(a[i]);
                same &= isnan(a[i]) ? isnan(b[i]) : a[i] == b[i];
            }
            CU_ASSERT(same);
            CU_ASSERT(nans >= 1);
            free(in), free(a), free(b), free(row);
        }
        cx_pool_free(pool);
    }
}

static void test_pool_upsample(void)
{
    float in[2 * 5 * 5], out[2 * 3 * 3];
    for (int i = 0; i < 50; i++)
        in[i] = (float)((i * 7) % 11);
    cx_maxpool2d(NULL, in, 2, 5, 5, 3, 2, 1, out, 3, 3, NULL);
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++) {
                float m = -1e30f;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int iy = 2 * y + dy, ix = 2 * x + dx;
                        if (iy >= 0 && iy < 5 && ix >= 0 && ix < 5)
                            m = fmaxf(m, in[c * 25 + iy * 5 + ix]);
                    }
                CU_ASSERT_EQUAL(out[c * 9 + y * 3 + x], m);
            }
    /* kernel 1 stride 2 (FPN P6) = subsampling */
    cx_maxpool2d(NULL, in, 1, 5, 5, 1, 2, 0, out, 3, 3, NULL);
    CU_ASSERT_EQUAL(out[4], in[2 * 5 + 2]);
    /* nearest 2x and a non-integer ratio (PyTorch's floor(o * in/out)) */
    float src[6] = {1, 2, 3, 4, 5, 6}, dst[4 * 6];
    memset(dst, 0, sizeof dst);
    cx_upsample_nearest_add(NULL, dst, 1, 4, 6, src, 2, 3);
    CU_ASSERT_EQUAL(dst[0], 1);
    CU_ASSERT_EQUAL(dst[5], 3);
    CU_ASSERT_EQUAL(dst[3 * 6 + 4], 6);
    float d2[5] = {10, 10, 10, 10, 10};
    cx_upsample_nearest_add(NULL, d2, 1, 1, 5, src, 1, 3);   /* idx = floor(o * 0.6) = 0,0,1,1,2 */
    CU_ASSERT_EQUAL(d2[1], 11);
    CU_ASSERT_EQUAL(d2[2], 12);
    CU_ASSERT_EQUAL(d2[4], 13);
}

static void test_linear_softmax_sigmoid(void)
{
    float x[2 * 3] = {1, 2, 3, -1, 0, 1}, w[2 * 3] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, b[2] = {0.5f, -4}, y[4];
    cx_linear(NULL, x, 2, 3, w, b, 2, y, 1);
    CU_ASSERT(fabsf(y[0] - 0.0f) < 1e-6f);     /* 1-3+0.5 = -1.5 -> relu 0 */
    CU_ASSERT(fabsf(y[1] - 0.0f) < 1e-6f);     /* 3-4 = -1 -> 0 */
    CU_ASSERT(fabsf(y[2] - (-2 + 0.5f)) > 0);  /* -1-1+0.5 = -1.5 -> 0 */
    CU_ASSERT(fabsf(y[2]) < 1e-6f);
    cx_linear(NULL, x, 2, 3, w, b, 2, y, 0);
    CU_ASSERT(fabsf(y[0] + 1.5f) < 1e-6f);
    CU_ASSERT(fabsf(y[3] + 4.0f) < 1e-6f);
    float s[3] = {1, 2, 3};
    cx_softmax_rows(s, 1, 3);
    CU_ASSERT(fabsf(s[0] + s[1] + s[2] - 1) < 1e-6f);
    CU_ASSERT(fabsf(s[2] - expf(3) / (expf(1) + expf(2) + expf(3))) < 1e-6f);
    float big[2] = {1000, 0};   /* no overflow */
    cx_softmax_rows(big, 1, 2);
    CU_ASSERT(fabsf(big[0] - 1) < 1e-6f);
    CU_ASSERT(fabsf(cx_sigmoidf(0) - 0.5f) < 1e-7f);
    CU_ASSERT(cx_sigmoidf(-200) >= 0 && cx_sigmoidf(200) <= 1);
}

static void test_resize(void)
{
    float in[4] = {0, 1, 2, 3}, out[16];
    cx_resize_bilinear(in, 2, 2, out, 2, 2, 1);   /* same size: identity */
    CU_ASSERT(memcmp(in, out, sizeof in) == 0);
    cx_resize_bilinear(in, 2, 2, out, 4, 4, 0);
    /* align_corners=False 2x: out[0][0] = in[0][0]; out[0][1] = 0.75*in0 + 0.25*in1 */
    CU_ASSERT(fabsf(out[0] - 0) < 1e-6f);
    CU_ASSERT(fabsf(out[1] - 0.25f) < 1e-6f);
    CU_ASSERT(fabsf(out[5] - (0.1875f * 1 + 0.1875f * 2 + 0.0625f * 3)) < 1e-6f);   /* src (0.25, 0.25) */
    CU_ASSERT(fabsf(out[15] - 3) < 1e-6f);
    float o2[16];
    cx_resize_bilinear(in, 2, 2, o2, 4, 4, 1);   /* other rounding order, same values here */
    for (int i = 0; i < 16; i++)
        CU_ASSERT(fabsf(o2[i] - out[i]) < 1e-6f);
}

typedef struct cnt {
    int hits[1000];
} cnt;

static void count_task(void *ctx, int i)
{
    ((cnt *)ctx)->hits[i]++;
}

static void test_pool(void)
{
    cx_pool *p = NULL;
    cx_error err;
    CU_ASSERT(cx_pool_new(0, &p, &err) == CX_ERR_INVALID);
    CU_ASSERT_FATAL(cx_pool_new(3, &p, &err) == CX_OK);
    CU_ASSERT_EQUAL(cx_pool_threads(p), 3);
    cnt c;
    for (int round = 0; round < 200; round++) {
        memset(&c, 0, sizeof c);
        int n = 1 + round * 5 % 1000;
        cx_pool_run(p, n, count_task, &c);
        int bad = 0;
        for (int i = 0; i < 1000; i++)
            bad += c.hits[i] != (i < n);
        CU_ASSERT_EQUAL(bad, 0);
    }
    cx_pool_free(p);
    cx_pool_free(NULL);
    memset(&c, 0, sizeof c);
    cx_pool_run(NULL, 10, count_task, &c);
    CU_ASSERT_EQUAL(c.hits[9], 1);
}

static const cx_test_case cases[] = {
    {"conv2d shapes, strides, dilation, residual, batch", test_conv_shapes},
    {"conv2d over several im2col tiles", test_conv_tiled},
    {"transposed conv 2x2 stride 2", test_deconv},
    {"max pool and nearest upsample", test_pool_upsample},
    {"stem max pool fast path equals the generic one (NaN included)", test_pool_fast_path},
    {"linear, softmax, sigmoid", test_linear_softmax_sigmoid},
    {"bilinear resize (align_corners=False)", test_resize},
    {"thread pool runs every task exactly once", test_pool},
    {NULL, NULL}};

CX_TEST_MAIN("nn", cases)

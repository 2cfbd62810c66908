/* Unit tests for src/image: the PS3.3 window functions against hand-computed values, modality and
 * VOI LUTs (signed first-mapped, bad descriptors), polarity, the automatic window, area resize
 * (constant, mean, exact fractions, size rules), PNG/JPEG round trips and broken files, and
 * allocation failures injected on every allocation of render and resize. */
#include "config.h"
#include "cx_image.h"
#include "cx_test.h"

#include <math.h>
#include <stdio.h>
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEAR(a, b, tol) CU_ASSERT(fabs((double)(a) - (double)(b)) <= (tol))

static char tmpdir[256];

static void remove_tmpdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

static const char *tmp_path(const char *name)
{
    static char buf[512];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_image.XXXXXX");
        if (mkdtemp(tmpdir))
            atexit(remove_tmpdir);
        else
            snprintf(tmpdir, sizeof tmpdir, "/tmp");
    }
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* ---- window functions (PS3.3 C.11.2.1.2.1, C.11.2.1.3.1, C.11.2.1.3.2) ---- */

static void test_linear(void)
{
    /* c = 2048, w = 4096: ramp from 0 (x <= 0) to 1 (x > 4095), mid at c - 0.5 */
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 2048, 4096, 0), 0.0, 0);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 2048, 4096, -10), 0.0, 0);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 2048, 4096, 4095), 1.0, 1e-12);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 2048, 4096, 4096), 1.0, 0);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 2048, 4096, 2047.5), 0.5, 1e-12);
    /* (1000 - 2047.5) / 4095 + 0.5 */
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 2048, 4096, 1000), 0.2442002442, 1e-9);
    /* RG1_J2KI's window 15000/30000 at x = 7500: (7500 - 14999.5) / 29999 + 0.5 */
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 15000, 30000, 7500), 0.2500083336, 1e-9);
}

static void test_linear_width1(void)
{
    /* w = 1: a step at c - 0.5; x <= 99.5 -> 0, otherwise 1; never a division by zero */
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 100, 1, 99), 0.0, 0);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 100, 1, 99.5), 0.0, 0);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 100, 1, 99.51), 1.0, 0);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR, 100, 1, 100), 1.0, 0);
    CU_ASSERT(isnan(cx_grey_window_eval(CX_VOI_LINEAR, 100, 0.5, 100)));
    CU_ASSERT(isnan(cx_grey_window_eval(CX_VOI_LINEAR, 100, 0, 100)));
    /* and through cx_grey_voi: width < 1 is a format error naming the numbers */
    cx_image *img = NULL, *o = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_image_new(2, 1, &img, &e), CX_OK);
    cx_voi_params p = cx_voi_default_params();
    p.kind = CX_VOI_WINDOW;
    p.center = 100;
    p.width = 0.5;
    CU_ASSERT_EQUAL(cx_grey_voi(img, &p, &o, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "width 0.5"));
    img->data[0] = 99;
    img->data[1] = 100;
    p.width = 1;
    CU_ASSERT_EQUAL_FATAL(cx_grey_voi(img, &p, &o, &e), CX_OK);
    CU_ASSERT_EQUAL(o->data[0], 0.0f);
    CU_ASSERT_EQUAL(o->data[1], 1.0f);
    cx_image_free(o);
    cx_image_free(img);
}

static void test_linear_exact(void)
{
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 0, 10, -5), 0.0, 0);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 0, 10, -4), 0.1, 1e-12);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 0, 10, 2.5), 0.75, 1e-12);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 0, 10, 5), 1.0, 1e-12);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 0, 10, 6), 1.0, 0);
    /* width below 1 is legal for LINEAR_EXACT: c = 10, w = 0.5 -> 0.5 at c, 0 at 9.75, 1 above 10.25 */
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 10, 0.5, 10), 0.5, 1e-12);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 10, 0.5, 9.75), 0.0, 0);
    NEAR(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 10, 0.5, 10.3), 1.0, 0);
    CU_ASSERT(isnan(cx_grey_window_eval(CX_VOI_LINEAR_EXACT, 0, 0, 1)));
}

static void test_sigmoid(void)
{
    NEAR(cx_grey_window_eval(CX_VOI_SIGMOID, 50, 20, 50), 0.5, 1e-12);
    NEAR(cx_grey_window_eval(CX_VOI_SIGMOID, 50, 20, 55), 0.7310585786, 1e-9); /* 1/(1+e^-1) */
    NEAR(cx_grey_window_eval(CX_VOI_SIGMOID, 50, 20, 40), 0.1192029220, 1e-9); /* 1/(1+e^2) */
    CU_ASSERT(isnan(cx_grey_window_eval(CX_VOI_SIGMOID, 50, 0, 40)));
}

/* ---- modality ---- */

static void test_modality_rescale(void)
{
    int32_t st[3] = {0, 1, 1000};
    cx_modality_params m = {.kind = CX_MODALITY_RESCALE, .slope = 2, .intercept = -1024};
    cx_image *o = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_grey_modality(st, 3, 1, &m, &o, &e), CX_OK);
    CU_ASSERT_EQUAL(o->data[0], -1024.0f);
    CU_ASSERT_EQUAL(o->data[1], -1022.0f);
    CU_ASSERT_EQUAL(o->data[2], 976.0f);
    cx_image_free(o);
    o = NULL;
    m.slope = 0;
    CU_ASSERT_EQUAL(cx_grey_modality(st, 3, 1, &m, &o, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_STRING_EQUAL(e.msg, "image: modality: rescale slope 0 / intercept -1024 unusable");
}

static void test_modality_signed_lut(void)
{
    /* first mapped -2 (a signed LUT): inputs below clamp to entry 0, above to the last */
    uint16_t data[4] = {10, 20, 30, 40};
    cx_modality_params m = {.kind = CX_MODALITY_LUT, .lut = {.entries = 4, .first_mapped = -2, .bits = 16, .data = data}};
    int32_t st[6] = {-5, -2, -1, 0, 1, 5};
    float want[6] = {10, 10, 20, 30, 40, 40};
    cx_image *o = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_grey_modality(st, 6, 1, &m, &o, &e), CX_OK);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(o->data[i], want[i]);
    cx_image_free(o);
    o = NULL;
    /* an entry above 2^bits - 1 is a format error naming the entry */
    uint16_t bad[4] = {10, 300, 30, 40};
    m.lut.data = bad;
    m.lut.bits = 8;
    CU_ASSERT_EQUAL(cx_grey_modality(st, 6, 1, &m, &o, &e), CX_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "image: modality LUT: LUT entry 1 = 300 exceeds 255 (descriptor says 8 bits)");
    m.lut.bits = 17;
    CU_ASSERT_EQUAL(cx_grey_modality(st, 6, 1, &m, &o, &e), CX_ERR_FORMAT);
    m.lut.bits = 16;
    m.lut.entries = 0;
    CU_ASSERT_EQUAL(cx_grey_modality(st, 6, 1, &m, &o, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(o);
}

/* ---- VOI LUT, NONE, inversion, 8-bit ---- */

static void test_voi_lut_and_invert(void)
{
    uint16_t lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = (uint16_t)(i * 257);
    cx_image *img = NULL, *o = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_image_new(4, 1, &img, &e), CX_OK);
    img->data[0] = 0;
    img->data[1] = 128;
    img->data[2] = 255;
    img->data[3] = 1000; /* beyond the LUT: last entry */
    cx_voi_params p = cx_voi_default_params();
    p.kind = CX_VOI_LUT;
    p.lut = (cx_grey_lut){.entries = 256, .first_mapped = 0, .bits = 16, .data = lut};
    CU_ASSERT_EQUAL_FATAL(cx_grey_voi(img, &p, &o, &e), CX_OK);
    NEAR(o->data[0], 0.0, 0);
    NEAR(o->data[1], 32896.0 / 65535.0, 1e-7);
    NEAR(o->data[3], 1.0, 0);
    uint8_t u8[4];
    cx_image_to_u8(o, u8);
    CU_ASSERT_EQUAL(u8[1], 128);
    CU_ASSERT_EQUAL(u8[2], 255);
    cx_image_free(o);
    p.invert = 1;
    CU_ASSERT_EQUAL_FATAL(cx_grey_voi(img, &p, &o, &e), CX_OK);
    NEAR(o->data[0], 1.0, 0);
    NEAR(o->data[1], 1.0 - 32896.0 / 65535.0, 1e-7);
    NEAR(o->data[2], 0.0, 0);
    cx_image_free(o);
    /* NONE: linear over the given range, clamped */
    p = cx_voi_default_params();
    p.kind = CX_VOI_NONE;
    p.range_min = 0;
    p.range_max = 510;
    CU_ASSERT_EQUAL_FATAL(cx_grey_voi(img, &p, &o, &e), CX_OK);
    NEAR(o->data[1], 128.0 / 510.0, 1e-7);
    NEAR(o->data[3], 1.0, 0);
    cx_image_free(o);
    p.range_max = 0;
    o = NULL;
    CU_ASSERT_EQUAL(cx_grey_voi(img, &p, &o, &e), CX_ERR_INVALID);
    CU_ASSERT_PTR_NULL(o);
    cx_image_free(img);
}

static void test_u8_rounding(void)
{
    cx_image *img = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_image_new(6, 1, &img, &e), CX_OK);
    float v[6] = {-0.1f, 0.0f, 0.5f, 1.0f / 510.0f, 1.0f, NAN};
    memcpy(img->data, v, sizeof v);
    uint8_t u[6];
    cx_image_to_u8(img, u);
    CU_ASSERT_EQUAL(u[0], 0);
    CU_ASSERT_EQUAL(u[1], 0);
    CU_ASSERT_EQUAL(u[2], 128); /* 127.5 rounds up */
    CU_ASSERT_EQUAL(u[3], 1);   /* 0.5 rounds up */
    CU_ASSERT_EQUAL(u[4], 255);
    CU_ASSERT_EQUAL(u[5], 0);
    cx_image_free(img);
}

/* ---- automatic window ---- */

static void test_auto_window(void)
{
    /* 100x100: 30% background at 0 (the minimum), 3 burned-in labels at 4095 (the maximum), the
     * rest a ramp 1000..1999 (each value 7 times). Percentiles 1..99 of the ramp: 1010 and 1989. */
    cx_image *img = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_image_new(100, 100, &img, &e), CX_OK);
    int k = 0;
    for (int i = 0; i < 10000; i++) {
        if (i < 3000)
            img->data[i] = 0;
        else if (i < 3003)
            img->data[i] = 4095;
        else if (k < 7000)
            img->data[i] = (float)(1000 + (k++ / 7));
        else
            img->data[i] = 0;
    }
    double c = 0, w = 0;
    CU_ASSERT_EQUAL_FATAL(cx_grey_auto_window(img, CX_AUTO_PERCENTILE, 1, 99, &c, &w, &e), CX_OK);
    /* kept = 6997 ramp pixels (3 of the 7000 slots were the labels' share) */
    NEAR(c - w / 2, 1010, 1.0);
    NEAR(c + w / 2, 1989, 1.0);
    CU_ASSERT_EQUAL_FATAL(cx_grey_auto_window(img, CX_AUTO_MINMAX, 1, 99, &c, &w, &e), CX_OK);
    NEAR(c, 2047.5, 1e-9);
    NEAR(w, 4095, 1e-9);
    /* through cx_grey_voi: the ramp spans 0..1, the background is black */
    cx_voi_params p = cx_voi_default_params();
    cx_image *o = NULL;
    CU_ASSERT_EQUAL_FATAL(cx_grey_voi(img, &p, &o, &e), CX_OK);
    CU_ASSERT_EQUAL(o->data[0], 0.0f);
    CU_ASSERT_EQUAL(o->data[3000], 1.0f);
    NEAR(o->data[3003 + 3500], 0.5, 0.01);
    cx_image_free(o);
    /* constant image: a unit window centred on the value (mid-grey) */
    for (int i = 0; i < 10000; i++)
        img->data[i] = 42;
    CU_ASSERT_EQUAL(cx_grey_auto_window(img, CX_AUTO_PERCENTILE, 1, 99, &c, &w, &e), CX_OK);
    NEAR(c, 42, 0);
    NEAR(w, 1, 0);
    /* two-level image: nothing left after the extremes, falls back to min..max */
    img->data[0] = 0;
    CU_ASSERT_EQUAL(cx_grey_auto_window(img, CX_AUTO_PERCENTILE, 1, 99, &c, &w, &e), CX_OK);
    NEAR(c, 21, 0);
    NEAR(w, 42, 0);
    CU_ASSERT_EQUAL(cx_grey_auto_window(img, CX_AUTO_PERCENTILE, 99, 1, &c, &w, &e), CX_ERR_INVALID);
    img->data[5] = NAN;
    CU_ASSERT_EQUAL(cx_grey_auto_window(img, CX_AUTO_PERCENTILE, 1, 99, &c, &w, &e), CX_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "image: auto window: pixel 5 is not finite");
    cx_image_free(img);
}

static void test_auto_window_float(void)
{
    /* non-integer values use 65536 bins: percentiles within one bin of the true ones */
    cx_image *img = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_image_new(1000, 1, &img, &e), CX_OK);
    for (int i = 0; i < 1000; i++)
        img->data[i] = (float)(i * 0.001);
    double c, w;
    CU_ASSERT_EQUAL_FATAL(cx_grey_auto_window(img, CX_AUTO_PERCENTILE, 10, 90, &c, &w, &e), CX_OK);
    /* kept: 0.001 .. 0.998 (998 values); 10% -> ~0.100, 90% -> ~0.898 */
    NEAR(c - w / 2, 0.100, 0.0015);
    NEAR(c + w / 2, 0.898, 0.0015);
    cx_image_free(img);
}

/* cx_grey_render's table path must give exactly what modality + VOI give pixel by pixel */
static void test_render_table_identical(void)
{
    enum { W = 200, H = 100 };
    static int32_t st[W * H];
    unsigned r = 777;
    for (int i = 0; i < W * H; i++) {
        r = r * 1103515245u + 12345u;
        st[i] = (int32_t)((r >> 16) % 4096) - 2048; /* signed 12-bit */
    }
    static uint16_t mlut[4096], vlut[1000];
    for (int i = 0; i < 4096; i++)
        mlut[i] = (uint16_t)((i * 37) % 4000);
    for (int i = 0; i < 1000; i++)
        vlut[i] = (uint16_t)(i * 65);
    cx_modality_params mods[3] = {
        {.kind = CX_MODALITY_IDENTITY},
        {.kind = CX_MODALITY_RESCALE, .slope = 0.7, .intercept = -100.25},
        {.kind = CX_MODALITY_LUT, .lut = {.entries = 4096, .first_mapped = -2048, .bits = 12, .data = mlut}},
    };
    int compared = 0;
    for (int mi = 0; mi < 3; mi++)
        for (int k = 0; k < 7; k++) {
            cx_voi_params v = cx_voi_default_params();
            v.invert = k & 1;
            switch (k) {
            case 0: v.kind = CX_VOI_WINDOW; v.function = CX_VOI_LINEAR; v.center = 100; v.width = 900; break;
            case 1: v.kind = CX_VOI_WINDOW; v.function = CX_VOI_LINEAR_EXACT; v.center = -10.5; v.width = 0.5; break;
            case 2: v.kind = CX_VOI_WINDOW; v.function = CX_VOI_SIGMOID; v.center = 300; v.width = 1200; break;
            case 3: v.kind = CX_VOI_LUT; v.lut = (cx_grey_lut){.entries = 1000, .first_mapped = -500, .bits = 16, .data = vlut}; break;
            case 4: v.kind = CX_VOI_AUTO; break;
            case 5: v.kind = CX_VOI_AUTO; v.auto_method = CX_AUTO_MINMAX; break;
            case 6: v.kind = CX_VOI_NONE; v.range_min = -2048; v.range_max = 4000; break;
            }
            cx_image *a = NULL, *mod = NULL, *b = NULL;
            cx_error e = {0};
            CU_ASSERT_EQUAL_FATAL(cx_grey_render(st, W, H, &mods[mi], &v, &a, &e), CX_OK);
            CU_ASSERT_EQUAL_FATAL(cx_grey_modality(st, W, H, &mods[mi], &mod, &e), CX_OK);
            CU_ASSERT_EQUAL_FATAL(cx_grey_voi(mod, &v, &b, &e), CX_OK);
            int same = memcmp(a->data, b->data, sizeof(float) * W * H) == 0;
            CU_ASSERT(same);
            if (!same)
                fprintf(stderr, "table path differs: modality %d, voi case %d\n", mi, k);
            compared++;
            cx_image_free(a);
            cx_image_free(mod);
            cx_image_free(b);
        }
    CU_ASSERT_EQUAL(compared, 21);
}

/* ---- resize ---- */

static double mean_of(const cx_image *img)
{
    double s = 0;
    size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++)
        s += img->data[i];
    return s / (double)n;
}

static void test_resize_constant(void)
{
    cx_image *img = NULL, *o = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_image_new(1841, 1955, &img, &e), CX_OK);
    for (size_t i = 0; i < (size_t)1841 * 1955; i++)
        img->data[i] = 7.25f;
    int ow, oh;
    cx_fit_params fp = {.longest = 512};
    CU_ASSERT_EQUAL_FATAL(cx_image_fit_size(1841, 1955, &fp, &ow, &oh, &e), CX_OK);
    CU_ASSERT_EQUAL(oh, 512);
    CU_ASSERT_EQUAL(ow, 482); /* 1841 * 512 / 1955 = 482.16 */
    CU_ASSERT_EQUAL_FATAL(cx_image_resize_area(img, ow, oh, &o, &e), CX_OK);
    float lo = 1e9f, hi = -1e9f;
    for (int i = 0; i < ow * oh; i++) {
        lo = o->data[i] < lo ? o->data[i] : lo;
        hi = o->data[i] > hi ? o->data[i] : hi;
    }
    NEAR(lo, 7.25, 1e-5);
    NEAR(hi, 7.25, 1e-5);
    cx_image_free(o);
    cx_image_free(img);
}

static void test_resize_mean_and_exact(void)
{
    cx_image *img = NULL, *o = NULL;
    cx_error e = {0};
    /* pseudo-random content, awkward ratios down and up: the mean is the integral, kept */
    CU_ASSERT_EQUAL_FATAL(cx_image_new(37, 23, &img, &e), CX_OK);
    unsigned r = 12345;
    for (int i = 0; i < 37 * 23; i++) {
        r = r * 1103515245u + 12345u;
        img->data[i] = (float)((r >> 16) % 1000) / 10.0f;
    }
    int sizes[][2] = {{10, 7}, {5, 3}, {1, 1}, {37, 23}, {80, 51}, {36, 22}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        CU_ASSERT_EQUAL_FATAL(cx_image_resize_area(img, sizes[k][0], sizes[k][1], &o, &e), CX_OK);
        CU_ASSERT_EQUAL(o->width, sizes[k][0]);
        CU_ASSERT_EQUAL(o->height, sizes[k][1]);
        NEAR(mean_of(o), mean_of(img), 1e-3);
        if (sizes[k][0] == 37) /* same size: identity */
            CU_ASSERT_EQUAL(memcmp(o->data, img->data, 37 * 23 * sizeof(float)), 0);
        cx_image_free(o);
    }
    cx_image_free(img);
    /* 3 -> 2: each output covers 1.5 source pixels: (0 + 0.5*3)/1.5 = 1, (0.5*3 + 6)/1.5 = 5 */
    CU_ASSERT_EQUAL_FATAL(cx_image_new(3, 1, &img, &e), CX_OK);
    img->data[0] = 0;
    img->data[1] = 3;
    img->data[2] = 6;
    CU_ASSERT_EQUAL_FATAL(cx_image_resize_area(img, 2, 1, &o, &e), CX_OK);
    NEAR(o->data[0], 1.0, 1e-6);
    NEAR(o->data[1], 5.0, 1e-6);
    cx_image_free(o);
    cx_image_free(img);
    /* 4x4 -> 2x2: block means */
    CU_ASSERT_EQUAL_FATAL(cx_image_new(4, 4, &img, &e), CX_OK);
    for (int i = 0; i < 16; i++)
        img->data[i] = (float)i;
    CU_ASSERT_EQUAL_FATAL(cx_image_resize_area(img, 2, 2, &o, &e), CX_OK);
    NEAR(o->data[0], (0 + 1 + 4 + 5) / 4.0, 1e-6);
    NEAR(o->data[1], (2 + 3 + 6 + 7) / 4.0, 1e-6);
    NEAR(o->data[2], (8 + 9 + 12 + 13) / 4.0, 1e-6);
    NEAR(o->data[3], (10 + 11 + 14 + 15) / 4.0, 1e-6);
    cx_image_free(o);
    o = NULL;
    CU_ASSERT_EQUAL(cx_image_resize_area(img, 0, 2, &o, &e), CX_ERR_INVALID);
    CU_ASSERT_PTR_NULL(o);
    cx_image_free(img);
}

static void test_fit_size(void)
{
    cx_error e = {0};
    int w = -1, h = -1;
    cx_fit_params tv = {.longest = 0, .min_size = 800, .max_size = 1333};
    CU_ASSERT_EQUAL(cx_image_fit_size(1841, 1955, &tv, &w, &h, &e), CX_OK);
    CU_ASSERT_EQUAL(w, 800);
    CU_ASSERT_EQUAL(h, 849); /* floor(1955 * 800 / 1841) = floor(849.54) */
    CU_ASSERT_EQUAL(cx_image_fit_size(3000, 1000, &tv, &w, &h, &e), CX_OK);
    CU_ASSERT_EQUAL(w, 1333); /* max_size wins: scale = 1333 / 3000 */
    CU_ASSERT_EQUAL(h, 444);
    cx_fit_params lg = {.longest = 512};
    CU_ASSERT_EQUAL(cx_image_fit_size(1000, 3000, &lg, &w, &h, &e), CX_OK);
    CU_ASSERT_EQUAL(w, 171); /* 170.67 rounds to 171 */
    CU_ASSERT_EQUAL(h, 512);
    CU_ASSERT_EQUAL(cx_image_fit_size(10000, 1, &lg, &w, &h, &e), CX_OK);
    CU_ASSERT_EQUAL(w, 512);
    CU_ASSERT_EQUAL(h, 1); /* never 0 */
    w = h = -1;
    cx_fit_params bad = {.longest = 0, .min_size = 900, .max_size = 800};
    CU_ASSERT_EQUAL(cx_image_fit_size(100, 100, &bad, &w, &h, &e), CX_ERR_INVALID);
    CU_ASSERT_EQUAL(w, -1);
    CU_ASSERT_STRING_EQUAL(e.msg, "resize: fit: min_size 900 / max_size 800 invalid (need 0 < min <= max <= 65536)");
}

/* ---- files ---- */

static void test_png_roundtrip(void)
{
    cx_image *img = NULL, *back = NULL;
    cx_error e = {0};
    int bits = 0;
    CU_ASSERT_EQUAL_FATAL(cx_image_new(256, 3, &img, &e), CX_OK);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 256; x++)
            img->data[y * 256 + x] = (float)x / 255.0f;
    const char *p8 = tmp_path("g8.png");
    CU_ASSERT_EQUAL_FATAL(cx_image_write_png(p8, img, 8, &e), CX_OK);
    CU_ASSERT_EQUAL_FATAL(cx_image_read(p8, &back, &bits, &e), CX_OK);
    CU_ASSERT_EQUAL(bits, 8);
    CU_ASSERT_EQUAL(back->width, 256);
    CU_ASSERT_EQUAL(back->height, 3);
    CU_ASSERT_EQUAL(memcmp(back->data, img->data, 256 * 3 * sizeof(float)), 0);
    cx_image_free(back);
    /* 16 bit keeps finer steps */
    for (int x = 0; x < 256; x++)
        img->data[x] = (float)(x * 100) / 65535.0f;
    const char *p16 = tmp_path("g16.png");
    CU_ASSERT_EQUAL_FATAL(cx_image_write_png(p16, img, 16, &e), CX_OK);
    CU_ASSERT_EQUAL_FATAL(cx_image_read(p16, &back, &bits, &e), CX_OK);
    CU_ASSERT_EQUAL(bits, 16);
    for (int x = 0; x < 256; x++)
        NEAR(back->data[x] * 65535.0, x * 100, 1e-2);
    cx_image_free(back);
    CU_ASSERT_EQUAL(cx_image_write_png(p16, img, 12, &e), CX_ERR_INVALID);
    cx_image_free(img);
}

static void test_png_rgb_luma(void)
{
    uint8_t rgb[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50};
    cx_error e = {0};
    const char *p = tmp_path("rgb.png");
    CU_ASSERT_EQUAL_FATAL(cx_image_write_png_rgb(p, rgb, 2, 2, &e), CX_OK);
    cx_image *back = NULL;
    CU_ASSERT_EQUAL_FATAL(cx_image_read(p, &back, NULL, &e), CX_OK);
    /* Pillow "L": (19595 R + 38470 G + 7471 B + 32768) >> 16 */
    CU_ASSERT_EQUAL((int)lroundf(back->data[0] * 255), 76);
    CU_ASSERT_EQUAL((int)lroundf(back->data[1] * 255), 150);
    CU_ASSERT_EQUAL((int)lroundf(back->data[2] * 255), 29);
    CU_ASSERT_EQUAL((int)lroundf(back->data[3] * 255), 124); /* 59.8 + 58.7 + 5.7 = 124.2 */
    cx_image_free(back);
}

static int write_jpeg(const char *path, int w, int h, int comps, const uint8_t *px)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr je;
    c.err = jpeg_std_error(&je);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
    return 0;
}

static long file_size(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void truncate_copy(const char *src, const char *dst, long keep)
{
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    if (!a || !b) {
        if (a) fclose(a);
        if (b) fclose(b);
        return;
    }
    for (long i = 0; i < keep; i++) {
        int ch = fgetc(a);
        if (ch == EOF)
            break;
        fputc(ch, b);
    }
    fclose(a);
    fclose(b);
}

static void test_jpeg_read(void)
{
    enum { W = 64, H = 48 };
    static uint8_t grey[W * H], rgb[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        grey[i] = 128;
        rgb[3 * i] = 200;
        rgb[3 * i + 1] = 100;
        rgb[3 * i + 2] = 50;
    }
    const char *pg = tmp_path("g.jpg");
    CU_ASSERT_EQUAL_FATAL(write_jpeg(pg, W, H, 1, grey), 0);
    cx_image *img = NULL;
    cx_error e = {0};
    int bits = 0;
    CU_ASSERT_EQUAL_FATAL(cx_image_read(pg, &img, &bits, &e), CX_OK);
    CU_ASSERT_EQUAL(img->width, W);
    CU_ASSERT_EQUAL(img->height, H);
    CU_ASSERT_EQUAL(bits, 8);
    NEAR(img->data[W * H / 2] * 255, 128, 1.01);
    cx_image_free(img);
    char pc[512];
    snprintf(pc, sizeof pc, "%s", tmp_path("c.jpg"));
    CU_ASSERT_EQUAL_FATAL(write_jpeg(pc, W, H, 3, rgb), 0);
    CU_ASSERT_EQUAL_FATAL(cx_image_read(pc, &img, NULL, &e), CX_OK);
    NEAR(img->data[W * H / 2] * 255, 124, 2.01); /* luma of (200,100,50) after a q100 round trip */
    cx_image_free(img);
    /* truncated JPEG: an error, not a grey-padded image */
    char pt[512];
    snprintf(pt, sizeof pt, "%s", tmp_path("t.jpg"));
    truncate_copy(pc, pt, file_size(pc) / 2);
    img = NULL;
    cx_status s = cx_image_read(pt, &img, NULL, &e);
    CU_ASSERT_EQUAL(s, CX_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(img);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "jpeg: "));
}

static void test_broken_files(void)
{
    cx_image *img = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL(cx_image_read("/nonexistent/x.png", &img, NULL, &e), CX_ERR_IO);
    CU_ASSERT_STRING_EQUAL(e.msg, "image: cannot open /nonexistent/x.png: No such file or directory");
    const char *pt = tmp_path("text.png");
    FILE *f = fopen(pt, "w");
    fputs("hello, not an image\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(cx_image_read(pt, &img, NULL, &e), CX_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "neither PNG nor JPEG"));
    /* PNG cut in the middle of its image data */
    cx_image *g = NULL;
    CU_ASSERT_EQUAL_FATAL(cx_image_new(300, 200, &g, &e), CX_OK);
    for (int i = 0; i < 300 * 200; i++)
        g->data[i] = (float)((i * 7919) % 256) / 255.0f;
    char full[512];
    snprintf(full, sizeof full, "%s", tmp_path("full.png"));
    CU_ASSERT_EQUAL_FATAL(cx_image_write_png(full, g, 8, &e), CX_OK);
    const char *cut = tmp_path("cut.png");
    truncate_copy(full, cut, file_size(full) / 2);
    CU_ASSERT_EQUAL(cx_image_read(cut, &img, NULL, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(img);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "png: "));
    /* only the signature */
    truncate_copy(full, cut, 8);
    CU_ASSERT_EQUAL(cx_image_read(cut, &img, NULL, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(img);
    CU_ASSERT_EQUAL(cx_image_write_png("/nonexistent/dir/x.png", g, 8, &e), CX_ERR_IO);
    cx_image_free(g);
}

/* ---- injected allocation failures: every allocation of render + resize + PNG write ---- */

static void alloc_failures_on(const int32_t *st, int w, int h)
{
    cx_modality_params m = {.kind = CX_MODALITY_RESCALE, .slope = 1, .intercept = 0};
    cx_voi_params v = cx_voi_default_params();
    const char *p = tmp_path("alloc.png");
    int failures = 0, n;
    for (n = 1; n < 200; n++) {
        cx_error e = {0};
        cx_image *a = NULL, *b = NULL;
        cx_alloc_fail_at((unsigned long)n, 0);
        cx_status s = cx_grey_render(st, w, h, &m, &v, &a, &e);
        if (s == CX_OK)
            s = cx_image_resize_area(a, 17, 13, &b, &e);
        if (s == CX_OK)
            s = cx_image_write_png(p, b, 8, &e);
        unsigned long used = cx_alloc_count();
        cx_alloc_reset();
        cx_image_free(a);
        cx_image_free(b);
        if (s == CX_OK) {
            CU_ASSERT(used < (unsigned long)n); /* the armed failure was never reached */
            break;
        }
        CU_ASSERT_EQUAL(s, CX_ERR_NOMEM);
        CU_ASSERT(strlen(e.msg) > 0);
        failures++;
    }
    CU_ASSERT(failures >= 8); /* render, auto window, resize, png each allocate */
    CU_ASSERT(n < 200);
}

static void test_alloc_failures(void)
{
    static int32_t st[64 * 64];
    for (int i = 0; i < 40 * 30; i++) /* 1200 distinct values in 1200 pixels: per-pixel path */
        st[i] = i % 4096;
    alloc_failures_on(st, 40, 30);
    for (int i = 0; i < 64 * 64; i++) /* 512 distinct values in 4096 pixels: table path */
        st[i] = i % 512;
    alloc_failures_on(st, 64, 64);
}

/* The overlay picture: layers tinted and outlined in their colours, later ones over earlier ones,
 * the legend in a dark box at the top left with its text in the line's colour, and boxes outside
 * the image refused. */
static void test_overlay(void)
{
    const int w = 400, h = 90; /* wide enough that no legend line wraps */
    cx_image *img = NULL;
    cx_error e = {0};
    CU_ASSERT_FATAL(cx_image_new(w, h, &img, &e) == CX_OK);
    for (int i = 0; i < w * h; i++)
        img->data[i] = 0.5f;
    static uint8_t big[60 * 60], small[10 * 10];
    memset(big, 1, sizeof big);
    memset(small, 1, sizeof small);
    cx_overlay_layer layers[2] = {{40, 20, 60, 60, big, {0, 0, 255}}, {70, 50, 10, 10, small, {255, 0, 0}}};
    cx_legend_line lines[2];
    memset(lines, 0, sizeof lines);
    snprintf(lines[0].text, sizeof lines[0].text, "Research use only - not for diagnosis");
    lines[0].has_color = 1;
    lines[0].rgb[0] = 255, lines[0].rgb[1] = 214;
    snprintf(lines[1].text, sizeof lines[1].text, "Lung opacity: right lung 12.3%%");
    lines[1].has_color = lines[1].swatch = 1;
    lines[1].rgb[0] = 255;
    uint8_t *rgb = NULL;
    CU_ASSERT_FATAL(cx_overlay_render(img, layers, 2, lines, 2, &rgb, &e) == CX_OK);
    const uint8_t *p = rgb + ((size_t)35 * w + 55) * 3; /* inside the big layer only: tinted blue */
    CU_ASSERT_EQUAL(p[0], (128 * 65) / 100);
    CU_ASSERT_EQUAL(p[2], (128 * 65 + 255 * 35) / 100);
    p = rgb + ((size_t)55 * w + 75) * 3; /* inside both: red over blue */
    CU_ASSERT(p[0] > p[2]);
    p = rgb + ((size_t)50 * w + 70) * 3; /* the small layer's border: its outline colour */
    CU_ASSERT(p[0] == 255 && p[1] == 0 && p[2] == 0);
    p = rgb + ((size_t)85 * w + 5) * 3; /* outside everything: the grey image */
    CU_ASSERT(p[0] == 128 && p[1] == 128 && p[2] == 128);
    /* Legend: a dark box from the top left with yellow text on line 1 and a red swatch on line 2
     * (scale 1 at this size: lines 9 px apart, 4 px padding). */
    int dark = 0, yellow = 0;
    for (int y = 0; y < 9; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *q = rgb + ((size_t)y * w + x) * 3;
            dark += q[0] == 0 && q[1] == 0 && q[2] == 0;
            yellow += q[0] == 255 && q[1] == 214 && q[2] == 0;
        }
    CU_ASSERT(dark > 200);
    CU_ASSERT(yellow > 20);
    p = rgb + ((size_t)(4 + 9 + 3) * w + 4 + 3) * 3;
    CU_ASSERT(p[0] == 255 && p[1] == 0 && p[2] == 0);
    cx_free(rgb);
    /* A box with a label: the rectangle in the layer's colour, the label's text on dark backing
     * above it (green pixels in the text row, none before the box was drawn). */
    cx_overlay_layer boxed = {200, 40, 10, 10, small, {0, 255, 0}, 1, {180, 30, 260, 70}, "LUNG 0.97"};
    rgb = NULL;
    CU_ASSERT_FATAL(cx_overlay_render(img, &boxed, 1, NULL, 0, &rgb, &e) == CX_OK);
    p = rgb + ((size_t)50 * w + 180) * 3; /* left edge of the box, outside the mask */
    CU_ASSERT(p[0] == 0 && p[1] == 255 && p[2] == 0);
    p = rgb + ((size_t)50 * w + 240) * 3; /* inside the box, outside the mask: untouched grey */
    CU_ASSERT(p[0] == 128 && p[1] == 128 && p[2] == 128);
    int green = 0, black = 0;
    for (int y = 21; y < 30; y++)
        for (int x = 180; x < 240; x++) {
            const uint8_t *q = rgb + ((size_t)y * w + x) * 3;
            green += q[0] == 0 && q[1] == 255 && q[2] == 0;
            black += q[0] == 0 && q[1] == 0 && q[2] == 0;
        }
    CU_ASSERT(green > 30);
    CU_ASSERT(black > 100);
    cx_free(rgb);
    /* A layer partly outside the image. */
    layers[1].x0 = 395;
    rgb = NULL;
    CU_ASSERT_EQUAL(cx_overlay_render(img, layers, 2, lines, 2, &rgb, &e), CX_ERR_INVALID);
    CU_ASSERT(strstr(e.msg, "layer 1") != NULL);
    CU_ASSERT(rgb == NULL);
    cx_image_free(img);
}

static const cx_test_case cases[] = {
    {"linear", test_linear},
    {"linear width 1", test_linear_width1},
    {"linear exact", test_linear_exact},
    {"sigmoid", test_sigmoid},
    {"modality rescale", test_modality_rescale},
    {"modality signed LUT", test_modality_signed_lut},
    {"VOI LUT, NONE and inversion", test_voi_lut_and_invert},
    {"8-bit rounding", test_u8_rounding},
    {"auto window", test_auto_window},
    {"auto window float", test_auto_window_float},
    {"render table path identical", test_render_table_identical},
    {"resize constant", test_resize_constant},
    {"resize mean and exact", test_resize_mean_and_exact},
    {"fit size", test_fit_size},
    {"png round trip", test_png_roundtrip},
    {"png rgb luma", test_png_rgb_luma},
    {"jpeg read", test_jpeg_read},
    {"broken files", test_broken_files},
    {"allocation failures", test_alloc_failures},
    {"overlay picture", test_overlay},
    {NULL, NULL},
};

CX_TEST_MAIN("image", cases)

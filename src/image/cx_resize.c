/* cx_resize: the last step before the engine: choose the input size that keeps the aspect ratio,
 * and resample by area averaging. Area averaging (an exact box filter with fractional coverage)
 * is used rather than bilinear sampling because large radiographs shrink 4-8x here, and sampling
 * would alias the fine texture (ground glass) the model has to see. */
#include "config.h"
#include "cx_image.h"

#include <math.h>
#include <string.h>

static const char *STAGE = "resize";

cx_status cx_image_fit_size(int width, int height, const cx_fit_params *p, int *out_width,
                            int *out_height, cx_error *err)
{
    if (!p || !out_width || !out_height)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "fit: NULL argument");
    if (width <= 0 || height <= 0 || width > CX_IMAGE_MAX_SIDE || height > CX_IMAGE_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "fit: source size %dx%d outside 1..%d", width, height,
                            CX_IMAGE_MAX_SIDE);
    double longer = width > height ? width : height, shorter = width > height ? height : width;
    double scale;
    int round_nearest;
    if (p->longest > 0) {
        if (p->longest > CX_IMAGE_MAX_SIDE)
            return cx_error_set(err, CX_ERR_INVALID, STAGE, "fit: longest side %d exceeds %d", p->longest,
                                CX_IMAGE_MAX_SIDE);
        scale = (double)p->longest / longer;
        round_nearest = 1;
    } else {
        if (p->min_size <= 0 || p->max_size < p->min_size || p->max_size > CX_IMAGE_MAX_SIDE)
            return cx_error_set(err, CX_ERR_INVALID, STAGE,
                                "fit: min_size %d / max_size %d invalid (need 0 < min <= max <= %d)",
                                p->min_size, p->max_size, CX_IMAGE_MAX_SIDE);
        scale = (double)p->min_size / shorter;
        if (longer * scale > (double)p->max_size)
            scale = (double)p->max_size / longer;
        round_nearest = 0; /* torchvision: interpolate(scale_factor, recompute_scale_factor) floors */
    }
    double w = width * scale, h = height * scale;
    int ow, oh;
    if (round_nearest) {
        /* the longest side is exact by construction; round the other */
        ow = width >= height ? p->longest : (int)floor(w + 0.5);
        oh = height > width ? p->longest : (int)floor(h + 0.5);
    } else {
        ow = (int)floor(w + 1e-9);
        oh = (int)floor(h + 1e-9);
    }
    *out_width = ow < 1 ? 1 : ow;
    *out_height = oh < 1 ? 1 : oh;
    return CX_OK;
}

/* Coverage weights of the source samples for each output sample along one axis. */
typedef struct axis_weights {
    int *start; /* first source index per output */
    int *count; /* number of source indices per output */
    int *offset; /* index into w of the first weight per output */
    float *w;
} axis_weights;

static void axis_free(axis_weights *a)
{
    cx_free(a->start);
    cx_free(a->count);
    cx_free(a->offset);
    cx_free(a->w);
}

static cx_status axis_build(int in_n, int out_n, axis_weights *a, cx_error *err)
{
    memset(a, 0, sizeof *a);
    double r = (double)in_n / (double)out_n;
    /* each output touches at most ceil(r) + 1 source samples */
    size_t per = (size_t)ceil(r) + 2, total;
    if (!cx_size_mul(per, (size_t)out_n, &total))
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "weights overflow for %d -> %d", in_n, out_n);
    a->start = cx_malloc((size_t)out_n * sizeof(int));
    a->count = cx_malloc((size_t)out_n * sizeof(int));
    a->offset = cx_malloc((size_t)out_n * sizeof(int));
    a->w = cx_malloc(total * sizeof(float));
    if (!a->start || !a->count || !a->offset || !a->w) {
        axis_free(a);
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "no memory for resize weights %d -> %d", in_n, out_n);
    }
    int off = 0;
    for (int o = 0; o < out_n; o++) {
        /* source interval [x0, x1) in source pixel units; exact products keep the borders shared */
        double x0 = (double)o * in_n / out_n, x1 = (double)(o + 1) * in_n / out_n;
        int i0 = (int)floor(x0), i1 = (int)ceil(x1);
        if (i1 > in_n)
            i1 = in_n;
        if (i1 <= i0)
            i1 = i0 + 1;
        double sum = 0.0;
        int k = 0;
        for (int i = i0; i < i1; i++) {
            double lo = i > x0 ? i : x0, hi = i + 1 < x1 ? i + 1 : x1;
            double cov = hi - lo;
            if (cov < 0)
                cov = 0;
            a->w[off + k++] = (float)cov;
            sum += cov;
        }
        for (int j = 0; j < k; j++) /* normalise by the sum so a constant stays exactly constant */
            a->w[off + j] = (float)(a->w[off + j] / sum);
        a->start[o] = i0;
        a->count[o] = k;
        a->offset[o] = off;
        off += k;
    }
    return CX_OK;
}

cx_status cx_image_resize_area(const cx_image *src, int out_width, int out_height, cx_image **out,
                               cx_error *err)
{
    if (!src || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "NULL argument");
    if (out_width <= 0 || out_height <= 0 || out_width > CX_IMAGE_MAX_SIDE || out_height > CX_IMAGE_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "output size %dx%d outside 1..%d", out_width,
                            out_height, CX_IMAGE_MAX_SIDE);
    int iw = src->width, ih = src->height;
    axis_weights ax, ay;
    cx_status s = axis_build(iw, out_width, &ax, err);
    if (s != CX_OK)
        return s;
    s = axis_build(ih, out_height, &ay, err);
    if (s != CX_OK) {
        axis_free(&ax);
        return s;
    }
    cx_image *dst = NULL;
    float *tmp = cx_malloc((size_t)ih * (size_t)out_width * sizeof(float));
    double *acc = cx_malloc((size_t)out_width * sizeof(double));
    if (!tmp || !acc) {
        s = cx_error_set(err, CX_ERR_NOMEM, STAGE, "no memory for a %dx%d intermediate", out_width, ih);
        goto done;
    }
    s = cx_image_new(out_width, out_height, &dst, err);
    if (s != CX_OK)
        goto done;
    /* horizontal pass: every source row -> out_width samples */
    for (int y = 0; y < ih; y++) {
        const float *row = src->data + (size_t)y * iw;
        float *t = tmp + (size_t)y * out_width;
        for (int o = 0; o < out_width; o++) {
            const float *w = ax.w + ax.offset[o];
            const float *p = row + ax.start[o];
            double sum = 0.0;
            for (int k = 0; k < ax.count[o]; k++)
                sum += (double)w[k] * p[k];
            t[o] = (float)sum;
        }
    }
    /* vertical pass: weighted sums of whole intermediate rows (sequential memory access) */
    for (int o = 0; o < out_height; o++) {
        const float *w = ay.w + ay.offset[o];
        for (int x = 0; x < out_width; x++)
            acc[x] = 0.0;
        for (int k = 0; k < ay.count[o]; k++) {
            const float *t = tmp + (size_t)(ay.start[o] + k) * out_width;
            double wk = w[k];
            for (int x = 0; x < out_width; x++)
                acc[x] += wk * t[x];
        }
        float *d = dst->data + (size_t)o * out_width;
        for (int x = 0; x < out_width; x++)
            d[x] = (float)acc[x];
    }
    *out = dst;
    dst = NULL;
    s = CX_OK;
done:
    cx_image_free(dst);
    cx_free(tmp);
    cx_free(acc);
    axis_free(&ax);
    axis_free(&ay);
    return s;
}

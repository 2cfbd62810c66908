/* cx_grey: the greyscale transforms of PS3.3 C.11 (modality LUT, VOI window / VOI LUT, polarity),
 * an automatic window for images that carry none, and the image type itself. The pipeline module
 * decides which transform applies; this file only evaluates them, in double precision. */
#include "config.h"
#include "cx_image.h"

#include <math.h>
#include <string.h>

static const char *STAGE = "image";

cx_status cx_image_new(int width, int height, cx_image **out, cx_error *err)
{
    if (width <= 0 || height <= 0 || width > CX_IMAGE_MAX_SIDE || height > CX_IMAGE_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "image size %dx%d outside 1..%d", width, height,
                            CX_IMAGE_MAX_SIDE);
    size_t n;
    if (!cx_size_mul((size_t)width, (size_t)height, &n))
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "image size %dx%d overflows", width, height);
    cx_image *img = cx_malloc(sizeof *img);
    if (!img)
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "no memory for a %dx%d image header", width, height);
    img->data = cx_calloc(n, sizeof(float));
    if (!img->data) {
        cx_free(img);
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "no memory for a %dx%d image (%zu bytes)", width,
                            height, n * sizeof(float));
    }
    img->width = width;
    img->height = height;
    *out = img;
    return CX_OK;
}

void cx_image_free(cx_image *img)
{
    if (!img)
        return;
    cx_free(img->data);
    cx_free(img);
}

cx_status cx_image_clone(const cx_image *src, cx_image **out, cx_error *err)
{
    if (!src || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "clone: NULL argument");
    cx_image *img;
    cx_status s = cx_image_new(src->width, src->height, &img, err);
    if (s != CX_OK)
        return s;
    memcpy(img->data, src->data, (size_t)src->width * (size_t)src->height * sizeof(float));
    *out = img;
    return CX_OK;
}

/* ---------------------------------------------------------------- modality LUT */

cx_status cx_grey_lut_check(const cx_grey_lut *lut, const char *what, cx_error *err)
{
    if (!lut || !lut->data)
        return cx_error_set(err, CX_ERR_FORMAT, STAGE, "%s: LUT has no data", what);
    if (lut->entries < 1 || lut->entries > 65536)
        return cx_error_set(err, CX_ERR_FORMAT, STAGE, "%s: LUT has %u entries, expected 1..65536", what,
                            (unsigned)lut->entries);
    if (lut->bits < 8 || lut->bits > 16)
        return cx_error_set(err, CX_ERR_FORMAT, STAGE, "%s: LUT bits per entry = %d, expected 8..16", what,
                            lut->bits);
    unsigned maxv = (1u << lut->bits) - 1u;
    for (uint32_t i = 0; i < lut->entries; i++)
        if (lut->data[i] > maxv)
            return cx_error_set(err, CX_ERR_FORMAT, STAGE,
                                "%s: LUT entry %u = %u exceeds %u (descriptor says %d bits)", what,
                                (unsigned)i, (unsigned)lut->data[i], maxv, lut->bits);
    return CX_OK;
}

static inline uint16_t lut_lookup(const cx_grey_lut *lut, double x)
{
    double idx = floor(x) - (double)lut->first_mapped;
    if (!(idx > 0)) /* also catches NaN */
        return lut->data[0];
    if (idx >= (double)(lut->entries - 1))
        return lut->data[lut->entries - 1];
    return lut->data[(size_t)idx];
}

cx_status cx_grey_modality(const int32_t *stored, int width, int height, const cx_modality_params *p,
                           cx_image **out, cx_error *err)
{
    if (!stored || !p || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "modality: NULL argument");
    if (p->kind == CX_MODALITY_RESCALE && (!isfinite(p->slope) || p->slope == 0.0 || !isfinite(p->intercept)))
        return cx_error_set(err, CX_ERR_FORMAT, STAGE, "modality: rescale slope %g / intercept %g unusable",
                            p->slope, p->intercept);
    if (p->kind == CX_MODALITY_LUT) {
        cx_status s = cx_grey_lut_check(&p->lut, "modality LUT", err);
        if (s != CX_OK)
            return s;
    } else if (p->kind != CX_MODALITY_IDENTITY && p->kind != CX_MODALITY_RESCALE) {
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "modality: unknown kind %d", (int)p->kind);
    }
    cx_image *img;
    cx_status s = cx_image_new(width, height, &img, err);
    if (s != CX_OK)
        return s;
    size_t n = (size_t)width * (size_t)height;
    float *d = img->data;
    switch (p->kind) {
    case CX_MODALITY_RESCALE:
        for (size_t i = 0; i < n; i++)
            d[i] = (float)(p->slope * (double)stored[i] + p->intercept);
        break;
    case CX_MODALITY_LUT:
        for (size_t i = 0; i < n; i++)
            d[i] = (float)lut_lookup(&p->lut, (double)stored[i]);
        break;
    default:
        for (size_t i = 0; i < n; i++)
            d[i] = (float)stored[i];
        break;
    }
    *out = img;
    return CX_OK;
}

/* ---------------------------------------------------------------- VOI */

cx_voi_params cx_voi_default_params(void)
{
    cx_voi_params p;
    memset(&p, 0, sizeof p);
    p.kind = CX_VOI_AUTO;
    p.function = CX_VOI_LINEAR;
    p.auto_method = CX_AUTO_PERCENTILE;
    p.auto_low_pct = 1.0;
    p.auto_high_pct = 99.0;
    p.range_min = 0.0;
    p.range_max = 1.0;
    return p;
}

double cx_grey_window_eval(cx_voi_function f, double c, double w, double x)
{
    switch (f) {
    case CX_VOI_LINEAR: {
        /* PS3.3 C.11.2.1.2.1. With w = 1 the ramp has zero length: the two border tests alone
         * decide (a step at c - 0.5), so the division below is never reached with w - 1 = 0. */
        if (!(w >= 1.0))
            return NAN;
        double lo = c - 0.5 - (w - 1.0) / 2.0, hi = c - 0.5 + (w - 1.0) / 2.0;
        if (x <= lo)
            return 0.0;
        if (x > hi)
            return 1.0;
        return (x - (c - 0.5)) / (w - 1.0) + 0.5;
    }
    case CX_VOI_LINEAR_EXACT:
        if (!(w > 0.0))
            return NAN;
        if (x <= c - w / 2.0)
            return 0.0;
        if (x > c + w / 2.0)
            return 1.0;
        return (x - c) / w + 0.5;
    case CX_VOI_SIGMOID:
        if (!(w > 0.0))
            return NAN;
        return 1.0 / (1.0 + exp(-4.0 * (x - c) / w));
    }
    return NAN;
}

/* Histogram bins for the automatic window. Integer-valued images whose range fits get one bin per
 * value, so percentiles are exact stored/modality values; others get 65536 equal bins. */
#define AUTO_BINS 65536

cx_status cx_grey_auto_window(const cx_image *img, cx_auto_method method, double low_pct,
                              double high_pct, double *center, double *width, cx_error *err)
{
    if (!img || !center || !width)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "auto window: NULL argument");
    if (method == CX_AUTO_PERCENTILE && !(low_pct >= 0.0 && low_pct < high_pct && high_pct <= 100.0))
        return cx_error_set(err, CX_ERR_INVALID, STAGE,
                            "auto window: percentiles %g..%g, expected 0 <= low < high <= 100", low_pct,
                            high_pct);
    size_t n = (size_t)img->width * (size_t)img->height;
    const float *d = img->data;
    double mn = INFINITY, mx = -INFINITY;
    int integral = 1;
    for (size_t i = 0; i < n; i++) {
        double v = d[i];
        if (!isfinite(v))
            return cx_error_set(err, CX_ERR_FORMAT, STAGE, "auto window: pixel %zu is not finite", i);
        if (v < mn)
            mn = v;
        if (v > mx)
            mx = v;
        if (integral && v != floor(v))
            integral = 0;
    }
    double lo = mn, hi = mx;
    if (method == CX_AUTO_PERCENTILE && mx > mn) {
        int exact = integral && (mx - mn) < AUTO_BINS;
        size_t nbins = exact ? (size_t)(mx - mn) + 1 : AUTO_BINS;
        double scale = exact ? 1.0 : (double)(AUTO_BINS - 1) / (mx - mn);
        uint32_t *hist = cx_calloc(nbins, sizeof *hist);
        if (!hist)
            return cx_error_set(err, CX_ERR_NOMEM, STAGE, "auto window: no memory for %zu bins", nbins);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            double v = d[i];
            if (v == mn || v == mx) /* background, collimation, saturation, padding */
                continue;
            size_t b = (size_t)((v - mn) * scale + (exact ? 0.0 : 0.5));
            if (b >= nbins)
                b = nbins - 1;
            hist[b]++;
            kept++;
        }
        if (kept > 0) {
            /* the smallest value with at least pct% of the kept pixels at or below it */
            double want_lo = low_pct / 100.0 * (double)kept, want_hi = high_pct / 100.0 * (double)kept;
            size_t cum = 0, blo = 0, bhi = nbins - 1;
            int have_lo = 0;
            for (size_t b = 0; b < nbins; b++) {
                cum += hist[b];
                if (!have_lo && (double)cum >= want_lo && cum > 0) {
                    blo = b;
                    have_lo = 1;
                }
                if ((double)cum >= want_hi && cum > 0) {
                    bhi = b;
                    break;
                }
            }
            double plo = mn + (double)blo / scale, phi = mn + (double)bhi / scale;
            if (phi > plo) {
                lo = plo;
                hi = phi;
            }
        }
        cx_free(hist);
    }
    if (!(hi > lo)) { /* constant image: any window; this one maps it to mid-grey */
        *center = lo;
        *width = 1.0;
        return CX_OK;
    }
    *center = (lo + hi) / 2.0;
    *width = hi - lo;
    return CX_OK;
}

cx_status cx_grey_voi(const cx_image *modality, const cx_voi_params *p, cx_image **out, cx_error *err)
{
    if (!modality || !p || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "voi: NULL argument");
    cx_voi_kind kind = p->kind;
    cx_voi_function f = p->function;
    double c = p->center, w = p->width;
    cx_status s;
    switch (kind) {
    case CX_VOI_WINDOW:
        if (f != CX_VOI_LINEAR && f != CX_VOI_LINEAR_EXACT && f != CX_VOI_SIGMOID)
            return cx_error_set(err, CX_ERR_INVALID, STAGE, "voi: unknown function %d", (int)f);
        if (!isfinite(c) || !isfinite(w) || (f == CX_VOI_LINEAR ? !(w >= 1.0) : !(w > 0.0)))
            return cx_error_set(err, CX_ERR_FORMAT, STAGE, "voi: window centre %g width %g invalid for %s (%s)",
                                c, w, f == CX_VOI_LINEAR ? "LINEAR" : f == CX_VOI_SIGMOID ? "SIGMOID" : "LINEAR_EXACT",
                                f == CX_VOI_LINEAR ? "needs width >= 1" : "needs width > 0");
        break;
    case CX_VOI_AUTO:
        s = cx_grey_auto_window(modality, p->auto_method, p->auto_low_pct, p->auto_high_pct, &c, &w, err);
        if (s != CX_OK)
            return s;
        f = CX_VOI_LINEAR_EXACT;
        break;
    case CX_VOI_LUT:
        s = cx_grey_lut_check(&p->lut, "VOI LUT", err);
        if (s != CX_OK)
            return s;
        break;
    case CX_VOI_NONE:
        if (!isfinite(p->range_min) || !isfinite(p->range_max) || !(p->range_max > p->range_min))
            return cx_error_set(err, CX_ERR_INVALID, STAGE, "voi: output range %g..%g invalid", p->range_min,
                                p->range_max);
        break;
    default:
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "voi: unknown kind %d", (int)kind);
    }
    cx_image *img;
    s = cx_image_new(modality->width, modality->height, &img, err);
    if (s != CX_OK)
        return s;
    size_t n = (size_t)modality->width * (size_t)modality->height;
    const float *in = modality->data;
    float *o = img->data;
    if (kind == CX_VOI_LUT) {
        double scale = 1.0 / (double)((1u << p->lut.bits) - 1u);
        for (size_t i = 0; i < n; i++)
            o[i] = (float)((double)lut_lookup(&p->lut, in[i]) * scale);
    } else if (kind == CX_VOI_NONE) {
        double r = p->range_max - p->range_min;
        for (size_t i = 0; i < n; i++) {
            double y = ((double)in[i] - p->range_min) / r;
            o[i] = (float)(y < 0.0 ? 0.0 : y > 1.0 ? 1.0 : y);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            o[i] = (float)cx_grey_window_eval(f, c, w, in[i]);
    }
    if (p->invert)
        for (size_t i = 0; i < n; i++)
            o[i] = 1.0f - o[i];
    *out = img;
    return CX_OK;
}

/* Stored values are integers of at most 16 bits in practice, so the whole chain can be evaluated
 * once per distinct value and applied as a table: 3.6 M window evaluations on a chest CR become
 * ~32 k. The table entries are computed by the very same per-pixel code on a 1-pixel image, so
 * the result is bit-identical to cx_grey_modality + cx_grey_voi (the unit tests check that). */
#define RENDER_TABLE_MAX CX_IMAGE_MAX_SIDE /* the table is built as a 1-row image */

cx_status cx_grey_render(const int32_t *stored, int width, int height, const cx_modality_params *m,
                         const cx_voi_params *v, cx_image **out, cx_error *err)
{
    if (!stored || !m || !v || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "render: NULL argument");
    if (width <= 0 || height <= 0 || width > CX_IMAGE_MAX_SIDE || height > CX_IMAGE_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "render: image size %dx%d outside 1..%d", width, height,
                            CX_IMAGE_MAX_SIDE);
    size_t n = (size_t)width * (size_t)height;
    int32_t mn = INT32_MAX, mx = INT32_MIN;
    for (size_t i = 0; i < n; i++) {
        mn = stored[i] < mn ? stored[i] : mn;
        mx = stored[i] > mx ? stored[i] : mx;
    }
    int64_t range = (int64_t)mx - (int64_t)mn + 1;
    cx_image *mod = NULL, *res = NULL, *tin = NULL, *tout = NULL;
    cx_status s;
    if (range > RENDER_TABLE_MAX || (size_t)range * 4 > n) { /* a table would not pay off */
        if ((s = cx_grey_modality(stored, width, height, m, &mod, err)) == CX_OK)
            s = cx_grey_voi(mod, v, out, err);
        cx_image_free(mod);
        return s;
    }
    cx_voi_params tv = *v;
    if (v->kind == CX_VOI_AUTO) { /* the window needs the whole image; then it is a plain window */
        if ((s = cx_grey_modality(stored, width, height, m, &mod, err)) != CX_OK)
            goto done;
        s = cx_grey_auto_window(mod, v->auto_method, v->auto_low_pct, v->auto_high_pct, &tv.center, &tv.width,
                                err);
        if (s != CX_OK)
            goto done;
        tv.kind = CX_VOI_WINDOW;
        tv.function = CX_VOI_LINEAR_EXACT;
        res = mod; /* reuse its buffer for the output */
        mod = NULL;
    } else if ((s = cx_image_new(width, height, &res, err)) != CX_OK) {
        goto done;
    }
    /* table input: the modality value of every stored value mn..mx, by the per-pixel code */
    int32_t *vals = cx_malloc((size_t)range * sizeof *vals);
    if (!vals) {
        s = cx_error_set(err, CX_ERR_NOMEM, STAGE, "render: no memory for a %lld-entry table", (long long)range);
        goto done;
    }
    for (int64_t k = 0; k < range; k++)
        vals[k] = (int32_t)(mn + k);
    s = cx_grey_modality(vals, (int)range, 1, m, &tin, err);
    cx_free(vals);
    if (s != CX_OK)
        goto done;
    if ((s = cx_grey_voi(tin, &tv, &tout, err)) != CX_OK)
        goto done;
    const float *t = tout->data;
    for (size_t i = 0; i < n; i++)
        res->data[i] = t[stored[i] - mn];
    *out = res;
    res = NULL;
done:
    cx_image_free(mod);
    cx_image_free(res);
    cx_image_free(tin);
    cx_image_free(tout);
    return s;
}

void cx_image_to_u8(const cx_image *img, uint8_t *out)
{
    size_t n = (size_t)img->width * (size_t)img->height;
    for (size_t i = 0; i < n; i++) {
        float y = img->data[i];
        out[i] = !(y > 0.0f) ? 0 : y >= 1.0f ? 255 : (uint8_t)(y * 255.0f + 0.5f);
    }
}

void cx_image_to_u16(const cx_image *img, uint16_t *out)
{
    size_t n = (size_t)img->width * (size_t)img->height;
    for (size_t i = 0; i < n; i++) {
        double y = img->data[i];
        out[i] = !(y > 0.0) ? 0 : y >= 1.0 ? 65535 : (uint16_t)(y * 65535.0 + 0.5);
    }
}

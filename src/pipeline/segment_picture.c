/* segment_picture: what the reported findings look like without a DICOM viewer, the same picture
 * for the CLI's overlay.png and the secondary capture. The findings as the writers get them become
 * coloured layers, and the legend says what a reader must know: research use only, the model, the
 * image-level answer, and per class its colour, share of each lung and area. Drawing is src/image's. */
#include "segment.h"
#include "cx_image.h"

#include <stdio.h>
#include <string.h>

#define STAGE "segment"

static const char *SCT_RIGHT = "24028007", *SCT_LEFT = "7771000";

static void line_set(cx_legend_line *l, const uint8_t *rgb, int swatch, const char *fmt, const char *a)
{
    memset(l, 0, sizeof *l);
    snprintf(l->text, sizeof l->text, fmt, a);
    if (rgb) {
        l->has_color = 1;
        l->swatch = swatch;
        memcpy(l->rgb, rgb, 3);
    }
}

/* Marks finding f's pixels in a full-size map with `bit`. */
static void paint(uint8_t *map, int width, const cxd_finding *f, uint8_t bit)
{
    for (int y = 0; y < f->h; y++)
        for (int x = 0; x < f->w; x++)
            if (f->mask[(size_t)y * f->w + x])
                map[(size_t)(f->y0 + y) * width + f->x0 + x] |= bit;
}

cx_status cx_segment_legend(const cx_model *m, int W, int H, const cxd_finding *fs, size_t nf,
                            const cx_segment_result *r, const double *spacing_mm, cx_legend_line *lines,
                            size_t *n_lines, cx_error *err)
{
    if (!m || W < 1 || H < 1 || (nf && !fs) || !r || !lines || !n_lines)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "legend: missing argument");
    const size_t n = (size_t)W * H;
    /* bit 1: right lung, 2: left lung, 4: the class being measured */
    uint8_t *map = cx_calloc(n, 1);
    if (!map)
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "legend of %d x %d", W, H);
    for (size_t i = 0; i < nf; i++) {
        if (fs[i].role == CXD_ROLE_ANATOMY && !strcmp(fs[i].site_laterality.value, SCT_RIGHT))
            paint(map, W, &fs[i], 1);
        else if (fs[i].role == CXD_ROLE_ANATOMY && !strcmp(fs[i].site_laterality.value, SCT_LEFT))
            paint(map, W, &fs[i], 2);
    }
    long lung_px[2] = {0, 0};
    for (size_t k = 0; k < n; k++) {
        lung_px[0] += (map[k] & 1) != 0;
        lung_px[1] += (map[k] & 2) != 0;
    }

    size_t nl = 0;
    static const uint8_t warn[3] = {255, 214, 0};
    line_set(&lines[nl++], warn, 0, "%s", "Research use only - not for diagnosis");
    char t[200];
    snprintf(t, sizeof t, "Model: %s %s", cx_model_name(m) && *cx_model_name(m) ? cx_model_name(m) : "cxrseg",
             cx_model_version(m) && *cx_model_version(m) ? cx_model_version(m) : "");
    line_set(&lines[nl++], NULL, 0, "%s", t);
    cx_segment_verdict_text(m, &r->rule, r->image_score, r->finding_present, 0, t, sizeof t);
    line_set(&lines[nl++], NULL, 0, "%s", t);

    /* One line per class, in the order the findings come (lungs first), each class once: for a
     * finding class the share of each lung its findings cover together, for every class its area. */
    const double px_mm2 = spacing_mm ? spacing_mm[0] * spacing_mm[1] : 0;
    for (size_t i = 0; i < nf; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(fs[j].label, fs[i].label);
        if (seen)
            continue;
        int count = 0;
        for (size_t k = 0; k < n; k++)
            map[k] &= 3;
        for (size_t j = i; j < nf; j++)
            if (!strcmp(fs[j].label, fs[i].label)) {
                paint(map, W, &fs[j], 4);
                count++;
            }
        long px = 0, in[2] = {0, 0};
        for (size_t k = 0; k < n; k++)
            if (map[k] & 4) {
                px++;
                in[0] += (map[k] & 1) != 0;
                in[1] += (map[k] & 2) != 0;
            }
        int len = snprintf(t, sizeof t, "%s", fs[i].label);
        const char *sep = ":";
        if (fs[i].role == CXD_ROLE_FINDING) {
            if (count > 1)
                len += snprintf(t + len, sizeof t - (size_t)len, " (%d)", count);
            for (int s = 0; s < 2 && len < (int)sizeof t; s++)
                if (lung_px[s]) {
                    len += snprintf(t + len, sizeof t - (size_t)len, "%s %s lung %.1f%%", sep, s ? "left" : "right",
                                    100.0 * (double)in[s] / (double)lung_px[s]);
                    sep = ",";
                }
        }
        if (spacing_mm && len < (int)sizeof t)
            snprintf(t + len, sizeof t - (size_t)len, "%s %.0f mm2", sep, (double)px * px_mm2);
        line_set(&lines[nl++], fs[i].rgb, 1, "%s", t);
    }
    if (!nf)
        line_set(&lines[nl++], NULL, 0, "%s", "No finding and no lung reported");
    if (!spacing_mm)
        line_set(&lines[nl++], NULL, 0, "%s", "No areas: the image has no usable pixel spacing");
    cx_free(map);
    *n_lines = nl;
    return CX_OK;
}

cx_status cx_segment_picture(const cx_model *m, const cx_image *display, const cxd_finding *fs, size_t nf,
                             const cx_segment_result *r, const double *spacing_mm, uint8_t **rgb, cx_error *err)
{
    if (!m || !display || (nf && !fs) || !r || !rgb)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "picture: missing argument");
    cx_overlay_layer *layers = cx_calloc(nf ? nf : 1, sizeof *layers);
    cx_legend_line *lines = cx_calloc(CX_SEGMENT_LEGEND_LINES(nf), sizeof *lines);
    if (!layers || !lines) {
        cx_free(layers);
        cx_free(lines);
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "picture: %zu findings", nf);
    }
    for (size_t i = 0; i < nf; i++) {
        layers[i].x0 = fs[i].x0, layers[i].y0 = fs[i].y0, layers[i].w = fs[i].w, layers[i].h = fs[i].h;
        layers[i].mask = fs[i].mask;
        memcpy(layers[i].rgb, fs[i].rgb, 3);
    }
    size_t nl = 0;
    cx_status st = cx_segment_legend(m, display->width, display->height, fs, nf, r, spacing_mm, lines, &nl, err);
    if (st == CX_OK)
        st = cx_overlay_render(display, layers, nf, lines, nl, rgb, err);
    cx_free(layers);
    cx_free(lines);
    return st;
}

/* tests/viewer/results: cxrseg's own SEG and SR for a source image with a chosen number of
 * segments, so that tests/viewer.sh can show OHIF every segment count at any image size without
 * depending on what a model finds. The findings are hand-made (two elliptic lung fields, then
 * opacities inside them, every second one in two pieces) and go through the same writer as
 * `cxrseg segment` (cxd_results_write).
 *
 * Usage: results SOURCE.dcm OUTDIR NSEGMENTS [SEG_ENCODING]
 *   NSEGMENTS 1..16; SEG_ENCODING "binary" or "fractional" (default: the writer's default).
 * Exit 0 on success, 1 on a writer error (message on stderr), 2 on bad usage. */
#include "cxdicom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXSEG 16

static cxd_code code(const char *v, const char *s, const char *m)
{
    cxd_code c;
    memset(&c, 0, sizeof c);
    snprintf(c.value, sizeof c.value, "%s", v);
    snprintf(c.scheme, sizeof c.scheme, "%s", s);
    snprintf(c.meaning, sizeof c.meaning, "%s", m);
    return c;
}

/* An ellipse of centre (cx, cy) and radii (rx, ry), image coordinates, inside a box. */
static int in_ellipse(double x, double y, double cx, double cy, double rx, double ry)
{
    double dx = (x - cx) / rx, dy = (y - cy) / ry;
    return dx * dx + dy * dy <= 1.0;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s SOURCE.dcm OUTDIR NSEGMENTS [binary|fractional]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[3]);
    if (n < 1 || n > MAXSEG) {
        fprintf(stderr, "results: NSEGMENTS must be 1..%d, not %s\n", MAXSEG, argv[3]);
        return 2;
    }
    cxd_error e;
    cxd_file *f = NULL;
    cxd_info info;
    if (cxd_file_open(argv[1], &f, &e) != CXD_OK || cxd_file_info(f, &info, &e) != CXD_OK) {
        fprintf(stderr, "results: %s: %s\n", argv[1], e.msg);
        return 1;
    }
    const int W = info.columns, H = info.rows;
    cxd_info_clear(&info);

    cxd_finding fs[MAXSEG];
    uint8_t *masks[MAXSEG] = {0};
    const cxd_code right = code("24028007", "SCT", "Right"), left = code("7771000", "SCT", "Left");
    const cxd_code lung = code("39607008", "SCT", "Lung");
    /* Lung fields: two upright ellipses, each a quarter of the width wide. */
    const double lcx[2] = {W * 0.30, W * 0.70}, lcy = H * 0.50, lrx = W * 0.16, lry = H * 0.32;
    for (int i = 0; i < n; i++) {
        cxd_finding *x = &fs[i];
        memset(x, 0, sizeof *x);
        int side = i < 2 ? i : (i - 2) % 2; /* 0 = the patient's right = image left */
        x->x0 = 0;
        x->y0 = 0;
        x->w = W;
        x->h = H;
        masks[i] = calloc((size_t)W * H, 1);
        if (!masks[i]) {
            fprintf(stderr, "results: out of memory\n");
            return 1;
        }
        x->mask = masks[i];
        x->finding_site = lung;
        x->site_laterality = side ? left : right;
        if (i < 2) {
            x->role = CXD_ROLE_ANATOMY;
            snprintf(x->label, sizeof x->label, "%s lung", side ? "Left" : "Right");
            x->category = code("123037004", "SCT", "Anatomical Structure");
            x->type = lung;
            x->type_modifier = side ? left : right;
            x->score = 0.97;
            x->rgb[0] = 40, x->rgb[1] = 120, x->rgb[2] = 255;
            if (i == 1)
                x->rgb[0] = 60, x->rgb[1] = 200, x->rgb[2] = 120;
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++)
                    masks[i][(size_t)y * W + xx] = (uint8_t)in_ellipse(xx + 0.5, y + 0.5, lcx[side], lcy, lrx, lry);
        } else {
            int k = i - 2; /* 0-based opacity number */
            x->role = CXD_ROLE_FINDING;
            snprintf(x->label, sizeof x->label, "Lung opacity");
            snprintf(x->tracking_id, sizeof x->tracking_id, "opacity %d", k + 1);
            x->category = code("49755003", "SCT", "Morphologically Abnormal Structure");
            x->type = code("409609008", "SCT", "Radiologic infiltrate of lung");
            x->score = 0.9 - 0.05 * k;
            /* Colours that stay far from grey when OHIF blends them over a lung's blue or green
             * (orange over blue came out grey, and the overlay check could not see it). */
            static const uint8_t palette[3][3] = {{255, 230, 0}, {230, 0, 40}, {255, 0, 200}};
            memcpy(x->rgb, palette[k % 3], 3);
            /* Discs stacked down the lung; every second opacity has a second, smaller disc. */
            double r = fmin(lrx, lry) * 0.28;
            double cy = lcy - lry * 0.6 + (k / 2) * lry * 0.4, cx = lcx[side] - lrx * 0.3;
            long in_lung = 0, lung_px = 0;
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int m = in_ellipse(xx + 0.5, y + 0.5, cx, cy, r, r);
                    if (k % 2 == 1)
                        m |= in_ellipse(xx + 0.5, y + 0.5, cx + lrx * 0.75, cy + r * 0.5, r * 0.5, r * 0.5);
                    int l = in_ellipse(xx + 0.5, y + 0.5, lcx[side], lcy, lrx, lry);
                    masks[i][(size_t)y * W + xx] = (uint8_t)m;
                    in_lung += m && l;
                    lung_px += l;
                }
            x->n_shares = 1;
            x->shares[0].laterality = side ? left : right;
            x->shares[0].percent = lung_px ? 100.0 * (double)in_lung / (double)lung_px : 0;
        }
    }

    cxd_write_options o;
    cxd_write_options_default(&o);
    o.outputs = CXD_OUT_SEG | CXD_OUT_SR;
    o.seg_without_findings = 1;
    if (argc == 5) {
        if (!strcmp(argv[4], "binary"))
            o.seg_encoding = CXD_SEG_BINARY;
        else if (!strcmp(argv[4], "fractional"))
            o.seg_encoding = CXD_SEG_FRACTIONAL;
        else {
            fprintf(stderr, "results: SEG encoding must be binary or fractional, not %s\n", argv[4]);
            return 2;
        }
    }
    cxd_algorithm alg;
    memset(&alg, 0, sizeof alg);
    snprintf(alg.name, sizeof alg.name, "cxrseg viewer fixture");
    snprintf(alg.version, sizeof alg.version, "hand-made %d segments", n);
    cxd_sha256_hex(alg.version, strlen(alg.version), alg.model_sha256);
    cxd_write_result r;
    cxd_status st = cxd_results_write(f, fs, (size_t)n, &alg, &o, argv[2], &r, &e);
    for (int i = 0; i < n; i++)
        free(masks[i]);
    cxd_file_free(f);
    if (st != CXD_OK) {
        fprintf(stderr, "results: %s\n", e.msg);
        return 1;
    }
    printf("%d segments, %d regions: %s %s\n", r.n_segments, r.n_regions, r.seg_path, r.sr_path);
    return 0;
}

/* cmd_detect: `cxrseg detect IMAGE --model M [-o overlay.png]`, the last step of the seed workflow
 * ("run the trained weights on an image and look at the output"): loads the image as the node
 * would (PNG/JPEG/DICOM through the pipeline's loader and the engine-size area resize), runs the
 * engine, prints the findings above each class's reporting threshold and the image-level answer of
 * the model's decision rule, and draws an overlay. */
#include "config.h"
#include "cli.h"
#include "cx_json.h"
#include "cx_image.h"
#include "cx_mrcnn.h"
#include "cx_pipe.h"
#include "segment.h"

#include <stdlib.h>
#include <string.h>

#define CMD "detect"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cxrseg detect IMAGE --model MODEL.cxm [options]\n"
            "Runs the Mask R-CNN on a PNG, JPEG or DICOM chest radiograph and prints the findings and\n"
            "the image-level answer of the model's decision rule (as `cxrseg segment` reports it).\n"
            "  --model M          model file (models/FORMAT.md)\n"
            "  -o, --output PNG   write an overlay: masks in class colours, boxes, labels, scores\n"
            "  --threads N        engine threads (default 2)\n"
            "  --score X          report detections with score >= X (default: each class's threshold)\n"
            "  --all              report every detection the network returns\n"
            "  --json             one JSON object per detection instead of the table\n"
            "Exit codes: 0 ok, 1 usage, 2 input error, 3 unsupported input, 5 model error, 6 internal.\n");
}

/* ---- a 5x7 bitmap font for the overlay labels (upper case, digits, a few signs) ---- */
static const struct glyph {
    char c;
    unsigned char rows[7];
} font[] = {
    {'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}}, {'C', {14, 17, 16, 16, 16, 17, 14}},
    {'D', {30, 17, 17, 17, 17, 17, 30}}, {'E', {31, 16, 16, 30, 16, 16, 31}}, {'F', {31, 16, 16, 30, 16, 16, 16}},
    {'G', {14, 17, 16, 23, 17, 17, 15}}, {'H', {17, 17, 17, 31, 17, 17, 17}}, {'I', {14, 4, 4, 4, 4, 4, 14}},
    {'J', {7, 2, 2, 2, 2, 18, 12}},      {'K', {17, 18, 20, 24, 20, 18, 17}}, {'L', {16, 16, 16, 16, 16, 16, 31}},
    {'M', {17, 27, 21, 21, 17, 17, 17}}, {'N', {17, 17, 25, 21, 19, 17, 17}}, {'O', {14, 17, 17, 17, 17, 17, 14}},
    {'P', {30, 17, 17, 30, 16, 16, 16}}, {'Q', {14, 17, 17, 17, 21, 18, 13}}, {'R', {30, 17, 17, 30, 20, 18, 17}},
    {'S', {15, 16, 16, 14, 1, 1, 30}},   {'T', {31, 4, 4, 4, 4, 4, 4}},       {'U', {17, 17, 17, 17, 17, 17, 14}},
    {'V', {17, 17, 17, 17, 17, 10, 4}},  {'W', {17, 17, 17, 21, 21, 21, 10}}, {'X', {17, 17, 10, 4, 10, 17, 17}},
    {'Y', {17, 17, 10, 4, 4, 4, 4}},     {'Z', {31, 1, 2, 4, 8, 16, 31}},     {'0', {14, 17, 19, 21, 25, 17, 14}},
    {'1', {4, 12, 4, 4, 4, 4, 14}},      {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
    {'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},   {'6', {6, 8, 16, 30, 17, 17, 14}},
    {'7', {31, 1, 2, 4, 8, 8, 8}},       {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
    {'.', {0, 0, 0, 0, 0, 12, 12}},      {'-', {0, 0, 0, 31, 0, 0, 0}},       {'_', {0, 0, 0, 0, 0, 0, 31}},
    {':', {0, 12, 12, 0, 12, 12, 0}},    {' ', {0, 0, 0, 0, 0, 0, 0}},
};

static const unsigned char *glyph_rows(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].c == c)
            return font[i].rows;
    return font[sizeof font / sizeof font[0] - 1].rows;
}

typedef struct canvas {
    uint8_t *rgb;
    int w, h;
} canvas;

static void px(canvas *cv, int x, int y, const unsigned char c[3])
{
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h)
        return;
    memcpy(cv->rgb + ((size_t)y * cv->w + x) * 3, c, 3);
}

static void rect(canvas *cv, int x0, int y0, int x1, int y1, int t, const unsigned char c[3])
{
    for (int k = 0; k < t; k++) {
        for (int x = x0; x <= x1; x++) {
            px(cv, x, y0 + k, c);
            px(cv, x, y1 - k, c);
        }
        for (int y = y0; y <= y1; y++) {
            px(cv, x0 + k, y, c);
            px(cv, x1 - k, y, c);
        }
    }
}

static void text(canvas *cv, int x, int y, const char *s, int scale, const unsigned char fg[3])
{
    static const unsigned char bg[3] = {0, 0, 0};
    int n = (int)strlen(s);
    for (int yy = -scale; yy < 8 * scale; yy++)      /* dark backing box for legibility */
        for (int xx = -scale; xx < n * 6 * scale; xx++)
            px(cv, x + xx, y + yy, bg);
    for (int i = 0; i < n; i++) {
        const unsigned char *g = glyph_rows(s[i]);
        for (int r = 0; r < 7; r++)
            for (int col = 0; col < 5; col++)
                if (g[r] & (16 >> col))
                    for (int a = 0; a < scale; a++)
                        for (int b = 0; b < scale; b++)
                            px(cv, x + (i * 6 + col) * scale + b, y + r * scale + a, fg);
    }
}

static cx_status write_overlay(const char *path, const cx_image *disp, const cx_model *m,
                               const cx_detections *d, const int *shown, cx_error *err)
{
    canvas cv = {NULL, disp->width, disp->height};
    size_t n = (size_t)cv.w * cv.h;
    cv.rgb = cx_malloc(n * 3);
    if (!cv.rgb)
        return cx_error_set(err, CX_ERR_NOMEM, CMD, "overlay of %d x %d", cv.w, cv.h);
    for (size_t i = 0; i < n; i++) {
        float v = disp->data[i];
        uint8_t g = (uint8_t)(v <= 0 ? 0 : v >= 1 ? 255 : v * 255.0f + 0.5f);
        cv.rgb[3 * i] = cv.rgb[3 * i + 1] = cv.rgb[3 * i + 2] = g;
    }
    /* masks first (lowest score first so the best detection is on top), then boxes and labels */
    for (int k = d->count - 1; k >= 0; k--) {
        const cx_detection *e = &d->items[k];
        if (!shown[k])
            continue;
        const unsigned char *c = cx_model_class(m, e->label)->color;
        for (int y = 0; y < e->mask_h; y++)
            for (int x = 0; x < e->mask_w; x++)
                if (e->mask[(size_t)y * e->mask_w + x]) {
                    uint8_t *p = cv.rgb + ((size_t)(e->mask_y0 + y) * cv.w + e->mask_x0 + x) * 3;
                    for (int j = 0; j < 3; j++)
                        p[j] = (uint8_t)((p[j] * 55 + c[j] * 45) / 100);
                }
    }
    int scale = cv.w >= 1200 ? 3 : cv.w >= 600 ? 2 : 1;
    for (int k = d->count - 1; k >= 0; k--) {
        const cx_detection *e = &d->items[k];
        if (!shown[k])
            continue;
        const cx_class_info *ci = cx_model_class(m, e->label);
        rect(&cv, (int)e->box[0], (int)e->box[1], (int)e->box[2], (int)e->box[3], scale, ci->color);
        char label[96];
        snprintf(label, sizeof label, "%s %.2f", ci->name, e->score);
        int ty = (int)e->box[1] - 9 * scale;
        text(&cv, (int)e->box[0] + scale, ty < scale ? (int)e->box[1] + 2 * scale : ty, label, scale, ci->color);
    }
    cx_status st = cx_image_write_png_rgb(path, cv.rgb, cv.w, cv.h, err);
    cx_free(cv.rgb);
    return st;
}

enum { OPT_MODEL = 256, OPT_THREADS, OPT_SCORE, OPT_ALL, OPT_JSON };

int cx_cli_detect(int argc, char **argv)
{
    static const struct option longs[] = {
        {"help", no_argument, NULL, 'h'}, {"output", required_argument, NULL, 'o'},
        {"model", required_argument, NULL, OPT_MODEL}, {"threads", required_argument, NULL, OPT_THREADS},
        {"score", required_argument, NULL, OPT_SCORE}, {"all", no_argument, NULL, OPT_ALL},
        {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
    const char *image = NULL, *model_path = NULL, *out_png = NULL;
    long threads = 2;
    double score = -1;
    int all = 0, json = 0, c;
    optind = 0;
    while ((c = cx_cli_getopt(CMD, argc, argv, "ho:", longs)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return CX_EXIT_OK;
        case 'o': out_png = optarg; break;
        case OPT_MODEL: model_path = optarg; break;
        case OPT_THREADS:
            if (cx_cli_parse_int(optarg, 1, 64, &threads))
                return cx_cli_usage(CMD, "--threads '%s': expected 1..64", optarg);
            break;
        case OPT_SCORE:
            if (cx_cli_parse_double(optarg, &score) || score < 0 || score > 1)
                return cx_cli_usage(CMD, "--score '%s': expected 0..1", optarg);
            break;
        case OPT_ALL: all = 1; break;
        case OPT_JSON: json = 1; break;
        case 1:
            if (image)
                return cx_cli_usage(CMD, "one image at a time ('%s' and '%s')", image, optarg);
            image = optarg;
            break;
        default: return CX_EXIT_USAGE;
        }
    }
    if (!image)
        return cx_cli_usage(CMD, "IMAGE missing");
    if (!model_path)
        return cx_cli_usage(CMD, "--model missing");

    cx_error e = {0};
    cx_model *m = NULL;
    cx_mrcnn *s = NULL;
    cx_pipe_image *img = NULL;
    cx_detections d = {0};
    int *shown = NULL, rc = CX_EXIT_OK;
    cx_status st;
    if ((st = cx_model_load(model_path, &m, &e)) != CX_OK)
        goto fail;
    if ((st = cx_mrcnn_new(m, (int)threads, &s, &e)) != CX_OK)
        goto fail;
    const cx_arch_info *arch = cx_model_arch(m);
    cx_pipe_params pp = cx_pipe_default_params();
    pp.fit = cx_pipe_fit_for(arch->min_size, arch->max_size);
    if ((st = cx_pipe_load_file(image, &pp, &img, NULL, &e)) != CX_OK)
        goto fail;
    const cx_image *in = img->input ? img->input : img->display;
    double t0 = cx_now_ms();
    if ((st = cx_mrcnn_detect(s, in->data, in->height, in->width, img->source_height, img->source_width, &d, &e)))
        goto fail;
    double ms = cx_now_ms() - t0;
    shown = cx_calloc((size_t)(d.count ? d.count : 1), sizeof(int));
    if (!shown) {
        st = cx_error_set(&e, CX_ERR_NOMEM, CMD, "out of memory");
        goto fail;
    }
    int n_shown = 0;
    for (int k = 0; k < d.count; k++) {
        const cx_class_info *ci = cx_model_class(m, d.items[k].label);
        float t = score >= 0 ? (float)score : ci->score_thresh;
        shown[k] = all || d.items[k].score >= t;
        n_shown += shown[k];
    }
    if (!json) {
        printf("%s: %s %dx%d, engine input %dx%d, model %s %s (sha256 %.16s), %.0f ms, %s kernel\n", image,
               img->source_kind, img->source_width, img->source_height, in->width, in->height, cx_model_name(m),
               cx_model_version(m), cx_model_sha256(m), ms, cx_mrcnn_blas_kernel());
        printf("%d finding%s (%d returned by the network%s)\n", n_shown, n_shown == 1 ? "" : "s", d.count,
               all ? "" : score >= 0 ? ", score threshold from --score" : ", class score thresholds applied");
        if (n_shown)
            printf("%-3s %-16s %6s  %-26s %10s\n", "#", "class", "score", "box x1,y1,x2,y2 (px)", "mask px");
    }
    for (int k = 0, shown_i = 0; k < d.count; k++) {
        if (!shown[k])
            continue;
        const cx_detection *x = &d.items[k];
        const cx_class_info *ci = cx_model_class(m, x->label);
        long area = 0;
        for (size_t q = 0; q < (size_t)x->mask_w * x->mask_h; q++)
            area += x->mask[q] != 0;
        if (json) {
            printf("{\"image\": ");
            cx_json_fput_text(stdout, image);
            printf(", \"label\": %d, \"class\": ", x->label);
            cx_json_fput_text(stdout, ci->name);
            printf(", \"score\": %.4f, \"box\": [%.1f, %.1f, %.1f, %.1f], \"mask_pixels\": %ld}\n", x->score,
                   x->box[0], x->box[1], x->box[2], x->box[3], area);
        } else {
            char box[64];
            snprintf(box, sizeof box, "%.0f,%.0f,%.0f,%.0f", x->box[0], x->box[1], x->box[2], x->box[3]);
            printf("%-3d %-16s %6.3f  %-26s %10ld\n", ++shown_i, ci->name, x->score, box, area);
        }
    }
    if (!json) {
        /* The image-level answer as `cxrseg segment` and the node give it (same rule, same thresholds). */
        cx_segment_params sp;
        cx_segment_default_params(&sp);
        sp.score = score;
        cx_decision rule;
        double image_score;
        int present = cx_segment_decide(m, &sp, &d, img->source_width, img->source_height, &rule, &image_score);
        char verdict[400];
        cx_segment_verdict_text(m, &rule, image_score, present, 1, verdict, sizeof verdict);
        printf("%s\n", verdict);
    }
    if (out_png) {
        if ((st = write_overlay(out_png, img->display, m, &d, shown, &e)) != CX_OK)
            goto fail;
        if (!json)
            printf("overlay written to %s\n", out_png);
    }
    goto done;
fail:
    rc = cx_cli_fail(CMD, &e);
done:
    cx_free(shown);
    cx_detections_clear(&d);
    cx_pipe_image_free(img);
    cx_mrcnn_free(s);
    cx_model_free(m);
    return rc;
}

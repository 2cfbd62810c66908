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
            "the image-level answer of the model's decision rule as `cxrseg segment` reports them\n"
            "(each class's threshold, one detection per lung, the finding only when present).\n"
            "  --model M          model file (models/FORMAT.md)\n"
            "  -o, --output PNG   write an overlay: masks in class colours, boxes, labels, scores\n"
            "  --threads N        engine threads (default 2)\n"
            "  --score X          one reporting threshold X for every class (default: each class's)\n"
            "  --all              report every detection the network returns\n"
            "  --json             one JSON object per detection instead of the table\n"
            "Exit codes: 0 ok, 1 usage, 2 input error, 3 unsupported input, 5 model error, 6 internal.\n");
}

/* The overlay: src/image's renderer (the one the pipeline's overlay and secondary capture use), each
 * shown detection a layer with its box and "class score" label, the lowest score first so that the
 * best detection lies on top. */
static cx_status write_overlay(const char *path, const cx_image *disp, const cx_model *m,
                               const cx_detections *d, const int *shown, cx_error *err)
{
    cx_overlay_layer *layers = cx_calloc((size_t)(d->count ? d->count : 1), sizeof *layers);
    if (!layers)
        return cx_error_set(err, CX_ERR_NOMEM, CMD, "overlay of %d detections", d->count);
    size_t n = 0;
    for (int k = d->count - 1; k >= 0; k--) {
        const cx_detection *e = &d->items[k];
        if (!shown[k])
            continue;
        const cx_class_info *ci = cx_model_class(m, e->label);
        cx_overlay_layer *l = &layers[n++];
        *l = (cx_overlay_layer){.x0 = e->mask_x0, .y0 = e->mask_y0, .w = e->mask_w, .h = e->mask_h,
                                .mask = e->mask, .has_box = 1};
        memcpy(l->rgb, ci->color, 3);
        for (int j = 0; j < 4; j++)
            l->box[j] = (int)e->box[j];
        snprintf(l->label, sizeof l->label, "%s %.2f", ci->name, e->score);
    }
    uint8_t *rgb = NULL;
    cx_status st = cx_overlay_render(disp, layers, n, NULL, 0, &rgb, err);
    if (st == CX_OK)
        st = cx_image_write_png_rgb(path, rgb, disp->width, disp->height, err);
    cx_free(rgb);
    cx_free(layers);
    return st;
}

enum { OPT_MODEL = 256, OPT_THREADS, OPT_SCORE, OPT_ALL, OPT_JSON };

/* One line (or JSON object) per shown detection: class, score, box, mask pixels. */
static void print_detections(const cx_model *m, const char *image, const cx_detections *d, const int *shown, int json)
{
    for (int k = 0, shown_i = 0; k < d->count; k++) {
        if (!shown[k])
            continue;
        const cx_detection *x = &d->items[k];
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
}

typedef struct detect_args {
    const char *image, *model_path, *out_png;
    long threads;
    double score;
    int all, json;
} detect_args;

/* The command line into *a; -1 to go on, otherwise the exit code (help, usage error). */
static int parse_args(int argc, char **argv, detect_args *a)
{
    static const struct option longs[] = {
        {"help", no_argument, NULL, 'h'}, {"output", required_argument, NULL, 'o'},
        {"model", required_argument, NULL, OPT_MODEL}, {"threads", required_argument, NULL, OPT_THREADS},
        {"score", required_argument, NULL, OPT_SCORE}, {"all", no_argument, NULL, OPT_ALL},
        {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
    *a = (detect_args){.threads = 2, .score = -1};
    int c;
    optind = 0;
    while ((c = cx_cli_getopt(CMD, argc, argv, "ho:", longs)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return CX_EXIT_OK;
        case 'o': a->out_png = optarg; break;
        case OPT_MODEL: a->model_path = optarg; break;
        case OPT_THREADS:
            if (cx_cli_parse_int(optarg, 1, 64, &a->threads))
                return cx_cli_usage(CMD, "--threads '%s': expected 1..64", optarg);
            break;
        case OPT_SCORE:
            if (cx_cli_parse_double(optarg, &a->score) || a->score < 0 || a->score > 1)
                return cx_cli_usage(CMD, "--score '%s': expected 0..1", optarg);
            break;
        case OPT_ALL: a->all = 1; break;
        case OPT_JSON: a->json = 1; break;
        case 1:
            if (a->image)
                return cx_cli_usage(CMD, "one image at a time ('%s' and '%s')", a->image, optarg);
            a->image = optarg;
            break;
        default: return CX_EXIT_USAGE;
        }
    }
    if (!a->image)
        return cx_cli_usage(CMD, "IMAGE missing");
    if (!a->model_path)
        return cx_cli_usage(CMD, "--model missing");
    return -1;
}

int cx_cli_detect(int argc, char **argv)
{
    detect_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc >= 0)
        return prc;

    cx_error e = {0};
    cx_model *m = NULL;
    cx_mrcnn *s = NULL;
    cx_pipe_image *img = NULL;
    cx_detections d = {0};
    int *shown = NULL, rc = CX_EXIT_OK;
    cx_status st;
    if ((st = cx_model_load(a.model_path, &m, &e)) != CX_OK)
        goto fail;
    if ((st = cx_mrcnn_new(m, (int)a.threads, &s, &e)) != CX_OK)
        goto fail;
    const cx_arch_info *arch = cx_model_arch(m);
    cx_pipe_params pp = cx_pipe_default_params();
    pp.fit = cx_pipe_fit_for(arch->min_size, arch->max_size);
    if ((st = cx_pipe_load_file(a.image, &pp, &img, NULL, &e)) != CX_OK)
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
    /* What `cxrseg segment` and the node report (the same rule and thresholds), or everything. */
    cx_segment_params sp;
    cx_segment_default_params(&sp);
    sp.score = a.score;
    cx_decision rule;
    double image_score;
    int present = cx_segment_decide(m, &sp, &d, img->source_width, img->source_height, &rule, &image_score, shown);
    int n_shown = 0;
    for (int k = 0; k < d.count; k++) {
        shown[k] |= a.all;
        n_shown += shown[k];
    }
    if (!a.json) {
        printf("%s: %s %dx%d, engine input %dx%d, model %s %s (sha256 %.16s), %.0f ms, %s kernel\n", a.image,
               img->source_kind, img->source_width, img->source_height, in->width, in->height, cx_model_name(m),
               cx_model_version(m), cx_model_sha256(m), ms, cx_mrcnn_blas_kernel());
        printf("%d finding%s (%d returned by the network%s)\n", n_shown, n_shown == 1 ? "" : "s", d.count,
               a.all ? "" : a.score >= 0 ? ", reported as cxrseg segment would with --score" : ", reported as cxrseg segment would");
        if (n_shown)
            printf("%-3s %-16s %6s  %-26s %10s\n", "#", "class", "score", "box x1,y1,x2,y2 (px)", "mask px");
    }
    print_detections(m, a.image, &d, shown, a.json);
    if (!a.json) {
        char verdict[400];
        cx_segment_verdict_text(m, &rule, image_score, present, 1, verdict, sizeof verdict);
        printf("%s\n", verdict);
    }
    if (a.out_png) {
        if ((st = write_overlay(a.out_png, img->display, m, &d, shown, &e)) != CX_OK)
            goto fail;
        if (!a.json)
            printf("overlay written to %s\n", a.out_png);
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

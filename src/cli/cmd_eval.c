/* cxrseg eval: the product's validation figures. Runs the same loading, resize and engine as the
 * node on every image of a dataset in the shared form (optionally a split subset), compares with the
 * annotations at the image's full resolution and prints a table (and JSON with --json). */
#include "config.h"
#include "cli.h"
#include "cx_eval.h"
#include "cx_image.h"
#include "cx_mrcnn.h"
#include "cx_pipe.h"

#include <stdlib.h>
#include <string.h>

static const char *CMD = "eval";

static void usage(FILE *out)
{
    fputs("Usage: cxrseg eval --model M --data DIR [--split FILE --subset NAME] [--json OUT] [options]\n"
          "Runs the model on every image of DIR (the dataset form: images/, masks/, structure.csv)\n"
          "through the node's pipeline and reports, per class: Dice of the union mask per image (mean,\n"
          "median; images where annotation and prediction are both empty are left out), COCO mask AP at\n"
          "IoU 0.5, 0.75 and 0.50:0.95 (greedy matching by score, 101-point interpolation); image-level\n"
          "detection of the finding class (ggo) at the model's shipped score threshold; and the error of\n"
          "the \"% of each lung affected\" figure (finding area inside the lung / lung area).\n"
          "Ground-truth instances: one per 8-connected finding region (regions under 48 px of a\n"
          "512x512 image, scaled to the image, are dropped), one per lung.\n"
          "  --model M          model file (required)\n"
          "  --data DIR         dataset folder (required)\n"
          "  --split FILE       JSON object whose --subset key lists the image file names to use\n"
          "  --subset NAME      key in --split (default: val)\n"
          "  --json OUT         write all figures, the PR curves and per-image results as JSON\n"
          "  --threads N        engine threads (default 2)\n"
          "  --score T          override the shipped reporting threshold for every class\n"
          "  --limit N          only the first N images (quick checks)\n"
          "Exit codes: 0 ok, 1 usage, 2 unreadable/malformed dataset or image, 5 model error, 6 internal.\n",
          out);
}

static int label_named(const cx_model *m, const char *want)
{
    int k = cx_model_num_classes(m);
    for (int l = 1; l <= k; l++) {
        const cx_class_info *ci = cx_model_class(m, l);
        if (ci && ci->name && strcmp(ci->name, want) == 0)
            return l;
    }
    return 0;
}

int cx_cli_eval(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *split = NULL, *subset = "val", *json = NULL;
    long threads = 2, limit = 0;
    double score_override = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CX_EXIT_OK;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--data") || !strcmp(a, "--split") ||
                   !strcmp(a, "--subset") || !strcmp(a, "--json")) {
            if (!cx_cli_need_value(CMD, i, argc, argv))
                return CX_EXIT_USAGE;
            const char *v = argv[++i];
            if (!strcmp(a, "--model")) model_path = v;
            else if (!strcmp(a, "--data")) data = v;
            else if (!strcmp(a, "--split")) split = v;
            else if (!strcmp(a, "--subset")) subset = v;
            else json = v;
        } else if (!strcmp(a, "--threads")) {
            if (!cx_cli_need_value(CMD, i, argc, argv))
                return CX_EXIT_USAGE;
            if (cx_cli_parse_int(argv[++i], 1, 256, &threads))
                return cx_cli_usage(CMD, "--threads '%s': expected an integer 1..256", argv[i]);
        } else if (!strcmp(a, "--limit")) {
            if (!cx_cli_need_value(CMD, i, argc, argv))
                return CX_EXIT_USAGE;
            if (cx_cli_parse_int(argv[++i], 1, 1000000, &limit))
                return cx_cli_usage(CMD, "--limit '%s': expected a positive integer", argv[i]);
        } else if (!strcmp(a, "--score")) {
            if (!cx_cli_need_value(CMD, i, argc, argv))
                return CX_EXIT_USAGE;
            if (cx_cli_parse_double(argv[++i], &score_override) || score_override < 0 || score_override > 1)
                return cx_cli_usage(CMD, "--score '%s': expected a number 0..1", argv[i]);
        } else {
            return cx_cli_usage(CMD, "unexpected argument '%s'", a);
        }
    }
    if (!model_path)
        return cx_cli_usage(CMD, "--model M missing");
    if (!data)
        return cx_cli_usage(CMD, "--data DIR missing");

    cx_error e = {0};
    cx_model *m = NULL;
    cx_mrcnn *s = NULL;
    cx_eval_dataset *ds = NULL;
    cx_eval *ev = NULL;
    cx_detections dets = {0};
    char **names = NULL;
    int n_names = 0, rc = CX_EXIT_OK;
    cx_status st;

    if ((st = cx_model_load(model_path, &m, &e)) != CX_OK)
        goto fail;
    if ((st = cx_mrcnn_new(m, (int)threads, &s, &e)) != CX_OK)
        goto fail;
    if ((st = cx_eval_dataset_open(data, &ds, &e)) != CX_OK)
        goto fail;
    if (split) {
        if ((st = cx_eval_read_split(split, subset, &names, &n_names, &e)) != CX_OK)
            goto fail;
        if ((st = cx_eval_dataset_select(ds, (const char *const *)names, n_names, &e)) != CX_OK)
            goto fail;
    }
    int k = cx_model_num_classes(m);
    if (k < 1 || k > CX_EVAL_MAX_CLASSES) {
        st = cx_error_set(&e, CX_ERR_MODEL, "eval", "model has %d classes (1..%d supported)", k,
                          CX_EVAL_MAX_CLASSES);
        goto fail;
    }
    float thr[CX_EVAL_MAX_CLASSES + 1] = {0};
    for (int l = 1; l <= k; l++) {
        const cx_class_info *ci = cx_model_class(m, l);
        thr[l] = score_override >= 0 ? (float)score_override
                                     : (ci ? ci->score_thresh : cx_model_score_thresh(m));
    }
    if ((st = cx_eval_new(k, thr, label_named(m, "ggo"), label_named(m, "right_lung"),
                          label_named(m, "left_lung"), &ev, &e)) != CX_OK)
        goto fail;
    cx_eval_params ep = cx_eval_default_params(m);

    /* the node's preprocessing: the image as the engine's input size asks (area resize) */
    const cx_arch_info *arch = cx_model_arch(m);
    cx_pipe_params pp = cx_pipe_default_params();
    pp.fit = cx_pipe_fit_for(arch->min_size, arch->max_size);
    int n = cx_eval_dataset_count(ds);
    if (limit && limit < n)
        n = (int)limit;
    for (int i = 0; i < n; i++) {
        const char *name = cx_eval_dataset_name(ds, i);
        size_t pl = strlen(data) + strlen(name) + 16;
        char *path = cx_malloc(pl);
        if (!path) {
            st = cx_error_set(&e, CX_ERR_NOMEM, "eval", "out of memory");
            goto fail;
        }
        snprintf(path, pl, "%s/images/%s", data, name);
        cx_pipe_image *img = NULL;
        st = cx_pipe_load_file(path, &pp, &img, NULL, &e);
        cx_free(path);
        if (st != CX_OK)
            goto fail;
        const cx_image *in = img->input ? img->input : img->display;
        double t0 = cx_now_ms();
        st = cx_mrcnn_detect(s, in->data, in->height, in->width, img->source_height, img->source_width,
                             &dets, &e);
        double ms = cx_now_ms() - t0;
        if (st != CX_OK) {
            cx_pipe_image_free(img);
            cx_error_prefix(&e, name);
            goto fail;
        }
        cx_eval_gt gt;
        st = cx_eval_load_gt(ds, i, m, img->source_width, img->source_height, &ep, &gt, &e);
        cx_pipe_image_free(img);
        if (st != CX_OK)
            goto fail;
        st = cx_eval_add(ev, name, &gt, &dets, ms, &e);
        cx_eval_gt_clear(&gt);
        if (st != CX_OK)
            goto fail;
        fprintf(stderr, "\r%d/%d %s (%.0f ms, %d detections)        ", i + 1, n, name, ms, dets.count);
    }
    fputc('\n', stderr);
    cx_eval_result res;
    if ((st = cx_eval_result_get(ev, &res, &e)) != CX_OK)
        goto fail;
    printf("model %s (sha256 %.16s...), data %s%s%s\n", model_path, cx_model_sha256(m), data,
           split ? ", subset " : "", split ? subset : "");
    cx_eval_print_table(ev, &res, m, stdout);
    if (json && (st = cx_eval_write_json(ev, &res, m, model_path, data, json, &e)) != CX_OK)
        goto fail;
    goto done;
fail:
    rc = cx_cli_fail(CMD, &e);
done:
    cx_detections_clear(&dets);
    cx_eval_free(ev);
    cx_eval_strings_free(names, n_names);
    cx_eval_dataset_free(ds);
    cx_mrcnn_free(s);
    cx_model_free(m);
    return rc;
}

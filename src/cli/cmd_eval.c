/* cxrseg eval: the product's validation figures. Runs the same loading, resize and engine as the
 * node on every image of a dataset (structure form or mask-folder form, optionally a subset),
 * reports what the product would report (cx_decision_keep), compares with the annotations at the
 * image's full resolution and prints tables (and JSON with --json). */
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
    fputs("Usage: cxrseg eval --model M --data DIR [selection] [--json OUT] [options]\n"
          "Runs the model on every image of DIR through the node's pipeline, keeps the detections the\n"
          "product reports (each class's score threshold; the finding only on images the model's\n"
          "decision rule calls present) and reports, for the dataset and per category:\n"
          "  - Dice of the reported union mask per image, per class (mean, median; images where\n"
          "    annotation and prediction are both empty are left out), the finding also over the\n"
          "    images with an annotated finding, and the lungs together (right + left vs the lung);\n"
          "  - COCO mask AP at IoU 0.5, 0.75 and 0.50:0.95 (greedy matching by score, 101 points);\n"
          "  - image level: ROC AUC of the decision rule's image score (from all detections),\n"
          "    sensitivity and specificity at the rule; positives: images with an annotated finding;\n"
          "    negatives: category 'normal' (mask-folder form) or images without a finding;\n"
          "  - the error of the \"% of lung affected\" figure (finding inside the lung / lung), both\n"
          "    lungs and per side, in percentage points.\n"
          "Dataset forms, chosen by what DIR holds:\n"
          "  structure.csv               structure form: images/, masks/ (cropped RGBA), structure.csv\n"
          "  manifest.csv + images/      mask-folder form: images/<id>.png, lung/<id>.png (both lungs),\n"
          "                              infection/<id>.png; manifest.csv: id, category, source_split.\n"
          "                              The lung mask is split into the patient's sides as the trainer\n"
          "                              does; images where that is ambiguous count for the lungs\n"
          "                              together only (their number is printed).\n"
          "Ground-truth instances: one per 8-connected finding region (regions under 48 px of a\n"
          "512x512 image, scaled to the image, are dropped), one per lung. The finding class\n"
          "'opacity' is GGO + consolidation in the structure form; 'ggo' is GGO only.\n"
          "Selection:\n"
          "  --split FILE       structure form: JSON object whose --subset key lists the file names\n"
          "  --subset NAME      structure form: key in --split (default: val);\n"
          "                     mask-folder form: keep the images of source_split NAME (train, val)\n"
          "  --holdout FILE     keep only the images listed under \"holdout\" in FILE (the trainer's\n"
          "                     runs/<run>/holdout.json)\n"
          "  --category LIST    mask-folder form: keep these categories (comma-separated, e.g.\n"
          "                     covid,normal)\n"
          "  --limit N          only the first N images (quick checks)\n"
          "Options:\n"
          "  --model M          model file (required)\n"
          "  --data DIR         dataset folder (required)\n"
          "  --json OUT         write all figures, the PR curves and per-image results (name,\n"
          "                     category, gt_finding, image_score, present, Dice, lung shares) as JSON\n"
          "  --threads N        engine threads (default 2)\n"
          "  --score T          override the reporting threshold of every class (the decision\n"
          "                     rule's own threshold is the model's)\n"
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

/* Splits a comma-separated list in place into at most cap entries; returns the count, -1 when
 * there are more or an entry is empty. */
static int split_list(char *s, char **out, int cap)
{
    int n = 0;
    for (char *p = s;;) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        if (!*p || n == cap)
            return -1;
        out[n++] = p;
        if (!c)
            return n;
        p = c + 1;
    }
}

/* Applies the selection options to the dataset. */
static cx_status select_images(cx_eval_dataset *ds, const char *split, const char *subset, int subset_set,
                               const char *holdout, const char *const *cats, int n_cats, cx_error *e)
{
    char **names = NULL;
    int n = 0;
    cx_status st = CX_OK;
    int mf = cx_eval_dataset_form(ds) == CX_EVAL_FORM_MASKFOLDER;
    if (split) {
        if ((st = cx_eval_read_split(split, subset, &names, &n, e)) == CX_OK)
            st = cx_eval_dataset_select(ds, (const char *const *)names, n, e);
        cx_eval_strings_free(names, n);
        names = NULL;
        n = 0;
        if (st != CX_OK)
            return st;
    }
    if (holdout) {
        if ((st = cx_eval_read_split(holdout, "holdout", &names, &n, e)) == CX_OK)
            st = cx_eval_dataset_select(ds, (const char *const *)names, n, e);
        cx_eval_strings_free(names, n);
        if (st != CX_OK)
            return st;
    }
    if ((mf && subset_set) || n_cats)
        st = cx_eval_dataset_filter(ds, mf && subset_set ? subset : NULL, cats, n_cats, e);
    return st;
}

enum { OPT_MODEL = 256, OPT_DATA, OPT_SPLIT, OPT_SUBSET, OPT_JSON, OPT_HOLDOUT, OPT_CATEGORY, OPT_THREADS,
       OPT_LIMIT, OPT_SCORE };

typedef struct eval_args {
    const char *model_path, *data, *split, *subset, *json, *holdout;
    char *category, *cats[CX_EVAL_MAX_CATEGORIES];
    int n_cats, subset_set;
    long threads, limit;
    double score_override;
} eval_args;

/* The command line into *a; -1 to go on, otherwise the exit code (help, usage error). */
static int parse_args(int argc, char **argv, eval_args *a)
{
    static const struct option longs[] = {
        {"help", no_argument, NULL, 'h'}, {"model", required_argument, NULL, OPT_MODEL},
        {"data", required_argument, NULL, OPT_DATA}, {"split", required_argument, NULL, OPT_SPLIT},
        {"subset", required_argument, NULL, OPT_SUBSET}, {"json", required_argument, NULL, OPT_JSON},
        {"holdout", required_argument, NULL, OPT_HOLDOUT}, {"category", required_argument, NULL, OPT_CATEGORY},
        {"threads", required_argument, NULL, OPT_THREADS}, {"limit", required_argument, NULL, OPT_LIMIT},
        {"score", required_argument, NULL, OPT_SCORE}, {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->subset = "val";
    a->threads = 2;
    a->score_override = -1;
    int c;
    optind = 0;
    while ((c = cx_cli_getopt(CMD, argc, argv, "h", longs)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return CX_EXIT_OK;
        case OPT_MODEL: a->model_path = optarg; break;
        case OPT_DATA: a->data = optarg; break;
        case OPT_SPLIT: a->split = optarg; break;
        case OPT_SUBSET: a->subset = optarg, a->subset_set = 1; break;
        case OPT_JSON: a->json = optarg; break;
        case OPT_HOLDOUT: a->holdout = optarg; break;
        case OPT_CATEGORY: a->category = optarg; break;
        case OPT_THREADS:
            if (cx_cli_parse_int(optarg, 1, 256, &a->threads))
                return cx_cli_usage(CMD, "--threads '%s': expected an integer 1..256", optarg);
            break;
        case OPT_LIMIT:
            if (cx_cli_parse_int(optarg, 1, 1000000, &a->limit))
                return cx_cli_usage(CMD, "--limit '%s': expected a positive integer", optarg);
            break;
        case OPT_SCORE:
            if (cx_cli_parse_double(optarg, &a->score_override) || a->score_override < 0 || a->score_override > 1)
                return cx_cli_usage(CMD, "--score '%s': expected a number 0..1", optarg);
            break;
        case 1: return cx_cli_usage(CMD, "unexpected argument '%s'", optarg);
        default: return CX_EXIT_USAGE;
        }
    }
    if (!a->model_path)
        return cx_cli_usage(CMD, "--model M missing");
    if (!a->data)
        return cx_cli_usage(CMD, "--data DIR missing");
    if (a->category && (a->n_cats = split_list(a->category, a->cats, CX_EVAL_MAX_CATEGORIES)) < 0)
        return cx_cli_usage(CMD, "--category: expected 1..%d comma-separated names", CX_EVAL_MAX_CATEGORIES);
    return -1;
}

/* What every image of the run shares. */
typedef struct eval_run {
    const eval_args *a;
    const cx_model *m;
    cx_mrcnn *s;
    cx_eval_dataset *ds;
    cx_eval *ev;
    const cx_eval_params *ep;
    const cx_pipe_params *pp;
    const float *thr;
    cx_detections dets;
    int *keep, keep_cap;
} eval_run;

/* Image i of the dataset through the node's path (load, area resize, engine, decision rule), scored
 * against its ground truth. */
static cx_status eval_image(eval_run *r, int i, int n, cx_error *e)
{
    const char *name = cx_eval_dataset_name(r->ds, i), *file = cx_eval_dataset_file(r->ds, i);
    size_t pl = strlen(r->a->data) + strlen(file) + 2;
    char *path = cx_malloc(pl);
    if (!path)
        return cx_error_set(e, CX_ERR_NOMEM, "eval", "out of memory");
    snprintf(path, pl, "%s/%s", r->a->data, file);
    cx_pipe_image *img = NULL;
    cx_status st = cx_pipe_load_file(path, r->pp, &img, NULL, e);
    cx_free(path);
    if (st != CX_OK)
        return st;
    const cx_image *in = img->input ? img->input : img->display;
    int w = img->source_width, h = img->source_height;
    double t0 = cx_now_ms();
    st = cx_mrcnn_detect(r->s, in->data, in->height, in->width, h, w, &r->dets, e);
    double ms = cx_now_ms() - t0;
    if (st != CX_OK) {
        cx_pipe_image_free(img);
        cx_error_prefix(e, name);
        return st;
    }
    cx_eval_gt gt;
    st = cx_eval_load_gt(r->ds, i, r->m, w, h, r->ep, &gt, e);
    cx_pipe_image_free(img);
    if (st != CX_OK)
        return st;
    if (r->dets.count > r->keep_cap) {
        int *nk = cx_realloc(r->keep, (size_t)r->dets.count * sizeof *nk);
        if (!nk) {
            cx_eval_gt_clear(&gt);
            return cx_error_set(e, CX_ERR_NOMEM, "eval", "out of memory");
        }
        r->keep = nk;
        r->keep_cap = r->dets.count;
    }
    cx_eval_image ei = {name, cx_eval_dataset_category(r->ds, i), r->keep, 0, 0, ms};
    ei.image_score = cx_decision_keep(r->m, &r->dets, w, h, r->thr, r->keep);
    cx_decision rule = cx_decision_effective(r->m, r->thr);
    ei.present = cx_decision_present_at(&rule, ei.image_score);
    st = cx_eval_add_image(r->ev, &ei, &gt, &r->dets, e);
    cx_eval_gt_clear(&gt);
    if (st == CX_OK)
        fprintf(stderr, "\r%d/%d %s (%.0f ms, %d detections)        ", i + 1, n, name, ms, r->dets.count);
    return st;
}

/* The line that says what was evaluated on what. */
static void print_header(const eval_args *a, const cx_model *m, int mf)
{
    printf("model %s (sha256 %.16s...), data %s (%s form)", a->model_path, cx_model_sha256(m), a->data,
           mf ? "mask-folder" : "structure");
    if (a->split)
        printf(", %s of %s", a->subset, a->split);
    else if (mf && a->subset_set)
        printf(", source_split %s", a->subset);
    if (a->holdout)
        printf(", holdout of %s", a->holdout);
    if (a->category)
        printf(", categories %d", a->n_cats);
    putchar('\n');
}

int cx_cli_eval(int argc, char **argv)
{
    eval_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    rc = CX_EXIT_OK;
    cx_error e = {0};
    cx_model *m = NULL;
    eval_run r = {.a = &a};
    cx_status st;

    if ((st = cx_eval_dataset_open(a.data, &r.ds, &e)) != CX_OK)
        goto fail;
    int mf = cx_eval_dataset_form(r.ds) == CX_EVAL_FORM_MASKFOLDER;
    if (mf && a.split) {
        rc = cx_cli_usage(CMD, "--split is for the structure form; %s is a mask folder (use --subset, --holdout)",
                          a.data);
        goto done;
    }
    if (!mf && a.n_cats) {
        rc = cx_cli_usage(CMD, "--category: %s is in the structure form, which has no categories", a.data);
        goto done;
    }
    if (!mf && a.subset_set && !a.split) {
        rc = cx_cli_usage(CMD, "--subset: the structure form selects a subset of --split FILE");
        goto done;
    }
    if ((st = select_images(r.ds, a.split, a.subset, a.subset_set, a.holdout, (const char *const *)a.cats,
                            a.n_cats, &e)) != CX_OK)
        goto fail;
    if ((st = cx_model_load(a.model_path, &m, &e)) != CX_OK)
        goto fail;
    r.m = m;
    if ((st = cx_mrcnn_new(m, (int)a.threads, &r.s, &e)) != CX_OK)
        goto fail;
    int k = cx_model_num_classes(m);
    if (k < 1 || k > CX_EVAL_MAX_CLASSES) {
        st = cx_error_set(&e, CX_ERR_MODEL, "eval", "model has %d classes (1..%d supported)", k,
                          CX_EVAL_MAX_CLASSES);
        goto fail;
    }
    float thr[CX_EVAL_MAX_CLASSES + 1] = {0};
    for (int l = 1; l <= k; l++) {
        const cx_class_info *ci = cx_model_class(m, l);
        thr[l] = a.score_override >= 0 ? (float)a.score_override
                                       : (ci ? ci->score_thresh : cx_model_score_thresh(m));
    }
    r.thr = thr;
    if ((st = cx_eval_new(k, thr, cx_model_decision(m)->label, label_named(m, "right_lung"),
                          label_named(m, "left_lung"), &r.ev, &e)) != CX_OK)
        goto fail;
    cx_eval_params ep = cx_eval_default_params(m);
    r.ep = &ep;
    /* the node's preprocessing: the image as the engine's input size asks (area resize) */
    const cx_arch_info *arch = cx_model_arch(m);
    cx_pipe_params pp = cx_pipe_default_params();
    pp.fit = cx_pipe_fit_for(arch->min_size, arch->max_size);
    r.pp = &pp;
    int n = cx_eval_dataset_count(r.ds);
    if (a.limit && a.limit < n)
        n = (int)a.limit;
    for (int i = 0; i < n; i++)
        if ((st = eval_image(&r, i, n, &e)) != CX_OK)
            goto fail;
    fputc('\n', stderr);
    cx_eval_result res;
    if ((st = cx_eval_result_get(r.ev, &res, &e)) != CX_OK)
        goto fail;
    print_header(&a, m, mf);
    cx_eval_print_table(r.ev, &res, m, stdout);
    if (a.json && (st = cx_eval_write_json(r.ev, &res, m, a.model_path, a.data, a.json, &e)) != CX_OK)
        goto fail;
    goto done;
fail:
    rc = cx_cli_fail(CMD, &e);
done:
    cx_free(r.keep);
    cx_detections_clear(&r.dets);
    cx_eval_free(r.ev);
    cx_eval_dataset_free(r.ds);
    cx_mrcnn_free(r.s);
    cx_model_free(m);
    return rc;
}

/* Tests of src/eval: COCO mask AP, Dice, image-level and lung-share figures on hand-made detections
 * with hand-computed answers (also per category, with lung sides unknown); ROC AUC; ground-truth
 * instances (8-connected regions, specks dropped); the lung split; the structure-form reader on
 * tests/data/eval and on broken inputs; opacity = GGO + consolidation; the mask-folder reader on a
 * dataset the test writes, with a bad manifest line, a mask of the wrong size and a broken PNG. */
#include "config.h"
#include "cx_eval.h"
#include "cx_image.h"
#include "cx_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define W 20
#define H 10

static void fill(uint8_t *m, int w, int x0, int y0, int x1, int y1) /* inclusive */
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            m[y * w + x] = 1;
}

/* A detection whose box-local mask covers the whole image (simplest to paint by hand). */
static void det_full(cx_detection *d, int label, float score, const uint8_t *full)
{
    memset(d, 0, sizeof *d);
    d->label = label;
    d->score = score;
    d->mask_x0 = 0;
    d->mask_y0 = 0;
    d->mask_w = W;
    d->mask_h = H;
    d->mask = malloc(W * H);
    memcpy(d->mask, full, W * H);
}

static void free_dets(cx_detection *d, int n)
{
    for (int i = 0; i < n; i++)
        free(d[i].mask);
}

static cx_eval_params params_nospeck(void)
{
    cx_eval_params p = cx_eval_default_params_k(3);
    p.min_region_frac = 0; /* keep every region in the metric tests */
    return p;
}

static void make_gt(uint8_t *m1, uint8_t *m2, uint8_t *m3, cx_eval_gt *gt)
{
    const uint8_t *masks[4] = {NULL, m1, m2, m3};
    cx_eval_params p = params_nospeck();
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_eval_gt_from_masks(masks, 3, W, H, &p, gt, &e), CX_OK);
}

static void test_metrics(void)
{
    cx_error e = {0};
    float thr[4] = {0, 0.5f, 0.5f, 0.5f};
    cx_eval *ev;
    CU_ASSERT_EQUAL_FATAL(cx_eval_new(3, thr, 1, 2, 3, &ev, &e), CX_OK);

    /* image 1: GGO regions A (x0..4, y0..4) and B (x10..14, y0..4); right lung x0..9 (100 px) */
    uint8_t g1[W * H] = {0}, g2[W * H] = {0}, g3[W * H] = {0};
    fill(g1, W, 0, 0, 4, 4);
    fill(g1, W, 10, 0, 14, 4);
    fill(g2, W, 0, 0, 9, 9);
    cx_eval_gt gt;
    make_gt(g1, g2, g3, &gt);
    CU_ASSERT_EQUAL(gt.n_inst[1], 2);
    CU_ASSERT_EQUAL(gt.n_inst[2], 1);
    CU_ASSERT_EQUAL(gt.n_inst[3], 0);

    uint8_t m[W * H];
    cx_detection d[4];
    memset(m, 0, sizeof m);
    fill(m, W, 0, 0, 4, 4); /* = A: IoU 1 */
    det_full(&d[0], 1, 0.9f, m);
    memset(m, 0, sizeof m);
    fill(m, W, 16, 8, 17, 9); /* 4 px on nothing: FP */
    det_full(&d[1], 1, 0.8f, m);
    memset(m, 0, sizeof m);
    fill(m, W, 10, 0, 14, 3); /* 20 px of B */
    fill(m, W, 15, 0, 15, 2); /* + 3 px outside: IoU 20 / 28 = 0.714 */
    det_full(&d[2], 1, 0.7f, m);
    memset(m, 0, sizeof m);
    fill(m, W, 0, 0, 9, 5); /* 60 px of the lung */
    fill(m, W, 0, 6, 5, 6); /* + 6 = 66 px: IoU 0.66 */
    det_full(&d[3], 2, 0.95f, m);
    cx_detections dl = {.count = 4, .items = d, .capacity = 4};
    CU_ASSERT_EQUAL(cx_eval_add(ev, "one", &gt, &dl, 10.0, &e), CX_OK);
    free_dets(d, 4);
    cx_eval_gt_clear(&gt);

    /* image 2: nothing at all (excluded from Dice, a true negative) */
    memset(g1, 0, sizeof g1);
    memset(g2, 0, sizeof g2);
    make_gt(g1, g2, g3, &gt);
    cx_detections none = {0};
    CU_ASSERT_EQUAL(cx_eval_add(ev, "two", &gt, &none, 20.0, &e), CX_OK);
    /* image 3: no GGO, a GGO detection at 0.6: a false positive image, Dice 0 */
    memset(m, 0, sizeof m);
    fill(m, W, 2, 2, 3, 3);
    det_full(&d[0], 1, 0.6f, m);
    cx_detections one = {.count = 1, .items = d, .capacity = 1};
    CU_ASSERT_EQUAL(cx_eval_add(ev, "three", &gt, &one, 30.0, &e), CX_OK);
    free_dets(d, 1);
    cx_eval_gt_clear(&gt);

    cx_eval_result r;
    CU_ASSERT_EQUAL_FATAL(cx_eval_result_get(ev, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.n_images, 3);
    /* GGO at IoU 0.5: TP FP TP FP -> recall .5 .5 1 1, interpolated precision 1 .667 .667 .5:
     * 51 recall points at 1, 50 at 2/3 */
    double ap50 = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
    double ap_hi = 51.0 / 101.0; /* IoU > 0.714: only A matches */
    CU_ASSERT_DOUBLE_EQUAL(r.cls[1].ap50, ap50, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.cls[1].ap75, ap_hi, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.cls[1].ap, (5 * ap50 + 5 * ap_hi) / 10.0, 1e-9); /* .50 .. .70 match B */
    CU_ASSERT_EQUAL(r.cls[1].n_gt, 2);
    CU_ASSERT_EQUAL(r.cls[1].n_det, 4);
    /* lung: one detection, IoU 0.66: TP at .50 .55 .60 .65 */
    CU_ASSERT_DOUBLE_EQUAL(r.cls[2].ap50, 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.cls[2].ap, 0.4, 1e-9);
    CU_ASSERT_EQUAL(r.cls[3].n_gt, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.map50, (ap50 + 1.0) / 2.0, 1e-9); /* classes with ground truth only */
    /* Dice GGO: image 1: pred 25 + 4 + 23 = 52 px, GT 50, overlap 45 -> 90/102; image 3: 0 */
    CU_ASSERT_EQUAL(r.all.dice[1].n, 2);
    CU_ASSERT_DOUBLE_EQUAL(r.all.dice[1].mean, (90.0 / 102.0) / 2.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.all.dice[1].median, (90.0 / 102.0) / 2.0, 1e-9);
    CU_ASSERT_EQUAL(r.all.dice_finding_gt.n, 1); /* image 1 only has GT GGO */
    CU_ASSERT_DOUBLE_EQUAL(r.all.dice_finding_gt.mean, 90.0 / 102.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.all.dice[2].mean, 2.0 * 66 / 166.0, 1e-9);
    CU_ASSERT(isnan(r.all.dice[3].mean));
    CU_ASSERT_EQUAL(r.all.dice_lungs.n, 1);      /* lungs together: the right lung alone here */
    CU_ASSERT_DOUBLE_EQUAL(r.all.dice_lungs.mean, 2.0 * 66 / 166.0, 1e-9);
    CU_ASSERT_EQUAL(r.n_categories, 0);
    CU_ASSERT_EQUAL(r.all.n_gt_finding, 1);
    CU_ASSERT_EQUAL(r.all.n_present, 2);
    /* image level: one TP, one TN, one FP */
    CU_ASSERT_EQUAL(r.tp, 1);
    CU_ASSERT_EQUAL(r.tn, 1);
    CU_ASSERT_EQUAL(r.fp, 1);
    CU_ASSERT_EQUAL(r.fn, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.sensitivity, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.specificity, 0.5, 1e-12);
    /* image scores: positive 0.9; negatives 0 and 0.6 (no categories: every image without GGO) */
    CU_ASSERT_EQUAL(r.n_pos, 1);
    CU_ASSERT_EQUAL(r.n_neg, 2);
    CU_ASSERT_DOUBLE_EQUAL(r.auc, 1.0, 1e-12);
    /* right lung share: GT 25/100 = 25 %, predicted 25/66; both lungs: the same pixels */
    CU_ASSERT_EQUAL(r.all.share[0].n, 1);
    CU_ASSERT_EQUAL(r.all.share[1].n, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.all.share[0].bias, 100.0 * 25 / 66 - 25.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.all.share[0].mae, 100.0 * 25 / 66 - 25.0, 1e-9);
    CU_ASSERT_EQUAL(r.all.share_lungs.n, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.all.share_lungs.bias, 100.0 * 25 / 66 - 25.0, 1e-9);
    CU_ASSERT_EQUAL(r.all.share_lungs_gt.n, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.ms_mean, 20.0, 1e-9);

    char path[] = "/tmp/cx_eval_jsonXXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT_EQUAL(cx_eval_write_json(ev, &r, NULL, "m.cxm", "data", path, &e), CX_OK);
    FILE *f = fopen(path, "r");
    char buf[8192];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"sensitivity\": 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"name\": \"three\", \"category\": null, \"gt_finding\": false, "
                                       "\"image_score\": 0.6, \"present\": true"));
    unlink(path);
    cx_eval_free(ev);
}

static void test_bad_detection(void)
{
    cx_error e = {0};
    cx_eval *ev;
    CU_ASSERT_EQUAL_FATAL(cx_eval_new(3, NULL, 1, 2, 3, &ev, &e), CX_OK);
    uint8_t g[W * H] = {0};
    cx_eval_gt gt;
    make_gt(g, g, g, &gt);
    cx_detection d;
    memset(&d, 0, sizeof d);
    d.label = 7;
    cx_detections dl = {.count = 1, .items = &d, .capacity = 1};
    CU_ASSERT_EQUAL(cx_eval_add(ev, "x", &gt, &dl, 0, &e), CX_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "label 7"));
    cx_eval_gt_clear(&gt);
    cx_eval_free(ev);
    CU_ASSERT_EQUAL(cx_eval_new(0, NULL, 0, 0, 0, &ev, &e), CX_ERR_INVALID);
}

static void test_regions(void)
{
    enum { S = 64 };
    uint8_t *m = calloc(S * S, 1), *z = calloc(S * S, 1);
    fill(m, S, 2, 2, 11, 11);   /* 100 px */
    fill(m, S, 12, 12, 13, 13); /* touches the first only diagonally: same 8-connected region */
    fill(m, S, 30, 30, 39, 39); /* 100 px */
    fill(m, S, 50, 50, 50, 51); /* 2 px speck */
    const uint8_t *masks[4] = {NULL, m, m, z};
    cx_eval_params p = cx_eval_default_params_k(3);
    p.min_region_frac = 5.0 / (S * S);
    cx_eval_gt gt;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_eval_gt_from_masks(masks, 3, S, S, &p, &gt, &e), CX_OK);
    CU_ASSERT_EQUAL(gt.n_inst[1], 2);
    CU_ASSERT_EQUAL(gt.inst_area[1][1], 104);
    CU_ASSERT_EQUAL(gt.inst_area[1][2], 100);
    CU_ASSERT_EQUAL(gt.inst[1][50 * S + 50], 0);   /* speck dropped */
    CU_ASSERT_EQUAL(gt.inst[1][13 * S + 13], 1);
    CU_ASSERT_EQUAL(gt.n_inst[2], 1);              /* label 2 kept whole (all 206 px) */
    CU_ASSERT_EQUAL(gt.inst_area[2][1], 206);
    CU_ASSERT_EQUAL(gt.n_inst[3], 0);
    cx_eval_gt_clear(&gt);
    free(m);
    free(z);
}

static const char *fixture(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/tests/data/eval", cx_test_srcdir());
    return buf;
}

static void test_dataset(void)
{
    char dir[4096];
    cx_error e = {0};
    cx_eval_dataset *d;
    CU_ASSERT_EQUAL_FATAL(cx_eval_dataset_open(fixture(dir, sizeof dir), &d, &e), CX_OK);
    CU_ASSERT_EQUAL(cx_eval_dataset_count(d), 3);
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_name(d, 0), "a.png");
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_name(d, 2), "c.png");
    const char *names[4] = {NULL, "ggo", "right_lung", "left_lung"};
    cx_eval_params p = cx_eval_default_params_k(3);
    cx_eval_gt gt;
    CU_ASSERT_EQUAL_FATAL(cx_eval_load_gt_names(d, 0, names, 3, 96, 80, &p, &gt, &e), CX_OK);
    CU_ASSERT_EQUAL(gt.n_inst[1], 2);
    CU_ASSERT_EQUAL(gt.inst_area[1][1], 400); /* 20x20, the black margin of the box not counted */
    CU_ASSERT_EQUAL(gt.inst_area[1][2], 240);
    CU_ASSERT_EQUAL(gt.n_inst[2], 1);
    CU_ASSERT_EQUAL(gt.inst_area[2][1], 60 * 36);
    CU_ASSERT_EQUAL(gt.inst[3][40 * 96 + 70], 1); /* "Left Lung" lies on the image's right */
    CU_ASSERT_EQUAL(gt.inst[3][40 * 96 + 20], 0);
    cx_eval_gt_clear(&gt);
    /* the image is smaller than the masks' positions say: a mask entirely outside is an error */
    CU_ASSERT_EQUAL(cx_eval_load_gt_names(d, 0, names, 3, 8, 8, &p, &gt, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "outside"));

    char sp[4200];
    snprintf(sp, sizeof sp, "%s/split.json", dir);
    char **sel;
    int n;
    CU_ASSERT_EQUAL_FATAL(cx_eval_read_split(sp, "val", &sel, &n, &e), CX_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(cx_eval_dataset_select(d, (const char *const *)sel, n, &e), CX_OK);
    CU_ASSERT_EQUAL(cx_eval_dataset_count(d), 2);
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_name(d, 1), "c.png");
    cx_eval_strings_free(sel, n);
    CU_ASSERT_EQUAL(cx_eval_read_split(sp, "test", &sel, &n, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "no key \"test\""));
    cx_eval_dataset_free(d);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_broken_inputs(void)
{
    char dir[] = "/tmp/cx_eval_dsXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char csv[256], js[256];
    snprintf(csv, sizeof csv, "%s/structure.csv", dir);
    snprintf(js, sizeof js, "%s/split.json", dir);
    cx_error e = {0};
    cx_eval_dataset *d;
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"Class,Filename,Mask,Top\n", "header lacks"},
        {"Class,Filename,Mask,Top,Left\nggo,a.png,masks/x.png,1\n", ":2: 4 fields"},
        {"Class,Filename,Mask,Top,Left\nggo,a.png,masks/x.png,one,2\n", ":2: Top 'one'"},
        {"Class,Filename,Mask,Top,Left\nggo,../a.png,m.png,1,2\n", "not a plain name"},
        {"Class,Filename,Mask,Top,Left\nggo,a.png,../../etc/m.png,1,2\n", "leaves the dataset"},
        {"Class,Filename,Mask,Top,Left\n\"ggo,a.png,m.png,1,2\n", "unterminated quoted"},
        {"Class,Filename,Mask,Top,Left\n", "no images"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(csv, cases[i].text);
        CU_ASSERT_EQUAL(cx_eval_dataset_open(dir, &d, &e), CX_ERR_FORMAT);
        if (!strstr(e.msg, cases[i].expect))
            fprintf(stderr, "case %zu: got '%s'\n", i, e.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].expect));
    }
    /* quoted fields with commas and a missing mask file */
    write_text(csv, "Class,Filename,Mask,Top,Left\n\"COVID-19 Ground Glass Opacities\",\"a,b.png\",masks/none.png,0,0\n");
    CU_ASSERT_EQUAL_FATAL(cx_eval_dataset_open(dir, &d, &e), CX_OK);
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_name(d, 0), "a,b.png");
    const char *names[4] = {NULL, "ggo", "right_lung", "left_lung"};
    cx_eval_params p = cx_eval_default_params_k(3);
    cx_eval_gt gt;
    CU_ASSERT_EQUAL(cx_eval_load_gt_names(d, 0, names, 3, 10, 10, &p, &gt, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "none.png"));
    cx_eval_dataset_free(d);

    char **sel;
    int n;
    static const char *const bad_json[] = {"[1,2]", "{\"val\": [\"a\", 3]}", "{\"val\": \"a\"}",
                                           "{\"val\": [\"a\"", "{\"x\": {\"y\": [1, {\"z\": tru}]} ", "{\"val\": []}"};
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        write_text(js, bad_json[i]);
        CU_ASSERT_EQUAL(cx_eval_read_split(js, "val", &sel, &n, &e), CX_ERR_FORMAT);
    }
    write_text(js, "{\"seed\": 1.5e3, \"x\": {\"y\": [true, null, \"\\u00e9\\\"\"]}, \"val\": [\"a\\/b\"]}");
    CU_ASSERT_EQUAL_FATAL(cx_eval_read_split(js, "val", &sel, &n, &e), CX_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(sel[0], "a/b");
    cx_eval_strings_free(sel, n);
    unlink(csv);
    unlink(js);
    rmdir(dir);
}

static void test_roc_auc(void)
{
    const double p1[] = {0.9, 0.8}, n1[] = {0.1, 0.2};
    CU_ASSERT_DOUBLE_EQUAL(cx_eval_roc_auc(p1, 2, n1, 2), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cx_eval_roc_auc(n1, 2, p1, 2), 0.0, 1e-12);
    /* ties are worth half a pair */
    const double t[] = {0.5};
    CU_ASSERT_DOUBLE_EQUAL(cx_eval_roc_auc(t, 1, t, 1), 0.5, 1e-12);
    const double z[] = {0, 0, 0};
    CU_ASSERT_DOUBLE_EQUAL(cx_eval_roc_auc(z, 3, z, 2), 0.5, 1e-12);
    /* 0.9 beats both, 0.5 ties 0.5 and beats 0.2, 0.3 beats 0.2 only: 4.5 of 6 pairs */
    const double p2[] = {0.9, 0.5, 0.3}, n2[] = {0.5, 0.2};
    CU_ASSERT_DOUBLE_EQUAL(cx_eval_roc_auc(p2, 3, n2, 2), 0.75, 1e-12);
    /* scikit-learn's roc_auc_score example: y = [0, 0, 1, 1], s = [0.1, 0.4, 0.35, 0.8] -> 0.75 */
    const double p3[] = {0.35, 0.8}, n3[] = {0.1, 0.4};
    CU_ASSERT_DOUBLE_EQUAL(cx_eval_roc_auc(p3, 2, n3, 2), 0.75, 1e-12);
    CU_ASSERT(isnan(cx_eval_roc_auc(p1, 2, NULL, 0)));
    CU_ASSERT(isnan(cx_eval_roc_auc(NULL, 0, n1, 2)));
}

/* Figures per category, the decision rule's answer as given, lung sides unknown. */
static void test_categories(void)
{
    cx_error e = {0};
    float thr[4] = {0, 0.5f, 0.5f, 0.5f};
    cx_eval *ev;
    CU_ASSERT_EQUAL_FATAL(cx_eval_new(3, thr, 1, 2, 3, &ev, &e), CX_OK);
    uint8_t g1[W * H] = {0}, g2[W * H] = {0}, g3[W * H] = {0}, m[W * H];
    cx_eval_gt gt;
    cx_detection d[3];

    /* covid: finding x0..4 y0..4 in the right lung x0..9; the finding is reported (keep) and
     * exact; a left-lung detection under its threshold is not reported */
    fill(g1, W, 0, 0, 4, 4);
    fill(g2, W, 0, 0, 9, 9);
    fill(g3, W, 10, 0, 19, 9);
    make_gt(g1, g2, g3, &gt);
    memset(m, 0, sizeof m);
    fill(m, W, 0, 0, 4, 4);
    det_full(&d[0], 1, 0.9f, m);
    memset(m, 0, sizeof m);
    fill(m, W, 0, 0, 9, 9);
    det_full(&d[1], 2, 0.8f, m);
    memset(m, 0, sizeof m);
    fill(m, W, 10, 0, 19, 9);
    det_full(&d[2], 3, 0.3f, m);
    int keep_all[3] = {1, 1, 0};
    cx_detections dl = {.count = 3, .items = d, .capacity = 3};
    cx_eval_image in = {"c1", "covid", keep_all, 0.9, 1, 1.0};
    CU_ASSERT_EQUAL(cx_eval_add_image(ev, &in, &gt, &dl, &e), CX_OK);
    cx_eval_gt_clear(&gt);

    /* normal, lung sides unknown: the whole lung x0..19; the same detections, the finding not
     * reported (the rule said absent, score 0.4) */
    memset(g1, 0, sizeof g1);
    memset(g2, 0, sizeof g2);
    memset(g3, 0, sizeof g3);
    make_gt(g1, g2, g3, &gt);
    gt.lung = calloc(W * H, 1);
    fill(gt.lung, W, 0, 0, 19, 9);
    gt.lung_side_unknown = 1;
    int keep_lungs[3] = {0, 1, 1};
    cx_eval_image in2 = {"n1", "normal", keep_lungs, 0.4, 0, 1.0};
    CU_ASSERT_EQUAL(cx_eval_add_image(ev, &in2, &gt, &dl, &e), CX_OK);
    /* noncovid: present (no GT for the finding: neither positive nor negative) */
    cx_eval_image in3 = {"p1", "noncovid", keep_all, 0.95, 1, 1.0};
    CU_ASSERT_EQUAL(cx_eval_add_image(ev, &in3, &gt, &dl, &e), CX_OK);
    /* normal, called present */
    cx_eval_image in4 = {"n2", "normal", keep_all, 0.9, 1, 1.0};
    CU_ASSERT_EQUAL(cx_eval_add_image(ev, &in4, &gt, &dl, &e), CX_OK);
    cx_eval_gt_clear(&gt);
    free_dets(d, 3);

    cx_eval_result r;
    CU_ASSERT_EQUAL_FATAL(cx_eval_result_get(ev, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.n_categories, 3);
    CU_ASSERT_STRING_EQUAL(r.cat[0].category, "covid");
    CU_ASSERT_STRING_EQUAL(r.cat[1].category, "normal");
    CU_ASSERT_STRING_EQUAL(r.cat[2].category, "noncovid");
    CU_ASSERT_EQUAL(r.cat[1].n_images, 2);
    CU_ASSERT_EQUAL(r.all.n_side_unknown, 3);
    /* negatives are the normal images: scores 0.4 and 0.9 against the positive's 0.9 */
    CU_ASSERT(r.by_category);
    CU_ASSERT_EQUAL(r.n_pos, 1);
    CU_ASSERT_EQUAL(r.n_neg, 2);
    CU_ASSERT_DOUBLE_EQUAL(r.auc, 0.75, 1e-12);
    CU_ASSERT_EQUAL(r.tp, 1);
    CU_ASSERT_EQUAL(r.fp, 1);
    CU_ASSERT_EQUAL(r.tn, 1);
    CU_ASSERT_EQUAL(r.cat[2].n_present, 1);
    /* per-side lung Dice: the covid image only (1.0 right; left GT vs nothing reported: 0) */
    CU_ASSERT_EQUAL(r.all.dice[2].n, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.all.dice[2].mean, 1.0, 1e-12);
    CU_ASSERT_EQUAL(r.all.dice[3].n, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.all.dice[3].mean, 0.0, 1e-12);
    /* lungs together: covid 2*100/300; n1 and n2 ... reported lungs vs the whole lung */
    CU_ASSERT_EQUAL(r.all.dice_lungs.n, 4);
    CU_ASSERT_DOUBLE_EQUAL(r.cat[0].dice_lungs.mean, 200.0 / 300.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.cat[1].dice_lungs.median, (1.0 + 200.0 / 300.0) / 2, 1e-12);
    /* the finding: covid Dice 1; the normal image with a reported finding: 0 */
    CU_ASSERT_DOUBLE_EQUAL(r.cat[0].dice[1].mean, 1.0, 1e-12);
    CU_ASSERT_EQUAL(r.cat[1].dice[1].n, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.cat[1].dice[1].mean, 0.0, 1e-12);
    /* % of lung affected, both lungs: covid GT 25/200 = 12.5 %, predicted 25/100 (the reported
     * right lung); n1 0 vs 0; per side only where the sides are known */
    CU_ASSERT_DOUBLE_EQUAL(r.cat[0].share_lungs.bias, 25.0 - 12.5, 1e-9);
    CU_ASSERT_EQUAL(r.all.share_lungs.n, 4);
    CU_ASSERT_EQUAL(r.all.share_lungs_gt.n, 1);
    CU_ASSERT_EQUAL(r.all.share[0].n, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.all.share[0].bias, 0.0, 1e-9);
    /* AP: lung-side detections of the side-unknown images are left out (1 each, from c1) */
    CU_ASSERT_EQUAL(r.cls[2].n_det, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.cls[2].ap50, 1.0, 1e-12);
    CU_ASSERT_EQUAL(r.cls[1].n_det, 4);

    /* more categories than supported */
    char nm[16];
    int bad = 0;
    make_gt(g1, g2, g3, &gt);
    for (int i = 0; i < CX_EVAL_MAX_CATEGORIES + 1; i++) {
        snprintf(nm, sizeof nm, "cat%d", i);
        cx_eval_image x = {"x", nm, NULL, 0, 0, 0};
        if (cx_eval_add_image(ev, &x, &gt, NULL, &e) != CX_OK)
            bad++;
    }
    cx_eval_gt_clear(&gt);
    CU_ASSERT_EQUAL(bad, 4); /* 3 categories already: 5 of the 9 new ones fit */
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "category"));
    cx_eval_free(ev);
}

/* lung mask helpers for the split: w 40, h 20 (1 % = 8 px) */
#define LW 40
#define LH 20

static void split(const uint8_t *lung, uint8_t *r, uint8_t *l, int *amb)
{
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_eval_split_lungs(lung, LW, LH, r, l, amb, &e), CX_OK);
}

static int count(const uint8_t *m, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += m[i] != 0;
    return c;
}

static void test_lung_split(void)
{
    uint8_t lung[LW * LH], r[LW * LH], l[LW * LH];
    int amb = -1;
    /* two fields side by side: the one on the image's left is the patient's right lung */
    memset(lung, 0, sizeof lung);
    fill(lung, LW, 2, 2, 11, 17);
    fill(lung, LW, 25, 2, 36, 17);
    split(lung, r, l, &amb);
    CU_ASSERT_EQUAL(amb, 0);
    CU_ASSERT_EQUAL(r[5 * LW + 5], 1);
    CU_ASSERT_EQUAL(l[5 * LW + 5], 0);
    CU_ASSERT_EQUAL(l[5 * LW + 30], 1);
    CU_ASSERT_EQUAL(count(r, LW * LH), 160);
    CU_ASSERT_EQUAL(count(l, LW * LH), 192);
    /* a 2-px fragment (under 1 %) at column 20 joins the field whose mean column is nearer: the
     * left one (30.5, against 6.5); one at column 14 joins the right lung; a diagonal touch is
     * the same region as the field */
    lung[19 * LW + 20] = lung[19 * LW + 21] = 1;
    lung[0 * LW + 14] = 1;
    lung[18 * LW + 12] = 1;
    split(lung, r, l, &amb);
    CU_ASSERT_EQUAL(amb, 0);
    CU_ASSERT_EQUAL(l[19 * LW + 20], 1);
    CU_ASSERT_EQUAL(r[19 * LW + 20], 0);
    CU_ASSERT_EQUAL(r[0 * LW + 14], 1);
    CU_ASSERT_EQUAL(r[18 * LW + 12], 1);
    CU_ASSERT_EQUAL(count(r, LW * LH) + count(l, LW * LH), count(lung, LW * LH));
    /* mirrored: laterality follows the image side, not the size */
    memset(lung, 0, sizeof lung);
    fill(lung, LW, 2, 2, 13, 17);
    fill(lung, LW, 28, 2, 36, 17);
    split(lung, r, l, &amb);
    CU_ASSERT_EQUAL(amb, 0);
    CU_ASSERT_EQUAL(count(r, LW * LH), 12 * 16);
    CU_ASSERT_EQUAL(l[10 * LW + 30], 1);
    /* merged into one region by a bridge: ambiguous, both sides empty */
    fill(lung, LW, 12, 9, 27, 10);
    split(lung, r, l, &amb);
    CU_ASSERT_EQUAL(amb, 1);
    CU_ASSERT_EQUAL(count(r, LW * LH) + count(l, LW * LH), 0);
    /* one above the other: columns overlap by more than half of the narrower field */
    memset(lung, 0, sizeof lung);
    fill(lung, LW, 5, 1, 30, 8);
    fill(lung, LW, 8, 11, 28, 18);
    split(lung, r, l, &amb);
    CU_ASSERT_EQUAL(amb, 1);
    /* a small overlap (3 columns of 10) is still side by side */
    memset(lung, 0, sizeof lung);
    fill(lung, LW, 2, 1, 11, 8);
    fill(lung, LW, 9, 11, 18, 18);
    split(lung, r, l, &amb);
    CU_ASSERT_EQUAL(amb, 0);
    CU_ASSERT_EQUAL(r[2 * LW + 2], 1);
    /* one field only (the other under 1 % of the image), or none at all: ambiguous */
    memset(lung, 0, sizeof lung);
    fill(lung, LW, 2, 2, 11, 17);
    fill(lung, LW, 30, 2, 31, 3);
    split(lung, r, l, &amb);
    CU_ASSERT_EQUAL(amb, 1);
    memset(lung, 0, sizeof lung);
    split(lung, r, l, &amb);
    CU_ASSERT_EQUAL(amb, 1);
}

/* Writes a w x h 8-bit grey PNG of 0/255 from a 0/1 mask. */
static void write_mask(const char *path, const uint8_t *m, int w, int h)
{
    cx_error e = {0};
    cx_image *img = NULL;
    CU_ASSERT_EQUAL_FATAL(cx_image_new(w, h, &img, &e), CX_OK);
    for (int i = 0; i < w * h; i++)
        img->data[i] = m[i] ? 1.0f : 0.0f;
    CU_ASSERT_EQUAL(cx_image_write_png(path, img, 8, &e), CX_OK);
    cx_image_free(img);
}

static void pathf(char *buf, size_t cap, const char *dir, const char *rel)
{
    snprintf(buf, cap, "%s/%s", dir, rel);
}

static void test_maskfolder(void)
{
    char dir[] = "/tmp/cx_eval_mfXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char p[512];
    static const char *const sub[] = {"images", "lung", "infection"};
    for (int i = 0; i < 3; i++) {
        pathf(p, sizeof p, dir, sub[i]);
        CU_ASSERT_EQUAL_FATAL(mkdir(p, 0700), 0);
    }
    /* covid_1: two lung fields and a finding in the right one; normal_1: lungs merged */
    uint8_t img[LW * LH], lung[LW * LH], inf[LW * LH];
    memset(img, 1, sizeof img);
    memset(lung, 0, sizeof lung);
    memset(inf, 0, sizeof inf);
    fill(lung, LW, 2, 2, 11, 17);
    fill(lung, LW, 25, 2, 36, 17);
    fill(inf, LW, 3, 3, 6, 6);
    fill(inf, LW, 8, 12, 10, 14);
    const char *ids[] = {"covid_1", "normal_1", "noncovid_1"};
    for (int i = 0; i < 3; i++) {
        char rel[64];
        if (i == 1)
            fill(lung, LW, 12, 9, 27, 10);
        if (i > 0)
            memset(inf, 0, sizeof inf);
        for (int f = 0; f < 3; f++) {
            snprintf(rel, sizeof rel, "%s/%s.png", sub[f], ids[i]);
            pathf(p, sizeof p, dir, rel);
            write_mask(p, f == 0 ? img : f == 1 ? lung : inf, LW, LH);
        }
    }
    char man[512];
    pathf(man, sizeof man, dir, "manifest.csv");
    write_text(man, "id,category,source_split,source_path\n"
                    "covid_1,covid,val,Val/COVID-19/images/covid_1.png\n"
                    "normal_1,normal,val,x\n"
                    "noncovid_1,noncovid,train,x\n");
    cx_error e = {0};
    cx_eval_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(cx_eval_dataset_open(dir, &d, &e), CX_OK);
    CU_ASSERT_EQUAL(cx_eval_dataset_form(d), CX_EVAL_FORM_MASKFOLDER);
    CU_ASSERT_EQUAL(cx_eval_dataset_count(d), 3);
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_name(d, 0), "covid_1");
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_file(d, 0), "images/covid_1.png");
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_category(d, 2), "noncovid");
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_source_split(d, 2), "train");

    const char *names[4] = {NULL, "opacity", "right_lung", "left_lung"};
    cx_eval_params prm = cx_eval_default_params_k(3);
    prm.min_region_frac = 0;
    cx_eval_gt gt;
    CU_ASSERT_EQUAL_FATAL(cx_eval_load_gt_names(d, 0, names, 3, LW, LH, &prm, &gt, &e), CX_OK);
    CU_ASSERT_EQUAL(gt.n_inst[1], 2);          /* two finding regions */
    CU_ASSERT_EQUAL(gt.inst_area[1][1], 16);
    CU_ASSERT_EQUAL(gt.n_inst[2], 1);
    CU_ASSERT_EQUAL(gt.inst_area[2][1], 160);  /* right lung: the image's left field */
    CU_ASSERT_EQUAL(gt.inst[3][5 * LW + 30], 1);
    CU_ASSERT_EQUAL(gt.lung_side_unknown, 0);
    CU_ASSERT_PTR_NOT_NULL(gt.lung);
    cx_eval_gt_clear(&gt);
    CU_ASSERT_EQUAL_FATAL(cx_eval_load_gt_names(d, 1, names, 3, LW, LH, &prm, &gt, &e), CX_OK);
    CU_ASSERT_EQUAL(gt.lung_side_unknown, 1);  /* merged lungs */
    CU_ASSERT_EQUAL(gt.n_inst[1] + gt.n_inst[2] + gt.n_inst[3], 0);
    CU_ASSERT_EQUAL(count(gt.lung, LW * LH), 160 + 192 + 2 * 13);
    cx_eval_gt_clear(&gt);
    /* the old model's ggo class takes the infection folder too */
    const char *old_names[4] = {NULL, "ggo", "right_lung", "left_lung"};
    CU_ASSERT_EQUAL_FATAL(cx_eval_load_gt_names(d, 0, old_names, 3, LW, LH, &prm, &gt, &e), CX_OK);
    CU_ASSERT_EQUAL(gt.n_inst[1], 2);
    cx_eval_gt_clear(&gt);
    /* an image size that is not the masks' */
    CU_ASSERT_EQUAL(cx_eval_load_gt_names(d, 0, names, 3, LW, LH + 1, &prm, &gt, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "lung/covid_1.png: mask 40x20 but the image"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "images/covid_1.png is 40x21"));

    /* selection: holdout list, then source_split and category */
    char hp[512];
    pathf(hp, sizeof hp, dir, "holdout.json");
    write_text(hp, "{\"data\": \"x\", \"holdout\": [\"noncovid_1\", \"covid_1\"]}");
    char **sel;
    int n;
    CU_ASSERT_EQUAL_FATAL(cx_eval_read_split(hp, "holdout", &sel, &n, &e), CX_OK);
    CU_ASSERT_EQUAL(cx_eval_dataset_select(d, (const char *const *)sel, n, &e), CX_OK);
    cx_eval_strings_free(sel, n);
    CU_ASSERT_EQUAL(cx_eval_dataset_count(d), 2);
    const char *cats[] = {"covid", "normal"};
    CU_ASSERT_EQUAL(cx_eval_dataset_filter(d, NULL, cats, 2, &e), CX_OK);
    CU_ASSERT_EQUAL(cx_eval_dataset_count(d), 1);
    CU_ASSERT_STRING_EQUAL(cx_eval_dataset_name(d, 0), "covid_1");
    CU_ASSERT_EQUAL(cx_eval_dataset_filter(d, "train", NULL, 0, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "no image left"));
    cx_eval_dataset_free(d);

    /* a mask of the wrong size, and a PNG that is not one: errors name the file */
    CU_ASSERT_EQUAL_FATAL(cx_eval_dataset_open(dir, &d, &e), CX_OK);
    uint8_t small[10 * 10] = {0};
    pathf(p, sizeof p, dir, "infection/normal_1.png");
    write_mask(p, small, 10, 10);
    CU_ASSERT_EQUAL(cx_eval_load_gt_names(d, 1, names, 3, LW, LH, &prm, &gt, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "infection/normal_1.png: mask 10x10 but the image"));
    pathf(p, sizeof p, dir, "lung/noncovid_1.png");
    write_text(p, "not a PNG");
    CU_ASSERT_NOT_EQUAL(cx_eval_load_gt_names(d, 2, names, 3, LW, LH, &prm, &gt, &e), CX_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "lung/noncovid_1.png"));
    cx_eval_dataset_free(d);

    /* bad manifests: file:line */
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"category,source_split\ncovid,val\n", "manifest.csv:1: header lacks the column id"},
        {"id,category,source_split\ncovid_1,covid,val\nnormal_1,normal\n", "manifest.csv:3: 2 fields"},
        {"id,category\ncovid_1,covid\n,normal\n", "manifest.csv:3: id '' empty"},
        {"id,category\n../covid_1,covid\n", "manifest.csv:2: id '../covid_1'"},
        {"id,category\ncovid_1,covid\ncovid_1,normal\n", "manifest.csv:3: id 'covid_1' repeated (first on line 2)"},
        {"id,category\ncovid_1,\n", "manifest.csv:2: category '' empty"},
        {"id,category\n", "no images listed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(man, cases[i].text);
        CU_ASSERT_EQUAL(cx_eval_dataset_open(dir, &d, &e), CX_ERR_FORMAT);
        if (!strstr(e.msg, cases[i].expect))
            fprintf(stderr, "case %zu: got '%s'\n", i, e.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].expect));
    }
    /* no source_split column: --subset cannot select */
    write_text(man, "id,category\ncovid_1,covid\n");
    CU_ASSERT_EQUAL_FATAL(cx_eval_dataset_open(dir, &d, &e), CX_OK);
    CU_ASSERT_PTR_NULL(cx_eval_dataset_source_split(d, 0));
    CU_ASSERT_EQUAL(cx_eval_dataset_filter(d, "val", NULL, 0, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "no source_split column"));
    cx_eval_dataset_free(d);
    /* neither form */
    unlink(man);
    CU_ASSERT_EQUAL(cx_eval_dataset_open(dir, &d, &e), CX_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "manifest.csv"));

    for (int i = 0; i < 3; i++)
        for (int f = 0; f < 3; f++) {
            char rel[64];
            snprintf(rel, sizeof rel, "%s/%s.png", sub[f], ids[i]);
            pathf(p, sizeof p, dir, rel);
            unlink(p);
        }
    for (int i = 0; i < 3; i++) {
        pathf(p, sizeof p, dir, sub[i]);
        rmdir(p);
    }
    unlink(hp);
    rmdir(dir);
}

/* The structure form: opacity's ground truth is GGO + consolidation, ggo's GGO only. */
static void test_opacity_mapping(void)
{
    CU_ASSERT(cx_eval_class_matches("opacity", "COVID-19 Ground Glass Opacities"));
    CU_ASSERT(cx_eval_class_matches("opacity", "COVID-19 Consolidation"));
    CU_ASSERT(cx_eval_class_matches("opacity", "infection"));
    CU_ASSERT(cx_eval_class_matches("ggo", "COVID-19 Ground Glass Opacities"));
    CU_ASSERT_FALSE(cx_eval_class_matches("ggo", "COVID-19 Consolidation"));
    CU_ASSERT_FALSE(cx_eval_class_matches("opacity", "COVID-19 Right Lung"));
    CU_ASSERT(cx_eval_class_matches("right_lung", "COVID-19 Right Lung"));

    char dir[] = "/tmp/cx_eval_opXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char p[512];
    pathf(p, sizeof p, dir, "masks");
    CU_ASSERT_EQUAL_FATAL(mkdir(p, 0700), 0);
    uint8_t box[4 * 4];
    memset(box, 1, sizeof box);
    pathf(p, sizeof p, dir, "masks/g.png");
    write_mask(p, box, 4, 4);
    pathf(p, sizeof p, dir, "masks/c.png");
    write_mask(p, box, 4, 4);
    char csv[512];
    pathf(csv, sizeof csv, dir, "structure.csv");
    write_text(csv, "Class,Filename,Mask,Top,Left\n"
                    "COVID-19 Ground Glass Opacities,a.png,masks/g.png,0,0\n"
                    "COVID-19 Consolidation,a.png,masks/c.png,0,10\n"
                    "COVID-19 Consolidation,a.png,masks/c.png,2,2\n");
    cx_error e = {0};
    cx_eval_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(cx_eval_dataset_open(dir, &d, &e), CX_OK);
    CU_ASSERT_EQUAL(cx_eval_dataset_form(d), CX_EVAL_FORM_STRUCTURE);
    cx_eval_params prm = cx_eval_default_params_k(3);
    prm.min_region_frac = 0;
    cx_eval_gt gt;
    const char *opacity[4] = {NULL, "opacity", "right_lung", "left_lung"};
    CU_ASSERT_EQUAL_FATAL(cx_eval_load_gt_names(d, 0, opacity, 3, W, H, &prm, &gt, &e), CX_OK);
    /* GGO at (0..3, 0..3) overlapping consolidation at (2..5, 2..5): one region of 28 px; the
     * consolidation at x 10..13 another */
    CU_ASSERT_EQUAL(gt.n_inst[1], 2);
    CU_ASSERT_EQUAL(gt.inst_area[1][1], 28);
    CU_ASSERT_EQUAL(gt.inst_area[1][2], 16);
    cx_eval_gt_clear(&gt);
    const char *ggo[4] = {NULL, "ggo", "right_lung", "left_lung"};
    CU_ASSERT_EQUAL_FATAL(cx_eval_load_gt_names(d, 0, ggo, 3, W, H, &prm, &gt, &e), CX_OK);
    CU_ASSERT_EQUAL(gt.n_inst[1], 1);
    CU_ASSERT_EQUAL(gt.inst_area[1][1], 16);
    cx_eval_gt_clear(&gt);
    cx_eval_dataset_free(d);
    unlink(csv);
    pathf(p, sizeof p, dir, "masks/g.png");
    unlink(p);
    pathf(p, sizeof p, dir, "masks/c.png");
    unlink(p);
    pathf(p, sizeof p, dir, "masks");
    rmdir(p);
    rmdir(dir);
}

static void alloc_failures(int form);

static void test_alloc_failures(void)
{
    /* every allocation of a dataset open + GT load failing in turn gives NOMEM, never a crash;
     * both forms (tests/data/eval and tests/data/eval_mf) */
    for (int form = 0; form < 2; form++)
        alloc_failures(form);
}

static void alloc_failures(int form)
{
    char dir[4096];
    fixture(dir, sizeof dir);
    if (form)
        strcat(dir, "_mf");
    const char *names[4] = {NULL, "ggo", "right_lung", "left_lung"};
    cx_eval_params p = cx_eval_default_params_k(3);
    for (unsigned long k = 1; k < 1000; k++) {
        cx_error e = {0};
        cx_eval_dataset *d = NULL;
        cx_alloc_fail_at(k, 0);
        cx_status s = cx_eval_dataset_open(dir, &d, &e);
        if (s == CX_OK) {
            cx_eval_gt gt;
            s = cx_eval_load_gt_names(d, 0, names, 3, 96, 80, &p, &gt, &e);
            if (s == CX_OK)
                cx_eval_gt_clear(&gt);
            cx_eval_dataset_free(d);
        }
        unsigned long used = cx_alloc_count();
        cx_alloc_fail_at(0, 0);
        if (s != CX_OK && s != CX_ERR_NOMEM)
            fprintf(stderr, "alloc %lu: %s\n", k, e.msg);
        CU_ASSERT(s == CX_OK || s == CX_ERR_NOMEM);
        if (s == CX_OK && used < k)
            break; /* the whole run needed fewer than k allocations: every one has been failed */
    }
}

static const cx_test_case cases[] = {
    {"metrics on hand-made detections", test_metrics},
    {"invalid detections", test_bad_detection},
    {"ground-truth regions", test_regions},
    {"dataset fixture and split", test_dataset},
    {"broken csv and json", test_broken_inputs},
    {"ROC AUC, ties half", test_roc_auc},
    {"figures per category, lung sides unknown", test_categories},
    {"lung split into the patient's sides", test_lung_split},
    {"mask-folder reader and its errors", test_maskfolder},
    {"opacity = GGO + consolidation", test_opacity_mapping},
    {"allocation failures", test_alloc_failures},
    {NULL, NULL},
};

CX_TEST_MAIN("eval", cases)

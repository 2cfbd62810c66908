/* Tests of src/eval: COCO mask AP, Dice, image-level and lung-share figures on hand-made detections
 * with hand-computed answers; ground-truth instances (8-connected regions, specks dropped); the
 * dataset reader on tests/data/eval and on broken inputs. */
#include "config.h"
#include "cx_eval.h"
#include "cx_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
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
    cx_detections dl = {4, d, 4};
    CU_ASSERT_EQUAL(cx_eval_add(ev, "one", &gt, &dl, 10.0, &e), CX_OK);
    free_dets(d, 4);
    cx_eval_gt_clear(&gt);

    /* image 2: nothing at all (excluded from Dice, a true negative) */
    memset(g1, 0, sizeof g1);
    memset(g2, 0, sizeof g2);
    make_gt(g1, g2, g3, &gt);
    cx_detections none = {0, NULL, 0};
    CU_ASSERT_EQUAL(cx_eval_add(ev, "two", &gt, &none, 20.0, &e), CX_OK);
    /* image 3: no GGO, a GGO detection at 0.6: a false positive image, Dice 0 */
    memset(m, 0, sizeof m);
    fill(m, W, 2, 2, 3, 3);
    det_full(&d[0], 1, 0.6f, m);
    cx_detections one = {1, d, 1};
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
    CU_ASSERT_EQUAL(r.cls[1].n_dice, 2);
    CU_ASSERT_DOUBLE_EQUAL(r.cls[1].dice_mean, (90.0 / 102.0) / 2.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.cls[1].dice_median, (90.0 / 102.0) / 2.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.cls[2].dice_mean, 2.0 * 66 / 166.0, 1e-9);
    CU_ASSERT(isnan(r.cls[3].dice_mean));
    /* image level: one TP, one TN, one FP */
    CU_ASSERT_EQUAL(r.tp, 1);
    CU_ASSERT_EQUAL(r.tn, 1);
    CU_ASSERT_EQUAL(r.fp, 1);
    CU_ASSERT_EQUAL(r.fn, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.sensitivity, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.specificity, 0.5, 1e-12);
    /* right lung share: GT 25/100 = 25 %, predicted 25/66 */
    CU_ASSERT_EQUAL(r.n_share[0], 1);
    CU_ASSERT_EQUAL(r.n_share[1], 0);
    CU_ASSERT_DOUBLE_EQUAL(r.share_bias[0], 100.0 * 25 / 66 - 25.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.share_mae[0], 100.0 * 25 / 66 - 25.0, 1e-9);
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
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"name\": \"three\""));
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
    cx_detections dl = {1, &d, 1};
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

static void test_alloc_failures(void)
{
    /* every allocation of a dataset open + GT load failing in turn gives NOMEM, never a crash */
    char dir[4096];
    fixture(dir, sizeof dir);
    const char *names[4] = {NULL, "ggo", "right_lung", "left_lung"};
    cx_eval_params p = cx_eval_default_params_k(3);
    for (unsigned long k = 1; k < 400; k++) {
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
    {"allocation failures", test_alloc_failures},
    {NULL, NULL},
};

CX_TEST_MAIN("eval", cases)

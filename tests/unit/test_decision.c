/* The model's image-level decision rule (src/mrcnn: cx_model_decision, cx_decision_image_score,
 * cx_decision_present) on hand-made detections: the keys as export.py writes them
 * (tests/data/decision_model.cxm), the min_area boundary, detections of another class, masks
 * without pixels, the default rule of models without decision.* keys, and bad keys. */
#include <config.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cx_mrcnn.h"
#include "cx_test.h"
#include "cx_test_mfile.h"

#define W 100
#define H 80 /* 8000 px: decision_model's min_area 0.005 is 40 px */

static char tmp_path[256];

static const char *data_path(const char *name)
{
    static char p[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/tests/data/%s", cx_test_srcdir(), name);
    return p[k];
}

static cx_model *load(const char *path)
{
    cx_error e = {0};
    cx_model *m = NULL;
    if (cx_model_load(path, &m, &e) != CX_OK)
        fprintf(stderr, "\n    %s\n", e.msg);
    return m;
}

static uint8_t masks[8][W * H];
static cx_detection items[8];
static cx_detections dets;

/* Detection k of label with score whose mask has exactly px pixels set (row-major from the top
 * left of a w x h box at x0, y0). */
static void put(int k, int label, float score, int x0, int y0, int w, int h, int px)
{
    cx_detection *d = &items[k];
    memset(d, 0, sizeof *d);
    d->label = label;
    d->score = score;
    d->mask_x0 = x0; d->mask_y0 = y0; d->mask_w = w; d->mask_h = h;
    d->box[0] = (float)x0; d->box[1] = (float)y0; d->box[2] = (float)(x0 + w); d->box[3] = (float)(y0 + h);
    memset(masks[k], 0, sizeof masks[k]);
    memset(masks[k], 1, (size_t)px);
    d->mask = masks[k];
    if (k + 1 > dets.count)
        dets.count = k + 1;
    dets.items = items;
    dets.capacity = 8;
}

static void test_keys_from_export(void)
{
    cx_model *m = load(data_path("decision_model.cxm"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const cx_decision *r = cx_model_decision(m);
    CU_ASSERT_EQUAL(r->label, 1);
    CU_ASSERT_DOUBLE_EQUAL(r->score, 0.62, 1e-12);        /* --decision-score over the checkpoint's 0.5 */
    CU_ASSERT_DOUBLE_EQUAL(r->min_area_frac, 0.005, 1e-12);
    CU_ASSERT_STRING_EQUAL(cx_model_class(m, 1)->name, "opacity");
    CU_ASSERT_STRING_EQUAL(cx_model_class(m, 1)->code.value, "409609008");
    CU_ASSERT_DOUBLE_EQUAL(cx_model_class(m, 1)->score_thresh, 0.4, 1e-6); /* --score-thresh opacity=0.4 */
    CU_ASSERT_DOUBLE_EQUAL(cx_model_class(m, 2)->score_thresh, 0.5, 1e-6);
    cx_model_free(m);
}

static void test_min_area_and_labels(void)
{
    cx_model *m = load(data_path("decision_model.cxm"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    memset(&dets, 0, sizeof dets);
    put(0, 2, 0.99f, 0, 0, 50, 80, 4000);   /* a right lung: another class, never the image score */
    put(1, 1, 0.95f, 10, 10, 20, 20, 39);   /* opacity one pixel short of 40 */
    put(2, 1, 0.80f, 40, 10, 20, 20, 40);   /* opacity of exactly 40 px: counts */
    put(3, 1, 0.70f, 60, 40, 30, 30, 900);
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.80, 1e-6);
    CU_ASSERT_TRUE(cx_decision_present(m, cx_decision_image_score(m, &dets, W, H)));
    /* The same mask in a larger image covers less than 0.5% of it. */
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H + 1), 0.70, 1e-6);
    /* Only the short one and the lung: no qualifying detection. */
    dets.count = 2;
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.0, 0);
    CU_ASSERT_FALSE(cx_decision_present(m, 0.0));
    /* Big enough but below the rule's score (above the class's 0.4 reporting threshold). */
    put(1, 1, 0.60f, 10, 10, 20, 20, 400);
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.60, 1e-6);
    CU_ASSERT_FALSE(cx_decision_present(m, cx_decision_image_score(m, &dets, W, H)));
    /* The score boundary is inclusive. */
    CU_ASSERT_TRUE(cx_decision_present(m, 0.62));
    CU_ASSERT_FALSE(cx_decision_present(m, 0.6199));
    /* A detection whose mask was not computed (mask_w = 0) or is empty never qualifies. */
    put(1, 1, 0.90f, 10, 10, 0, 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.0, 0);
    put(1, 1, 0.90f, 10, 10, 20, 20, 0);
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.0, 0);
    /* No detections at all. */
    dets.count = 0;
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, NULL, W, H), 0.0, 0);
    cx_model_free(m);
}

/* Models exported before the decision.* keys: the first non-lung class at its own threshold, any
 * area, i.e. "present" = a finding the reporting threshold keeps (the old behaviour). */
static void test_default_rule(void)
{
    cx_model *m = load(data_path("eval/tiny_model.cxm")); /* ggo, right_lung, left_lung; 0.5 */
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const cx_decision *r = cx_model_decision(m);
    CU_ASSERT_EQUAL(r->label, 1);
    CU_ASSERT_DOUBLE_EQUAL(r->score, 0.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(r->min_area_frac, 0.0, 0);
    memset(&dets, 0, sizeof dets);
    put(0, 2, 0.99f, 0, 0, 50, 80, 4000);
    put(1, 1, 0.50f, 10, 10, 20, 20, 1);  /* one pixel at exactly the threshold */
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.5, 1e-6);
    CU_ASSERT_TRUE(cx_decision_present(m, cx_decision_image_score(m, &dets, W, H)));
    put(1, 1, 0.49f, 10, 10, 20, 20, 400);
    CU_ASSERT_FALSE(cx_decision_present(m, cx_decision_image_score(m, &dets, W, H)));
    cx_model_free(m);

    /* The finding class need not be label 1: a lung first, then the finding at its own threshold. */
    const cx_test_meta_edit ed[] = {
        {"decision.class", 'd', 0, 0, NULL}, {"decision.score", 'd', 0, 0, NULL},
        {"decision.min_area", 'd', 0, 0, NULL}, {"class.1.name", 's', 0, 0, "left_lung"},
        {"class.2.name", 's', 0, 0, "opacity"}, {"class.2.score_thresh", 'f', 0, 0.3, NULL},
    };
    CU_ASSERT_FATAL(cx_test_rewrite_model(data_path("decision_model.cxm"), tmp_path, ed, 6) == 0);
    m = load(tmp_path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(cx_model_decision(m)->label, 2);
    CU_ASSERT_DOUBLE_EQUAL(cx_model_decision(m)->score, 0.3, 1e-6);
    memset(&dets, 0, sizeof dets);
    put(0, 1, 0.95f, 0, 0, 20, 20, 400);  /* now a lung */
    put(1, 2, 0.35f, 40, 0, 20, 20, 1);
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.35, 1e-6);
    CU_ASSERT_TRUE(cx_decision_present(m, 0.35));
    cx_model_free(m);

    /* Only lungs: no finding class, never present. */
    const cx_test_meta_edit lungs[] = {
        {"decision.class", 'd', 0, 0, NULL}, {"decision.score", 'd', 0, 0, NULL},
        {"decision.min_area", 'd', 0, 0, NULL}, {"class.1.name", 's', 0, 0, "lung_x"},
    };
    CU_ASSERT_FATAL(cx_test_rewrite_model(data_path("decision_model.cxm"), tmp_path, lungs, 4) == 0);
    m = load(tmp_path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(cx_model_decision(m)->label, 0);
    put(1, 1, 0.99f, 40, 0, 20, 20, 400);
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.0, 0);
    CU_ASSERT_FALSE(cx_decision_present(m, 1.0));
    cx_model_free(m);
}

static void expect_load_error(const cx_test_meta_edit *ed, size_t n, const char *needle)
{
    CU_ASSERT_FATAL(cx_test_rewrite_model(data_path("decision_model.cxm"), tmp_path, ed, n) == 0);
    cx_error e = {0};
    cx_model *m = NULL;
    CU_ASSERT_EQUAL(cx_model_load(tmp_path, &m, &e), CX_ERR_MODEL);
    CU_ASSERT_PTR_NULL(m);
    if (!strstr(e.msg, needle))
        fprintf(stderr, "\n    got '%s', wanted '%s'\n", e.msg, needle);
    CU_ASSERT(strstr(e.msg, needle) != NULL);
    cx_model_free(m);
}

static void test_bad_keys(void)
{
    const cx_test_meta_edit no_score[] = {{"decision.score", 'd', 0, 0, NULL}};
    expect_load_error(no_score, 1, "metadata 'decision.score' missing");
    const cx_test_meta_edit label[] = {{"decision.class", 'i', 4, 0, NULL}};
    expect_load_error(label, 1, "'decision.class' = 4 outside 1..3");
    const cx_test_meta_edit area[] = {{"decision.min_area", 'f', 0, 1.5, NULL}};
    expect_load_error(area, 1, "'decision.min_area' = 1.5 outside 0..1");
    const cx_test_meta_edit score[] = {{"decision.score", 's', 0, 0, "high"}};
    expect_load_error(score, 1, "decision.score");
}

/* A model with an image head: the head's probability is the image score when a detection of the
 * decision class covers min_area (whatever its score); "present" keeps that detection even below
 * the class threshold; the rule is not raised to the class threshold. */
static void test_image_head(void)
{
    cx_model *m = load(data_path("decision_head_model.cxm"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_TRUE(cx_model_has_image_head(m));
    memset(&dets, 0, sizeof dets);
    put(0, 2, 0.95f, 0, 0, 10, 10, 60);   /* right lung */
    put(1, 1, 0.30f, 10, 10, 10, 10, 50); /* opacity, 50 px >= 40, below the 0.4 threshold */
    put(2, 1, 0.20f, 30, 30, 10, 10, 45); /* opacity, lower score */
    put(3, 1, 0.90f, 50, 50, 10, 10, 30); /* opacity, too small for min_area */
    dets.has_image_prob = 1;
    dets.image_prob = 0.70f;
    int keep[8];
    double s = cx_decision_keep(m, &dets, W, H, NULL, keep);
    CU_ASSERT_DOUBLE_EQUAL(s, 0.70, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.70, 1e-6);
    CU_ASSERT_TRUE(keep[0]);
    CU_ASSERT_TRUE(keep[1]);   /* the best qualifying opacity: kept though below 0.4 */
    CU_ASSERT_FALSE(keep[2]);  /* below the threshold and not the one the answer rests on */
    CU_ASSERT_TRUE(keep[3]);   /* at or above 0.4: reported */
    dets.image_prob = 0.60f;   /* below the rule's 0.62: absent */
    s = cx_decision_keep(m, &dets, W, H, NULL, keep);
    CU_ASSERT_FALSE(cx_decision_present(m, s));
    CU_ASSERT_TRUE(keep[0]);
    CU_ASSERT_FALSE(keep[1] || keep[2] || keep[3]);
    float thr[4] = {0, 0.9f, 0.5f, 0.5f};
    cx_decision r = cx_decision_effective(m, thr);
    CU_ASSERT_DOUBLE_EQUAL(r.score, 0.62, 1e-12);  /* a probability rule: not raised to 0.9 */
    dets.count = 1;            /* only a lung: nothing for the answer to rest on */
    dets.image_prob = 0.99f;
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_image_score(m, &dets, W, H), 0.0, 0);
    cx_model_free(m);
}

/* A class marked single (class.N.single = 1, the lungs) reports exactly its best-scoring
 * detection, below its threshold or a caller's, and no other; single = 2 is a load error. */
static void test_single_class(void)
{
    const cx_test_meta_edit ed[] = {{"class.2.single", 'i', 1, 0, NULL}};
    CU_ASSERT_FATAL(cx_test_rewrite_model(data_path("decision_head_model.cxm"), tmp_path, ed, 1) == 0);
    cx_model *m = load(tmp_path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_TRUE(cx_model_class(m, 2)->single);
    CU_ASSERT_FALSE(cx_model_class(m, 3)->single);
    memset(&dets, 0, sizeof dets);
    put(0, 2, 0.20f, 0, 0, 10, 10, 60);   /* right lung, second best */
    put(1, 2, 0.30f, 5, 0, 10, 10, 60);   /* right lung, best, below the class's 0.5 */
    put(2, 3, 0.30f, 40, 0, 10, 10, 60);  /* left lung, not single: its threshold applies */
    put(3, 3, 0.95f, 50, 0, 10, 10, 60);
    dets.has_image_prob = 1;
    dets.image_prob = 0.1f;
    int keep[8];
    cx_decision_keep(m, &dets, W, H, NULL, keep);
    CU_ASSERT_FALSE(keep[0]);
    CU_ASSERT_TRUE(keep[1]);
    CU_ASSERT_FALSE(keep[2]);
    CU_ASSERT_TRUE(keep[3]);
    float thr[4] = {0, 0.9f, 0.9f, 0.9f};
    cx_decision_keep(m, &dets, W, H, thr, keep);
    CU_ASSERT_TRUE(keep[1] && !keep[0]);   /* a stricter caller threshold does not remove it */
    CU_ASSERT_TRUE(keep[3] && !keep[2]);
    dets.count = 1;
    cx_decision_keep(m, &dets, W, H, NULL, keep);
    CU_ASSERT_TRUE(keep[0]);               /* the only one is the best */
    cx_model_free(m);
    const cx_test_meta_edit two[] = {{"class.2.single", 'i', 2, 0, NULL}};
    expect_load_error(two, 1, "class.2.single = 2, must be 0 or 1");
}

static int suite_cleanup(void)
{
    remove(tmp_path);
    return 0;
}

static const cx_test_case cases[] = {
    {"decision keys written by export.py", test_keys_from_export},
    {"image score: min_area boundary, other labels, empty masks", test_min_area_and_labels},
    {"no decision keys: first non-lung class, its threshold, any area", test_default_rule},
    {"bad decision keys are load errors", test_bad_keys},
    {"image head: probability as the image score, its detection kept", test_image_head},
    {"single class: its best detection whatever its score, no other", test_single_class},
    {NULL, NULL},
};

int main(void)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/cx_test_decision_%d.cxm", (int)getpid());
    return cx_test_run_suite("decision rule", NULL, suite_cleanup, cases);
}

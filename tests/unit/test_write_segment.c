/* Tests of the step between engine and writers (src/pipeline/segment.c, cx_segment_findings):
 * reporting thresholds, one lung per side, lungs first, the share of each lung a finding covers,
 * finding-site laterality (Right / Left / Bilateral / none), the per-lung union shares, and the
 * image-level present/absent answer of the model's decision rule, on hand-made detections with
 * known geometry. Models: tests/data/eval/tiny_model.cxm (ggo, right_lung, left_lung; thresholds
 * 0.5; no decision keys) and tests/data/decision_model.cxm (opacity at 0.4, lungs at 0.5; rule:
 * opacity >= 0.62 covering >= 0.5% of the image). */
#include "cx_test.h"
#include "segment.h"

#include <stdio.h>
#include <string.h>

#define W 100
#define H 80

static cx_model *load(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/%s", cx_test_srcdir(), name);
    cx_error e = {0};
    cx_model *m = NULL;
    if (cx_model_load(path, &m, &e) != CX_OK)
        fprintf(stderr, "\n    %s\n", e.msg);
    return m;
}

static cx_model *ggo_model(void)
{
    static cx_model *m;
    if (!m)
        m = load("eval/tiny_model.cxm");
    return m;
}

static uint8_t masks[8][W * H];

/* A detection whose mask is the full rectangle [x0, x0+w) x [y0, y0+h). */
static cx_detection rect(int k, int label, float score, int x0, int y0, int w, int h)
{
    cx_detection d;
    memset(&d, 0, sizeof d);
    d.label = label;
    d.score = score;
    d.mask_x0 = x0; d.mask_y0 = y0; d.mask_w = w; d.mask_h = h;
    d.box[0] = (float)x0; d.box[1] = (float)y0; d.box[2] = (float)(x0 + w); d.box[3] = (float)(y0 + h);
    memset(masks[k], 1, (size_t)w * h);
    d.mask = masks[k];
    return d;
}

/* Sorted by score as the engine returns them. */
static cx_detection items[8];
static cx_detections dets;

static void setup(void)
{
    int n = 0;
    items[n] = rect(n, 2, 0.99f, 5, 10, 40, 60); n++;  /* right lung: 2400 px */
    items[n] = rect(n, 3, 0.97f, 55, 10, 40, 60); n++; /* left lung: 2400 px */
    items[n] = rect(n, 1, 0.90f, 10, 20, 10, 10); n++; /* A: inside the right lung, 100 px */
    items[n] = rect(n, 2, 0.80f, 0, 0, 30, 30); n++;   /* a second right lung: dropped */
    items[n] = rect(n, 1, 0.70f, 40, 40, 20, 10); n++; /* B: 50 px in each lung */
    items[n] = rect(n, 1, 0.60f, 46, 72, 8, 5); n++;   /* D: between/below the lungs, no lung */
    items[n] = rect(n, 1, 0.30f, 60, 20, 10, 10); n++; /* C: below the 0.5 threshold */
    dets.count = n;
    dets.items = items;
    dets.capacity = n;
}

static void test_default_thresholds(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(ggo_model());
    setup();
    cx_segment_params p;
    cx_segment_default_params(&p);
    cxd_finding fs[8];
    int keep[8];
    size_t n = 0;
    cx_segment_result r;
    memset(&r, 0, sizeof r);
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(ggo_model(), &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL_FATAL(n, 5u);
    CU_ASSERT_EQUAL(r.n_lungs, 2);
    CU_ASSERT_EQUAL(r.n_findings, 3);
    CU_ASSERT_DOUBLE_EQUAL(r.max_finding_score, 0.90, 1e-6);
    /* No decision keys: present = a ggo detection at its 0.5 threshold (the old behaviour). */
    CU_ASSERT_EQUAL(r.finding_present, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.image_score, 0.90, 1e-6);
    CU_ASSERT_EQUAL(r.rule.label, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.rule.score, 0.5, 1e-6);
    char v[300];
    cx_segment_verdict_text(ggo_model(), &r.rule, r.image_score, r.finding_present, 1, v, sizeof v);
    CU_ASSERT_STRING_EQUAL(v, "Ground glass opacity: present (image score 0.90; rule: a detection >= 0.5)");
    CU_ASSERT_EQUAL(keep[3], 0); /* second right lung */
    CU_ASSERT_EQUAL(keep[6], 0); /* below threshold */
    /* Lungs first, right then left, anatomy role, site laterality = the modifier. */
    CU_ASSERT_EQUAL(fs[0].role, CXD_ROLE_ANATOMY);
    CU_ASSERT_STRING_EQUAL(fs[0].label, "Right lung");
    CU_ASSERT_STRING_EQUAL(fs[0].type_modifier.value, "24028007");
    CU_ASSERT_STRING_EQUAL(fs[0].site_laterality.value, "24028007");
    CU_ASSERT_STRING_EQUAL(fs[1].label, "Left lung");
    CU_ASSERT_STRING_EQUAL(fs[1].site_laterality.value, "7771000");
    /* A: 100 / 2400 of the right lung. */
    CU_ASSERT_EQUAL(fs[2].role, CXD_ROLE_FINDING);
    CU_ASSERT_STRING_EQUAL(fs[2].type.value, "112120");
    CU_ASSERT_STRING_EQUAL(fs[2].tracking_id, "ggo 1");
    CU_ASSERT_EQUAL_FATAL(fs[2].n_shares, 1);
    CU_ASSERT_STRING_EQUAL(fs[2].shares[0].laterality.value, "24028007");
    CU_ASSERT_DOUBLE_EQUAL(fs[2].shares[0].percent, 100.0 * 100 / 2400, 1e-9);
    CU_ASSERT_STRING_EQUAL(fs[2].site_laterality.value, "24028007");
    /* B: 50 px in each lung -> Bilateral. */
    CU_ASSERT_EQUAL_FATAL(fs[3].n_shares, 2);
    CU_ASSERT_DOUBLE_EQUAL(fs[3].shares[0].percent, 100.0 * 50 / 2400, 1e-9);
    CU_ASSERT_STRING_EQUAL(fs[3].shares[1].laterality.value, "7771000");
    CU_ASSERT_DOUBLE_EQUAL(fs[3].shares[1].percent, 100.0 * 50 / 2400, 1e-9);
    CU_ASSERT_STRING_EQUAL(fs[3].site_laterality.value, "51440002");
    /* D touches no lung: no share, no laterality, the site is still Lung. */
    CU_ASSERT_EQUAL(fs[4].n_shares, 0);
    CU_ASSERT_STRING_EQUAL(fs[4].site_laterality.value, "");
    CU_ASSERT_STRING_EQUAL(fs[4].finding_site.value, "39607008");
    /* Masks are borrowed from the detections, box-local. */
    CU_ASSERT_PTR_EQUAL(fs[2].mask, masks[2]);
    CU_ASSERT_EQUAL(fs[2].x0, 10);
    CU_ASSERT_EQUAL(fs[2].w, 10);
    /* Union per lung: right 150/2400, left 50/2400; all finding pixels 100 + 200 + 40. */
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[0], 100.0 * 150 / 2400, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[1], 100.0 * 50 / 2400, 1e-9);
    CU_ASSERT_EQUAL(r.finding_pixels, 100 + 200 + 40);
}

static void test_overrides_and_no_findings(void)
{
    setup();
    cx_segment_params p;
    cx_segment_default_params(&p);
    cxd_finding fs[8];
    int keep[8];
    size_t n = 0;
    cx_segment_result r;
    cx_error e = {0};
    /* One threshold for all: C (0.30) is kept, and overlaps the left lung fully (100 px). */
    p.score = 0.25;
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(ggo_model(), &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.n_findings, 4);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[1], 100.0 * 150 / 2400, 1e-9);
    /* Per-class threshold by name: ggo >= 0.95 leaves the lungs only. */
    const char *names[1] = {"ggo"};
    double scores[1] = {0.95};
    p.score = -1;
    p.n_thresholds = 1;
    p.threshold_names = names;
    p.threshold_scores = scores;
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(ggo_model(), &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(n, 2u);
    CU_ASSERT_EQUAL(r.n_findings, 0);
    /* ... and, being above the rule's 0.5, makes the rule stricter: absent, as no finding is shown. */
    CU_ASSERT_EQUAL(r.finding_present, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.rule.score, 0.95, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[0], 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[1], 0.0, 1e-12);
    CU_ASSERT_EQUAL(r.finding_pixels, 0);
    /* No left lung: its share is -1 (not found), not 0. */
    dets.count = 1;
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(ggo_model(), &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.n_lungs, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[1], -1.0, 1e-12);
}

static void test_bad_detections(void)
{
    setup();
    cx_segment_params p;
    cx_segment_default_params(&p);
    cxd_finding fs[8];
    int keep[8];
    size_t n = 0;
    cx_segment_result r;
    cx_error e = {0};
    items[2].mask_x0 = 95; /* 10 wide at x = 95 in a 100-wide image */
    CU_ASSERT_EQUAL(cx_segment_findings(ggo_model(), &dets, &p, W, H, fs, &n, keep, &r, &e), CX_ERR_INTERNAL);
    CU_ASSERT(strstr(e.msg, "outside the 100x80 image") != NULL);
    setup();
    items[2].label = 9; /* unknown label: ignored, not a crash */
    CU_ASSERT_EQUAL(cx_segment_findings(ggo_model(), &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.n_findings, 2);
    CU_ASSERT_EQUAL(cx_segment_findings(ggo_model(), &dets, &p, 0, H, fs, &n, keep, &r, &e), CX_ERR_INVALID);
}

/* The rule of tests/data/decision_model.cxm: opacity (label 1, reported at >= 0.4) is present when
 * a detection >= 0.62 covers >= 40 of the 8000 pixels; opacity findings are reported only then. */
static void test_decision_rule(void)
{
    cx_model *m = load("decision_model.cxm");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    cx_segment_params p;
    cx_segment_default_params(&p);
    cxd_finding fs[8];
    int keep[8];
    size_t n = 0;
    cx_segment_result r;
    memset(&r, 0, sizeof r);
    cx_error e = {0};
    char v[300];

    /* A (0.90, 100 px) qualifies: present; A, B, D reported at 0.4, C (0.30) is not. */
    setup();
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(m, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.finding_present, 1);
    CU_ASSERT_DOUBLE_EQUAL(r.image_score, 0.90, 1e-6);
    CU_ASSERT_EQUAL(r.n_findings, 3);
    CU_ASSERT_EQUAL(n, 5u);
    CU_ASSERT_STRING_EQUAL(fs[2].type.value, "409609008");
    CU_ASSERT_STRING_EQUAL(fs[2].label, "Lung opacity (ground-glass opacity or consolidation)");
    CU_ASSERT_STRING_EQUAL(fs[2].tracking_id, "opacity 1");
    cx_segment_verdict_text(m, &r.rule, r.image_score, r.finding_present, 1, v, sizeof v);
    CU_ASSERT_STRING_EQUAL(v, "Lung opacity (ground-glass opacity or consolidation): present (image score 0.90; "
                              "rule: a detection >= 0.62 covering >= 0.5% of the image)");
    cx_segment_verdict_text(m, &r.rule, r.image_score, r.finding_present, 0, v, sizeof v);
    CU_ASSERT_STRING_EQUAL(v, "Lung opacity (ground-glass opacity or consolidation): present (image score 0.90)");

    /* Every opacity below the rule's 0.62 but above the class's 0.4: absent, and no opacity
     * finding (segment, SR group) at all; the lungs stay. */
    setup();
    items[2].score = 0.61f;
    items[4].score = 0.55f;
    items[5].score = 0.50f;
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(m, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.finding_present, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.image_score, 0.61, 1e-6);
    CU_ASSERT_EQUAL(r.n_findings, 0);
    CU_ASSERT_EQUAL(n, 2u);
    CU_ASSERT_EQUAL(fs[0].role, CXD_ROLE_ANATOMY);
    CU_ASSERT_EQUAL(fs[1].role, CXD_ROLE_ANATOMY);
    CU_ASSERT_EQUAL(keep[2] + keep[4] + keep[5] + keep[6], 0);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[0], 0.0, 0);
    CU_ASSERT_EQUAL(r.finding_pixels, 0);
    /* The same with the ggo model (no decision keys, 0.5): present, all three reported. */
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(ggo_model(), &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.finding_present, 1);
    CU_ASSERT_EQUAL(r.n_findings, 3);

    /* min_area: A shrunk to 39 px no longer qualifies, but B (0.70, 200 px) does; once present,
     * small A is reported too. Then B shrunk as well: D (0.60, exactly 40 px) is the image score,
     * below 0.62: absent. */
    setup();
    items[2] = rect(2, 1, 0.90f, 10, 20, 13, 3);
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(m, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_DOUBLE_EQUAL(r.image_score, 0.70, 1e-6);
    CU_ASSERT_EQUAL(r.finding_present, 1);
    CU_ASSERT_EQUAL(keep[2], 1);
    CU_ASSERT_EQUAL(r.n_findings, 3);
    items[4] = rect(4, 1, 0.70f, 40, 40, 13, 3);
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(m, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_DOUBLE_EQUAL(r.image_score, 0.60, 1e-6);
    CU_ASSERT_EQUAL(r.finding_present, 0);
    CU_ASSERT_EQUAL(r.n_findings, 0);

    /* --score 0 (every class) keeps every lung and finding the rule allows, the rule stays 0.62. */
    setup();
    p.score = 0;
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(m, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_DOUBLE_EQUAL(r.rule.score, 0.62, 1e-9);
    CU_ASSERT_EQUAL(r.n_findings, 4);
    cx_model_free(m);
}

/* The legend of overlay.png and the secondary capture: the warning, the model, the answer, then
 * each class once in its colour with its per-lung share of the union of its findings and its area;
 * and the picture itself at the image's size. */
static void test_legend_and_picture(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(ggo_model());
    setup();
    cx_segment_params p;
    cx_segment_default_params(&p);
    cxd_finding fs[8];
    int keep[8];
    size_t n = 0;
    cx_segment_result r;
    memset(&r, 0, sizeof r);
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(ggo_model(), &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    cx_legend_line lines[CX_SEGMENT_LEGEND_LINES(8)];
    size_t nl = 0;
    const double sp[2] = {0.5, 0.2}; /* 0.1 mm2 per pixel */
    CU_ASSERT_EQUAL_FATAL(cx_segment_legend(ggo_model(), W, H, fs, n, &r, sp, lines, &nl, &e), CX_OK);
    CU_ASSERT_EQUAL_FATAL(nl, 6u);
    CU_ASSERT_STRING_EQUAL(lines[0].text, "Research use only - not for diagnosis");
    CU_ASSERT(strncmp(lines[1].text, "Model: ", 7) == 0);
    CU_ASSERT_STRING_EQUAL(lines[2].text, "Ground glass opacity: present (image score 0.90)");
    CU_ASSERT_STRING_EQUAL(lines[3].text, "Right lung: 240 mm2");
    CU_ASSERT_STRING_EQUAL(lines[4].text, "Left lung: 240 mm2");
    /* A + B + D: right 150/2400, left 50/2400, 340 px. */
    CU_ASSERT_STRING_EQUAL(lines[5].text, "Ground glass opacity (3): right lung 6.2%, left lung 2.1%, 34 mm2");
    CU_ASSERT(lines[5].swatch && lines[5].has_color);
    CU_ASSERT_EQUAL(memcmp(lines[5].rgb, fs[2].rgb, 3), 0);
    /* Without spacing: no areas, and the legend says why. */
    CU_ASSERT_EQUAL_FATAL(cx_segment_legend(ggo_model(), W, H, fs, n, &r, NULL, lines, &nl, &e), CX_OK);
    CU_ASSERT_EQUAL_FATAL(nl, 7u);
    CU_ASSERT_STRING_EQUAL(lines[3].text, "Right lung");
    CU_ASSERT_STRING_EQUAL(lines[5].text, "Ground glass opacity (3): right lung 6.2%, left lung 2.1%");
    CU_ASSERT_STRING_EQUAL(lines[6].text, "No areas: the image has no usable pixel spacing");
    cx_image *img = NULL;
    CU_ASSERT_EQUAL_FATAL(cx_image_new(W, H, &img, &e), CX_OK);
    uint8_t *rgb = NULL;
    CU_ASSERT_EQUAL(cx_segment_picture(ggo_model(), img, fs, n, &r, sp, &rgb, &e), CX_OK);
    CU_ASSERT_PTR_NOT_NULL(rgb);
    cx_free(rgb);
    cx_image_free(img);
}

static int suite_cleanup(void)
{
    cx_model_free(ggo_model());
    return 0;
}

static const cx_test_case cases[] = {
    {"thresholds, lungs, shares, laterality", test_default_thresholds},
    {"threshold overrides, no findings, missing lung", test_overrides_and_no_findings},
    {"inconsistent detections are errors", test_bad_detections},
    {"image-level answer from the model's decision rule", test_decision_rule},
    {"legend and picture of overlay.png and the secondary capture", test_legend_and_picture},
    {NULL, NULL},
};

CX_TEST_MAIN_SUITE("segment findings", NULL, suite_cleanup, cases)

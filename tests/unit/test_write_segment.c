/* Tests of the step between engine and writers (src/pipeline/segment.c, cx_segment_findings):
 * reporting thresholds, one lung per side, lungs first, the share of each lung a finding covers,
 * finding-site laterality (Right / Left / Bilateral / none) and the per-lung union shares, on
 * hand-made class tables and detections with known geometry. */
#include "cx_test.h"
#include "segment.h"

#include <string.h>

#define W 100
#define H 80

static const cx_class_info GGO = {"ggo", "Ground glass opacity", {"112120", "DCM", "Ground glass opacity"},
                                  {"49755003", "SCT", "Morphologically Abnormal Structure"}, 0, {0, 0, 0},
                                  {255, 160, 0}, 0.5f, 0.5f};
static const cx_class_info RLUNG = {"right_lung", "Right lung", {"39607008", "SCT", "Lung"},
                                    {"123037004", "SCT", "Anatomical Structure"}, 1, {"24028007", "SCT", "Right"},
                                    {0, 160, 255}, 0.5f, 0.5f};
static const cx_class_info LLUNG = {"left_lung", "Left lung", {"39607008", "SCT", "Lung"},
                                    {"123037004", "SCT", "Anatomical Structure"}, 1, {"7771000", "SCT", "Left"},
                                    {0, 220, 120}, 0.5f, 0.5f};
static const cx_class_info *const CLASSES[3] = {&GGO, &RLUNG, &LLUNG};

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
    setup();
    cx_segment_params p;
    cx_segment_default_params(&p);
    cxd_finding fs[8];
    int keep[8];
    size_t n = 0;
    cx_segment_result r;
    memset(&r, 0, sizeof r);
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(CLASSES, 3, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL_FATAL(n, 5u);
    CU_ASSERT_EQUAL(r.n_lungs, 2);
    CU_ASSERT_EQUAL(r.n_findings, 3);
    CU_ASSERT_DOUBLE_EQUAL(r.max_finding_score, 0.90, 1e-6);
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
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(CLASSES, 3, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.n_findings, 4);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[1], 100.0 * 150 / 2400, 1e-9);
    /* Per-class threshold by name: ggo >= 0.95 leaves the lungs only. */
    const char *names[1] = {"ggo"};
    double scores[1] = {0.95};
    p.score = -1;
    p.n_thresholds = 1;
    p.threshold_names = names;
    p.threshold_scores = scores;
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(CLASSES, 3, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(n, 2u);
    CU_ASSERT_EQUAL(r.n_findings, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[0], 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r.lung_share_pct[1], 0.0, 1e-12);
    CU_ASSERT_EQUAL(r.finding_pixels, 0);
    /* No left lung: its share is -1 (not found), not 0. */
    dets.count = 1;
    CU_ASSERT_EQUAL_FATAL(cx_segment_findings(CLASSES, 3, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
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
    CU_ASSERT_EQUAL(cx_segment_findings(CLASSES, 3, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_ERR_INTERNAL);
    CU_ASSERT(strstr(e.msg, "outside the 100x80 image") != NULL);
    setup();
    items[2].label = 9; /* unknown label: ignored, not a crash */
    CU_ASSERT_EQUAL(cx_segment_findings(CLASSES, 3, &dets, &p, W, H, fs, &n, keep, &r, &e), CX_OK);
    CU_ASSERT_EQUAL(r.n_findings, 2);
    CU_ASSERT_EQUAL(cx_segment_findings(CLASSES, 3, &dets, &p, 0, H, fs, &n, keep, &r, &e), CX_ERR_INVALID);
}

static const cx_test_case cases[] = {
    {"thresholds, lungs, shares, laterality", test_default_thresholds},
    {"threshold overrides, no findings, missing lung", test_overrides_and_no_findings},
    {"inconsistent detections are errors", test_bad_detections},
    {NULL, NULL},
};

CX_TEST_MAIN("segment findings", cases)

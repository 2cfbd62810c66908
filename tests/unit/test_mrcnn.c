/* Parity of the C Mask R-CNN engine with torchvision 0.14: runs tests/data/parity_model.cxm on the
 * inputs stored in tests/data/parity_refs.cxm (written by models/tools/make_parity_refs.py) and
 * compares FPN levels, RPN proposals, detections and pasted masks with torchvision's outputs.
 * No Python at test time. CX_PARITY_MODEL / CX_PARITY_REFS select other fixtures (full-size runs).
 *
 * CX_PARITY_FULL=1 (tests/parity_full.sh: ResNet-50-FPN, random weights, 512 and 800 px, 100
 * detections) applies the criteria a full-size float32 comparison can meet. torchvision's own
 * float32 run differs from its float64 run by up to 1.6e-3 px on 5 of 1000 proposals there, and
 * random weights give scores 1e-6 apart and mask probabilities near the 0.5 threshold:
 *   - proposals: the same number; each within 1e-2 px of one of torchvision's; at most 10% beyond
 *     1e-3 px;
 *   - detections: the same number; each within 1e-2 px of a torchvision detection of its label,
 *     at its position, or at another position whose torchvision score is within 1e-4 of its
 *     own (near-ties may swap); scores within 1e-4 of the matched one;
 *   - masks: IoU >= 0.99 for at least 95% of the detections.
 * FPN levels keep the 1e-4 bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cx_mfile.h"
#include "cx_mrcnn.h"
#include "cx_test.h"

static char model_path[4096], refs_path[4096];

static void paths(void)
{
    const char *m = getenv("CX_PARITY_MODEL"), *r = getenv("CX_PARITY_REFS");
    snprintf(model_path, sizeof model_path, "%s", m ? m : "");
    snprintf(refs_path, sizeof refs_path, "%s", r ? r : "");
    if (!m)
        snprintf(model_path, sizeof model_path, "%s/tests/data/parity_model.cxm", cx_test_srcdir());
    if (!r)
        snprintf(refs_path, sizeof refs_path, "%s/tests/data/parity_refs.cxm", cx_test_srcdir());
}

static const cx_tensor_ref *ref(cx_mfile *f, int c, const char *what)
{
    char n[64];
    snprintf(n, sizeof n, "case%d.%s", c, what);
    const cx_tensor_ref *t = cx_mfile_tensor(f, n);
    if (!t)
        fprintf(stderr, "refs: tensor %s missing\n", n);
    return t;
}

static const char *image_prob_name(int c)
{
    static char n[64];
    snprintf(n, sizeof n, "case%d.image_prob", c);
    return n;
}

static int mask_bit(const uint8_t *packed, size_t i)
{
    return (packed[i >> 3] >> (7 - (i & 7))) & 1;
}

static void run_parity(int n_threads)
{
    paths();
    const char *fe = getenv("CX_PARITY_FULL");
    int full = fe && *fe && strcmp(fe, "0");
    cx_error err = {0};
    cx_model *m = NULL;
    cx_mfile *rf = NULL;
    cx_mrcnn *s = NULL;
    CU_ASSERT_FATAL(cx_model_load(model_path, &m, &err) == CX_OK);
    CU_ASSERT_FATAL(cx_mfile_open(refs_path, &rf, &err) == CX_OK);
    CU_ASSERT_FATAL(cx_mrcnn_new(m, n_threads, &s, &err) == CX_OK);
    int64_t ncases = 0;
    CU_ASSERT_FATAL(cx_mfile_get_i64(rf, "cases", &ncases, &err) == CX_OK);
    for (int c = 0; c < ncases; c++) {
        const cx_tensor_ref *img = ref(rf, c, "image"), *osz = ref(rf, c, "out_size"), *rsz = ref(rf, c, "resized");
        CU_ASSERT_FATAL(img && osz && rsz);
        int h = (int)img->dims[0], w = (int)img->dims[1];
        const int32_t *os = osz->data, *rs = rsz->data;
        cx_detections dets = {0};
        double t0 = cx_now_ms();
        cx_status st = cx_mrcnn_detect(s, img->data, h, w, os[0], os[1], &dets, &err);
        double ms = cx_now_ms() - t0;
        if (st)
            fprintf(stderr, "detect: %s\n", err.msg);
        CU_ASSERT_FATAL(st == CX_OK);
        int rh, rw;
        cx_mrcnn_debug_resized(s, &rh, &rw);
        CU_ASSERT(rh == rs[0] && rw == rs[1]);
        /* FPN levels: max |diff| / max |ref| */
        double worst_fpn = 0;
        for (int l = 0; l < 5; l++) {
            char nm[16];
            snprintf(nm, sizeof nm, "fpn%d", l);
            const cx_tensor_ref *f = ref(rf, c, nm);
            int fc, fh, fw;
            const float *got = cx_mrcnn_debug_fpn(s, l, &fc, &fh, &fw);
            CU_ASSERT_FATAL(f && got);
            CU_ASSERT_FATAL(f->dims[0] == fc && f->dims[1] == fh && f->dims[2] == fw);
            const float *want = f->data;
            double md = 0, mr = 0;
            for (size_t i = 0; i < (size_t)fc * fh * fw; i++) {
                md = fmax(md, fabs((double)got[i] - want[i]));
                mr = fmax(mr, fabs((double)want[i]));
            }
            double rel = md / (mr > 0 ? mr : 1);
            worst_fpn = fmax(worst_fpn, rel);
            if (rel > 1e-4)
                fprintf(stderr, "case %d fpn%d: max rel err %.3g\n", c, l, rel);
            CU_ASSERT(rel <= 1e-4);
        }
        /* proposals: same set, boxes within 1e-3 px (order may differ only among equal scores) */
        const cx_tensor_ref *pr = ref(rf, c, "proposals");
        int np;
        const float *gp = cx_mrcnn_debug_proposals(s, &np);
        CU_ASSERT_FATAL(pr != NULL);
        if (np != pr->dims[0])
            fprintf(stderr, "case %d: %d proposals, torchvision %lld\n", c, np, (long long)pr->dims[0]);
        CU_ASSERT(np == pr->dims[0]);
        const float *wp = pr->data;
        double worst_prop = 0, worst_unmatched = 0;
        int unmatched = 0;
        for (int i = 0; i < (int)pr->dims[0] && i < np; i++) {
            double d = 0;
            for (int k = 0; k < 4; k++)
                d = fmax(d, fabs((double)gp[4 * i + k] - wp[4 * i + k]));
            if (d > 1e-3) {   /* look for it elsewhere */
                double best = 1e30;
                for (int j = 0; j < np; j++) {
                    double e = 0;
                    for (int k = 0; k < 4; k++)
                        e = fmax(e, fabs((double)gp[4 * j + k] - wp[4 * i + k]));
                    best = fmin(best, e);
                }
                d = best;
            }
            if (d > 1e-3) {
                unmatched++;
                worst_unmatched = fmax(worst_unmatched, d);
            } else
                worst_prop = fmax(worst_prop, d);
        }
        if (unmatched)
            fprintf(stderr, "case %d: %d of %lld proposals without a match within 1e-3 px (nearest %.3g px)\n", c,
                    unmatched, (long long)pr->dims[0], worst_unmatched);
        if (full) {
            CU_ASSERT(worst_unmatched <= 1e-2);
            CU_ASSERT(unmatched <= np / 10);
        } else {
            CU_ASSERT(unmatched == 0);
        }
        /* detections: same count and order; boxes 1e-2 px, scores 1e-4; masks IoU >= 0.99 */
        const cx_tensor_ref *bx = ref(rf, c, "boxes"), *sc = ref(rf, c, "scores"), *lb = ref(rf, c, "labels"),
                            *mk = ref(rf, c, "masks");
        CU_ASSERT_FATAL(bx && sc && lb && mk);
        int nd = (int)bx->dims[0];
        if (dets.count != nd)
            fprintf(stderr, "case %d: %d detections, torchvision %d\n", c, dets.count, nd);
        CU_ASSERT(dets.count == nd);
        double worst_box = 0, worst_score = 0, worst_iou = 1;
        int low_iou = 0, swapped = 0;
        for (int i = 0; i < nd && i < dets.count; i++) {
            const cx_detection *d = &dets.items[i];
            const float *wbs = bx->data, *wsc = sc->data;
            const int32_t *wl = lb->data;
            int j = i;   /* torchvision's detection this one is compared with */
            if (full) {
                /* the nearest of the same label whose score is within 1e-4 of torchvision's #i */
                double best = 1e30;
                for (int q = 0; q < nd; q++) {
                    if (wl[q] != d->label || fabs((double)wsc[q] - wsc[i]) > 1e-4)
                        continue;
                    double e = 0;
                    for (int k = 0; k < 4; k++)
                        e = fmax(e, fabs((double)d->box[k] - wbs[4 * q + k]));
                    if (e < best || (e == best && q == i))
                        best = e, j = q;
                }
                swapped += j != i;
            }
            const float *wb = wbs + 4 * j;
            CU_ASSERT(d->label == wl[j]);
            for (int k = 0; k < 4; k++)
                worst_box = fmax(worst_box, fabs((double)d->box[k] - wb[k]));
            worst_score = fmax(worst_score, fabs((double)d->score - wsc[j]));
            const uint8_t *pk = (const uint8_t *)mk->data + (size_t)j * mk->dims[1];
            long inter = 0, uni = 0;
            for (int y = 0; y < os[0]; y++)
                for (int x = 0; x < os[1]; x++) {
                    int a = mask_bit(pk, (size_t)y * os[1] + x);
                    int b = 0;
                    if (x >= d->mask_x0 && x < d->mask_x0 + d->mask_w && y >= d->mask_y0 && y < d->mask_y0 + d->mask_h)
                        b = d->mask[(size_t)(y - d->mask_y0) * d->mask_w + (x - d->mask_x0)] != 0;
                    inter += a & b;
                    uni += a | b;
                }
            double iou = uni ? (double)inter / uni : 1.0;
            if (iou < 0.99) {
                low_iou++;
                printf("\n  detection %d (score %.6f): mask IoU %.4f, %ld pixels in common of %ld", i, d->score, iou,
                       inter, uni);
            }
            worst_iou = fmin(worst_iou, iou);
        }
        CU_ASSERT(worst_box <= 1e-2);
        CU_ASSERT(worst_score <= 1e-4);
        /* the image head (models with arch.image_head): its probability within 1e-4 */
        const cx_tensor_ref *ip = cx_mfile_tensor(rf, image_prob_name(c));
        CU_ASSERT(!ip == !cx_model_has_image_head(m));
        CU_ASSERT(dets.has_image_prob == cx_model_has_image_head(m));
        if (ip && dets.has_image_prob) {
            double want = ((const float *)ip->data)[0];
            printf("\n  case %d: image head %.6f, torchvision %.6f", c, dets.image_prob, want);
            CU_ASSERT(fabs(dets.image_prob - want) <= 1e-4);
        }
        if (full) {
            CU_ASSERT(low_iou * 20 <= nd);
            printf("\n  case %d: %d of %d proposals beyond 1e-3 px, %d detections matched at another position "
                   "(near-tied scores), %d masks with IoU < 0.99", c, unmatched, np, swapped, low_iou);
        } else {
            CU_ASSERT(worst_iou >= 0.99);
        }
        printf("\n  case %d (%dx%d -> %dx%d, %d threads, %.0f ms): fpn rel %.2g, %d proposals max %.2g px, "
               "%d dets box %.2g px score %.2g, mask IoU min %.5f", c, w, h, os[1], os[0], n_threads, ms,
               worst_fpn, np, worst_prop, dets.count, worst_box, worst_score, worst_iou);
        cx_detections_clear(&dets);
    }
    cx_mrcnn_free(s);
    cx_mfile_free(rf);
    cx_model_free(m);
}

static void test_parity_1thread(void) { run_parity(1); }
static void test_parity_2threads(void) { run_parity(2); }

static void test_model_info(void)
{
    paths();
    if (getenv("CX_PARITY_MODEL"))
        return;
    cx_error err = {0};
    cx_model *m = NULL;
    CU_ASSERT_FATAL(cx_model_load(model_path, &m, &err) == CX_OK);
    CU_ASSERT_STRING_EQUAL(cx_model_name(m), "parity-test");
    CU_ASSERT_EQUAL(cx_model_num_classes(m), 3);
    CU_ASSERT_EQUAL(cx_model_arch(m)->in_channels, 1);
    CU_ASSERT_EQUAL(cx_model_arch(m)->fpn_channels, 32);
    CU_ASSERT_EQUAL(strlen(cx_model_sha256(m)), 64);
    const cx_class_info *ci = cx_model_class(m, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ci);
    CU_ASSERT_STRING_EQUAL(ci->name, "class1");
    CU_ASSERT_STRING_EQUAL(ci->category.scheme, "SCT");
    CU_ASSERT_PTR_NULL(cx_model_class(m, 4));
    CU_ASSERT_PTR_NULL(cx_model_class(m, 0));
    CU_ASSERT(fabsf(cx_model_mask_thresh(m) - 0.5f) < 1e-6f);
    const char *k, *v;
    int found = 0;
    for (int i = 0; i < cx_model_provenance_count(m); i++)
        if (cx_model_provenance_at(m, i, &k, &v) && !strcmp(k, "purpose"))
            found = 1;
    CU_ASSERT(found);
    /* detect argument checks */
    cx_mrcnn *s = NULL;
    CU_ASSERT_FATAL(cx_mrcnn_new(m, 1, &s, &err) == CX_OK);
    cx_detections d = {0};
    float px = 0;
    CU_ASSERT(cx_mrcnn_detect(s, &px, 0, 10, 10, 10, &d, &err) == CX_ERR_INVALID);
    CU_ASSERT(cx_mrcnn_detect(s, NULL, 10, 10, 10, 10, &d, &err) == CX_ERR_INVALID);
    /* a blank image runs and gives a well-formed (possibly empty) list */
    float *blank = calloc(64 * 48, sizeof(float));
    CU_ASSERT(cx_mrcnn_detect(s, blank, 64, 48, 64, 48, &d, &err) == CX_OK);
    for (int i = 0; i < d.count; i++) {
        CU_ASSERT(d.items[i].label >= 1 && d.items[i].label <= 3);
        CU_ASSERT(d.items[i].mask_x0 + d.items[i].mask_w <= 48 && d.items[i].mask_y0 + d.items[i].mask_h <= 64);
    }
    cx_detections_clear(&d);
    CU_ASSERT_EQUAL(d.count, 0);
    /* NaN and huge pixels must not crash (NaN propagates, boxes are clipped, RoIAlign skips NaN) */
    blank[5] = NAN;
    blank[100] = 1e30f;
    CU_ASSERT(cx_mrcnn_detect(s, blank, 64, 48, 640, 480, &d, &err) == CX_OK);
    cx_detections_clear(&d);
    /* a raised cancel flag (the node's job deadline) stops the run after the backbone */
    atomic_int stop;
    atomic_init(&stop, 1);
    cx_mrcnn_set_cancel(s, &stop);
    CU_ASSERT(cx_mrcnn_detect(s, blank, 64, 48, 64, 48, &d, &err) == CX_ERR_TIMEOUT);
    CU_ASSERT(strstr(err.msg, "cancelled after the backbone") != NULL);
    CU_ASSERT_EQUAL(d.count, 0);
    atomic_store(&stop, 0);
    CU_ASSERT(cx_mrcnn_detect(s, blank, 64, 48, 64, 48, &d, &err) == CX_OK);
    cx_mrcnn_set_cancel(s, NULL);
    cx_detections_clear(&d);
    /* extreme aspect ratio: resizes to zero width */
    float *thin = calloc(4000, sizeof(float));
    CU_ASSERT(cx_mrcnn_detect(s, thin, 4000, 1, 4000, 1, &d, &err) == CX_ERR_INVALID);
    CU_ASSERT(strstr(err.msg, "resizes to 0") != NULL);
    free(thin);
    free(blank);
    cx_mrcnn_free(s);
    cx_model_free(m);
}

/* After a warm-up run at a size, a run at that size (or smaller) allocates only its results: the
 * detections array and one box-local mask per detection (the arena is not touched). Also every
 * allocation failing in turn during detect must give CX_ERR_NOMEM and an empty list, never a crash. */
static void test_no_allocation_after_warmup(void)
{
    paths();
    if (getenv("CX_PARITY_MODEL"))
        return;
    cx_error err = {0};
    cx_model *m = NULL;
    cx_mfile *rf = NULL;
    cx_mrcnn *s = NULL;
    CU_ASSERT_FATAL(cx_model_load(model_path, &m, &err) == CX_OK);
    CU_ASSERT_FATAL(cx_mfile_open(refs_path, &rf, &err) == CX_OK);
    CU_ASSERT_FATAL(cx_mrcnn_new(m, 2, &s, &err) == CX_OK);
    const cx_tensor_ref *img = ref(rf, 2, "image");
    CU_ASSERT_FATAL(img != NULL);
    int h = (int)img->dims[0], w = (int)img->dims[1];
    cx_detections d = {0};
    CU_ASSERT_FATAL(cx_mrcnn_detect(s, img->data, h, w, h, w, &d, &err) == CX_OK);
    CU_ASSERT_FATAL(cx_mrcnn_detect(s, img->data, h, w, h, w, &d, &err) == CX_OK);
    cx_alloc_reset();
    CU_ASSERT_FATAL(cx_mrcnn_detect(s, img->data, h, w, h, w, &d, &err) == CX_OK);
    unsigned long n = cx_alloc_count();
    unsigned long want = d.count ? 1 : 0;
    for (int i = 0; i < d.count; i++)
        want += d.items[i].mask != NULL;
    if (n != want)
        fprintf(stderr, "\n    %lu allocations in a warm run, expected %lu (results only)\n", n, want);
    CU_ASSERT(n == want);
    int ok_runs = 0;
    for (unsigned long k = 1; k <= want + 2; k++) {
        cx_alloc_fail_at(k, 1);
        cx_status st = cx_mrcnn_detect(s, img->data, h, w, h, w, &d, &err);
        cx_alloc_reset();
        if (st == CX_OK) {
            ok_runs++;
        } else {
            CU_ASSERT(st == CX_ERR_NOMEM);
            CU_ASSERT(d.count == 0 && d.items == NULL);
        }
    }
    CU_ASSERT(ok_runs <= 2);
    cx_detections_clear(&d);
    cx_mrcnn_free(s);
    cx_mfile_free(rf);
    cx_model_free(m);
}

/* mask_min_score: detections below it lose their mask, everything else is unchanged. */
static void test_mask_min_score(void)
{
    paths();
    if (getenv("CX_PARITY_MODEL"))
        return;
    cx_error err = {0};
    cx_model *m = NULL;
    cx_mfile *rf = NULL;
    cx_mrcnn *s = NULL;
    CU_ASSERT_FATAL(cx_model_load(model_path, &m, &err) == CX_OK);
    CU_ASSERT_FATAL(cx_mfile_open(refs_path, &rf, &err) == CX_OK);
    CU_ASSERT_FATAL(cx_mrcnn_new(m, 1, &s, &err) == CX_OK);
    const cx_tensor_ref *img = ref(rf, 0, "image");
    CU_ASSERT_FATAL(img != NULL);
    int h = (int)img->dims[0], w = (int)img->dims[1];
    cx_detections a = {0}, b = {0};
    CU_ASSERT_FATAL(cx_mrcnn_detect(s, img->data, h, w, h, w, &a, &err) == CX_OK);
    CU_ASSERT_FATAL(a.count >= 4);
    float cut = a.items[a.count / 2].score;
    cx_mrcnn_set_mask_min_score(s, cut);
    CU_ASSERT_FATAL(cx_mrcnn_detect(s, img->data, h, w, h, w, &b, &err) == CX_OK);
    CU_ASSERT_FATAL(a.count == b.count);
    int with = 0;
    for (int i = 0; i < a.count; i++) {
        CU_ASSERT(a.items[i].label == b.items[i].label && a.items[i].score == b.items[i].score);
        CU_ASSERT(memcmp(a.items[i].box, b.items[i].box, sizeof a.items[i].box) == 0);
        if (a.items[i].score >= cut) {
            with++;
            CU_ASSERT(b.items[i].mask_w == a.items[i].mask_w && b.items[i].mask_h == a.items[i].mask_h);
            if (b.items[i].mask && a.items[i].mask)
                CU_ASSERT(memcmp(a.items[i].mask, b.items[i].mask, (size_t)a.items[i].mask_w * a.items[i].mask_h) == 0);
        } else {
            CU_ASSERT(b.items[i].mask == NULL && b.items[i].mask_w == 0 && b.items[i].mask_h == 0);
        }
    }
    CU_ASSERT(with >= a.count / 2);
    cx_mrcnn_set_mask_min_score(s, 2.0f);   /* no masks at all */
    CU_ASSERT_FATAL(cx_mrcnn_detect(s, img->data, h, w, h, w, &b, &err) == CX_OK);
    CU_ASSERT(b.count == a.count && (b.count == 0 || b.items[0].mask == NULL));
    cx_detections_clear(&a);
    cx_detections_clear(&b);
    cx_mrcnn_free(s);
    cx_mfile_free(rf);
    cx_model_free(m);
}

static const cx_test_case cases[] = {
    {"mask_min_score skips masks below it, nothing else changes", test_mask_min_score},
    {"no allocation after warm-up but the results; allocation failures", test_no_allocation_after_warmup},
    {"model metadata getters and detect arguments", test_model_info},
    {"parity with torchvision, 1 thread", test_parity_1thread},
    {"parity with torchvision, 2 threads", test_parity_2threads},
    {NULL, NULL}};

CX_TEST_MAIN("mrcnn", cases)

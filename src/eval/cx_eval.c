/* cx_eval: the figures of `cxrseg eval`, computed from the engine's detections against ground-truth
 * instances: per-class Dice of the reported union mask per image, COCO mask AP (greedy matching by
 * score, 101-point interpolated precision, IoU 0.50:0.05:0.95), the image-level decision (ROC AUC of
 * the image score, sensitivity/specificity at the model's rule), and the error of the "% of lung
 * affected" figure the SR reports; for the whole dataset and per category. */
#include "config.h"
#include "cx_eval.h"
#include "cx_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_IOU 10

typedef struct ev_det {
    float score;
    int label, image;
    unsigned matched; /* bit t: true positive at IoU threshold 0.50 + 0.05 t */
} ev_det;

typedef struct ev_img {
    char *name;
    int cat;                              /* index into cx_eval.cat, -1 without category */
    double ms;
    double dice[CX_EVAL_MAX_CLASSES + 1]; /* NAN when GT and prediction are both empty, or side unknown */
    double dice_lungs;                    /* NAN when GT and predicted lungs are both empty */
    int n_gt[CX_EVAL_MAX_CLASSES + 1], n_det[CX_EVAL_MAX_CLASSES + 1];
    int gt_finding, present, side_unknown;
    double image_score;
    int has_share[2], has_share_lungs;
    double share_gt[2], share_pred[2], share_lungs_gt, share_lungs_pred;
} ev_img;

struct cx_eval {
    int k, finding, lung[2];
    float thresh[CX_EVAL_MAX_CLASSES + 1];
    ev_img *img;
    int n_img, cap_img;
    ev_det *det;
    size_t n_det, cap_det;
    int n_gt[CX_EVAL_MAX_CLASSES + 1];
    char cat[CX_EVAL_MAX_CATEGORIES][CX_EVAL_CATEGORY_LEN];
    int n_cat;
};

cx_status cx_eval_new(int k, const float *score_thresh, int finding, int lung_right, int lung_left,
                      cx_eval **out, cx_error *err)
{
    if (k < 1 || k > CX_EVAL_MAX_CLASSES)
        return cx_error_set(err, CX_ERR_INVALID, "eval", "%d classes (1..%d supported)", k,
                            CX_EVAL_MAX_CLASSES);
    if (finding < 0 || finding > k || lung_right < 0 || lung_right > k || lung_left < 0 || lung_left > k)
        return cx_error_set(err, CX_ERR_INVALID, "eval", "finding/lung labels %d/%d/%d outside 0..%d",
                            finding, lung_right, lung_left, k);
    cx_eval *e = cx_calloc(1, sizeof *e);
    if (!e)
        return cx_error_set(err, CX_ERR_NOMEM, "eval", "out of memory");
    e->k = k;
    e->finding = finding;
    e->lung[0] = lung_right;
    e->lung[1] = lung_left;
    for (int l = 1; l <= k; l++)
        e->thresh[l] = score_thresh ? score_thresh[l] : 0.5f;
    *out = e;
    return CX_OK;
}

void cx_eval_free(cx_eval *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n_img; i++)
        cx_free(e->img[i].name);
    cx_free(e->img);
    cx_free(e->det);
    cx_free(e);
}

/* Clipped box-local mask bounds of a detection inside the image. */
static void det_clip(const cx_detection *d, int w, int h, int *x0, int *y0, int *x1, int *y1)
{
    *x0 = d->mask_x0 < 0 ? 0 : d->mask_x0;
    *y0 = d->mask_y0 < 0 ? 0 : d->mask_y0;
    *x1 = d->mask_x0 + d->mask_w > w ? w : d->mask_x0 + d->mask_w;
    *y1 = d->mask_y0 + d->mask_h > h ? h : d->mask_y0 + d->mask_h;
}

/* Index of a category, added on first sight; -1 for none, -2 when the table is full. */
static int category_index(cx_eval *e, const char *c)
{
    if (!c || !*c)
        return -1;
    for (int i = 0; i < e->n_cat; i++)
        if (!strncmp(e->cat[i], c, CX_EVAL_CATEGORY_LEN - 1))
            return i;
    if (e->n_cat == CX_EVAL_MAX_CATEGORIES)
        return -2;
    snprintf(e->cat[e->n_cat], CX_EVAL_CATEGORY_LEN, "%s", c);
    return e->n_cat++;
}

static int is_lung_side(const cx_eval *e, int l) { return l && (l == e->lung[0] || l == e->lung[1]); }

/* The image's inputs checked, and room for one more image and nd more detections. */
static cx_status add_prepare(cx_eval *e, const char *name, const cx_eval_gt *gt, const cx_detections *dets,
                             cx_error *err)
{
    const char *S = "eval";
    if (gt->num_classes != e->k)
        return cx_error_set(err, CX_ERR_INVALID, S, "%s: ground truth has %d classes, model %d", name,
                            gt->num_classes, e->k);
    int nd = dets ? dets->count : 0;
    for (int i = 0; i < nd; i++) {
        const cx_detection *d = &dets->items[i];
        if (d->label < 1 || d->label > e->k)
            return cx_error_set(err, CX_ERR_INVALID, S, "%s: detection %d has label %d (1..%d)", name, i,
                                d->label, e->k);
        if (d->mask_w < 0 || d->mask_h < 0 || (d->mask_w * (size_t)d->mask_h > 0 && !d->mask))
            return cx_error_set(err, CX_ERR_INVALID, S, "%s: detection %d has a %dx%d mask without data",
                                name, i, d->mask_w, d->mask_h);
    }
    if (e->n_img == e->cap_img) {
        int nc = e->cap_img ? e->cap_img * 2 : 32;
        ev_img *ni = cx_realloc(e->img, (size_t)nc * sizeof *ni);
        if (!ni)
            return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
        e->img = ni;
        e->cap_img = nc;
    }
    if (e->n_det + (size_t)nd > e->cap_det) {
        size_t nc = e->cap_det ? e->cap_det * 2 : 256;
        while (nc < e->n_det + (size_t)nd)
            nc *= 2;
        ev_det *nd2 = cx_realloc(e->det, nc * sizeof *nd2);
        if (!nd2)
            return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
        e->det = nd2;
        e->cap_det = nc;
    }
    return CX_OK;
}

/* Label l of one image: each detection's mask against the ground-truth instances (IoU), COCO's
 * greedy matching at every IoU threshold into e->det, and the reported detections painted into
 * pred (bit l-1). order: the detections by decreasing score. */
static cx_status add_label(cx_eval *e, ev_img *im, const cx_eval_image *in, const cx_eval_gt *gt,
                           const cx_detections *dets, const int *order, uint16_t *pred, int l, cx_error *err)
{
    int w = gt->width, h = gt->height, nd = dets ? dets->count : 0, ng = gt->n_inst[l];
    /* lung sides unknown: this label's detections have no ground truth to match, good or bad */
    int in_ap = !(im->side_unknown && is_lung_side(e, l));
    im->n_gt[l] = ng;
    e->n_gt[l] += ng;
    int64_t *inter = cx_calloc((size_t)ng + 1, sizeof *inter);
    double *iou = cx_malloc(((size_t)ng + 1) * (size_t)(nd + 1) * sizeof *iou);
    char *used = cx_malloc((size_t)ng + 1);
    if (!inter || !iou || !used) {
        cx_free(inter);
        cx_free(iou);
        cx_free(used);
        return cx_error_set(err, CX_ERR_NOMEM, "eval", "out of memory");
    }
    int nl = 0, n_all = 0;
    for (int oi = 0; oi < nd; oi++) {
        const cx_detection *d = &dets->items[order[oi]];
        if (d->label != l)
            continue;
        n_all++;
        int x0, y0, x1, y1;
        det_clip(d, w, h, &x0, &y0, &x1, &y1);
        memset(inter, 0, ((size_t)ng + 1) * sizeof *inter);
        int64_t area = 0;
        int paint = in->keep ? in->keep[order[oi]] != 0 : d->score >= e->thresh[l];
        for (int y = y0; y < y1; y++) {
            const uint8_t *mr = d->mask + (size_t)(y - d->mask_y0) * d->mask_w - d->mask_x0;
            const int32_t *gr = gt->inst[l] + (size_t)y * w;
            uint16_t *pr = pred + (size_t)y * w;
            for (int x = x0; x < x1; x++)
                if (mr[x]) {
                    area++;
                    inter[gr[x]]++;
                    if (paint)
                        pr[x] |= (uint16_t)(1u << (l - 1));
                }
        }
        if (!in_ap)
            continue;
        for (int g = 1; g <= ng; g++) {
            double u = (double)area + (double)gt->inst_area[l][g] - (double)inter[g];
            iou[(size_t)nl * (ng + 1) + g] = u > 0 ? (double)inter[g] / u : 0.0;
        }
        ev_det *ed = &e->det[e->n_det + (size_t)nl];
        ed->score = d->score;
        ed->label = l;
        ed->image = e->n_img;
        ed->matched = 0;
        nl++;
    }
    /* COCO greedy matching, per threshold: each detection (by score) takes the unmatched GT
     * with the highest IoU at or above the threshold */
    for (int t = 0; t < N_IOU; t++) {
        double thr = 0.5 + 0.05 * t;
        memset(used, 0, (size_t)ng + 1);
        for (int di = 0; di < nl; di++) {
            double best = thr < 1 - 1e-10 ? thr : 1 - 1e-10;
            int m = -1;
            for (int g = 1; g <= ng; g++) {
                if (used[g])
                    continue;
                double v = iou[(size_t)di * (ng + 1) + g];
                if (v < best)
                    continue;
                best = v;
                m = g;
            }
            if (m > 0) {
                used[m] = 1;
                e->det[e->n_det + (size_t)di].matched |= 1u << t;
            }
        }
    }
    im->n_det[l] = n_all;
    e->n_det += (size_t)nl;
    cx_free(inter);
    cx_free(iou);
    cx_free(used);
    return CX_OK;
}

/* Pixel figures of one image from the painted prediction: Dice of each label's union mask, of both
 * lungs together, and the share of each lung (and of both) the finding covers, predicted and true. */
static void add_pixel_figures(const cx_eval *e, ev_img *im, const cx_eval_gt *gt, const uint16_t *pred)
{
    size_t npx = (size_t)gt->width * gt->height;
    int64_t a[CX_EVAL_MAX_CLASSES + 1] = {0}, b[CX_EVAL_MAX_CLASSES + 1] = {0}, ab[CX_EVAL_MAX_CLASSES + 1] = {0};
    int64_t sh_gt_l[2] = {0}, sh_gt_fl[2] = {0}, sh_p_l[2] = {0}, sh_p_fl[2] = {0};
    int64_t lu_gt = 0, lu_p = 0, lu_both = 0, lu_gt_f = 0, lu_p_f = 0;
    uint16_t lung_bits = 0;
    for (int s = 0; s < 2; s++)
        if (e->lung[s])
            lung_bits |= (uint16_t)(1u << (e->lung[s] - 1));
    int F = e->finding;
    for (size_t p = 0; p < npx; p++) {
        uint16_t pv = pred[p];
        for (int l = 1; l <= e->k; l++) {
            int pa = (pv >> (l - 1)) & 1, gb = gt->inst[l][p] != 0;
            a[l] += pa;
            b[l] += gb;
            ab[l] += pa & gb;
        }
        int gf = F ? gt->inst[F][p] != 0 : 0, pf = F ? (pv >> (F - 1)) & 1 : 0;
        int gl = gt->lung ? gt->lung[p] != 0
                          : ((e->lung[0] && gt->inst[e->lung[0]][p]) || (e->lung[1] && gt->inst[e->lung[1]][p]));
        int pl = (pv & lung_bits) != 0;
        lu_gt += gl;
        lu_p += pl;
        lu_both += gl & pl;
        lu_gt_f += gl & gf;
        lu_p_f += pl & pf;
        for (int s = 0; s < 2; s++) {
            int L = e->lung[s];
            if (!L)
                continue;
            int gs = gt->inst[L][p] != 0, ps = (pv >> (L - 1)) & 1;
            sh_gt_l[s] += gs;
            sh_gt_fl[s] += gs & gf;
            sh_p_l[s] += ps;
            sh_p_fl[s] += ps & pf;
        }
    }
    for (int l = 1; l <= e->k; l++)
        im->dice[l] = (a[l] + b[l]) && !(im->side_unknown && is_lung_side(e, l))
                          ? 2.0 * (double)ab[l] / (double)(a[l] + b[l])
                          : NAN;
    im->dice_lungs = lung_bits && (lu_gt + lu_p) ? 2.0 * (double)lu_both / (double)(lu_gt + lu_p) : NAN;
    im->gt_finding = F ? gt->n_inst[F] > 0 : 0;
    /* no predicted lung: the product would report nothing; count it as 0 % affected */
    if (F && lung_bits && lu_gt > 0) {
        im->has_share_lungs = 1;
        im->share_lungs_gt = 100.0 * (double)lu_gt_f / (double)lu_gt;
        im->share_lungs_pred = lu_p ? 100.0 * (double)lu_p_f / (double)lu_p : 0.0;
    }
    for (int s = 0; s < 2; s++) {
        if (!F || !e->lung[s] || im->side_unknown || sh_gt_l[s] == 0)
            continue;
        im->has_share[s] = 1;
        im->share_gt[s] = 100.0 * (double)sh_gt_fl[s] / (double)sh_gt_l[s];
        im->share_pred[s] = sh_p_l[s] ? 100.0 * (double)sh_p_fl[s] / (double)sh_p_l[s] : 0.0;
    }
}

cx_status cx_eval_add_image(cx_eval *e, const cx_eval_image *in, const cx_eval_gt *gt,
                            const cx_detections *dets, cx_error *err)
{
    const char *S = "eval";
    const char *name = in->name ? in->name : "";
    cx_status st = add_prepare(e, name, gt, dets, err);
    if (st != CX_OK)
        return st;
    int cat = category_index(e, in->category);
    if (cat == -2)
        return cx_error_set(err, CX_ERR_INVALID, S, "%s: category '%s' is one more than the %d supported",
                            name, in->category, CX_EVAL_MAX_CATEGORIES);
    int nd = dets ? dets->count : 0;
    uint16_t *pred = cx_calloc((size_t)gt->width * gt->height, sizeof *pred); /* bit l-1: union of label l */
    int *order = cx_malloc(((size_t)nd + 1) * sizeof *order);
    ev_img im;
    memset(&im, 0, sizeof im);
    im.name = cx_strdup(name);
    im.cat = cat;
    im.ms = in->ms;
    im.image_score = in->image_score;
    im.present = in->present != 0;
    im.side_unknown = gt->lung_side_unknown != 0;
    if (!pred || !order || !im.name) {
        st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
        goto done;
    }
    /* detection order: by decreasing score, ties kept in engine order (COCO's stable sort) */
    for (int i = 0; i < nd; i++) {
        int j = i;
        while (j > 0 && dets->items[order[j - 1]].score < dets->items[i].score) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int l = 1; l <= e->k && st == CX_OK; l++)
        st = add_label(e, &im, in, gt, dets, order, pred, l, err);
    if (st != CX_OK)
        goto done;
    add_pixel_figures(e, &im, gt, pred);
    e->img[e->n_img++] = im;
    im.name = NULL;
done:
    cx_free(im.name);
    cx_free(pred);
    cx_free(order);
    return st;
}

cx_status cx_eval_add(cx_eval *e, const char *name, const cx_eval_gt *gt, const cx_detections *dets,
                      double ms, cx_error *err)
{
    cx_eval_image in = {name, NULL, NULL, 0, 0, ms};
    for (int i = 0; e->finding && dets && i < dets->count; i++) {
        const cx_detection *d = &dets->items[i];
        if (d->label != e->finding || d->score <= in.image_score)
            continue;
        size_t n = (size_t)d->mask_w * (size_t)d->mask_h, px = 0;
        for (size_t q = 0; q < n && !px; q++)
            px += d->mask[q] != 0;
        if (px)
            in.image_score = d->score;
    }
    in.present = e->finding && in.image_score > 0 && in.image_score >= e->thresh[e->finding];
    return cx_eval_add_image(e, &in, gt, dets, err);
}

double cx_eval_roc_auc(const double *pos, int n_pos, const double *neg, int n_neg)
{
    if (n_pos <= 0 || n_neg <= 0)
        return NAN;
    /* every pair: validation sets are a few thousand images, so n_pos * n_neg stays small, and
     * the definition needs no sort or rank bookkeeping */
    double wins = 0;
    for (int i = 0; i < n_pos; i++)
        for (int j = 0; j < n_neg; j++)
            wins += pos[i] > neg[j] ? 1.0 : pos[i] == neg[j] ? 0.5 : 0.0;
    return wins / ((double)n_pos * (double)n_neg);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Detections of one label sorted by decreasing score (stable: image order, then engine order). */
static size_t class_dets(const cx_eval *e, int l, size_t *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_det; i++)
        if (e->det[i].label == l)
            idx[n++] = i;
    /* insertion sort is fine for the few thousand detections of a validation run; keeps stability */
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && e->det[idx[j - 1]].score < e->det[v].score) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
    return n;
}

/* COCO AP at threshold t from sorted detections; prec101 (may be NULL) receives the interpolated
 * precision at recall 0, 0.01, ..., 1. Returns -1 when the class has no ground truth. */
static double class_ap(const cx_eval *e, int l, const size_t *idx, size_t n, int t, double *prec101)
{
    int ngt = e->n_gt[l];
    if (prec101)
        for (int r = 0; r <= 100; r++)
            prec101[r] = 0;
    if (ngt == 0)
        return -1;
    if (n == 0)
        return 0;
    double *rc = cx_malloc(n * sizeof *rc), *pr = cx_malloc(n * sizeof *pr);
    if (!rc || !pr) {
        cx_free(rc);
        cx_free(pr);
        return NAN;
    }
    double tp = 0, fp = 0;
    for (size_t i = 0; i < n; i++) {
        if ((e->det[idx[i]].matched >> t) & 1)
            tp++;
        else
            fp++;
        rc[i] = tp / ngt;
        pr[i] = tp / (tp + fp);
    }
    for (size_t i = n - 1; i > 0; i--)
        if (pr[i] > pr[i - 1])
            pr[i - 1] = pr[i];
    double sum = 0;
    size_t j = 0;
    for (int r = 0; r <= 100; r++) {
        double rv = r / 100.0;
        while (j < n && rc[j] < rv - 1e-12)
            j++;
        double p = j < n ? pr[j] : 0.0;
        if (prec101)
            prec101[r] = p;
        sum += p;
    }
    cx_free(rc);
    cx_free(pr);
    return sum / 101.0;
}

static cx_eval_stat stat_of(double *vals, int n, double sum)
{
    cx_eval_stat s = {n, NAN, NAN};
    if (!n)
        return s;
    s.mean = sum / n;
    qsort(vals, (size_t)n, sizeof *vals, cmp_double);
    s.median = n % 2 ? vals[n / 2] : 0.5 * (vals[n / 2 - 1] + vals[n / 2]);
    return s;
}

/* Collects one per-image value over the images of group `cat` (-1: all) that have it. */
typedef double (*img_value)(const ev_img *im, int arg); /* NAN: the image does not count */

static cx_eval_stat group_stat(const cx_eval *e, int cat, img_value f, int arg, double *vals)
{
    int n = 0;
    double sum = 0;
    for (int i = 0; i < e->n_img; i++) {
        const ev_img *im = &e->img[i];
        if (cat >= 0 && im->cat != cat)
            continue;
        double v = f(im, arg);
        if (isnan(v))
            continue;
        vals[n++] = v;
        sum += v;
    }
    return stat_of(vals, n, sum);
}

static double v_dice(const ev_img *im, int l) { return im->dice[l]; }
static double v_dice_gt(const ev_img *im, int l) { return im->gt_finding ? im->dice[l] : NAN; }
static double v_dice_lungs(const ev_img *im, int l) { (void)l; return im->dice_lungs; }

/* share error (predicted - GT) of side 0/1, both lungs (2) or both lungs on GT-finding images (3) */
static double v_share(const ev_img *im, int which)
{
    if (which < 2)
        return im->has_share[which] ? im->share_pred[which] - im->share_gt[which] : NAN;
    if (!im->has_share_lungs || (which == 3 && !im->gt_finding))
        return NAN;
    return im->share_lungs_pred - im->share_lungs_gt;
}

static cx_eval_error group_error(const cx_eval *e, int cat, int which)
{
    cx_eval_error r = {0, 0, 0};
    for (int i = 0; i < e->n_img; i++) {
        const ev_img *im = &e->img[i];
        if (cat >= 0 && im->cat != cat)
            continue;
        double d = v_share(im, which);
        if (isnan(d))
            continue;
        r.n++;
        r.mae += fabs(d);
        r.bias += d;
    }
    r.mae = r.n ? r.mae / r.n : NAN;
    r.bias = r.n ? r.bias / r.n : NAN;
    return r;
}

static void group_figures(const cx_eval *e, int cat, double *vals, cx_eval_group *g)
{
    memset(g, 0, sizeof *g);
    if (cat >= 0)
        snprintf(g->category, sizeof g->category, "%s", e->cat[cat]);
    for (int i = 0; i < e->n_img; i++) {
        const ev_img *im = &e->img[i];
        if (cat >= 0 && im->cat != cat)
            continue;
        g->n_images++;
        g->n_gt_finding += im->gt_finding;
        g->n_present += im->present;
        g->n_side_unknown += im->side_unknown;
    }
    for (int l = 1; l <= e->k; l++)
        g->dice[l] = group_stat(e, cat, v_dice, l, vals);
    if (e->finding)
        g->dice_finding_gt = group_stat(e, cat, v_dice_gt, e->finding, vals);
    else
        g->dice_finding_gt = stat_of(vals, 0, 0);
    g->dice_lungs = group_stat(e, cat, v_dice_lungs, 0, vals);
    for (int s = 0; s < 2; s++)
        g->share[s] = group_error(e, cat, s);
    g->share_lungs = group_error(e, cat, 2);
    g->share_lungs_gt = group_error(e, cat, 3);
}

/* Image-level roles: 1 positive, 0 negative, -1 neither (see CX_EVAL_NEGATIVE_CATEGORY). */
static int image_role(const cx_eval *e, const ev_img *im)
{
    if (im->gt_finding)
        return 1;
    if (!e->n_cat)
        return 0;
    return im->cat >= 0 && !strcmp(e->cat[im->cat], CX_EVAL_NEGATIVE_CATEGORY) ? 0 : -1;
}

cx_status cx_eval_result_get(const cx_eval *e, cx_eval_result *out, cx_error *err)
{
    cx_eval_result r;
    memset(&r, 0, sizeof r);
    r.k = e->k;
    r.n_images = e->n_img;
    size_t *idx = cx_malloc((e->n_det + 1) * sizeof *idx);
    double *vals = cx_malloc(((size_t)e->n_img + 1) * sizeof *vals);
    double *neg = cx_malloc(((size_t)e->n_img + 1) * sizeof *neg);
    if (!idx || !vals || !neg) {
        cx_free(idx);
        cx_free(vals);
        cx_free(neg);
        return cx_error_set(err, CX_ERR_NOMEM, "eval", "out of memory");
    }
    int n_ap = 0;
    for (int l = 1; l <= e->k; l++) {
        cx_eval_class_result *c = &r.cls[l];
        size_t n = class_dets(e, l, idx);
        c->n_gt = e->n_gt[l];
        c->n_det = (int)n;
        double s = 0;
        for (int t = 0; t < N_IOU; t++) {
            double ap = class_ap(e, l, idx, n, t, NULL);
            if (t == 0)
                c->ap50 = ap;
            if (t == 5)
                c->ap75 = ap;
            s += ap;
        }
        c->ap = e->n_gt[l] ? s / N_IOU : -1;
        if (e->n_gt[l]) {
            r.map50 += c->ap50;
            r.map += c->ap;
            n_ap++;
        }
    }
    r.map50 = n_ap ? r.map50 / n_ap : NAN;
    r.map = n_ap ? r.map / n_ap : NAN;
    group_figures(e, -1, vals, &r.all);
    r.n_categories = e->n_cat;
    for (int c = 0; c < e->n_cat; c++)
        group_figures(e, c, vals, &r.cat[c]);
    double ms = 0;
    r.by_category = e->n_cat > 0;
    for (int i = 0; i < e->n_img; i++) {
        const ev_img *im = &e->img[i];
        ms += im->ms;
        if (!e->finding)
            continue;
        int role = image_role(e, im);
        if (role == 1) {
            vals[r.n_pos++] = im->image_score;
            if (im->present) r.tp++;
            else r.fn++;
        } else if (role == 0) {
            neg[r.n_neg++] = im->image_score;
            if (im->present) r.fp++;
            else r.tn++;
        }
    }
    r.auc = cx_eval_roc_auc(vals, r.n_pos, neg, r.n_neg);
    r.ms_mean = e->n_img ? ms / e->n_img : NAN;
    r.sensitivity = r.tp + r.fn ? (double)r.tp / (r.tp + r.fn) : NAN;
    r.specificity = r.tn + r.fp ? (double)r.tn / (r.tn + r.fp) : NAN;
    cx_free(idx);
    cx_free(vals);
    cx_free(neg);
    *out = r;
    return CX_OK;
}

static const char *class_name(const cx_model *m, int l, char *buf, size_t cap)
{
    const cx_class_info *ci = m ? cx_model_class(m, l) : NULL;
    if (ci && ci->name)
        return ci->name;
    snprintf(buf, cap, "class %d", l);
    return buf;
}

/* One row of the per-group tables: a label, then one cell per group (whole dataset first). */
static void row_stat(FILE *out, const char *label, const cx_eval_result *r, int what, int l)
{
    fprintf(out, "%-22s", label);
    for (int c = -1; c < r->n_categories; c++) {
        const cx_eval_group *g = c < 0 ? &r->all : &r->cat[c];
        const cx_eval_stat *s = what == 0 ? &g->dice[l] : what == 1 ? &g->dice_finding_gt : &g->dice_lungs;
        if (s->n)
            fprintf(out, "  %5.3f %6.3f %5d", s->mean, s->median, s->n);
        else
            fprintf(out, "  %5s %6s %5d", "-", "-", 0);
    }
    fputc('\n', out);
}

static void row_error(FILE *out, const char *label, const cx_eval_result *r, int which)
{
    fprintf(out, "%-22s", label);
    for (int c = -1; c < r->n_categories; c++) {
        const cx_eval_group *g = c < 0 ? &r->all : &r->cat[c];
        const cx_eval_error *s = which < 2 ? &g->share[which] : which == 2 ? &g->share_lungs : &g->share_lungs_gt;
        if (s->n)
            fprintf(out, "  %5.2f %+6.2f %5d", s->mae, s->bias, s->n);
        else
            fprintf(out, "  %5s %6s %5d", "-", "-", 0);
    }
    fputc('\n', out);
}

static void row_head(FILE *out, const char *label, const char *cols, const cx_eval_result *r)
{
    fprintf(out, "%-22s", label);
    for (int c = -1; c < r->n_categories; c++)
        fprintf(out, "  %-18s", c < 0 ? "all" : r->cat[c].category);
    fprintf(out, "\n%-22s", "");
    for (int c = -1; c < r->n_categories; c++)
        fprintf(out, "  %-18s", cols);
    fputc('\n', out);
}

void cx_eval_print_table(const cx_eval *e, const cx_eval_result *r, const cx_model *m, FILE *out)
{
    char nb[32], lb[64];
    fprintf(out, "%d images", r->n_images);
    for (int c = 0; c < r->n_categories; c++)
        fprintf(out, "%s%s %d", c ? ", " : " (", r->cat[c].category, r->cat[c].n_images);
    fprintf(out, "%s; lung sides unknown on %d\n", r->n_categories ? ")" : "", r->all.n_side_unknown);
    fprintf(out, "%-14s %6s %6s %7s %7s %7s\n", "class", "n_gt", "n_det", "AP50", "AP75", "AP");
    for (int l = 1; l <= e->k; l++) {
        const cx_eval_class_result *c = &r->cls[l];
        fprintf(out, "%-14s %6d %6d", class_name(m, l, nb, sizeof nb), c->n_gt, c->n_det);
        if (c->n_gt)
            fprintf(out, " %7.3f %7.3f %7.3f\n", c->ap50, c->ap75, c->ap);
        else
            fprintf(out, " %7s %7s %7s\n", "-", "-", "-");
    }
    fprintf(out, "mask mAP@0.5 %.3f  mAP@[.5:.95] %.3f\n", r->map50, r->map);
    row_head(out, "Dice of reported masks", "mean  median     n", r);
    for (int l = 1; l <= e->k; l++)
        row_stat(out, class_name(m, l, nb, sizeof nb), r, 0, l);
    if (e->finding) {
        snprintf(lb, sizeof lb, "%s, GT finding", class_name(m, e->finding, nb, sizeof nb));
        row_stat(out, lb, r, 1, e->finding);
    }
    if (e->lung[0] || e->lung[1])
        row_stat(out, "lungs (both)", r, 2, 0);
    if (e->finding) {
        row_head(out, "% of lung affected", "MAE     bias     n", r);
        row_error(out, "both lungs", r, 2);
        row_error(out, "both, GT finding", r, 3);
        if (e->lung[0])
            row_error(out, "right lung", r, 0);
        if (e->lung[1])
            row_error(out, "left lung", r, 1);
        fprintf(out, "%-22s", "called present");
        for (int c = -1; c < r->n_categories; c++) {
            const cx_eval_group *g = c < 0 ? &r->all : &r->cat[c];
            char cnt[32];
            snprintf(cnt, sizeof cnt, "%d/%d", g->n_present, g->n_images);
            fprintf(out, "  %5.3f %12s", g->n_images ? (double)g->n_present / g->n_images : NAN, cnt);
        }
        fputc('\n', out);
        const cx_decision *dr = m ? cx_model_decision(m) : NULL;
        fprintf(out, "%s image level", class_name(m, e->finding, nb, sizeof nb));
        if (dr)
            fprintf(out, " (rule: score >= %.2f, area >= %.2f%% of the image)", dr->score, 100.0 * dr->min_area_frac);
        fprintf(out, ": ROC AUC %.3f (%d positive, %d negative: %s)\n", r->auc, r->n_pos, r->n_neg,
                r->by_category ? "category " CX_EVAL_NEGATIVE_CATEGORY : "no GT finding");
        fprintf(out, "  sensitivity %.3f (%d/%d), specificity %.3f (%d/%d)\n", r->sensitivity, r->tp,
                r->tp + r->fn, r->specificity, r->tn, r->tn + r->fp);
        for (int c = 0; c < r->n_categories; c++) {
            const cx_eval_group *g = &r->cat[c];
            if (g->n_gt_finding || !strcmp(g->category, CX_EVAL_NEGATIVE_CATEGORY))
                continue;
            fprintf(out, "  %s (no GT for the finding): called present on %.3f (%d/%d)\n", g->category,
                    g->n_images ? (double)g->n_present / g->n_images : NAN, g->n_present, g->n_images);
        }
    }
    fprintf(out, "mean inference time %.0f ms/image\n", r->ms_mean);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

static void json_stat(FILE *f, const cx_eval_stat *s)
{
    fprintf(f, "{\"n\": %d, \"mean\": ", s->n);
    json_num(f, s->mean);
    fputs(", \"median\": ", f);
    json_num(f, s->median);
    fputc('}', f);
}

static void json_error(FILE *f, const cx_eval_error *s)
{
    fprintf(f, "{\"n\": %d, \"mae_points\": ", s->n);
    json_num(f, s->mae);
    fputs(", \"bias_points\": ", f);
    json_num(f, s->bias);
    fputc('}', f);
}

static void json_group(FILE *f, const cx_eval *e, const cx_eval_group *g, const cx_model *m)
{
    char nb[32];
    fputs("    {\"category\": ", f);
    if (g->category[0])
        cx_json_fput_text(f, g->category);
    else
        fputs("null", f);
    fprintf(f, ", \"images\": %d, \"gt_finding\": %d, \"present\": %d, \"present_share\": ", g->n_images,
            g->n_gt_finding, g->n_present);
    json_num(f, g->n_images ? (double)g->n_present / g->n_images : NAN);
    fprintf(f, ", \"lung_side_unknown\": %d,\n     \"dice\": {", g->n_side_unknown);
    for (int l = 1; l <= e->k; l++) {
        fprintf(f, "%s", l > 1 ? ", " : "");
        cx_json_fput_text(f, class_name(m, l, nb, sizeof nb));
        fputs(": ", f);
        json_stat(f, &g->dice[l]);
    }
    fputs("},\n     \"dice_finding_gt\": ", f);
    json_stat(f, &g->dice_finding_gt);
    fputs(", \"dice_lungs\": ", f);
    json_stat(f, &g->dice_lungs);
    fputs(",\n     \"lung_share\": {\"lungs\": ", f);
    json_error(f, &g->share_lungs);
    fputs(", \"lungs_gt_finding\": ", f);
    json_error(f, &g->share_lungs_gt);
    fputs(", \"right\": ", f);
    json_error(f, &g->share[0]);
    fputs(", \"left\": ", f);
    json_error(f, &g->share[1]);
    fputs("}}", f);
}

/* The classes' rows: Dice, AP at IoU 0.5 / 0.75 / 0.5:0.95, the precision-recall curve at IoU
 * 0.5 and its raw operating points. idx: scratch for n_det indices. */
static void json_classes(FILE *f, const cx_eval *e, const cx_eval_result *r, const cx_model *m, size_t *idx)
{
    char nb[32];
    for (int l = 1; l <= e->k; l++) {
        const cx_eval_class_result *c = &r->cls[l];
        const cx_eval_stat *dc = &r->all.dice[l];
        fprintf(f, "    {\"label\": %d, \"name\": ", l);
        cx_json_fput_text(f, class_name(m, l, nb, sizeof nb));
        fprintf(f, ", \"score_thresh\": %.4g, \"n_gt\": %d, \"n_det\": %d, \"n_dice\": %d, \"dice_mean\": ",
                e->thresh[l], c->n_gt, c->n_det, dc->n);
        json_num(f, dc->mean);
        fputs(", \"dice_median\": ", f);
        json_num(f, dc->median);
        fputs(", \"ap50\": ", f);
        json_num(f, c->n_gt ? c->ap50 : NAN);
        fputs(", \"ap75\": ", f);
        json_num(f, c->n_gt ? c->ap75 : NAN);
        fputs(", \"ap\": ", f);
        json_num(f, c->n_gt ? c->ap : NAN);
        /* the precision-recall curve at IoU 0.5 (101 interpolated points) for the model card */
        double prec[101];
        size_t n = class_dets(e, l, idx);
        class_ap(e, l, idx, n, 0, prec);
        fputs(",\n     \"pr50_precision\": [", f);
        for (int i = 0; i <= 100; i++) {
            if (i)
                fputc(',', f);
            json_num(f, prec[i]);
        }
        /* raw operating points (score, recall, precision) at IoU 0.5 */
        fputs("],\n     \"pr50_points\": [", f);
        double tp = 0, fp = 0;
        for (size_t i = 0; i < n; i++) {
            if (e->det[idx[i]].matched & 1)
                tp++;
            else
                fp++;
            fprintf(f, "%s[%.4g,%.4g,%.4g]", i ? "," : "", e->det[idx[i]].score,
                    c->n_gt ? tp / c->n_gt : 0.0, tp / (tp + fp));
        }
        fprintf(f, "]}%s\n", l < e->k ? "," : "");
    }
}

/* The image-level decision: its rule, ROC AUC, the confusion counts, and the lung-share errors. */
static void json_finding(FILE *f, const cx_eval *e, const cx_eval_result *r, const cx_model *m)
{
    char nb[32];
    const cx_decision *dr = m ? cx_model_decision(m) : NULL;
    fprintf(f, ",\n  \"finding\": {\"label\": %d, \"name\": ", e->finding);
    cx_json_fput_text(f, class_name(m, e->finding, nb, sizeof nb));
    fprintf(f, ", \"score_thresh\": %.4g", e->thresh[e->finding]);
    if (dr) {
        fputs(", \"decision_score\": ", f);
        json_num(f, dr->score);
        fputs(", \"decision_min_area\": ", f);
        json_num(f, dr->min_area_frac);
    }
    fprintf(f, ", \"negatives\": \"%s\", \"n_pos\": %d, \"n_neg\": %d, \"roc_auc\": ",
            r->by_category ? "category " CX_EVAL_NEGATIVE_CATEGORY : "no GT finding", r->n_pos, r->n_neg);
    json_num(f, r->auc);
    fprintf(f, ", \"tp\": %d, \"fn\": %d, \"fp\": %d, \"tn\": %d, \"sensitivity\": ", r->tp, r->fn, r->fp,
            r->tn);
    json_num(f, r->sensitivity);
    fputs(", \"specificity\": ", f);
    json_num(f, r->specificity);
    fputs("},\n  \"lung_share\": {\"right\": ", f);
    json_error(f, &r->all.share[0]);
    fputs(", \"left\": ", f);
    json_error(f, &r->all.share[1]);
    fputs(", \"lungs\": ", f);
    json_error(f, &r->all.share_lungs);
    fputs(", \"lungs_gt_finding\": ", f);
    json_error(f, &r->all.share_lungs_gt);
    fputc('}', f);
}

/* One object per image: score, answer, Dice per class and of the lungs, lung shares. */
static void json_images(FILE *f, const cx_eval *e)
{
    for (int i = 0; i < e->n_img; i++) {
        const ev_img *im = &e->img[i];
        fputs("    {\"name\": ", f);
        cx_json_fput_text(f, im->name);
        fputs(", \"category\": ", f);
        if (im->cat >= 0)
            cx_json_fput_text(f, e->cat[im->cat]);
        else
            fputs("null", f);
        fprintf(f, ", \"gt_finding\": %s, \"image_score\": ", im->gt_finding ? "true" : "false");
        json_num(f, im->image_score);
        fprintf(f, ", \"present\": %s, \"lung_side_unknown\": %s, \"ms\": ", im->present ? "true" : "false",
                im->side_unknown ? "true" : "false");
        json_num(f, im->ms);
        fputs(",\n     \"dice\": [", f);
        for (int l = 1; l <= e->k; l++) {
            if (l > 1)
                fputc(',', f);
            json_num(f, im->dice[l]);
        }
        fputs("], \"dice_lungs\": ", f);
        json_num(f, im->dice_lungs);
        fputs(", \"n_gt\": [", f);
        for (int l = 1; l <= e->k; l++)
            fprintf(f, "%s%d", l > 1 ? "," : "", im->n_gt[l]);
        fputs("], \"n_det\": [", f);
        for (int l = 1; l <= e->k; l++)
            fprintf(f, "%s%d", l > 1 ? "," : "", im->n_det[l]);
        fputs("],\n     \"lung_share_gt\": ", f);
        json_num(f, im->has_share_lungs ? im->share_lungs_gt : NAN);
        fputs(", \"lung_share_pred\": ", f);
        json_num(f, im->has_share_lungs ? im->share_lungs_pred : NAN);
        fputs(", \"share_gt\": [", f);
        for (int s = 0; s < 2; s++) {
            if (s)
                fputc(',', f);
            json_num(f, im->has_share[s] ? im->share_gt[s] : NAN);
        }
        fputs("], \"share_pred\": [", f);
        for (int s = 0; s < 2; s++) {
            if (s)
                fputc(',', f);
            json_num(f, im->has_share[s] ? im->share_pred[s] : NAN);
        }
        fprintf(f, "]}%s\n", i + 1 < e->n_img ? "," : "");
    }
}

cx_status cx_eval_write_json(const cx_eval *e, const cx_eval_result *r, const cx_model *m,
                             const char *model_path, const char *data_dir, const char *path,
                             cx_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return cx_error_set(err, CX_ERR_IO, "eval json", "%s: cannot create", path);
    size_t *idx = cx_malloc((e->n_det + 1) * sizeof *idx);
    if (!idx) {
        fclose(f);
        return cx_error_set(err, CX_ERR_NOMEM, "eval json", "out of memory");
    }
    fputs("{\n  \"model\": ", f);
    cx_json_fput_text(f, model_path ? model_path : "");
    if (m) {
        fputs(", \"model_sha256\": ", f);
        cx_json_fput_text(f, cx_model_sha256(m));
    }
    fputs(",\n  \"data\": ", f);
    cx_json_fput_text(f, data_dir ? data_dir : "");
    fprintf(f, ",\n  \"images\": %d, \"lung_side_unknown\": %d,\n  \"mask_map50\": ", r->n_images,
            r->all.n_side_unknown);
    json_num(f, r->map50);
    fputs(", \"mask_map\": ", f);
    json_num(f, r->map);
    fputs(",\n  \"classes\": [\n", f);
    json_classes(f, e, r, m, idx);
    fputs("  ]", f);
    if (e->finding)
        json_finding(f, e, r, m);
    fputs(",\n  \"groups\": [\n", f);
    json_group(f, e, &r->all, m);
    for (int c = 0; c < r->n_categories; c++) {
        fputs(",\n", f);
        json_group(f, e, &r->cat[c], m);
    }
    fputs("\n  ],\n  \"ms_mean\": ", f);
    json_num(f, r->ms_mean);
    fputs(",\n  \"per_image\": [\n", f);
    json_images(f, e);
    fputs("  ]\n}\n", f);
    cx_free(idx);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return cx_error_set(err, CX_ERR_IO, "eval json", "%s: write failed", path);
    return CX_OK;
}

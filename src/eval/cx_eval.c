/* cx_eval: the figures of `cxrseg eval`, computed from the engine's detections against ground-truth
 * instances: per-class Dice of the union mask per image, COCO mask AP (greedy matching by score,
 * 101-point interpolated precision, IoU 0.50:0.05:0.95), image-level finding sensitivity/specificity
 * at the shipped threshold, and the error of the "% of each lung affected" figure the SR reports. */
#include "config.h"
#include "cx_eval.h"

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
    double ms;
    double dice[CX_EVAL_MAX_CLASSES + 1]; /* NAN when GT and prediction are both empty */
    int n_gt[CX_EVAL_MAX_CLASSES + 1], n_det[CX_EVAL_MAX_CLASSES + 1];
    int gt_pos, pred_pos;
    int has_share[2];
    double share_gt[2], share_pred[2];
} ev_img;

struct cx_eval {
    int k, finding, lung[2];
    float thresh[CX_EVAL_MAX_CLASSES + 1];
    ev_img *img;
    int n_img, cap_img;
    ev_det *det;
    size_t n_det, cap_det;
    int n_gt[CX_EVAL_MAX_CLASSES + 1];
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

cx_status cx_eval_add(cx_eval *e, const char *name, const cx_eval_gt *gt, const cx_detections *dets,
                      double ms, cx_error *err)
{
    const char *S = "eval";
    if (gt->num_classes != e->k)
        return cx_error_set(err, CX_ERR_INVALID, S, "%s: ground truth has %d classes, model %d", name,
                            gt->num_classes, e->k);
    int w = gt->width, h = gt->height, nd = dets ? dets->count : 0;
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
    size_t npx = (size_t)w * h;
    uint16_t *pred = cx_calloc(npx, sizeof *pred); /* bit l-1: predicted union of label l */
    int *order = cx_malloc(((size_t)nd + 1) * sizeof *order);
    ev_img im;
    memset(&im, 0, sizeof im);
    im.name = cx_strdup(name ? name : "");
    im.ms = ms;
    if (!pred || !order || !im.name) {
        cx_free(pred);
        cx_free(order);
        cx_free(im.name);
        return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
    }
    cx_status st = CX_OK;
    /* detection order: by decreasing score, ties kept in engine order (COCO's stable sort) */
    for (int i = 0; i < nd; i++) {
        int j = i;
        while (j > 0 && dets->items[order[j - 1]].score < dets->items[i].score) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int l = 1; l <= e->k; l++) {
        int ng = gt->n_inst[l];
        im.n_gt[l] = ng;
        e->n_gt[l] += ng;
        int64_t *inter = cx_calloc((size_t)ng + 1, sizeof *inter);
        double *iou = cx_malloc(((size_t)ng + 1) * (size_t)(nd + 1) * sizeof *iou);
        char *used = cx_malloc((size_t)ng + 1);
        if (!inter || !iou || !used) {
            cx_free(inter);
            cx_free(iou);
            cx_free(used);
            st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
            goto done;
        }
        int nl = 0;
        for (int oi = 0; oi < nd; oi++) {
            const cx_detection *d = &dets->items[order[oi]];
            if (d->label != l)
                continue;
            int x0, y0, x1, y1;
            det_clip(d, w, h, &x0, &y0, &x1, &y1);
            memset(inter, 0, ((size_t)ng + 1) * sizeof *inter);
            int64_t area = 0;
            int paint = d->score >= e->thresh[l];
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
            for (int g = 1; g <= ng; g++) {
                double u = (double)area + (double)gt->inst_area[l][g] - (double)inter[g];
                iou[(size_t)nl * (ng + 1) + g] = u > 0 ? (double)inter[g] / u : 0.0;
            }
            ev_det *ed = &e->det[e->n_det + (size_t)nl];
            ed->score = d->score;
            ed->label = l;
            ed->image = e->n_img;
            ed->matched = 0;
            if (paint && area > 0 && l == e->finding)
                im.pred_pos = 1;
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
        im.n_det[l] = nl;
        e->n_det += (size_t)nl;
        cx_free(inter);
        cx_free(iou);
        cx_free(used);
    }
    /* Dice of the union masks, image-level finding, lung share */
    {
        int64_t a[CX_EVAL_MAX_CLASSES + 1] = {0}, b[CX_EVAL_MAX_CLASSES + 1] = {0},
                ab[CX_EVAL_MAX_CLASSES + 1] = {0};
        int64_t sh_gt_l[2] = {0}, sh_gt_fl[2] = {0}, sh_p_l[2] = {0}, sh_p_fl[2] = {0};
        for (size_t p = 0; p < npx; p++) {
            uint16_t pv = pred[p];
            for (int l = 1; l <= e->k; l++) {
                int pa = (pv >> (l - 1)) & 1, gb = gt->inst[l][p] != 0;
                a[l] += pa;
                b[l] += gb;
                ab[l] += pa & gb;
            }
            if (e->finding)
                for (int s = 0; s < 2; s++) {
                    int L = e->lung[s];
                    if (!L)
                        continue;
                    int gl = gt->inst[L][p] != 0, gf = gt->inst[e->finding][p] != 0;
                    int pl = (pv >> (L - 1)) & 1, pf = (pv >> (e->finding - 1)) & 1;
                    sh_gt_l[s] += gl;
                    sh_gt_fl[s] += gl & gf;
                    sh_p_l[s] += pl;
                    sh_p_fl[s] += pl & pf;
                }
        }
        for (int l = 1; l <= e->k; l++)
            im.dice[l] = (a[l] + b[l]) ? 2.0 * (double)ab[l] / (double)(a[l] + b[l]) : NAN;
        im.gt_pos = e->finding ? gt->n_inst[e->finding] > 0 : 0;
        for (int s = 0; s < 2; s++) {
            if (!e->finding || !e->lung[s] || sh_gt_l[s] == 0)
                continue;
            im.has_share[s] = 1;
            im.share_gt[s] = 100.0 * (double)sh_gt_fl[s] / (double)sh_gt_l[s];
            /* no predicted lung: the product would report nothing; count it as 0 % affected */
            im.share_pred[s] = sh_p_l[s] ? 100.0 * (double)sh_p_fl[s] / (double)sh_p_l[s] : 0.0;
        }
    }
    e->img[e->n_img++] = im;
    im.name = NULL;
done:
    cx_free(im.name);
    cx_free(pred);
    cx_free(order);
    return st;
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

cx_status cx_eval_result_get(const cx_eval *e, cx_eval_result *out, cx_error *err)
{
    cx_eval_result r;
    memset(&r, 0, sizeof r);
    r.k = e->k;
    r.n_images = e->n_img;
    size_t *idx = cx_malloc((e->n_det + 1) * sizeof *idx);
    double *vals = cx_malloc(((size_t)e->n_img + 1) * sizeof *vals);
    if (!idx || !vals) {
        cx_free(idx);
        cx_free(vals);
        return cx_error_set(err, CX_ERR_NOMEM, "eval", "out of memory");
    }
    int n_ap = 0;
    for (int l = 1; l <= e->k; l++) {
        cx_eval_class_result *c = &r.cls[l];
        int nv = 0;
        double sum = 0;
        for (int i = 0; i < e->n_img; i++)
            if (!isnan(e->img[i].dice[l])) {
                vals[nv++] = e->img[i].dice[l];
                sum += e->img[i].dice[l];
            }
        c->n_dice = nv;
        c->dice_mean = nv ? sum / nv : NAN;
        if (nv) {
            qsort(vals, (size_t)nv, sizeof *vals, cmp_double);
            c->dice_median = nv % 2 ? vals[nv / 2] : 0.5 * (vals[nv / 2 - 1] + vals[nv / 2]);
        } else {
            c->dice_median = NAN;
        }
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
    double ms = 0;
    for (int i = 0; i < e->n_img; i++) {
        const ev_img *im = &e->img[i];
        ms += im->ms;
        if (e->finding) {
            if (im->gt_pos && im->pred_pos) r.tp++;
            else if (im->gt_pos) r.fn++;
            else if (im->pred_pos) r.fp++;
            else r.tn++;
        }
        for (int s = 0; s < 2; s++)
            if (im->has_share[s]) {
                double d = im->share_pred[s] - im->share_gt[s];
                r.n_share[s]++;
                r.share_mae[s] += fabs(d);
                r.share_bias[s] += d;
            }
    }
    r.ms_mean = e->n_img ? ms / e->n_img : NAN;
    r.sensitivity = r.tp + r.fn ? (double)r.tp / (r.tp + r.fn) : NAN;
    r.specificity = r.tn + r.fp ? (double)r.tn / (r.tn + r.fp) : NAN;
    for (int s = 0; s < 2; s++) {
        r.share_mae[s] = r.n_share[s] ? r.share_mae[s] / r.n_share[s] : NAN;
        r.share_bias[s] = r.n_share[s] ? r.share_bias[s] / r.n_share[s] : NAN;
    }
    cx_free(idx);
    cx_free(vals);
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

void cx_eval_print_table(const cx_eval *e, const cx_eval_result *r, const cx_model *m, FILE *out)
{
    char nb[32];
    fprintf(out, "%d images\n", r->n_images);
    fprintf(out, "%-14s %6s %6s %8s %6s %6s %7s %7s %7s\n", "class", "n_gt", "n_det", "n_dice",
            "Dice", "median", "AP50", "AP75", "AP");
    for (int l = 1; l <= e->k; l++) {
        const cx_eval_class_result *c = &r->cls[l];
        fprintf(out, "%-14s %6d %6d %8d %6.3f %6.3f", class_name(m, l, nb, sizeof nb), c->n_gt, c->n_det,
                c->n_dice, c->dice_mean, c->dice_median);
        if (c->n_gt)
            fprintf(out, " %7.3f %7.3f %7.3f\n", c->ap50, c->ap75, c->ap);
        else
            fprintf(out, " %7s %7s %7s\n", "-", "-", "-");
    }
    fprintf(out, "mask mAP@0.5 %.3f  mAP@[.5:.95] %.3f\n", r->map50, r->map);
    if (e->finding) {
        fprintf(out, "%s image-level at score >= %.2f: sensitivity %.3f (%d/%d), specificity %.3f (%d/%d)\n",
                class_name(m, e->finding, nb, sizeof nb), e->thresh[e->finding], r->sensitivity, r->tp,
                r->tp + r->fn, r->specificity, r->tn, r->tn + r->fp);
        static const char *side[2] = {"right", "left"};
        for (int s = 0; s < 2; s++)
            if (e->lung[s])
                fprintf(out, "%% of %s lung affected: mean abs error %.2f points, bias %+.2f (%d images)\n",
                        side[s], r->share_mae[s], r->share_bias[s], r->n_share[s]);
    }
    fprintf(out, "mean inference time %.0f ms/image\n", r->ms_mean);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
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
    char nb[32];
    fputs("{\n  \"model\": ", f);
    json_str(f, model_path ? model_path : "");
    if (m) {
        fputs(", \"model_sha256\": ", f);
        json_str(f, cx_model_sha256(m));
    }
    fputs(",\n  \"data\": ", f);
    json_str(f, data_dir ? data_dir : "");
    fprintf(f, ",\n  \"images\": %d,\n  \"mask_map50\": ", r->n_images);
    json_num(f, r->map50);
    fputs(", \"mask_map\": ", f);
    json_num(f, r->map);
    fputs(",\n  \"classes\": [\n", f);
    for (int l = 1; l <= e->k; l++) {
        const cx_eval_class_result *c = &r->cls[l];
        fprintf(f, "    {\"label\": %d, \"name\": ", l);
        json_str(f, class_name(m, l, nb, sizeof nb));
        fprintf(f, ", \"score_thresh\": %.4g, \"n_gt\": %d, \"n_det\": %d, \"n_dice\": %d, \"dice_mean\": ",
                e->thresh[l], c->n_gt, c->n_det, c->n_dice);
        json_num(f, c->dice_mean);
        fputs(", \"dice_median\": ", f);
        json_num(f, c->dice_median);
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
    fputs("  ]", f);
    if (e->finding) {
        fprintf(f, ",\n  \"finding\": {\"label\": %d, \"score_thresh\": %.4g, \"tp\": %d, \"fn\": %d, \"fp\": %d, "
                   "\"tn\": %d, \"sensitivity\": ",
                e->finding, e->thresh[e->finding], r->tp, r->fn, r->fp, r->tn);
        json_num(f, r->sensitivity);
        fputs(", \"specificity\": ", f);
        json_num(f, r->specificity);
        fputs("},\n  \"lung_share\": {", f);
        static const char *side[2] = {"right", "left"};
        for (int s = 0; s < 2; s++) {
            fprintf(f, "%s\"%s\": {\"n\": %d, \"mae_points\": ", s ? ", " : "", side[s], r->n_share[s]);
            json_num(f, r->share_mae[s]);
            fputs(", \"bias_points\": ", f);
            json_num(f, r->share_bias[s]);
            fputc('}', f);
        }
        fputc('}', f);
    }
    fputs(",\n  \"ms_mean\": ", f);
    json_num(f, r->ms_mean);
    fputs(",\n  \"per_image\": [\n", f);
    for (int i = 0; i < e->n_img; i++) {
        const ev_img *im = &e->img[i];
        fputs("    {\"name\": ", f);
        json_str(f, im->name);
        fputs(", \"ms\": ", f);
        json_num(f, im->ms);
        fputs(", \"dice\": [", f);
        for (int l = 1; l <= e->k; l++) {
            if (l > 1)
                fputc(',', f);
            json_num(f, im->dice[l]);
        }
        fputs("], \"n_gt\": [", f);
        for (int l = 1; l <= e->k; l++)
            fprintf(f, "%s%d", l > 1 ? "," : "", im->n_gt[l]);
        fputs("], \"n_det\": [", f);
        for (int l = 1; l <= e->k; l++)
            fprintf(f, "%s%d", l > 1 ? "," : "", im->n_det[l]);
        fprintf(f, "], \"gt_positive\": %d, \"pred_positive\": %d, \"share_gt\": [", im->gt_pos, im->pred_pos);
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
    fputs("  ]\n}\n", f);
    cx_free(idx);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return cx_error_set(err, CX_ERR_IO, "eval json", "%s: write failed", path);
    return CX_OK;
}

/* segment: the whole chain for one source image. The engine's instances become an
 * engine-independent findings description (cxd_finding) that the dicom/ writers turn into SEG,
 * SR, GSPS and SC; lungs are recognised by their class code (39607008 SCT, side from the modifier),
 * every other class is an abnormal finding whose share of each lung is measured here. */
#include "segment.h"
#include "cx_image.h"
#include "cx_pipe.h"

#include <stdio.h>
#include <string.h>

#define STAGE "segment"

static const char *SCT_RIGHT = "24028007", *SCT_LEFT = "7771000";

void cx_segment_default_params(cx_segment_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    cxd_write_options_default(&p->write);
    p->score = -1;
}

static void code_from(cxd_code *dst, const cx_code *src)
{
    memset(dst, 0, sizeof *dst);
    snprintf(dst->value, sizeof dst->value, "%s", src->value ? src->value : "");
    snprintf(dst->scheme, sizeof dst->scheme, "%s", src->scheme ? src->scheme : "");
    snprintf(dst->meaning, sizeof dst->meaning, "%s", src->meaning ? src->meaning : "");
}

static void code_set(cxd_code *dst, const char *v, const char *s, const char *m)
{
    memset(dst, 0, sizeof *dst);
    snprintf(dst->value, sizeof dst->value, "%s", v);
    snprintf(dst->scheme, sizeof dst->scheme, "%s", s);
    snprintf(dst->meaning, sizeof dst->meaning, "%s", m);
}

/* 0 right, 1 left, -1 not a lung class. */
static int lung_side(const cx_class_info *ci)
{
    if (!ci->code.value || strcmp(ci->code.value, "39607008") || !ci->code.scheme ||
        (strcmp(ci->code.scheme, "SCT") && strcmp(ci->code.scheme, "SRT")))
        return -1;
    if (!ci->has_modifier || !ci->modifier.value)
        return -1; /* a lung without side cannot anchor the per-lung shares */
    if (!strcmp(ci->modifier.value, SCT_RIGHT))
        return 0;
    if (!strcmp(ci->modifier.value, SCT_LEFT))
        return 1;
    return -1;
}

static float threshold_for(const cx_segment_params *p, const cx_class_info *ci)
{
    if (p->score >= 0)
        return (float)p->score;
    for (size_t i = 0; i < p->n_thresholds; i++)
        if (p->threshold_names && p->threshold_names[i] && ci->name && !strcmp(p->threshold_names[i], ci->name))
            return (float)p->threshold_scores[i];
    return ci->score_thresh;
}

static long mask_pixels(const cx_detection *d)
{
    long n = 0;
    for (size_t i = 0; i < (size_t)d->mask_w * d->mask_h; i++)
        n += d->mask[i] != 0;
    return n;
}

static int in_mask(const cx_detection *d, int x, int y)
{
    x -= d->mask_x0;
    y -= d->mask_y0;
    return x >= 0 && y >= 0 && x < d->mask_w && y < d->mask_h && d->mask[(size_t)y * d->mask_w + x];
}

/* The reporting threshold of every label (index 0 unused) as threshold_for gives it. */
static void thresholds_of(const cx_model *m, const cx_segment_params *p, float *thr)
{
    int k = cx_model_num_classes(m);
    if (k > CX_SEGMENT_MAX_CLASSES)
        k = CX_SEGMENT_MAX_CLASSES; /* cx_segment_findings refuses such a model */
    thr[0] = 0;
    for (int l = 1; l <= k; l++)
        thr[l] = threshold_for(p, cx_model_class(m, l));
}

int cx_segment_decide(const cx_model *m, const cx_segment_params *p, const cx_detections *d, int width, int height,
                      cx_decision *rule, double *image_score, int *keep)
{
    float thr[CX_SEGMENT_MAX_CLASSES + 1];
    thresholds_of(m, p, thr);
    cx_decision r = cx_decision_effective(m, thr);
    double s = keep ? cx_decision_keep(m, d, width, height, thr, keep) : cx_decision_image_score(m, d, width, height);
    if (rule)
        *rule = r;
    if (image_score)
        *image_score = s;
    return cx_decision_present_at(&r, s);
}

static const char *class_meaning(const cx_class_info *ci)
{
    return ci->meaning && *ci->meaning ? ci->meaning : ci->name && *ci->name ? ci->name : "finding";
}

void cx_segment_rule_text(const cx_decision *rule, char *buf, size_t n)
{
    if (!buf || !n)
        return;
    size_t k;
    if (rule->image_head)
        k = (size_t)snprintf(buf, n, "an image-level probability >= %.4g with a detection", rule->score);
    else
        k = (size_t)snprintf(buf, n, "a detection >= %.4g", rule->score);
    if (rule->min_area_frac > 0 && k < n)
        snprintf(buf + k, n - k, " covering >= %.4g%% of the image", 100.0 * rule->min_area_frac);
}

void cx_segment_verdict_text(const cx_model *m, const cx_decision *rule, double image_score, int present,
                             int with_rule, char *buf, size_t n)
{
    if (!buf || !n)
        return;
    const cx_class_info *ci = cx_model_class(m, rule->label);
    if (!ci) {
        snprintf(buf, n, "no finding class in the model");
        return;
    }
    char rt[160] = "";
    if (with_rule) {
        char t[140];
        cx_segment_rule_text(rule, t, sizeof t);
        snprintf(rt, sizeof rt, "; rule: %s", t);
    }
    snprintf(buf, n, "%s: %s (image score %.2f%s)", class_meaning(ci), present ? "present" : "absent", image_score, rt);
}

/* The reported lungs of one image: the detection index of each side's field (-1: none) and its
 * pixel count. */
typedef struct lung_fields {
    int idx[2];
    long px[2];
} lung_fields;

/* What is reported, in keep[] (in: the decision rule's choice): masks with pixels, and of the lung
 * classes only each side's highest-scoring field. */
static void select_reported(const cx_model *m, const cx_detections *d, int *keep, lung_fields *lf)
{
    lf->idx[0] = lf->idx[1] = -1;
    lf->px[0] = lf->px[1] = 0;
    for (int k = 0; k < d->count; k++) {
        const cx_detection *e = &d->items[k];
        if (!keep[k])
            continue;
        keep[k] = 0;
        if (e->mask_w <= 0 || e->mask_h <= 0 || !mask_pixels(e))
            continue;
        int side = lung_side(cx_model_class(m, e->label));
        if (side >= 0) {
            if (lf->idx[side] >= 0)
                continue; /* one lung field per side: the highest score */
            lf->idx[side] = k;
        }
        keep[k] = 1;
    }
    for (int sd = 0; sd < 2; sd++)
        if (lf->idx[sd] >= 0)
            lf->px[sd] = mask_pixels(&d->items[lf->idx[sd]]);
}

/* One reported detection as a SEG/SR finding: its codes, label, mask (borrowed) and colour. */
static void fill_finding(cxd_finding *x, const cx_detection *e, const cx_class_info *ci, int side)
{
    x->role = side >= 0 ? CXD_ROLE_ANATOMY : CXD_ROLE_FINDING;
    snprintf(x->label, sizeof x->label, "%s", class_meaning(ci));
    snprintf(x->description, sizeof x->description, "%s, score %.2f", x->label, e->score);
    code_from(&x->category, &ci->category);
    code_from(&x->type, &ci->code);
    if (ci->has_modifier)
        code_from(&x->type_modifier, &ci->modifier);
    code_set(&x->finding_site, "39607008", "SCT", "Lung");
    x->score = e->score;
    x->x0 = e->mask_x0;
    x->y0 = e->mask_y0;
    x->w = e->mask_w;
    x->h = e->mask_h;
    x->mask = e->mask;
    memcpy(x->rgb, ci->color, 3);
}

/* The share of each reported lung a finding covers, and its finding site's laterality (right, left
 * or bilateral) from the lungs it touches. */
static void finding_shares(cxd_finding *x, const cx_detection *e, const cx_detections *d, const lung_fields *lf)
{
    int sides = 0;
    for (int sd = 0; sd < 2; sd++) {
        if (lf->idx[sd] < 0 || !lf->px[sd])
            continue;
        const cx_detection *L = &d->items[lf->idx[sd]];
        long overlap = 0;
        for (int y = 0; y < e->mask_h; y++)
            for (int xx = 0; xx < e->mask_w; xx++)
                if (e->mask[(size_t)y * e->mask_w + xx] && in_mask(L, e->mask_x0 + xx, e->mask_y0 + y))
                    overlap++;
        if (!overlap)
            continue;
        sides |= 1 << sd;
        cxd_lung_share *sh = &x->shares[x->n_shares++];
        if (sd == 0)
            code_set(&sh->laterality, SCT_RIGHT, "SCT", "Right");
        else
            code_set(&sh->laterality, SCT_LEFT, "SCT", "Left");
        sh->percent = 100.0 * (double)overlap / (double)lf->px[sd];
    }
    if (sides == 1)
        code_set(&x->site_laterality, SCT_RIGHT, "SCT", "Right");
    else if (sides == 2)
        code_set(&x->site_laterality, SCT_LEFT, "SCT", "Left");
    else if (sides == 3)
        code_set(&x->site_laterality, "51440002", "SCT", "Bilateral");
}

/* The union of all findings: the total area and the share of each lung it covers (0 % for a lung
 * without findings). */
static cx_status union_shares(const cxd_finding *fs, size_t nf, const cx_detections *d, const lung_fields *lf,
                              int width, int height, cx_segment_result *r, cx_error *err)
{
    if (!r->n_findings) {
        for (int sd = 0; sd < 2; sd++)
            if (lf->idx[sd] >= 0)
                r->lung_share_pct[sd] = 0;
        return CX_OK;
    }
    uint8_t *uni = cx_calloc((size_t)width * height, 1);
    if (!uni)
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "union mask %d x %d", width, height);
    for (size_t i = 0; i < nf; i++) {
        if (fs[i].role != CXD_ROLE_FINDING)
            continue;
        for (int y = 0; y < fs[i].h; y++)
            for (int x = 0; x < fs[i].w; x++)
                if (fs[i].mask[(size_t)y * fs[i].w + x])
                    uni[(size_t)(fs[i].y0 + y) * width + fs[i].x0 + x] = 1;
    }
    for (size_t i = 0; i < (size_t)width * height; i++)
        r->finding_pixels += uni[i];
    for (int sd = 0; sd < 2; sd++) {
        if (lf->idx[sd] < 0 || !lf->px[sd])
            continue;
        const cx_detection *L = &d->items[lf->idx[sd]];
        long in = 0;
        for (int y = 0; y < L->mask_h; y++)
            for (int x = 0; x < L->mask_w; x++)
                if (L->mask[(size_t)y * L->mask_w + x] && uni[(size_t)(L->mask_y0 + y) * width + L->mask_x0 + x])
                    in++;
        r->lung_share_pct[sd] = 100.0 * (double)in / (double)lf->px[sd];
    }
    cx_free(uni);
    return CX_OK;
}

cx_status cx_segment_findings(const cx_model *m, const cx_detections *d, const cx_segment_params *p, int width,
                              int height, cxd_finding *fs, size_t *n_out, int *keep, cx_segment_result *r,
                              cx_error *err)
{
    if (!m || !d || !p || !fs || !n_out || !keep || !r || width <= 0 || height <= 0)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "findings: missing argument or empty image (%d x %d)", width,
                            height);
    if (cx_model_num_classes(m) > CX_SEGMENT_MAX_CLASSES)
        return cx_error_set(err, CX_ERR_MODEL, STAGE, "findings: the model has %d classes, at most %d are supported",
                            cx_model_num_classes(m), CX_SEGMENT_MAX_CLASSES);
    memset(keep, 0, (size_t)(d->count ? d->count : 1) * sizeof *keep);
    memset(fs, 0, (size_t)(d->count ? d->count : 1) * sizeof *fs);
    r->n_lungs = r->n_findings = 0;
    r->max_finding_score = 0;
    r->finding_pixels = 0;
    r->lung_share_pct[0] = r->lung_share_pct[1] = -1;
    for (int k = 0; k < d->count; k++) {
        const cx_detection *e = &d->items[k];
        if (e->mask_w > 0 && e->mask_h > 0 &&
            (!e->mask || e->mask_x0 < 0 || e->mask_y0 < 0 || e->mask_x0 + e->mask_w > width ||
             e->mask_y0 + e->mask_h > height))
            return cx_error_set(err, CX_ERR_INTERNAL, STAGE,
                                "findings: detection %d mask %dx%d at (%d,%d) outside the %dx%d image", k, e->mask_w,
                                e->mask_h, e->mask_x0, e->mask_y0, width, height);
    }
    /* The image-level answer; what is reported; the best lung of each side; findings in score order. */
    float thr[CX_SEGMENT_MAX_CLASSES + 1];
    thresholds_of(m, p, thr);
    r->image_score = cx_decision_keep(m, d, width, height, thr, keep); /* one pass over the masks */
    r->rule = cx_decision_effective(m, thr);
    r->finding_present = cx_decision_present_at(&r->rule, r->image_score);
    lung_fields lf;
    select_reported(m, d, keep, &lf);
    r->n_lungs = (lf.idx[0] >= 0) + (lf.idx[1] >= 0);

    size_t nf = 0;
    /* Lungs first (right, left), then the findings. */
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < d->count; k++) {
            if (!keep[k])
                continue;
            const cx_detection *e = &d->items[k];
            const cx_class_info *ci = cx_model_class(m, e->label);
            int side = lung_side(ci);
            if ((pass == 0) != (side >= 0))
                continue;
            cxd_finding *x = &fs[nf++];
            fill_finding(x, e, ci, side);
            if (side >= 0) {
                x->site_laterality = x->type_modifier;
                snprintf(x->tracking_id, sizeof x->tracking_id, "%s", ci->name ? ci->name : x->label);
                continue;
            }
            r->n_findings++;
            if (e->score > r->max_finding_score)
                r->max_finding_score = e->score;
            snprintf(x->tracking_id, sizeof x->tracking_id, "%s %d", ci->name ? ci->name : "finding", r->n_findings);
            finding_shares(x, e, d, &lf);
        }
    cx_status st = union_shares(fs, nf, d, &lf, width, height, r, err);
    if (st != CX_OK)
        return st;
    *n_out = nf;
    return CX_OK;
}

/* The source file opened and its attributes read (*have_info then 1), and the caller's filter
 * applied: a file it refuses is CX_ERR_UNSUPPORTED "skipped: why". */
static cx_status open_source(const char *path, const cx_segment_params *p, cxd_file **f, cxd_info *info,
                             int *have_info, cx_error *err)
{
    cxd_error de;
    cxd_status ds = cxd_file_open(path, f, &de);
    if (ds != CXD_OK) {
        if (ds == CXD_ERR_NOT_DICOM)
            return cx_error_set(err, CX_ERR_UNSUPPORTED, STAGE,
                                "not DICOM: results reference a DICOM source (use `cxrseg detect` for PNG/JPEG)");
        return cx_pipe_error_from_cxd(&de, ds, err);
    }
    if ((ds = cxd_file_info(*f, info, &de)) != CXD_OK)
        return cx_pipe_error_from_cxd(&de, ds, err);
    *have_info = 1;
    if (p->accept) {
        char why[300] = "";
        if (!p->accept(info, p->accept_user, why, sizeof why))
            return cx_error_set(err, CX_ERR_UNSUPPORTED, STAGE, "skipped: %s", why[0] ? why : "filtered out");
    }
    return CX_OK;
}

/* The DICOM outputs of one image: the finding area in mm2 (when the source has a usable spacing),
 * the SR's present/absent item from the decision rule, the picture for the secondary capture and
 * overlay.png (*picture, when either is asked for), then SEG/SR/GSPS/SC into out_dir. */
static cx_status write_results(const cx_model *m, cxd_file *f, const cxd_info *info, const cx_image *display,
                               const cxd_finding *fs, size_t nf, const cx_segment_params *p, const char *out_dir,
                               cx_segment_result *r, uint8_t **picture, cx_error *err)
{
    double spacing[2] = {0, 0};
    const char *which = "none";
    int has_spacing = cxd_info_spacing(info, spacing, &which);
    snprintf(r->spacing_used, sizeof r->spacing_used, "%s", which);
    if (has_spacing)
        r->finding_area_mm2 = (double)r->finding_pixels * spacing[0] * spacing[1];
    cxd_write_options wo = p->write;
    const cx_class_info *rule_class = cx_model_class(m, r->rule.label);
    if (rule_class) {
        /* The SR's present/absent item: the rule's answer about the decision class, named with its code. */
        code_from(&wo.qualitative, &rule_class->code);
        wo.presence = r->finding_present ? CXD_PRESENCE_PRESENT : CXD_PRESENCE_ABSENT;
        char rt[160];
        cx_segment_rule_text(&r->rule, rt, sizeof rt);
        snprintf(wo.presence_basis, sizeof wo.presence_basis, "Image score %.2f; present when the model finds %s",
                 r->image_score, rt);
    }
    /* One picture (the windowed image a viewer shows, with the findings) for both. */
    if ((wo.outputs & CXD_OUT_SC) || p->overlay_png) {
        cx_status st = cx_segment_picture(m, display, fs, nf, r, has_spacing ? spacing : NULL, picture, err);
        if (st != CX_OK)
            return st;
        wo.display_rgb = *picture;
        wo.display_rows = display->height;
        wo.display_cols = display->width;
    }
    cxd_algorithm alg;
    memset(&alg, 0, sizeof alg);
    snprintf(alg.name, sizeof alg.name, "%s", cx_model_name(m) && *cx_model_name(m) ? cx_model_name(m) : "cxrseg");
    snprintf(alg.version, sizeof alg.version, "%s",
             cx_model_version(m) && *cx_model_version(m) ? cx_model_version(m) : "unknown");
    snprintf(alg.model_sha256, sizeof alg.model_sha256, "%s", cx_model_sha256(m));
    if (p->cancel && atomic_load(p->cancel))
        return cx_error_set(err, CX_ERR_TIMEOUT, STAGE, "cancelled before writing the results (job deadline)");
    cxd_error de;
    cxd_status ds = cxd_results_write(f, fs, nf, &alg, &wo, out_dir, &r->written, &de);
    return ds == CXD_OK ? CX_OK : cx_pipe_error_from_cxd(&de, ds, err);
}

cx_status cx_segment_file(const cx_model *m, cx_mrcnn *s, const char *path, const char *out_dir,
                          const cx_segment_params *p, cx_segment_result *out, cx_error *err)
{
    if (!m || !s || !path || !out_dir || !p)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "model, engine state, path, output folder and parameters are required");
    cx_segment_result r;
    memset(&r, 0, sizeof r);
    r.lung_share_pct[0] = r.lung_share_pct[1] = -1;
    r.finding_area_mm2 = -1;

    cxd_file *f = NULL;
    cxd_info info;
    int have_info = 0;
    cx_pipe_image *img = NULL;
    cx_detections d = {0};
    int *keep = NULL;
    cxd_finding *fs = NULL;
    uint8_t *picture = NULL;
    cx_status st = CX_OK;

    double t0 = cx_now_ms();
    if ((st = open_source(path, p, &f, &info, &have_info, err)) != CX_OK)
        goto done;
    const cx_arch_info *arch = cx_model_arch(m);
    cx_pipe_params pp = cx_pipe_default_params();
    pp.fit = cx_pipe_fit_for(arch->min_size, arch->max_size);
    if ((st = cx_pipe_render_dicom(f, &info, &pp, &img, err)) != CX_OK)
        goto done;
    r.width = img->source_width;
    r.height = img->source_height;
    double t1 = cx_now_ms();
    r.ms_render = t1 - t0;
    r.ms_decode = img->ms_decode;
    r.ms_window = img->ms_window;

    const cx_image *in = img->input ? img->input : img->display;
    if (p->cancel && atomic_load(p->cancel)) {
        st = cx_error_set(err, CX_ERR_TIMEOUT, STAGE, "cancelled after decoding (job deadline)");
        goto done;
    }
    cx_mrcnn_set_cancel(s, p->cancel);
    st = cx_mrcnn_detect(s, in->data, in->height, in->width, r.height, r.width, &d, err);
    cx_mrcnn_set_cancel(s, NULL);
    if (st != CX_OK)
        goto done;
    double t2 = cx_now_ms();
    r.ms_infer = t2 - t1;
    r.n_detections = d.count;

    keep = cx_calloc((size_t)(d.count ? d.count : 1), sizeof(int));
    fs = cx_calloc((size_t)(d.count ? d.count : 1), sizeof(cxd_finding));
    if (!keep || !fs) {
        st = cx_error_set(err, CX_ERR_NOMEM, STAGE, "%d detections", d.count);
        goto done;
    }
    size_t nf = 0;
    if ((st = cx_segment_findings(m, &d, p, r.width, r.height, fs, &nf, keep, &r, err)) != CX_OK)
        goto done;

    if ((st = write_results(m, f, &info, img->display, fs, nf, p, out_dir, &r, &picture, err)) != CX_OK)
        goto done;
    double t3 = cx_now_ms();
    r.ms_write = t3 - t2;
    if (p->overlay_png &&
        (st = cx_image_write_png_rgb(p->overlay_png, picture, img->display->width, img->display->height, err)) != CX_OK)
        goto done;
    r.ms_overlay = cx_now_ms() - t3;
    *out = r;

done:
    cx_free(picture);
    cx_free(fs);
    cx_free(keep);
    cx_detections_clear(&d);
    cx_pipe_image_free(img);
    if (have_info)
        cxd_info_clear(&info);
    cxd_file_free(f);
    if (st != CX_OK && err)
        cx_error_prefix(err, path);
    return st;
}

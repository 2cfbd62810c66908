/* cx_model: turns a model file into the immutable network description the engine runs. Every
 * hyper-parameter is read from metadata and range-checked, every tensor the architecture needs is
 * looked up with its exact shape, and a tensor the architecture does not use is an error (it means
 * the file and the code disagree about the network). */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cx_mrcnn_impl.h"
#include "cx_winograd.h"

#define STAGE "model"

typedef struct ld {
    cx_model *m;
    cx_error *err;
} ld;

static cx_status get_int(ld *L, const char *key, int lo, int hi, int *out)
{
    int64_t v;
    cx_status st = cx_mfile_get_i64(L->m->mf, key, &v, L->err);
    if (st)
        return st;
    if (v < lo || v > hi)
        return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: metadata '%s' = %lld outside %d..%d",
                            cx_mfile_path(L->m->mf), key, (long long)v, lo, hi);
    *out = (int)v;
    return CX_OK;
}

static cx_status get_num(ld *L, const char *key, double lo, double hi, double *out)
{
    double v;
    cx_status st = cx_mfile_get_f64(L->m->mf, key, &v, L->err);
    if (st)
        return st;
    if (!(v >= lo && v <= hi))
        return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: metadata '%s' = %g outside %g..%g",
                            cx_mfile_path(L->m->mf), key, v, lo, hi);
    *out = v;
    return CX_OK;
}

static cx_status get_conv(ld *L, const char *prefix, int cin, int cout, int k, int stride, int pad,
                          cx_conv *c)
{
    char name[256];
    const void *w, *b;
    int64_t wd[4] = {cout, cin, k, k}, bd[1] = {cout};
    snprintf(name, sizeof name, "%s.weight", prefix);
    cx_status st = cx_mfile_get_tensor(L->m->mf, name, CX_DT_F32, 4, wd, &w, L->err);
    if (st)
        return st;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((st = cx_mfile_get_tensor(L->m->mf, name, CX_DT_F32, 1, bd, &b, L->err)))
        return st;
    *c = (cx_conv){.cin = cin, .cout = cout, .kh = k, .kw = k, .stride = stride, .pad = pad, .dil = 1, .w = w, .b = b};
    return CX_OK;
}

static cx_status get_mat(ld *L, const char *name, int rows, int cols, const float **out)
{
    int64_t d[2] = {rows, cols};
    int nd = cols ? 2 : 1;
    const void *p;
    cx_status st = cx_mfile_get_tensor(L->m->mf, name, CX_DT_F32, nd, d, &p, L->err);
    if (!st)
        *out = p;
    return st;
}

#define TRY(x) do { if ((st = (x)) != CX_OK) goto fail; } while (0)

static cx_status load_arch(ld *L)
{
    cx_model *m = L->m;
    cx_mfile *mf = m->mf;
    cx_status st;
    const char *bb, *s;
    TRY(cx_mfile_get_str(mf, "arch.backbone", &bb, L->err));
    static const int counts[3][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}};
    int which = !strcmp(bb, "resnet18") ? 0 : !strcmp(bb, "resnet34") ? 1 : !strcmp(bb, "resnet50") ? 2 : -1;
    if (which < 0)
        return cx_error_set(L->err, CX_ERR_UNSUPPORTED, STAGE, "%s: backbone '%s' not supported "
                            "(resnet18, resnet34, resnet50)", cx_mfile_path(mf), bb);
    m->arch.backbone = bb;
    m->bottleneck = which == 2;
    memcpy(m->nblocks, counts[which], sizeof m->nblocks);
    if (cx_mfile_meta(mf, "arch.norm")) {
        TRY(cx_mfile_get_str(mf, "arch.norm", &s, L->err));
        if (strcmp(s, "batchnorm") && strcmp(s, "frozenbatchnorm"))
            return cx_error_set(L->err, CX_ERR_UNSUPPORTED, STAGE, "%s: norm '%s' not supported (the exporter "
                                "folds batchnorm/frozenbatchnorm)", cx_mfile_path(mf), s);
    }
    m->width = 64;
    if (cx_mfile_meta(mf, "arch.backbone_width"))
        TRY(get_int(L, "arch.backbone_width", 1, 1024, &m->width));
    TRY(get_int(L, "arch.in_channels", 1, 3, &m->arch.in_channels));
    TRY(get_int(L, "arch.fpn_channels", 1, 4096, &m->arch.fpn_channels));
    TRY(get_int(L, "arch.num_classes", 2, 1000, &m->arch.num_classes));
    TRY(get_int(L, "arch.min_size", 16, 8192, &m->arch.min_size));
    TRY(get_int(L, "arch.max_size", 16, 8192, &m->arch.max_size));
    const double *mean, *std, *sizes, *ratios, *bw;
    int n;
    TRY(cx_mfile_get_f64s(mf, "arch.image_mean", m->arch.in_channels, &mean, NULL, L->err));
    TRY(cx_mfile_get_f64s(mf, "arch.image_std", m->arch.in_channels, &std, NULL, L->err));
    for (int c = 0; c < m->arch.in_channels; c++) {
        if (!(std[c] > 0) || !isfinite(mean[c]))
            return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: image_std[%d] = %g / image_mean = %g invalid",
                                cx_mfile_path(mf), c, std[c], mean[c]);
        m->mean[c] = (float)mean[c];
        m->std[c] = (float)std[c];
    }
    int per;
    TRY(get_int(L, "arch.anchor_sizes_per_level", 1, 16, &per));
    TRY(cx_mfile_get_f64s(mf, "arch.anchor_sizes", MR_LEVELS * per, &sizes, NULL, L->err));
    TRY(cx_mfile_get_f64s(mf, "arch.aspect_ratios", -1, &ratios, &n, L->err));
    if (n * per > MR_MAX_ANCHORS)
        return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: %d aspect ratios x %d sizes = %d anchors per "
                            "location (at most %d)", cx_mfile_path(mf), n, per, n * per, MR_MAX_ANCHORS);
    m->A = n * per;
    /* torchvision AnchorGenerator.generate_anchors, in float32, rounded half to even. */
    for (int l = 0; l < MR_LEVELS; l++)
        for (int r = 0; r < n; r++)
            for (int k = 0; k < per; k++) {
                if (!(ratios[r] > 0) || !(sizes[l * per + k] > 0))
                    return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: anchor size/ratio must be > 0",
                                        cx_mfile_path(mf));
                float hr = sqrtf((float)ratios[r]), wr = 1.0f / hr, sc = (float)sizes[l * per + k];
                float ws = wr * sc, hs = hr * sc;
                float *a = m->base_anchors[l][r * per + k];
                a[0] = rintf(-ws / 2.0f);
                a[1] = rintf(-hs / 2.0f);
                a[2] = rintf(ws / 2.0f);
                a[3] = rintf(hs / 2.0f);
            }
    TRY(get_int(L, "arch.rpn_pre_nms_top_n_test", 1, 1000000, &m->pre_nms));
    TRY(get_int(L, "arch.rpn_post_nms_top_n_test", 1, 1000000, &m->post_nms));
    double v;
    TRY(get_num(L, "arch.rpn_nms_thresh", 0, 1, &m->rpn_nms));
    TRY(get_num(L, "arch.rpn_score_thresh", 0, 1, &v));
    m->rpn_score = (float)v;
    TRY(get_num(L, "arch.box_score_thresh", 0, 1, &v));
    m->box_score = (float)v;
    m->arch.box_score_thresh = (float)v;
    TRY(get_num(L, "arch.box_nms_thresh", 0, 1, &m->box_nms));
    TRY(get_int(L, "arch.box_detections_per_img", 1, 100000, &m->arch.detections_per_img));
    TRY(cx_mfile_get_f64s(mf, "arch.bbox_reg_weights", 4, &bw, NULL, L->err));
    for (int i = 0; i < 4; i++) {
        if (!(bw[i] > 0))
            return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: bbox_reg_weights[%d] = %g must be > 0",
                                cx_mfile_path(mf), i, bw[i]);
        m->bbox_w[i] = (float)bw[i];
    }
    TRY(get_int(L, "arch.representation_size", 1, 1 << 16, &m->rep));
    const cx_meta *ml = cx_mfile_meta(mf, "arch.mask_layers");
    if (!ml || ml->type != CX_META_I64_ARRAY || ml->count < 1 || ml->count > MR_MAX_MASK_LAYERS)
        return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: metadata 'arch.mask_layers' must be 1..%d ints",
                            cx_mfile_path(mf), MR_MAX_MASK_LAYERS);
    m->n_mask_layers = ml->count;
    TRY(get_int(L, "arch.mask_dim_reduced", 1, 4096, &m->mask_dim));
    m->mask_pool = 14; /* torchvision's MaskRCNN default, and every model file before the key */
    if (cx_mfile_meta(mf, "arch.mask_pool"))
        TRY(get_int(L, "arch.mask_pool", 1, 64, &m->mask_pool));
    m->image_head = 0;
    if (cx_mfile_meta(mf, "arch.image_head"))
        TRY(get_int(L, "arch.image_head", 0, 1, &m->image_head));
    return CX_OK;
fail:
    return st;
}

/* The ResNet body (BasicBlock or Bottleneck stages) and the FPN's lateral and output convs. */
static cx_status load_backbone(ld *L)
{
    cx_model *m = L->m;
    cx_status st;
    char p[256];
    int w = m->width, e = m->bottleneck ? 4 : 1, C = m->arch.fpn_channels;
    TRY(get_conv(L, "backbone.body.conv1", m->arch.in_channels, w, 7, 2, 3, &m->conv1));
    int inpl = w;
    for (int l = 0; l < 4; l++) {
        int planes = w << l;
        m->blocks[l] = cx_calloc((size_t)m->nblocks[l], sizeof(mr_block));
        if (!m->blocks[l])
            return cx_error_set(L->err, CX_ERR_NOMEM, STAGE, "out of memory");
        for (int b = 0; b < m->nblocks[l]; b++) {
            mr_block *B = &m->blocks[l][b];
            int stride = (b == 0 && l > 0) ? 2 : 1;
            const char *pre = "backbone.body.layer";
            if (m->bottleneck) {
                snprintf(p, sizeof p, "%s%d.%d.conv1", pre, l + 1, b);
                TRY(get_conv(L, p, inpl, planes, 1, 1, 0, &B->c1));
                snprintf(p, sizeof p, "%s%d.%d.conv2", pre, l + 1, b);
                TRY(get_conv(L, p, planes, planes, 3, stride, 1, &B->c2));
                snprintf(p, sizeof p, "%s%d.%d.conv3", pre, l + 1, b);
                TRY(get_conv(L, p, planes, planes * 4, 1, 1, 0, &B->c3));
            } else {
                snprintf(p, sizeof p, "%s%d.%d.conv1", pre, l + 1, b);
                TRY(get_conv(L, p, inpl, planes, 3, stride, 1, &B->c1));
                snprintf(p, sizeof p, "%s%d.%d.conv2", pre, l + 1, b);
                TRY(get_conv(L, p, planes, planes, 3, 1, 1, &B->c2));
            }
            if (stride != 1 || inpl != planes * e) {
                B->has_down = 1;
                snprintf(p, sizeof p, "%s%d.%d.downsample.0", pre, l + 1, b);
                TRY(get_conv(L, p, inpl, planes * e, 1, stride, 0, &B->down));
            }
            inpl = planes * e;
        }
    }
    for (int l = 0; l < 4; l++) {
        snprintf(p, sizeof p, "backbone.fpn.inner_blocks.%d.0", l);
        TRY(get_conv(L, p, (w << l) * e, C, 1, 1, 0, &m->fpn_inner[l]));
        snprintf(p, sizeof p, "backbone.fpn.layer_blocks.%d.0", l);
        TRY(get_conv(L, p, C, C, 3, 1, 1, &m->fpn_layer[l]));
    }
    return CX_OK;
fail:
    return st;
}

/* a[0..na) followed by b[0..nb) in one new aligned buffer (two layers fused into one GEMM). */
static cx_status concat_floats(ld *L, const float *a, size_t na, const float *b, size_t nb, float **out)
{
    *out = cx_aligned_alloc((na + nb) * sizeof(float));
    if (!*out)
        return cx_error_set(L->err, CX_ERR_NOMEM, STAGE, "out of memory");
    memcpy(*out, a, na * sizeof(float));
    memcpy(*out + na, b, nb * sizeof(float));
    return CX_OK;
}

/* The RPN head; its objectness and box-delta 1x1 convs fused into one (A + 4A outputs). */
static cx_status load_rpn(ld *L)
{
    cx_model *m = L->m;
    cx_status st;
    int C = m->arch.fpn_channels;
    TRY(get_conv(L, "rpn.head.conv.0.0", C, C, 3, 1, 1, &m->rpn_conv));
    cx_conv cls, box;
    TRY(get_conv(L, "rpn.head.cls_logits", C, m->A, 1, 1, 0, &cls));
    TRY(get_conv(L, "rpn.head.bbox_pred", C, 4 * m->A, 1, 1, 0, &box));
    size_t A = (size_t)m->A;
    TRY(concat_floats(L, cls.w, A * C, box.w, 4 * A * C, &m->rpn_head_w));
    TRY(concat_floats(L, cls.b, A, box.b, 4 * A, &m->rpn_head_b));
    m->rpn_head = (cx_conv){.cin = C, .cout = 5 * m->A, .kh = 1, .kw = 1, .stride = 1, .dil = 1, .w = m->rpn_head_w,
                            .b = m->rpn_head_b};
    return CX_OK;
fail:
    return st;
}

/* The box head's two FC layers and the predictor, class scores and box deltas fused (K1 + 4 K1). */
static cx_status load_box_head(ld *L)
{
    cx_model *m = L->m;
    cx_status st;
    int K1 = m->arch.num_classes, R = m->rep, C = m->arch.fpn_channels;
    TRY(get_mat(L, "roi_heads.box_head.fc6.weight", R, C * 49, &m->fc6_w));
    TRY(get_mat(L, "roi_heads.box_head.fc6.bias", R, 0, &m->fc6_b));
    TRY(get_mat(L, "roi_heads.box_head.fc7.weight", R, R, &m->fc7_w));
    TRY(get_mat(L, "roi_heads.box_head.fc7.bias", R, 0, &m->fc7_b));
    const float *cw, *cb, *bw, *bb;
    TRY(get_mat(L, "roi_heads.box_predictor.cls_score.weight", K1, R, &cw));
    TRY(get_mat(L, "roi_heads.box_predictor.cls_score.bias", K1, 0, &cb));
    TRY(get_mat(L, "roi_heads.box_predictor.bbox_pred.weight", 4 * K1, R, &bw));
    TRY(get_mat(L, "roi_heads.box_predictor.bbox_pred.bias", 4 * K1, 0, &bb));
    TRY(concat_floats(L, cw, (size_t)K1 * R, bw, (size_t)4 * K1 * R, &m->pred_w));
    TRY(concat_floats(L, cb, (size_t)K1, bb, (size_t)4 * K1, &m->pred_b));
    return CX_OK;
fail:
    return st;
}

/* The mask head's conv stack, its deconvolution and logits, and the image-level head. */
static cx_status load_mask_and_image_heads(ld *L)
{
    cx_model *m = L->m;
    cx_status st;
    char p[256];
    const cx_meta *ml = cx_mfile_meta(m->mf, "arch.mask_layers");
    int cin = m->arch.fpn_channels, K1 = m->arch.num_classes;
    for (int i = 0; i < m->n_mask_layers; i++) {
        int64_t cout = ml->i[i];
        if (cout < 1 || cout > 4096)
            return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: arch.mask_layers[%d] = %lld outside 1..4096",
                                cx_mfile_path(m->mf), i, (long long)cout);
        snprintf(p, sizeof p, "roi_heads.mask_head.%d.0", i);
        TRY(get_conv(L, p, cin, (int)cout, 3, 1, 1, &m->mask_conv[i]));
        cin = (int)cout;
    }
    int64_t d[4] = {cin, m->mask_dim, 2, 2}, bd[1] = {m->mask_dim};
    const void *q;
    TRY(cx_mfile_get_tensor(m->mf, "roi_heads.mask_predictor.conv5_mask.weight", CX_DT_F32, 4, d, &q, L->err));
    m->deconv_w = q;
    TRY(cx_mfile_get_tensor(m->mf, "roi_heads.mask_predictor.conv5_mask.bias", CX_DT_F32, 1, bd, &q, L->err));
    m->deconv_b = q;
    TRY(get_conv(L, "roi_heads.mask_predictor.mask_fcn_logits", m->mask_dim, K1, 1, 1, 0, &m->mask_logits));
    if (m->image_head) {
        int64_t dw[2] = {1, (int64_t)(m->width << 3) * (m->bottleneck ? 4 : 1)}, db[1] = {1};
        TRY(cx_mfile_get_tensor(m->mf, "image_head.weight", CX_DT_F32, 2, dw, &q, L->err));
        m->image_w = q;
        TRY(cx_mfile_get_tensor(m->mf, "image_head.bias", CX_DT_F32, 1, db, &q, L->err));
        m->image_b = q;
    }
    return CX_OK;
fail:
    return st;
}

static cx_status load_weights(ld *L)
{
    cx_model *m = L->m;
    cx_status st;
    TRY(load_backbone(L));
    TRY(load_rpn(L));
    TRY(load_box_head(L));
    TRY(load_mask_and_image_heads(L));
    for (int i = 0; i < cx_mfile_tensor_count(m->mf); i++) {
        cx_tensor_ref *t = cx_mfile_tensor_at(m->mf, i);
        if (!t->used)
            return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: unexpected tensor '%s' (not part of the %s "
                                "network the metadata describes; %d tensors in the file)", cx_mfile_path(m->mf),
                                t->name, m->arch.backbone, cx_mfile_tensor_count(m->mf));
    }
    return CX_OK;
fail:
    return st;
}

static cx_status get_code(ld *L, const char *key, cx_code *c)
{
    const cx_meta *mt = cx_mfile_meta(L->m->mf, key);
    if (!mt)
        return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: metadata '%s' missing", cx_mfile_path(L->m->mf), key);
    if (mt->type != CX_META_STR_ARRAY || mt->count != 3)
        return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: metadata '%s' must be 3 strings (value, scheme, "
                            "meaning), has %d", cx_mfile_path(L->m->mf), key, mt->count);
    *c = (cx_code){mt->s[0], mt->s[1], mt->s[2]};
    return CX_OK;
}

/* decision.class / decision.score / decision.min_area (all three or none). */
static cx_status load_decision(ld *L)
{
    cx_model *m = L->m;
    cx_status st;
    double v;
    cx_decision *d = &m->decision;
    if (cx_mfile_meta(m->mf, "decision.class")) {
        TRY(get_int(L, "decision.class", 1, m->K, &d->label));
        TRY(get_num(L, "decision.score", 0, 1, &d->score));
        TRY(get_num(L, "decision.min_area", 0, 1, &v));
        d->min_area_frac = v;
        d->image_head = m->image_head;
        return CX_OK;
    }
    d->label = 0;
    for (int i = 0; i < m->K && !d->label; i++)
        if (!strstr(m->classes[i].name, "lung"))
            d->label = i + 1;
    d->score = d->label ? m->classes[d->label - 1].score_thresh : 1.0;
    d->min_area_frac = 0;
    d->image_head = m->image_head;
    return CX_OK;
fail:
    return st;
}

static cx_status load_classes(ld *L)
{
    cx_model *m = L->m;
    cx_status st;
    char k[128];
    double v;
    TRY(get_int(L, "classes.count", 1, 999, &m->K));
    if (m->K != m->arch.num_classes - 1)
        return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: classes.count = %d but arch.num_classes = %d "
                            "(needs %d foreground classes)", cx_mfile_path(m->mf), m->K, m->arch.num_classes,
                            m->arch.num_classes - 1);
    TRY(get_num(L, "thresholds.score", 0, 1, &v));
    m->score_thresh = (float)v;
    TRY(get_num(L, "thresholds.mask", 0, 1, &v));
    m->mask_thresh = (float)v;
    m->classes = cx_calloc((size_t)m->K, sizeof(cx_class_info));
    if (!m->classes)
        return cx_error_set(L->err, CX_ERR_NOMEM, STAGE, "out of memory");
    for (int i = 0; i < m->K; i++) {
        cx_class_info *c = &m->classes[i];
        snprintf(k, sizeof k, "class.%d.name", i + 1);
        TRY(cx_mfile_get_str(m->mf, k, &c->name, L->err));
        snprintf(k, sizeof k, "class.%d.meaning", i + 1);
        TRY(cx_mfile_get_str(m->mf, k, &c->meaning, L->err));
        snprintf(k, sizeof k, "class.%d.code", i + 1);
        TRY(get_code(L, k, &c->code));
        snprintf(k, sizeof k, "class.%d.category", i + 1);
        TRY(get_code(L, k, &c->category));
        snprintf(k, sizeof k, "class.%d.modifier", i + 1);
        if (cx_mfile_meta(m->mf, k)) {
            TRY(get_code(L, k, &c->modifier));
            c->has_modifier = 1;
        }
        snprintf(k, sizeof k, "class.%d.color", i + 1);
        const double *col;
        TRY(cx_mfile_get_f64s(m->mf, k, 3, &col, NULL, L->err));
        for (int j = 0; j < 3; j++) {
            if (col[j] < 0 || col[j] > 255)
                return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: %s[%d] = %g outside 0..255",
                                    cx_mfile_path(m->mf), k, j, col[j]);
            c->color[j] = (unsigned char)col[j];
        }
        c->score_thresh = m->score_thresh;
        c->mask_thresh = m->mask_thresh;
        snprintf(k, sizeof k, "class.%d.score_thresh", i + 1);
        if (cx_mfile_meta(m->mf, k)) {
            TRY(get_num(L, k, 0, 1, &v));
            c->score_thresh = (float)v;
        }
        snprintf(k, sizeof k, "class.%d.mask_thresh", i + 1);
        if (cx_mfile_meta(m->mf, k)) {
            TRY(get_num(L, k, 0, 1, &v));
            c->mask_thresh = (float)v;
        }
        snprintf(k, sizeof k, "class.%d.single", i + 1);
        if (cx_mfile_meta(m->mf, k)) {
            int64_t one;
            TRY(cx_mfile_get_i64(m->mf, k, &one, L->err));
            if (one != 0 && one != 1)
                return cx_error_set(L->err, CX_ERR_MODEL, STAGE, "%s: %s = %lld, must be 0 or 1",
                                    cx_mfile_path(m->mf), k, (long long)one);
            c->single = (int)one;
        }
    }
    TRY(load_decision(L));
    int n = cx_mfile_meta_count(m->mf);
    m->prov = cx_calloc((size_t)n + 1, sizeof(cx_meta *));
    if (!m->prov)
        return cx_error_set(L->err, CX_ERR_NOMEM, STAGE, "out of memory");
    for (int i = 0; i < n; i++) {
        const cx_meta *mt = cx_mfile_meta_at(m->mf, i);
        if (!strncmp(mt->key, "provenance.", 11) && mt->type == CX_META_STR)
            m->prov[m->n_prov++] = mt;
    }
    return CX_OK;
fail:
    return st;
}

/* Winograd F(m x m, 3x3) forms for the 3x3 stride-1 convs that run on large maps: layer1 and
 * layer2 of the body (layer3 too for large inputs), the FPN outputs, the RPN conv and the mask head.
 * (layer4 works on maps of 1/32 of the input, too few tiles to pay for 4x the weights.) U is (m+2)^2/9 times the
 * conv's weights; the original weights are then never read again, so their pages of the mapping
 * are dropped from memory. CXRSEG_WINOGRAD=off|2|4 overrides the default m (tests, benchmarks). */
#define WINO_DEFAULT_M 4

static cx_status prepare_winograd(ld *L)
{
    cx_model *m = L->m;
    const char *env = getenv("CXRSEG_WINOGRAD");
    int wm = WINO_DEFAULT_M;
    if (env && *env)
        wm = !strcmp(env, "off") || !strcmp(env, "0") ? 0 : (!strcmp(env, "2") ? 2 : 4);
    if (!wm)
        return CX_OK;
    cx_conv *list[64 + 2 * MR_MAX_MASK_LAYERS];
    int n = 0;
    /* layer3 (maps of 1/16 of the input) only when they have >= 100 tiles at the model's input
     * size (800 px: 169, backbone ~45 ms faster). At 512 px (64 tiles) the gain was within the
     * noise of the benchmark (~10 ms, with F(2x2) none) for 34 MB more (ResNet-50). */
    int l3 = m->arch.max_size / 16 / wm, layers = l3 * l3 >= 100 ? 3 : 2;
    for (int l = 0; l < layers; l++)
        for (int b = 0; b < m->nblocks[l]; b++) {
            mr_block *B = &m->blocks[l][b];
            cx_conv *cs[2] = {m->bottleneck ? &B->c2 : &B->c1, m->bottleneck ? NULL : &B->c2};
            for (int k = 0; k < 2; k++)
                if (cs[k] && cx_wino_eligible(cs[k]) && n < 64)
                    list[n++] = cs[k];
        }
    for (int l = 0; l < 4; l++)
        list[n++] = &m->fpn_layer[l];
    list[n++] = &m->rpn_conv;
    for (int i = 0; i < m->n_mask_layers; i++)
        list[n++] = &m->mask_conv[i];
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += cx_wino_weights_floats(wm, list[i]->cin, list[i]->cout);
    m->wino_buf = cx_aligned_alloc(total * sizeof(float));
    if (!m->wino_buf)
        return cx_error_set(L->err, CX_ERR_NOMEM, STAGE, "Winograd weights: %zu MB", (total * sizeof(float)) >> 20);
    float *u = m->wino_buf;
    for (int i = 0; i < n; i++) {
        cx_wino_transform_weights(wm, list[i], u);
        list[i]->wino = u;
        list[i]->wino_m = wm;
        cx_mfile_drop(m->mf, list[i]->w, (size_t)list[i]->cout * list[i]->cin * 9 * sizeof(float));
        u += cx_wino_weights_floats(wm, list[i]->cin, list[i]->cout);
    }
    cx_log(CX_LOG_DEBUG, STAGE, NULL, "Winograd F(%dx%d,3x3) for %d convs, %zu MB", wm, wm, n,
           (total * sizeof(float)) >> 20);
    return CX_OK;
}

cx_status cx_model_load(const char *path, cx_model **out, cx_error *err)
{
    cx_model *m = cx_calloc(1, sizeof *m);
    if (!m)
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "out of memory");
    ld L = {m, err};
    cx_status st;
    const char *s;
    TRY(cx_mfile_open(path, &m->mf, err));
    TRY(cx_mfile_get_str(m->mf, "format.kind", &s, err));
    if (strcmp(s, "cxrseg-model")) {
        st = cx_error_set(err, CX_ERR_MODEL, STAGE, "%s: format.kind is '%s', not a model (cxrseg-model)", path, s);
        goto fail;
    }
    m->name = (char *)"";
    m->version = (char *)"";
    if (cx_mfile_meta(m->mf, "model.name"))
        TRY(cx_mfile_get_str(m->mf, "model.name", (const char **)&m->name, err));
    if (cx_mfile_meta(m->mf, "model.version"))
        TRY(cx_mfile_get_str(m->mf, "model.version", (const char **)&m->version, err));
    TRY(load_arch(&L));
    TRY(load_classes(&L));
    TRY(load_weights(&L));
    TRY(prepare_winograd(&L));
    *out = m;
    return CX_OK;
fail:
    cx_model_free(m);
    return st;
}

void cx_model_free(cx_model *m)
{
    if (!m)
        return;
    for (int l = 0; l < 4; l++)
        cx_free(m->blocks[l]);
    cx_aligned_free(m->rpn_head_w);
    cx_aligned_free(m->rpn_head_b);
    cx_aligned_free(m->pred_w);
    cx_aligned_free(m->pred_b);
    cx_aligned_free(m->wino_buf);
    cx_free(m->classes);
    cx_free(m->prov);
    cx_mfile_free(m->mf);
    cx_free(m);
}

const char *cx_model_name(const cx_model *m) { return m->name; }
const char *cx_model_version(const cx_model *m) { return m->version; }
const char *cx_model_sha256(const cx_model *m) { return cx_mfile_sha256(m->mf); }
const char *cx_model_integrity(const cx_model *m) { return cx_mfile_has_integrity(m->mf) ? "verified" : "none"; }
const char *cx_model_path(const cx_model *m) { return cx_mfile_path(m->mf); }
const cx_arch_info *cx_model_arch(const cx_model *m) { return &m->arch; }
int cx_model_num_classes(const cx_model *m) { return m->K; }
float cx_model_score_thresh(const cx_model *m) { return m->score_thresh; }
float cx_model_mask_thresh(const cx_model *m) { return m->mask_thresh; }
int cx_model_provenance_count(const cx_model *m) { return m->n_prov; }
const cx_decision *cx_model_decision(const cx_model *m) { return &m->decision; }
int cx_model_has_image_head(const cx_model *m) { return m->image_head; }

/* The index of the highest-scoring detection of the decision class whose mask covers at least
 * min_area_frac of the image, or -1. */
static int best_qualifying(const cx_model *m, const cx_detections *d, int width, int height)
{
    const cx_decision *r = &m->decision;
    double need = r->min_area_frac * (double)width * (double)height;
    int best = -1;
    if (!r->label || !d)
        return -1;
    for (int i = 0; i < d->count; i++) {
        const cx_detection *x = &d->items[i];
        if (x->label != r->label || (best >= 0 && x->score <= d->items[best].score))
            continue;
        size_t px = 0, n = (size_t)x->mask_w * (size_t)x->mask_h;
        for (size_t k = 0; k < n; k++)
            px += x->mask[k] != 0;
        if ((double)px >= need && px > 0)
            best = i;
    }
    return best;
}

static double image_score_of(const cx_model *m, const cx_detections *d, int best)
{
    if (best < 0)
        return 0;
    if (m->image_head && d->has_image_prob)
        return d->image_prob > 0 ? d->image_prob : 0;
    return d->items[best].score;
}

double cx_decision_image_score(const cx_model *m, const cx_detections *d, int width, int height)
{
    return image_score_of(m, d, best_qualifying(m, d, width, height));
}

int cx_decision_present(const cx_model *m, double image_score)
{
    return cx_decision_present_at(&m->decision, image_score);
}

int cx_decision_present_at(const cx_decision *r, double image_score)
{
    return r->label && image_score > 0 && image_score >= r->score;
}

cx_decision cx_decision_effective(const cx_model *m, const float *score_thresh)
{
    cx_decision r = m->decision;
    if (r.label && !m->image_head) {
        float t = score_thresh ? score_thresh[r.label] : m->classes[r.label - 1].score_thresh;
        if (t > r.score)
            r.score = t;
    }
    return r;
}

/* Labels above it are never treated as single (the loader accepts any class count). */
#define CX_MAX_SINGLE_LABEL 64

double cx_decision_keep(const cx_model *m, const cx_detections *d, int width, int height,
                        const float *score_thresh, int *keep)
{
    int best = best_qualifying(m, d, width, height);
    double score = image_score_of(m, d, best);
    cx_decision r = cx_decision_effective(m, score_thresh);
    int present = cx_decision_present_at(&r, score);
    int top[CX_MAX_SINGLE_LABEL + 1]; /* per single class: its best-scoring detection, or -1 */
    for (int l = 0; l <= CX_MAX_SINGLE_LABEL; l++)
        top[l] = -1;
    for (int i = 0; d && i < d->count; i++) {
        int l = d->items[i].label;
        if (l >= 1 && l <= m->K && l <= CX_MAX_SINGLE_LABEL && m->classes[l - 1].single &&
            (top[l] < 0 || d->items[i].score > d->items[top[l]].score))
            top[l] = i;
    }
    for (int i = 0; d && i < d->count; i++) {
        const cx_detection *x = &d->items[i];
        int l = x->label;
        if (l < 1 || l > m->K) {
            keep[i] = 0;
            continue;
        }
        if (m->classes[l - 1].single && l <= CX_MAX_SINGLE_LABEL && l != m->decision.label) {
            keep[i] = i == top[l];
            continue;
        }
        float t = score_thresh ? score_thresh[l] : m->classes[l - 1].score_thresh;
        keep[i] = l != m->decision.label ? x->score >= t : present && (x->score >= t || i == best);
    }
    return score;
}

const cx_class_info *cx_model_class(const cx_model *m, int label)
{
    return (label >= 1 && label <= m->K) ? &m->classes[label - 1] : NULL;
}

int cx_model_provenance_at(const cx_model *m, int i, const char **key, const char **value)
{
    if (i < 0 || i >= m->n_prov)
        return 0;
    *key = m->prov[i]->key + 11;
    *value = m->prov[i]->s[0];
    return 1;
}

const char *cx_model_meta_str(const cx_model *m, const char *key)
{
    const cx_meta *mt = cx_mfile_meta(m->mf, key);
    return (mt && mt->type == CX_META_STR) ? mt->s[0] : NULL;
}

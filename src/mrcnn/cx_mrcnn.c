/* cx_mrcnn: the forward pass of torchvision 0.14's MaskRCNN (eval mode, one image), rule for rule:
 * GeneralizedRCNNTransform (normalise, resize, pad to 32), ResNet body + FPN, AnchorGenerator + RPN
 * proposal filtering, MultiScaleRoIAlign, TwoMLPHead + FastRCNNPredictor post-processing, mask head
 * and paste_masks_in_image. Where torchvision's arithmetic order matters for exact parity (box
 * decoding, RoIAlign sampling, NMS tie-breaking, integer box rounding) it is mirrored and commented.
 * All scratch memory comes from the worker's arena: after the first image at the largest size,
 * a detect allocates nothing but the result masks. */
#include <config.h>

#include <math.h>
#include <string.h>

#include "cx_mrcnn_impl.h"

#define STAGE "mrcnn"
#define MAX_CHUNKS 32
#define CHUNK_MIN ((size_t)64 << 20)

typedef struct chunk {
    char *base;
    size_t cap, used;
} chunk;

typedef struct mark {
    int cur;
    size_t used;
} mark;

struct cx_mrcnn {
    const cx_model *m;
    cx_pool *pool;
    int n_threads;
    chunk chunks[MAX_CHUNKS];
    int nchunks, cur;
    /* last run, for the parity tests */
    float *fpn[MR_LEVELS];
    float *fpnt[4];            /* P2..P5 channels-last ([H][W][C]) for RoIAlign */
    int fh[MR_LEVELS], fw[MR_LEVELS];
    float *props;
    int nprops, rh, rw;
    double t[4];
    float mask_min_score;    /* detections below it get no mask (0: all, as torchvision) */
    double image_logit;      /* the image head's output (models with arch.image_head) */
    const atomic_int *cancel; /* set by another thread: stop between stages */
};

#define CHECK_CANCEL(stage)                                                                                       \
    do {                                                                                                          \
        if (s->cancel && atomic_load_explicit(s->cancel, memory_order_relaxed)) {                                 \
            st = cx_error_set(err, CX_ERR_TIMEOUT, STAGE, "cancelled after %s (job deadline)", stage);            \
            goto fail;                                                                                            \
        }                                                                                                         \
    } while (0)

/* ---------------------------------------------------------------- arena */

static void *arena_alloc(cx_mrcnn *s, size_t bytes)
{
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes == 0)
        bytes = 64;
    for (;;) {
        if (s->cur < s->nchunks) {
            chunk *c = &s->chunks[s->cur];
            if (c->cap - c->used >= bytes) {
                void *p = c->base + c->used;
                c->used += bytes;
                return p;
            }
            if (s->cur + 1 < s->nchunks) {
                s->cur++;
                s->chunks[s->cur].used = 0;
                if (s->chunks[s->cur].cap >= bytes)
                    continue;
                /* too small: replace it (chunks after cur are unused) */
                cx_aligned_free(s->chunks[s->cur].base);
                size_t cap = bytes > CHUNK_MIN ? bytes : CHUNK_MIN;
                s->chunks[s->cur].base = cx_aligned_alloc(cap);
                s->chunks[s->cur].cap = s->chunks[s->cur].base ? cap : 0;
                if (!s->chunks[s->cur].base)
                    return NULL;
                continue;
            }
        }
        if (s->nchunks == MAX_CHUNKS)
            return NULL;
        size_t cap = bytes > CHUNK_MIN ? bytes : CHUNK_MIN;
        char *b = cx_aligned_alloc(cap);
        if (!b)
            return NULL;
        cx_log(CX_LOG_DEBUG, STAGE, NULL, "arena grows by %zu MB (chunk %d)", cap >> 20, s->nchunks + 1);
        s->chunks[s->nchunks++] = (chunk){b, cap, 0};
        s->cur = s->nchunks - 1;
    }
}

static mark arena_mark(const cx_mrcnn *s)
{
    mark mk = {s->cur, s->nchunks ? s->chunks[s->cur].used : 0};
    return mk;
}

static void arena_release(cx_mrcnn *s, mark mk)
{
    for (int i = mk.cur + 1; i < s->nchunks; i++)
        s->chunks[i].used = 0;
    s->cur = mk.cur;
    if (s->nchunks)
        s->chunks[s->cur].used = mk.used;
}

/* One chunk holding everything the last run needed, so steady state is a single block. */
static cx_status arena_reset(cx_mrcnn *s, cx_error *err)
{
    if (s->nchunks > 1) {
        size_t total = 0;
        for (int i = 0; i < s->nchunks; i++) {
            total += s->chunks[i].cap;
            cx_aligned_free(s->chunks[i].base);
        }
        s->nchunks = 0;
        s->chunks[0].base = cx_aligned_alloc(total);
        if (!s->chunks[0].base)
            return cx_error_set(err, CX_ERR_NOMEM, STAGE, "arena of %zu MB", total >> 20);
        s->chunks[0].cap = total;
        s->nchunks = 1;
    }
    s->cur = 0;
    if (s->nchunks)
        s->chunks[0].used = 0;
    return CX_OK;
}

#define ALLOCF(ptr, nfloats) do { \
        if (!((ptr) = arena_alloc(s, (size_t)(nfloats) * sizeof(float)))) { \
            st = cx_error_set(err, CX_ERR_NOMEM, STAGE, "scratch arena: %zu MB more", \
                              ((size_t)(nfloats) * sizeof(float)) >> 20); goto fail; } } while (0)
#define ALLOCB(ptr, nbytes) do { \
        if (!((ptr) = arena_alloc(s, (size_t)(nbytes)))) { \
            st = cx_error_set(err, CX_ERR_NOMEM, STAGE, "scratch arena: %zu MB more", \
                              ((size_t)(nbytes)) >> 20); goto fail; } } while (0)
#define TRY(x) do { if ((st = (x)) != CX_OK) goto fail; } while (0)

/* ---------------------------------------------------------------- state */

cx_status cx_mrcnn_new(const cx_model *m, int n_threads, cx_mrcnn **out, cx_error *err)
{
    if (!m || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "NULL argument");
    if (n_threads < 1 || n_threads > 256)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "thread count %d outside 1..256", n_threads);
    cx_mrcnn *s = cx_calloc(1, sizeof *s);
    if (!s)
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "out of memory");
    s->m = m;
    s->n_threads = n_threads;
    cx_status st = cx_pool_new(n_threads, &s->pool, err);
    if (st) {
        cx_free(s);
        return st;
    }
    cx_nn_blas_setup();
    /* Size the arena for the largest padded input up front (an estimate: a first run that needs
     * more grows it once and the next run consolidates). */
    size_t P = (size_t)((m->arch.max_size + 31) / 32 * 32);
    int e = m->bottleneck ? 4 : 1;
    size_t C = (size_t)m->arch.fpn_channels, K1 = (size_t)m->arch.num_classes;
    double PP = (double)m->mask_pool * m->mask_pool, MM = 4 * PP; /* RoIAlign cells, mask cells */
    double f = (double)P * P * (C * 0.12 + m->width * e * 0.45 + m->width * 0.3 + 3)
             + (double)(1 << 22) + (double)m->post_nms * (C * 49 + 2 * m->rep + 5 * K1 + 16)
             + (double)m->arch.detections_per_img * (C * PP * 2 + m->mask_dim * MM * 6 + K1 * MM);
    size_t bytes = (size_t)(f * sizeof(float) * 1.1);
    s->chunks[0].base = cx_aligned_alloc(bytes);
    if (!s->chunks[0].base) {
        cx_mrcnn_free(s);
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "scratch arena of %zu MB", bytes >> 20);
    }
    s->chunks[0].cap = bytes;
    s->nchunks = 1;
    *out = s;
    return CX_OK;
}

void cx_mrcnn_free(cx_mrcnn *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nchunks; i++)
        cx_aligned_free(s->chunks[i].base);
    cx_pool_free(s->pool);
    cx_free(s);
}

void cx_detections_clear(cx_detections *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->count; i++)
        cx_free(d->items[i].mask);
    cx_free(d->items);
    d->items = NULL;
    d->count = d->capacity = 0;
    d->has_image_prob = 0;
    d->image_prob = 0;
}

/* ---------------------------------------------------------------- helpers */

static cx_status conv(cx_mrcnn *s, const cx_conv *c, const float *in, int n, int h, int w, float *out,
                      const float *add, int relu, cx_error *err)
{
    cx_status st = CX_OK;
    mark mk = arena_mark(s);
    float *scratch = NULL;
    size_t need = cx_conv_scratch_floats(s->pool, c, n, h, w);
    if (need)
        ALLOCF(scratch, need);
    cx_conv2d(s->pool, c, in, n, h, w, out, add, relu, scratch);
fail:
    arena_release(s, mk);
    return st;
}

/* Stable sort of idx[0..n) by key descending (ties keep index order), merge sort with tmp[n]. */
static void sort_desc(int *idx, int *tmp, int n, const float *key)
{
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = (key[idx[j]] > key[idx[i]]) ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(int));
    }
}

/* torchvision.ops.nms (CPU kernel): boxes [n][4]; returns the kept indices in decreasing score order
 * (stable sort); IoU compared in double against the threshold as the kernel does. */
static int nms(const float *b, const float *score, int n, double thr, int *keep, int *order, int *tmp,
               unsigned char *sup, float *area)
{
    for (int i = 0; i < n; i++) {
        order[i] = i;
        sup[i] = 0;
        area[i] = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
    }
    sort_desc(order, tmp, n, score);
    int nk = 0;
    for (int a = 0; a < n; a++) {
        int i = order[a];
        if (sup[i])
            continue;
        keep[nk++] = i;
        float ix1 = b[4 * i], iy1 = b[4 * i + 1], ix2 = b[4 * i + 2], iy2 = b[4 * i + 3], ia = area[i];
        for (int c = a + 1; c < n; c++) {
            int j = order[c];
            if (sup[j])
                continue;
            float xx1 = fmaxf(ix1, b[4 * j]), yy1 = fmaxf(iy1, b[4 * j + 1]);
            float xx2 = fminf(ix2, b[4 * j + 2]), yy2 = fminf(iy2, b[4 * j + 3]);
            float w = fmaxf(0.0f, xx2 - xx1), h = fmaxf(0.0f, yy2 - yy1);
            float inter = w * h;
            float ovr = inter / (ia + area[j] - inter);
            if ((double)ovr > thr)
                sup[j] = 1;
        }
    }
    return nk;
}

typedef struct nms_job {
    const float *b, *score;
    const int *off;
    int *nk, *keep, *order, *tmp;
    unsigned char *sup;
    float *area;
    double thr;
} nms_job;

/* Class t's slice [off[t], off[t+1]) of every array. */
static void nms_task(void *ctx, int t)
{
    const nms_job *j = ctx;
    int o = j->off[t], m = j->off[t + 1] - o;
    j->nk[t] = m ? nms(j->b + 4 * (size_t)o, j->score + o, m, j->thr, j->keep + o, j->order + o, j->tmp + o,
                       j->sup + o, j->area + o)
                 : 0;
}

/* torchvision.ops.batched_nms: per-class NMS, result sorted by decreasing score. Like torchvision,
 * small inputs (<= 1000 boxes) use the coordinate-offset trick and larger ones the per-class loop;
 * the two can differ in the last bit of IoU, so the same choice is made here. */
static cx_status batched_nms(cx_mrcnn *s, const float *boxes, const float *scores, const int *cls, int n,
                             double thr, int *keep, int *nkeep, cx_error *err)
{
    cx_status st = CX_OK;
    mark mk = arena_mark(s);
    int *order, *tmp, *sub_idx, *sub_keep;
    unsigned char *sup;
    float *area, *sb, *ss;
    *nkeep = 0;
    if (n == 0)
        goto fail;
    ALLOCB(order, (size_t)n * sizeof(int));
    ALLOCB(tmp, (size_t)n * sizeof(int));
    ALLOCB(sub_idx, (size_t)n * sizeof(int));
    ALLOCB(sub_keep, (size_t)n * sizeof(int));
    ALLOCB(sup, (size_t)n);
    ALLOCF(area, n);
    ALLOCF(sb, (size_t)n * 4);
    ALLOCF(ss, n);
    if ((size_t)n * 4 > 4000) {
        /* one NMS per class, the classes side by side on the pool: each works on its own slice
         * (boxes of the class in index order, as torchvision's per-class loop sees them) */
        unsigned char *kmask;
        int *cnt, *off, *nkc;
        ALLOCB(kmask, (size_t)n);
        memset(kmask, 0, (size_t)n);
        int cmin = cls[0], cmax = cls[0];
        for (int i = 1; i < n; i++) {
            cmin = cls[i] < cmin ? cls[i] : cmin;
            cmax = cls[i] > cmax ? cls[i] : cmax;
        }
        int ncls = cmax - cmin + 1;
        ALLOCB(cnt, (size_t)ncls * sizeof(int));
        ALLOCB(off, (size_t)(ncls + 1) * sizeof(int));
        ALLOCB(nkc, (size_t)ncls * sizeof(int));
        memset(cnt, 0, (size_t)ncls * sizeof(int));
        for (int i = 0; i < n; i++)
            cnt[cls[i] - cmin]++;
        off[0] = 0;
        for (int c = 0; c < ncls; c++)
            off[c + 1] = off[c] + cnt[c];
        memset(cnt, 0, (size_t)ncls * sizeof(int));
        for (int i = 0; i < n; i++) {
            int c = cls[i] - cmin, q = off[c] + cnt[c]++;
            sub_idx[q] = i;
            memcpy(sb + 4 * q, boxes + 4 * i, 4 * sizeof(float));
            ss[q] = scores[i];
        }
        nms_job nj = {sb, ss, off, nkc, sub_keep, order, tmp, sup, area, thr};
        cx_pool_run(s->pool, ncls, nms_task, &nj);
        for (int c = 0; c < ncls; c++)
            for (int k = 0; k < nkc[c]; k++)
                kmask[sub_idx[off[c] + sub_keep[off[c] + k]]] = 1;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (kmask[i])
                keep[m++] = i;
        sort_desc(keep, tmp, m, scores);
        *nkeep = m;
    } else {
        float mx = boxes[0];
        for (int i = 1; i < 4 * n; i++)
            mx = boxes[i] > mx ? boxes[i] : mx;
        for (int i = 0; i < n; i++) {
            float off = (float)cls[i] * (mx + 1.0f);
            for (int k = 0; k < 4; k++)
                sb[4 * i + k] = boxes[4 * i + k] + off;
        }
        *nkeep = nms(sb, scores, n, thr, keep, order, tmp, sup, area);
    }
fail:
    arena_release(s, mk);
    return st;
}

/* ---------------------------------------------------------------- RoIAlign */

typedef struct roi_job {
    const float *feat[4];
    int fh[4], fw[4];
    float scale[4];
    const int *level;
    const float *boxes;
    int C, P;          /* channels, output size */
    float *out, *acc;      /* acc: P*P*C floats per pool thread */
    size_t roi_stride, ch_stride;
    int n;
} roi_job;

/* torchvision roi_align CPU kernel, aligned=False, sampling_ratio=2, for one RoI, reading a
 * channels-last level (feat[(y * W + x) * C + c]) so each bilinear tap is a contiguous run of C floats.
 * Per channel the arithmetic is the kernel's, in its order: per sample w1*v1 + w2*v2 + w3*v3 + w4*v4
 * added to the bin's sum, then divided by the sample count. acc: P*P*C floats. */
static void roi_align_one(const float *feat, int C, int H, int W, float scale, const float *box, int P,
                          float *out, size_t ch_stride, float *acc)
{
    enum { G = 2 };
    float rsw = box[0] * scale, rsh = box[1] * scale, rew = box[2] * scale, reh = box[3] * scale;
    float rw = fmaxf(rew - rsw, 1.0f), rh = fmaxf(reh - rsh, 1.0f);
    float bw = rw / (float)P, bh = rh / (float)P;
    const float count = (float)(G * G);
    for (int ph = 0; ph < P; ph++)
        for (int pw = 0; pw < P; pw++) {
            float *restrict v = acc + (size_t)(ph * P + pw) * C;
            memset(v, 0, sizeof(float) * (size_t)C);
            for (int iy = 0; iy < G; iy++) {
                float y = rsh + (float)ph * bh + (float)(iy + .5f) * bh / (float)G;
                for (int ix = 0; ix < G; ix++) {
                    float x = rsw + (float)pw * bw + (float)(ix + .5f) * bw / (float)G;
                    /* written so that a NaN coordinate also lands here (never an index) */
                    if (!(y >= -1.0f && y <= (float)H && x >= -1.0f && x <= (float)W))
                        continue;
                    float yy = y <= 0 ? 0 : y, xx = x <= 0 ? 0 : x;
                    int yl = (int)yy, xl = (int)xx, yh, xh;
                    if (yl >= H - 1) {
                        yh = yl = H - 1;
                        yy = (float)yl;
                    } else
                        yh = yl + 1;
                    if (xl >= W - 1) {
                        xh = xl = W - 1;
                        xx = (float)xl;
                    } else
                        xh = xl + 1;
                    float ly = yy - (float)yl, lx = xx - (float)xl, hy = 1.0f - ly, hx = 1.0f - lx;
                    float w1 = hy * hx, w2 = hy * lx, w3 = ly * hx, w4 = ly * lx;
                    const float *restrict f1 = feat + ((size_t)yl * W + xl) * C;
                    const float *restrict f2 = feat + ((size_t)yl * W + xh) * C;
                    const float *restrict f3 = feat + ((size_t)yh * W + xl) * C;
                    const float *restrict f4 = feat + ((size_t)yh * W + xh) * C;
                    for (int c = 0; c < C; c++)
                        v[c] += w1 * f1[c] + w2 * f2[c] + w3 * f3[c] + w4 * f4[c];
                }
            }
        }
    for (int c = 0; c < C; c++) {
        float *o = out + (size_t)c * ch_stride;
        for (int b = 0; b < P * P; b++)
            o[b] = acc[(size_t)b * C + c] / count;
    }
}

static void roi_task(void *ctx, int t)
{
    const roi_job *j = ctx;
    int l = j->level[t];
    roi_align_one(j->feat[l], j->C, j->fh[l], j->fw[l], j->scale[l], j->boxes + 4 * t, j->P,
                  j->out + (size_t)t * j->roi_stride, j->ch_stride,
                  j->acc + (size_t)cx_pool_slot() * j->P * j->P * j->C);
}

/* [C][H][W] -> [H][W][C], rows of the output split over the pool. */
typedef struct tr_job {
    const float *in;
    float *out;
    int C, H, W, n_tasks;
} tr_job;

static void transpose_task(void *ctx, int t)
{
    const tr_job *j = ctx;
    int y0, y1;
    cx_pool_range(j->H, t, j->n_tasks, &y0, &y1);
    size_t HW = (size_t)j->H * j->W;
    enum { CB = 16 };
    for (int y = y0; y < y1; y++)
        for (int c0 = 0; c0 < j->C; c0 += CB) {
            int c1 = c0 + CB < j->C ? c0 + CB : j->C;
            for (int x = 0; x < j->W; x++) {
                float *o = j->out + ((size_t)y * j->W + x) * j->C;
                const float *in = j->in + (size_t)y * j->W + x;
                for (int c = c0; c < c1; c++)
                    o[c] = in[(size_t)c * HW];
            }
        }
}

static void to_channels_last(cx_pool *pool, const float *in, int C, int H, int W, float *out)
{
    int nt = cx_pool_threads(pool) * 4;
    tr_job j = {in, out, C, H, W, nt < H ? nt : H};
    if (j.n_tasks > 0)
        cx_pool_run(pool, j.n_tasks, transpose_task, &j);
}

/* poolers.LevelMapper: k0 = 4, canonical size 224, eps 1e-6, in float32. */
static void map_levels(const float *boxes, int n, int kmin, int kmax, int *level)
{
    for (int i = 0; i < n; i++) {
        const float *b = boxes + 4 * i;
        float sq = sqrtf((b[2] - b[0]) * (b[3] - b[1]));
        float t = 4.0f + log2f(sq / 224.0f);
        t = floorf(t + 1e-6f);
        t = t < (float)kmin ? (float)kmin : (t > (float)kmax ? (float)kmax : t);
        level[i] = (int)t - kmin;
    }
}

static void multiscale_roi_align(cx_mrcnn *s, const float *boxes, const int *level, int n, int P, float *out,
                                 size_t roi_stride, size_t ch_stride, float *acc)
{
    roi_job j;
    for (int l = 0; l < 4; l++) {
        j.feat[l] = s->fpnt[l];
        j.fh[l] = s->fh[l];
        j.fw[l] = s->fw[l];
        /* poolers._infer_scale: 2 ** round(log2(feature height / image height)) */
        float approx = (float)((double)s->fh[l] / (double)s->rh);
        j.scale[l] = ldexpf(1.0f, (int)rintf(log2f(approx)));
    }
    j.level = level;
    j.boxes = boxes;
    j.C = s->m->arch.fpn_channels;
    j.P = P;
    j.out = out;
    j.acc = acc;
    j.roi_stride = roi_stride;
    j.ch_stride = ch_stride;
    j.n = n;
    cx_pool_run(s->pool, n, roi_task, &j);
}

static void level_range(const cx_mrcnn *s, int *kmin, int *kmax)
{
    float a0 = (float)((double)s->fh[0] / (double)s->rh), a3 = (float)((double)s->fh[3] / (double)s->rh);
    *kmin = -(int)rintf(log2f(a0));
    *kmax = -(int)rintf(log2f(a3));
}

/* ---------------------------------------------------------------- paste */

typedef struct paste_job {
    const float *prob;      /* [D][M][M] */
    const float *boxes;     /* [D][4] in output pixels */
    cx_detection *det;
    const float *thr;       /* [D] */
    int M, out_h, out_w;
    int *cols;              /* per thread: 2 * out_w column indices ... */
    float *colw;            /* ... and their weights */
    float *pad;             /* per thread: the (M+2)^2 padded mask */
} paste_job;

/* Box geometry of paste_masks_in_image: expand by (M+2)/M, truncate to int64, clip. */
static void paste_geometry(const float *b, int M, int out_h, int out_w, long long ib[4], int *x0, int *y0,
                           int *x1, int *y1)
{
    float scale = (float)((double)(M + 2) / M);
    float wh = (b[2] - b[0]) * 0.5f, hh = (b[3] - b[1]) * 0.5f;
    float xc = (b[2] + b[0]) * 0.5f, yc = (b[3] + b[1]) * 0.5f;
    wh *= scale;
    hh *= scale;
    ib[0] = (long long)(xc - wh);
    ib[2] = (long long)(xc + wh);
    ib[1] = (long long)(yc - hh);
    ib[3] = (long long)(yc + hh);
    long long a = ib[0] > 0 ? ib[0] : 0, c = ib[2] + 1 < out_w ? ib[2] + 1 : out_w;
    long long bq = ib[1] > 0 ? ib[1] : 0, d = ib[3] + 1 < out_h ? ib[3] + 1 : out_h;
    *x0 = (int)a;
    *x1 = (int)(c > a ? c : a);
    *y0 = (int)bq;
    *y1 = (int)(d > bq ? d : bq);
}

static void paste_task(void *ctx, int t)
{
    const paste_job *j = ctx;
    cx_detection *d = &j->det[t];
    if (!d->mask_w || !d->mask_h)
        return;
    int M = j->M, MP = M + 2;
    long long ib[4];
    int x0, y0, x1, y1;
    paste_geometry(j->boxes + 4 * t, M, j->out_h, j->out_w, ib, &x0, &y0, &x1, &y1);
    long long w = ib[2] - ib[0] + 1, h = ib[3] - ib[1] + 1;
    w = w > 1 ? w : 1;
    h = h > 1 ? h : 1;
    /* The padded (M+2)^2 mask, bilinearly resized to h x w (align_corners=False), read only inside
     * the clipped box. */
    float *pad = j->pad + (size_t)cx_pool_slot() * MP * MP;
    const float *p = j->prob + (size_t)t * M * M;
    memset(pad, 0, sizeof(float) * MP * MP);
    for (int y = 0; y < M; y++)
        memcpy(pad + (y + 1) * MP + 1, p + y * M, sizeof(float) * M);
    float sy = (float)MP / (float)h, sx = (float)MP / (float)w, thr = j->thr[t];
    /* the column taps are the same on every row: computed once, in the output row's space */
    int *bi = j->cols + (size_t)cx_pool_slot() * 2 * j->out_w;
    float *bl = j->colw + (size_t)cx_pool_slot() * 2 * j->out_w;
    for (int X = x0; X < x1; X++)
        cx_bilinear_index((int)(X - ib[0]), MP, sx, &bi[2 * (X - x0)], &bi[2 * (X - x0) + 1], &bl[2 * (X - x0)],
                &bl[2 * (X - x0) + 1]);
    for (int Y = y0; Y < y1; Y++) {
        int a0, a1;
        float la0, la1;
        cx_bilinear_index((int)(Y - ib[1]), MP, sy, &a0, &a1, &la0, &la1);
        uint8_t *row = d->mask + (size_t)(Y - y0) * d->mask_w;
        const float *r0 = pad + a0 * MP, *r1 = pad + a1 * MP;
        for (int q = 0; q < x1 - x0; q++) {
            int b0 = bi[2 * q], b1 = bi[2 * q + 1];
            float lb0 = bl[2 * q], lb1 = bl[2 * q + 1];
            /* a (1, 1, M+2, M+2) tensor: PyTorch's channels-last bilinear kernel */
            float v = r0[b0] * (la0 * lb0) + r0[b1] * (la0 * lb1) + r1[b0] * (la1 * lb0) + r1[b1] * (la1 * lb1);
            row[q] = v > thr;
        }
    }
}

/* ---------------------------------------------------------------- forward */

typedef struct shape {
    int c, h, w;
} shape;

/* One residual block. The last conv accumulates into the identity held in out (GEMM beta 1), so
 * there is no separate pass adding the shortcut: out is the downsample's result when the block has
 * one; otherwise the identity itself, so out may be in (the block runs in place) or a copy is made. */
static cx_status run_block(cx_mrcnn *s, const mr_block *B, int bottleneck, const float *in, shape si, float *out,
                           shape *so, cx_error *err)
{
    cx_status st = CX_OK;
    mark mk = arena_mark(s);
    const cx_conv *mid = bottleneck ? &B->c2 : &B->c1;
    int oh = cx_conv_out(si.h, mid->kh, mid->stride, mid->pad, 1), ow = cx_conv_out(si.w, mid->kw, mid->stride, mid->pad, 1);
    const cx_conv *last = bottleneck ? &B->c3 : &B->c2;
    float *t1, *t2;
    if (B->has_down)
        TRY(conv(s, &B->down, in, 1, si.h, si.w, out, NULL, 0, err));
    else if (out != in)
        memcpy(out, in, sizeof(float) * (size_t)si.c * si.h * si.w);
    if (bottleneck) {
        ALLOCF(t1, (size_t)B->c1.cout * si.h * si.w);
        TRY(conv(s, &B->c1, in, 1, si.h, si.w, t1, NULL, 1, err));
        ALLOCF(t2, (size_t)B->c2.cout * oh * ow);
        TRY(conv(s, &B->c2, t1, 1, si.h, si.w, t2, NULL, 1, err));
    } else {
        ALLOCF(t2, (size_t)B->c1.cout * oh * ow);
        TRY(conv(s, &B->c1, in, 1, si.h, si.w, t2, NULL, 1, err));
    }
    TRY(conv(s, last, t2, 1, oh, ow, out, out, 1, err));
    *so = (shape){last->cout, oh, ow};
fail:
    arena_release(s, mk);
    return st;
}

static cx_status backbone_fpn(cx_mrcnn *s, const float *x, int Hp, int Wp, cx_error *err)
{
    const cx_model *m = s->m;
    cx_status st = CX_OK;
    int C = m->arch.fpn_channels, e = m->bottleneck ? 4 : 1;
    /* sizes */
    int h1 = cx_conv_out(Hp, 7, 2, 3, 1), w1 = cx_conv_out(Wp, 7, 2, 3, 1);
    int hs[4], ws[4];
    hs[0] = cx_conv_out(h1, 3, 2, 1, 1);
    ws[0] = cx_conv_out(w1, 3, 2, 1, 1);
    for (int l = 1; l < 4; l++) {
        hs[l] = cx_conv_out(hs[l - 1], 3, 2, 1, 1);
        ws[l] = cx_conv_out(ws[l - 1], 3, 2, 1, 1);
    }
    for (int l = 0; l < 4; l++) {
        s->fh[l] = hs[l];
        s->fw[l] = ws[l];
        ALLOCF(s->fpn[l], (size_t)C * hs[l] * ws[l]);
    }
    s->fh[4] = cx_conv_out(hs[3], 1, 2, 0, 1);
    s->fw[4] = cx_conv_out(ws[3], 1, 2, 0, 1);
    ALLOCF(s->fpn[4], (size_t)C * s->fh[4] * s->fw[4]);
    mark m0 = arena_mark(s);
    float *cl[4];
    for (int l = 0; l < 4; l++)
        ALLOCF(cl[l], (size_t)(m->width << l) * e * hs[l] * ws[l]);
    mark m1 = arena_mark(s);
    float *stem, *pool;
    ALLOCF(pool, (size_t)m->width * hs[0] * ws[0]);
    {
        mark ms = arena_mark(s);   /* the stem output is the largest map: free it before layer1 */
        float *prow;
        ALLOCF(stem, (size_t)m->width * h1 * w1);
        ALLOCF(prow, (size_t)cx_pool_threads(s->pool) * w1);
        TRY(conv(s, &m->conv1, x, 1, Hp, Wp, stem, NULL, 1, err));
        cx_maxpool2d(s->pool, stem, m->width, h1, w1, 3, 2, 1, pool, hs[0], ws[0], prow);
        arena_release(s, ms);
    }
    const float *in = pool;
    shape si = {m->width, hs[0], ws[0]};
    for (int l = 0; l < 4; l++) {
        /* every block of the layer writes cl[l]: the first from the previous layer, the rest in place */
        for (int b = 0; b < m->nblocks[l]; b++) {
            shape so = si;
            TRY(run_block(s, &m->blocks[l][b], m->bottleneck, in, si, cl[l], &so, err));
            in = cl[l];
            si = so;
        }
        if (l == 0)
            arena_release(s, m1);
    }
    if (m->image_head) {
        /* image head: the mean of each C5 channel over the padded map, then one linear unit */
        size_t C5 = (size_t)(m->width << 3) * e, hw = (size_t)hs[3] * ws[3];
        double acc = m->image_b[0];
        for (size_t c = 0; c < C5; c++) {
            const float *p = cl[3] + c * hw;
            double sum = 0;
            for (size_t i = 0; i < hw; i++)
                sum += p[i];
            acc += (double)m->image_w[c] * (sum / (double)hw);
        }
        s->image_logit = acc;
    }
    /* FPN top-down */
    float *last;
    ALLOCF(last, (size_t)C * hs[3] * ws[3]);
    TRY(conv(s, &m->fpn_inner[3], cl[3], 1, hs[3], ws[3], last, NULL, 0, err));
    TRY(conv(s, &m->fpn_layer[3], last, 1, hs[3], ws[3], s->fpn[3], NULL, 0, err));
    for (int l = 2; l >= 0; l--) {
        float *lat;
        ALLOCF(lat, (size_t)C * hs[l] * ws[l]);
        TRY(conv(s, &m->fpn_inner[l], cl[l], 1, hs[l], ws[l], lat, NULL, 0, err));
        cx_upsample_nearest_add(s->pool, lat, C, hs[l], ws[l], last, hs[l + 1], ws[l + 1]);
        TRY(conv(s, &m->fpn_layer[l], lat, 1, hs[l], ws[l], s->fpn[l], NULL, 0, err));
        last = lat;
    }
    /* LastLevelMaxPool: max_pool2d(P5, kernel 1, stride 2) */
    cx_maxpool2d(s->pool, s->fpn[3], C, hs[3], ws[3], 1, 2, 0, s->fpn[4], s->fh[4], s->fw[4], NULL);
    arena_release(s, m0);
fail:
    return st;
}

/* RPN head + AnchorGenerator + RegionProposalNetwork.filter_proposals. Leaves s->props/nprops
 * (allocated from the arena by the caller's frame). */
static cx_status rpn(cx_mrcnn *s, int Hp, int Wp, cx_error *err)
{
    const cx_model *m = s->m;
    cx_status st = CX_OK;
    int A = m->A, C = m->arch.fpn_channels;
    size_t ntot = 0, ktot = 0;
    int kl[MR_LEVELS];
    for (int l = 0; l < MR_LEVELS; l++) {
        size_t n = (size_t)A * s->fh[l] * s->fw[l];
        kl[l] = n < (size_t)m->pre_nms ? (int)n : m->pre_nms;
        ntot += n;
        ktot += (size_t)kl[l];
    }
    float *props;
    ALLOCF(props, ktot * 4);    /* final proposals land here (kept after release) */
    mark mk = arena_mark(s);
    float *cb, *cs;
    int *clv, *idx, *tmp;
    ALLOCF(cb, ktot * 4);
    ALLOCF(cs, ktot);
    ALLOCB(clv, ktot * sizeof(int));
    size_t maxn = 0;
    for (int l = 0; l < MR_LEVELS; l++) {
        size_t n = (size_t)A * s->fh[l] * s->fw[l];
        maxn = n > maxn ? n : maxn;
    }
    ALLOCB(idx, maxn * sizeof(int));
    ALLOCB(tmp, maxn * sizeof(int));
    float *obj;
    ALLOCF(obj, maxn);
    int nc = 0;
    const float clip = (float)log(1000.0 / 16);
    for (int l = 0; l < MR_LEVELS; l++) {
        mark ml = arena_mark(s);
        int H = s->fh[l], W = s->fw[l];
        size_t HW = (size_t)H * W;
        float *t, *hd;
        ALLOCF(t, (size_t)C * HW);
        ALLOCF(hd, (size_t)5 * A * HW);
        TRY(conv(s, &m->rpn_conv, s->fpn[l], 1, H, W, t, NULL, 1, err));
        TRY(conv(s, &m->rpn_head, t, 1, H, W, hd, NULL, 0, err));
        int n = (int)(A * HW);
        for (int i = 0; i < n; i++) {
            obj[i] = hd[(size_t)(i % A) * HW + i / A];
            idx[i] = i;
        }
        sort_desc(idx, tmp, n, obj);   /* topk(pre_nms_top_n), sorted */
        int sh = Hp / H, sw = Wp / W;
        for (int k = 0; k < kl[l]; k++) {
            int i = idx[k], a = i % A, pos = i / A, y = pos / W, x = pos % W;
            const float *ba = m->base_anchors[l][a];
            float ax1 = (float)(x * sw) + ba[0], ay1 = (float)(y * sh) + ba[1];
            float ax2 = (float)(x * sw) + ba[2], ay2 = (float)(y * sh) + ba[3];
            const float *d = hd + (size_t)(A + 4 * a) * HW + pos;
            /* BoxCoder.decode_single, weights (1, 1, 1, 1) */
            float wd = ax2 - ax1, ht = ay2 - ay1, cx = ax1 + 0.5f * wd, cy = ay1 + 0.5f * ht;
            float dx = d[0] / 1.0f, dy = d[HW] / 1.0f, dw = d[2 * HW] / 1.0f, dh = d[3 * HW] / 1.0f;
            dw = fminf(dw, clip);
            dh = fminf(dh, clip);
            float pcx = dx * wd + cx, pcy = dy * ht + cy, pw = expf(dw) * wd, ph = expf(dh) * ht;
            float hw2 = 0.5f * pw, hh2 = 0.5f * ph;
            float x1 = pcx - hw2, y1 = pcy - hh2, x2 = pcx + hw2, y2 = pcy + hh2;
            /* clip_boxes_to_image (resized, unpadded size) */
            x1 = fminf(fmaxf(x1, 0.0f), (float)s->rw);
            x2 = fminf(fmaxf(x2, 0.0f), (float)s->rw);
            y1 = fminf(fmaxf(y1, 0.0f), (float)s->rh);
            y2 = fminf(fmaxf(y2, 0.0f), (float)s->rh);
            float sc = cx_sigmoidf(obj[i]);
            if (!(x2 - x1 >= 1e-3f && y2 - y1 >= 1e-3f))   /* remove_small_boxes */
                continue;
            if (!(sc >= m->rpn_score))
                continue;
            cb[4 * nc] = x1;
            cb[4 * nc + 1] = y1;
            cb[4 * nc + 2] = x2;
            cb[4 * nc + 3] = y2;
            cs[nc] = sc;
            clv[nc++] = l;
        }
        arena_release(s, ml);
    }
    int *keep, nk;
    ALLOCB(keep, (size_t)(nc ? nc : 1) * sizeof(int));
    TRY(batched_nms(s, cb, cs, clv, nc, m->rpn_nms, keep, &nk, err));
    if (nk > m->post_nms)
        nk = m->post_nms;
    for (int i = 0; i < nk; i++)
        memcpy(props + 4 * i, cb + 4 * keep[i], 4 * sizeof(float));
    s->props = props;
    s->nprops = nk;
    arena_release(s, mk);
fail:
    return st;
}

/* GeneralizedRCNNTransform: normalise, resize by torchvision's rule (min_size / max_size), pad to a
 * multiple of 32. *x (arena) receives in_channels x Hp x Wp; s->rh/rw the resized size. */
static cx_status transform_input(cx_mrcnn *s, const float *img, int h, int w, float **x_out, int *Hp_out,
                                 int *Wp_out, cx_error *err)
{
    cx_status st = CX_OK;
    const cx_model *m = s->m;
    int IC = m->arch.in_channels;
    float mn = (float)(h < w ? h : w), mx = (float)(h > w ? h : w);
    float s1 = (float)m->arch.min_size / mn, s2 = (float)m->arch.max_size / mx;
    float sc = s1 < s2 ? s1 : s2;
    int rh = (int)floor((double)h * (double)sc), rw = (int)floor((double)w * (double)sc);
    if (rh < 1 || rw < 1 || rh > 16384 || rw > 16384)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "image %d x %d resizes to %d x %d", w, h, rw, rh);
    s->rh = rh;
    s->rw = rw;
    int Hp = (int)(ceil((double)rh / 32.0) * 32), Wp = (int)(ceil((double)rw / 32.0) * 32);
    float *x, *norm, *rs = NULL;
    ALLOCF(x, (size_t)IC * Hp * Wp);
    memset(x, 0, sizeof(float) * IC * Hp * Wp);
    mark mk = arena_mark(s);
    ALLOCF(norm, (size_t)h * w);
    if (rh != h || rw != w)
        ALLOCF(rs, (size_t)rh * rw);
    for (int c = 0; c < IC; c++) {
        for (size_t i = 0; i < (size_t)h * w; i++)
            norm[i] = (img[i] - m->mean[c]) / m->std[c];
        const float *src = norm;
        if (rs) {
            cx_resize_bilinear(norm, h, w, rs, rh, rw, IC == 1);
            src = rs;
        }
        for (int y = 0; y < rh; y++)
            memcpy(x + ((size_t)c * Hp + y) * Wp, src + (size_t)y * rw, sizeof(float) * rw);
    }
    arena_release(s, mk);
    *x_out = x;
    *Hp_out = Hp;
    *Wp_out = Wp;
    return CX_OK;
fail:
    return st;
}

/* The box head's detections (resized-image coordinates, sorted by score) and what the mask head
 * shares with it. */
typedef struct box_dets {
    int n;
    float *box, *score;
    int *label;
    float *racc; /* RoIAlign's accumulator: P x P x C per thread (P = the mask head's pool, >= 7) */
    int kmin, kmax;
} box_dets;

/* roi_heads.postprocess_detections for one proposal's row of class scores and box deltas: softmax,
 * decode against the proposal, clip to the resized image, drop low scores and tiny boxes. Appends
 * to the candidate arrays at *nc. */
static void decode_candidates(const cx_mrcnn *s, float *row, const float *pb, float *cand_b, float *cand_s,
                              int *cand_l, int *nc)
{
    const cx_model *m = s->m;
    const int K1 = m->arch.num_classes;
    const float clip = (float)log(1000.0 / 16), rw = (float)s->rw, rh = (float)s->rh;
    cx_softmax_rows(row, 1, K1);
    float wd = pb[2] - pb[0], ht = pb[3] - pb[1], cx = pb[0] + 0.5f * wd, cy = pb[1] + 0.5f * ht;
    for (int k = 1; k < K1; k++) {
        const float *d = row + K1 + 4 * k;
        float dx = d[0] / m->bbox_w[0], dy = d[1] / m->bbox_w[1];
        float dw = fminf(d[2] / m->bbox_w[2], clip), dh = fminf(d[3] / m->bbox_w[3], clip);
        float pcx = dx * wd + cx, pcy = dy * ht + cy, pw = expf(dw) * wd, ph = expf(dh) * ht;
        float hw2 = 0.5f * pw, hh2 = 0.5f * ph;
        float x1 = fminf(fmaxf(pcx - hw2, 0.0f), rw), x2 = fminf(fmaxf(pcx + hw2, 0.0f), rw);
        float y1 = fminf(fmaxf(pcy - hh2, 0.0f), rh), y2 = fminf(fmaxf(pcy + hh2, 0.0f), rh);
        float score = row[k];
        if (!(score > m->box_score) || !(x2 - x1 >= 1e-2f && y2 - y1 >= 1e-2f))
            continue;
        float *o = cand_b + 4 * *nc;
        o[0] = x1, o[1] = y1, o[2] = x2, o[3] = y2;
        cand_s[*nc] = score;
        cand_l[(*nc)++] = k;
    }
}

/* Box branch: RoIAlign 7 x 7 of the proposals, TwoMLPHead, predictor, decode, per-class NMS, top
 * detections_per_img. Leaves P2..P5 channels-last in s->fpnt for the mask branch. */
static cx_status box_head(cx_mrcnn *s, box_dets *bd, cx_error *err)
{
    cx_status st = CX_OK;
    const cx_model *m = s->m;
    int C = m->arch.fpn_channels, K1 = m->arch.num_classes, R = m->rep, P = s->nprops;
    memset(bd, 0, sizeof *bd);
    level_range(s, &bd->kmin, &bd->kmax);
    if (P <= 0)
        return CX_OK;
    float *feat, *f6, *f7, *pred, *cand_b, *cand_s;
    int *lv, *cand_l, *keep, nk, nc = 0;
    /* P2..P5 channels-last for RoIAlign; kept for the mask branch too (before the mark below) */
    for (int l = 0; l < 4; l++) {
        ALLOCF(s->fpnt[l], (size_t)C * s->fh[l] * s->fw[l]);
        to_channels_last(s->pool, s->fpn[l], C, s->fh[l], s->fw[l], s->fpnt[l]);
    }
    int pool = m->mask_pool > 7 ? m->mask_pool : 7; /* the larger of the mask and box RoIAligns */
    ALLOCF(bd->racc, (size_t)cx_pool_threads(s->pool) * pool * pool * C);
    ALLOCB(bd->box, (size_t)m->arch.detections_per_img * 4 * sizeof(float));
    ALLOCF(bd->score, m->arch.detections_per_img);
    ALLOCB(bd->label, (size_t)m->arch.detections_per_img * sizeof(int));
    mark mk = arena_mark(s);
    /* RoIs go through RoIAlign and the two FC layers BOX_CHUNK at a time: the pooled features
     * of 1000 proposals would otherwise be the largest buffer of the whole run. */
    enum { BOX_CHUNK = 256 };
    int ch = P < BOX_CHUNK ? P : BOX_CHUNK;
    ALLOCB(lv, (size_t)P * sizeof(int));
    ALLOCF(feat, (size_t)ch * C * 49);
    ALLOCF(f6, (size_t)ch * R);
    ALLOCF(f7, (size_t)ch * R);
    ALLOCF(pred, (size_t)P * 5 * K1);
    map_levels(s->props, P, bd->kmin, bd->kmax, lv);
    for (int p0 = 0; p0 < P; p0 += ch) {
        int n = P - p0 < ch ? P - p0 : ch;
        multiscale_roi_align(s, s->props + 4 * p0, lv + p0, n, 7, feat, (size_t)C * 49, 49, bd->racc);
        cx_linear(s->pool, feat, n, C * 49, m->fc6_w, m->fc6_b, R, f6, 1);
        cx_linear(s->pool, f6, n, R, m->fc7_w, m->fc7_b, R, f7, 1);
        cx_linear(s->pool, f7, n, R, m->pred_w, m->pred_b, 5 * K1, pred + (size_t)p0 * 5 * K1, 0);
    }
    size_t ncand = (size_t)P * (K1 - 1);
    ALLOCF(cand_b, ncand * 4);
    ALLOCF(cand_s, ncand);
    ALLOCB(cand_l, ncand * sizeof(int));
    ALLOCB(keep, ncand * sizeof(int));
    for (int i = 0; i < P; i++)
        decode_candidates(s, pred + (size_t)i * 5 * K1, s->props + 4 * i, cand_b, cand_s, cand_l, &nc);
    TRY(batched_nms(s, cand_b, cand_s, cand_l, nc, m->box_nms, keep, &nk, err));
    bd->n = nk < m->arch.detections_per_img ? nk : m->arch.detections_per_img;
    for (int i = 0; i < bd->n; i++) {
        memcpy(bd->box + 4 * i, cand_b + 4 * keep[i], 4 * sizeof(float));
        bd->score[i] = cand_s[keep[i]];
        bd->label[i] = cand_l[keep[i]];
    }
    arena_release(s, mk);
    return CX_OK;
fail:
    return st;
}

/* The mask head's M x M probabilities of the first dm detections (prob: D x M^2; M = 2P, 28 for
 * torchvision's P = 14): RoIAlign P x P, the conv stack, the deconvolution and the logits conv,
 * MASK_CHUNK detections at a time (channel-major [C][n][P][P] so each conv is one GEMM per chunk;
 * 100 detections at once would need ~200 MB of activations at P = 14). */
static cx_status mask_probs(cx_mrcnn *s, const box_dets *bd, int dm, float *prob, cx_error *err)
{
    cx_status st = CX_OK;
    const cx_model *m = s->m;
    enum { MASK_CHUNK = 32 };
    int C = m->arch.fpn_channels, K1 = m->arch.num_classes;
    const int P = m->mask_pool, M = 2 * P;
    const size_t PP = (size_t)P * P, MM = (size_t)M * M;
    int ch = dm < MASK_CHUNK ? dm : MASK_CHUNK;
    if (ch < 1)
        ch = 1;
    int *lv;
    ALLOCB(lv, (size_t)bd->n * sizeof(int));
    size_t maxc = (size_t)C;
    for (int i = 0; i < m->n_mask_layers; i++)
        maxc = (size_t)m->mask_conv[i].cout > maxc ? (size_t)m->mask_conv[i].cout : maxc;
    float *up, *lg, *scr, *abuf, *bbuf;
    int cin = m->n_mask_layers ? m->mask_conv[m->n_mask_layers - 1].cout : C;
    ALLOCF(abuf, maxc * ch * PP);
    ALLOCF(bbuf, maxc * ch * PP);
    ALLOCF(up, (size_t)m->mask_dim * ch * MM);
    ALLOCF(scr, (size_t)4 * m->mask_dim * ch * PP);
    ALLOCF(lg, (size_t)K1 * ch * MM);
    map_levels(bd->box, dm, bd->kmin, bd->kmax, lv);
    for (int d0 = 0; d0 < dm; d0 += ch) {
        int n = dm - d0 < ch ? dm - d0 : ch;
        float *a = abuf, *b = bbuf;
        multiscale_roi_align(s, bd->box + 4 * d0, lv + d0, n, P, a, PP, (size_t)n * PP, bd->racc);
        for (int i = 0; i < m->n_mask_layers; i++) {
            TRY(conv(s, &m->mask_conv[i], a, n, P, P, b, NULL, 1, err));
            float *t = a;
            a = b;
            b = t;
        }
        cx_deconv2x2(s->pool, cin, m->mask_dim, m->deconv_w, m->deconv_b, a, n, P, P, up, 1, scr);
        TRY(conv(s, &m->mask_logits, up, n, M, M, lg, NULL, 0, err));
        for (int i = 0; i < n; i++) { /* maskrcnn_inference: sigmoid of the label's channel */
            const float *src = lg + ((size_t)bd->label[d0 + i] * n + i) * MM;
            for (int q = 0; q < (int)MM; q++)
                prob[(size_t)(d0 + i) * MM + q] = cx_sigmoidf(src[q]);
        }
    }
    return CX_OK;
fail:
    return st;
}

/* Mask branch and output: boxes scaled to out_h x out_w (transform.resize_boxes), each mask pasted
 * there (paste_masks_in_image) and thresholded at its class's mask threshold. Detections below
 * s->mask_min_score (a suffix: they are sorted by score) get no mask. */
static cx_status mask_head(cx_mrcnn *s, const box_dets *bd, int out_h, int out_w, cx_detections *out,
                           cx_error *err)
{
    cx_status st = CX_OK;
    const cx_model *m = s->m;
    const int D = bd->n;
    out->items = cx_calloc((size_t)D, sizeof(cx_detection));
    if (!out->items)
        return cx_error_set(err, CX_ERR_NOMEM, STAGE, "%d detections", D);
    out->capacity = D;
    mark mk = arena_mark(s);
    int DM = 0;
    while (DM < D && bd->score[DM] >= s->mask_min_score)
        DM++;
    float *prob, *obox, *thr;
    const int M = 2 * m->mask_pool;
    ALLOCF(prob, (size_t)D * M * M);
    TRY(mask_probs(s, bd, DM, prob, err));
    ALLOCF(obox, (size_t)D * 4);
    ALLOCF(thr, D);
    float rth = (float)out_h / (float)s->rh, rtw = (float)out_w / (float)s->rw;
    for (int i = 0; i < D; i++) {
        float *ob = obox + 4 * i;
        ob[0] = bd->box[4 * i] * rtw;
        ob[1] = bd->box[4 * i + 1] * rth;
        ob[2] = bd->box[4 * i + 2] * rtw;
        ob[3] = bd->box[4 * i + 3] * rth;
        cx_detection *d = &out->items[i];
        d->label = bd->label[i];
        d->score = bd->score[i];
        memcpy(d->box, ob, sizeof d->box);
        long long ib[4];
        int x0, y0, x1, y1;
        paste_geometry(ob, M, out_h, out_w, ib, &x0, &y0, &x1, &y1);
        d->mask_x0 = x0;
        d->mask_y0 = y0;
        d->mask_w = i < DM ? x1 - x0 : 0;
        d->mask_h = i < DM ? y1 - y0 : 0;
        if (d->mask_w > 0 && d->mask_h > 0) {
            d->mask = cx_malloc((size_t)d->mask_w * d->mask_h);
            if (!d->mask) {
                out->count = i + 1;
                st = cx_error_set(err, CX_ERR_NOMEM, STAGE, "mask of %d x %d", d->mask_w, d->mask_h);
                goto fail;
            }
        } else {
            d->mask_w = d->mask_h = 0;
        }
        thr[i] = m->classes[bd->label[i] - 1].mask_thresh;
        out->count = i + 1;
    }
    int *pcols;
    float *pcolw;
    ALLOCB(pcols, (size_t)cx_pool_threads(s->pool) * 2 * out_w * sizeof(int));
    ALLOCF(pcolw, (size_t)cx_pool_threads(s->pool) * 2 * out_w);
    float *ppad;
    ALLOCF(ppad, (size_t)cx_pool_threads(s->pool) * (M + 2) * (M + 2));
    paste_job pj = {prob, obox, out->items, thr, M, out_h, out_w, pcols, pcolw, ppad};
    cx_pool_run(s->pool, D, paste_task, &pj);
    arena_release(s, mk);
    return CX_OK;
fail:
    return st;
}

cx_status cx_mrcnn_detect(cx_mrcnn *s, const float *img, int h, int w, int out_h, int out_w, cx_detections *out,
                          cx_error *err)
{
    cx_status st = CX_OK;
    if (!s || !img || !out)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "NULL argument");
    if (h < 1 || w < 1 || h > 32768 || w > 32768 || out_h < 1 || out_w < 1 || out_h > 65536 || out_w > 65536)
        return cx_error_set(err, CX_ERR_INVALID, STAGE, "image %d x %d -> %d x %d outside 1..32768", w, h, out_w,
                            out_h);
    cx_detections_clear(out);
    TRY(arena_reset(s, err));
    double t0 = cx_now_ms();
    memset(s->t, 0, sizeof s->t);
    s->props = NULL;
    s->nprops = 0;
    float *x = NULL;
    int Hp = 0, Wp = 0;
    TRY(transform_input(s, img, h, w, &x, &Hp, &Wp, err));
    TRY(backbone_fpn(s, x, Hp, Wp, err));
    double t1 = cx_now_ms();
    s->t[0] = t1 - t0;
    CHECK_CANCEL("the backbone");
    TRY(rpn(s, Hp, Wp, err));
    double t2 = cx_now_ms();
    s->t[1] = t2 - t1;
    CHECK_CANCEL("the RPN");
    box_dets bd;
    TRY(box_head(s, &bd, err));
    double t3 = cx_now_ms();
    s->t[2] = t3 - t2;
    CHECK_CANCEL("the box head");
    if (bd.n > 0)
        TRY(mask_head(s, &bd, out_h, out_w, out, err));
    s->t[3] = cx_now_ms() - t3;
    if (s->m->image_head) {
        out->has_image_prob = 1;
        out->image_prob = (float)(1.0 / (1.0 + exp(-s->image_logit)));
    }
    return CX_OK;
fail:
    cx_detections_clear(out);
    return st;
}

void cx_mrcnn_set_cancel(cx_mrcnn *s, const atomic_int *flag)
{
    s->cancel = flag;
}

void cx_mrcnn_set_mask_min_score(cx_mrcnn *s, float min_score)
{
    s->mask_min_score = min_score > 0 ? min_score : 0;
}

const char *cx_mrcnn_blas_kernel(void)
{
    return cx_nn_blas_corename();
}

const float *cx_mrcnn_debug_fpn(const cx_mrcnn *s, int level, int *c, int *h, int *w)
{
    if (level < 0 || level >= MR_LEVELS || !s->fpn[level])
        return NULL;
    *c = s->m->arch.fpn_channels;
    *h = s->fh[level];
    *w = s->fw[level];
    return s->fpn[level];
}

const float *cx_mrcnn_debug_proposals(const cx_mrcnn *s, int *n)
{
    *n = s->nprops;
    return s->props;
}

void cx_mrcnn_debug_resized(const cx_mrcnn *s, int *h, int *w)
{
    *h = s->rh;
    *w = s->rw;
}

void cx_mrcnn_debug_times(const cx_mrcnn *s, double t[4])
{
    memcpy(t, s->t, sizeof s->t);
}

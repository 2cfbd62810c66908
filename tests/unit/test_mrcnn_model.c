/* Model-file loader: hand-made corruptions of the parity model (truncation, magic, version, shapes,
 * missing/extra tensors, metadata) must each fail with a specific message naming the tensor or key
 * and the numbers; failing every allocation in turn must fail cleanly. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cx_mfile.h"
#include "cx_mrcnn.h"
#include "cx_test.h"

static char src_path[4096];
static unsigned char *orig;
static size_t orig_size;
static char tmp_path[256];

static int load_orig(void)
{
    snprintf(src_path, sizeof src_path, "%s/tests/data/parity_model.cxm", cx_test_srcdir());
    if (orig)
        return 1;
    FILE *f = fopen(src_path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    orig_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    orig = malloc(orig_size);
    if (fread(orig, 1, orig_size, f) != orig_size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    snprintf(tmp_path, sizeof tmp_path, "/tmp/cx_test_model_%d.cxm", (int)getpid());
    return 1;
}

static void put(const void *b, size_t n)
{
    FILE *f = fopen(tmp_path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* Loads tmp_path, expects failure with code and every needle in the message. */
static void expect_fail(cx_status code, const char *n1, const char *n2)
{
    cx_error err = {0};
    cx_model *m = NULL;
    cx_status st = cx_model_load(tmp_path, &m, &err);
    if (st != code || (n1 && !strstr(err.msg, n1)) || (n2 && !strstr(err.msg, n2)))
        fprintf(stderr, "\n    got %d '%s', wanted %d with '%s' '%s'\n", st, err.msg, code, n1 ? n1 : "",
                n2 ? n2 : "");
    CU_ASSERT(st == code);
    CU_ASSERT(m == NULL);
    if (n1)
        CU_ASSERT(strstr(err.msg, n1) != NULL);
    if (n2)
        CU_ASSERT(strstr(err.msg, n2) != NULL);
    cx_model_free(m);
}

/* ---- a minimal container writer, to rebuild the parity model with one thing changed ---- */
typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
} wbuf;

static void wb(wbuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void w32(wbuf *b, uint32_t v) { wb(b, &v, 4); }
static void w64(wbuf *b, uint64_t v) { wb(b, &v, 8); }
static void wstr(wbuf *b, const char *s) { w32(b, (uint32_t)strlen(s)); wb(b, s, strlen(s)); }

typedef struct edit {
    const char *drop_meta;          /* key to leave out */
    const char *int_key;            /* key to write as int int_val instead */
    long long int_val;
    const char *str_key;            /* key to write as a string instead */
    const char *drop_tensor;
    const char *extra_tensor;       /* add a 1-element float tensor with this name */
    const char *reshape_tensor;     /* write with dims reversed */
    const char *add_i64_key;        /* extra metadata: one int and up to two numbers */
    long long add_i64_val;
    const char *add_f64_key[2];
    double add_f64_val[2];
} edit;

static void write_edited(const edit *e)
{
    cx_error err = {0};
    cx_mfile *mf = NULL;
    CU_ASSERT_FATAL(cx_mfile_open(src_path, &mf, &err) == CX_OK);
    wbuf body = {0}, data = {0};
    uint32_t nm = 0, nt = 0;
    for (int i = 0; i < cx_mfile_meta_count(mf); i++) {
        const cx_meta *m = cx_mfile_meta_at(mf, i);
        if (e->drop_meta && !strcmp(m->key, e->drop_meta))
            continue;
        nm++;
        wstr(&body, m->key);
        if (e->int_key && !strcmp(m->key, e->int_key)) {
            w32(&body, CX_META_I64);
            w64(&body, (uint64_t)e->int_val);
            continue;
        }
        if (e->str_key && !strcmp(m->key, e->str_key)) {
            w32(&body, CX_META_STR);
            wstr(&body, "oops");
            continue;
        }
        w32(&body, m->type);
        if (m->type >= CX_META_I64_ARRAY)
            w32(&body, (uint32_t)m->count);
        for (int j = 0; j < m->count; j++) {
            if (m->type == CX_META_STR || m->type == CX_META_STR_ARRAY)
                wstr(&body, m->s[j]);
            else if (m->type == CX_META_I64 || m->type == CX_META_I64_ARRAY)
                w64(&body, (uint64_t)m->i[j]);
            else
                wb(&body, &m->f[j], 8);
        }
    }
    if (e->add_i64_key) {
        nm++;
        wstr(&body, e->add_i64_key);
        w32(&body, CX_META_I64);
        w64(&body, (uint64_t)e->add_i64_val);
    }
    for (int i = 0; i < 2; i++)
        if (e->add_f64_key[i]) {
            nm++;
            wstr(&body, e->add_f64_key[i]);
            w32(&body, CX_META_F64);
            wb(&body, &e->add_f64_val[i], 8);
        }
    static const float one = 1.0f;
    int n = cx_mfile_tensor_count(mf);
    for (int i = 0; i <= n; i++) {
        cx_tensor_ref extra = {0}, *t;
        if (i == n) {
            if (!e->extra_tensor)
                break;
            extra.name = (char *)e->extra_tensor;
            extra.ndim = 1;
            extra.dims[0] = 1;
            extra.nbytes = 4;
            extra.data = &one;
            t = &extra;
        } else {
            t = cx_mfile_tensor_at(mf, i);
        }
        if (e->drop_tensor && !strcmp(t->name, e->drop_tensor))
            continue;
        nt++;
        int rev = e->reshape_tensor && !strcmp(t->name, e->reshape_tensor);
        wstr(&body, t->name);
        w32(&body, t->dtype);
        w32(&body, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            w64(&body, (uint64_t)t->dims[rev ? t->ndim - 1 - d : d]);
        w64(&body, data.n);
        w64(&body, t->nbytes);
        wb(&data, t->data, t->nbytes);
        while (data.n % 64)
            wb(&data, "", 1);
    }
    wbuf out = {0};
    uint64_t doff = (64 + body.n + 63) / 64 * 64;
    wb(&out, "CXSEGMDL", 8);
    w32(&out, 1);
    w32(&out, nm);
    w32(&out, nt);
    w32(&out, 0);
    w64(&out, doff);
    w64(&out, data.n);
    while (out.n < 64)
        wb(&out, "", 1);
    wb(&out, body.p, body.n);
    while (out.n < doff)
        wb(&out, "", 1);
    wb(&out, data.p, data.n);
    put(out.p, out.n);
    free(body.p);
    free(data.p);
    free(out.p);
    cx_mfile_free(mf);
}

static void test_roundtrip_loads(void)
{
    if (!load_orig())
        CU_FAIL_FATAL("parity model missing");
    edit e = {0};
    write_edited(&e);
    cx_error err = {0};
    cx_model *m = NULL;
    CU_ASSERT(cx_model_load(tmp_path, &m, &err) == CX_OK);
    cx_model_free(m);
}

static void test_truncated(void)
{
    CU_ASSERT_FATAL(load_orig());
    put(orig, 30);
    expect_fail(CX_ERR_MODEL, "30 bytes", "header");
    put(orig, orig_size - 1000);
    expect_fail(CX_ERR_MODEL, "truncated", "data bytes");
    put(orig, 200);   /* header intact, tables cut */
    expect_fail(CX_ERR_MODEL, "truncated", NULL);
    put(orig, 0);
    expect_fail(CX_ERR_MODEL, "0 bytes", NULL);
}

static void test_magic_version(void)
{
    CU_ASSERT_FATAL(load_orig());
    unsigned char *c = malloc(orig_size);
    memcpy(c, orig, orig_size);
    c[0] = 'X';
    put(c, orig_size);
    expect_fail(CX_ERR_MODEL, "bad magic", NULL);
    memcpy(c, orig, orig_size);
    c[8] = 2;
    put(c, orig_size);
    expect_fail(CX_ERR_MODEL, "format version 2", "version 1");
    memcpy(c, orig, orig_size);
    c[16] = 0xff, c[17] = 0xff, c[18] = 0xff, c[19] = 0x7f;   /* absurd tensor count */
    put(c, orig_size);
    expect_fail(CX_ERR_MODEL, "tensors", "limit");
    memcpy(c, orig, orig_size);
    c[24] += 1;   /* data offset no longer aligned */
    put(c, orig_size);
    expect_fail(CX_ERR_MODEL, "data offset", NULL);
    free(c);
    cx_error err = {0};
    cx_model *m = NULL;
    CU_ASSERT(cx_model_load("/nonexistent/model.cxm", &m, &err) == CX_ERR_IO);
    CU_ASSERT(strstr(err.msg, "/nonexistent/model.cxm") != NULL);
}

static void test_tensor_errors(void)
{
    CU_ASSERT_FATAL(load_orig());
    edit e = {0};
    e.reshape_tensor = "roi_heads.box_head.fc6.weight";
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "'roi_heads.box_head.fc6.weight' has shape [1568 x 128]", "expected [128 x 1568]");
    e = (edit){0};
    e.drop_tensor = "backbone.body.layer3.0.downsample.0.bias";
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "tensor 'backbone.body.layer3.0.downsample.0.bias' missing", NULL);
    e = (edit){0};
    e.extra_tensor = "backbone.body.bn1.running_mean";
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "unexpected tensor 'backbone.body.bn1.running_mean'", "resnet18");
    /* a tensor whose byte count disagrees with its shape, by patching one dim in place */
    const char *name = "rpn.head.cls_logits.bias";
    unsigned char *c = malloc(orig_size);
    memcpy(c, orig, orig_size);
    unsigned char *p = memmem(c, orig_size, name, strlen(name));
    CU_ASSERT_FATAL(p != NULL);
    p[strlen(name) + 8] = 7;   /* dims[0]: 3 -> 7 */
    put(c, orig_size);
    expect_fail(CX_ERR_MODEL, "'rpn.head.cls_logits.bias': 12 bytes stored, shape needs 28", NULL);
    memcpy(c, orig, orig_size);
    p = memmem(c, orig_size, name, strlen(name));
    p[strlen(name) + 16] = 0x40;   /* offset far beyond the data */
    p[strlen(name) + 22] = 0x01;
    put(c, orig_size);
    expect_fail(CX_ERR_MODEL, "'rpn.head.cls_logits.bias': offset", "beyond data size");
    free(c);
}

static void test_meta_errors(void)
{
    CU_ASSERT_FATAL(load_orig());
    edit e = {0};
    e.drop_meta = "arch.fpn_channels";
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "metadata 'arch.fpn_channels' missing", NULL);
    e = (edit){0};
    e.str_key = "arch.num_classes";
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "'arch.num_classes' is a string, expected an int", NULL);
    e = (edit){0};
    e.int_key = "arch.fpn_channels";
    e.int_val = 0;
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "'arch.fpn_channels' = 0 outside 1..4096", NULL);
    e.int_val = 64;   /* in range, but the weights are 32 wide */
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "'backbone.fpn.inner_blocks.0.0.weight' has shape [32 x 16 x 1 x 1]",
                "expected [64 x 16 x 1 x 1]");
    e = (edit){0};
    e.int_key = "classes.count";
    e.int_val = 2;
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "classes.count = 2 but arch.num_classes = 4", NULL);
    e = (edit){0};
    e.str_key = "arch.backbone";
    write_edited(&e);
    expect_fail(CX_ERR_UNSUPPORTED, "backbone 'oops' not supported", NULL);
    e = (edit){0};
    e.drop_meta = "class.2.code";
    write_edited(&e);
    expect_fail(CX_ERR_MODEL, "metadata 'class.2.code' missing", NULL);
}

/* A detection of `label` whose 4 x 5 box-local mask has `px` pixels set. */
static void det_px(cx_detection *d, int label, float score, int px)
{
    memset(d, 0, sizeof *d);
    d->label = label;
    d->score = score;
    d->mask_w = 4;
    d->mask_h = 5;
    d->mask = calloc(20, 1);
    for (int i = 0; i < px && i < 20; i++)
        d->mask[i] = 1;
}

/* cx_decision_keep: the reporting threshold per class, and the decision class only when the image
 * is present under the rule (decision.class 1, score 0.6, min_area 0.1 of a 10 x 10 image = 10 px). */
static void test_decision_keep(void)
{
    CU_ASSERT_FATAL(load_orig());
    edit e = {0};
    e.add_i64_key = "decision.class";
    e.add_i64_val = 1;
    e.add_f64_key[0] = "decision.score";
    e.add_f64_val[0] = 0.6;
    e.add_f64_key[1] = "decision.min_area";
    e.add_f64_val[1] = 0.1;
    write_edited(&e);
    cx_error err = {0};
    cx_model *m = NULL;
    CU_ASSERT_FATAL(cx_model_load(tmp_path, &m, &err) == CX_OK);
    CU_ASSERT_EQUAL(cx_model_decision(m)->label, 1);
    cx_detection d[5];
    det_px(&d[0], 1, 0.9f, 5);   /* highest class-1 score, but too small for the rule */
    det_px(&d[1], 2, 0.8f, 20);  /* another class: only its threshold matters */
    det_px(&d[2], 1, 0.55f, 12); /* large enough, under the rule's 0.6: image absent */
    det_px(&d[3], 2, 0.2f, 20);  /* under the class threshold */
    det_px(&d[4], 9, 0.99f, 20); /* no such label */
    cx_detections dl = {.count = 5, .items = d, .capacity = 5};
    float thr[5] = {0, 0.5f, 0.5f, 0.5f, 0.5f};
    int keep[5] = {7, 7, 7, 7, 7};
    double s = cx_decision_keep(m, &dl, 10, 10, thr, keep);
    CU_ASSERT_DOUBLE_EQUAL(s, 0.55, 1e-6);
    CU_ASSERT_FALSE(cx_decision_present(m, s));
    CU_ASSERT(keep[0] == 0 && keep[1] == 1 && keep[2] == 0 && keep[3] == 0 && keep[4] == 0);
    d[2].score = 0.7f;           /* now the image is present: both class-1 detections >= 0.5 report */
    s = cx_decision_keep(m, &dl, 10, 10, thr, keep);
    CU_ASSERT_DOUBLE_EQUAL(s, 0.7, 1e-6);
    CU_ASSERT(keep[0] == 1 && keep[1] == 1 && keep[2] == 1 && keep[3] == 0 && keep[4] == 0);
    thr[1] = 0.95f;              /* a caller's override of the class threshold still applies */
    cx_decision_keep(m, &dl, 10, 10, thr, keep);
    CU_ASSERT(keep[0] == 0 && keep[2] == 0 && keep[1] == 1);
    /* NULL thresholds: the model's own per class */
    cx_decision_keep(m, &dl, 10, 10, NULL, keep);
    CU_ASSERT_EQUAL(keep[1], d[1].score >= cx_model_class(m, 2)->score_thresh);
    cx_detections none = {0};
    CU_ASSERT_DOUBLE_EQUAL(cx_decision_keep(m, &none, 10, 10, thr, keep), 0.0, 0);
    for (int i = 0; i < 5; i++)
        free(d[i].mask);
    cx_model_free(m);
}

static void test_alloc_failures(void)
{
    CU_ASSERT_FATAL(load_orig());
    int ok = 0;
    for (unsigned long n = 1; n < 2000 && !ok; n++) {
        cx_error err = {0};
        cx_model *m = NULL;
        cx_alloc_fail_at(n, 1);
        cx_status st = cx_model_load(src_path, &m, &err);
        cx_alloc_fail_at(0, 0);
        if (st == CX_OK) {
            ok = 1;
        } else {
            CU_ASSERT(st == CX_ERR_NOMEM);
            CU_ASSERT(m == NULL);
        }
        cx_model_free(m);
    }
    CU_ASSERT(ok);
}

static void cleanup(void)
{
    if (tmp_path[0])
        remove(tmp_path);
}

/* Integrity digests (export.py writes them; tests/data/decision_model.cxm): the file opens and says
 * so; one byte changed in the tensor data, or in a metadata string, is an error naming the file
 * and both digests; a file without digests still loads (models exported before them). */
static void test_integrity(void)
{
    CU_ASSERT_FATAL(load_orig());
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/decision_model.cxm", cx_test_srcdir());
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n), *c = malloc(n);
    CU_ASSERT_FATAL(b && c && fread(b, 1, n, f) == n);
    fclose(f);
    cx_error err = {0};
    cx_mfile *mf = NULL;
    CU_ASSERT_FATAL(cx_mfile_open(path, &mf, &err) == CX_OK);
    CU_ASSERT(cx_mfile_has_integrity(mf));
    const cx_meta *want = cx_mfile_meta(mf, "integrity.data_sha256");
    CU_ASSERT_FATAL(want != NULL);
    char recorded[65];
    snprintf(recorded, sizeof recorded, "%s", want->s[0]);
    cx_mfile_free(mf);
    memcpy(c, b, n);
    c[n - 200] ^= 0x01;   /* one bit of a weight: the loader cannot see it any other way */
    put(c, n);
    expect_fail(CX_ERR_MODEL, "tensor data digest mismatch", recorded);
    expect_fail(CX_ERR_MODEL, tmp_path, NULL);
    memcpy(c, b, n);
    unsigned char *hit = memmem(c, n, "Right lung", 10);
    CU_ASSERT_FATAL(hit != NULL);
    hit[0] = 'r';         /* a class meaning, still a valid string */
    put(c, n);
    expect_fail(CX_ERR_MODEL, "metadata and tensor table digest mismatch", NULL);
    /* a sweep: one bit flipped at 200 spread positions of the data region and 50 of the metadata
     * (every byte a digest covers), each copy must be refused */
    uint64_t data_off = 0;
    memcpy(&data_off, b + 24, 8);
    CU_ASSERT_FATAL(data_off > 1064 && data_off < n);
    int accepted = 0;
    for (int k = 0; k < 250; k++) {
        size_t at = k < 200 ? (size_t)data_off + (size_t)k * ((n - (size_t)data_off) / 200)
                            : 64 + (size_t)(k - 200) * 20;
        memcpy(c, b, n);
        c[at] ^= (unsigned char)(1u << (k % 8));
        put(c, n);
        cx_model *m = NULL;
        if (cx_model_load(tmp_path, &m, &err) == CX_OK) {
            fprintf(stderr, "\n    bit %d of byte %zu flipped: the model still loads\n", k % 8, at);
            accepted++;
        }
        cx_model_free(m);
    }
    CU_ASSERT_EQUAL(accepted, 0);
    /* the parity model has no digests: it loads, and says it was not checked */
    CU_ASSERT_FATAL(cx_mfile_open(src_path, &mf, &err) == CX_OK);
    CU_ASSERT(!cx_mfile_has_integrity(mf));
    cx_mfile_free(mf);
    free(b);
    free(c);
}

static int suite_cleanup(void)
{
    cleanup();
    return 0;
}

static const cx_test_case cases[] = {
    {"rewritten model loads", test_roundtrip_loads},
    {"truncated files", test_truncated},
    {"magic, version, header fields", test_magic_version},
    {"wrong shape, missing, extra, inconsistent tensors", test_tensor_errors},
    {"metadata errors", test_meta_errors},
    {"decision rule: which detections are reported", test_decision_keep},
    {"every allocation failing in turn", test_alloc_failures},
    {"integrity digests: data and metadata changes are errors", test_integrity},
    {NULL, NULL}};

CX_TEST_MAIN_SUITE("mrcnn_model", NULL, suite_cleanup, cases)

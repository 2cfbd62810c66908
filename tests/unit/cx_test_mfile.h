/* Test support: rewrites a model file (models/FORMAT.md) with some metadata changed, so that a test
 * can make the variant it needs (a key dropped, a value out of range, a class renamed) from a
 * committed fixture. Tensors are copied unchanged. Reads through cx_mfile, so the source must be a
 * valid container. */
#ifndef CX_TEST_MFILE_H
#define CX_TEST_MFILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cx_mfile.h"

/* One change: kind 'd' drops key; 'i', 'f', 's' set it to i, f or s (in place when the key
 * exists, appended otherwise). */
typedef struct cx_test_meta_edit {
    const char *key;
    char kind;
    long long i;
    double f;
    const char *s;
} cx_test_meta_edit;

typedef struct cx_test_wbuf {
    unsigned char *p;
    size_t n, cap;
    int failed;
} cx_test_wbuf;

static inline void cx_test_wb(cx_test_wbuf *b, const void *d, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 1024;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void cx_test_w32(cx_test_wbuf *b, uint32_t v) { cx_test_wb(b, &v, 4); }
static inline void cx_test_w64(cx_test_wbuf *b, uint64_t v) { cx_test_wb(b, &v, 8); }
static inline void cx_test_wstr(cx_test_wbuf *b, const char *s)
{
    cx_test_w32(b, (uint32_t)strlen(s));
    cx_test_wb(b, s, strlen(s));
}

static inline void cx_test_put_edit(cx_test_wbuf *b, const cx_test_meta_edit *e)
{
    cx_test_wstr(b, e->key);
    if (e->kind == 'i') {
        cx_test_w32(b, CX_META_I64);
        cx_test_w64(b, (uint64_t)e->i);
    } else if (e->kind == 'f') {
        cx_test_w32(b, CX_META_F64);
        cx_test_wb(b, &e->f, 8);
    } else {
        cx_test_w32(b, CX_META_STR);
        cx_test_wstr(b, e->s ? e->s : "");
    }
}

/* Writes dst = src with the n edits applied. Returns 0, or -1 (message on stderr). */
static inline int cx_test_rewrite_model(const char *src, const char *dst, const cx_test_meta_edit *edits, size_t n)
{
    cx_error err = {0};
    cx_mfile *mf = NULL;
    if (cx_mfile_open(src, &mf, &err) != CX_OK) {
        fprintf(stderr, "cx_test_rewrite_model: %s\n", err.msg);
        return -1;
    }
    cx_test_wbuf body = {0}, data = {0}, out = {0};
    uint32_t nm = 0, nt = 0;
    char *done = calloc(n ? n : 1, 1);
    for (int i = 0; i < cx_mfile_meta_count(mf); i++) {
        const cx_meta *m = cx_mfile_meta_at(mf, i);
        const cx_test_meta_edit *e = NULL;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(edits[k].key, m->key)) {
                e = &edits[k];
                done[k] = 1;
            }
        if (e && e->kind == 'd')
            continue;
        if (!e && !strncmp(m->key, "integrity.", 10))
            continue; /* the variant is another file: it carries no digests unless an edit sets them */
        nm++;
        if (e) {
            cx_test_put_edit(&body, e);
            continue;
        }
        cx_test_wstr(&body, m->key);
        cx_test_w32(&body, m->type);
        if (m->type >= CX_META_I64_ARRAY)
            cx_test_w32(&body, (uint32_t)m->count);
        for (int j = 0; j < m->count; j++) {
            if (m->type == CX_META_STR || m->type == CX_META_STR_ARRAY)
                cx_test_wstr(&body, m->s[j]);
            else if (m->type == CX_META_I64 || m->type == CX_META_I64_ARRAY)
                cx_test_w64(&body, (uint64_t)m->i[j]);
            else
                cx_test_wb(&body, &m->f[j], 8);
        }
    }
    for (size_t k = 0; k < n; k++)
        if (!done[k] && edits[k].kind != 'd') {
            nm++;
            cx_test_put_edit(&body, &edits[k]);
        }
    for (int i = 0; i < cx_mfile_tensor_count(mf); i++) {
        const cx_tensor_ref *t = cx_mfile_tensor_at(mf, i);
        nt++;
        cx_test_wstr(&body, t->name);
        cx_test_w32(&body, t->dtype);
        cx_test_w32(&body, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            cx_test_w64(&body, (uint64_t)t->dims[d]);
        cx_test_w64(&body, data.n);
        cx_test_w64(&body, t->nbytes);
        cx_test_wb(&data, t->data, t->nbytes);
        while (data.n % 64 && !data.failed)
            cx_test_wb(&data, "", 1);
    }
    uint64_t doff = (64 + body.n + 63) / 64 * 64;
    cx_test_wb(&out, "CXSEGMDL", 8);
    cx_test_w32(&out, CX_MFILE_VERSION);
    cx_test_w32(&out, nm);
    cx_test_w32(&out, nt);
    cx_test_w32(&out, 0);
    cx_test_w64(&out, doff);
    cx_test_w64(&out, data.n);
    while (out.n < 64 && !out.failed)
        cx_test_wb(&out, "", 1);
    cx_test_wb(&out, body.p, body.n);
    while (out.n < doff && !out.failed)
        cx_test_wb(&out, "", 1);
    cx_test_wb(&out, data.p, data.n);
    int rc = -1;
    FILE *f = NULL;
    if (body.failed || data.failed || out.failed)
        fprintf(stderr, "cx_test_rewrite_model: out of memory\n");
    else if (!(f = fopen(dst, "wb")))
        fprintf(stderr, "cx_test_rewrite_model: cannot write %s\n", dst);
    else
        rc = fwrite(out.p, 1, out.n, f) == out.n ? 0 : -1;
    if (f && fclose(f))
        rc = -1;
    free(done);
    free(body.p);
    free(data.p);
    free(out.p);
    cx_mfile_free(mf);
    return rc;
}

#endif

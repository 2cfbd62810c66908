/* json: a small strict JSON reader (RFC 8259) and string escaper for the Orthanc plugin. Orthanc
 * hands the plugin its configuration and its REST answers as JSON text; this turns them into a
 * read-only tree. No extensions: no comments, no trailing commas, no duplicate keys, UTF-8 only.
 * GPL-3.0-or-later. */
#ifndef CXP_JSON_H
#define CXP_JSON_H

#include <stddef.h>

#include "cx_base.h"

typedef enum cxj_type {
    CXJ_NULL = 0, CXJ_FALSE, CXJ_TRUE, CXJ_NUMBER, CXJ_STRING, CXJ_ARRAY, CXJ_OBJECT
} cxj_type;

typedef struct cxj_value cxj_value;
struct cxj_value {
    cxj_type type;
    double number;       /* CXJ_NUMBER */
    char *string;        /* CXJ_STRING: UTF-8, NUL-terminated (\u0000 is refused) */
    size_t count;        /* CXJ_ARRAY / CXJ_OBJECT: number of items */
    cxj_value *items;    /* the items (values of an object's members) */
    char **keys;         /* CXJ_OBJECT: member names, same order as items */
};

/* Nesting deeper than this is refused (a stack-safety bound, far beyond Orthanc's answers). */
#define CXJ_MAX_DEPTH 64

/* Parses exactly one JSON value (surrounding white space allowed) from text[0..len). On success
 * *out is a new tree (free with cxj_free). Errors are CX_ERR_FORMAT "json: line L, column C: ..."
 * or CX_ERR_NOMEM; *out is then untouched. */
cx_status cxj_parse(const char *text, size_t len, cxj_value **out, cx_error *err);
void cxj_free(cxj_value *v); /* NULL is a no-op */

/* Member `key` of an object, or NULL when v is not an object or has no such member. */
const cxj_value *cxj_get(const cxj_value *v, const char *key);
/* The string of a CXJ_STRING, else NULL. */
const char *cxj_str(const cxj_value *v);
/* Item i of an array, or NULL. */
const cxj_value *cxj_at(const cxj_value *v, size_t i);

/* A growable text buffer for building JSON answers. */
typedef struct cxj_buf {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed: data holds what fitted before */
} cxj_buf;
void cxj_buf_printf(cxj_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal with quotes (control characters escaped). */
void cxj_buf_string(cxj_buf *b, const char *s);
void cxj_buf_free(cxj_buf *b);

#endif

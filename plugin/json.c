/* json: strict recursive-descent JSON reader for the Orthanc plugin (configuration and REST
 * answers), plus the text buffer the plugin writes its own answers with. Everything that RFC 8259
 * does not allow is an error naming line and column; nothing here trusts the input's sizes.
 * GPL-3.0-or-later. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s, *end, *p;
    cx_error *err;
    cx_status st;
} parser;

static cx_status fail(parser *ps, const char *what)
{
    if (ps->st != CX_OK)
        return ps->st;
    int line = 1, col = 1;
    for (const char *q = ps->s; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    ps->st = cx_error_set(ps->err, CX_ERR_FORMAT, "json", "line %d, column %d: %s", line, col, what);
    return ps->st;
}

static cx_status nomem(parser *ps)
{
    if (ps->st == CX_OK)
        ps->st = cx_error_set(ps->err, CX_ERR_NOMEM, "json", "out of memory at byte %zu",
                              (size_t)(ps->p - ps->s));
    return ps->st;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static void value_clear(cxj_value *v)
{
    if (!v)
        return;
    cx_free(v->string);
    for (size_t i = 0; i < v->count; i++) {
        value_clear(&v->items[i]);
        if (v->keys)
            cx_free(v->keys[i]);
    }
    cx_free(v->items);
    cx_free(v->keys);
    memset(v, 0, sizeof *v);
}

void cxj_free(cxj_value *v)
{
    if (!v)
        return;
    value_clear(v);
    cx_free(v);
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at p (no overlongs, no surrogates, <= U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned min, cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        min = 0x80;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        min = 0x800;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        min = 0x10000;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* At the opening quote. The decoded text is never longer than the quoted source. */
static cx_status parse_string(parser *ps, char **out)
{
    const char *start = ++ps->p;
    const char *q = start;
    while (q < ps->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= ps->end)
        return fail(ps, "string not terminated");
    char *buf = cx_malloc((size_t)(q - start) + 1);
    if (!buf)
        return nomem(ps);
    size_t n = 0;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            cx_free(buf);
            return fail(ps, "control character in a string (must be escaped)");
        }
        if (c != '\\') {
            size_t k = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
            if (!k) {
                cx_free(buf);
                return fail(ps, "invalid UTF-8 in a string");
            }
            memcpy(buf + n, ps->p, k);
            n += k;
            ps->p += k;
            continue;
        }
        ps->p++;
        char e = *ps->p;
        static const char esc[] = "\"\\/bfnrt", map[] = "\"\\/\b\f\n\r\t";
        const char *simple = e ? strchr(esc, e) : NULL;
        if (simple) {
            buf[n++] = map[simple - esc];
            ps->p++;
            continue;
        }
        if (e != 'u') {
            cx_free(buf);
            return fail(ps, "invalid escape in a string");
        }
        unsigned cp;
        if (ps->end - ps->p < 5 || hex4(ps->p + 1, &cp)) {
            cx_free(buf);
            return fail(ps, "\\u needs four hex digits");
        }
        ps->p += 5;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cx_free(buf);
            return fail(ps, "lone low surrogate in \\u escape");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF) {
                cx_free(buf);
                return fail(ps, "high surrogate without its low surrogate in \\u escape");
            }
            ps->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) {
            cx_free(buf);
            return fail(ps, "\\u0000 is not accepted in strings");
        }
        /* A \uXXXX escape (6 source bytes) yields at most 3 bytes, a pair (12) at most 4. */
        n += put_utf8(buf + n, cp);
    }
    ps->p++;
    buf[n] = 0;
    *out = buf;
    return CX_OK;
}

static cx_status parse_number(parser *ps, cxj_value *v)
{
    const char *a = ps->p, *q = ps->p;
    if (q < ps->end && *q == '-')
        q++;
    if (q >= ps->end || *q < '0' || *q > '9')
        return fail(ps, "invalid number");
    if (*q == '0') {
        q++;
        if (q < ps->end && *q >= '0' && *q <= '9')
            return fail(ps, "leading zero in a number");
    } else {
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || *q < '0' || *q > '9') {
            ps->p = q;
            return fail(ps, "digit expected after the decimal point");
        }
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || *q < '0' || *q > '9') {
            ps->p = q;
            return fail(ps, "digit expected in the exponent");
        }
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    char tmp[64];
    size_t n = (size_t)(q - a);
    if (n >= sizeof tmp)
        return fail(ps, "number longer than 63 characters");
    memcpy(tmp, a, n);
    tmp[n] = 0;
    double d = strtod(tmp, NULL);
    if (!isfinite(d))
        return fail(ps, "number out of range");
    v->type = CXJ_NUMBER;
    v->number = d;
    ps->p = q;
    return CX_OK;
}

static cx_status parse_value(parser *ps, cxj_value *v, int depth);

static cx_status grow(parser *ps, cxj_value *v, size_t *cap, int with_keys)
{
    if (v->count < *cap)
        return CX_OK;
    size_t nc = *cap ? *cap * 2 : 4;
    cxj_value *ni = cx_realloc(v->items, nc * sizeof *ni);
    if (!ni)
        return nomem(ps);
    v->items = ni;
    memset(ni + v->count, 0, (nc - v->count) * sizeof *ni);
    if (with_keys) {
        char **nk = cx_realloc(v->keys, nc * sizeof *nk);
        if (!nk)
            return nomem(ps);
        v->keys = nk;
    }
    *cap = nc;
    return CX_OK;
}

static cx_status parse_array(parser *ps, cxj_value *v, int depth)
{
    v->type = CXJ_ARRAY;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return CX_OK;
    }
    size_t cap = 0;
    for (;;) {
        if (grow(ps, v, &cap, 0) != CX_OK)
            return ps->st;
        v->count++;
        if (parse_value(ps, &v->items[v->count - 1], depth + 1) != CX_OK)
            return ps->st;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, "array not closed");
        if (*ps->p == ']') {
            ps->p++;
            return CX_OK;
        }
        if (*ps->p != ',')
            return fail(ps, "',' or ']' expected in an array");
        ps->p++;
    }
}

static cx_status parse_object(parser *ps, cxj_value *v, int depth)
{
    v->type = CXJ_OBJECT;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return CX_OK;
    }
    size_t cap = 0;
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"')
            return fail(ps, "member name (a string) expected in an object");
        const char *key_at = ps->p;
        char *key = NULL;
        if (parse_string(ps, &key) != CX_OK)
            return ps->st;
        for (size_t i = 0; i < v->count; i++)
            if (!strcmp(v->keys[i], key)) {
                cx_free(key);
                ps->p = key_at;
                return fail(ps, "duplicate member name in an object");
            }
        if (grow(ps, v, &cap, 1) != CX_OK) {
            cx_free(key);
            return ps->st;
        }
        v->keys[v->count] = key;
        v->count++;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return fail(ps, "':' expected after a member name");
        ps->p++;
        if (parse_value(ps, &v->items[v->count - 1], depth + 1) != CX_OK)
            return ps->st;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, "object not closed");
        if (*ps->p == '}') {
            ps->p++;
            return CX_OK;
        }
        if (*ps->p != ',')
            return fail(ps, "',' or '}' expected in an object");
        ps->p++;
    }
}

static int literal(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, word, n)) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static cx_status parse_value(parser *ps, cxj_value *v, int depth)
{
    if (depth > CXJ_MAX_DEPTH)
        return fail(ps, "nesting deeper than 64 levels");
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "value expected, end of text found");
    switch (*ps->p) {
    case '{':
        return parse_object(ps, v, depth);
    case '[':
        return parse_array(ps, v, depth);
    case '"':
        v->type = CXJ_STRING;
        return parse_string(ps, &v->string);
    case 't':
        if (literal(ps, "true")) {
            v->type = CXJ_TRUE;
            return CX_OK;
        }
        break;
    case 'f':
        if (literal(ps, "false")) {
            v->type = CXJ_FALSE;
            return CX_OK;
        }
        break;
    case 'n':
        if (literal(ps, "null")) {
            v->type = CXJ_NULL;
            return CX_OK;
        }
        break;
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps, v);
        break;
    }
    return fail(ps, "unexpected character (comments and other extensions are not JSON)");
}

cx_status cxj_parse(const char *text, size_t len, cxj_value **out, cx_error *err)
{
    if (!text || !out)
        return cx_error_set(err, CX_ERR_INVALID, "json", "no text");
    parser ps = {text, text + len, text, err, CX_OK};
    cxj_value *v = cx_calloc(1, sizeof *v);
    if (!v)
        return nomem(&ps);
    if (parse_value(&ps, v, 0) == CX_OK) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            fail(&ps, "text after the JSON value");
    }
    if (ps.st != CX_OK) {
        cxj_free(v);
        return ps.st;
    }
    *out = v;
    return CX_OK;
}

const cxj_value *cxj_get(const cxj_value *v, const char *key)
{
    if (!v || v->type != CXJ_OBJECT || !key)
        return NULL;
    for (size_t i = 0; i < v->count; i++)
        if (!strcmp(v->keys[i], key))
            return &v->items[i];
    return NULL;
}

const char *cxj_str(const cxj_value *v)
{
    return v && v->type == CXJ_STRING ? v->string : NULL;
}

const cxj_value *cxj_at(const cxj_value *v, size_t i)
{
    return v && v->type == CXJ_ARRAY && i < v->count ? &v->items[i] : NULL;
}

static int reserve(cxj_buf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + more + 1)
        nc *= 2;
    char *nd = cx_realloc(b->data, nc);
    if (!nd) {
        b->failed = 1;
        return -1;
    }
    b->data = nd;
    b->cap = nc;
    return 0;
}

void cxj_buf_printf(cxj_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cxj_buf_string(cxj_buf *b, const char *s)
{
    if (!s)
        s = "";
    if (reserve(b, strlen(s) * 6 + 2))
        return;
    char *o = b->data + b->len;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
            *o++ = (char)*p;
        } else if (*p < 0x20) {
            o += sprintf(o, "\\u%04x", *p);
        } else {
            *o++ = (char)*p;
        }
    }
    *o++ = '"';
    *o = 0;
    b->len = (size_t)(o - b->data);
}

void cxj_buf_free(cxj_buf *b)
{
    if (!b)
        return;
    cx_free(b->data);
    memset(b, 0, sizeof *b);
}

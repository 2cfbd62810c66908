/* cx_json: the one rule for putting a C string into JSON, over libjansson (header-only, so
 * libcxbase itself still depends on libc only: include it only in code built with
 * $(JANSSON_CFLAGS) and linked with $(JANSSON_LIBS)). Text that is valid UTF-8 (no overlongs,
 * no surrogates, nothing above U+10FFFF) goes in as it is; any other text (a DICOM value in
 * ISO 8859-1, a file name or a model's metadata in another code page) is read as ISO 8859-1, so
 * no byte is lost and what jansson writes is always valid UTF-8 JSON. GPL-3.0-or-later. */
#ifndef CX_JSON_H
#define CX_JSON_H

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cx_base.h"

/* Whether s is well-formed UTF-8 as jansson has it: no overlongs, no surrogates, nothing above
 * U+10FFFF. (jansson's json_string checks the same but answers NULL for that and for out of
 * memory alike, so cx_json_text could not tell them apart.) */
static inline int cx_json_utf8_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned c = *p++, cp, min;
        int more;
        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        for (; more; more--, p++) {
            if ((*p & 0xC0) != 0x80) /* also stops at the terminating NUL */
                return 0;
            cp = (cp << 6) | (*p & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    return 1;
}

/* A new JSON string for s (NULL reads as ""); NULL only when out of memory. */
static inline json_t *cx_json_text(const char *s)
{
    if (!s)
        s = "";
    if (cx_json_utf8_ok(s))
        return json_string_nocheck(s);
    size_t n = strlen(s);
    char *u = cx_malloc(2 * n + 1);
    if (!u)
        return NULL;
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80) {
            u[k++] = (char)*p;
        } else { /* U+0080..U+00FF in two bytes */
            u[k++] = (char)(0xC0 | (*p >> 6));
            u[k++] = (char)(0x80 | (*p & 0x3F));
        }
    }
    json_t *j = json_stringn_nocheck(u, k);
    cx_free(u);
    return j;
}

/* Writes s to f as one JSON string literal, escaped by jansson. Returns 0, or -1 when out of
 * memory or when f fails. */
static inline int cx_json_fput_text(FILE *f, const char *s)
{
    json_t *j = cx_json_text(s);
    int r = j ? json_dumpf(j, f, JSON_ENCODE_ANY) : -1;
    json_decref(j);
    return r;
}

#endif

/* cx_eval_data: the dataset side of `cxrseg eval`: structure.csv, split.json, the cropped RGBA mask
 * PNGs (object = any of R, G, B > 0, never alpha: the shared set's alpha is opaque over the whole
 * box) and ground-truth instances (connected regions for findings, one instance per lung). */
#include "config.h"
#include "cx_eval.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct ev_row {
    char *cls, *mask;
    long top, left;
    int line;
} ev_row;

typedef struct ev_image {
    char *name;
    ev_row *rows;
    int n_rows, cap_rows;
} ev_image;

struct cx_eval_dataset {
    char *dir;
    char *csv_path;
    ev_image *img;
    int n, cap;
};

/* ---------------- CSV ---------------- */

/* Reads one CSV record (RFC 4180: quoted fields, "" escapes, newlines inside quotes) from the buffer
 * at *pos. Fields are cx_strdup'ed into *fields (cx_realloc'ed array). Returns the field count, 0 at
 * end of input, -1 on an unterminated quote, -2 out of memory. */
static int csv_record(const char *buf, size_t len, size_t *pos, char ***fields, int *cap, int *line)
{
    size_t p = *pos;
    if (p >= len)
        return 0;
    int n = 0, rc = 0;
    char *tmp = cx_malloc(len - p + 1);
    if (!tmp)
        return -2;
    for (;;) {
        size_t o = 0;
        if (p < len && buf[p] == '"') {
            p++;
            for (;;) {
                if (p >= len) {
                    rc = -1;
                    goto fail;
                }
                if (buf[p] == '"') {
                    if (p + 1 < len && buf[p + 1] == '"') {
                        tmp[o++] = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (buf[p] == '\n')
                    (*line)++;
                tmp[o++] = buf[p++];
            }
        }
        while (p < len && buf[p] != ',' && buf[p] != '\n' && buf[p] != '\r')
            tmp[o++] = buf[p++];
        tmp[o] = 0;
        if (n == *cap) {
            int nc = *cap ? *cap * 2 : 32;
            char **nf = cx_realloc(*fields, (size_t)nc * sizeof *nf);
            if (!nf) {
                rc = -2;
                goto fail;
            }
            *fields = nf;
            *cap = nc;
        }
        if (!((*fields)[n] = cx_strdup(tmp))) {
            rc = -2;
            goto fail;
        }
        n++;
        if (p < len && buf[p] == ',') {
            p++;
            continue;
        }
        if (p < len && buf[p] == '\r')
            p++;
        if (p < len && buf[p] == '\n')
            p++;
        (*line)++;
        break;
    }
    cx_free(tmp);
    *pos = p;
    return n;
fail: /* the fields of a record that failed are released here, not by the caller */
    for (int i = 0; i < n; i++)
        cx_free((*fields)[i]);
    cx_free(tmp);
    return rc;
}

static void free_fields(char **f, int n)
{
    for (int i = 0; i < n; i++)
        cx_free(f[i]);
}

static int read_file(const char *path, char **out, size_t *len, cx_error *err, const char *stage)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cx_error_set(err, CX_ERR_IO, stage, "%s: %s", path, strerror(errno)), -1;
    size_t cap = 1 << 16, n = 0;
    char *b = cx_malloc(cap + 1);
    if (!b) {
        fclose(f);
        return cx_error_set(err, CX_ERR_NOMEM, stage, "%s: out of memory", path), -1;
    }
    for (;;) {
        if (n == cap) {
            if (cap > ((size_t)1 << 30)) {
                cx_free(b);
                fclose(f);
                return cx_error_set(err, CX_ERR_FORMAT, stage, "%s: larger than 1 GiB", path), -1;
            }
            char *nb = cx_realloc(b, cap * 2 + 1);
            if (!nb) {
                cx_free(b);
                fclose(f);
                return cx_error_set(err, CX_ERR_NOMEM, stage, "%s: out of memory", path), -1;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        cx_free(b);
        return cx_error_set(err, CX_ERR_IO, stage, "%s: read error", path), -1;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return -1;
    long v = strtol(s, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

void cx_eval_dataset_free(cx_eval_dataset *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++) {
        for (int r = 0; r < d->img[i].n_rows; r++) {
            cx_free(d->img[i].rows[r].cls);
            cx_free(d->img[i].rows[r].mask);
        }
        cx_free(d->img[i].rows);
        cx_free(d->img[i].name);
    }
    cx_free(d->img);
    cx_free(d->dir);
    cx_free(d->csv_path);
    cx_free(d);
}

static ev_image *find_or_add(cx_eval_dataset *d, const char *name)
{
    for (int i = d->n - 1; i >= 0; i--)
        if (strcmp(d->img[i].name, name) == 0)
            return &d->img[i];
    if (d->n == d->cap) {
        int nc = d->cap ? d->cap * 2 : 64;
        ev_image *ni = cx_realloc(d->img, (size_t)nc * sizeof *ni);
        if (!ni)
            return NULL;
        d->img = ni;
        d->cap = nc;
    }
    ev_image *im = &d->img[d->n];
    memset(im, 0, sizeof *im);
    if (!(im->name = cx_strdup(name)))
        return NULL;
    d->n++;
    return im;
}

cx_status cx_eval_dataset_open(const char *dir, cx_eval_dataset **out, cx_error *err)
{
    const char *S = "dataset";
    cx_eval_dataset *d = cx_calloc(1, sizeof *d);
    char *buf = NULL, **f = NULL;
    int fcap = 0, nf = 0, line = 1;
    size_t len = 0, pos = 0;
    cx_status st = CX_OK;
    if (!d)
        return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
    size_t pl = strlen(dir) + 32;
    d->dir = cx_strdup(dir);
    d->csv_path = cx_malloc(pl);
    if (!d->dir || !d->csv_path) {
        cx_eval_dataset_free(d);
        return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
    }
    snprintf(d->csv_path, pl, "%s/structure.csv", dir);
    if (read_file(d->csv_path, &buf, &len, err, S)) {
        cx_eval_dataset_free(d);
        return err ? err->code : CX_ERR_IO;
    }
    /* header: find the columns by name (a UTF-8 BOM is tolerated) */
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB)
        pos = 3;
    nf = csv_record(buf, len, &pos, &f, &fcap, &line);
    if (nf == -2) {
        st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
        goto done;
    }
    if (nf <= 0) {
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:1: no header row", d->csv_path);
        goto done;
    }
    int c_cls = -1, c_fn = -1, c_mask = -1, c_top = -1, c_left = -1;
    for (int i = 0; i < nf; i++) {
        if (!strcmp(f[i], "Class")) c_cls = i;
        else if (!strcmp(f[i], "Filename")) c_fn = i;
        else if (!strcmp(f[i], "Mask")) c_mask = i;
        else if (!strcmp(f[i], "Top")) c_top = i;
        else if (!strcmp(f[i], "Left")) c_left = i;
    }
    free_fields(f, nf);
    if (c_cls < 0 || c_fn < 0 || c_mask < 0 || c_top < 0 || c_left < 0) {
        st = cx_error_set(err, CX_ERR_FORMAT, S,
                          "%s:1: header lacks one of Class, Filename, Mask, Top, Left", d->csv_path);
        goto done;
    }
    int maxc = c_cls;
    if (c_fn > maxc) maxc = c_fn;
    if (c_mask > maxc) maxc = c_mask;
    if (c_top > maxc) maxc = c_top;
    if (c_left > maxc) maxc = c_left;
    for (;;) {
        int rec_line = line;
        nf = csv_record(buf, len, &pos, &f, &fcap, &line);
        if (nf == 0)
            break;
        if (nf == -1) {
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: unterminated quoted field", d->csv_path,
                              rec_line);
            goto done;
        }
        if (nf < 0) {
            st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
            goto done;
        }
        if (nf == 1 && !f[0][0]) { /* blank line */
            free_fields(f, nf);
            continue;
        }
        if (nf <= maxc) {
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: %d fields, the header needs %d",
                              d->csv_path, rec_line, nf, maxc + 1);
            free_fields(f, nf);
            goto done;
        }
        if (!f[c_fn][0] || strchr(f[c_fn], '/') || strstr(f[c_fn], "..")) {
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: Filename '%s' empty or not a plain name",
                              d->csv_path, rec_line, f[c_fn]);
            free_fields(f, nf);
            goto done;
        }
        ev_image *im = find_or_add(d, f[c_fn]);
        if (!im) {
            free_fields(f, nf);
            st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
            goto done;
        }
        if (f[c_mask][0]) {
            long top, left;
            if (parse_long(f[c_top], &top) || parse_long(f[c_left], &left) || top < -(1L << 20) ||
                left < -(1L << 20) || top > (1L << 20) || left > (1L << 20)) {
                st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: Top '%s' / Left '%s' not integers in range",
                                  d->csv_path, rec_line, f[c_top], f[c_left]);
                free_fields(f, nf);
                goto done;
            }
            if (strstr(f[c_mask], "..") || f[c_mask][0] == '/') {
                st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: Mask '%s' leaves the dataset folder",
                                  d->csv_path, rec_line, f[c_mask]);
                free_fields(f, nf);
                goto done;
            }
            if (im->n_rows == im->cap_rows) {
                int nc = im->cap_rows ? im->cap_rows * 2 : 8;
                ev_row *nr = cx_realloc(im->rows, (size_t)nc * sizeof *nr);
                if (!nr) {
                    free_fields(f, nf);
                    st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
                    goto done;
                }
                im->rows = nr;
                im->cap_rows = nc;
            }
            ev_row *r = &im->rows[im->n_rows];
            r->cls = cx_strdup(f[c_cls]);
            r->mask = cx_strdup(f[c_mask]);
            r->top = top;
            r->left = left;
            r->line = rec_line;
            if (!r->cls || !r->mask) {
                cx_free(r->cls);
                cx_free(r->mask);
                free_fields(f, nf);
                st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
                goto done;
            }
            im->n_rows++;
        }
        free_fields(f, nf);
    }
    if (d->n == 0)
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: no images listed", d->csv_path);
done:
    cx_free(f);
    cx_free(buf);
    if (st != CX_OK) {
        cx_eval_dataset_free(d);
        return st;
    }
    *out = d;
    return CX_OK;
}

int cx_eval_dataset_count(const cx_eval_dataset *d) { return d ? d->n : 0; }

const char *cx_eval_dataset_name(const cx_eval_dataset *d, int i)
{
    return d && i >= 0 && i < d->n ? d->img[i].name : NULL;
}

const char *cx_eval_dataset_dir(const cx_eval_dataset *d) { return d ? d->dir : NULL; }

cx_status cx_eval_dataset_select(cx_eval_dataset *d, const char *const *names, int n, cx_error *err)
{
    if (n <= 0)
        return cx_error_set(err, CX_ERR_INVALID, "dataset", "empty selection");
    ev_image *sel = cx_calloc((size_t)n, sizeof *sel);
    char *used = cx_calloc((size_t)d->n, 1);
    if (!sel || !used) {
        cx_free(sel);
        cx_free(used);
        return cx_error_set(err, CX_ERR_NOMEM, "dataset", "out of memory");
    }
    for (int k = 0; k < n; k++) {
        int found = -1;
        for (int i = 0; i < d->n; i++)
            if (strcmp(d->img[i].name, names[k]) == 0) {
                found = i;
                break;
            }
        if (found < 0 || used[found]) {
            cx_free(sel);
            cx_free(used);
            return cx_error_set(err, CX_ERR_FORMAT, "dataset", "split names '%s' %s", names[k],
                                found < 0 ? "which is not in structure.csv" : "twice");
        }
        used[found] = 1;
        sel[k] = d->img[found];
    }
    for (int i = 0; i < d->n; i++)
        if (!used[i]) {
            for (int r = 0; r < d->img[i].n_rows; r++) {
                cx_free(d->img[i].rows[r].cls);
                cx_free(d->img[i].rows[r].mask);
            }
            cx_free(d->img[i].rows);
            cx_free(d->img[i].name);
        }
    cx_free(d->img);
    cx_free(used);
    d->img = sel;
    d->n = d->cap = n;
    return CX_OK;
}

/* ---------------- split.json (a minimal JSON reader: enough to skip any value) ---------------- */

typedef struct js {
    const char *s;
    size_t p, n;
} js;

static void js_ws(js *j)
{
    while (j->p < j->n && isspace((unsigned char)j->s[j->p]))
        j->p++;
}

/* Parses a JSON string at j->p; if out is non-NULL, stores a cx_malloc'ed UTF-8 copy. */
static int js_string(js *j, char **out)
{
    if (j->p >= j->n || j->s[j->p] != '"')
        return -1;
    j->p++;
    char *b = out ? cx_malloc(j->n - j->p + 1) : NULL;
    size_t o = 0;
    if (out && !b)
        return -2;
    while (j->p < j->n && j->s[j->p] != '"') {
        unsigned char c = (unsigned char)j->s[j->p++];
        if (c < 0x20) {
            cx_free(b);
            return -1;
        }
        if (c == '\\') {
            if (j->p >= j->n) {
                cx_free(b);
                return -1;
            }
            char e = j->s[j->p++];
            unsigned cp = 0;
            switch (e) {
            case '"': case '\\': case '/': cp = (unsigned char)e; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (j->p + 4 > j->n) {
                    cx_free(b);
                    return -1;
                }
                for (int k = 0; k < 4; k++) {
                    char h = j->s[j->p++];
                    cp <<= 4;
                    if (h >= '0' && h <= '9') cp |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') cp |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') cp |= (unsigned)(h - 'A' + 10);
                    else {
                        cx_free(b);
                        return -1;
                    }
                }
                break;
            default:
                cx_free(b);
                return -1;
            }
            if (b) { /* BMP code points only; surrogates pass through as-is (names are ASCII) */
                if (cp < 0x80) b[o++] = (char)cp;
                else if (cp < 0x800) { b[o++] = (char)(0xC0 | (cp >> 6)); b[o++] = (char)(0x80 | (cp & 0x3F)); }
                else { b[o++] = (char)(0xE0 | (cp >> 12)); b[o++] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[o++] = (char)(0x80 | (cp & 0x3F)); }
            }
        } else if (b) {
            b[o++] = (char)c;
        }
    }
    if (j->p >= j->n) {
        cx_free(b);
        return -1;
    }
    j->p++;
    if (b) {
        b[o] = 0;
        *out = b;
    }
    return 0;
}

static int js_skip(js *j, int depth)
{
    if (depth > 64)
        return -1;
    js_ws(j);
    if (j->p >= j->n)
        return -1;
    char c = j->s[j->p];
    if (c == '"')
        return js_string(j, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        js_ws(j);
        if (j->p < j->n && j->s[j->p] == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                js_ws(j);
                if (js_string(j, NULL))
                    return -1;
                js_ws(j);
                if (j->p >= j->n || j->s[j->p] != ':')
                    return -1;
                j->p++;
            }
            if (js_skip(j, depth + 1))
                return -1;
            js_ws(j);
            if (j->p < j->n && j->s[j->p] == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->n && j->s[j->p] == close) {
                j->p++;
                return 0;
            }
            return -1;
        }
    }
    /* number or literal */
    size_t st = j->p;
    while (j->p < j->n && (isalnum((unsigned char)j->s[j->p]) || strchr("+-.", j->s[j->p])))
        j->p++;
    return j->p > st ? 0 : -1;
}

void cx_eval_strings_free(char **s, int n)
{
    if (!s)
        return;
    for (int i = 0; i < n; i++)
        cx_free(s[i]);
    cx_free(s);
}

cx_status cx_eval_read_split(const char *path, const char *key, char ***out, int *n, cx_error *err)
{
    const char *S = "split";
    char *buf;
    size_t len;
    if (read_file(path, &buf, &len, err, S))
        return err ? err->code : CX_ERR_IO;
    js j = {buf, 0, len};
    char **list = NULL;
    int cnt = 0, cap = 0, found = 0;
    cx_status st = CX_OK;
    js_ws(&j);
    if (j.p >= j.n || j.s[j.p] != '{') {
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: not a JSON object", path);
        goto done;
    }
    j.p++;
    for (;;) {
        js_ws(&j);
        if (j.p < j.n && j.s[j.p] == '}')
            break;
        char *k = NULL;
        if (js_string(&j, &k)) {
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: malformed JSON at byte %zu", path, j.p);
            goto done;
        }
        js_ws(&j);
        if (j.p >= j.n || j.s[j.p] != ':') {
            cx_free(k);
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: expected ':' at byte %zu", path, j.p);
            goto done;
        }
        j.p++;
        js_ws(&j);
        int want = strcmp(k, key) == 0;
        cx_free(k);
        if (want && !found) {
            found = 1;
            if (j.p >= j.n || j.s[j.p] != '[') {
                st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: \"%s\" is not an array", path, key);
                goto done;
            }
            j.p++;
            js_ws(&j);
            if (j.p < j.n && j.s[j.p] == ']')
                j.p++;
            else
                for (;;) {
                    js_ws(&j);
                    char *v = NULL;
                    int r = js_string(&j, &v);
                    if (r) {
                        st = cx_error_set(err, r == -2 ? CX_ERR_NOMEM : CX_ERR_FORMAT, S,
                                          "%s: \"%s\" item %d is not a string", path, key, cnt);
                        goto done;
                    }
                    if (cnt == cap) {
                        int nc = cap ? cap * 2 : 32;
                        char **nl = cx_realloc(list, (size_t)nc * sizeof *nl);
                        if (!nl) {
                            cx_free(v);
                            st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
                            goto done;
                        }
                        list = nl;
                        cap = nc;
                    }
                    list[cnt++] = v;
                    js_ws(&j);
                    if (j.p < j.n && j.s[j.p] == ',') {
                        j.p++;
                        continue;
                    }
                    if (j.p < j.n && j.s[j.p] == ']') {
                        j.p++;
                        break;
                    }
                    st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: malformed array at byte %zu", path, j.p);
                    goto done;
                }
        } else if (js_skip(&j, 0)) {
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: malformed JSON at byte %zu", path, j.p);
            goto done;
        }
        js_ws(&j);
        if (j.p < j.n && j.s[j.p] == ',') {
            j.p++;
            continue;
        }
        if (j.p < j.n && j.s[j.p] == '}')
            break;
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: malformed JSON at byte %zu", path, j.p);
        goto done;
    }
    if (!found)
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: no key \"%s\"", path, key);
    else if (cnt == 0)
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: \"%s\" is empty", path, key);
done:
    cx_free(buf);
    if (st != CX_OK) {
        cx_eval_strings_free(list, cnt);
        return st;
    }
    *out = list;
    *n = cnt;
    return CX_OK;
}

/* ---------------- classes ---------------- */

static void norm_class(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    if (strncasecmp(in, "covid-19 ", 9) == 0)
        in += 9;
    for (; *in && o + 1 < cap; in++) {
        char c = (char)tolower((unsigned char)*in);
        out[o++] = (c == ' ' || c == '-') ? '_' : c;
    }
    out[o] = 0;
}

static int class_matches(const char *model_name, const char *model_meaning, const char *ds)
{
    static const char *const aliases[][4] = {
        {"ggo", "ground_glass_opacities", "ground_glass_opacity", "ground_glass"},
        {"right_lung", "lung_right", "right_lung", "right_lung"},
        {"left_lung", "lung_left", "left_lung", "left_lung"},
        {"consolidation", "consolidations", "consolidation", "consolidation"},
    };
    char a[256], b[256], c[256];
    norm_class(ds, a, sizeof a);
    norm_class(model_name ? model_name : "", b, sizeof b);
    norm_class(model_meaning ? model_meaning : "", c, sizeof c);
    if (!a[0])
        return 0;
    if (!strcmp(a, b) || (c[0] && !strcmp(a, c)))
        return 1;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(b, aliases[i][0]))
            for (int k = 1; k < 4; k++)
                if (!strcmp(a, aliases[i][k]))
                    return 1;
    return 0;
}

int cx_eval_class_label(const cx_model *m, const char *dataset_class)
{
    int k = cx_model_num_classes(m);
    for (int l = 1; l <= k; l++) {
        const cx_class_info *ci = cx_model_class(m, l);
        if (ci && class_matches(ci->name, ci->meaning, dataset_class))
            return l;
    }
    return 0;
}

static int is_lung_name(const char *name)
{
    char b[256];
    norm_class(name ? name : "", b, sizeof b);
    return strstr(b, "lung") != NULL;
}

cx_eval_params cx_eval_default_params_k(int num_classes)
{
    cx_eval_params p;
    memset(&p, 0, sizeof p);
    p.split_regions[1] = 1;
    (void)num_classes;
    /* 48 px of a 512 x 512 input (as the training recipe drops), relative so any resolution agrees */
    p.min_region_frac = 48.0 / (512.0 * 512.0);
    return p;
}

cx_eval_params cx_eval_default_params(const cx_model *m)
{
    cx_eval_params p = cx_eval_default_params_k(cx_model_num_classes(m));
    int k = cx_model_num_classes(m);
    for (int l = 1; l <= k && l <= CX_EVAL_MAX_CLASSES; l++) {
        const cx_class_info *ci = cx_model_class(m, l);
        p.split_regions[l] = ci && !is_lung_name(ci->name);
    }
    return p;
}

/* ---------------- masks and instances ---------------- */

/* Reads a mask PNG as RGBA; object = any colour channel > 0. */
static cx_status read_mask_png(const char *path, uint8_t **out, int *w, int *h, cx_error *err)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path))
        return cx_error_set(err, CX_ERR_FORMAT, "mask", "%s: %s", path, im.message);
    im.format = PNG_FORMAT_RGBA;
    if (im.width == 0 || im.height == 0 || im.width > CX_EVAL_MAX_SIDE || im.height > CX_EVAL_MAX_SIDE) {
        png_image_free(&im);
        return cx_error_set(err, CX_ERR_FORMAT, "mask", "%s: size %ux%u out of range", path, im.width,
                            im.height);
    }
    size_t n = (size_t)im.width * im.height;
    uint8_t *rgba = cx_malloc(n * 4), *m = cx_malloc(n);
    if (!rgba || !m) {
        png_image_free(&im);
        cx_free(rgba);
        cx_free(m);
        return cx_error_set(err, CX_ERR_NOMEM, "mask", "%s: out of memory", path);
    }
    if (!png_image_finish_read(&im, NULL, rgba, 0, NULL)) {
        cx_status s = cx_error_set(err, CX_ERR_FORMAT, "mask", "%s: %s", path, im.message);
        png_image_free(&im);
        cx_free(rgba);
        cx_free(m);
        return s;
    }
    for (size_t i = 0; i < n; i++)
        m[i] = (rgba[4 * i] | rgba[4 * i + 1] | rgba[4 * i + 2]) != 0;
    cx_free(rgba);
    *w = (int)im.width;
    *h = (int)im.height;
    *out = m;
    return CX_OK;
}

void cx_eval_gt_clear(cx_eval_gt *gt)
{
    if (!gt)
        return;
    for (int l = 0; l <= CX_EVAL_MAX_CLASSES; l++) {
        cx_free(gt->inst[l]);
        cx_free(gt->inst_area[l]);
    }
    memset(gt, 0, sizeof *gt);
}

/* 8-connected regions of mask -> instance map; regions below min_px are dropped. */
static cx_status label_regions(const uint8_t *mask, int w, int h, int64_t min_px, int split,
                               int32_t *inst, int *n_out, int64_t **area_out, cx_error *err)
{
    size_t n = (size_t)w * h;
    memset(inst, 0, n * sizeof *inst);
    int cap = 16, cnt = 0;
    int64_t *area = cx_calloc((size_t)cap + 1, sizeof *area);
    if (!area)
        return cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
    if (!split) {
        int64_t a = 0;
        for (size_t i = 0; i < n; i++)
            a += mask[i] != 0;
        if (a > 0 && a >= min_px) {
            for (size_t i = 0; i < n; i++)
                inst[i] = mask[i] != 0;
            area[1] = a;
            cnt = 1;
        }
        *n_out = cnt;
        *area_out = area;
        return CX_OK;
    }
    int32_t *stack = cx_malloc(n * sizeof *stack);
    if (!stack) {
        cx_free(area);
        return cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
    }
    int32_t next = 1;
    for (size_t s = 0; s < n; s++) {
        if (!mask[s] || inst[s])
            continue;
        /* flood fill with label `next`; pixels of a dropped region get -1, cleared below */
        size_t sp = 0, members = 0;
        stack[sp++] = (int32_t)s;
        inst[s] = next;
        while (sp) {
            int32_t p = stack[--sp];
            members++;
            int x = p % w, y = p / w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if ((dx || dy) && xx >= 0 && yy >= 0 && xx < w && yy < h) {
                        size_t q = (size_t)yy * w + xx;
                        if (mask[q] && !inst[q]) {
                            inst[q] = next;
                            stack[sp++] = (int32_t)q;
                        }
                    }
                }
        }
        if ((int64_t)members < min_px) {
            /* drop: mark -1 so the scan does not revisit */
            sp = 0;
            stack[sp++] = (int32_t)s;
            inst[s] = -1;
            while (sp) {
                int32_t p = stack[--sp];
                int x = p % w, y = p / w;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int xx = x + dx, yy = y + dy;
                        if ((dx || dy) && xx >= 0 && yy >= 0 && xx < w && yy < h) {
                            size_t q = (size_t)yy * w + xx;
                            if (inst[q] == next) {
                                inst[q] = -1;
                                stack[sp++] = (int32_t)q;
                            }
                        }
                    }
            }
            continue;
        }
        if (cnt + 1 > cap) {
            int nc = cap * 2;
            int64_t *na = cx_realloc(area, ((size_t)nc + 1) * sizeof *na);
            if (!na) {
                cx_free(stack);
                cx_free(area);
                return cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
            }
            area = na;
            cap = nc;
        }
        cnt++;
        area[cnt] = (int64_t)members;
        next++;
    }
    for (size_t i = 0; i < n; i++)
        if (inst[i] < 0)
            inst[i] = 0;
    cx_free(stack);
    *n_out = cnt;
    *area_out = area;
    return CX_OK;
}

cx_status cx_eval_gt_from_masks(const uint8_t *const *masks, int k, int width, int height,
                                const cx_eval_params *p, cx_eval_gt *out, cx_error *err)
{
    if (k < 1 || k > CX_EVAL_MAX_CLASSES || width < 1 || height < 1 || width > CX_EVAL_MAX_SIDE ||
        height > CX_EVAL_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, "ground truth", "k = %d, size %dx%d out of range", k,
                            width, height);
    cx_eval_gt gt;
    memset(&gt, 0, sizeof gt);
    gt.width = width;
    gt.height = height;
    gt.num_classes = k;
    size_t n = (size_t)width * height;
    int64_t min_px = (int64_t)(p->min_region_frac * (double)n + 0.5);
    for (int l = 1; l <= k; l++) {
        gt.inst[l] = cx_malloc(n * sizeof(int32_t));
        if (!gt.inst[l]) {
            cx_eval_gt_clear(&gt);
            return cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
        }
        cx_status s = label_regions(masks[l], width, height, min_px, p->split_regions[l], gt.inst[l],
                                    &gt.n_inst[l], &gt.inst_area[l], err);
        if (s != CX_OK) {
            cx_eval_gt_clear(&gt);
            return s;
        }
    }
    *out = gt;
    return CX_OK;
}

cx_status cx_eval_load_gt_names(const cx_eval_dataset *d, int i, const char *const *names, int k,
                                int width, int height, const cx_eval_params *p, cx_eval_gt *out,
                                cx_error *err)
{
    if (!d || i < 0 || i >= d->n)
        return cx_error_set(err, CX_ERR_INVALID, "ground truth", "image index %d of %d", i, d ? d->n : 0);
    if (k < 1 || k > CX_EVAL_MAX_CLASSES || width < 1 || height < 1 || width > CX_EVAL_MAX_SIDE ||
        height > CX_EVAL_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, "ground truth", "k = %d, size %dx%d out of range", k,
                            width, height);
    const ev_image *im = &d->img[i];
    size_t n = (size_t)width * height;
    uint8_t *masks[CX_EVAL_MAX_CLASSES + 1] = {0};
    cx_status st = CX_OK;
    for (int l = 1; l <= k; l++)
        if (!(masks[l] = cx_calloc(n, 1))) {
            st = cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
            goto done;
        }
    for (int r = 0; r < im->n_rows; r++) {
        const ev_row *row = &im->rows[r];
        int label = 0;
        for (int l = 1; l <= k && !label; l++)
            if (class_matches(names[l], NULL, row->cls))
                label = l;
        if (!label)
            continue;
        size_t pl = strlen(d->dir) + strlen(row->mask) + 2;
        char *path = cx_malloc(pl);
        if (!path) {
            st = cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
            goto done;
        }
        snprintf(path, pl, "%s/%s", d->dir, row->mask);
        uint8_t *m = NULL;
        int mw = 0, mh = 0;
        st = read_mask_png(path, &m, &mw, &mh, err);
        cx_free(path);
        if (st != CX_OK) {
            cx_error_prefix(err, "ground truth");
            goto done;
        }
        if (row->left >= width || row->top >= height || row->left + mw <= 0 || row->top + mh <= 0) {
            cx_free(m);
            st = cx_error_set(err, CX_ERR_FORMAT, "ground truth",
                              "%s:%d: mask %dx%d at left=%ld,top=%ld lies outside the %dx%d image %s",
                              d->csv_path, row->line, mw, mh, row->left, row->top, width, height, im->name);
            goto done;
        }
        for (int y = 0; y < mh; y++) {
            long yy = row->top + y;
            if (yy < 0 || yy >= height)
                continue;
            for (int x = 0; x < mw; x++) {
                long xx = row->left + x;
                if (xx >= 0 && xx < width && m[(size_t)y * mw + x])
                    masks[label][(size_t)yy * width + xx] = 1;
            }
        }
        cx_free(m);
    }
    st = cx_eval_gt_from_masks((const uint8_t *const *)masks, k, width, height, p, out, err);
done:
    for (int l = 1; l <= k; l++)
        cx_free(masks[l]);
    return st;
}

cx_status cx_eval_load_gt(const cx_eval_dataset *d, int i, const cx_model *m, int width, int height,
                          const cx_eval_params *p, cx_eval_gt *out, cx_error *err)
{
    int k = cx_model_num_classes(m);
    if (k < 1 || k > CX_EVAL_MAX_CLASSES)
        return cx_error_set(err, CX_ERR_MODEL, "ground truth", "model has %d classes (1..%d supported)",
                            k, CX_EVAL_MAX_CLASSES);
    const char *names[CX_EVAL_MAX_CLASSES + 1] = {0};
    for (int l = 1; l <= k; l++) {
        const cx_class_info *ci = cx_model_class(m, l);
        names[l] = ci ? ci->name : "";
    }
    return cx_eval_load_gt_names(d, i, names, k, width, height, p, out, err);
}

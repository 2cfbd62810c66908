/* cx_eval_data: the dataset side of `cxrseg eval`. Structure form: structure.csv, split.json, the
 * cropped RGBA mask PNGs (object = any of R, G, B > 0, never alpha: the shared set's alpha is opaque
 * over the whole box). Mask-folder form: manifest.csv and full-size grey masks per folder, the one
 * lung mask split into the patient's sides. Both: ground-truth instances (connected regions for
 * findings, one instance per lung). */
#include "config.h"
#include "cx_eval.h"
#include "cx_image.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct ev_row {
    char *cls, *mask;
    long top, left;
    int line;
} ev_row;

typedef struct ev_image {
    char *name;
    char *file;                  /* relative to the dataset folder */
    char *category, *source_split; /* mask-folder form; NULL in the structure form */
    int line;                    /* of the manifest */
    ev_row *rows;                /* structure form */
    int n_rows, cap_rows;
} ev_image;

struct cx_eval_dataset {
    cx_eval_form form;
    char *dir;
    char *csv_path;              /* structure.csv or manifest.csv */
    int has_category, has_source_split;
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

static void image_free(ev_image *im)
{
    for (int r = 0; r < im->n_rows; r++) {
        cx_free(im->rows[r].cls);
        cx_free(im->rows[r].mask);
    }
    cx_free(im->rows);
    cx_free(im->name);
    cx_free(im->file);
    cx_free(im->category);
    cx_free(im->source_split);
}

void cx_eval_dataset_free(cx_eval_dataset *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++)
        image_free(&d->img[i]);
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
    size_t fl = strlen(name) + 8;
    im->name = cx_strdup(name);
    im->file = cx_malloc(fl);
    if (!im->name || !im->file) {
        cx_free(im->name);
        cx_free(im->file);
        return NULL;
    }
    snprintf(im->file, fl, "images/%s", name);
    d->n++;
    return im;
}

/* A new dataset of `form` whose index file is dir/index_name. */
static cx_eval_dataset *dataset_new(const char *dir, cx_eval_form form, const char *index_name)
{
    cx_eval_dataset *d = cx_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    size_t pl = strlen(dir) + strlen(index_name) + 2;
    d->form = form;
    d->dir = cx_strdup(dir);
    d->csv_path = cx_malloc(pl);
    if (!d->dir || !d->csv_path) {
        cx_eval_dataset_free(d);
        return NULL;
    }
    snprintf(d->csv_path, pl, "%s/%s", dir, index_name);
    return d;
}

/* Reads a CSV file whole and its header record (a UTF-8 BOM is tolerated): *buf (caller frees),
 * the position after the header, its fields f[0..nf). */
static cx_status csv_open(const char *path, char **buf, size_t *len, size_t *pos, char ***f, int *fcap, int *nf,
                          int *line, cx_error *err)
{
    const char *S = "dataset";
    if (read_file(path, buf, len, err, S))
        return err ? err->code : CX_ERR_IO;
    if (*len >= 3 && (unsigned char)(*buf)[0] == 0xEF && (unsigned char)(*buf)[1] == 0xBB)
        *pos = 3;
    *nf = csv_record(*buf, *len, pos, f, fcap, line);
    if (*nf == -2)
        return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
    if (*nf <= 0)
        return cx_error_set(err, CX_ERR_FORMAT, S, "%s:1: no header row", path);
    return CX_OK;
}

/* One mask row of structure.csv (a class, its mask file, where its top-left corner is) for image
 * im; refuses positions out of range and mask paths that leave the dataset folder. */
static cx_status add_row(const cx_eval_dataset *d, ev_image *im, const char *cls, const char *mask, const char *top_s,
                         const char *left_s, int rec_line, cx_error *err)
{
    const char *S = "dataset";
    long top, left;
    if (parse_long(top_s, &top) || parse_long(left_s, &left) || top < -(1L << 20) || left < -(1L << 20) ||
        top > (1L << 20) || left > (1L << 20))
        return cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: Top '%s' / Left '%s' not integers in range", d->csv_path,
                            rec_line, top_s, left_s);
    if (strstr(mask, "..") || mask[0] == '/')
        return cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: Mask '%s' leaves the dataset folder", d->csv_path,
                            rec_line, mask);
    if (im->n_rows == im->cap_rows) {
        int nc = im->cap_rows ? im->cap_rows * 2 : 8;
        ev_row *nr = cx_realloc(im->rows, (size_t)nc * sizeof *nr);
        if (!nr)
            return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
        im->rows = nr;
        im->cap_rows = nc;
    }
    ev_row *r = &im->rows[im->n_rows];
    r->cls = cx_strdup(cls);
    r->mask = cx_strdup(mask);
    r->top = top;
    r->left = left;
    r->line = rec_line;
    if (!r->cls || !r->mask) {
        cx_free(r->cls);
        cx_free(r->mask);
        return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
    }
    im->n_rows++;
    return CX_OK;
}

/* One CSV table, record by record: the header maps each of cols[0..ncols) to its column (-1 when
 * absent; the first nreq are required), then row() gets every non-blank record, already checked to
 * have all the mapped columns, with its line number. Blank lines are skipped. */
typedef cx_status (*csv_row_fn)(cx_eval_dataset *d, char **f, const int *col, int line, cx_error *err);

enum { CSV_MAX_COLS = 8 };

static cx_status csv_table(cx_eval_dataset *d, const char *const *cols, int ncols, int nreq, int *col,
                           csv_row_fn row, cx_error *err)
{
    const char *S = "dataset";
    char *buf = NULL, **f = NULL;
    int fcap = 0, nf = 0, line = 1, maxc = -1;
    size_t len = 0, pos = 0;
    cx_status st = csv_open(d->csv_path, &buf, &len, &pos, &f, &fcap, &nf, &line, err);
    if (st != CX_OK)
        goto done;
    for (int c = 0; c < ncols; c++) {
        col[c] = -1;
        for (int i = 0; i < nf && col[c] < 0; i++)
            if (!strcmp(f[i], cols[c]))
                col[c] = i;
        if (col[c] < 0 && c < nreq) {
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:1: header lacks the column %s", d->csv_path, cols[c]);
            free_fields(f, nf);
            goto done;
        }
        maxc = col[c] > maxc ? col[c] : maxc;
    }
    free_fields(f, nf);
    for (;;) {
        int rec_line = line;
        nf = csv_record(buf, len, &pos, &f, &fcap, &line);
        if (nf == 0)
            break;
        if (nf == -1) {
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: unterminated quoted field", d->csv_path, rec_line);
            goto done;
        }
        if (nf < 0) {
            st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
            goto done;
        }
        if (nf == 1 && !f[0][0]) /* blank line */
            st = CX_OK;
        else if (nf <= maxc)
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: %d fields, the header needs %d", d->csv_path,
                              rec_line, nf, maxc + 1);
        else
            st = row(d, f, col, rec_line, err);
        free_fields(f, nf);
        if (st != CX_OK)
            goto done;
    }
    if (d->n == 0)
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: no images listed", d->csv_path);
done:
    cx_free(f);
    cx_free(buf);
    return st;
}

/* A dataset of one form read through csv_table, or freed with the error. */
static cx_status open_table(cx_eval_dataset *d, const char *const *cols, int ncols, int nreq, csv_row_fn row,
                            cx_eval_dataset **out, cx_error *err)
{
    int col[CSV_MAX_COLS];
    if (!d)
        return cx_error_set(err, CX_ERR_NOMEM, "dataset", "out of memory");
    cx_status st = csv_table(d, cols, ncols, nreq, col, row, err);
    if (st != CX_OK) {
        cx_eval_dataset_free(d);
        return st;
    }
    *out = d;
    return CX_OK;
}

/* structure.csv: Class, Filename, Mask, Top, Left; one row per mask, an image on as many rows as it
 * has masks (an empty Mask lists an image without any). */
enum { SC_CLASS, SC_FILE, SC_MASK, SC_TOP, SC_LEFT };

static cx_status structure_row(cx_eval_dataset *d, char **f, const int *col, int line, cx_error *err)
{
    const char *fn = f[col[SC_FILE]];
    if (!fn[0] || strchr(fn, '/') || strstr(fn, ".."))
        return cx_error_set(err, CX_ERR_FORMAT, "dataset", "%s:%d: Filename '%s' empty or not a plain name",
                            d->csv_path, line, fn);
    ev_image *im = find_or_add(d, fn);
    if (!im)
        return cx_error_set(err, CX_ERR_NOMEM, "dataset", "out of memory");
    if (!f[col[SC_MASK]][0])
        return CX_OK;
    return add_row(d, im, f[col[SC_CLASS]], f[col[SC_MASK]], f[col[SC_TOP]], f[col[SC_LEFT]], line, err);
}

static cx_status open_structure(const char *dir, cx_eval_dataset **out, cx_error *err)
{
    static const char *const cols[] = {"Class", "Filename", "Mask", "Top", "Left"};
    return open_table(dataset_new(dir, CX_EVAL_FORM_STRUCTURE, "structure.csv"), cols, 5, 5, structure_row, out,
                      err);
}

/* The mask-folder form's manifest.csv: id (required), category, source_split; other columns are
 * ignored. Ids are plain file names without ".png" and appear once. */
enum { MF_ID, MF_CATEGORY, MF_SPLIT };

static cx_status manifest_row(cx_eval_dataset *d, char **f, const int *col, int line, cx_error *err)
{
    const char *S = "dataset", *id = f[col[MF_ID]];
    const char *cat = col[MF_CATEGORY] >= 0 ? f[col[MF_CATEGORY]] : NULL;
    const char *split = col[MF_SPLIT] >= 0 ? f[col[MF_SPLIT]] : NULL;
    if (!id[0] || strchr(id, '/') || strstr(id, ".."))
        return cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: id '%s' empty or not a plain name", d->csv_path, line,
                            id);
    if (cat && (!cat[0] || strlen(cat) >= CX_EVAL_CATEGORY_LEN))
        return cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: category '%s' empty or longer than %d", d->csv_path,
                            line, cat, CX_EVAL_CATEGORY_LEN - 1);
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->img[i].name, id))
            return cx_error_set(err, CX_ERR_FORMAT, S, "%s:%d: id '%s' repeated (first on line %d)", d->csv_path,
                                line, id, d->img[i].line);
    ev_image *im = find_or_add(d, id);
    if (im) {
        size_t fl = strlen(id) + 16;
        im->line = line;
        cx_free(im->file); /* find_or_add's images/<id>: this form's files are images/<id>.png */
        im->file = cx_malloc(fl);
        if (im->file)
            snprintf(im->file, fl, "images/%s.png", id);
        im->category = cat ? cx_strdup(cat) : NULL;
        im->source_split = split ? cx_strdup(split) : NULL;
    }
    if (!im || !im->file || (cat && !im->category) || (split && !im->source_split))
        return cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
    return CX_OK;
}

static cx_status open_maskfolder(const char *dir, cx_eval_dataset **out, cx_error *err)
{
    static const char *const cols[] = {"id", "category", "source_split"};
    cx_status st = open_table(dataset_new(dir, CX_EVAL_FORM_MASKFOLDER, "manifest.csv"), cols, 3, 1, manifest_row,
                              out, err);
    if (st == CX_OK) { /* a column is on every row or on none (csv_table has at least one row) */
        (*out)->has_category = (*out)->img[0].category != NULL;
        (*out)->has_source_split = (*out)->img[0].source_split != NULL;
    }
    return st;
}

/* 1 when dir/name is a file (a folder if want_dir), 0 when not, -1 out of memory. */
static int path_exists(const char *dir, const char *name, int want_dir)
{
    size_t pl = strlen(dir) + strlen(name) + 2;
    char *p = cx_malloc(pl);
    if (!p)
        return -1;
    snprintf(p, pl, "%s/%s", dir, name);
    struct stat sb;
    int ok = stat(p, &sb) == 0 && (want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
    cx_free(p);
    return ok;
}

cx_status cx_eval_dataset_open(const char *dir, cx_eval_dataset **out, cx_error *err)
{
    int st = path_exists(dir, "structure.csv", 0), mf = 0, im = 0;
    if (st == 0 && (mf = path_exists(dir, "manifest.csv", 0)) == 1)
        im = path_exists(dir, "images", 1);
    if (st < 0 || mf < 0 || im < 0)
        return cx_error_set(err, CX_ERR_NOMEM, "dataset", "out of memory");
    if (st)
        return open_structure(dir, out, err);
    if (mf && im)
        return open_maskfolder(dir, out, err);
    return cx_error_set(err, CX_ERR_IO, "dataset",
                        "%s: neither structure.csv (structure form) nor manifest.csv and images/ (mask-folder form)",
                        dir);
}

cx_eval_form cx_eval_dataset_form(const cx_eval_dataset *d) { return d->form; }

int cx_eval_dataset_count(const cx_eval_dataset *d) { return d ? d->n : 0; }

const char *cx_eval_dataset_file(const cx_eval_dataset *d, int i)
{
    return d && i >= 0 && i < d->n ? d->img[i].file : NULL;
}

const char *cx_eval_dataset_category(const cx_eval_dataset *d, int i)
{
    return d && i >= 0 && i < d->n ? d->img[i].category : NULL;
}

const char *cx_eval_dataset_source_split(const cx_eval_dataset *d, int i)
{
    return d && i >= 0 && i < d->n ? d->img[i].source_split : NULL;
}

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
            return cx_error_set(err, CX_ERR_FORMAT, "dataset", "the list names '%s' %s%s", names[k],
                                found < 0 ? "which is not in " : "twice", found < 0 ? d->csv_path : "");
        }
        used[found] = 1;
        sel[k] = d->img[found];
    }
    for (int i = 0; i < d->n; i++)
        if (!used[i])
            image_free(&d->img[i]);
    cx_free(d->img);
    cx_free(used);
    d->img = sel;
    d->n = d->cap = n;
    return CX_OK;
}

cx_status cx_eval_dataset_filter(cx_eval_dataset *d, const char *source_split,
                                 const char *const *categories, int n_categories, cx_error *err)
{
    const char *S = "dataset";
    if (source_split && !d->has_source_split)
        return cx_error_set(err, CX_ERR_FORMAT, S, "%s has no source_split column to select '%s' by",
                            d->csv_path, source_split);
    if (n_categories > 0 && !d->has_category)
        return cx_error_set(err, CX_ERR_FORMAT, S, "%s has no category column to select by", d->csv_path);
    int kept = 0;
    for (int i = 0; i < d->n; i++) {
        ev_image *im = &d->img[i];
        int ok = !source_split || !strcmp(im->source_split, source_split);
        if (ok && n_categories > 0) {
            ok = 0;
            for (int c = 0; c < n_categories && !ok; c++)
                ok = !strcmp(im->category, categories[c]);
        }
        if (ok)
            d->img[kept++] = *im;
        else
            image_free(im);
    }
    d->n = kept;
    if (kept == 0)
        return cx_error_set(err, CX_ERR_FORMAT, S, "%s: no image left after selecting%s%s%s", d->csv_path,
                            source_split ? " source_split " : "", source_split ? source_split : "",
                            n_categories ? " and the categories asked for" : "");
    return CX_OK;
}

/* ---------------- split.json / holdout.json (libjansson) ---------------- */

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
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return cx_error_set(err, access(path, R_OK) ? CX_ERR_IO : CX_ERR_FORMAT, S, "%s:%d:%d: %s", path, je.line,
                            je.column, je.text);
    cx_status st = CX_OK;
    char **list = NULL;
    int cnt = 0;
    json_t *arr = json_object_get(root, key);
    if (!json_is_object(root))
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: not a JSON object", path);
    else if (!arr)
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: no key \"%s\"", path, key);
    else if (!json_is_array(arr))
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: \"%s\" is not an array", path, key);
    else if (json_array_size(arr) == 0)
        st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: \"%s\" is empty", path, key);
    else if (!(list = cx_calloc(json_array_size(arr), sizeof *list)))
        st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
    for (size_t i = 0; st == CX_OK && i < json_array_size(arr); i++) {
        const char *v = json_string_value(json_array_get(arr, i));
        if (!v)
            st = cx_error_set(err, CX_ERR_FORMAT, S, "%s: \"%s\" item %zu is not a string", path, key, i);
        else if (!(list[cnt] = cx_strdup(v)))
            st = cx_error_set(err, CX_ERR_NOMEM, S, "out of memory");
        else
            cnt++;
    }
    json_decref(root);
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

/* Dataset class names (normalised) that mean a model class of the given short name, besides the
 * name itself. "infection" is the mask-folder form's finding folder (COVID-QU-Ex: GGO and
 * consolidation outlined together); for an old GGO-only model it is the nearest ground truth there
 * is. The structure form's consolidation rows join GGO for opacity only, so a ggo model keeps its
 * GGO-only figures. The lung folder is split into "right_lung" / "left_lung" by cx_eval_split_lungs. */
static const char *const class_aliases[][8] = {
    {"ggo", "ground_glass_opacities", "ground_glass_opacity", "ground_glass", "infection", NULL},
    {"opacity", "ground_glass_opacities", "ground_glass_opacity", "ground_glass", "consolidation",
     "consolidations", "infection", NULL},
    {"right_lung", "lung_right", NULL},
    {"left_lung", "lung_left", NULL},
    {"consolidation", "consolidations", NULL},
};

static int class_matches(const char *model_name, const char *model_meaning, const char *ds)
{
    char a[256], b[256], c[256];
    norm_class(ds, a, sizeof a);
    norm_class(model_name ? model_name : "", b, sizeof b);
    norm_class(model_meaning ? model_meaning : "", c, sizeof c);
    if (!a[0])
        return 0;
    if (!strcmp(a, b) || (c[0] && !strcmp(a, c)))
        return 1;
    for (size_t i = 0; i < sizeof class_aliases / sizeof class_aliases[0]; i++)
        if (!strcmp(b, class_aliases[i][0]))
            for (int k = 1; k < 8 && class_aliases[i][k]; k++)
                if (!strcmp(a, class_aliases[i][k]))
                    return 1;
    return 0;
}

int cx_eval_class_matches(const char *model_class_name, const char *dataset_class)
{
    return class_matches(model_class_name, NULL, dataset_class);
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
    cx_free(gt->lung);
    memset(gt, 0, sizeof *gt);
}

/* Relabels the 8-connected region of pixels labelled `from` that holds pixel s to `to` (stack: room
 * for w*h entries); returns its size. */
static size_t flood(int32_t *inst, int w, int h, size_t s, int32_t from, int32_t to, int32_t *stack)
{
    size_t sp = 0, members = 0;
    stack[sp++] = (int32_t)s;
    inst[s] = to;
    while (sp) {
        int32_t p = stack[--sp];
        members++;
        int x = p % w, y = p / w;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int xx = x + dx, yy = y + dy;
                if ((dx || dy) && xx >= 0 && yy >= 0 && xx < w && yy < h) {
                    size_t q = (size_t)yy * w + xx;
                    if (inst[q] == from) {
                        inst[q] = to;
                        stack[sp++] = (int32_t)q;
                    }
                }
            }
    }
    return members;
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
    enum { UNSEEN = -2, DROPPED = -1 }; /* foreground not yet labelled; a region below min_px */
    for (size_t i = 0; i < n; i++)
        inst[i] = mask[i] ? UNSEEN : 0;
    int32_t next = 1;
    for (size_t s = 0; s < n; s++) {
        if (inst[s] != UNSEEN)
            continue;
        size_t members = flood(inst, w, h, s, UNSEEN, next, stack);
        if ((int64_t)members < min_px) {
            flood(inst, w, h, s, next, DROPPED, stack); /* so the scan does not revisit it */
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

/* ---------------- mask-folder form ---------------- */

#define LUNG_MIN_FRACTION 0.01 /* models/train/maskfolder.py MIN_LUNG_FRACTION */

typedef struct lung_region {
    int64_t px, col_sum;
    int col_min, col_max;
} lung_region;

static double region_mean_col(const lung_region *r) { return (double)r->col_sum / (double)r->px; }

cx_status cx_eval_split_lungs(const uint8_t *lung, int w, int h, uint8_t *right, uint8_t *left,
                              int *ambiguous, cx_error *err)
{
    if (w < 1 || h < 1 || w > CX_EVAL_MAX_SIDE || h > CX_EVAL_MAX_SIDE)
        return cx_error_set(err, CX_ERR_INVALID, "lung split", "size %dx%d out of range", w, h);
    size_t n = (size_t)w * h;
    int32_t *inst = cx_malloc(n * sizeof *inst);
    int64_t *area = NULL;
    int nr = 0;
    if (!inst)
        return cx_error_set(err, CX_ERR_NOMEM, "lung split", "out of memory");
    cx_status st = label_regions(lung, w, h, 0, 1, inst, &nr, &area, err);
    if (st != CX_OK) {
        cx_free(inst);
        return st;
    }
    lung_region *rg = cx_calloc((size_t)nr + 1, sizeof *rg);
    if (!rg) {
        cx_free(inst);
        cx_free(area);
        return cx_error_set(err, CX_ERR_NOMEM, "lung split", "out of memory");
    }
    for (int r = 1; r <= nr; r++) {
        rg[r].col_min = w;
        rg[r].col_max = -1;
    }
    for (size_t q = 0; q < n; q++) {
        int r = inst[q];
        if (!r)
            continue;
        int x = (int)(q % (size_t)w);
        rg[r].px++;
        rg[r].col_sum += x;
        if (x < rg[r].col_min)
            rg[r].col_min = x;
        if (x > rg[r].col_max)
            rg[r].col_max = x;
    }
    /* the two largest regions of at least 1 % of the image (ties: the first in scan order) */
    double need = LUNG_MIN_FRACTION * (double)n;
    int a = 0, b = 0;
    for (int r = 1; r <= nr; r++) {
        if ((double)rg[r].px < need)
            continue;
        if (!a || rg[r].px > rg[a].px) {
            b = a;
            a = r;
        } else if (!b || rg[r].px > rg[b].px) {
            b = r;
        }
    }
    int amb = !b;
    if (!amb) {
        if (region_mean_col(&rg[b]) < region_mean_col(&rg[a])) { /* a: the image's left */
            int t = a;
            a = b;
            b = t;
        }
        int lo = rg[a].col_min > rg[b].col_min ? rg[a].col_min : rg[b].col_min;
        int hi = rg[a].col_max < rg[b].col_max ? rg[a].col_max : rg[b].col_max;
        int wa = rg[a].col_max - rg[a].col_min + 1, wb = rg[b].col_max - rg[b].col_min + 1;
        amb = (double)(hi - lo + 1) > 0.5 * (double)(wa < wb ? wa : wb);
    }
    memset(right, 0, n);
    memset(left, 0, n);
    if (!amb) {
        /* side of every region: the fields are themselves, the others join the nearer field */
        uint8_t *side = cx_malloc((size_t)nr + 1);
        if (!side) {
            cx_free(rg);
            cx_free(inst);
            cx_free(area);
            return cx_error_set(err, CX_ERR_NOMEM, "lung split", "out of memory");
        }
        double ca = region_mean_col(&rg[a]), cb = region_mean_col(&rg[b]);
        for (int r = 1; r <= nr; r++) {
            double c = region_mean_col(&rg[r]);
            side[r] = r == a ? 0 : r == b ? 1 : fabs(c - ca) <= fabs(c - cb) ? 0 : 1;
        }
        for (size_t q = 0; q < n; q++)
            if (inst[q]) {
                if (side[inst[q]])
                    left[q] = 1;
                else
                    right[q] = 1;
            }
        cx_free(side);
    }
    cx_free(rg);
    cx_free(inst);
    cx_free(area);
    *ambiguous = amb;
    return CX_OK;
}

/* Reads a full-size grey mask (object = value > 0) through the image module's PNG reader and
 * checks it has the image's size. */
static cx_status read_grey_mask(const cx_eval_dataset *d, const char *folder, const ev_image *im,
                                int width, int height, uint8_t **out, cx_error *err)
{
    size_t pl = strlen(d->dir) + strlen(folder) + strlen(im->name) + 8;
    char *path = cx_malloc(pl);
    if (!path)
        return cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
    snprintf(path, pl, "%s/%s/%s.png", d->dir, folder, im->name);
    cx_image *img = NULL;
    cx_status st = cx_image_read(path, &img, NULL, err);
    if (st != CX_OK) {
        cx_error_prefix(err, "ground truth");
        cx_free(path);
        return st;
    }
    if (img->width != width || img->height != height) {
        st = cx_error_set(err, CX_ERR_FORMAT, "ground truth", "%s: mask %dx%d but the image %s/%s is %dx%d",
                          path, img->width, img->height, d->dir, im->file, width, height);
        cx_image_free(img);
        cx_free(path);
        return st;
    }
    cx_free(path);
    size_t n = (size_t)width * height;
    uint8_t *m = cx_malloc(n);
    if (!m) {
        cx_image_free(img);
        return cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
    }
    for (size_t q = 0; q < n; q++)
        m[q] = img->data[q] > 0;
    cx_image_free(img);
    *out = m;
    return CX_OK;
}

/* masks[1..k] (zeroed, width*height) of a mask-folder image, its whole lung and the side flag. */
static cx_status maskfolder_masks(const cx_eval_dataset *d, const ev_image *im, const char *const *names,
                                  int k, int width, int height, uint8_t **masks, uint8_t **lung_out,
                                  int *side_unknown, cx_error *err)
{
    size_t n = (size_t)width * height;
    uint8_t *lung = NULL, *inf = NULL, *right = NULL, *left = NULL;
    int amb = 1;
    cx_status st = read_grey_mask(d, "lung", im, width, height, &lung, err);
    if (st == CX_OK)
        st = read_grey_mask(d, "infection", im, width, height, &inf, err);
    if (st == CX_OK && (!(right = cx_malloc(n)) || !(left = cx_malloc(n))))
        st = cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
    if (st == CX_OK)
        st = cx_eval_split_lungs(lung, width, height, right, left, &amb, err);
    if (st == CX_OK) {
        for (int l = 1; l <= k; l++) {
            const uint8_t *src = class_matches(names[l], NULL, "infection")    ? inf
                                 : class_matches(names[l], NULL, "Right Lung") ? right
                                 : class_matches(names[l], NULL, "Left Lung")  ? left
                                                                                : NULL;
            if (src)
                for (size_t q = 0; q < n; q++)
                    masks[l][q] |= src[q];
        }
        *lung_out = lung;
        *side_unknown = amb;
        lung = NULL;
    }
    cx_free(lung);
    cx_free(inf);
    cx_free(right);
    cx_free(left);
    return st;
}

/* ---------------- ground truth of one image ---------------- */

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
    uint8_t *masks[CX_EVAL_MAX_CLASSES + 1] = {0}, *lung = NULL;
    int side_unknown = 0;
    cx_status st = CX_OK;
    for (int l = 1; l <= k; l++)
        if (!(masks[l] = cx_calloc(n, 1))) {
            st = cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
            goto done;
        }
    if (d->form == CX_EVAL_FORM_MASKFOLDER) {
        st = maskfolder_masks(d, im, names, k, width, height, masks, &lung, &side_unknown, err);
        if (st != CX_OK)
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
    if (!lung) { /* structure form: the lung is the union of the lung classes */
        if (!(lung = cx_calloc(n, 1))) {
            st = cx_error_set(err, CX_ERR_NOMEM, "ground truth", "out of memory");
            goto done;
        }
        for (int l = 1; l <= k; l++)
            if (is_lung_name(names[l]))
                for (size_t q = 0; q < n; q++)
                    lung[q] |= masks[l][q];
    }
    st = cx_eval_gt_from_masks((const uint8_t *const *)masks, k, width, height, p, out, err);
    if (st == CX_OK) {
        out->lung = lung;
        out->lung_side_unknown = side_unknown;
        lung = NULL;
    }
done:
    for (int l = 1; l <= k; l++)
        cx_free(masks[l]);
    cx_free(lung);
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

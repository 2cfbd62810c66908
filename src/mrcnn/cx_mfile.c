/* cx_mfile: parses the model container from an mmapped file. The header and tables are copied
 * into owned structures after every length is checked; tensor data stays in the mapping. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cx_mfile.h"

#define MAGIC "CXSEGMDL"
#define HEADER_SIZE 64
#define MAX_ENTRIES 1000000u
#define MAX_NAME 4096u

struct cx_mfile {
    char *path;
    const unsigned char *map;
    size_t size;
    int n_meta, n_tensors;
    cx_meta *meta;
    cx_tensor_ref *tensors;
    char sha[65];
    int has_integrity;
};

/* The integrity digests (models/FORMAT.md "Integrity"): SHA-256 of the metadata entries other
 * than integrity.* and of the tensor table, in file order (meta), and of the tensor data region
 * (data). Filled while parsing. */
typedef struct digests {
    EVP_MD_CTX *meta;
    unsigned char meta_sha[32], data_sha[32];
} digests;

static void hex32(const unsigned char h[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Bounded little-endian cursor over [pos, end). */
typedef struct cur {
    const unsigned char *p;
    size_t pos, end;
} cur;

static int rd(cur *c, void *dst, size_t n)
{
    if (n > c->end - c->pos)
        return 0;
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return 1;
}

static int rd_u32(cur *c, uint32_t *v)
{
    unsigned char b[4];
    if (!rd(c, b, 4))
        return 0;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 1;
}

static int rd_u64(cur *c, uint64_t *v)
{
    uint32_t lo, hi;
    if (!rd_u32(c, &lo) || !rd_u32(c, &hi))
        return 0;
    *v = (uint64_t)hi << 32 | lo;
    return 1;
}

/* Reads a u32-length-prefixed string into a fresh NUL-terminated copy. 0 = truncated/too long,
 * -1 = out of memory. */
static int rd_str(cur *c, char **out, uint32_t max)
{
    uint32_t n;
    if (!rd_u32(c, &n) || n > max || n > c->end - c->pos)
        return 0;
    char *s = cx_malloc((size_t)n + 1);
    if (!s)
        return -1;
    memcpy(s, c->p + c->pos, n);
    s[n] = 0;
    c->pos += n;
    if (strlen(s) != n) {   /* embedded NUL */
        cx_free(s);
        return 0;
    }
    *out = s;
    return 1;
}

void cx_mfile_free(cx_mfile *mf)
{
    if (!mf)
        return;
    for (int i = 0; i < mf->n_meta; i++) {
        cx_meta *m = &mf->meta[i];
        cx_free(m->key);
        cx_free(m->i);
        cx_free(m->f);
        if (m->s)
            for (int j = 0; j < m->count; j++)
                cx_free(m->s[j]);
        cx_free(m->s);
    }
    cx_free(mf->meta);
    for (int i = 0; i < mf->n_tensors; i++)
        cx_free(mf->tensors[i].name);
    cx_free(mf->tensors);
    if (mf->map)
        munmap((void *)mf->map, mf->size);
    cx_free(mf->path);
    cx_free(mf);
}

#define FAIL(code, ...) do { st = cx_error_set(err, code, "model", __VA_ARGS__); goto fail; } while (0)

static cx_status parse_meta(cx_mfile *mf, cur *c, EVP_MD_CTX *dig, cx_error *err)
{
    cx_status st = CX_OK;
    for (int i = 0; i < mf->n_meta; i++) {
        cx_meta *m = &mf->meta[i];
        size_t at = c->pos;
        int r = rd_str(c, &m->key, 255);
        if (r < 0)
            FAIL(CX_ERR_NOMEM, "out of memory");
        if (r == 0)
            FAIL(CX_ERR_MODEL, "%s: metadata entry %d of %d at byte %zu: key truncated or longer than 255",
                 mf->path, i + 1, mf->n_meta, at);
        for (int j = 0; j < i; j++)
            if (!strcmp(mf->meta[j].key, m->key))
                FAIL(CX_ERR_MODEL, "%s: metadata key '%s' appears twice", mf->path, m->key);
        uint32_t type, n = 1;
        if (!rd_u32(c, &type))
            FAIL(CX_ERR_MODEL, "%s: metadata '%s': type truncated at byte %zu", mf->path, m->key, c->pos);
        if (type < CX_META_I64 || type > CX_META_STR_ARRAY)
            FAIL(CX_ERR_MODEL, "%s: metadata '%s': unknown type %u (expected 1..6)", mf->path, m->key, type);
        m->type = (cx_meta_type)type;
        if (type >= CX_META_I64_ARRAY && !rd_u32(c, &n))
            FAIL(CX_ERR_MODEL, "%s: metadata '%s': array length truncated", mf->path, m->key);
        if (n > (c->end - c->pos) / (type == CX_META_STR_ARRAY ? 4 : 8))
            FAIL(CX_ERR_MODEL, "%s: metadata '%s': %u elements do not fit in the %zu bytes left", mf->path,
                 m->key, n, c->end - c->pos);
        m->count = (int)n;
        if (type == CX_META_STR || type == CX_META_STR_ARRAY) {
            m->s = cx_calloc(n ? n : 1, sizeof(char *));
            if (!m->s)
                FAIL(CX_ERR_NOMEM, "out of memory");
            for (uint32_t j = 0; j < n; j++) {
                r = rd_str(c, &m->s[j], 1u << 20);
                if (r < 0)
                    FAIL(CX_ERR_NOMEM, "out of memory");
                if (r == 0)
                    FAIL(CX_ERR_MODEL, "%s: metadata '%s': string %u truncated or invalid", mf->path, m->key, j);
            }
        } else {
            m->i = cx_calloc(n ? n : 1, sizeof(int64_t));
            m->f = cx_calloc(n ? n : 1, sizeof(double));
            if (!m->i || !m->f)
                FAIL(CX_ERR_NOMEM, "out of memory");
            for (uint32_t j = 0; j < n; j++) {
                uint64_t v;
                if (!rd_u64(c, &v))
                    FAIL(CX_ERR_MODEL, "%s: metadata '%s': value %u truncated", mf->path, m->key, j);
                if (type == CX_META_I64 || type == CX_META_I64_ARRAY) {
                    m->i[j] = (int64_t)v;
                    m->f[j] = (double)m->i[j];
                } else {
                    memcpy(&m->f[j], &v, 8);
                    double d = m->f[j];
                    m->i[j] = (isfinite(d) && fabs(d) < 9e18) ? (int64_t)d : 0;
                }
            }
        }
        if (strncmp(m->key, "integrity.", 10) != 0)
            EVP_DigestUpdate(dig, c->p + at, c->pos - at);
    }
fail:
    return st;
}

static cx_status parse_tensors(cx_mfile *mf, cur *c, uint64_t data_off, uint64_t data_size, cx_error *err)
{
    cx_status st = CX_OK;
    for (int i = 0; i < mf->n_tensors; i++) {
        cx_tensor_ref *t = &mf->tensors[i];
        int r = rd_str(c, &t->name, MAX_NAME);
        if (r < 0)
            FAIL(CX_ERR_NOMEM, "out of memory");
        if (r == 0)
            FAIL(CX_ERR_MODEL, "%s: tensor entry %d of %d: name truncated", mf->path, i + 1, mf->n_tensors);
        uint32_t dt, nd;
        if (!rd_u32(c, &dt) || !rd_u32(c, &nd))
            FAIL(CX_ERR_MODEL, "%s: tensor '%s': entry truncated", mf->path, t->name);
        if (dt > CX_DT_I32)
            FAIL(CX_ERR_MODEL, "%s: tensor '%s': unknown dtype %u", mf->path, t->name, dt);
        if (nd > CX_MFILE_MAX_DIMS)
            FAIL(CX_ERR_MODEL, "%s: tensor '%s': %u dimensions (at most %d)", mf->path, t->name, nd,
                 CX_MFILE_MAX_DIMS);
        t->dtype = (cx_dtype)dt;
        t->ndim = (int)nd;
        size_t elems = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            if (!rd_u64(c, &v))
                FAIL(CX_ERR_MODEL, "%s: tensor '%s': shape truncated", mf->path, t->name);
            if (v > (1u << 31) || !cx_size_mul(elems, (size_t)v, &elems))
                FAIL(CX_ERR_MODEL, "%s: tensor '%s': dimension %u = %llu too large", mf->path, t->name, d,
                     (unsigned long long)v);
            t->dims[d] = (int64_t)v;
        }
        uint64_t off, nb;
        if (!rd_u64(c, &off) || !rd_u64(c, &nb))
            FAIL(CX_ERR_MODEL, "%s: tensor '%s': offset/size truncated", mf->path, t->name);
        size_t es = t->dtype == CX_DT_U8 ? 1 : 4, want;
        if (!cx_size_mul(elems, es, &want) || want != nb)
            FAIL(CX_ERR_MODEL, "%s: tensor '%s': %llu bytes stored, shape needs %zu", mf->path, t->name,
                 (unsigned long long)nb, elems * es);
        if (off % 64)
            FAIL(CX_ERR_MODEL, "%s: tensor '%s': offset %llu not 64-byte aligned", mf->path, t->name,
                 (unsigned long long)off);
        if (off > data_size || nb > data_size - off)
            FAIL(CX_ERR_MODEL, "%s: tensor '%s': offset %llu + %llu bytes beyond data size %llu", mf->path,
                 t->name, (unsigned long long)off, (unsigned long long)nb, (unsigned long long)data_size);
        for (int j = 0; j < i; j++)
            if (!strcmp(mf->tensors[j].name, t->name))
                FAIL(CX_ERR_MODEL, "%s: tensor '%s' appears twice", mf->path, t->name);
        t->nbytes = (size_t)nb;
        t->data = mf->map + data_off + off;
    }
fail:
    return st;
}

/* The file's SHA-256 (mf->sha, the "model file hash" results record) and the data region's, in one
 * pass over the mapping. */
static cx_status hash_file(cx_mfile *mf, size_t data_off, digests *dg, cx_error *err)
{
    EVP_MD_CTX *file = EVP_MD_CTX_new(), *data = EVP_MD_CTX_new();
    int ok = file && data && EVP_DigestInit_ex(file, EVP_sha256(), NULL) && EVP_DigestInit_ex(data, EVP_sha256(), NULL);
    ok = ok && EVP_DigestUpdate(file, mf->map, data_off);
    for (size_t at = data_off; ok && at < mf->size;) {
        size_t n = mf->size - at < ((size_t)1 << 20) ? mf->size - at : (size_t)1 << 20;
        ok = EVP_DigestUpdate(file, mf->map + at, n) && EVP_DigestUpdate(data, mf->map + at, n);
        at += n;
    }
    unsigned char h[32];
    ok = ok && EVP_DigestFinal_ex(file, h, NULL) && EVP_DigestFinal_ex(data, dg->data_sha, NULL);
    EVP_MD_CTX_free(file);
    EVP_MD_CTX_free(data);
    if (!ok)
        return cx_error_set(err, CX_ERR_NOMEM, "model", "%s: SHA-256 failed (libcrypto)", mf->path);
    hex32(h, mf->sha);
    return CX_OK;
}

/* integrity.meta_sha256 / integrity.data_sha256 (both or neither) against what was computed. */
static cx_status check_integrity(cx_mfile *mf, const digests *dg, cx_error *err)
{
    static const char *const key[2] = {"integrity.meta_sha256", "integrity.data_sha256"};
    static const char *const what[2] = {"metadata and tensor table", "tensor data"};
    const unsigned char *got[2] = {dg->meta_sha, dg->data_sha};
    const cx_meta *m[2] = {cx_mfile_meta(mf, key[0]), cx_mfile_meta(mf, key[1])};
    if (!m[0] && !m[1])
        return CX_OK;
    for (int i = 0; i < 2; i++) {
        if (!m[i] || m[i]->type != CX_META_STR || strlen(m[i]->s[0]) != 64)
            return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' missing or not 64 hex digits "
                                "(integrity digests come in pairs)", mf->path, key[i]);
        char hex[65];
        hex32(got[i], hex);
        if (strcasecmp(hex, m[i]->s[0]) != 0)
            return cx_error_set(err, CX_ERR_MODEL, "model", "%s: %s digest mismatch: the file records %s, its "
                                "content hashes to %s (corrupted or changed after export; re-copy or "
                                "re-export it)", mf->path, what[i], m[i]->s[0], hex);
    }
    mf->has_integrity = 1;
    return CX_OK;
}

cx_status cx_mfile_open(const char *path, cx_mfile **out, cx_error *err)
{
    cx_status st = CX_OK;
    digests dg = {0};
    if (!path || !out)
        return cx_error_set(err, CX_ERR_INVALID, "model", "NULL argument");
    cx_mfile *mf = cx_calloc(1, sizeof *mf);
    if (!mf || !(mf->path = cx_strdup(path))) {
        cx_free(mf);
        return cx_error_set(err, CX_ERR_NOMEM, "model", "out of memory");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        FAIL(CX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        FAIL(CX_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        FAIL(CX_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < HEADER_SIZE) {
        close(fd);
        FAIL(CX_ERR_MODEL, "%s: %lld bytes, shorter than the %d-byte header (truncated?)", path,
             (long long)sb.st_size, HEADER_SIZE);
    }
    mf->size = (size_t)sb.st_size;
    void *map = mmap(NULL, mf->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        FAIL(CX_ERR_IO, "%s: mmap of %zu bytes failed: %s", path, mf->size, strerror(errno));
    mf->map = map;
    if (memcmp(mf->map, MAGIC, 8) != 0)
        FAIL(CX_ERR_MODEL, "%s: bad magic (not a cxrseg model file; expected \"%s\")", path, MAGIC);
    cur c = {mf->map, 8, HEADER_SIZE};
    uint32_t version, n_meta, n_tensors, reserved;
    uint64_t data_off, data_size;
    rd_u32(&c, &version);
    rd_u32(&c, &n_meta);
    rd_u32(&c, &n_tensors);
    rd_u32(&c, &reserved);
    rd_u64(&c, &data_off);
    rd_u64(&c, &data_size);
    if (version != CX_MFILE_VERSION)
        FAIL(CX_ERR_MODEL, "%s: format version %u, this build reads version %d", path, version, CX_MFILE_VERSION);
    if (n_meta > MAX_ENTRIES || n_tensors > MAX_ENTRIES)
        FAIL(CX_ERR_MODEL, "%s: %u metadata entries / %u tensors (limit %u)", path, n_meta, n_tensors, MAX_ENTRIES);
    if (data_off > mf->size)
        FAIL(CX_ERR_MODEL, "%s: header says the data starts at byte %llu, the file has %zu bytes (truncated?)",
             path, (unsigned long long)data_off, mf->size);
    if (data_off % 64 || data_off < HEADER_SIZE)
        FAIL(CX_ERR_MODEL, "%s: data offset %llu invalid (file is %zu bytes, must be 64-aligned)", path,
             (unsigned long long)data_off, mf->size);
    if (data_size != mf->size - data_off)
        FAIL(CX_ERR_MODEL, "%s: header says %llu data bytes at %llu, the file has %zu (truncated?)", path,
             (unsigned long long)data_size, (unsigned long long)data_off, mf->size - (size_t)data_off);
    mf->meta = cx_calloc(n_meta ? n_meta : 1, sizeof(cx_meta));
    mf->tensors = cx_calloc(n_tensors ? n_tensors : 1, sizeof(cx_tensor_ref));
    if (!mf->meta || !mf->tensors)
        FAIL(CX_ERR_NOMEM, "out of memory");
    mf->n_meta = (int)n_meta;
    mf->n_tensors = (int)n_tensors;
    c.pos = HEADER_SIZE;
    c.end = (size_t)data_off;
    if (!(dg.meta = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(dg.meta, EVP_sha256(), NULL))
        FAIL(CX_ERR_NOMEM, "out of memory (libcrypto digest)");
    if ((st = parse_meta(mf, &c, dg.meta, err)) != CX_OK)
        goto fail;
    size_t table = c.pos;
    if ((st = parse_tensors(mf, &c, data_off, data_size, err)) != CX_OK)
        goto fail;
    EVP_DigestUpdate(dg.meta, mf->map + table, c.pos - table);
    EVP_DigestFinal_ex(dg.meta, dg.meta_sha, NULL);
    if ((st = hash_file(mf, (size_t)data_off, &dg, err)) != CX_OK)
        goto fail;
    if ((st = check_integrity(mf, &dg, err)) != CX_OK)
        goto fail;
    EVP_MD_CTX_free(dg.meta);
    *out = mf;
    return CX_OK;
fail:
    EVP_MD_CTX_free(dg.meta);
    cx_mfile_free(mf);
    return st;
}

void cx_mfile_drop(cx_mfile *mf, const void *data, size_t bytes)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)data, b = a + bytes, lo = (uintptr_t)mf->map, hi = lo + mf->size;
    if (pg <= 0 || a < lo || b > hi)
        return;
    a = (a + (uintptr_t)pg - 1) / (uintptr_t)pg * (uintptr_t)pg;
    b = b / (uintptr_t)pg * (uintptr_t)pg;
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

const char *cx_mfile_path(const cx_mfile *mf) { return mf->path; }
const char *cx_mfile_sha256(const cx_mfile *mf) { return mf->sha; }
int cx_mfile_has_integrity(const cx_mfile *mf) { return mf->has_integrity; }
size_t cx_mfile_size(const cx_mfile *mf) { return mf->size; }
int cx_mfile_meta_count(const cx_mfile *mf) { return mf->n_meta; }
const cx_meta *cx_mfile_meta_at(const cx_mfile *mf, int i) { return (i >= 0 && i < mf->n_meta) ? &mf->meta[i] : NULL; }
int cx_mfile_tensor_count(const cx_mfile *mf) { return mf->n_tensors; }
cx_tensor_ref *cx_mfile_tensor_at(cx_mfile *mf, int i) { return (i >= 0 && i < mf->n_tensors) ? &mf->tensors[i] : NULL; }

const cx_meta *cx_mfile_meta(const cx_mfile *mf, const char *key)
{
    for (int i = 0; i < mf->n_meta; i++)
        if (!strcmp(mf->meta[i].key, key))
            return &mf->meta[i];
    return NULL;
}

cx_tensor_ref *cx_mfile_tensor(cx_mfile *mf, const char *name)
{
    for (int i = 0; i < mf->n_tensors; i++)
        if (!strcmp(mf->tensors[i].name, name)) {
            mf->tensors[i].used = 1;
            return &mf->tensors[i];
        }
    return NULL;
}

static const char *type_name(cx_meta_type t)
{
    static const char *n[] = {"?", "int", "float", "string", "int array", "float array", "string array"};
    return (t >= 1 && t <= 6) ? n[t] : "?";
}

cx_status cx_mfile_get_i64(const cx_mfile *mf, const char *key, int64_t *out, cx_error *err)
{
    const cx_meta *m = cx_mfile_meta(mf, key);
    if (!m)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' missing", mf->path, key);
    if (m->type == CX_META_F64 && m->f[0] == floor(m->f[0]) && fabs(m->f[0]) < 9e15) {
        *out = (int64_t)m->f[0];
        return CX_OK;
    }
    if (m->type != CX_META_I64)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' is a %s, expected an int", mf->path,
                            key, type_name(m->type));
    *out = m->i[0];
    return CX_OK;
}

cx_status cx_mfile_get_f64(const cx_mfile *mf, const char *key, double *out, cx_error *err)
{
    const cx_meta *m = cx_mfile_meta(mf, key);
    if (!m)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' missing", mf->path, key);
    if (m->type != CX_META_F64 && m->type != CX_META_I64)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' is a %s, expected a number",
                            mf->path, key, type_name(m->type));
    *out = m->f[0];
    return CX_OK;
}

cx_status cx_mfile_get_str(const cx_mfile *mf, const char *key, const char **out, cx_error *err)
{
    const cx_meta *m = cx_mfile_meta(mf, key);
    if (!m)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' missing", mf->path, key);
    if (m->type != CX_META_STR)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' is a %s, expected a string",
                            mf->path, key, type_name(m->type));
    *out = m->s[0];
    return CX_OK;
}

cx_status cx_mfile_get_f64s(const cx_mfile *mf, const char *key, int n, const double **out, int *count,
                            cx_error *err)
{
    const cx_meta *m = cx_mfile_meta(mf, key);
    if (!m)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' missing", mf->path, key);
    if (m->type != CX_META_F64_ARRAY && m->type != CX_META_I64_ARRAY)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' is a %s, expected a number array",
                            mf->path, key, type_name(m->type));
    if ((n >= 0 && m->count != n) || m->count == 0)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: metadata '%s' has %d values, expected %d",
                            mf->path, key, m->count, n < 0 ? 1 : n);
    *out = m->f;
    if (count)
        *count = m->count;
    return CX_OK;
}

cx_status cx_mfile_get_tensor(cx_mfile *mf, const char *name, cx_dtype dtype, int ndim, const int64_t *dims,
                              const void **data, cx_error *err)
{
    cx_tensor_ref *t = cx_mfile_tensor(mf, name);
    if (!t)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: tensor '%s' missing", mf->path, name);
    char want[128] = "", got[128] = "";
    size_t wl = 0, gl = 0;
    for (int d = 0; d < ndim && wl < sizeof want - 24; d++)
        wl += (size_t)snprintf(want + wl, sizeof want - wl, d ? " x %lld" : "%lld", (long long)dims[d]);
    for (int d = 0; d < t->ndim && gl < sizeof got - 24; d++)
        gl += (size_t)snprintf(got + gl, sizeof got - gl, d ? " x %lld" : "%lld", (long long)t->dims[d]);
    if (t->dtype != dtype)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: tensor '%s' has dtype %d, expected %d", mf->path,
                            name, (int)t->dtype, (int)dtype);
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->dims[d] == dims[d];
    if (!ok)
        return cx_error_set(err, CX_ERR_MODEL, "model", "%s: tensor '%s' has shape [%s], expected [%s]",
                            mf->path, name, got, want);
    *data = t->data;
    return CX_OK;
}

void cx_sha256(const void *data, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    if (!EVP_Digest(data, n, out, &len, EVP_sha256(), NULL))
        memset(out, 0, 32); /* only on allocation failure inside libcrypto */
}

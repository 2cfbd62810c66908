/* cx_mfile: reader of the cxrseg model container (models/FORMAT.md): header, typed key/value
 * metadata, tensor table, 64-byte aligned data mmapped read-only. The model loader (cx_model.c) and
 * the parity tests (reference outputs use the same container) read through it. Every count, length
 * and offset is checked against the file size before use. */
#ifndef CX_MFILE_H
#define CX_MFILE_H

#include <stddef.h>
#include <stdint.h>
#include "cx_base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CX_MFILE_VERSION 1
#define CX_MFILE_MAX_DIMS 6

typedef enum cx_meta_type {
    CX_META_I64 = 1, CX_META_F64 = 2, CX_META_STR = 3,
    CX_META_I64_ARRAY = 4, CX_META_F64_ARRAY = 5, CX_META_STR_ARRAY = 6
} cx_meta_type;

typedef struct cx_meta {
    char *key;
    cx_meta_type type;
    int count;          /* 1 for scalars and strings */
    int64_t *i;         /* I64 / I64_ARRAY */
    double *f;          /* F64 / F64_ARRAY */
    char **s;           /* STR / STR_ARRAY (NUL-terminated copies) */
} cx_meta;

typedef enum cx_dtype { CX_DT_F32 = 0, CX_DT_U8 = 1, CX_DT_I32 = 2 } cx_dtype;

typedef struct cx_tensor_ref {
    char *name;
    cx_dtype dtype;
    int ndim;
    int64_t dims[CX_MFILE_MAX_DIMS];
    size_t nbytes;
    const void *data;   /* into the mapping: valid until cx_mfile_free, 64-byte aligned */
    int used;           /* set by lookups, so a loader can report tensors it never asked for */
} cx_tensor_ref;

typedef struct cx_mfile cx_mfile;

/* Opens and validates path. On failure *out is untouched and err says what is wrong
 * ("model: <path>: tensor 'x' offset 123 + 456 bytes beyond data size 500"). */
cx_status cx_mfile_open(const char *path, cx_mfile **out, cx_error *err);
void cx_mfile_free(cx_mfile *mf);
/* The caller will not read [data, data + bytes) of the mapping again (it keeps a transformed copy):
 * the whole pages inside it leave the process's resident memory (they stay in the page cache and
 * would fault back in if read). */
void cx_mfile_drop(cx_mfile *mf, const void *data, size_t bytes);

const char *cx_mfile_path(const cx_mfile *mf);
/* SHA-256 of the whole file, 64 lowercase hex digits. */
const char *cx_mfile_sha256(const cx_mfile *mf);
size_t cx_mfile_size(const cx_mfile *mf);

int cx_mfile_meta_count(const cx_mfile *mf);
const cx_meta *cx_mfile_meta_at(const cx_mfile *mf, int i);
const cx_meta *cx_mfile_meta(const cx_mfile *mf, const char *key);   /* NULL when absent */
int cx_mfile_tensor_count(const cx_mfile *mf);
cx_tensor_ref *cx_mfile_tensor_at(cx_mfile *mf, int i);
cx_tensor_ref *cx_mfile_tensor(cx_mfile *mf, const char *name);      /* NULL when absent; marks used */

/* Typed metadata getters: fail with CX_ERR_MODEL naming the key when absent or of another type.
 * Integer getters accept F64 values that are whole numbers and vice versa. */
cx_status cx_mfile_get_i64(const cx_mfile *mf, const char *key, int64_t *out, cx_error *err);
cx_status cx_mfile_get_f64(const cx_mfile *mf, const char *key, double *out, cx_error *err);
cx_status cx_mfile_get_str(const cx_mfile *mf, const char *key, const char **out, cx_error *err);
/* Array of exactly n (n > 0) or any length (n = -1; *count receives it) numbers as doubles. */
cx_status cx_mfile_get_f64s(const cx_mfile *mf, const char *key, int n, const double **out, int *count,
                            cx_error *err);

/* Looks up a tensor and checks dtype and shape (ndim dims). Error names the tensor and numbers. */
cx_status cx_mfile_get_tensor(cx_mfile *mf, const char *name, cx_dtype dtype, int ndim,
                              const int64_t *dims, const void **data, cx_error *err);

/* SHA-256 helper (also used by tests). */
void cx_sha256(const void *data, size_t n, unsigned char out[32]);  /* libcrypto's */
/* 1 when the file carries integrity.meta_sha256 / integrity.data_sha256 and both matched at open
 * (a file whose digests do not match does not open). */
int cx_mfile_has_integrity(const cx_mfile *mf);

#ifdef __cplusplus
}
#endif
#endif

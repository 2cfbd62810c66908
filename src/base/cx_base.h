/* cx_base: status codes, caller-owned errors, the logging sink and the allocation hook.
 * Every other core module (image, config, nn, mrcnn, spool, pipeline) builds on this one;
 * it depends on nothing but libc. dicom/ does not include it (it has its own C header). */
#ifndef CX_BASE_H
#define CX_BASE_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. This enum only grows; values are stable (they appear in logs and exit codes). */
typedef enum cx_status {
    CX_OK = 0,
    CX_ERR_NOMEM = 1,       /* an allocation failed */
    CX_ERR_IO = 2,          /* open/read/write/fsync/rename failed */
    CX_ERR_FORMAT = 3,      /* malformed input: file, model, image */
    CX_ERR_UNSUPPORTED = 4, /* well-formed but not handled (colour, multi-frame, syntax) */
    CX_ERR_INVALID = 5,     /* invalid argument or parameter from the caller */
    CX_ERR_CONFIG = 6,      /* configuration invalid */
    CX_ERR_DICOM = 7,       /* error reported by the DICOM layer */
    CX_ERR_MODEL = 8,       /* model file invalid or inconsistent */
    CX_ERR_NETWORK = 9,     /* association / transfer failure */
    CX_ERR_FULL = 10,       /* disk, quota or queue full */
    CX_ERR_TIMEOUT = 11,
    CX_ERR_INTERNAL = 12    /* a bug: an invariant did not hold */
} cx_status;

/* Caller-owned error. Functions that fail fill it (when non-NULL) with the code and a message
 * that reads "stage: detail with the numbers"; on success they leave it untouched. */
#define CX_ERROR_MSG_MAX 512
typedef struct cx_error {
    cx_status code;
    char msg[CX_ERROR_MSG_MAX];
} cx_error;

/* Short stable name of a status ("nomem", "format", ...). Never NULL. */
const char *cx_status_name(cx_status s);

/* Sets err (if non-NULL) to code and "stage: <formatted detail>"; returns code so callers can
 * write `return cx_error_set(err, CX_ERR_FORMAT, "decode", "rows = %d", r);`. */
cx_status cx_error_set(cx_error *err, cx_status code, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
cx_status cx_error_setv(cx_error *err, cx_status code, const char *stage, const char *fmt, va_list ap);
/* Prefixes an existing message with "stage: " (keeps the code). */
void cx_error_prefix(cx_error *err, const char *stage);
void cx_error_clear(cx_error *err);

/* ---- Logging: one replaceable sink. Libraries never print; they call cx_log. ---- */
typedef enum cx_log_level { CX_LOG_ERROR = 0, CX_LOG_WARN = 1, CX_LOG_INFO = 2, CX_LOG_DEBUG = 3 } cx_log_level;
/* module: short name ("decode", "mrcnn"); job: job id or NULL; msg: one line without newline. */
typedef void (*cx_log_sink)(cx_log_level level, const char *module, const char *job, const char *msg,
                            void *user);
/* Installs the sink (NULL restores the default, which writes
 * "YYYY-mm-ddTHH:MM:SS.mmmZ level [module] job=<id> message" to stderr) and the maximum level. */
void cx_log_set_sink(cx_log_sink sink, void *user);
void cx_log_set_level(cx_log_level max_level);
cx_log_level cx_log_get_level(void);
void cx_log(cx_log_level level, const char *module, const char *job, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *cx_log_level_name(cx_log_level level);
/* Parses "error"/"warn"/"info"/"debug"; returns 0 on success. */
int cx_log_level_parse(const char *s, cx_log_level *out);

/* ---- Allocation: every core allocation goes through these, so tests can fail the Nth. ---- */
void *cx_malloc(size_t n);
void *cx_calloc(size_t count, size_t size);   /* checks count*size overflow */
void *cx_realloc(void *p, size_t n);
void cx_free(void *p);                        /* cx_free(NULL) is a no-op */
/* 64-byte aligned allocation (tensors); free with cx_aligned_free. */
void *cx_aligned_alloc(size_t n);
void cx_aligned_free(void *p);
char *cx_strdup(const char *s);

/* Test hook: the Nth allocation from now (1-based) and, if sticky, every later one fails.
 * n = 0 disarms. cx_alloc_count() is the number of allocations attempted since the last arm/reset. */
void cx_alloc_fail_at(unsigned long n, int sticky);
unsigned long cx_alloc_count(void);
void cx_alloc_reset(void);

/* Overflow-checked size arithmetic: return 0 on overflow, 1 on success. */
int cx_size_mul(size_t a, size_t b, size_t *out);
int cx_size_add(size_t a, size_t b, size_t *out);

/* Monotonic clock in milliseconds (for logs and timing, never for tests). */
double cx_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif

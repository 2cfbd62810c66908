/* cx_base: errors, log sink and allocation hook shared by all core modules. */
#include "config.h"
#include "cx_base.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const status_names[] = {
    "ok", "nomem", "io", "format", "unsupported", "invalid", "config",
    "dicom", "model", "network", "full", "timeout", "internal",
};

const char *cx_status_name(cx_status s)
{
    if ((unsigned)s < sizeof status_names / sizeof status_names[0])
        return status_names[s];
    return "unknown";
}

cx_status cx_error_setv(cx_error *err, cx_status code, const char *stage, const char *fmt, va_list ap)
{
    if (err) {
        int n = snprintf(err->msg, sizeof err->msg, "%s: ", stage ? stage : "error");
        if (n < 0 || (size_t)n >= sizeof err->msg)
            n = 0;
        vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
        err->code = code;
    }
    return code;
}

cx_status cx_error_set(cx_error *err, cx_status code, const char *stage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cx_error_setv(err, code, stage, fmt, ap);
    va_end(ap);
    return code;
}

void cx_error_prefix(cx_error *err, const char *stage)
{
    if (!err || !stage)
        return;
    /* Shift the message right and write "stage: " in front; the tail is cut when it no longer fits. */
    size_t ls = strlen(stage), lm = strlen(err->msg), cap = sizeof err->msg - 1;
    size_t head = ls + 2 < cap ? ls + 2 : cap;
    size_t keep = lm < cap - head ? lm : cap - head;
    memmove(err->msg + head, err->msg, keep);
    err->msg[head + keep] = '\0';
    memcpy(err->msg, stage, head < ls ? head : ls);
    if (head == ls + 2) {
        err->msg[ls] = ':';
        err->msg[ls + 1] = ' ';
    }
}

void cx_error_clear(cx_error *err)
{
    if (err) {
        err->code = CX_OK;
        err->msg[0] = '\0';
    }
}

/* ---- logging ---- */
static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *cx_log_level_name(cx_log_level level)
{
    return (unsigned)level <= CX_LOG_DEBUG ? level_names[level] : "?";
}

int cx_log_level_parse(const char *s, cx_log_level *out)
{
    for (int i = 0; i <= CX_LOG_DEBUG; i++)
        if (s && strcasecmp(s, level_names[i]) == 0) {
            *out = (cx_log_level)i;
            return 0;
        }
    if (s && strcasecmp(s, "warning") == 0) {
        *out = CX_LOG_WARN;
        return 0;
    }
    return -1;
}

static void default_sink(cx_log_level level, const char *module, const char *job, const char *msg, void *user)
{
    (void)user;
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line so concurrent threads do not interleave within a line. */
    fprintf(stderr, "%s.%03ldZ %s [%s] job=%s %s\n", when, ts.tv_nsec / 1000000L, cx_log_level_name(level),
            module ? module : "-", job ? job : "-", msg);
}

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static cx_log_sink log_sink = default_sink;
static void *log_user;
static _Atomic int log_level = CX_LOG_INFO;

void cx_log_set_sink(cx_log_sink sink, void *user)
{
    pthread_mutex_lock(&log_mutex);
    log_sink = sink ? sink : default_sink;
    log_user = sink ? user : NULL;
    pthread_mutex_unlock(&log_mutex);
}

void cx_log_set_level(cx_log_level max_level) { atomic_store(&log_level, (int)max_level); }
cx_log_level cx_log_get_level(void) { return (cx_log_level)atomic_load(&log_level); }

void cx_log(cx_log_level level, const char *module, const char *job, const char *fmt, ...)
{
    if ((int)level > atomic_load(&log_level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_mutex);
    cx_log_sink sink = log_sink;
    void *user = log_user;
    pthread_mutex_unlock(&log_mutex);
    sink(level, module, job, msg, user);
}

/* ---- allocation hook ---- */
static _Atomic unsigned long alloc_count;
static _Atomic unsigned long alloc_fail_at;
static _Atomic int alloc_sticky;

void cx_alloc_fail_at(unsigned long n, int sticky)
{
    atomic_store(&alloc_count, 0);
    atomic_store(&alloc_sticky, sticky);
    atomic_store(&alloc_fail_at, n);
}

unsigned long cx_alloc_count(void) { return atomic_load(&alloc_count); }

void cx_alloc_reset(void)
{
    atomic_store(&alloc_fail_at, 0);
    atomic_store(&alloc_count, 0);
    atomic_store(&alloc_sticky, 0);
}

/* Returns 1 when this allocation must fail (test hook armed and reached). */
static int alloc_should_fail(void)
{
    unsigned long k = atomic_fetch_add(&alloc_count, 1) + 1;
    unsigned long at = atomic_load(&alloc_fail_at);
    if (at == 0)
        return 0;
    return k == at || (k > at && atomic_load(&alloc_sticky));
}

void *cx_malloc(size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *cx_calloc(size_t count, size_t size)
{
    size_t total;
    if (!cx_size_mul(count, size, &total))
        return NULL;
    if (alloc_should_fail())
        return NULL;
    return calloc(total ? total : 1, 1);
}

void *cx_realloc(void *p, size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void cx_free(void *p) { free(p); }

void *cx_aligned_alloc(size_t n)
{
    if (alloc_should_fail())
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0)
        return NULL;
    return p;
}

void cx_aligned_free(void *p) { free(p); }

char *cx_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = cx_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int cx_size_mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

int cx_size_add(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return 0;
    *out = a + b;
    return 1;
}

double cx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

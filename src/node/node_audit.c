/* node_audit.c: the audit trail for IT security staff (docs/audit.md). One JSON object per line
 * (or per syslog message) for every association event and every object: who (calling AE), from
 * where (IP address), what (SOP Instance / Study Instance UIDs), what became of it and why, and
 * which result went to whom. Only identifiers: never a patient's name, ID or birth date (the
 * node does not even read those for the trail). Lines are written with one write(2) on an
 * O_APPEND descriptor, so concurrent threads never interleave and logrotate's copytruncate or
 * move-then-SIGHUP both work (the file is reopened on SIGHUP). */
#define _GNU_SOURCE
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fd = -1;
static int g_syslog;

cx_status cx_node_audit_setup(const cx_config *cfg, cx_error *err)
{
    int fd = -1;
    if (cfg->logging.audit_target == CX_AUDIT_TO_FILE) {
        fd = open(cfg->logging.audit_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return cx_error_set(err, CX_ERR_IO, "audit", "cannot open audit file %s: %s", cfg->logging.audit_file,
                                strerror(errno));
    }
    pthread_mutex_lock(&g_mu);
    if (g_fd >= 0)
        close(g_fd);
    g_fd = fd;
    g_syslog = cfg->logging.audit_target == CX_AUDIT_TO_SYSLOG;
    pthread_mutex_unlock(&g_mu);
    return CX_OK;
}

void cx_node_audit_close(void)
{
    pthread_mutex_lock(&g_mu);
    if (g_fd >= 0)
        close(g_fd);
    g_fd = -1;
    g_syslog = 0;
    pthread_mutex_unlock(&g_mu);
}

void cx_node_audit(const char *event, const char *outcome, ...)
{
    pthread_mutex_lock(&g_mu);
    int on = g_fd >= 0 || g_syslog;
    pthread_mutex_unlock(&g_mu);
    if (!on)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40], day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts, sizeof ts, "%s.%03dZ", day, (int)(tv.tv_usec / 1000));
    json_t *o = json_object();
    if (!o)
        return;
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "outcome", json_string(outcome));
    va_list ap;
    va_start(ap, outcome);
    for (const char *k; (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        if (v && *v) {
            json_t *s = json_string(v);
            /* A value that is not UTF-8 (an AE title in another code page) is kept, hex-escaped. */
            if (!s) {
                char hex[2 * 256 + 1];
                size_t n = strnlen(v, 256);
                for (size_t i = 0; i < n; i++)
                    snprintf(hex + 2 * i, 3, "%02x", (unsigned char)v[i]);
                char key[64];
                snprintf(key, sizeof key, "%s_hex", k);
                json_object_set_new(o, key, json_string(hex));
                continue;
            }
            json_object_set_new(o, k, s);
        }
    }
    va_end(ap);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line)
        return;
    pthread_mutex_lock(&g_mu);
    if (g_fd >= 0) {
        size_t n = strlen(line);
        line[n] = '\n'; /* json_dumps' terminator becomes the newline: one write per line */
        ssize_t w = write(g_fd, line, n + 1);
        line[n] = 0;
        if (w != (ssize_t)(n + 1))
            cx_log(CX_LOG_ERROR, "audit", NULL, "audit line not written: %s", w < 0 ? strerror(errno) : "short write");
    }
    if (g_syslog)
        syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", line);
    pthread_mutex_unlock(&g_mu);
    free(line);
}

/* node_log.c: the daemon's log sinks. Every line reads "time level [module] job=<id> message"
 * (the default cx_log sink already writes that to stderr, which systemd's journal keeps); the
 * configuration can send it to a file (reopened on SIGHUP, for logrotate) or to syslog. */
#define _GNU_SOURCE
#include "node.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

static FILE *g_file;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void file_sink(cx_log_level level, const char *module, const char *job, const char *msg, void *user)
{
    (void)user;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&g_mu);
    if (g_file) {
        fprintf(g_file, "%s.%03dZ %s [%s] job=%s %s\n", ts, (int)(tv.tv_usec / 1000), cx_log_level_name(level),
                module ? module : "-", job && *job ? job : "-", msg);
        fflush(g_file);
    }
    pthread_mutex_unlock(&g_mu);
}

static void syslog_sink(cx_log_level level, const char *module, const char *job, const char *msg, void *user)
{
    (void)user;
    int pri = level == CX_LOG_ERROR ? LOG_ERR : level == CX_LOG_WARN ? LOG_WARNING : level == CX_LOG_INFO ? LOG_INFO : LOG_DEBUG;
    syslog(pri, "%s [%s] job=%s %s", cx_log_level_name(level), module ? module : "-", job && *job ? job : "-", msg);
}

cx_status cx_node_log_setup(const cx_config *cfg, cx_error *err)
{
    cx_node_log_close();
    cx_log_set_level(cfg->logging.level);
    if (cfg->logging.target == CX_LOG_TO_FILE && cfg->logging.file) {
        FILE *f = fopen(cfg->logging.file, "a");
        if (!f)
            return cx_error_set(err, CX_ERR_IO, "log", "cannot open log file %s: %s", cfg->logging.file, strerror(errno));
        pthread_mutex_lock(&g_mu);
        g_file = f;
        pthread_mutex_unlock(&g_mu);
        cx_log_set_sink(file_sink, NULL);
    } else if (cfg->logging.target == CX_LOG_TO_SYSLOG) {
        openlog("cxrseg-node", LOG_PID, LOG_DAEMON);
        cx_log_set_sink(syslog_sink, NULL);
    } else {
        cx_log_set_sink(NULL, NULL);
    }
    return cx_node_audit_setup(cfg, err);
}

void cx_node_log_close(void)
{
    cx_node_audit_close();
    cx_log_set_sink(NULL, NULL);
    pthread_mutex_lock(&g_mu);
    if (g_file)
        fclose(g_file);
    g_file = NULL;
    pthread_mutex_unlock(&g_mu);
}

/* node_metrics.c: what the node counts, for Prometheus (/metrics, text exposition format 0.0.4)
 * and for its readiness (/healthz), served by libmicrohttpd when <http> is on (docs/metrics.md).
 * Counters are kept from the moment the node starts (a restart sets them to zero, as Prometheus
 * expects of a counter); queue depths and spool bytes are read from the spool folders at each
 * scrape by the same scan as `cxrseg-node status`. Labels come from small fixed sets (outcomes,
 * filter rule names, stage names) or from the configuration (destination names), never from
 * what a sender sends, so a scrape stays small. GPL-3.0-or-later. */
#define _GNU_SOURCE
#include "config.h"
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERIES 256 /* label sets per counter family; more go to one "other" series */
#define NAME_LEN 64

static const double k_buckets[] = {0.05, 0.1, 0.2, 0.35, 0.5, 1, 2, 5, 10, 30, 60};
#define NB (sizeof k_buckets / sizeof k_buckets[0])

typedef struct histogram {
    unsigned long long count[NB + 1]; /* per bucket (not cumulative); the last is +Inf */
    double sum;
} histogram;

typedef struct series {
    char a[NAME_LEN], b[NAME_LEN]; /* label values ("" = label absent) */
    unsigned long long n;
} series;

typedef struct family {
    series s[MAX_SERIES];
    size_t n;
} family;

typedef struct dest_health {
    char name[CX_SPOOL_NAME_MAX];
    double first_fail_ms; /* first failure since the last success; 0 = not failing */
    char why[200];
} dest_health;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static family g_objects, g_assoc, g_processing, g_deliveries;
static histogram g_job, g_stage[3];
static const char *const k_stages[3] = {"render", "engine", "write"};
static dest_health g_dest[MAX_SERIES];
static size_t g_ndest;
static double g_start_s;
static struct MHD_Daemon *g_mhd;

static void label_copy(char dst[NAME_LEN], const char *src)
{
    snprintf(dst, NAME_LEN, "%s", src ? src : "");
}

/* Adds one to the series (a, b) of f; called with g_mu held. */
static void count(family *f, const char *a, const char *b)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->s[i].a, a ? a : "") && !strcmp(f->s[i].b, b ? b : "")) {
            f->s[i].n++;
            return;
        }
    if (f->n == MAX_SERIES - 1) { /* the last slot collects the rest */
        a = "other";
        b = b && *b ? "other" : "";
    }
    if (f->n == MAX_SERIES) {
        f->s[MAX_SERIES - 1].n++;
        return;
    }
    label_copy(f->s[f->n].a, a);
    label_copy(f->s[f->n].b, b);
    f->s[f->n++].n = 1;
}

static void observe(histogram *h, double seconds)
{
    size_t i = 0;
    while (i < NB && seconds > k_buckets[i])
        i++;
    h->count[i]++;
    h->sum += seconds;
}

/* The reason label of an object outcome: the filter rule ("(filters/modality)" -> "modality"),
 * or a short word for a refusal; free text never becomes a label. */
static void object_reason(const char *outcome, const char *why, char out[NAME_LEN])
{
    const char *f = why ? strstr(why, "(filters/") : NULL;
    if (f) {
        f += 9;
        size_t n = strcspn(f, "/)");
        snprintf(out, NAME_LEN, "%.*s", (int)(n < NAME_LEN ? n : NAME_LEN - 1), f);
    } else if (!strcmp(outcome, "refused")) {
        snprintf(out, NAME_LEN, "%s",
                 why && strstr(why, "shutting down")   ? "shutting-down"
                 : why && strstr(why, "max-object-mb") ? "too-large"
                 : why && strstr(why, "full")          ? "spool-full"
                                                       : "spool-error");
    } else if (!strcmp(outcome, "broken-off")) {
        snprintf(out, NAME_LEN, "incomplete");
    } else {
        out[0] = 0;
    }
}

void cx_node_metric_object(const char *outcome, const char *why)
{
    char reason[NAME_LEN];
    object_reason(outcome, why, reason);
    pthread_mutex_lock(&g_mu);
    count(&g_objects, outcome, reason);
    pthread_mutex_unlock(&g_mu);
}

void cx_node_metric_association(const char *outcome)
{
    pthread_mutex_lock(&g_mu);
    count(&g_assoc, outcome, NULL);
    pthread_mutex_unlock(&g_mu);
}

void cx_node_metric_processing(int ok, double total_ms, const double stage_ms[3])
{
    pthread_mutex_lock(&g_mu);
    count(&g_processing, ok ? "done" : "failed", NULL);
    observe(&g_job, total_ms / 1000.0);
    for (int i = 0; ok && stage_ms && i < 3; i++)
        observe(&g_stage[i], stage_ms[i] / 1000.0);
    pthread_mutex_unlock(&g_mu);
}

static dest_health *dest_get(const char *name)
{
    for (size_t i = 0; i < g_ndest; i++)
        if (!strcmp(g_dest[i].name, name))
            return &g_dest[i];
    if (g_ndest == MAX_SERIES)
        return NULL;
    dest_health *d = &g_dest[g_ndest++];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    return d;
}

void cx_node_metric_delivery(const char *dest, const char *outcome, const char *why)
{
    pthread_mutex_lock(&g_mu);
    count(&g_deliveries, dest, outcome);
    dest_health *d = dest_get(dest);
    if (d && !strcmp(outcome, "sent")) {
        d->first_fail_ms = 0;
    } else if (d) {
        if (!d->first_fail_ms)
            d->first_fail_ms = cx_now_ms();
        snprintf(d->why, sizeof d->why, "%s", why ? why : outcome);
    }
    pthread_mutex_unlock(&g_mu);
}

/* ---- the exposition ---------------------------------------------------------------------- */

/* Label values escaped as the text format asks: backslash, double quote and newline. */
static void put_label(FILE *f, const char *name, const char *v)
{
    fprintf(f, "%s=\"", name);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
    fputc('"', f);
}

static void put_family(FILE *f, const char *metric, const char *help, const family *fam, const char *la,
                       const char *lb)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", metric, help, metric);
    for (size_t i = 0; i < fam->n; i++) {
        fprintf(f, "%s{", metric);
        put_label(f, la, fam->s[i].a);
        if (lb && fam->s[i].b[0]) {
            fputc(',', f);
            put_label(f, lb, fam->s[i].b);
        }
        fprintf(f, "} %llu\n", fam->s[i].n);
    }
}

static void put_histogram(FILE *f, const char *metric, const histogram *h, const char *stage)
{
    unsigned long long cum = 0;
    char lab[80] = "";
    if (stage)
        snprintf(lab, sizeof lab, "stage=\"%s\",", stage);
    for (size_t i = 0; i <= NB; i++) {
        cum += h->count[i];
        if (i < NB)
            fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", metric, lab, k_buckets[i], cum);
        else
            fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", metric, lab, cum);
    }
    if (stage)
        snprintf(lab, sizeof lab, "{stage=\"%s\"}", stage);
    fprintf(f, "%s_sum%s %.6f\n%s_count%s %llu\n", metric, lab, h->sum, metric, lab, cum);
}

static char *render_metrics(cx_node *node, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    cx_node_conf *c = cx_node_conf_get(node);
    const cx_config *cfg = c->cfg;

    fprintf(f, "# HELP cxrseg_info The node and the model it runs.\n# TYPE cxrseg_info gauge\ncxrseg_info{");
    put_label(f, "version", PACKAGE_VERSION);
    fputc(',', f);
    put_label(f, "model", node->model ? cx_model_name(node->model) : "");
    fputc(',', f);
    put_label(f, "model_version", node->model ? cx_model_version(node->model) : "");
    fputc(',', f);
    put_label(f, "model_sha256", node->model ? cx_model_sha256(node->model) : "");
    fprintf(f, "} 1\n");
    fprintf(f, "# HELP cxrseg_start_time_seconds When the node started (Unix time).\n"
               "# TYPE cxrseg_start_time_seconds gauge\ncxrseg_start_time_seconds %.0f\n", g_start_s);

    pthread_mutex_lock(&g_mu);
    put_family(f, "cxrseg_associations_total", "Association events by outcome.", &g_assoc, "outcome", NULL);
    put_family(f, "cxrseg_objects_total",
               "Objects offered by C-STORE, by outcome (accepted, skipped, rejected, refused, broken-off) and "
               "reason (the filter rule, or why it was refused).",
               &g_objects, "outcome", "reason");
    put_family(f, "cxrseg_processing_total", "Processing jobs finished, by outcome.", &g_processing, "outcome", NULL);
    fprintf(f, "# HELP cxrseg_processing_seconds Time of one job, from the worker taking it to its results "
               "queued.\n# TYPE cxrseg_processing_seconds histogram\n");
    put_histogram(f, "cxrseg_processing_seconds", &g_job, NULL);
    fprintf(f, "# HELP cxrseg_stage_seconds Time of each stage of a job that succeeded.\n"
               "# TYPE cxrseg_stage_seconds histogram\n");
    for (int i = 0; i < 3; i++)
        put_histogram(f, "cxrseg_stage_seconds", &g_stage[i], k_stages[i]);
    put_family(f, "cxrseg_deliveries_total",
               "Result objects by destination and outcome (sent, retry, failed = given up).", &g_deliveries,
               "destination", "outcome");
    pthread_mutex_unlock(&g_mu);

    cx_spool_status st;
    cx_error err = {0};
    if (cx_spool_status_scan(cfg->spool.directory, &st, &err) == CX_OK) {
        fprintf(f, "# HELP cxrseg_queue_objects Objects in the spool by state.\n# TYPE cxrseg_queue_objects gauge\n");
        fprintf(f, "cxrseg_queue_objects{state=\"waiting\"} %u\n", st.incoming);
        fprintf(f, "cxrseg_queue_objects{state=\"processing\"} %u\n", st.processing);
        fprintf(f, "cxrseg_queue_objects{state=\"failed\"} %u\n", st.failed);
        fprintf(f, "# HELP cxrseg_queue_oldest_waiting_seconds Age of the oldest object waiting.\n"
                   "# TYPE cxrseg_queue_oldest_waiting_seconds gauge\ncxrseg_queue_oldest_waiting_seconds %.0f\n",
                st.oldest_incoming_s);
        fprintf(f, "# HELP cxrseg_outbox_objects Results per destination and state.\n"
                   "# TYPE cxrseg_outbox_objects gauge\n");
        for (size_t i = 0; i < st.ndest; i++) {
            static const char *const states[3] = {"waiting", "sent", "failed"};
            unsigned v[3] = {st.dest[i].outbox, st.dest[i].sent, st.dest[i].failed};
            for (int k = 0; k < 3; k++) {
                fprintf(f, "cxrseg_outbox_objects{");
                put_label(f, "destination", st.dest[i].name);
                fprintf(f, ",state=\"%s\"} %u\n", states[k], v[k]);
            }
        }
        fprintf(f, "# HELP cxrseg_spool_bytes Bytes in the spool.\n# TYPE cxrseg_spool_bytes gauge\n"
                   "cxrseg_spool_bytes %llu\n", (unsigned long long)st.bytes);
        cx_spool_status_clear(&st);
    }
    struct statvfs sv;
    if (statvfs(cfg->spool.directory, &sv) == 0)
        fprintf(f, "# HELP cxrseg_spool_free_bytes Bytes free for the spool's file system (unprivileged).\n"
                   "# TYPE cxrseg_spool_free_bytes gauge\ncxrseg_spool_free_bytes %llu\n",
                (unsigned long long)sv.f_bavail * sv.f_frsize);
    cx_node_conf_put(c);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* "ready", or the first reason the node is not. */
static int health(cx_node *node, char *why, size_t n)
{
    cx_node_conf *c = cx_node_conf_get(node);
    const cx_config *cfg = c->cfg;
    int ok = 1;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/incoming", cfg->spool.directory);
    if (atomic_load(&node->stopping)) {
        snprintf(why, n, "not ready: stopping (draining)");
        ok = 0;
    } else if (access(probe, W_OK) != 0 && access(cfg->spool.directory, W_OK) != 0) {
        snprintf(why, n, "not ready: spool %s not writable: %s", cfg->spool.directory, strerror(errno));
        ok = 0;
    } else if (!node->model && !node->relay_test_mode) {
        snprintf(why, n, "not ready: model not loaded");
        ok = 0;
    } else {
        double now = cx_now_ms(), limit = 1000.0 * cfg->http.destination_failing_s;
        pthread_mutex_lock(&g_mu);
        for (size_t i = 0; i < g_ndest && ok; i++)
            if (g_dest[i].first_fail_ms && now - g_dest[i].first_fail_ms > limit) {
                snprintf(why, n, "not ready: destination %s failing for %.0f s (%s)", g_dest[i].name,
                         (now - g_dest[i].first_fail_ms) / 1000.0, g_dest[i].why);
                ok = 0;
            }
        pthread_mutex_unlock(&g_mu);
    }
    if (ok)
        snprintf(why, n, "ready");
    cx_node_conf_put(c);
    return ok;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_len, void **state)
{
    (void)version, (void)upload, (void)upload_len, (void)state;
    cx_node *node = cls;
    struct MHD_Response *r = NULL;
    unsigned code = MHD_HTTP_OK;
    const char *type = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] = "only GET\n";
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        r = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    } else if (!strcmp(url, "/metrics")) {
        size_t len = 0;
        char *text = render_metrics(node, &len);
        if (text) {
            r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
            type = "text/plain; version=0.0.4; charset=utf-8";
        } else {
            code = MHD_HTTP_INTERNAL_SERVER_ERROR;
            r = MHD_create_response_from_buffer(14, (void *)"out of memory\n", MHD_RESPMEM_PERSISTENT);
        }
    } else if (!strcmp(url, "/healthz")) {
        char why[600];
        if (!health(node, why, sizeof why - 1))
            code = MHD_HTTP_SERVICE_UNAVAILABLE;
        strcat(why, "\n");
        r = MHD_create_response_from_buffer(strlen(why), why, MHD_RESPMEM_MUST_COPY);
    } else {
        static const char msg[] = "not found: /metrics and /healthz are served here\n";
        code = MHD_HTTP_NOT_FOUND;
        r = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    cx_log(CX_LOG_WARN, "http", NULL, "%s", msg);
}

cx_status cx_node_http_start(cx_node *node, const cx_config *cfg, cx_error *err)
{
    g_start_s = (double)time(NULL);
    if (!cfg->http.enabled)
        return CX_OK;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->http.port);
    if (inet_pton(AF_INET, cfg->http.bind_address, &sa.sin_addr) != 1)
        return cx_error_set(err, CX_ERR_CONFIG, "http", "bind address '%s' is not an IPv4 address",
                            cfg->http.bind_address);
    /* One internal thread, a few connections, short timeouts: a scraper, not a web server. */
    g_mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)cfg->http.port, NULL,
                             NULL, answer, node, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                             MHD_OPTION_CONNECTION_LIMIT, 16U, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 8U,
                             MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                             MHD_OPTION_END);
    if (!g_mhd)
        return cx_error_set(err, CX_ERR_NETWORK, "http", "cannot serve /metrics on %s:%d: %s", cfg->http.bind_address,
                            cfg->http.port, strerror(errno));
    cx_log(CX_LOG_INFO, "http", NULL, "/metrics and /healthz on http://%s:%d", cfg->http.bind_address, cfg->http.port);
    return CX_OK;
}

void cx_node_http_stop(void)
{
    if (g_mhd)
        MHD_stop_daemon(g_mhd);
    g_mhd = NULL;
}

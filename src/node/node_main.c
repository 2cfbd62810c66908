/* node_main.c: cxrseg-node, the DICOM node daemon. Start-up order matters: configuration, log,
 * spool recovery, then the port is bound (a busy port is a start-up error with its own exit
 * code), then senders, workers and the accept loop start. Signals are taken synchronously by the
 * main thread (sigtimedwait): SIGHUP reloads the configuration (the old one stays when the new
 * one is invalid), SIGTERM/SIGINT drain (no new associations, open ones and running jobs finish,
 * queued work stays in the spool for the next start). */
#define _GNU_SOURCE
#include "config.h"
#include "node.h"
#include "cx_getopt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cxrseg-node -c FILE          run the node with configuration FILE\n"
            "       cxrseg-node -t -c FILE       check the configuration and exit\n"
            "       cxrseg-node status -c FILE   show the spool: counts per state and destination\n"
            "exit codes: 0 ok, 1 usage, 3 spool error, 4 invalid configuration, 5 cannot listen (port in use),\n"
            "            6 internal error\n");
}

static cx_config *load(const char *path, int to_log)
{
    cx_config *cfg = NULL;
    cx_config_errors *errs = cx_calloc(1, sizeof *errs);
    if (!errs)
        return NULL;
    if (cx_config_load(path, NULL, &cfg, errs) != CX_OK) {
        for (size_t i = 0; i < errs->count; i++) {
            if (to_log)
                cx_log(CX_LOG_ERROR, "config", NULL, "%s", errs->items[i].text);
            else
                fprintf(stderr, "%s\n", errs->items[i].text);
        }
        if (errs->dropped) {
            if (to_log)
                cx_log(CX_LOG_ERROR, "config", NULL, "(%zu more errors)", errs->dropped);
            else
                fprintf(stderr, "(%zu more errors)\n", errs->dropped);
        }
        cfg = NULL;
    }
    cx_free(errs);
    return cfg;
}

static void *listener_main(void *arg)
{
    cx_node *node = arg;
    cxd_error err = {0};
    if (cxd_listener_run(node->listener, &err) != CXD_OK)
        cx_log(CX_LOG_ERROR, "listener", NULL, "%s", err.msg);
    return NULL;
}

cx_node_conf *cx_node_conf_new(cx_config *cfg)
{
    cx_node_conf *c = cx_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = cfg;
    atomic_init(&c->refs, 1);
    return c;
}

cx_node_conf *cx_node_conf_get(cx_node *node)
{
    pthread_rwlock_rdlock(&node->cfg_lock);
    cx_node_conf *c = node->conf;
    atomic_fetch_add(&c->refs, 1);
    pthread_rwlock_unlock(&node->cfg_lock);
    return c;
}

void cx_node_conf_put(cx_node_conf *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        cx_config_free(c->cfg);
        cx_free(c);
    }
}

void cx_node_conf_set(cx_node *node, cx_node_conf *c)
{
    pthread_rwlock_wrlock(&node->cfg_lock);
    cx_node_conf *old = node->conf;
    node->conf = c;
    node->cfg = c ? c->cfg : NULL;
    pthread_rwlock_unlock(&node->cfg_lock);
    cx_node_conf_put(old);
}

static void reload(cx_node *node, const char *path)
{
    cx_log(CX_LOG_INFO, "config", NULL, "SIGHUP: reloading %s", path);
    cx_config *n = load(path, 1);
    if (!n) {
        cx_log(CX_LOG_ERROR, "config", NULL, "reload failed: keeping the running configuration (see the errors above)");
        return;
    }
    cx_config *old = node->cfg;
    if (strcmp(n->model.file ? n->model.file : "", old->model.file ? old->model.file : "") != 0)
        cx_log(CX_LOG_WARN, "config", NULL, "the model file changes only at restart (still using %s)",
               old->model.file ? old->model.file : "?");
    if (strcmp(n->listener.ae_title, old->listener.ae_title) != 0 || n->listener.port != old->listener.port ||
        strcmp(n->listener.bind_address ? n->listener.bind_address : "", old->listener.bind_address ? old->listener.bind_address : "") != 0 ||
        strcmp(n->spool.directory, old->spool.directory) != 0)
        cx_log(CX_LOG_WARN, "config", NULL,
               "listener AE title/address/port and the spool directory change only at restart; the rest is applied now");
    cxd_listener_params lp;
    cx_node_listener_params(n, &lp);
    cxd_error de = {0};
    if (cxd_listener_update(node->listener, &lp, &de) != CXD_OK) {
        cx_log(CX_LOG_ERROR, "config", NULL, "reload failed: %s; keeping the running configuration", de.msg);
        cx_config_free(n);
        return;
    }
    cx_spool_params sp = cx_node_spool_params(n);
    cx_spool_set_limits(node->spool, &sp);
    cx_node_conf *nc = cx_node_conf_new(n);
    if (!nc) {
        cx_log(CX_LOG_ERROR, "config", NULL, "reload failed: out of memory; keeping the running configuration");
        cx_config_free(n);
        return;
    }
    cx_node_conf_set(node, nc); /* jobs still running keep their snapshot of the old one */
    cx_error err = {0};
    if (cx_node_log_setup(n, &err) != CX_OK)
        cx_log(CX_LOG_ERROR, "config", NULL, "%s", err.msg);
    if (cx_node_senders_sync(node, &err) != CX_OK)
        cx_log(CX_LOG_ERROR, "config", NULL, "%s", err.msg);
    cx_log(CX_LOG_INFO, "config", NULL, "configuration reloaded: %zu destinations, %zu return-to-sender mappings",
           n->destinations.count, n->destinations.sender_count);
}

/* A usage error: the message, then the usage on stderr. */
static int bad_usage(const char *msg)
{
    fprintf(stderr, "cxrseg-node: %s\n", msg);
    usage(stderr);
    return CX_NODE_EXIT_USAGE;
}

/* The command line: `[status] -c CONF [-t]`. Returns -1 to go on, otherwise the exit code. */
static int parse_cmdline(int argc, char **argv, const char **conf, int *check_only, int *status)
{
    static const struct option longs[] = {{"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 256},
                                          {NULL, 0, NULL, 0}};
    char msg[200];
    int c;
    *conf = NULL;
    *check_only = *status = 0;
    if (argc > 1 && !strcmp(argv[1], "status")) { /* a command only as the first argument */
        *status = 1;
        argc--;
        argv++;
    }
    optind = 0;
    while ((c = cx_getopt(argc, argv, "c:th", longs, msg, sizeof msg)) != -1) {
        switch (c) {
        case 'c': *conf = optarg; break;
        case 't': *check_only = 1; break;
        case 'h': usage(stdout); return CX_NODE_EXIT_OK;
        case 256: printf("cxrseg-node " PACKAGE_VERSION "\n"); return CX_NODE_EXIT_OK;
        case 1:
            snprintf(msg, sizeof msg, "unexpected argument '%s'", optarg);
            return bad_usage(msg);
        default: return bad_usage(msg);
        }
    }
    if (!*conf) {
        usage(stderr);
        return CX_NODE_EXIT_USAGE;
    }
    return -1;
}

/* `-t`: the conf is valid (already loaded) and its model loads too (it is mmapped, cheap). */
static int check_config(const char *conf, cx_config *cfg)
{
    cx_model *m = NULL;
    cx_error merr = {0};
    int rc = CX_NODE_EXIT_OK;
    if (cx_model_load(cfg->model.file, &m, &merr) != CX_OK) {
        fprintf(stderr, "%s: model %s: %s\n", conf, cfg->model.file, merr.msg);
        rc = CX_NODE_EXIT_CONFIG;
    } else {
        printf("%s: OK (listener %s port %d, %zu destinations, spool %s, %d workers, model %s %s)\n", conf,
               cfg->listener.ae_title, cfg->listener.port, cfg->destinations.count, cfg->spool.directory,
               cfg->workers.count, cx_model_name(m), cx_model_version(m));
    }
    cx_model_free(m);
    cx_config_free(cfg);
    return rc;
}

/* The node's shared state over the loaded conf: config snapshot, log, the one immutable model all
 * workers share. Returns -1 to go on, otherwise the exit code. */
static int node_init(cx_node *node, cx_config *cfg)
{
    pthread_rwlock_init(&node->cfg_lock, NULL);
    if (!(node->conf = cx_node_conf_new(cfg))) {
        cx_log(CX_LOG_ERROR, "node", NULL, "out of memory");
        cx_config_free(cfg);
        return CX_NODE_EXIT_INTERNAL;
    }
    node->cfg = cfg;
    pthread_mutex_init(&node->mu, NULL);
    pthread_cond_init(&node->send_cv, NULL);
#ifdef CX_NODE_RELAY
    node->relay_test_mode = 1; /* tests/cxrseg-node-relay only: see node_process.c */
#endif
    cx_error err = {0};
    if (cx_node_log_setup(cfg, &err) != CX_OK) {
        fprintf(stderr, "cxrseg-node: %s\n", err.msg);
        return CX_NODE_EXIT_CONFIG;
    }
    if (node->relay_test_mode)
        cx_log(CX_LOG_WARN, "node", NULL, "relay test build: transport-test copies are sent instead of results");
    if (cx_model_load(cfg->model.file, &node->model, &err) != CX_OK) {
        if (!node->relay_test_mode) {
            cx_log(CX_LOG_ERROR, "model", NULL, "%s", err.msg);
            return CX_NODE_EXIT_CONFIG;
        }
        cx_log(CX_LOG_WARN, "model", NULL, "%s (ignored in relay test mode)", err.msg);
        node->model = NULL;
    } else {
        cx_log(CX_LOG_INFO, "model", NULL, "%s %s (sha256 %s, integrity digests %s) from %s",
               cx_model_name(node->model), cx_model_version(node->model), cx_model_sha256(node->model),
               cx_model_integrity(node->model), cx_model_path(node->model));
    }
    return -1;
}

/* Spool (with its recovery), DICOM listener, HTTP endpoints, senders, workers and the listener's
 * thread *lt, in that order. Returns -1 to go on, otherwise the exit code. */
static int node_start(cx_node *node, cx_config *cfg, pthread_t *lt)
{
    cx_error err = {0};
    cx_spool_params sp = cx_node_spool_params(cfg);
    cx_spool_recovery rec;
    if (cx_spool_open(&sp, &node->spool, &rec, &err) != CX_OK) {
        cx_log(CX_LOG_ERROR, "spool", NULL, "%s", err.msg);
        return CX_NODE_EXIT_SPOOL;
    }
    cx_log(CX_LOG_INFO, "spool", NULL,
           "%s: %u waiting (%u re-queued after an interrupted run), %u results to send, %u unacknowledged partial "
           "receives removed, %u already-delivered duplicates dropped, %u broken jobs moved to failed",
           cfg->spool.directory, rec.queued, rec.requeued, rec.outbox, rec.tmp_removed, rec.outbox_dups, rec.broken);
    cxd_listener_params lp;
    cx_node_listener_params(cfg, &lp);
    cxd_listener_callbacks cb = cx_node_ingest_callbacks_template;
    cb.user = node;
    cxd_error de = {0};
    if (cxd_listener_open(&lp, &cb, &node->listener, &de) != CXD_OK) {
        cx_log(CX_LOG_ERROR, "listener", NULL, "%s", de.msg);
        cx_spool_free(node->spool);
        return de.code == CXD_ERR_NETWORK ? CX_NODE_EXIT_LISTEN : CX_NODE_EXIT_CONFIG;
    }
    if (cx_node_http_start(node, cfg, &err) != CX_OK) {
        cx_log(CX_LOG_ERROR, "http", NULL, "%s", err.msg);
        cxd_listener_free(node->listener);
        cx_spool_free(node->spool);
        return CX_NODE_EXIT_LISTEN;
    }
    if (cx_node_senders_sync(node, &err) != CX_OK || cx_node_workers_start(node, cfg->workers.count, &err) != CX_OK) {
        cx_log(CX_LOG_ERROR, "node", NULL, "%s", err.msg);
        return CX_NODE_EXIT_INTERNAL;
    }
    if (pthread_create(lt, NULL, listener_main, node) != 0) {
        cx_log(CX_LOG_ERROR, "node", NULL, "cannot start the listener thread");
        return CX_NODE_EXIT_INTERNAL;
    }
    cx_log(CX_LOG_INFO, "node", NULL, "cxrseg-node %s ready: AE %s on %s:%d, %d workers, %zu destinations, spool %s",
           PACKAGE_VERSION, cfg->listener.ae_title, cfg->listener.bind_address ? cfg->listener.bind_address : "0.0.0.0",
           cxd_listener_port(node->listener), cfg->workers.count, cfg->destinations.count, cfg->spool.directory);
    return -1;
}

/* The main thread's loop until SIGTERM/SIGINT: SIGHUP reloads the conf, every 10 minutes the
 * spool's retention runs. */
static void run_until_signal(cx_node *node, const char *conf, const sigset_t *sigs)
{
    double last_cleanup = 0;
    for (;;) {
        struct timespec to = {1, 0};
        siginfo_t si;
        int sig = sigtimedwait(sigs, &si, &to);
        if (sig == SIGHUP) {
            reload(node, conf);
        } else if (sig == SIGTERM || sig == SIGINT) {
            cx_log(CX_LOG_INFO, "node", NULL, "%s: draining (no new associations; running jobs and transfers finish)",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return;
        }
        double now = cx_now_ms();
        if (now - last_cleanup > 600000.0) {
            last_cleanup = now;
            unsigned removed = cx_spool_cleanup(node->spool);
            if (removed)
                cx_log(CX_LOG_INFO, "spool", NULL, "retention: %u old entries removed", removed);
        }
    }
}

/* The drain: no new associations, running jobs and transfers finish, then everything is freed. */
static void node_stop(cx_node *node, pthread_t lt)
{
    atomic_store(&node->stopping, 1);
    cxd_listener_stop(node->listener);
    pthread_join(lt, NULL);
    cx_spool_shutdown(node->spool);
    cx_node_workers_join(node);
    cx_node_senders_join(node);
    cx_node_http_stop(); /* after the drain: /healthz says "stopping" meanwhile */
    cxd_listener_free(node->listener);
    cx_spool_free(node->spool);
    cx_model_free(node->model);
    cx_log(CX_LOG_INFO, "node", NULL, "stopped");
    cx_node_log_close();
    cx_node_conf_set(node, NULL);
}

int main(int argc, char **argv)
{
    const char *conf;
    int check_only, status;
    int rc = parse_cmdline(argc, argv, &conf, &check_only, &status);
    if (rc >= 0)
        return rc;
    if (status)
        return cx_node_status_main(conf);
    cx_config *cfg = load(conf, 0);
    if (!cfg)
        return CX_NODE_EXIT_CONFIG;
    if (check_only)
        return check_config(conf, cfg);

    /* Signals are handled by this thread only: block them before any other thread exists. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    static cx_node node;
    pthread_t lt;
    if ((rc = node_init(&node, cfg)) >= 0 || (rc = node_start(&node, cfg, &lt)) >= 0)
        return rc;
    run_until_signal(&node, conf, &sigs);
    node_stop(&node, lt);
    return CX_NODE_EXIT_OK;
}

/* node_work.c: the worker pool. Each worker claims one job at a time from the spool, runs the
 * processing step (node_process.c) and either queues the results for every destination that
 * wants them or moves the job to failed/ with its reason; the node always carries on. A watchdog
 * enforces the per-job timeout by raising the job's cancel flag (the processing step polls it). */
#define _GNU_SOURCE
#include "node.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct worker_slot {
    cx_node *node;
    int index;
    pthread_mutex_t mu;
    double deadline_ms;   /* 0 when idle */
    atomic_int cancel;    /* set by the watchdog past the deadline; the pipeline and engine check it */
    char job[CX_SPOOL_ID_MAX];
    char marker[CX_SPOOL_PATH_MAX]; /* crash marker of the running job */
    volatile sig_atomic_t busy;      /* read by the crash handler */
} worker_slot;

static worker_slot *g_slots;
static volatile sig_atomic_t g_nslots;

/* A fatal signal while jobs run: leave a crash marker in each running job's folder, so start-up
 * recovery counts the crash against those objects (and gives one up after repeated crashes), then
 * die with the original signal. Only async-signal-safe calls here. */
static void crash_handler(int sig)
{
    for (int i = 0; i < g_nslots; i++) {
        if (g_slots[i].busy) {
            int fd = open(g_slots[i].marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
            if (fd >= 0) {
                fsync(fd);
                close(fd);
            }
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_handler(void)
{
    const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = crash_handler;
        sa.sa_flags = SA_RESETHAND;
        sigaction(sigs[i], &sa, NULL);
    }
}
static pthread_t g_watchdog;
static atomic_int g_watch_stop;

static int job_timeout_s(cx_node *node)
{
    pthread_rwlock_rdlock(&node->cfg_lock);
    int t = node->cfg->workers.job_timeout_s;
    pthread_rwlock_unlock(&node->cfg_lock);
    return t > 0 ? t : 120;
}

/* Destinations for one job: every configured one plus the sender's own AE when mapped. */
static cx_status job_dests(cx_node *node, const cx_spool_job *job, cx_node_dest **dests, size_t *n, cx_error *err)
{
    cx_node_dest *all = NULL;
    size_t na = 0;
    pthread_rwlock_rdlock(&node->cfg_lock);
    cx_status st = cx_node_dests(node->cfg, &all, &na, err);
    pthread_rwlock_unlock(&node->cfg_lock);
    if (st != CX_OK)
        return st;
    size_t k = 0;
    for (size_t i = 0; i < na; i++) {
        if (all[i].return_for_ae[0] && strcmp(all[i].return_for_ae, job->meta.calling_ae) != 0)
            continue;
        all[k++] = all[i];
    }
    *dests = all;
    *n = k;
    return CX_OK;
}

static void run_job(worker_slot *w, cx_mrcnn *engine, cx_spool_job *job)
{
    cx_node *node = w->node;
    int timeout = job_timeout_s(node);
    cx_log(CX_LOG_INFO, "worker", job->id, "processing %s from %s@%s (worker %d, attempt %u)",
           job->meta.sop_instance_uid, job->meta.calling_ae, job->meta.peer, w->index + 1, job->attempt);
    double t0 = cx_now_ms();
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->cancel, 0);
    w->deadline_ms = t0 + timeout * 1000.0;
    snprintf(w->job, sizeof w->job, "%s", job->id);
    memcpy(w->marker, job->crash_marker, sizeof w->marker);
    w->busy = 1;
    pthread_mutex_unlock(&w->mu);

    cx_node_outcome out;
    memset(&out, 0, sizeof out);
    cx_error err = {0};
    cx_status st = cx_node_process(node, engine, job, &w->cancel, &out, &err);
    double ms = cx_now_ms() - t0;

    pthread_mutex_lock(&w->mu);
    int cancelled = atomic_load(&w->cancel);
    w->deadline_ms = 0;
    w->busy = 0;
    pthread_mutex_unlock(&w->mu);
    if (st == CX_OK && (cancelled || ms > timeout * 1000.0))
        st = cx_error_set(&err, CX_ERR_TIMEOUT, "worker", "job took %.0f ms, over the job timeout of %d s", ms, timeout);
    else if (st != CX_OK && cancelled)
        cx_error_set(&err, CX_ERR_TIMEOUT, "worker", "cancelled after the job timeout of %d s (%s)", timeout, err.msg);

    if (st != CX_OK) {
        cx_error e2 = {0};
        cx_log(CX_LOG_ERROR, "worker", job->id, "failed %s after %.0f ms: %s", job->meta.sop_instance_uid, ms, err.msg);
        cx_node_metric_processing(0, ms, NULL);
        cx_node_audit("processing", "failed", "job", job->id, "calling_ae", job->meta.calling_ae, "host", job->meta.peer,
                      "sop_instance_uid", job->meta.sop_instance_uid, "reason", err.msg, NULL);
        if (cx_spool_job_fail(node->spool, job, err.msg, &e2) != CX_OK)
            cx_log(CX_LOG_ERROR, "worker", job->id, "cannot move the job to failed/: %s", e2.msg);
        return;
    }

    cx_node_dest *dests = NULL;
    size_t nd = 0;
    if (job_dests(node, job, &dests, &nd, &err) != CX_OK) {
        cx_log(CX_LOG_ERROR, "worker", job->id, "%s", err.msg);
        cx_error e2 = {0};
        cx_spool_job_fail(node->spool, job, err.msg, &e2);
        return;
    }
    const char *names[64];
    unsigned masks[64];
    size_t k = 0;
    char to[512] = "";
    for (size_t i = 0; i < nd && k < 64; i++) {
        names[k] = dests[i].name;
        masks[k] = dests[i].outputs;
        size_t len = strlen(to);
        snprintf(to + len, sizeof to - len, "%s%s", k ? ", " : "", dests[i].name);
        k++;
    }
    cx_spool_result res[CX_NODE_MAX_RESULTS];
    char uids[600] = "";
    for (size_t i = 0; i < out.n; i++) {
        res[i].path = out.results[i].path;
        res[i].sop_instance_uid = out.results[i].sop_instance_uid;
        res[i].kind = out.results[i].kind;
        size_t len = strlen(uids);
        snprintf(uids + len, sizeof uids - len, "%s%s", i ? ", " : "", out.results[i].sop_instance_uid);
    }
    st = cx_spool_job_done(node->spool, job, res, out.n, names, masks, k, &err);
    if (st != CX_OK) {
        cx_error e2 = {0};
        cx_log(CX_LOG_ERROR, "worker", job->id, "failed %s: results could not be queued: %s", job->meta.sop_instance_uid,
               err.msg);
        cx_node_metric_processing(0, ms, NULL);
        cx_node_audit("processing", "failed", "job", job->id, "calling_ae", job->meta.calling_ae, "host", job->meta.peer,
                      "sop_instance_uid", job->meta.sop_instance_uid, "reason", err.msg, NULL);
        cx_spool_job_fail(node->spool, job, err.msg, &e2);
    } else if (out.n) {
        cx_node_metric_processing(1, ms, out.stage_ms);
        cx_node_audit("processing", "done", "job", job->id, "calling_ae", job->meta.calling_ae, "host", job->meta.peer,
                      "sop_instance_uid", job->meta.sop_instance_uid, "results", uids, "queued_for",
                      k ? to : "no destination", NULL);
        cx_log(CX_LOG_INFO, "worker", job->id, "processed %s in %.0f ms: %s; %zu results (%s) queued for %s",
               job->meta.sop_instance_uid, ms, out.summary, out.n, uids, k ? to : "no destination");
        cx_node_senders_wake(node);
    } else {
        cx_node_metric_processing(1, ms, out.stage_ms);
        cx_node_audit("processing", "done", "job", job->id, "calling_ae", job->meta.calling_ae, "host", job->meta.peer,
                      "sop_instance_uid", job->meta.sop_instance_uid, "reason", "no result objects made", NULL);
        cx_log(CX_LOG_INFO, "worker", job->id, "processed %s in %.0f ms: %s", job->meta.sop_instance_uid, ms,
               out.summary);
    }
    cx_free(dests);
}

static void *worker_main(void *arg)
{
    worker_slot *w = arg;
    cx_node *node = w->node;
    /* Workers run at a lower priority than the association threads, so that receiving (and
     * acknowledging) images stays fast while every core is busy with inference. Linux applies
     * nice values per thread. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5) != 0)
        cx_log(CX_LOG_DEBUG, "worker", NULL, "cannot lower the priority of worker %d", w->index + 1);
    /* Each worker owns its engine state (scratch memory) over the one shared model. */
    cx_mrcnn *engine = NULL;
    if (node->model) {
        pthread_rwlock_rdlock(&node->cfg_lock);
        int threads = node->cfg->workers.threads_per_worker;
        pthread_rwlock_unlock(&node->cfg_lock);
        cx_error err = {0};
        if (cx_mrcnn_new(node->model, threads > 0 ? threads : 1, &engine, &err) != CX_OK) {
            cx_log(CX_LOG_ERROR, "worker", NULL, "worker %d cannot create its engine state: %s; it stays idle",
                   w->index + 1, err.msg);
            return NULL;
        }
    }
    while (!atomic_load(&node->stopping)) {
        cx_spool_job job;
        cx_error err = {0};
        cx_status st = cx_spool_claim(node->spool, 500, &job, &err);
        if (st == CX_ERR_TIMEOUT)
            continue;
        if (st != CX_OK)
            break;
        run_job(w, engine, &job);
    }
    cx_mrcnn_free(engine);
    return NULL;
}

static void *watchdog_main(void *arg)
{
    cx_node *node = arg;
    while (!atomic_load(&g_watch_stop)) {
        usleep(200000);
        double now = cx_now_ms();
        for (int i = 0; i < node->n_workers; i++) {
            worker_slot *w = &g_slots[i];
            pthread_mutex_lock(&w->mu);
            if (w->deadline_ms > 0 && now > w->deadline_ms && !atomic_load(&w->cancel)) {
                atomic_store(&w->cancel, 1);
                cx_log(CX_LOG_WARN, "worker", w->job, "job timeout reached: cancelling");
            }
            pthread_mutex_unlock(&w->mu);
        }
    }
    return NULL;
}

cx_status cx_node_workers_start(cx_node *node, int n, cx_error *err)
{
    if (n < 1)
        n = 1;
    g_slots = cx_calloc((size_t)n, sizeof *g_slots);
    node->workers = cx_calloc((size_t)n, sizeof *node->workers);
    if (!g_slots || !node->workers)
        return cx_error_set(err, CX_ERR_NOMEM, "node", "out of memory for %d workers", n);
    node->n_workers = 0;
    for (int i = 0; i < n; i++) {
        g_slots[i].node = node;
        g_slots[i].index = i;
        pthread_mutex_init(&g_slots[i].mu, NULL);
    }
    g_nslots = n;
    install_crash_handler();
    for (int i = 0; i < n; i++) {
        if (pthread_create(&node->workers[i], NULL, worker_main, &g_slots[i]) != 0)
            return cx_error_set(err, CX_ERR_INTERNAL, "node", "cannot start worker %d", i + 1);
        node->n_workers++;
    }
    atomic_store(&g_watch_stop, 0);
    if (pthread_create(&g_watchdog, NULL, watchdog_main, node) != 0)
        return cx_error_set(err, CX_ERR_INTERNAL, "node", "cannot start the job watchdog");
    return CX_OK;
}

void cx_node_workers_join(cx_node *node)
{
    for (int i = 0; i < node->n_workers; i++)
        pthread_join(node->workers[i], NULL);
    atomic_store(&g_watch_stop, 1);
    pthread_join(g_watchdog, NULL);
    g_nslots = 0;
    for (int i = 0; i < node->n_workers; i++)
        pthread_mutex_destroy(&g_slots[i].mu);
    cx_free(g_slots);
    g_slots = NULL;
    cx_free(node->workers);
    node->workers = NULL;
    node->n_workers = 0;
}

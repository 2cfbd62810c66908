/* node_send.c: one sender thread per destination, so a destination that is down never delays the
 * others or new work. Each thread sends the due items of outbox/<dest>/ over one association,
 * moves each confirmed item to sent/<dest>/ (the sent-once record), and retries the others with
 * exponential back-off until max-attempts, then moves them to failed/. Retry counters live in
 * memory: after a restart every waiting item is tried at once, which is what an operator expects. */
#define _GNU_SOURCE
#include "node.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32

typedef struct retry_entry {
    char uid[CX_SPOOL_UID_MAX];
    int attempts;
    double next_ms;
    int seen;
} retry_entry;

struct cx_node_sender {
    char name[CX_SPOOL_NAME_MAX];
    pthread_t th;
    cx_node *node;
    int started;
};

static int find_dest(cx_node *node, const char *name, cx_node_dest *out, cx_config_retry *retry)
{
    cx_node_dest *all = NULL;
    size_t n = 0;
    cx_error err = {0};
    int found = 0;
    pthread_rwlock_rdlock(&node->cfg_lock);
    if (cx_node_dests(node->cfg, &all, &n, &err) == CX_OK) {
        for (size_t i = 0; i < n; i++)
            if (!strcmp(all[i].name, name)) {
                *out = all[i];
                found = 1;
            }
    }
    *retry = node->cfg->destinations.retry;
    pthread_rwlock_unlock(&node->cfg_lock);
    cx_free(all);
    return found;
}

static retry_entry *retry_get(retry_entry **tab, size_t *n, size_t *cap, const char *uid)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*tab)[i].uid, uid))
            return &(*tab)[i];
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        retry_entry *nt = cx_realloc(*tab, nc * sizeof *nt);
        if (!nt)
            return NULL;
        *tab = nt;
        *cap = nc;
    }
    retry_entry *e = &(*tab)[(*n)++];
    memset(e, 0, sizeof *e);
    snprintf(e->uid, sizeof e->uid, "%s", uid);
    return e;
}

static double backoff_ms(const cx_config_retry *r, int attempts)
{
    double d = r->initial_delay_s * pow(r->factor > 1.0 ? r->factor : 1.0, attempts - 1);
    if (d > r->max_delay_s)
        d = r->max_delay_s;
    if (d < 0.05)
        d = 0.05;
    return d * 1000.0;
}

static int status_ok(uint16_t s)
{
    /* Success, and the warning statuses (coercion, elements discarded, mismatch) that still mean
     * "stored" (PS3.4 B.2.3). */
    return s == 0x0000 || s == 0xB000 || s == 0xB006 || s == 0xB007;
}

static void audit_delivery(const char *outcome, const char *uid, const cx_node_dest *d, uint16_t st, const char *why)
{
    char status[8] = "";
    const char *to = d->peer;
    if (st != CXD_STATUS_NOT_SENT)
        snprintf(status, sizeof status, "0x%04X", st);
    cx_node_metric_delivery(d->name, outcome, why);
    cx_node_audit("delivery", outcome, "sop_instance_uid", uid, "destination", d->name, "peer", to, "status", status,
                  "reason", why, NULL);
}

static void wait_for_work(cx_node *node, double ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = ts.tv_nsec + (long long)(ms * 1e6);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&node->mu);
    unsigned gen = node->send_gen;
    while (gen == node->send_gen && !atomic_load(&node->stopping))
        if (pthread_cond_timedwait(&node->send_cv, &node->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&node->mu);
}

/* One sender's memory of its items' attempts (by SOP Instance UID). */
typedef struct retry_table {
    retry_entry *tab;
    size_t n, cap;
} retry_table;

/* The outbox items due now, at most BATCH, into paths/idx (*nb of them); items already recorded as
 * delivered (a crash between delivery and bookkeeping) are settled, never sent twice. *next_due:
 * when the earliest item not yet due is. Entries of items no longer in the outbox are forgotten. */
static void pick_due(cx_node *node, const char *dest, retry_table *rt, const cx_spool_item *items, size_t n,
                     double now, const char **paths, size_t *idx, size_t *nb, double *next_due)
{
    *nb = 0;
    for (size_t i = 0; i < rt->n; i++)
        rt->tab[i].seen = 0;
    for (size_t i = 0; i < n; i++) {
        retry_entry *e = retry_get(&rt->tab, &rt->n, &rt->cap, items[i].uid);
        if (!e)
            break;
        e->seen = 1;
        if (cx_spool_was_sent(node->spool, dest, items[i].uid)) {
            cx_error e2;
            cx_spool_outbox_sent(node->spool, dest, items[i].uid, &e2);
            continue;
        }
        if (e->next_ms > now) {
            if (e->next_ms < *next_due)
                *next_due = e->next_ms;
            continue;
        }
        if (*nb < BATCH) {
            paths[*nb] = items[i].path;
            idx[(*nb)++] = i;
        }
    }
    for (size_t i = 0; i < rt->n;)
        if (!rt->tab[i].seen)
            rt->tab[i] = rt->tab[--rt->n];
        else
            i++;
}

/* One item's outcome after a send: delivered (recorded, audited), or failed: given up (refused for
 * good, or out of attempts: moved to failed/) or scheduled for a retry with back-off. Returns 1 when
 * it failed; *max_att and *first_retry follow the batch's worst attempt count and its next retry. */
static int settle_item(cx_node *node, const cx_node_dest *d, const cx_config_retry *retry, retry_table *rt,
                       const cx_spool_item *it, cxd_status ds, uint16_t status, int permanent, const cxd_error *de,
                       double ms, size_t nb, int *max_att, double *first_retry)
{
    retry_entry *e = retry_get(&rt->tab, &rt->n, &rt->cap, it->uid);
    if (ds == CXD_OK && status_ok(status)) {
        cx_error e2 = {0};
        if (cx_spool_outbox_sent(node->spool, d->name, it->uid, &e2) != CX_OK)
            cx_log(CX_LOG_ERROR, "sender", NULL, "%s", e2.msg);
        cx_log(CX_LOG_INFO, "sender", NULL, "sent %s to %s (%s), status 0x%04X, %.0f ms for %zu objects", it->uid,
               d->name, d->peer, status, ms, nb);
        audit_delivery("sent", it->uid, d, status, NULL);
        if (e)
            e->attempts = 0;
        return 0;
    }
    char why[600];
    if (ds != CXD_OK || status == CXD_STATUS_NOT_SENT)
        snprintf(why, sizeof why, "%s", de->msg[0] ? de->msg : "not sent");
    else
        snprintf(why, sizeof why, "destination answered status 0x%04X", status);
    if (!e)
        return 1;
    e->attempts++;
    if (e->attempts > *max_att)
        *max_att = e->attempts;
    if (permanent || (retry->max_attempts > 0 && e->attempts >= retry->max_attempts)) {
        char reason[800];
        if (permanent)
            snprintf(reason, sizeof reason, "refused, not retried: %s", why);
        else
            snprintf(reason, sizeof reason, "gave up after %d attempts: %s", e->attempts, why);
        cx_error e2 = {0};
        if (cx_spool_outbox_fail(node->spool, d->name, it->uid, reason, &e2) != CX_OK)
            cx_log(CX_LOG_ERROR, "sender", NULL, "%s", e2.msg);
        cx_log(CX_LOG_ERROR, "sender", NULL, "failed to send %s to %s: %s", it->uid, d->name, reason);
        audit_delivery("failed", it->uid, d, status, reason);
    } else {
        e->next_ms = cx_now_ms() + backoff_ms(retry, e->attempts);
        *first_retry = backoff_ms(retry, e->attempts) / 1000.0;
        if (ds == CXD_OK)
            cx_log(CX_LOG_WARN, "sender", NULL, "%s not stored by %s: %s; retry %d/%d in %.0f s", it->uid, d->name,
                   why, e->attempts, retry->max_attempts, *first_retry);
        audit_delivery("retry", it->uid, d, status, why);
    }
    return 1;
}

/* One association (or STOW-RS request) for the batch, then each item settled. */
static void send_batch(cx_node *node, const cx_node_dest *d, const cx_config_retry *retry, retry_table *rt,
                       const cx_spool_item *items, const char **paths, const size_t *idx, size_t nb)
{
    uint16_t st[BATCH];
    cxd_send_params sp = {d->calling_ae, d->ae_title, d->host, d->port, 0, (unsigned)d->connect_timeout_s, 30,
                          (unsigned)d->dimse_timeout_s,
                          {d->tls, d->tls_cert, d->tls_key, d->tls_ca, d->tls_verify}};
    cxd_error de = {0};
    double t0 = cx_now_ms();
    int permanent = 0;
    cxd_status ds = d->stow ? cx_node_stow_send(d, paths, nb, st, &permanent, &de) : cxd_send_files(&sp, paths, nb, st, &de);
    double ms = cx_now_ms() - t0;
    int failed = 0, max_att = 0;
    double first_retry = 0;
    for (size_t b = 0; b < nb; b++)
        failed += settle_item(node, d, retry, rt, &items[idx[b]], ds, st[b], permanent, &de, ms, nb, &max_att,
                              &first_retry);
    if (ds != CXD_OK && failed && !permanent)
        cx_log(CX_LOG_WARN, "sender", NULL, "destination %s (%s) unreachable, %d results waiting: %s; "
               "retry %d/%d in %.0f s", d->name, d->peer, failed, de.msg, max_att, retry->max_attempts, first_retry);
}

static void *sender_main(void *arg)
{
    struct cx_node_sender *snd = arg;
    cx_node *node = snd->node;
    retry_table rt = {NULL, 0, 0};
    int warned_missing = 0;
    while (!atomic_load(&node->stopping)) {
        cx_node_dest d;
        cx_config_retry retry;
        if (!find_dest(node, snd->name, &d, &retry)) {
            if (!warned_missing)
                cx_log(CX_LOG_WARN, "sender", NULL,
                       "outbox/%s has items but no destination of that name is configured: they wait", snd->name);
            warned_missing = 1;
            wait_for_work(node, 5000);
            continue;
        }
        warned_missing = 0;
        cx_spool_item *items = NULL;
        size_t n = 0;
        cx_error err = {0};
        if (cx_spool_outbox_list(node->spool, snd->name, &items, &n, &err) != CX_OK) {
            cx_log(CX_LOG_ERROR, "sender", NULL, "%s", err.msg);
            wait_for_work(node, 2000);
            continue;
        }
        double now = cx_now_ms(), next_due = now + 1000.0;
        const char *paths[BATCH];
        size_t idx[BATCH], nb = 0;
        pick_due(node, snd->name, &rt, items, n, now, paths, idx, &nb, &next_due);
        if (nb) {
            send_batch(node, &d, &retry, &rt, items, paths, idx, nb);
            cx_free(items);
            continue; /* look again at once: more may be due */
        }
        cx_free(items);
        double wait = next_due - cx_now_ms();
        wait_for_work(node, wait < 50 ? 50 : wait > 1000 ? 1000 : wait);
    }
    cx_free(rt.tab);
    return NULL;
}

void cx_node_senders_wake(cx_node *node)
{
    pthread_mutex_lock(&node->mu);
    node->send_gen++;
    pthread_cond_broadcast(&node->send_cv);
    pthread_mutex_unlock(&node->mu);
}

static cx_status ensure_sender(cx_node *node, const char *name, cx_error *err)
{
    for (size_t i = 0; i < node->n_senders; i++)
        if (!strcmp(node->senders[i].name, name))
            return CX_OK;
    /* Threads keep a pointer to their slot: grow by allocating a new block only when empty. */
    if (node->n_senders >= 256)
        return cx_error_set(err, CX_ERR_INVALID, "node", "more than 256 destinations");
    if (!node->senders) {
        node->senders = cx_calloc(256, sizeof *node->senders);
        if (!node->senders)
            return cx_error_set(err, CX_ERR_NOMEM, "node", "out of memory");
    }
    struct cx_node_sender *s = &node->senders[node->n_senders];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->node = node;
    if (pthread_create(&s->th, NULL, sender_main, s) != 0)
        return cx_error_set(err, CX_ERR_INTERNAL, "node", "cannot start the sender thread for %s", name);
    s->started = 1;
    node->n_senders++;
    return CX_OK;
}

cx_status cx_node_senders_sync(cx_node *node, cx_error *err)
{
    cx_node_dest *all = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&node->cfg_lock);
    cx_status st = cx_node_dests(node->cfg, &all, &n, err);
    pthread_rwlock_unlock(&node->cfg_lock);
    if (st != CX_OK)
        return st;
    pthread_mutex_lock(&node->mu);
    for (size_t i = 0; i < n && st == CX_OK; i++)
        st = ensure_sender(node, all[i].name, err);
    /* Outbox folders left from an earlier configuration get a thread too, so they are reported. */
    char **names = NULL;
    size_t nn = 0;
    cx_error e2;
    if (st == CX_OK && cx_spool_outbox_dests(node->spool, &names, &nn, &e2) == CX_OK) {
        for (size_t i = 0; i < nn; i++) {
            if (st == CX_OK && cx_spool_dest_name_ok(names[i]))
                st = ensure_sender(node, names[i], err);
            cx_free(names[i]);
        }
        cx_free(names);
    }
    pthread_mutex_unlock(&node->mu);
    cx_free(all);
    return st;
}

void cx_node_senders_join(cx_node *node)
{
    cx_node_senders_wake(node);
    for (size_t i = 0; i < node->n_senders; i++)
        if (node->senders[i].started)
            pthread_join(node->senders[i].th, NULL);
    cx_free(node->senders);
    node->senders = NULL;
    node->n_senders = 0;
}

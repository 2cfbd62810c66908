/* node_ingest.c: what happens to each C-STORE. Before the data arrives the spool reserves a
 * staging slot (queue/quota/free-disk checked, else "Out of Resources"); after it arrived the
 * filters decide (skip = acknowledge without processing, reject = failure status), and only a
 * durable commit to the spool answers Success. Runs on association threads. */
#include "node.h"

#include <stdio.h>
#include <string.h>

static const char *class_name(const char *uid)
{
    if (!strcmp(uid, "1.2.840.10008.5.1.4.1.1.1"))
        return "CR";
    if (!strcmp(uid, "1.2.840.10008.5.1.4.1.1.1.1"))
        return "DX for presentation";
    if (!strcmp(uid, "1.2.840.10008.5.1.4.1.1.1.1.1"))
        return "DX for processing";
    return "other";
}

static void assoc_job(const cxd_peer *peer, char out[24])
{
    snprintf(out, 24, "a%u", peer ? peer->assoc_id : 0u);
}

static void audit_object(const cxd_peer *peer, const char *job, const char *sop_class, const char *sop_instance,
                         const char *study, const char *outcome, const char *status, const char *reason)
{
    char assoc[24];
    assoc_job(peer, assoc);
    cx_node_metric_object(outcome, reason);
    cx_node_audit("object", outcome, "association", assoc, "job", strcmp(job, assoc) ? job : NULL, "calling_ae",
                  peer->calling_ae, "called_ae", peer->called_ae, "host", peer->host, "sop_class_uid", sop_class,
                  "sop_instance_uid", sop_instance, "study_instance_uid", study, "status", status, "reason", reason,
                  NULL);
}

/* What store_begin hands to store_end: the spool job and when the transfer started (the
 * receive stage of the node's timings, logged at debug level). */
typedef struct ingest_token {
    char id[CX_SPOOL_ID_MAX];
    double t_begin;
} ingest_token;

static uint16_t store_begin(void *user, const cxd_peer *peer, const char *sop_class_uid, const char *sop_instance_uid,
                            char *path, size_t path_len, void **token, char *comment, size_t comment_len)
{
    cx_node *node = user;
    char aj[24];
    assoc_job(peer, aj);
    if (atomic_load(&node->stopping)) {
        snprintf(comment, comment_len, "cxrseg: shutting down");
        cx_log(CX_LOG_WARN, "ingest", aj, "refused %s from %s@%s: node is shutting down (Out of Resources)",
               sop_instance_uid, peer->calling_ae, peer->host);
        audit_object(peer, aj, sop_class_uid, sop_instance_uid, NULL, "refused", "0xA700", "node shutting down");
        return CXD_STATUS_OUT_OF_RESOURCES;
    }
    char id[CX_SPOOL_ID_MAX];
    cx_error err = {0};
    cx_status st = cx_spool_ingest_begin(node->spool, id, path, path_len, &err);
    if (st != CX_OK) {
        snprintf(comment, comment_len, "cxrseg: %s", st == CX_ERR_FULL ? "spool full" : "spool error");
        cx_log(CX_LOG_WARN, "ingest", aj, "refused %s (%s) from %s@%s with Out of Resources (0xA700): %s",
               sop_instance_uid, class_name(sop_class_uid), peer->calling_ae, peer->host, err.msg);
        audit_object(peer, aj, sop_class_uid, sop_instance_uid, NULL, "refused", "0xA700", err.msg);
        return CXD_STATUS_OUT_OF_RESOURCES;
    }
    ingest_token *t = cx_malloc(sizeof *t);
    if (!t) {
        cx_spool_ingest_abort(node->spool, id);
        snprintf(comment, comment_len, "cxrseg: out of memory");
        return CXD_STATUS_OUT_OF_RESOURCES;
    }
    snprintf(t->id, sizeof t->id, "%s", id);
    t->t_begin = cx_now_ms();
    *token = t;
    return CXD_STATUS_SUCCESS;
}

static uint16_t store_end(void *user, void *token, const cxd_peer *peer, int received, const cxd_object_info *obj,
                          char *comment, size_t comment_len)
{
    cx_node *node = user;
    ingest_token *tk = token;
    const char *id = tk->id;
    double t_end = cx_now_ms();
    if (!received) {
        cx_log(CX_LOG_WARN, "ingest", id, "transfer from %s@%s broke off before the object was complete: discarded "
               "(not acknowledged)", peer->calling_ae, peer->host);
        audit_object(peer, id, NULL, NULL, NULL, "broken-off", NULL, "transfer ended before the object was complete");
        cx_spool_ingest_abort(node->spool, id);
        cx_free(tk);
        return CXD_STATUS_OUT_OF_RESOURCES;
    }
    pthread_rwlock_rdlock(&node->cfg_lock);
    long long max_bytes = (long long)node->cfg->listener.max_object_mb << 20;
    pthread_rwlock_unlock(&node->cfg_lock);
    if (max_bytes > 0 && obj->file_size > max_bytes) {
        cx_spool_ingest_abort(node->spool, id);
        snprintf(comment, comment_len, "cxrseg: object larger than max-object-mb");
        cx_log(CX_LOG_WARN, "ingest", id, "refused %s from %s@%s with Out of Resources (0xA700): %lld bytes, more "
               "than listener/max-object-mb %lld MB; discarded", obj->sop_instance_uid, peer->calling_ae, peer->host,
               obj->file_size, max_bytes >> 20);
        audit_object(peer, id, obj->sop_class_uid, obj->sop_instance_uid, obj->study_instance_uid, "refused", "0xA700",
                     "larger than listener/max-object-mb");
        cx_free(tk);
        return CXD_STATUS_OUT_OF_RESOURCES;
    }
    if (obj->parsed) {
        char why[400] = "";
        cx_config_object o = {obj->modality, obj->body_part_examined, obj->view_position, obj->series_description,
                              obj->rows, obj->columns};
        pthread_rwlock_rdlock(&node->cfg_lock);
        cx_config_action a = cx_config_filter(&node->cfg->filters, &o, why, sizeof why);
        pthread_rwlock_unlock(&node->cfg_lock);
        if (a != CX_ACTION_PROCESS) {
            cx_spool_ingest_abort(node->spool, id);
            if (a == CX_ACTION_SKIP) {
                cx_log(CX_LOG_INFO, "ingest", id, "skipped %s from %s@%s (acknowledged, not processed): %s",
                       obj->sop_instance_uid, peer->calling_ae, peer->host, why);
                audit_object(peer, id, obj->sop_class_uid, obj->sop_instance_uid, obj->study_instance_uid, "skipped",
                             "0x0000", why);
                cx_free(tk);
                return CXD_STATUS_SUCCESS;
            }
            cx_log(CX_LOG_INFO, "ingest", id, "rejected %s from %s@%s with 0x0124 (Not Authorized): %s",
                   obj->sop_instance_uid, peer->calling_ae, peer->host, why);
            audit_object(peer, id, obj->sop_class_uid, obj->sop_instance_uid, obj->study_instance_uid, "rejected",
                         "0x0124", why);
            snprintf(comment, comment_len, "%.60s", why);
            cx_free(tk);
            return CXD_STATUS_NOT_AUTHORIZED;
        }
    }
    cx_spool_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.calling_ae, sizeof m.calling_ae, "%s", peer->calling_ae);
    snprintf(m.called_ae, sizeof m.called_ae, "%s", peer->called_ae);
    snprintf(m.peer, sizeof m.peer, "%s", peer->host);
    snprintf(m.sop_class_uid, sizeof m.sop_class_uid, "%.64s", obj->sop_class_uid);
    snprintf(m.sop_instance_uid, sizeof m.sop_instance_uid, "%.64s", obj->sop_instance_uid);
    cx_error err = {0};
    double t_commit = cx_now_ms();
    cx_status st = cx_spool_ingest_commit(node->spool, id, &m, &err);
    double t_done = cx_now_ms();
    if (st != CX_OK) {
        snprintf(comment, comment_len, "cxrseg: %s", st == CX_ERR_FULL ? "spool full" : "spool error");
        cx_log(CX_LOG_WARN, "ingest", id, "refused %s from %s@%s with Out of Resources (0xA700): %s",
               obj->sop_instance_uid, peer->calling_ae, peer->host, err.msg);
        audit_object(peer, id, obj->sop_class_uid, obj->sop_instance_uid, obj->study_instance_uid, "refused", "0xA700",
                     err.msg);
        cx_free(tk);
        return CXD_STATUS_OUT_OF_RESOURCES;
    }
    audit_object(peer, id, obj->sop_class_uid, obj->sop_instance_uid, obj->study_instance_uid, "accepted", "0x0000",
                 obj->parsed ? "queued for processing" : "queued; header unreadable, the worker records the failure");
    cx_log(CX_LOG_DEBUG, "ingest", id, "stages of %s: receive %.1f ms (%lld bytes to the spool), filters %.1f ms, "
           "commit (fsync + rename) %.1f ms", obj->sop_instance_uid, t_end - tk->t_begin, obj->file_size,
           t_commit - t_end, t_done - t_commit);
    if (obj->parsed)
        cx_log(CX_LOG_INFO, "ingest", id, "received %s (%s %s, %dx%d, %s, %lld bytes) from %s@%s: queued",
               obj->sop_instance_uid, class_name(obj->sop_class_uid), obj->modality, obj->columns, obj->rows,
               obj->transfer_syntax_uid, obj->file_size, peer->calling_ae, peer->host);
    else
        cx_log(CX_LOG_WARN, "ingest", id,
               "received %s from %s@%s but its header is unreadable (%s): queued, the worker records the failure",
               obj->sop_instance_uid, peer->calling_ae, peer->host, obj->parse_error);
    cx_free(tk);
    return CXD_STATUS_SUCCESS;
}

static void event(void *user, const cxd_peer *peer, const char *what)
{
    (void)user;
    char aj[24];
    assoc_job(peer, aj);
    cx_log_level lvl = !strncmp(what, "rejected", 8) || !strncmp(what, "aborted", 7) ? CX_LOG_WARN
                       : !strcmp(what, "echo") || !strcmp(what, "released")          ? CX_LOG_DEBUG
                                                                                      : CX_LOG_INFO;
    if (!strcmp(what, "echo"))
        lvl = CX_LOG_INFO;
    cx_log(lvl, "listener", aj, "association from %s@%s to %s: %s", peer->calling_ae[0] ? peer->calling_ae : "?",
           peer->host[0] ? peer->host : "?", peer->called_ae[0] ? peer->called_ae : "?", what);
    if (strcmp(what, "echo") != 0) {
        /* "rejected: why", "refused ...: why", "closed: why", "aborted...": outcome, then the reason */
        char outcome[24];
        size_t n = strcspn(what, ": ");
        snprintf(outcome, sizeof outcome, "%.*s", (int)(n < sizeof outcome ? n : sizeof outcome - 1), what);
        const char *reason = what[n] ? what + n + strspn(what + n, ": ") : NULL;
        cx_node_metric_association(outcome);
        cx_node_audit("association", outcome, "association", aj, "calling_ae", peer->calling_ae, "called_ae",
                      peer->called_ae, "host", peer->host, "reason", reason, NULL);
    }
}

const cxd_listener_callbacks cx_node_ingest_callbacks_template = {NULL, store_begin, store_end, event};

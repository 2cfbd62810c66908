/* node.h: internal interfaces of the cxrseg-node daemon (src/node). The daemon wires the listener
 * (dicom/ network section), the spool (src/spool), the workers (processing step: node_process.c)
 * and one sender thread per destination. Nothing outside src/node includes this header. */
#ifndef CX_NODE_H
#define CX_NODE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_rwlock_t, sigtimedwait, clock_gettime */
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cx_base.h"
#include "cx_config.h"
#include "cx_mrcnn.h"
#include "cx_spool.h"
#include "cxdicom.h"

/* Exit codes of cxrseg-node (documented in docs/operations.md). */
enum {
    CX_NODE_EXIT_OK = 0,
    CX_NODE_EXIT_USAGE = 1,
    CX_NODE_EXIT_SPOOL = 3,   /* the spool cannot be opened or recovered */
    CX_NODE_EXIT_CONFIG = 4,  /* the configuration is invalid */
    CX_NODE_EXIT_LISTEN = 5,  /* the port cannot be bound (in use, no permission) */
    CX_NODE_EXIT_INTERNAL = 6
};

/* Result kinds (the same bits as the configuration's CX_OUTPUT_*). */
#define CX_NODE_MAX_RESULTS 8

typedef struct cx_node_result {
    char path[CX_SPOOL_PATH_MAX];
    char sop_instance_uid[CX_SPOOL_UID_MAX];
    unsigned kind;        /* CX_OUTPUT_SEG, CX_OUTPUT_SR, CX_OUTPUT_GSPS or CX_OUTPUT_SC */
} cx_node_result;

typedef struct cx_node_outcome {
    size_t n;
    cx_node_result results[CX_NODE_MAX_RESULTS];
    char summary[512];    /* findings for the log line, e.g. "2 findings (max score 0.91), 1234 mm2, ...,
                           * Lung opacity (...): present (image score 0.91)" */
    double stage_ms[3];   /* render, engine, write */
} cx_node_outcome;

typedef struct cx_node cx_node;

/* One destination as the sender threads see it (copied out of the configuration). */
typedef struct cx_node_dest {
    char name[CX_SPOOL_NAME_MAX];
    char ae_title[17], calling_ae[17];
    char host[256];
    int port;
    unsigned outputs;
    int connect_timeout_s, dimse_timeout_s;
    char return_for_ae[17]; /* return-to-sender: the calling AE it serves; "" otherwise */
    /* TLS (destination/tls; a return-to-sender destination uses listener/tls): absolute paths */
    int tls, tls_verify;    /* tls_verify: CXD_TLS_VERIFY_* */
    char tls_cert[4096], tls_key[4096], tls_ca[4096]; /* tls_ca: also the CA of an https STOW-RS URL */
    /* STOW-RS (<dicomweb-destination>): results are POSTed to url */
    int stow, http_timeout_s;
    char url[2048], bearer_token_file[4096], basic_auth_file[4096];
    char peer[320];         /* for log lines: "AE@host:port", or the STOW-RS URL */
} cx_node_dest;

/* A configuration shared by reference: the node's current one, and each job's snapshot of it. */
typedef struct cx_node_conf {
    cx_config *cfg;
    atomic_int refs;
} cx_node_conf;

struct cx_node {
    cx_config *cfg;              /* current configuration (conf->cfg); swap under cfg_lock */
    cx_node_conf *conf;          /* its reference-counted holder */
    pthread_rwlock_t cfg_lock;
    cx_spool *spool;
    cxd_listener *listener;
    atomic_int stopping;         /* SIGTERM: drain */
    pthread_mutex_t mu;          /* guards sender threads list, wake-up */
    pthread_cond_t send_cv;      /* signalled when results are queued */
    unsigned send_gen;
    /* workers */
    pthread_t *workers;
    int n_workers;
    /* senders: one thread per destination name */
    struct cx_node_sender *senders;
    size_t n_senders;
    int relay_test_mode;         /* 1 only in the relay test build (CX_NODE_RELAY): see node_process.c */
    cx_model *model;             /* one immutable model shared by every worker (NULL in relay mode
                                  * when the file is not a model) */
};

/* node_config.c: destinations of the current configuration (return-to-sender ones named
 * "return-<AE>"); *out is cx_malloc'ed. */
cx_status cx_node_dests(const cx_config *cfg, cx_node_dest **out, size_t *n, cx_error *err);

/* The configuration in force, held until cx_node_conf_put: a SIGHUP reload swaps the node's
 * current one without waiting for jobs that run with an earlier snapshot (the last put frees it).
 * cx_node_conf_new wraps a loaded configuration with one reference; cx_node_conf_set installs it
 * as current and drops the node's reference to the previous one. */
cx_node_conf *cx_node_conf_new(cx_config *cfg);
cx_node_conf *cx_node_conf_get(cx_node *node);
void cx_node_conf_put(cx_node_conf *c);
void cx_node_conf_set(cx_node *node, cx_node_conf *c);
/* Fills listener / spool parameters from the configuration; the arrays are cx_malloc'ed and
 * released with cx_node_listener_params_clear. */
void cx_node_listener_params(const cx_config *cfg, cxd_listener_params *p);
void cx_node_listener_params_clear(cxd_listener_params *p);
cx_spool_params cx_node_spool_params(const cx_config *cfg);
/* "return-<sanitised AE>" */
void cx_node_return_name(const char *ae, char out[CX_SPOOL_NAME_MAX]);

/* node_ingest.c: the listener callbacks (filters, spool). */
extern const cxd_listener_callbacks cx_node_ingest_callbacks_template;

/* node_work.c */
cx_status cx_node_workers_start(cx_node *node, int n, cx_error *err);
void cx_node_workers_join(cx_node *node);

/* node_process.c: THE processing step (source file -> result files). engine is the worker's own
 * state over node->model (NULL in relay test mode). */
cx_status cx_node_process(cx_node *node, cx_mrcnn *engine, const cx_spool_job *job, const atomic_int *cancel,
                          cx_node_outcome *out, cx_error *err);

/* node_stow.c: one STOW-RS request (multipart/related; type="application/dicom") with the files,
 * over libcurl. statuses[i] as for cxd_send_files (0x0000 stored, 0xC000 refused by the server for
 * that instance, CXD_STATUS_NOT_SENT); *permanent = 1 when the server refused the request itself
 * with a 4xx answer that a retry cannot change (its message is in err). */
cxd_status cx_node_stow_send(const cx_node_dest *d, const char *const *paths, size_t n, uint16_t *statuses,
                             int *permanent, cxd_error *err);

/* node_send.c */
cx_status cx_node_senders_sync(cx_node *node, cx_error *err); /* start threads for new destinations */
void cx_node_senders_wake(cx_node *node);
void cx_node_senders_join(cx_node *node);

/* node_log.c */
cx_status cx_node_log_setup(const cx_config *cfg, cx_error *err);
void cx_node_log_close(void);

/* The audit trail (node_audit.c, docs/audit.md): set up from logging/audit-to (again on SIGHUP).
 * cx_node_audit(event, outcome, key, value, ..., NULL) writes one JSON line; NULL or empty values
 * are left out. Identifiers only, never patient demographics. */
cx_status cx_node_audit_setup(const cx_config *cfg, cx_error *err);
void cx_node_audit_close(void);
void cx_node_audit(const char *event, const char *outcome, ...) __attribute__((sentinel));

/* node_metrics.c: counters for /metrics and the destination health for /healthz (docs/metrics.md);
 * the HTTP endpoint itself (libmicrohttpd), started when <http> is on. */
void cx_node_metric_object(const char *outcome, const char *why);
void cx_node_metric_association(const char *outcome);
void cx_node_metric_processing(int ok, double total_ms, const double stage_ms[3]); /* render, engine, write */
void cx_node_metric_delivery(const char *dest, const char *outcome, const char *why);
cx_status cx_node_http_start(cx_node *node, const cx_config *cfg, cx_error *err);
void cx_node_http_stop(void);

/* node_status.c */
int cx_node_status_main(const char *conf_path);

#endif

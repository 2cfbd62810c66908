/* cx_spool: the node's durable queue between the C-STORE listener, the workers and the sender.
 * A received object is acknowledged only after cx_spool_ingest_commit returned CX_OK; a result
 * leaves the outbox only after the destination confirmed it. Folder layout and crash rules are
 * described at the top of cx_spool.c. Thread-safe: one cx_spool is shared by all node threads. */
#ifndef CX_SPOOL_H
#define CX_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "cx_base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CX_SPOOL_ID_MAX 48    /* job ids: "j<13 digits ms>-<5 digits pid>-<4 digits counter>" */
#define CX_SPOOL_UID_MAX 65   /* a DICOM UID (64 chars) + NUL */
#define CX_SPOOL_AE_MAX 17
#define CX_SPOOL_NAME_MAX 64  /* destination names: [A-Za-z0-9_.-], 1..63 chars */
#define CX_SPOOL_PATH_MAX 4096

typedef struct cx_spool cx_spool;

typedef struct cx_spool_params {
    const char *root;          /* absolute directory; created when absent */
    uint64_t quota_bytes;      /* whole spool; 0 = no quota */
    uint64_t min_free_bytes;   /* free space the file system must keep; 0 = no check */
    unsigned max_queued;       /* jobs in incoming + processing; 0 = no limit */
    double retention_done_s;   /* processed sources (done/) kept this long; 0 = delete at once */
    double retention_sent_s;   /* delivered results (sent/) */
    double retention_failed_s; /* failed jobs and sends */
} cx_spool_params;

/* No quota, no queue limit, 1 GB free disk, done 0 s, sent 7 days, failed 30 days. */
cx_spool_params cx_spool_default_params(void);

/* What start-up recovery found (filled by cx_spool_open). */
typedef struct cx_spool_recovery {
    unsigned tmp_removed;       /* interrupted, never-acknowledged writes deleted */
    unsigned requeued;          /* processing -> incoming */
    unsigned queued;            /* jobs waiting in incoming after recovery */
    unsigned outbox;            /* results waiting to be sent */
    unsigned outbox_dups;       /* outbox items already in sent/ (removed) */
    unsigned broken;            /* incomplete job folders moved to failed/ */
} cx_spool_recovery;

/* Opens (creating the folders) and recovers the spool. rec may be NULL. */
cx_status cx_spool_open(const cx_spool_params *p, cx_spool **out, cx_spool_recovery *rec, cx_error *err);
void cx_spool_free(cx_spool *s);
const char *cx_spool_root(const cx_spool *s);

/* Changes limits (SIGHUP reload). The root cannot change. */
void cx_spool_set_limits(cx_spool *s, const cx_spool_params *p);

/* ---- ingest (listener) ---- */
typedef struct cx_spool_meta {
    char calling_ae[CX_SPOOL_AE_MAX];
    char called_ae[CX_SPOOL_AE_MAX];
    char peer[64];                         /* IP address of the sender */
    char sop_class_uid[CX_SPOOL_UID_MAX];
    char sop_instance_uid[CX_SPOOL_UID_MAX];
    int64_t received_ms;                   /* wall clock, ms since the epoch */
} cx_spool_meta;

/* Reserves a staging slot before the object is received: checks the queue length, the free disk
 * space and the quota (CX_ERR_FULL with the numbers when one is exceeded) and creates the staging
 * folder. Writes the job id and the path the object must be written to. */
cx_status cx_spool_ingest_begin(cx_spool *s, char job_id[CX_SPOOL_ID_MAX], char *path, size_t path_len,
                                cx_error *err);
/* Makes the received object durable: re-checks the quota with its real size, fsyncs it, writes the
 * job's metadata, fsyncs, renames the folder into incoming/ and fsyncs incoming/. Only after CX_OK
 * may the sender be told "Success". On any error the staging folder is removed (CX_ERR_FULL for
 * ENOSPC/EDQUOT/quota, CX_ERR_IO otherwise). */
cx_status cx_spool_ingest_commit(cx_spool *s, const char *job_id, const cx_spool_meta *meta, cx_error *err);
/* Drops a staging slot (receive failed, or the object was filtered out). */
void cx_spool_ingest_abort(cx_spool *s, const char *job_id);

/* ---- workers ---- */
typedef struct cx_spool_job {
    char id[CX_SPOOL_ID_MAX];
    char object_path[CX_SPOOL_PATH_MAX];  /* processing/<id>/object.dcm */
    char out_dir[CX_SPOOL_PATH_MAX];      /* processing/<id>/out: where results are written */
    char crash_marker[CX_SPOOL_PATH_MAX]; /* processing/<id>/crashed: a crash handler creates it */
    cx_spool_meta meta;
    unsigned attempt;                     /* 1 on first claim; +1 each time the node crashed on it */
} cx_spool_job;

/* Waits up to timeout_ms for a queued job and claims it (incoming -> processing).
 * Crash accounting: a process that dies on a signal while a job runs should create the job's
 * crash_marker file (open(2) is async-signal-safe). Start-up recovery re-queues every interrupted
 * job, but counts an attempt only when the marker exists, and gives a job up (failed/) after 3
 * such crashes: an object that crashes the node is not retried for ever, while kill -9 or a power
 * loss never fails a job.
 * CX_ERR_TIMEOUT when none arrived; CX_ERR_INVALID once cx_spool_shutdown was called. */
cx_status cx_spool_claim(cx_spool *s, int timeout_ms, cx_spool_job *job, cx_error *err);
/* Wakes every waiting cx_spool_claim (they return CX_ERR_INVALID). */
void cx_spool_shutdown(cx_spool *s);

typedef struct cx_spool_result {
    const char *path;             /* a result file, normally inside job->out_dir */
    const char *sop_instance_uid; /* its SOP Instance UID (names the outbox item) */
    unsigned kind;                /* a bit (e.g. SEG, SR) matched against dest_masks */
} cx_spool_result;

/* Queues each result for each destination whose mask has the result's kind bit (dest_masks NULL:
 * every result to every destination) as outbox/<dest>/<uid>.dcm (fsynced), skipping pairs that
 * were already delivered (sent/<dest>/<uid>.dcm exists), then retires the job (processing -> done).
 * Safe to repeat after a crash: an existing outbox item with the same UID is replaced. */
cx_status cx_spool_job_done(cx_spool *s, const cx_spool_job *job, const cx_spool_result *results, size_t n,
                            const char *const *dests, const unsigned *dest_masks, size_t ndest, cx_error *err);
/* Moves the job to failed/<id>/ with reason.txt. */
cx_status cx_spool_job_fail(cx_spool *s, const cx_spool_job *job, const char *reason, cx_error *err);

/* ---- sender ---- */
typedef struct cx_spool_item {
    char uid[CX_SPOOL_UID_MAX];
    char path[CX_SPOOL_PATH_MAX];
    double age_s;                 /* since it was queued */
} cx_spool_item;

/* Lists outbox/<dest>/ oldest first; *items is cx_malloc'ed (cx_free it), *n may be 0. */
cx_status cx_spool_outbox_list(cx_spool *s, const char *dest, cx_spool_item **items, size_t *n, cx_error *err);
/* Names of the destination folders present in outbox/ (cx_free each and the array). */
cx_status cx_spool_outbox_dests(cx_spool *s, char ***names, size_t *n, cx_error *err);
/* The destination confirmed uid: outbox/<dest>/<uid>.dcm -> sent/<dest>/<uid>.dcm (the sent-once record). */
cx_status cx_spool_outbox_sent(cx_spool *s, const char *dest, const char *uid, cx_error *err);
/* Retries exhausted: outbox/<dest>/<uid>.dcm -> failed/send-<dest>/<uid>.dcm + <uid>.reason. */
cx_status cx_spool_outbox_fail(cx_spool *s, const char *dest, const char *uid, const char *reason, cx_error *err);
/* 1 when uid was already delivered to dest. */
int cx_spool_was_sent(cx_spool *s, const char *dest, const char *uid);

/* Deletes done/, sent/ and failed/ entries older than their retention. Returns the number removed. */
unsigned cx_spool_cleanup(cx_spool *s);

/* ---- status (works on a root folder without opening it: `cxrseg-node status`) ---- */
typedef struct cx_spool_dest_status {
    char name[CX_SPOOL_NAME_MAX];
    unsigned outbox, sent, failed;
    double oldest_s;              /* age of the oldest outbox item, 0 when empty */
} cx_spool_dest_status;

typedef struct cx_spool_status {
    unsigned incoming, processing, done, failed;
    double oldest_incoming_s;     /* age of the oldest waiting job, 0 when none */
    uint64_t bytes;               /* total size of the spool */
    size_t ndest;
    cx_spool_dest_status *dest;   /* cx_malloc'ed; release with cx_spool_status_clear */
} cx_spool_status;

cx_status cx_spool_status_scan(const char *root, cx_spool_status *out, cx_error *err);
void cx_spool_status_clear(cx_spool_status *st);

/* 1 when name is usable as a destination folder name. */
int cx_spool_dest_name_ok(const char *name);

#ifdef CX_SPOOL_TEST_HOOKS
/* Test build only (CX_SPOOL_TEST_HOOKS): every later data write fails with this errno (0 disarms),
 * to simulate a full disk. */
void cx_spool_test_fail_writes(int errnum);
#endif

#ifdef __cplusplus
}
#endif
#endif

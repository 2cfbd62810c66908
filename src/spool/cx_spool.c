/* cx_spool: durable folder queue of the node (listener -> workers -> sender).
 *
 * Design. Every state is a folder, and every state change is one rename(2) followed by an fsync of
 * the folder that received the entry, so a crash (kill -9, power loss) leaves each item in exactly
 * one state, never half in two:
 *
 *   <root>/tmp/<job>/               staging of a receive: object.dcm + job.meta. Never acknowledged,
 *                                   so start-up deletes whatever is left here.
 *   <root>/incoming/<job>/          committed (acknowledged) objects waiting for a worker. The folder
 *                                   is renamed from tmp/ only after both files were fsynced.
 *   <root>/processing/<job>/        claimed by a worker; results are written to <job>/out/. Start-up
 *                                   moves these back to incoming/ (attempt + 1; after 3 attempts the
 *                                   job goes to failed/: an object that kills the node is not retried
 *                                   for ever).
 *   <root>/outbox/<dest>/<uid>.dcm  one result waiting for one destination, named by its SOP Instance
 *                                   UID, hard-linked from the job's out/ (fsynced first).
 *   <root>/sent/<dest>/<uid>.dcm    delivered; the entry itself is the sent-once record: a result is
 *                                   never queued again for a destination that already has it.
 *   <root>/done/<job>/              processed sources whose results are all in the outbox (retention).
 *   <root>/failed/<job>/            failed jobs with reason.txt; failed/send-<dest>/<uid>.dcm (+.reason)
 *                                   for results whose retries were exhausted.
 *
 * Why folders and not a journal: every state is visible to IT staff with ls, the status command
 * needs no running daemon, and rename is the atomic primitive POSIX gives us anyway. Result SOP
 * Instance UIDs are deterministic (derived from the source), so reprocessing after a crash
 * produces the same outbox names and cannot duplicate a delivery.
 *
 * Concurrency: one mutex guards the in-memory FIFO of incoming job ids and the byte/queue counters;
 * a condition variable wakes workers (cx_spool_claim). File operations run outside the lock where
 * they touch only the caller's own job. */
#define _GNU_SOURCE
#include "cx_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_ATTEMPTS 3

struct cx_spool {
    char root[CX_SPOOL_PATH_MAX];
    cx_spool_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char **queue;       /* FIFO of incoming job ids (ring) */
    size_t qcap, qhead, qlen;
    unsigned processing; /* claimed, not yet finished */
    unsigned staging;    /* ingest_begin without commit/abort */
    uint64_t bytes;      /* approximate size of the spool */
    int shutdown;
    unsigned counter;
};

#ifdef CX_SPOOL_TEST_HOOKS /* tests/unit/test_spool compiles this file with it; the library never does */
static int g_fail_writes;

void cx_spool_test_fail_writes(int errnum) { __atomic_store_n(&g_fail_writes, errnum, __ATOMIC_SEQ_CST); }
#endif

cx_spool_params cx_spool_default_params(void)
{
    cx_spool_params p;
    memset(&p, 0, sizeof p);
    p.min_free_bytes = 1024ull * 1024 * 1024;
    p.retention_done_s = 0;
    p.retention_sent_s = 7 * 86400.0;
    p.retention_failed_s = 30 * 86400.0;
    return p;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double wall_s(void) { return (double)wall_ms() / 1000.0; }

int cx_spool_dest_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= CX_SPOOL_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int uid_ok(const char *uid)
{
    size_t n = uid ? strlen(uid) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((uid[i] >= '0' && uid[i] <= '9') || uid[i] == '.'))
            return 0;
    return 1;
}

/* Joins up to four path parts with '/' into buf; returns 0 when it does not fit. (Not snprintf:
 * GCC's truncation analysis cannot see that every caller checks the result.) */
static int pjoin(char *buf, size_t len, const char *a, const char *b, const char *c, const char *d)
{
    const char *parts[4] = {a, b, c, d};
    size_t off = 0;
    for (int i = 0; i < 4 && parts[i]; i++) {
        size_t n = strlen(parts[i]);
        if (off + (i ? 1 : 0) + n + 1 > len)
            return 0;
        if (i)
            buf[off++] = '/';
        memcpy(buf + off, parts[i], n);
        off += n;
    }
    buf[off] = 0;
    return 1;
}

/* ---- small durable-file helpers ---- */

static int fsync_path(const char *path, int is_dir)
{
    int fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* Starts writing a file's data without waiting (Linux): the following fsyncs then share one
 * journal commit instead of each forcing its own. A hint only; errors are ignored, the fsync
 * that follows is what guarantees durability. */
static void start_writeback(const char *path)
{
#ifdef SYNC_FILE_RANGE_WRITE
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        close(fd);
    }
#else
    (void)path;
#endif
}

static cx_status io_status(int e) { return (e == ENOSPC || e == EDQUOT) ? CX_ERR_FULL : CX_ERR_IO; }

/* Writes a whole small file and (when do_sync) fsyncs it. */
static cx_status write_file(const char *path, const char *data, size_t len, int do_sync, cx_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return cx_error_set(err, io_status(errno), "spool", "cannot create %s: %s", path, strerror(errno));
    size_t off = 0;
    while (off < len) {
#ifdef CX_SPOOL_TEST_HOOKS
        int fe = __atomic_load_n(&g_fail_writes, __ATOMIC_SEQ_CST);
#else
        const int fe = 0;
#endif
        ssize_t w;
        if (fe) {
            errno = fe;
            w = -1;
        } else {
            w = write(fd, data + off, len - off);
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(path);
            return cx_error_set(err, io_status(e), "spool", "cannot write %s: %s", path, strerror(e));
        }
        off += (size_t)w;
    }
    if (do_sync && fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return cx_error_set(err, io_status(e), "spool", "cannot fsync %s: %s", path, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(path);
        return cx_error_set(err, io_status(e), "spool", "cannot close %s: %s", path, strerror(e));
    }
    return CX_OK;
}

static cx_status write_file_sync(const char *path, const char *data, size_t len, cx_error *err)
{
    return write_file(path, data, len, 1, err);
}

/* A failure's reason.txt: the reason on one line (cut at 1 KB), written and synced. */
static cx_status write_reason(const char *path, const char *reason, cx_error *err)
{
    char msg[1200];
    int n = snprintf(msg, sizeof msg, "%s\n", reason ? reason : "unknown");
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;
    return write_file_sync(path, msg, (size_t)n, err);
}

static int mkdir_p(const char *path)
{
    char buf[CX_SPOOL_PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0750) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

/* The two tree walks (removing a job or an expired folder, and the spool's size) are nftw(3)
 * walks that do not follow symbolic links. nftw passes no user pointer, so each sums into a
 * thread-local counter: ingest, workers and senders walk at the same time. */
static _Thread_local uint64_t walk_bytes;

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_DP || type == FTW_D || type == FTW_DNR) {
        rmdir(path);
    } else {
        if (st->st_nlink <= 1)
            walk_bytes += (uint64_t)st->st_size;
        unlink(path);
    }
    return 0; /* best effort: go on after an entry that cannot be removed */
}

/* Removes path and everything below it; returns the bytes freed (files with other hard links
 * free nothing). */
static uint64_t rm_rf(const char *path)
{
    walk_bytes = 0;
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return walk_bytes;
}

static int du_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (type == FTW_F || type == FTW_SL)
        walk_bytes += (uint64_t)st->st_size / (st->st_nlink ? st->st_nlink : 1);
    return 0;
}

/* Bytes under path, a hard-linked file shared between its links. */
static uint64_t du(const char *path)
{
    walk_bytes = 0;
    nftw(path, du_entry, 16, FTW_PHYS);
    return walk_bytes;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir (excluding dot entries); prefix filter optional. */
static cx_status list_dir(const char *dir, char ***out, size_t *n, cx_error *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            *out = NULL;
            *n = 0;
            return CX_OK;
        }
        return cx_error_set(err, CX_ERR_IO, "spool", "cannot list %s: %s", dir, strerror(errno));
    }
    char **v = NULL;
    size_t len = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nv = cx_realloc(v, nc * sizeof *nv);
            if (!nv)
                goto nomem;
            v = nv;
            cap = nc;
        }
        if (!(v[len] = cx_strdup(e->d_name)))
            goto nomem;
        len++;
    }
    closedir(d);
    if (len)
        qsort(v, len, sizeof *v, cmp_str);
    *out = v;
    *n = len;
    return CX_OK;
nomem:
    closedir(d);
    for (size_t i = 0; i < len; i++)
        cx_free(v[i]);
    cx_free(v);
    return cx_error_set(err, CX_ERR_NOMEM, "spool", "out of memory listing %s", dir);
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cx_free(v[i]);
    cx_free(v);
}

static int path_of(char *buf, size_t len, const cx_spool *s, const char *a, const char *b, const char *c)
{
    return pjoin(buf, len, s->root, a, b, c);
}

/* ---- job metadata (key=value lines) ---- */

static cx_status meta_write_opt(const char *path, const cx_spool_meta *m, unsigned attempt, int do_sync, cx_error *err)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "calling_ae=%s\ncalled_ae=%s\npeer=%s\nsop_class_uid=%s\nsop_instance_uid=%s\n"
                     "received_ms=%lld\nattempt=%u\n",
                     m->calling_ae, m->called_ae, m->peer, m->sop_class_uid, m->sop_instance_uid,
                     (long long)m->received_ms, attempt);
    if (n < 0 || (size_t)n >= sizeof buf)
        return cx_error_set(err, CX_ERR_INTERNAL, "spool", "job metadata too long (%d bytes)", n);
    return write_file(path, buf, (size_t)n, do_sync, err);
}

static cx_status meta_write(const char *path, const cx_spool_meta *m, unsigned attempt, cx_error *err)
{
    return meta_write_opt(path, m, attempt, 1, err);
}

static void copy_field(char *dst, size_t cap, const char *v)
{
    size_t n = strcspn(v, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static cx_status meta_read(const char *path, cx_spool_meta *m, unsigned *attempt, cx_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cx_error_set(err, CX_ERR_IO, "spool", "cannot read %s: %s", path, strerror(errno));
    cx_spool_meta t;
    memset(&t, 0, sizeof t);
    unsigned a = 1;
    char line[512];
    int have_uid = 0;
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *v = eq + 1;
        if (!strcmp(line, "calling_ae"))
            copy_field(t.calling_ae, sizeof t.calling_ae, v);
        else if (!strcmp(line, "called_ae"))
            copy_field(t.called_ae, sizeof t.called_ae, v);
        else if (!strcmp(line, "peer"))
            copy_field(t.peer, sizeof t.peer, v);
        else if (!strcmp(line, "sop_class_uid"))
            copy_field(t.sop_class_uid, sizeof t.sop_class_uid, v);
        else if (!strcmp(line, "sop_instance_uid")) {
            copy_field(t.sop_instance_uid, sizeof t.sop_instance_uid, v);
            have_uid = 1;
        } else if (!strcmp(line, "received_ms"))
            t.received_ms = strtoll(v, NULL, 10);
        else if (!strcmp(line, "attempt"))
            a = (unsigned)strtoul(v, NULL, 10);
    }
    fclose(f);
    if (!have_uid)
        return cx_error_set(err, CX_ERR_FORMAT, "spool", "%s: no sop_instance_uid line", path);
    *m = t;
    if (attempt)
        *attempt = a ? a : 1;
    return CX_OK;
}

/* ---- queue ---- */

static int queue_push(cx_spool *s, const char *id)
{
    if (s->qlen == s->qcap) {
        size_t nc = s->qcap ? s->qcap * 2 : 64;
        char **nq = cx_calloc(nc, sizeof *nq);
        if (!nq)
            return -1;
        for (size_t i = 0; i < s->qlen; i++)
            nq[i] = s->queue[(s->qhead + i) % s->qcap];
        cx_free(s->queue);
        s->queue = nq;
        s->qcap = nc;
        s->qhead = 0;
    }
    char *d = cx_strdup(id);
    if (!d)
        return -1;
    s->queue[(s->qhead + s->qlen) % s->qcap] = d;
    s->qlen++;
    return 0;
}

static char *queue_pop(cx_spool *s)
{
    if (!s->qlen)
        return NULL;
    char *id = s->queue[s->qhead];
    s->queue[s->qhead] = NULL;
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
    return id;
}

/* ---- open / recovery ---- */

static const char *const k_dirs[] = {"tmp", "incoming", "processing", "outbox", "sent", "done", "failed"};

static cx_status move_to_failed(cx_spool *s, const char *from_state, const char *id, const char *reason,
                                cx_error *err)
{
    char from[CX_SPOOL_PATH_MAX], to[CX_SPOOL_PATH_MAX], rp[CX_SPOOL_PATH_MAX];
    if (!path_of(from, sizeof from, s, from_state, id, NULL) || !path_of(to, sizeof to, s, "failed", id, NULL) ||
        !path_of(rp, sizeof rp, s, from_state, id, "reason.txt"))
        return cx_error_set(err, CX_ERR_INVALID, "spool", "path too long for job %s", id);
    cx_status st = write_reason(rp, reason, err);
    if (st != CX_OK)
        return st;
    rm_rf(to); /* a previous failure of the same id (cannot normally happen) */
    if (rename(from, to) != 0)
        return cx_error_set(err, CX_ERR_IO, "spool", "cannot move %s to failed/: %s", from, strerror(errno));
    char fd[CX_SPOOL_PATH_MAX];
    path_of(fd, sizeof fd, s, "failed", NULL, NULL);
    fsync_path(fd, 1);
    return CX_OK;
}

/* tmp/: interrupted receives, never acknowledged: removed. */
static cx_status recover_tmp(cx_spool *s, cx_spool_recovery *rec, cx_error *err)
{
    char dir[CX_SPOOL_PATH_MAX], a[CX_SPOOL_PATH_MAX];
    char **v;
    size_t n;
    path_of(dir, sizeof dir, s, "tmp", NULL, NULL);
    cx_status st = list_dir(dir, &v, &n, err);
    if (st != CX_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        if (path_of(a, sizeof a, s, "tmp", v[i], NULL)) {
            rm_rf(a);
            rec->tmp_removed++;
        }
    }
    free_list(v, n);
    return CX_OK;
}

/* One job of processing/ (a worker was interrupted) back to incoming/, its attempt count raised
 * when the node crashed on it; after MAX_ATTEMPTS crashes, or with unreadable metadata, to failed/. */
static cx_status requeue_job(cx_spool *s, const char *id, cx_spool_recovery *rec, cx_error *err)
{
    char a[CX_SPOOL_PATH_MAX], b[CX_SPOOL_PATH_MAX];
    cx_spool_meta m;
    unsigned attempt = 1;
    cx_error e2;
    if (!path_of(a, sizeof a, s, "processing", id, "job.meta"))
        return CX_OK;
    if (meta_read(a, &m, &attempt, &e2) != CX_OK) {
        if (move_to_failed(s, "processing", id, e2.msg, &e2) == CX_OK)
            rec->broken++;
        return CX_OK;
    }
    char marker[CX_SPOOL_PATH_MAX];
    struct stat msb;
    int crashed = path_of(marker, sizeof marker, s, "processing", id, "crashed") && stat(marker, &msb) == 0;
    if (crashed && attempt >= MAX_ATTEMPTS) {
        char why[160];
        snprintf(why, sizeof why, "recovery: the node crashed %u times while processing this object", attempt);
        unlink(marker);
        if (move_to_failed(s, "processing", id, why, &e2) == CX_OK)
            rec->broken++;
        return CX_OK;
    }
    if (crashed)
        attempt++;
    /* Rewrite the metadata with the attempt count first (tmp + rename: never half written). */
    char tmpm[CX_SPOOL_PATH_MAX];
    if (!path_of(tmpm, sizeof tmpm, s, "processing", id, "job.meta.new"))
        return CX_OK;
    cx_status st = meta_write(tmpm, &m, attempt, err);
    if (st != CX_OK)
        return st;
    if (rename(tmpm, a) != 0)
        return cx_error_set(err, CX_ERR_IO, "spool", "cannot replace %s: %s", a, strerror(errno));
    if (path_of(b, sizeof b, s, "processing", id, "out"))
        rm_rf(b);
    if (crashed)
        unlink(marker);
    path_of(b, sizeof b, s, "processing", id, NULL);
    fsync_path(b, 1);
    path_of(a, sizeof a, s, "processing", id, NULL);
    path_of(b, sizeof b, s, "incoming", id, NULL);
    if (rename(a, b) != 0)
        return cx_error_set(err, CX_ERR_IO, "spool", "cannot re-queue %s: %s", a, strerror(errno));
    rec->requeued++;
    return CX_OK;
}

/* fn on every entry of the spool's folder `area` (sorted), stopping at the first error. */
typedef cx_status (*entry_fn)(cx_spool *s, const char *name, cx_spool_recovery *rec, cx_error *err);

static cx_status each_entry(cx_spool *s, const char *area, entry_fn fn, cx_spool_recovery *rec, cx_error *err)
{
    char dir[CX_SPOOL_PATH_MAX];
    char **v = NULL; /* list_dir leaves it NULL when it fails */
    size_t n = 0;
    path_of(dir, sizeof dir, s, area, NULL, NULL);
    cx_status st = list_dir(dir, &v, &n, err);
    for (size_t i = 0; st == CX_OK && i < n; i++)
        st = fn(s, v[i], rec, err);
    free_list(v, n);
    return st;
}

/* incoming/<id>: queued again (names sort by receive time), or to failed/ when it lacks its
 * object or metadata. */
static cx_status recover_incoming_job(cx_spool *s, const char *id, cx_spool_recovery *rec, cx_error *err)
{
    char a[CX_SPOOL_PATH_MAX], b[CX_SPOOL_PATH_MAX];
    struct stat sb;
    if (!path_of(a, sizeof a, s, "incoming", id, "object.dcm") || !path_of(b, sizeof b, s, "incoming", id, "job.meta"))
        return CX_OK;
    if (stat(a, &sb) != 0 || stat(b, &sb) != 0) {
        cx_error e2;
        if (move_to_failed(s, "incoming", id, "recovery: job folder lacks object.dcm or job.meta", &e2) == CX_OK)
            rec->broken++;
        return CX_OK;
    }
    if (queue_push(s, id) != 0)
        return cx_error_set(err, CX_ERR_NOMEM, "spool", "out of memory queueing the recovered jobs");
    rec->queued++;
    return CX_OK;
}

/* outbox/<dest>/: half-made links (not .dcm) and items already delivered (in sent/) are dropped. */
static cx_status recover_outbox_dest(cx_spool *s, const char *dest, cx_spool_recovery *rec, cx_error *err)
{
    char a[CX_SPOOL_PATH_MAX], b[CX_SPOOL_PATH_MAX];
    char **w;
    size_t m;
    path_of(a, sizeof a, s, "outbox", dest, NULL);
    if (list_dir(a, &w, &m, err) != CX_OK)
        return CX_OK; /* not a folder: nothing of ours */
    for (size_t j = 0; j < m; j++) {
        path_of(a, sizeof a, s, "outbox", dest, w[j]);
        size_t len = strlen(w[j]);
        if (len < 5 || strcmp(w[j] + len - 4, ".dcm") != 0) {
            unlink(a);
            continue;
        }
        path_of(b, sizeof b, s, "sent", dest, w[j]);
        struct stat sb;
        if (stat(b, &sb) == 0) {
            unlink(a);
            rec->outbox_dups++;
        } else {
            rec->outbox++;
        }
    }
    free_list(w, m);
    return CX_OK;
}

static cx_status recover(cx_spool *s, cx_spool_recovery *rec, cx_error *err)
{
    cx_status st = recover_tmp(s, rec, err);
    if (st != CX_OK)
        return st;
    /* processing/: every interrupted job back to incoming/ (or to failed/), then the FIFO. */
    if ((st = each_entry(s, "processing", requeue_job, rec, err)) != CX_OK)
        return st;
    char dir[CX_SPOOL_PATH_MAX];
    path_of(dir, sizeof dir, s, "incoming", NULL, NULL);
    fsync_path(dir, 1);
    if ((st = each_entry(s, "incoming", recover_incoming_job, rec, err)) != CX_OK)
        return st;
    return each_entry(s, "outbox", recover_outbox_dest, rec, err);
}

cx_status cx_spool_open(const cx_spool_params *p, cx_spool **out, cx_spool_recovery *rec, cx_error *err)
{
    if (!p || !p->root || p->root[0] != '/')
        return cx_error_set(err, CX_ERR_INVALID, "spool", "the spool directory must be an absolute path (got \"%s\")",
                            p && p->root ? p->root : "(null)");
    if (strlen(p->root) > CX_SPOOL_PATH_MAX - 256)
        return cx_error_set(err, CX_ERR_INVALID, "spool", "spool directory path too long (%zu chars)",
                            strlen(p->root));
    cx_spool *s = cx_calloc(1, sizeof *s);
    if (!s)
        return cx_error_set(err, CX_ERR_NOMEM, "spool", "out of memory");
    snprintf(s->root, sizeof s->root, "%s", p->root);
    size_t rl = strlen(s->root);
    while (rl > 1 && s->root[rl - 1] == '/')
        s->root[--rl] = 0;
    s->p = *p;
    s->p.root = s->root;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->counter = (unsigned)(wall_ms() % 10000);
    for (size_t i = 0; i < sizeof k_dirs / sizeof *k_dirs; i++) {
        char d[CX_SPOOL_PATH_MAX];
        path_of(d, sizeof d, s, k_dirs[i], NULL, NULL);
        if (mkdir_p(d) != 0) {
            int e = errno;
            cx_spool_free(s);
            return cx_error_set(err, CX_ERR_IO, "spool", "cannot create %s: %s", d, strerror(e));
        }
    }
    /* Refuse to run on a spool we cannot write: better a start-up error than a failed C-STORE. */
    if (access(s->root, W_OK) != 0) {
        int e = errno;
        cx_spool_free(s);
        return cx_error_set(err, CX_ERR_IO, "spool", "spool directory %s is not writable: %s", p->root,
                            strerror(e));
    }
    cx_spool_recovery r;
    memset(&r, 0, sizeof r);
    cx_status st = recover(s, &r, err);
    if (st != CX_OK) {
        cx_spool_free(s);
        return st;
    }
    s->bytes = du(s->root);
    if (rec)
        *rec = r;
    *out = s;
    return CX_OK;
}

void cx_spool_free(cx_spool *s)
{
    if (!s)
        return;
    while (s->qlen)
        cx_free(queue_pop(s));
    cx_free(s->queue);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    cx_free(s);
}

const char *cx_spool_root(const cx_spool *s) { return s->root; }

void cx_spool_set_limits(cx_spool *s, const cx_spool_params *p)
{
    pthread_mutex_lock(&s->mu);
    s->p.quota_bytes = p->quota_bytes;
    s->p.min_free_bytes = p->min_free_bytes;
    s->p.max_queued = p->max_queued;
    s->p.retention_done_s = p->retention_done_s;
    s->p.retention_sent_s = p->retention_sent_s;
    s->p.retention_failed_s = p->retention_failed_s;
    pthread_mutex_unlock(&s->mu);
}

/* ---- ingest ---- */

static cx_status check_space(cx_spool *s, uint64_t extra, cx_error *err)
{
    /* Called with s->mu held. */
    unsigned queued = (unsigned)s->qlen + s->processing + s->staging;
    if (s->p.max_queued && queued >= s->p.max_queued)
        return cx_error_set(err, CX_ERR_FULL, "spool", "queue full: %u jobs waiting or in progress (limit %u)",
                            queued, s->p.max_queued);
    if (s->p.quota_bytes && s->bytes + extra > s->p.quota_bytes)
        return cx_error_set(err, CX_ERR_FULL, "spool", "spool quota reached: %llu MB used + %llu MB, quota %llu MB",
                            (unsigned long long)(s->bytes >> 20), (unsigned long long)(extra >> 20),
                            (unsigned long long)(s->p.quota_bytes >> 20));
    if (s->p.min_free_bytes) {
        struct statvfs vf;
        if (statvfs(s->root, &vf) == 0) {
            uint64_t avail = (uint64_t)vf.f_bavail * vf.f_frsize;
            if (avail < s->p.min_free_bytes + extra)
                return cx_error_set(err, CX_ERR_FULL, "spool",
                                    "disk nearly full: %llu MB free, %llu MB must stay free",
                                    (unsigned long long)(avail >> 20),
                                    (unsigned long long)(s->p.min_free_bytes >> 20));
        }
    }
    return CX_OK;
}

cx_status cx_spool_ingest_begin(cx_spool *s, char job_id[CX_SPOOL_ID_MAX], char *path, size_t path_len,
                                cx_error *err)
{
    char id[CX_SPOOL_ID_MAX], dir[CX_SPOOL_PATH_MAX], obj[CX_SPOOL_PATH_MAX];
    pthread_mutex_lock(&s->mu);
    cx_status st = check_space(s, 0, err);
    if (st != CX_OK) {
        pthread_mutex_unlock(&s->mu);
        return st;
    }
    unsigned c = s->counter++ % 10000;
    s->staging++;
    pthread_mutex_unlock(&s->mu);
    snprintf(id, sizeof id, "j%013lld-%05d-%04u", (long long)wall_ms(), (int)(getpid() % 100000), c);
    if (!path_of(dir, sizeof dir, s, "tmp", id, NULL) || !path_of(obj, sizeof obj, s, "tmp", id, "object.dcm") ||
        strlen(obj) >= path_len) {
        st = cx_error_set(err, CX_ERR_INVALID, "spool", "path buffer too small (%zu bytes)", path_len);
        goto fail;
    }
    if (mkdir(dir, 0750) != 0) {
        st = cx_error_set(err, io_status(errno), "spool", "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    memcpy(job_id, id, strlen(id) + 1);
    memcpy(path, obj, strlen(obj) + 1);
    return CX_OK;
fail:
    pthread_mutex_lock(&s->mu);
    s->staging--;
    pthread_mutex_unlock(&s->mu);
    return st;
}

void cx_spool_ingest_abort(cx_spool *s, const char *job_id)
{
    char dir[CX_SPOOL_PATH_MAX];
    if (job_id && path_of(dir, sizeof dir, s, "tmp", job_id, NULL))
        rm_rf(dir);
    pthread_mutex_lock(&s->mu);
    if (s->staging)
        s->staging--;
    pthread_mutex_unlock(&s->mu);
}

cx_status cx_spool_ingest_commit(cx_spool *s, const char *job_id, const cx_spool_meta *meta, cx_error *err)
{
    char dir[CX_SPOOL_PATH_MAX], obj[CX_SPOOL_PATH_MAX], mp[CX_SPOOL_PATH_MAX], dst[CX_SPOOL_PATH_MAX],
        inc[CX_SPOOL_PATH_MAX];
    cx_status st;
    if (!meta || !uid_ok(meta->sop_instance_uid)) {
        st = cx_error_set(err, CX_ERR_INVALID, "spool", "invalid SOP Instance UID \"%s\"",
                          meta ? meta->sop_instance_uid : "(null)");
        goto fail;
    }
    if (!path_of(dir, sizeof dir, s, "tmp", job_id, NULL) || !path_of(obj, sizeof obj, s, "tmp", job_id, "object.dcm") ||
        !path_of(mp, sizeof mp, s, "tmp", job_id, "job.meta") || !path_of(dst, sizeof dst, s, "incoming", job_id, NULL) ||
        !path_of(inc, sizeof inc, s, "incoming", NULL, NULL)) {
        st = cx_error_set(err, CX_ERR_INVALID, "spool", "path too long for job %s", job_id);
        goto fail;
    }
    struct stat sb;
    if (stat(obj, &sb) != 0) {
        st = cx_error_set(err, CX_ERR_IO, "spool", "received object %s missing: %s", obj, strerror(errno));
        goto fail;
    }
    pthread_mutex_lock(&s->mu);
    /* The object is already on disk: check the quota with its real size (staging counts as queued). */
    s->staging--;
    st = check_space(s, (uint64_t)sb.st_size, err);
    s->staging++;
    pthread_mutex_unlock(&s->mu);
    if (st != CX_OK)
        goto fail;
    /* Write the metadata first and fsync afterwards: the first fsync then commits the file
     * system's journal with both files and their folder entries, and the later ones find little
     * left to do (one journal commit instead of three on ext4). Every fsync is still made, so
     * durability does not depend on that. */
    cx_spool_meta m = *meta;
    if (!m.received_ms)
        m.received_ms = wall_ms();
    if ((st = meta_write_opt(mp, &m, 1, 0, err)) != CX_OK)
        goto fail;
    start_writeback(obj);
    start_writeback(mp);
    if (fsync_path(obj, 0) != 0 || fsync_path(mp, 0) != 0) {
        st = cx_error_set(err, io_status(errno), "spool", "cannot fsync %s: %s", obj, strerror(errno));
        goto fail;
    }
    if (fsync_path(dir, 1) != 0) {
        st = cx_error_set(err, io_status(errno), "spool", "cannot fsync %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (rename(dir, dst) != 0) {
        st = cx_error_set(err, io_status(errno), "spool", "cannot rename %s to incoming/: %s", dir, strerror(errno));
        goto fail;
    }
    if (fsync_path(inc, 1) != 0) {
        /* The rename happened but may not survive a power loss: roll back so the sender is not told
         * "Success" for an object that might vanish. */
        int e = errno;
        rename(dst, dir);
        st = cx_error_set(err, io_status(e), "spool", "cannot fsync %s: %s", inc, strerror(e));
        goto fail;
    }
    pthread_mutex_lock(&s->mu);
    s->staging--;
    s->bytes += (uint64_t)sb.st_size + 256;
    if (queue_push(s, job_id) != 0) {
        /* Durable but not queued in memory: it will be picked up at the next start-up. */
        pthread_mutex_unlock(&s->mu);
        cx_log(CX_LOG_WARN, "spool", job_id, "out of memory queueing the job; it runs after the next restart");
        return CX_OK;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return CX_OK;
fail:
    cx_spool_ingest_abort(s, job_id);
    return st;
}

/* ---- workers ---- */

cx_status cx_spool_claim(cx_spool *s, int timeout_ms, cx_spool_job *job, cx_error *err)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->qlen && !s->shutdown) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
                break;
        }
        if (s->shutdown) {
            pthread_mutex_unlock(&s->mu);
            return cx_error_set(err, CX_ERR_INVALID, "spool", "shutting down");
        }
        char *id = queue_pop(s);
        if (id)
            s->processing++;
        pthread_mutex_unlock(&s->mu);
        if (!id)
            return cx_error_set(err, CX_ERR_TIMEOUT, "spool", "no job within %d ms", timeout_ms);

        char from[CX_SPOOL_PATH_MAX], to[CX_SPOOL_PATH_MAX], mp[CX_SPOOL_PATH_MAX], pd[CX_SPOOL_PATH_MAX];
        cx_spool_job j;
        memset(&j, 0, sizeof j);
        snprintf(j.id, sizeof j.id, "%s", id);
        int ok = path_of(from, sizeof from, s, "incoming", id, NULL) && path_of(to, sizeof to, s, "processing", id, NULL) &&
                 path_of(mp, sizeof mp, s, "processing", id, "job.meta") &&
                 path_of(j.object_path, sizeof j.object_path, s, "processing", id, "object.dcm") &&
                 path_of(j.out_dir, sizeof j.out_dir, s, "processing", id, "out") &&
                 path_of(j.crash_marker, sizeof j.crash_marker, s, "processing", id, "crashed") &&
                 path_of(pd, sizeof pd, s, "processing", NULL, NULL);
        cx_error e2;
        cx_status st = CX_ERR_IO;
        if (ok && rename(from, to) == 0) {
            fsync_path(pd, 1);
            st = meta_read(mp, &j.meta, &j.attempt, &e2);
            if (st == CX_OK && mkdir(j.out_dir, 0750) != 0 && errno != EEXIST) {
                st = CX_ERR_IO;
                cx_error_set(&e2, CX_ERR_IO, "spool", "cannot create %s: %s", j.out_dir, strerror(errno));
            }
            if (st != CX_OK) {
                cx_log(CX_LOG_ERROR, "spool", id, "%s", e2.msg);
                move_to_failed(s, "processing", id, e2.msg, &e2);
            }
        } else {
            cx_log(CX_LOG_ERROR, "spool", id, "cannot claim %s: %s", from, strerror(errno));
        }
        cx_free(id);
        if (st == CX_OK) {
            *job = j;
            return CX_OK;
        }
        pthread_mutex_lock(&s->mu);
        s->processing--;
        pthread_mutex_unlock(&s->mu);
        /* Try the next queued job. */
    }
}

void cx_spool_shutdown(cx_spool *s)
{
    pthread_mutex_lock(&s->mu);
    s->shutdown = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void job_finished(cx_spool *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->processing)
        s->processing--;
    pthread_mutex_unlock(&s->mu);
}

cx_status cx_spool_job_done(cx_spool *s, const cx_spool_job *job, const cx_spool_result *results, size_t n,
                            const char *const *dests, const unsigned *dest_masks, size_t ndest, cx_error *err)
{
    char a[CX_SPOOL_PATH_MAX], b[CX_SPOOL_PATH_MAX], t[CX_SPOOL_PATH_MAX];
    uint64_t added = 0;
    for (size_t d = 0; d < ndest; d++)
        if (!cx_spool_dest_name_ok(dests[d]))
            return cx_error_set(err, CX_ERR_INVALID, "spool", "invalid destination name \"%s\"", dests[d]);
    for (size_t i = 0; i < n; i++) {
        if (!uid_ok(results[i].sop_instance_uid))
            return cx_error_set(err, CX_ERR_INVALID, "spool", "result %s: invalid SOP Instance UID \"%s\"",
                                results[i].path, results[i].sop_instance_uid ? results[i].sop_instance_uid : "");
        if (fsync_path(results[i].path, 0) != 0)
            return cx_error_set(err, io_status(errno), "spool", "cannot fsync result %s: %s", results[i].path,
                                strerror(errno));
        struct stat sb;
        if (stat(results[i].path, &sb) == 0)
            added += (uint64_t)sb.st_size;
    }
    for (size_t d = 0; d < ndest; d++) {
        if (!path_of(a, sizeof a, s, "outbox", dests[d], NULL))
            return cx_error_set(err, CX_ERR_INVALID, "spool", "path too long");
        if (mkdir_p(a) != 0)
            return cx_error_set(err, io_status(errno), "spool", "cannot create %s: %s", a, strerror(errno));
        for (size_t i = 0; i < n; i++) {
            char name[CX_SPOOL_UID_MAX + 8], tname[CX_SPOOL_UID_MAX + 64];
            if (dest_masks && !(dest_masks[d] & results[i].kind))
                continue;
            snprintf(name, sizeof name, "%s.dcm", results[i].sop_instance_uid);
            if (cx_spool_was_sent(s, dests[d], results[i].sop_instance_uid)) {
                cx_log(CX_LOG_INFO, "spool", job->id, "%s already delivered to %s: not queued again",
                       results[i].sop_instance_uid, dests[d]);
                continue;
            }
            snprintf(tname, sizeof tname, ".tmp-%s-%s", job->id, name);
            path_of(b, sizeof b, s, "outbox", dests[d], name);
            path_of(t, sizeof t, s, "outbox", dests[d], tname);
            unlink(t);
            /* Hard link (no copy); link to a temporary name then rename so an existing item with the
             * same UID (a redo after a crash) is replaced atomically. */
            if (link(results[i].path, t) != 0)
                return cx_error_set(err, io_status(errno), "spool", "cannot link %s to %s: %s", results[i].path, t,
                                    strerror(errno));
            if (rename(t, b) != 0) {
                int e = errno;
                unlink(t);
                return cx_error_set(err, io_status(e), "spool", "cannot rename %s: %s", t, strerror(e));
            }
        }
        if (fsync_path(a, 1) != 0)
            return cx_error_set(err, io_status(errno), "spool", "cannot fsync %s: %s", a, strerror(errno));
    }
    /* Retire the job: results are durable in the outbox, the source is no longer needed. */
    char from[CX_SPOOL_PATH_MAX], to[CX_SPOOL_PATH_MAX], dd[CX_SPOOL_PATH_MAX];
    if (!path_of(from, sizeof from, s, "processing", job->id, NULL) || !path_of(to, sizeof to, s, "done", job->id, NULL) ||
        !path_of(dd, sizeof dd, s, "done", NULL, NULL))
        return cx_error_set(err, CX_ERR_INVALID, "spool", "path too long");
    uint64_t freed = 0;
    double keep;
    pthread_mutex_lock(&s->mu);
    keep = s->p.retention_done_s;
    pthread_mutex_unlock(&s->mu);
    if (keep <= 0) {
        /* Unlink the job folder; the results survive through their outbox hard links. A crash in the
         * middle of the removal leaves a processing/ folder without object.dcm: recovery fails it
         * with a clear reason while its results are already queued. Rename first to avoid that. */
        if (rename(from, to) != 0)
            return cx_error_set(err, CX_ERR_IO, "spool", "cannot move %s to done/: %s", from, strerror(errno));
        fsync_path(dd, 1);
        freed = rm_rf(to);
    } else {
        if (rename(from, to) != 0)
            return cx_error_set(err, CX_ERR_IO, "spool", "cannot move %s to done/: %s", from, strerror(errno));
        fsync_path(dd, 1);
    }
    pthread_mutex_lock(&s->mu);
    s->bytes += added;
    s->bytes = s->bytes > freed ? s->bytes - freed : 0;
    if (s->processing)
        s->processing--;
    pthread_mutex_unlock(&s->mu);
    return CX_OK;
}

cx_status cx_spool_job_fail(cx_spool *s, const cx_spool_job *job, const char *reason, cx_error *err)
{
    char out[CX_SPOOL_PATH_MAX];
    if (path_of(out, sizeof out, s, "processing", job->id, "out"))
        rm_rf(out);
    cx_status st = move_to_failed(s, "processing", job->id, reason, err);
    job_finished(s);
    return st;
}

/* ---- sender ---- */

cx_status cx_spool_outbox_list(cx_spool *s, const char *dest, cx_spool_item **items, size_t *n, cx_error *err)
{
    char dir[CX_SPOOL_PATH_MAX];
    if (!cx_spool_dest_name_ok(dest))
        return cx_error_set(err, CX_ERR_INVALID, "spool", "invalid destination name \"%s\"", dest ? dest : "");
    path_of(dir, sizeof dir, s, "outbox", dest, NULL);
    char **v;
    size_t m;
    cx_status st = list_dir(dir, &v, &m, err);
    if (st != CX_OK)
        return st;
    cx_spool_item *it = m ? cx_calloc(m, sizeof *it) : NULL;
    if (m && !it) {
        free_list(v, m);
        return cx_error_set(err, CX_ERR_NOMEM, "spool", "out of memory listing %zu outbox items", m);
    }
    size_t k = 0;
    double now = wall_s();
    for (size_t i = 0; i < m; i++) {
        size_t len = strlen(v[i]);
        if (len < 5 || len - 4 >= CX_SPOOL_UID_MAX || strcmp(v[i] + len - 4, ".dcm") != 0)
            continue;
        struct stat sb;
        path_of(it[k].path, sizeof it[k].path, s, "outbox", dest, v[i]);
        if (stat(it[k].path, &sb) != 0)
            continue;
        memcpy(it[k].uid, v[i], len - 4);
        it[k].uid[len - 4] = 0;
        it[k].age_s = now - (double)sb.st_ctim.tv_sec - sb.st_ctim.tv_nsec / 1e9;
        k++;
    }
    free_list(v, m);
    /* Oldest first, so one stuck item does not starve younger ones of their turn forever. */
    for (size_t i = 1; i < k; i++) {
        cx_spool_item x = it[i];
        size_t j = i;
        while (j > 0 && it[j - 1].age_s < x.age_s) {
            it[j] = it[j - 1];
            j--;
        }
        it[j] = x;
    }
    *items = it;
    *n = k;
    return CX_OK;
}

cx_status cx_spool_outbox_dests(cx_spool *s, char ***names, size_t *n, cx_error *err)
{
    char dir[CX_SPOOL_PATH_MAX];
    path_of(dir, sizeof dir, s, "outbox", NULL, NULL);
    return list_dir(dir, names, n, err);
}

int cx_spool_was_sent(cx_spool *s, const char *dest, const char *uid)
{
    char p[CX_SPOOL_PATH_MAX], name[CX_SPOOL_UID_MAX + 8];
    if (!cx_spool_dest_name_ok(dest) || !uid_ok(uid))
        return 0;
    snprintf(name, sizeof name, "%s.dcm", uid);
    struct stat sb;
    return path_of(p, sizeof p, s, "sent", dest, name) && stat(p, &sb) == 0;
}

cx_status cx_spool_outbox_sent(cx_spool *s, const char *dest, const char *uid, cx_error *err)
{
    char a[CX_SPOOL_PATH_MAX], b[CX_SPOOL_PATH_MAX], d[CX_SPOOL_PATH_MAX], name[CX_SPOOL_UID_MAX + 8];
    if (!cx_spool_dest_name_ok(dest) || !uid_ok(uid))
        return cx_error_set(err, CX_ERR_INVALID, "spool", "invalid destination \"%s\" or UID \"%s\"", dest, uid);
    snprintf(name, sizeof name, "%s.dcm", uid);
    path_of(a, sizeof a, s, "outbox", dest, name);
    path_of(b, sizeof b, s, "sent", dest, name);
    path_of(d, sizeof d, s, "sent", dest, NULL);
    if (mkdir_p(d) != 0)
        return cx_error_set(err, io_status(errno), "spool", "cannot create %s: %s", d, strerror(errno));
    if (rename(a, b) != 0)
        return cx_error_set(err, CX_ERR_IO, "spool", "cannot move %s to sent/: %s", a, strerror(errno));
    if (fsync_path(d, 1) != 0)
        return cx_error_set(err, io_status(errno), "spool", "cannot fsync %s: %s", d, strerror(errno));
    return CX_OK;
}

cx_status cx_spool_outbox_fail(cx_spool *s, const char *dest, const char *uid, const char *reason, cx_error *err)
{
    char a[CX_SPOOL_PATH_MAX], b[CX_SPOOL_PATH_MAX], r[CX_SPOOL_PATH_MAX], d[CX_SPOOL_PATH_MAX],
        sub[CX_SPOOL_NAME_MAX + 8], name[CX_SPOOL_UID_MAX + 8], rname[CX_SPOOL_UID_MAX + 8];
    if (!cx_spool_dest_name_ok(dest) || !uid_ok(uid))
        return cx_error_set(err, CX_ERR_INVALID, "spool", "invalid destination \"%s\" or UID \"%s\"", dest, uid);
    snprintf(sub, sizeof sub, "send-%s", dest);
    snprintf(name, sizeof name, "%s.dcm", uid);
    snprintf(rname, sizeof rname, "%s.reason", uid);
    path_of(a, sizeof a, s, "outbox", dest, name);
    path_of(b, sizeof b, s, "failed", sub, name);
    path_of(r, sizeof r, s, "failed", sub, rname);
    path_of(d, sizeof d, s, "failed", sub, NULL);
    if (mkdir_p(d) != 0)
        return cx_error_set(err, io_status(errno), "spool", "cannot create %s: %s", d, strerror(errno));
    cx_status st = write_reason(r, reason, err);
    if (st != CX_OK)
        return st;
    if (rename(a, b) != 0)
        return cx_error_set(err, CX_ERR_IO, "spool", "cannot move %s to failed/: %s", a, strerror(errno));
    fsync_path(d, 1);
    return CX_OK;
}

/* ---- retention ---- */

static unsigned expire(const char *dir, double max_age, double now, int recurse_dirs, uint64_t *freed)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    unsigned removed = 0;
    struct dirent *e;
    char p[CX_SPOOL_PATH_MAX];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (!pjoin(p, sizeof p, dir, e->d_name, NULL, NULL))
            continue;
        struct stat sb;
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode) && recurse_dirs) {
            removed += expire(p, max_age, now, 0, freed);
            continue;
        }
        double age = now - (double)sb.st_ctim.tv_sec;
        if (age >= max_age) {
            *freed += rm_rf(p);
            removed++;
        }
    }
    closedir(d);
    return removed;
}

unsigned cx_spool_cleanup(cx_spool *s)
{
    char d[CX_SPOOL_PATH_MAX];
    double now = wall_s();
    cx_spool_params p;
    pthread_mutex_lock(&s->mu);
    p = s->p;
    pthread_mutex_unlock(&s->mu);
    uint64_t freed = 0;
    unsigned n = 0;
    path_of(d, sizeof d, s, "done", NULL, NULL);
    n += expire(d, p.retention_done_s, now, 0, &freed);
    path_of(d, sizeof d, s, "sent", NULL, NULL);
    n += expire(d, p.retention_sent_s, now, 1, &freed);
    /* failed/: job folders directly, send-<dest>/ files one level down. */
    path_of(d, sizeof d, s, "failed", NULL, NULL);
    DIR *dd = opendir(d);
    if (dd) {
        struct dirent *e;
        char p2[CX_SPOOL_PATH_MAX];
        while ((e = readdir(dd))) {
            if (e->d_name[0] == '.')
                continue;
            if (!pjoin(p2, sizeof p2, d, e->d_name, NULL, NULL))
                continue;
            if (!strncmp(e->d_name, "send-", 5)) {
                n += expire(p2, p.retention_failed_s, now, 0, &freed);
            } else {
                struct stat sb;
                if (lstat(p2, &sb) == 0 && now - (double)sb.st_ctim.tv_sec >= p.retention_failed_s) {
                    freed += rm_rf(p2);
                    n++;
                }
            }
        }
        closedir(dd);
    }
    uint64_t total = du(s->root);
    pthread_mutex_lock(&s->mu);
    s->bytes = total;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- status ---- */

static unsigned count_entries(const char *dir, const char *suffix, double *oldest, double now)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    unsigned n = 0;
    struct dirent *e;
    char p[CX_SPOOL_PATH_MAX];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
        if (suffix && (len < sl || strcmp(e->d_name + len - sl, suffix) != 0))
            continue;
        n++;
        if (oldest && pjoin(p, sizeof p, dir, e->d_name, NULL, NULL)) {
            struct stat sb;
            if (stat(p, &sb) == 0) {
                double age = now - (double)sb.st_ctim.tv_sec;
                if (age > *oldest)
                    *oldest = age;
            }
        }
    }
    closedir(d);
    return n;
}

static cx_spool_dest_status *dest_slot(cx_spool_status *st, const char *name, size_t *cap)
{
    for (size_t i = 0; i < st->ndest; i++)
        if (!strcmp(st->dest[i].name, name))
            return &st->dest[i];
    if (st->ndest == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        cx_spool_dest_status *nd = cx_realloc(st->dest, nc * sizeof *nd);
        if (!nd)
            return NULL;
        st->dest = nd;
        *cap = nc;
    }
    cx_spool_dest_status *d = &st->dest[st->ndest++];
    memset(d, 0, sizeof *d);
    size_t nl = strlen(name);
    if (nl >= sizeof d->name)
        nl = sizeof d->name - 1;
    memcpy(d->name, name, nl);
    d->name[nl] = 0;
    return d;
}

cx_status cx_spool_status_scan(const char *root, cx_spool_status *out, cx_error *err)
{
    struct stat sb;
    if (!root || stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cx_error_set(err, CX_ERR_IO, "status", "spool directory %s not found", root ? root : "(null)");
    cx_spool_status st;
    memset(&st, 0, sizeof st);
    size_t cap = 0;
    char d[CX_SPOOL_PATH_MAX], sub[CX_SPOOL_PATH_MAX];
    double now = wall_s();
    pjoin(d, sizeof d, root, "incoming", NULL, NULL);
    st.incoming = count_entries(d, NULL, &st.oldest_incoming_s, now);
    pjoin(d, sizeof d, root, "processing", NULL, NULL);
    st.processing = count_entries(d, NULL, NULL, now);
    pjoin(d, sizeof d, root, "done", NULL, NULL);
    st.done = count_entries(d, NULL, NULL, now);
    const char *kinds[] = {"outbox", "sent", "failed"};
    for (int k = 0; k < 3; k++) {
        if (!pjoin(d, sizeof d, root, kinds[k], NULL, NULL))
            continue;
        DIR *dd = opendir(d);
        if (!dd)
            continue;
        struct dirent *e;
        while ((e = readdir(dd))) {
            if (e->d_name[0] == '.')
                continue;
            const char *name = e->d_name;
            if (k == 2) {
                if (strncmp(name, "send-", 5) != 0) {
                    st.failed++;
                    continue;
                }
                name += 5;
            }
            cx_spool_dest_status *ds = dest_slot(&st, name, &cap);
            if (!ds) {
                closedir(dd);
                cx_spool_status_clear(&st);
                return cx_error_set(err, CX_ERR_NOMEM, "status", "out of memory");
            }
            if (!pjoin(sub, sizeof sub, d, e->d_name, NULL, NULL))
                continue;
            if (k == 0)
                ds->outbox = count_entries(sub, ".dcm", &ds->oldest_s, now);
            else if (k == 1)
                ds->sent = count_entries(sub, ".dcm", NULL, now);
            else
                ds->failed = count_entries(sub, ".dcm", NULL, now);
        }
        closedir(dd);
    }
    st.bytes = du(root);
    *out = st;
    return CX_OK;
}

void cx_spool_status_clear(cx_spool_status *st)
{
    if (!st)
        return;
    cx_free(st->dest);
    st->dest = NULL;
    st->ndest = 0;
}

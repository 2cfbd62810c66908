/* Unit tests of the durable spool (src/spool): the state machine, start-up recovery from every
 * crash point, the limits that must answer "Out of Resources" before acknowledging, a simulated
 * full disk, retention, and a real kill -9 of a process in the middle of a stream of ingests. */
#define _GNU_SOURCE
#include "cx_spool.h"
#include "cx_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_root[512];

static void rm_tree(const char *p)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0)
        fprintf(stderr, "rm -rf %s failed\n", p);
}

static const char *fresh_root(void)
{
    static int n;
    snprintf(g_root, sizeof g_root, "/tmp/cx-test-spool-%d-%d", (int)getpid(), ++n);
    rm_tree(g_root);
    return g_root;
}

static void write_bytes(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (size_t i = 0; i < n; i++)
        fputc((int)(i * 7 + 3) & 0xff, f);
    fclose(f);
}

static int exists(const char *fmt, const char *a, const char *b)
{
    char p[1024];
    snprintf(p, sizeof p, fmt, g_root, a, b);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static unsigned count_dir(const char *sub)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", g_root, sub);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static cx_spool *open_spool(cx_spool_params *pp, cx_spool_recovery *rec)
{
    cx_spool_params p = pp ? *pp : cx_spool_default_params();
    p.root = g_root;
    p.min_free_bytes = pp ? pp->min_free_bytes : 0;
    cx_spool *s = NULL;
    cx_error err = {0};
    cx_status st = cx_spool_open(&p, &s, rec, &err);
    if (st != CX_OK)
        fprintf(stderr, "open: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(st, CX_OK);
    return s;
}

static cx_spool_meta meta_for(const char *uid)
{
    cx_spool_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.calling_ae, sizeof m.calling_ae, "PACS1");
    snprintf(m.called_ae, sizeof m.called_ae, "CXRSEG");
    snprintf(m.peer, sizeof m.peer, "127.0.0.1");
    snprintf(m.sop_class_uid, sizeof m.sop_class_uid, "1.2.840.10008.5.1.4.1.1.1");
    snprintf(m.sop_instance_uid, sizeof m.sop_instance_uid, "%s", uid);
    return m;
}

/* Receives one fake object of n bytes; returns the status of commit (or begin). */
static cx_status ingest(cx_spool *s, const char *uid, size_t n, char *id_out, cx_error *err)
{
    char id[CX_SPOOL_ID_MAX], path[CX_SPOOL_PATH_MAX];
    cx_status st = cx_spool_ingest_begin(s, id, path, sizeof path, err);
    if (st != CX_OK)
        return st;
    write_bytes(path, n);
    cx_spool_meta m = meta_for(uid);
    st = cx_spool_ingest_commit(s, id, &m, err);
    if (id_out)
        strcpy(id_out, id);
    return st;
}

static void test_lifecycle(void)
{
    fresh_root();
    cx_spool *s = open_spool(NULL, NULL);
    char id[CX_SPOOL_ID_MAX];
    cx_error err = {0};
    CU_ASSERT_EQUAL(ingest(s, "1.2.3.4", 1000, id, &err), CX_OK);
    CU_ASSERT(exists("%s/incoming/%s/object.dcm%s", id, ""));
    CU_ASSERT(exists("%s/incoming/%s/job.meta%s", id, ""));
    CU_ASSERT_EQUAL(count_dir("tmp"), 0);

    cx_spool_job job;
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &job, &err), CX_OK);
    CU_ASSERT_STRING_EQUAL(job.id, id);
    CU_ASSERT_STRING_EQUAL(job.meta.calling_ae, "PACS1");
    CU_ASSERT_STRING_EQUAL(job.meta.sop_instance_uid, "1.2.3.4");
    CU_ASSERT_EQUAL(job.attempt, 1);
    CU_ASSERT(exists("%s/processing/%s/object.dcm%s", id, ""));
    CU_ASSERT_EQUAL(cx_spool_claim(s, 50, &job, &err), CX_ERR_TIMEOUT);

    /* Two results for two destinations. */
    char r1[CX_SPOOL_PATH_MAX + 20], r2[CX_SPOOL_PATH_MAX + 20];
    cx_spool_job j = job;
    CU_ASSERT_EQUAL(cx_spool_claim(s, 1, &job, &err), CX_ERR_TIMEOUT);
    snprintf(r1, sizeof r1, "%s/seg.dcm", j.out_dir);
    snprintf(r2, sizeof r2, "%s/sr.dcm", j.out_dir);
    write_bytes(r1, 300);
    write_bytes(r2, 200);
    cx_spool_result res[2] = {{r1, "1.2.3.4.100", 1}, {r2, "1.2.3.4.200", 2}};
    const char *dests[3] = {"pacs", "archive", "sronly"};
    unsigned masks[3] = {3, 3, 2};
    CU_ASSERT_EQUAL(cx_spool_job_done(s, &j, res, 2, dests, masks, 3, &err), CX_OK);
    CU_ASSERT_EQUAL(count_dir("outbox/sronly"), 1);
    CU_ASSERT(exists("%s/outbox/%s/%s", "sronly", "1.2.3.4.200.dcm"));
    CU_ASSERT_EQUAL(count_dir("processing"), 0);
    CU_ASSERT_EQUAL(count_dir("done"), 0); /* retention_done 0: removed */
    CU_ASSERT(exists("%s/outbox/%s/%s", "pacs", "1.2.3.4.100.dcm"));
    CU_ASSERT(exists("%s/outbox/%s/%s", "archive", "1.2.3.4.200.dcm"));

    cx_spool_item *items = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(cx_spool_outbox_list(s, "pacs", &items, &n, &err), CX_OK);
    CU_ASSERT_EQUAL(n, 2);
    cx_free(items);
    CU_ASSERT_FALSE(cx_spool_was_sent(s, "pacs", "1.2.3.4.100"));
    CU_ASSERT_EQUAL(cx_spool_outbox_sent(s, "pacs", "1.2.3.4.100", &err), CX_OK);
    CU_ASSERT(cx_spool_was_sent(s, "pacs", "1.2.3.4.100"));
    CU_ASSERT_FALSE(cx_spool_was_sent(s, "archive", "1.2.3.4.100"));
    CU_ASSERT_EQUAL(cx_spool_outbox_fail(s, "archive", "1.2.3.4.200", "C-STORE refused: 0xA700", &err), CX_OK);
    CU_ASSERT(exists("%s/failed/%s/%s", "send-archive", "1.2.3.4.200.reason"));

    cx_spool_status st;
    CU_ASSERT_EQUAL_FATAL(cx_spool_status_scan(g_root, &st, &err), CX_OK);
    CU_ASSERT_EQUAL(st.incoming, 0);
    CU_ASSERT_EQUAL(st.processing, 0);
    CU_ASSERT_EQUAL(st.failed, 0);
    int seen = 0;
    for (size_t i = 0; i < st.ndest; i++) {
        if (!strcmp(st.dest[i].name, "pacs")) {
            CU_ASSERT_EQUAL(st.dest[i].outbox, 1);
            CU_ASSERT_EQUAL(st.dest[i].sent, 1);
            seen++;
        }
        if (!strcmp(st.dest[i].name, "archive")) {
            CU_ASSERT_EQUAL(st.dest[i].outbox, 1);
            CU_ASSERT_EQUAL(st.dest[i].failed, 1);
            seen++;
        }
    }
    CU_ASSERT_EQUAL(seen, 2);
    cx_spool_status_clear(&st);
    cx_spool_free(s);
    rm_tree(g_root);
}

/* Reprocessing after a crash queues the same UIDs again: replaced in the outbox, never re-sent. */
static void test_redo_not_duplicated(void)
{
    fresh_root();
    cx_spool *s = open_spool(NULL, NULL);
    cx_error err = {0};
    char id[CX_SPOOL_ID_MAX];
    CU_ASSERT_EQUAL(ingest(s, "1.2.9", 10, id, &err), CX_OK);
    cx_spool_job j;
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &j, &err), CX_OK);
    char r1[CX_SPOOL_PATH_MAX + 20];
    snprintf(r1, sizeof r1, "%s/seg.dcm", j.out_dir);
    write_bytes(r1, 50);
    cx_spool_result res = {r1, "1.2.9.1", 1};
    const char *d = "pacs";
    /* First attempt: results queued and delivered, but "crash" before the job left processing:
     * simulate by re-linking the outbox by hand. */
    char outp[1024];
    snprintf(outp, sizeof outp, "%s/outbox/pacs", g_root);
    mkdir(outp, 0750);
    snprintf(outp, sizeof outp, "%s/outbox/pacs/1.2.9.1.dcm", g_root);
    CU_ASSERT_EQUAL(link(r1, outp), 0);
    CU_ASSERT_EQUAL(cx_spool_outbox_sent(s, "pacs", "1.2.9.1", &err), CX_OK);
    cx_spool_free(s);

    /* Restart: processing/ goes back to incoming with attempt 2. */
    cx_spool_recovery rec;
    s = open_spool(NULL, &rec);
    CU_ASSERT_EQUAL(rec.requeued, 1);
    CU_ASSERT_EQUAL(rec.queued, 1);
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &j, &err), CX_OK);
    CU_ASSERT_EQUAL(j.attempt, 1); /* interrupted, not crashed: no attempt counted */
    snprintf(r1, sizeof r1, "%s/seg.dcm", j.out_dir);
    write_bytes(r1, 50);
    res.path = r1;
    CU_ASSERT_EQUAL(cx_spool_job_done(s, &j, &res, 1, &d, NULL, 1, &err), CX_OK);
    /* Already delivered: not queued again. */
    CU_ASSERT_EQUAL(count_dir("outbox/pacs"), 0);
    CU_ASSERT_EQUAL(count_dir("sent/pacs"), 1);
    cx_spool_free(s);
    rm_tree(g_root);
}

/* Every crash point, laid out by hand as a kill -9 would leave it. */
static void test_recovery_states(void)
{
    fresh_root();
    cx_spool *s = open_spool(NULL, NULL);
    cx_error err = {0};
    char id[CX_SPOOL_ID_MAX], path[CX_SPOOL_PATH_MAX];
    /* 1. received but not committed (no acknowledgement was sent) */
    CU_ASSERT_EQUAL(cx_spool_ingest_begin(s, id, path, sizeof path, &err), CX_OK);
    write_bytes(path, 100);
    /* 2. committed and waiting */
    CU_ASSERT_EQUAL(ingest(s, "1.5.1", 100, NULL, &err), CX_OK);
    /* 3. committed and claimed by a worker that died mid-way, with partial output */
    CU_ASSERT_EQUAL(ingest(s, "1.5.2", 100, NULL, &err), CX_OK);
    cx_spool_job j;
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &j, &err), CX_OK);
    char part[CX_SPOOL_PATH_MAX + 20];
    snprintf(part, sizeof part, "%s/half.dcm", j.out_dir);
    write_bytes(part, 10);
    cx_spool_free(s);
    /* 4. outbox: a half-made link, an item that was delivered just before the crash, a waiting one */
    char p[1024];
    snprintf(p, sizeof p, "%s/outbox/pacs", g_root);
    mkdir(p, 0750);
    snprintf(p, sizeof p, "%s/sent/pacs", g_root);
    mkdir(p, 0750);
    snprintf(p, sizeof p, "%s/outbox/pacs/.tmp-x-1.7.dcm", g_root);
    write_bytes(p, 5);
    snprintf(p, sizeof p, "%s/outbox/pacs/1.7.1.dcm", g_root);
    write_bytes(p, 5);
    snprintf(p, sizeof p, "%s/sent/pacs/1.7.1.dcm", g_root);
    write_bytes(p, 5);
    snprintf(p, sizeof p, "%s/outbox/pacs/1.7.2.dcm", g_root);
    write_bytes(p, 5);
    /* 5. a job folder without its object (cannot happen through the API; must not crash) */
    snprintf(p, sizeof p, "%s/incoming/j0000000000001-00001-0001", g_root);
    mkdir(p, 0750);

    cx_spool_recovery rec;
    s = open_spool(NULL, &rec);
    CU_ASSERT_EQUAL(rec.tmp_removed, 1);
    CU_ASSERT_EQUAL(rec.requeued, 1);
    CU_ASSERT_EQUAL(rec.queued, 2);
    CU_ASSERT_EQUAL(rec.outbox, 1);
    CU_ASSERT_EQUAL(rec.outbox_dups, 1);
    CU_ASSERT_EQUAL(rec.broken, 1);
    CU_ASSERT_EQUAL(count_dir("tmp"), 0);
    CU_ASSERT_EQUAL(count_dir("outbox/pacs"), 1);
    CU_ASSERT(exists("%s/failed/%s/%s", "j0000000000001-00001-0001", "reason.txt"));
    /* FIFO order survives the restart: 1.5.1 was received (and claimed) first. A kill (no crash
     * marker) does not count as an attempt. */
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &j, &err), CX_OK);
    CU_ASSERT_STRING_EQUAL(j.meta.sop_instance_uid, "1.5.1");
    CU_ASSERT_EQUAL(j.attempt, 1);
    struct stat sb;
    snprintf(part, sizeof part, "%s/half.dcm", j.out_dir);
    CU_ASSERT_NOT_EQUAL(stat(part, &sb), 0); /* partial output discarded */
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &j, &err), CX_OK);
    CU_ASSERT_STRING_EQUAL(j.meta.sop_instance_uid, "1.5.2");
    CU_ASSERT_EQUAL(j.attempt, 1);
    cx_spool_free(s);

    /* An object that crashes the node (marker written by the crash handler) is given up after 3
     * crashes; the other job, only killed, is re-queued each time without blame. */
    s = open_spool(NULL, &rec);
    CU_ASSERT_EQUAL(rec.requeued, 2);
    for (int round = 1; round <= 3; round++) {
        cx_spool_job a, b;
        CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &a, &err), CX_OK);
        CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &b, &err), CX_OK);
        CU_ASSERT_EQUAL(b.attempt, 1);
        cx_spool_job *bad = !strcmp(a.meta.sop_instance_uid, "1.5.1") ? &a : &b;
        CU_ASSERT_EQUAL(bad->attempt, (unsigned)round);
        FILE *mf = fopen(bad->crash_marker, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mf);
        fclose(mf);
        cx_spool_free(s);
        s = open_spool(NULL, &rec);
        CU_ASSERT_EQUAL(rec.requeued, round < 3 ? 2u : 1u);
        CU_ASSERT_EQUAL(rec.broken, round < 3 ? 0u : 1u);
    }
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &j, &err), CX_OK);
    CU_ASSERT_STRING_EQUAL(j.meta.sop_instance_uid, "1.5.2");
    CU_ASSERT_EQUAL(cx_spool_claim(s, 10, &j, &err), CX_ERR_TIMEOUT);
    cx_spool_free(s);
    rm_tree(g_root);
}

static void test_limits(void)
{
    fresh_root();
    cx_spool_params p = cx_spool_default_params();
    p.max_queued = 2;
    cx_spool *s = open_spool(&p, NULL);
    cx_error err = {0};
    CU_ASSERT_EQUAL(ingest(s, "1.1", 10, NULL, &err), CX_OK);
    CU_ASSERT_EQUAL(ingest(s, "1.2", 10, NULL, &err), CX_OK);
    CU_ASSERT_EQUAL(ingest(s, "1.3", 10, NULL, &err), CX_ERR_FULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "queue full: 2 jobs"));
    CU_ASSERT_EQUAL(count_dir("tmp"), 0);
    cx_spool_free(s);

    /* Quota: checked before receiving and with the real size before acknowledging. */
    fresh_root();
    p = cx_spool_default_params();
    p.quota_bytes = 100000;
    s = open_spool(&p, NULL);
    CU_ASSERT_EQUAL(ingest(s, "2.1", 60000, NULL, &err), CX_OK);
    CU_ASSERT_EQUAL(ingest(s, "2.2", 60000, NULL, &err), CX_ERR_FULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "quota"));
    CU_ASSERT_EQUAL(count_dir("incoming"), 1);
    CU_ASSERT_EQUAL(count_dir("tmp"), 0);
    cx_spool_free(s);

    /* Minimum free disk larger than any disk. */
    fresh_root();
    p = cx_spool_default_params();
    p.min_free_bytes = (uint64_t)1 << 62;
    s = open_spool(&p, NULL);
    CU_ASSERT_EQUAL(ingest(s, "3.1", 10, NULL, &err), CX_ERR_FULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "disk nearly full"));
    /* Reload with sane limits takes effect at once. */
    p.min_free_bytes = 0;
    cx_spool_set_limits(s, &p);
    CU_ASSERT_EQUAL(ingest(s, "3.1", 10, NULL, &err), CX_OK);
    cx_spool_free(s);
    rm_tree(g_root);
}

/* ENOSPC while making the object durable: "full", nothing half-committed. */
static void test_disk_full(void)
{
    fresh_root();
    cx_spool *s = open_spool(NULL, NULL);
    cx_error err = {0};
    cx_spool_test_fail_writes(ENOSPC);
    CU_ASSERT_EQUAL(ingest(s, "4.1", 10, NULL, &err), CX_ERR_FULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "No space left"));
    cx_spool_test_fail_writes(EIO);
    CU_ASSERT_EQUAL(ingest(s, "4.2", 10, NULL, &err), CX_ERR_IO);
    cx_spool_test_fail_writes(0);
    CU_ASSERT_EQUAL(count_dir("incoming"), 0);
    CU_ASSERT_EQUAL(count_dir("tmp"), 0);
    CU_ASSERT_EQUAL(ingest(s, "4.3", 10, NULL, &err), CX_OK);
    CU_ASSERT_EQUAL(count_dir("incoming"), 1);
    cx_spool_free(s);
    rm_tree(g_root);
}

static void test_fail_and_cleanup(void)
{
    fresh_root();
    cx_spool_params p = cx_spool_default_params();
    p.retention_done_s = 3600;
    cx_spool *s = open_spool(&p, NULL);
    cx_error err = {0};
    CU_ASSERT_EQUAL(ingest(s, "5.1", 10, NULL, &err), CX_OK);
    CU_ASSERT_EQUAL(ingest(s, "5.2", 10, NULL, &err), CX_OK);
    cx_spool_job j;
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &j, &err), CX_OK);
    CU_ASSERT_EQUAL(cx_spool_job_fail(s, &j, "decode: JPEG 2000 stream truncated at byte 1234", &err), CX_OK);
    char p1[1024];
    snprintf(p1, sizeof p1, "%s/failed/%s/reason.txt", g_root, j.id);
    FILE *f = fopen(p1, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[256] = "";
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f));
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "truncated at byte 1234"));
    CU_ASSERT_EQUAL_FATAL(cx_spool_claim(s, 100, &j, &err), CX_OK);
    CU_ASSERT_EQUAL(cx_spool_job_done(s, &j, NULL, 0, NULL, NULL, 0, &err), CX_OK);
    CU_ASSERT_EQUAL(count_dir("done"), 1);
    CU_ASSERT_EQUAL(cx_spool_cleanup(s), 0); /* nothing old enough */
    p.retention_done_s = 0;
    p.retention_failed_s = 0;
    cx_spool_set_limits(s, &p);
    CU_ASSERT_EQUAL(cx_spool_cleanup(s), 2);
    CU_ASSERT_EQUAL(count_dir("done"), 0);
    CU_ASSERT_EQUAL(count_dir("failed"), 0);
    cx_spool_free(s);
    rm_tree(g_root);
}

static void test_bad_input(void)
{
    cx_error err = {0};
    cx_spool *s = NULL;
    cx_spool_params p = cx_spool_default_params();
    p.root = "relative/spool";
    CU_ASSERT_EQUAL(cx_spool_open(&p, &s, NULL, &err), CX_ERR_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "absolute"));
    CU_ASSERT_PTR_NULL(s);
    p.root = "/proc/cx-no-such-spool";
    CU_ASSERT_EQUAL(cx_spool_open(&p, &s, NULL, &err), CX_ERR_IO);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_FALSE(cx_spool_dest_name_ok("../etc"));
    CU_ASSERT_FALSE(cx_spool_dest_name_ok(""));
    CU_ASSERT_FALSE(cx_spool_dest_name_ok("a/b"));
    CU_ASSERT(cx_spool_dest_name_ok("PACS_main-1"));
    fresh_root();
    s = open_spool(NULL, NULL);
    char id[CX_SPOOL_ID_MAX], path[CX_SPOOL_PATH_MAX];
    CU_ASSERT_EQUAL(cx_spool_ingest_begin(s, id, path, sizeof path, &err), CX_OK);
    write_bytes(path, 5);
    cx_spool_meta m = meta_for("1.2.abc");
    CU_ASSERT_EQUAL(cx_spool_ingest_commit(s, id, &m, &err), CX_ERR_INVALID);
    CU_ASSERT_EQUAL(count_dir("tmp"), 0);
    CU_ASSERT_EQUAL(cx_spool_outbox_sent(s, "../x", "1.2", &err), CX_ERR_INVALID);
    cx_spool_item *items;
    size_t n;
    CU_ASSERT_EQUAL(cx_spool_outbox_list(s, "nothing-here", &items, &n, &err), CX_OK);
    CU_ASSERT_EQUAL(n, 0);
    cx_free(items);
    cx_spool_free(s);
    cx_spool_free(NULL);
    CU_ASSERT_EQUAL(cx_spool_status_scan("/nonexistent/spool", &(cx_spool_status){0}, &err), CX_ERR_IO);
    rm_tree(g_root);
}

/* Allocation failure at every allocation of open + recovery: an error, never a crash. */
static void test_alloc_failures(void)
{
    fresh_root();
    cx_spool *s = open_spool(NULL, NULL);
    cx_error err = {0};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(ingest(s, "6.1", 10, NULL, &err), CX_OK);
    cx_spool_free(s);
    int failures = 0;
    for (unsigned long k = 1; k < 200; k++) {
        cx_spool_params p = cx_spool_default_params();
        p.root = g_root;
        p.min_free_bytes = 0;
        s = NULL;
        cx_alloc_fail_at(k, 0);
        cx_status st = cx_spool_open(&p, &s, NULL, &err);
        unsigned long used = cx_alloc_count();
        cx_alloc_fail_at(0, 0);
        if (st != CX_OK) {
            CU_ASSERT_PTR_NULL(s);
            CU_ASSERT_EQUAL(st, CX_ERR_NOMEM);
            failures++;
        } else {
            cx_spool_free(s);
        }
        if (used < k)
            break;
    }
    CU_ASSERT(failures > 3);
    s = open_spool(NULL, NULL);
    cx_spool_job j;
    int claimed = 0;
    while (cx_spool_claim(s, 10, &j, &err) == CX_OK)
        claimed++;
    CU_ASSERT_EQUAL(claimed, 5);
    cx_spool_free(s);
    rm_tree(g_root);
}

/* A real kill -9: a child ingests as fast as it can and reports each acknowledged UID on a pipe;
 * the parent kills it at a random moment. After recovery every acknowledged object must be
 * queued, and nothing unacknowledged may be half there. */
static void test_kill9_during_ingest(void)
{
    srand((unsigned)time(NULL));
    unsigned total_acked = 0;
    for (int round = 0; round < 5; round++) {
        fresh_root();
        cx_spool_free(open_spool(NULL, NULL));
        int fds[2];
        CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            cx_spool_params p = cx_spool_default_params();
            p.root = g_root;
            p.min_free_bytes = 0;
            cx_spool *s = NULL;
            cx_error err;
            if (cx_spool_open(&p, &s, NULL, &err) != CX_OK)
                _exit(3);
            for (int i = 0;; i++) {
                char uid[64];
                snprintf(uid, sizeof uid, "1.9.%d", i);
                if (ingest(s, uid, 20000, NULL, &err) == CX_OK) {
                    char line[80];
                    int n = snprintf(line, sizeof line, "%s\n", uid);
                    if (write(fds[1], line, (size_t)n) != n)
                        _exit(4);
                }
            }
        }
        close(fds[1]);
        usleep(20000 + (useconds_t)(rand() % 80000));
        kill(pid, SIGKILL);
        int wst;
        waitpid(pid, &wst, 0);
        char buf[65536];
        size_t len = 0;
        ssize_t r;
        while ((r = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
            len += (size_t)r;
        buf[len] = 0;
        close(fds[0]);
        unsigned acked = 0;
        for (char *q = buf; (q = strchr(q, '\n')); q++)
            acked++;

        cx_spool_recovery rec;
        cx_spool *s = open_spool(NULL, &rec);
        /* Every acknowledged object is queued; at most one more (committed, ack not yet written). */
        CU_ASSERT(rec.queued >= acked);
        CU_ASSERT(rec.queued <= acked + 1);
        CU_ASSERT(rec.tmp_removed <= 1);
        CU_ASSERT_EQUAL(rec.broken, 0);
        CU_ASSERT_EQUAL(count_dir("tmp"), 0);
        cx_spool_job j;
        cx_error err;
        unsigned found = 0;
        char *line = buf;
        while (cx_spool_claim(s, 1, &j, &err) == CX_OK) {
            struct stat sb;
            CU_ASSERT_EQUAL(stat(j.object_path, &sb), 0);
            CU_ASSERT_EQUAL(sb.st_size, 20000);
            char *nl = strchr(line, '\n');
            if (nl) {
                *nl = 0;
                CU_ASSERT_STRING_EQUAL(j.meta.sop_instance_uid, line); /* same order */
                line = nl + 1;
                found++;
            }
        }
        CU_ASSERT_EQUAL(found, acked);
        total_acked += acked;
        cx_spool_free(s);
        rm_tree(g_root);
    }
    CU_ASSERT(total_acked > 0); /* the child really got that far */
    printf("(%u objects acknowledged before the kills) ", total_acked);
}

static const cx_test_case cases[] = {
    {"lifecycle", test_lifecycle},
    {"redo after crash is not re-sent", test_redo_not_duplicated},
    {"recovery from every crash point", test_recovery_states},
    {"queue/quota/free-disk limits", test_limits},
    {"disk full (ENOSPC)", test_disk_full},
    {"failed jobs and retention", test_fail_and_cleanup},
    {"bad input", test_bad_input},
    {"allocation failures", test_alloc_failures},
    {"kill -9 during ingest", test_kill9_during_ingest},
    {NULL, NULL},
};

CX_TEST_MAIN("spool", cases)

/* work: the plugin's background side. Design: one bounded FIFO of Orthanc instance ids under a
 * mutex + two condition variables. Callbacks only append (never wait, never call Orthanc); worker
 * threads (count from <orthanc><workers>) take an id, check it is a CR/DX image by its SOP class,
 * fetch the file, run the pipeline (the configuration's filters first), store the results through
 * Orthanc's REST API (the result whose existence marks "done" last) and forward them.
 * A scanner thread makes the plugin stateless across restarts: at OrthancStarted (and after a
 * queue overflow, once the queue has drained) it lists the CR/DX instances and queues those whose
 * marker result (deterministic SOP Instance UID) is not in Orthanc. It waits for room instead of
 * dropping, so a scan never overflows the queue and never triggers another scan: no loops.
 * GPL-3.0-or-later. */
#include "config.h" /* _GNU_SOURCE: fileno, mkdtemp */
#include "cxp.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOD "orthanc"

struct cxp_worker {
    cxp_plugin *p;
    int index;
    pthread_t thread;
    int started;
    cx_mrcnn *state;
    char dir[1100];
    /* filled by the accept hook while cx_segment_file runs */
    int filtered;
    char why[300];
    char sop_uid[CXD_STR];
    char study_uid[CXD_STR];
};

/* CR Image Storage, Digital X-Ray Image Storage for Presentation and for Processing. */
int cxp_is_source_class(const char *c)
{
    return c && (!strcmp(c, "1.2.840.10008.5.1.4.1.1.1") || !strcmp(c, "1.2.840.10008.5.1.4.1.1.1.1") ||
                 !strcmp(c, "1.2.840.10008.5.1.4.1.1.1.1.1"));
}

/* ---------------- REST helpers ---------------- */

static cx_status rest_result(cxp_plugin *p, OrthancPluginErrorCode code, const char *what, const char *uri,
                             OrthancPluginMemoryBuffer *buf, char **body, size_t *len, cx_error *err)
{
    if (code != OrthancPluginErrorCode_Success) {
        const char *d = OrthancPluginGetErrorDescription(p->ctx, code);
        return cx_error_set(err, CX_ERR_NETWORK, "orthanc", "%s %s: %s (Orthanc error %d)", what, uri,
                            d ? d : "error", (int)code);
    }
    if (!buf) /* DELETE answers nothing */
        return CX_OK;
    if (body) {
        char *b = cx_malloc((size_t)buf->size + 1);
        if (!b) {
            OrthancPluginFreeMemoryBuffer(p->ctx, buf);
            return cx_error_set(err, CX_ERR_NOMEM, "orthanc", "%s %s: %u bytes", what, uri, (unsigned)buf->size);
        }
        if (buf->size)
            memcpy(b, buf->data, buf->size);
        b[buf->size] = 0;
        *body = b;
        if (len)
            *len = buf->size;
    }
    OrthancPluginFreeMemoryBuffer(p->ctx, buf);
    return CX_OK;
}

cx_status cxp_rest_get(cxp_plugin *p, const char *uri, char **body, size_t *len, cx_error *err)
{
    OrthancPluginMemoryBuffer buf = {0};
    OrthancPluginErrorCode c = OrthancPluginRestApiGet(p->ctx, &buf, uri);
    return rest_result(p, c, "GET", uri, &buf, body, len, err);
}

cx_status cxp_rest_post(cxp_plugin *p, const char *uri, const void *data, size_t n, char **body, cx_error *err)
{
    if (n > 0xFFFFFFFFu)
        return cx_error_set(err, CX_ERR_INVALID, "orthanc", "POST %s: %zu bytes is too large", uri, n);
    OrthancPluginMemoryBuffer buf = {0};
    OrthancPluginErrorCode c = OrthancPluginRestApiPost(p->ctx, &buf, uri, data, (uint32_t)n);
    return rest_result(p, c, "POST", uri, &buf, body, NULL, err);
}

cx_status cxp_rest_delete(cxp_plugin *p, const char *uri, cx_error *err)
{
    OrthancPluginErrorCode c = OrthancPluginRestApiDelete(p->ctx, uri);
    return rest_result(p, c, "DELETE", uri, NULL, NULL, NULL, err);
}

/* ---------------- queue ---------------- */

int cxp_enqueue(cxp_plugin *p, const cxp_item *it, int front, int block)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->stopping) {
            pthread_mutex_unlock(&p->mu);
            return -2;
        }
        for (size_t i = 0; i < p->len; i++)
            if (!strcmp(p->queue[(p->head + i) % CXP_QUEUE_MAX].id, it->id)) {
                pthread_mutex_unlock(&p->mu);
                return 0;
            }
        if (p->len < CXP_QUEUE_MAX)
            break;
        if (!block) {
            p->overflowed = 1;
            p->stats.dropped++;
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
        pthread_cond_wait(&p->space_cv, &p->mu);
    }
    if (front) {
        p->head = (p->head + CXP_QUEUE_MAX - 1) % CXP_QUEUE_MAX;
        p->queue[p->head] = *it;
    } else {
        p->queue[(p->head + p->len) % CXP_QUEUE_MAX] = *it;
    }
    p->len++;
    p->stats.queued++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

void cxp_request_scan(cxp_plugin *p)
{
    pthread_mutex_lock(&p->mu);
    p->scan_requested = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---------------- one instance ---------------- */

static void bump(cxp_plugin *p, unsigned long *counter)
{
    pthread_mutex_lock(&p->mu);
    (*counter)++;
    pthread_mutex_unlock(&p->mu);
}

static int accept_hook(const cxd_info *info, void *user, char *why, size_t why_size)
{
    cxp_worker *w = user;
    snprintf(w->sop_uid, sizeof w->sop_uid, "%s", info->sop_instance_uid);
    snprintf(w->study_uid, sizeof w->study_uid, "%s", info->study_instance_uid);
    cx_config_object o = {info->modality, info->body_part_examined, info->view_position, info->series_description,
                          info->rows, info->columns};
    if (cx_config_filter(&w->p->cfg->filters, &o, why, why_size) == CX_ACTION_PROCESS)
        return 1;
    w->filtered = 1;
    snprintf(w->why, sizeof w->why, "%s", why);
    return 0;
}

static cx_status write_file(const char *path, const void *data, size_t n, cx_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return cx_error_set(err, CX_ERR_IO, "orthanc", "cannot create %s: %s", path, strerror(errno));
    int bad = n && fwrite(data, 1, n, f) != n;
    if (fclose(f) || bad)
        return cx_error_set(err, CX_ERR_IO, "orthanc", "cannot write %s (%zu bytes)", path, n);
    return CX_OK;
}

static cx_status read_file(const char *path, char **data, size_t *n, cx_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cx_error_set(err, CX_ERR_IO, "orthanc", "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || st.st_size <= 0) {
        fclose(f);
        return cx_error_set(err, CX_ERR_IO, "orthanc", "%s is empty or unreadable", path);
    }
    char *b = cx_malloc((size_t)st.st_size);
    if (!b) {
        fclose(f);
        return cx_error_set(err, CX_ERR_NOMEM, "orthanc", "%s: %lld bytes", path, (long long)st.st_size);
    }
    size_t got = fread(b, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        cx_free(b);
        return cx_error_set(err, CX_ERR_IO, "orthanc", "short read of %s", path);
    }
    *data = b;
    *n = got;
    return CX_OK;
}

/* Empties the worker's output folder (results of the previous instance). */
static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* POSTs one result file; when Orthanc keeps an older copy with the same SOP Instance UID
 * ("AlreadyStored": OverwriteInstances is false), deletes that copy and stores again, so a re-run
 * always replaces. id receives the Orthanc id of the stored instance. */
static cx_status store_result(cxp_plugin *p, const char *path, char id[CXP_ID_MAX], cx_error *err)
{
    char *data = NULL;
    size_t n = 0;
    cx_status st = read_file(path, &data, &n, err);
    if (st != CX_OK)
        return st;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *ans = NULL;
        if ((st = cxp_rest_post(p, "/instances", data, n, &ans, err)) != CX_OK)
            break;
        int already = 0;
        st = cxp_stored_answer(ans, id, &already, err);
        cx_free(ans);
        if (st != CX_OK || !already || attempt > 0)
            break;
        cx_log(CX_LOG_INFO, MOD, id, "an older copy of this result was kept by Orthanc (OverwriteInstances is "
               "false): deleting it and storing the new one");
        char uri[128];
        snprintf(uri, sizeof uri, "/instances/%s", id);
        if ((st = cxp_rest_delete(p, uri, err)) != CX_OK)
            break;
    }
    cx_free(data);
    return st;
}

static void forward(cxp_plugin *p, const char *job, const char kind[], const cx_config_strings *names,
                    const char *body)
{
    for (size_t i = 0; i < names->count; i++) {
        char uri[400];
        snprintf(uri, sizeof uri, "/%s/%s/store", kind, names->items[i]);
        cx_error e = {0};
        if (cxp_rest_post(p, uri, body, strlen(body), NULL, &e) != CX_OK) {
            bump(p, &p->stats.forward_failed);
            cx_log(CX_LOG_ERROR, MOD, job, "forwarding the results to %s %s failed: %s", kind, names->items[i], e.msg);
        } else {
            cx_log(CX_LOG_INFO, MOD, job, "results forwarded to %s %s", kind, names->items[i]);
        }
    }
}

/* 1 when the instance is a source image (CR/DX); our own results never reach the queue (origin
 * Plugin), this catches everything else (SEG/SR from elsewhere, CT, ...) before the file is fetched. */
static int is_source(cxp_plugin *p, const char *job, const cxp_item *it)
{
    char uri[256], *body = NULL;
    size_t n = 0;
    cx_error e = {0};
    snprintf(uri, sizeof uri, "/instances/%s/metadata/SopClassUid", it->id);
    if (cxp_rest_get(p, uri, &body, &n, &e) != CX_OK) {
        bump(p, &p->stats.failed);
        cx_log(CX_LOG_ERROR, MOD, job, "failed: SOP class unknown (deleted meanwhile?): %s", e.msg);
        return 0;
    }
    int src = cxp_is_source_class(body);
    if (!src) {
        bump(p, &p->stats.ignored);
        cx_log(CX_LOG_DEBUG, MOD, job, "ignored: SOP class %s is not a CR/DX image", body);
    }
    cx_free(body);
    return src;
}

/* The instance's file from Orthanc into src (refused above listener/max-object-mb). */
static cx_status fetch_source(cxp_plugin *p, const cxp_item *it, const char *src, cx_error *e)
{
    char uri[256], *body = NULL;
    size_t n = 0;
    snprintf(uri, sizeof uri, "/instances/%s/file", it->id);
    cx_status st = cxp_rest_get(p, uri, &body, &n, e);
    long long max_bytes = (long long)p->cfg->listener.max_object_mb << 20;
    if (st == CX_OK && max_bytes > 0 && (long long)n > max_bytes)
        st = cx_error_set(e, CX_ERR_UNSUPPORTED, MOD, "%zu bytes, more than listener/max-object-mb %lld MB: not "
                          "processed", n, max_bytes >> 20);
    else if (st == CX_OK)
        st = write_file(src, body, n, e);
    cx_free(body);
    return st;
}

/* The results into Orthanc, the marker output (sr when it is on) last: once it is in Orthanc, all
 * results are. ids/kinds receive the Orthanc IDs and the output names. */
static cx_status store_results(cxp_plugin *p, const cx_segment_result *r, char ids[4][CXP_ID_MAX], size_t *n_ids,
                               char *kinds, size_t kinds_size, const char **what, cx_error *e)
{
    static const struct {
        int bit;
        const char *name;
    } order[] = {{CXD_OUT_SEG, "seg"}, {CXD_OUT_GSPS, "gsps"}, {CXD_OUT_SC, "sc"}, {CXD_OUT_SR, "sr"}};
    *n_ids = 0;
    kinds[0] = 0;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        if (!(r->written.written & order[k].bit))
            continue;
        const char *path = order[k].bit == CXD_OUT_SEG    ? r->written.seg_path
                           : order[k].bit == CXD_OUT_SR   ? r->written.sr_path
                           : order[k].bit == CXD_OUT_GSPS ? r->written.gsps_path
                                                          : r->written.sc_path;
        *what = order[k].name;
        cx_status st = store_result(p, path, ids[*n_ids], e);
        if (st != CX_OK)
            return st;
        (*n_ids)++;
        snprintf(kinds + strlen(kinds), kinds_size - strlen(kinds), "%s%s", kinds[0] ? "," : "", order[k].name);
    }
    return CX_OK;
}

static void process_item(cxp_worker *w, const cxp_item *it)
{
    cxp_plugin *p = w->p;
    const char *job = it->id;
    double t0 = cx_now_ms();
    cx_error e = {0};
    if (!is_source(p, job, it))
        return;
    cx_log(CX_LOG_INFO, MOD, job, "processing instance %s (%s%s%s, worker %d)", it->id, it->origin,
           it->remote_aet[0] ? " from " : "", it->remote_aet, w->index);

    char src[1200], out[1200];
    snprintf(src, sizeof src, "%s/source.dcm", w->dir);
    snprintf(out, sizeof out, "%s/out", w->dir);
    cx_status st = fetch_source(p, it, src, &e);
    if (st != CX_OK) {
        bump(p, &p->stats.failed);
        cx_log(CX_LOG_ERROR, MOD, job, "failed instance %s: %s", it->id, e.msg);
        return;
    }
    double t_fetched = cx_now_ms();
    clear_dir(out);
    cx_segment_params sp = p->params;
    sp.accept = accept_hook;
    sp.accept_user = w;
    w->filtered = 0;
    w->sop_uid[0] = w->study_uid[0] = w->why[0] = 0;
    cx_segment_result r;
    st = cx_segment_file(p->model, w->state, src, out, &sp, &r, &e);
    unlink(src);
    const char *uid = w->sop_uid[0] ? w->sop_uid : it->id;
    if (st != CX_OK) {
        if (w->filtered) {
            bump(p, &p->stats.skipped);
            cx_log(CX_LOG_INFO, MOD, job, "skipped %s (not processed): %s", uid, w->why);
        } else {
            bump(p, &p->stats.failed);
            cx_log(CX_LOG_ERROR, MOD, job, "failed %s after %.0f ms: %s", uid, cx_now_ms() - t0, e.msg);
        }
        clear_dir(out);
        return;
    }

    double t_segmented = cx_now_ms();
    char ids[4][CXP_ID_MAX];
    char kinds[64];
    size_t n_ids = 0;
    const char *what = "";
    st = store_results(p, &r, ids, &n_ids, kinds, sizeof kinds, &what, &e);
    clear_dir(out);
    if (st != CX_OK) {
        bump(p, &p->stats.failed);
        cx_log(CX_LOG_ERROR, MOD, job, "failed %s: storing %s into Orthanc: %s", uid, what, e.msg);
        return;
    }
    double ms = cx_now_ms() - t0;
    pthread_mutex_lock(&p->mu);
    p->stats.processed++;
    p->stats.last_ms = ms;
    pthread_mutex_unlock(&p->mu);
    char share[2][16];
    for (int s = 0; s < 2; s++) {
        if (r.lung_share_pct[s] < 0)
            snprintf(share[s], sizeof share[s], "-");
        else
            snprintf(share[s], sizeof share[s], "%.1f%%", r.lung_share_pct[s]);
    }
    char verdict[300];
    cx_segment_verdict_text(p->model, &r.rule, r.image_score, r.finding_present, 0, verdict, sizeof verdict);
    cx_log(CX_LOG_INFO, MOD, job,
           "processed %s in %.0f ms: %s; %d findings (max score %.2f), lungs %d, share right %s left %s; "
           "%zu results (%s) stored in study %s (fetch %.0f, render %.0f, engine %.0f, write %.0f, store %.0f ms)",
           uid, ms, verdict, r.n_findings, r.max_finding_score, r.n_lungs, share[0], share[1], n_ids, kinds,
           w->study_uid, t_fetched - t0, r.ms_render, r.ms_infer, r.ms_write, cx_now_ms() - t_segmented);

    const cx_config_orthanc *oc = &p->cfg->orthanc;
    if (n_ids && (oc->forward_to_modalities.count || oc->forward_to_peers.count)) {
        char *body = cxp_id_list((const char (*)[CXP_ID_MAX])ids, n_ids);
        if (body) {
            forward(p, job, "modalities", &oc->forward_to_modalities, body);
            forward(p, job, "peers", &oc->forward_to_peers, body);
        } else {
            bump(p, &p->stats.forward_failed);
            cx_log(CX_LOG_ERROR, MOD, job, "results not forwarded: out of memory");
        }
        cx_free(body);
    }
}

static void *worker_main(void *arg)
{
    cxp_worker *w = arg;
    cxp_plugin *p = w->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && p->len == 0) {
            /* Drained after an overflow: find what was dropped (once; the scan cannot overflow). */
            if (p->overflowed && p->busy == 0) {
                p->overflowed = 0;
                p->scan_requested = 1;
                pthread_cond_broadcast(&p->work_cv);
            }
            pthread_cond_wait(&p->work_cv, &p->mu);
        }
        if (p->stopping)
            break;
        cxp_item it = p->queue[p->head];
        p->head = (p->head + 1) % CXP_QUEUE_MAX;
        p->len--;
        p->busy++;
        pthread_cond_signal(&p->space_cv);
        pthread_mutex_unlock(&p->mu);
        process_item(w, &it);
        pthread_mutex_lock(&p->mu);
        p->busy--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---------------- start-up scan ---------------- */

/* Is the marker result of this source in Orthanc? 1 yes, 0 no, -1 could not tell. */
static int has_results(cxp_plugin *p, const char *sop_uid, cx_error *err)
{
    char uid[65];
    cxd_error de = {0};
    const char *root = p->params.write.uid_root[0] ? p->params.write.uid_root : "2.25";
    if (cxd_derive_uid(root, sop_uid, p->marker_kind, cx_model_sha256(p->model), uid, &de) != CXD_OK) {
        cx_error_set(err, CX_ERR_INVALID, "scan", "%s", de.msg);
        return -1;
    }
    char *ans = NULL;
    if (cxp_rest_post(p, "/tools/lookup", uid, strlen(uid), &ans, err) != CX_OK)
        return -1;
    int found = cxp_lookup_answer(ans, err);
    cx_free(ans);
    return found;
}

static void scan(cxp_plugin *p)
{
    const size_t page = 200;
    size_t since = 0, seen = 0, queued = 0;
    double t0 = cx_now_ms();
    cx_log(CX_LOG_INFO, MOD, "scan", "looking for CR/DX instances without results");
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int stop = p->stopping;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            return;
        char *q = cxp_find_query(since, page), *ans = NULL;
        cx_error e = {0};
        json_t *list = NULL;
        cx_status st = q ? cxp_rest_post(p, "/tools/find", q, strlen(q), &ans, &e)
                         : cx_error_set(&e, CX_ERR_NOMEM, MOD, "/tools/find: out of memory");
        cx_free(q);
        if (st == CX_OK)
            st = cxp_find_answer(ans, &list, &e);
        cx_free(ans);
        if (st != CX_OK) {
            cx_log(CX_LOG_ERROR, MOD, "scan", "stopped after %zu instances: %s", seen, e.msg);
            return;
        }
        size_t i;
        json_t *inst;
        json_array_foreach(list, i, inst) {
            const char *id, *uid;
            if (!cxp_find_item(inst, &id, &uid))
                continue;
            seen++;
            int has = has_results(p, uid, &e);
            if (has < 0)
                cx_log(CX_LOG_WARN, MOD, id, "scan: cannot tell whether %s has results: %s", uid, e.msg);
            if (has != 0)
                continue;
            cxp_item it;
            memset(&it, 0, sizeof it);
            snprintf(it.id, sizeof it.id, "%s", id);
            snprintf(it.origin, sizeof it.origin, "scan");
            if (cxp_enqueue(p, &it, 0, 1) == 1) {
                queued++;
                bump(p, &p->stats.scan_queued);
            }
        }
        size_t got = json_array_size(list);
        json_decref(list);
        if (got < page)
            break;
        since += page;
    }
    cx_log(CX_LOG_INFO, MOD, "scan", "done in %.0f ms: %zu CR/DX instances, %zu without results queued",
           cx_now_ms() - t0, seen, queued);
}

static void *scanner_main(void *arg)
{
    cxp_plugin *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && !p->scan_requested)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stopping)
            break;
        p->scan_requested = 0;
        p->scanning = 1;
        p->stats.scans++;
        pthread_mutex_unlock(&p->mu);
        scan(p);
        pthread_mutex_lock(&p->mu);
        p->scanning = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---------------- start / stop ---------------- */

cx_status cxp_workers_start(cxp_plugin *p, cx_error *err)
{
    int n = p->cfg->orthanc.workers > 0 ? p->cfg->orthanc.workers : 1;
    int threads = p->cfg->workers.threads_per_worker > 0 ? p->cfg->workers.threads_per_worker : 1;
    p->workers = cx_calloc((size_t)n, sizeof *p->workers);
    if (!p->workers)
        return cx_error_set(err, CX_ERR_NOMEM, "orthanc", "%d workers", n);
    p->n_workers = n;
    for (int i = 0; i < n; i++) {
        cxp_worker *w = &p->workers[i];
        w->p = p;
        w->index = i;
        snprintf(w->dir, sizeof w->dir, "%s/w%d", p->tmpdir, i);
        char out[1200];
        snprintf(out, sizeof out, "%s/out", w->dir);
        if ((mkdir(w->dir, 0700) && errno != EEXIST) || (mkdir(out, 0700) && errno != EEXIST))
            return cx_error_set(err, CX_ERR_IO, "orthanc", "cannot create %s: %s", out, strerror(errno));
        cx_status st = cx_mrcnn_new(p->model, threads, &w->state, err);
        if (st != CX_OK)
            return st;
    }
    for (int i = 0; i < n; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]))
            return cx_error_set(err, CX_ERR_INTERNAL, "orthanc", "cannot start worker thread %d", i);
        p->workers[i].started = 1;
    }
    if (pthread_create(&p->scanner, NULL, scanner_main, p))
        return cx_error_set(err, CX_ERR_INTERNAL, "orthanc", "cannot start the scanner thread");
    p->scanner_started = 1;
    return CX_OK;
}

void cxp_workers_stop(cxp_plugin *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_cond_broadcast(&p->space_cv);
    size_t left = p->len;
    pthread_mutex_unlock(&p->mu);
    if (left)
        cx_log(CX_LOG_INFO, MOD, NULL, "stopping with %zu instances queued: the next start-up scan finds them", left);
    if (p->scanner_started)
        pthread_join(p->scanner, NULL);
    p->scanner_started = 0;
    for (int i = 0; i < p->n_workers; i++) {
        cxp_worker *w = &p->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        w->started = 0;
        cx_mrcnn_free(w->state);
        char out[1200];
        snprintf(out, sizeof out, "%s/out", w->dir);
        clear_dir(out);
        rmdir(out);
        clear_dir(w->dir);
        rmdir(w->dir);
    }
    cx_free(p->workers);
    p->workers = NULL;
    p->n_workers = 0;
}

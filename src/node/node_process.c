/* node_process.c: THE processing step of a worker: one spooled source file in, result files out.
 * It is one call into the pipeline (src/pipeline/segment.h: cx_segment_file: render -> engine ->
 * findings -> SEG/SR/GSPS/SC writers) with parameters taken from the current configuration; the
 * written files and their SOP Instance UIDs become the job's results.
 *
 * The relay test build (tests/cxrseg-node-relay: these sources compiled with CX_NODE_RELAY, never
 * the installed node) replaces the pipeline by a decode of the source plus a transport-test copy (new derived UIDs, Series Description "CXRSEG TRANSPORT TEST (not a
 * result)") as the one "result", so the delivery guarantees (retry, exactly once, kill -9, load)
 * are tested quickly and without a model. It is never a finding. */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cx_pipe.h"
#include "segment.h"

#ifdef CX_NODE_RELAY
/* tests/node/relay_copy.cc */
cxd_status cxd_transport_test_copy(const char *src, const char *dst, char *out_uid, size_t out_len, cxd_error *err);

static cx_status relay(const cx_spool_job *job, cx_node_outcome *o, cx_error *err)
{
    cxd_error de = {0};
    cxd_file *f = NULL;
    cxd_status ds = cxd_file_open(job->object_path, &f, &de);
    if (ds != CXD_OK)
        return cx_pipe_error_from_cxd(&de, ds, err);
    cxd_info info;
    memset(&info, 0, sizeof info);
    cxd_pixels px;
    memset(&px, 0, sizeof px);
    ds = cxd_file_info(f, &info, &de);
    if (ds == CXD_OK)
        ds = cxd_file_decode(f, &px, &de);
    cxd_pixels_clear(&px);
    cxd_info_clear(&info);
    cxd_file_free(f);
    if (ds != CXD_OK)
        return cx_pipe_error_from_cxd(&de, ds, err);
    cx_node_result *r = &o->results[0];
    if (snprintf(r->path, sizeof r->path, "%s/transport-test.dcm", job->out_dir) >= (int)sizeof r->path)
        return cx_error_set(err, CX_ERR_INVALID, "process", "output path too long");
    ds = cxd_transport_test_copy(job->object_path, r->path, r->sop_instance_uid, sizeof r->sop_instance_uid, &de);
    if (ds != CXD_OK)
        return cx_pipe_error_from_cxd(&de, ds, err);
    r->kind = CX_OUTPUT_SEG;
    o->n = 1;
    snprintf(o->summary, sizeof o->summary, "transport test copy %s (not a result)", r->sop_instance_uid);
    return CX_OK;
}
#endif

static void add_result(cx_node_outcome *o, const char *path, const char *uid, unsigned kind)
{
    if (o->n >= CX_NODE_MAX_RESULTS || !path[0] || !uid[0])
        return;
    cx_node_result *r = &o->results[o->n++];
    snprintf(r->path, sizeof r->path, "%s", path);
    snprintf(r->sop_instance_uid, sizeof r->sop_instance_uid, "%.64s", uid);
    r->kind = kind;
}

cx_status cx_node_process(cx_node *node, cx_mrcnn *engine, const cx_spool_job *job, const atomic_int *cancel,
                          cx_node_outcome *out, cx_error *err)
{
    cx_node_outcome o;
    memset(&o, 0, sizeof o);
#ifdef CX_NODE_RELAY
    if (node->relay_test_mode) {
        cx_status st = relay(job, &o, err);
        if (st == CX_OK)
            *out = o;
        return st;
    }
#endif
    if (!node->model || !engine)
        return cx_error_set(err, CX_ERR_MODEL, "process", "no model loaded");

    /* The job runs with a snapshot of the configuration: a SIGHUP reload meanwhile swaps the
     * node's current one without waiting for this job (the threshold names point into it). */
    cx_node_conf *conf = cx_node_conf_get(node);
    cx_segment_params p;
    cx_status st = cx_segment_params_from_config(conf->cfg, "cxrseg-node", &p, err);
    p.cancel = cancel;
    cx_segment_result r;
    memset(&r, 0, sizeof r);
    if (st == CX_OK)
        st = cx_segment_file(node->model, engine, job->object_path, job->out_dir, &p, &r, err);
    cx_segment_params_release(&p);
    cx_node_conf_put(conf);
    if (st != CX_OK)
        return st;
    if (cancel && atomic_load(cancel))
        return cx_error_set(err, CX_ERR_TIMEOUT, "process", "cancelled");

    const cxd_write_result *w = &r.written;
    if (w->written & CXD_OUT_SEG)
        add_result(&o, w->seg_path, w->seg_sop_uid, CX_OUTPUT_SEG);
    if (w->written & CXD_OUT_SR)
        add_result(&o, w->sr_path, w->sr_sop_uid, CX_OUTPUT_SR);
    if (w->written & CXD_OUT_GSPS)
        add_result(&o, w->gsps_path, w->gsps_sop_uid, CX_OUTPUT_GSPS);
    if (w->written & CXD_OUT_SC)
        add_result(&o, w->sc_path, w->sc_sop_uid, CX_OUTPUT_SC);

    char shares[96] = "";
    if (r.lung_share_pct[0] >= 0 || r.lung_share_pct[1] >= 0)
        snprintf(shares, sizeof shares, ", lung affected right %.1f%% left %.1f%%", r.lung_share_pct[0],
                 r.lung_share_pct[1]);
    char area[64] = "";
    if (r.finding_area_mm2 >= 0 && r.n_findings)
        snprintf(area, sizeof area, ", %.0f mm2", r.finding_area_mm2);
    char verdict[300];
    cx_segment_verdict_text(node->model, &r.rule, r.image_score, r.finding_present, 0, verdict, sizeof verdict);
    snprintf(o.summary, sizeof o.summary,
             "%d findings (max score %.2f)%s%s, %d lungs, %s; render %.0f ms, engine %.0f ms, write %.0f ms",
             r.n_findings, r.max_finding_score, area, shares, r.n_lungs, verdict, r.ms_render, r.ms_infer,
             r.ms_write);
    /* The stage times for /metrics go with the outcome; the full split is in the log at debug. */
    o.stage_ms[0] = r.ms_render;
    o.stage_ms[1] = r.ms_infer;
    o.stage_ms[2] = r.ms_write;
    cx_log(CX_LOG_DEBUG, "worker", job->id, "stages of %s: open and parse %.1f ms, decode %.1f ms, window and resize "
           "%.1f ms (%dx%d), engine %.1f ms, SEG/SR encode %.1f ms, overlay %.1f ms", job->meta.sop_instance_uid,
           r.ms_render - r.ms_decode - r.ms_window, r.ms_decode, r.ms_window, r.width, r.height, r.ms_infer,
           r.ms_write, r.ms_overlay);
    *out = o;
    return CX_OK;
}

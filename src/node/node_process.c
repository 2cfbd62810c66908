/* node_process.c: THE processing step of a worker: one spooled source file in, result files out.
 *
 * INTEGRATION POINT. The pipeline's segment function (src/pipeline/segment*.c: source DICOM ->
 * render -> engine -> SEG/SR/GSPS/SC writers) replaces the body of cx_node_process below. Until it
 * is linked, the step only decodes the source (so corrupt objects fail with their reason, and the
 * log reports what was received) and produces NO results: it never pretends to have findings.
 *
 * CXRSEG_NODE_TEST_RELAY=1 (tests only) adds a transport-test copy of the source (new derived
 * UIDs, Series Description "CXRSEG TRANSPORT TEST (not a result)") as the one "result", so the
 * delivery guarantees (retry, exactly once, kill -9) can be tested without a model. */
#include "node.h"

#include <stdio.h>
#include <string.h>

static cx_status from_cxd(const cxd_error *de, cxd_status s, cx_error *err)
{
    cx_status code = s == CXD_ERR_NOMEM         ? CX_ERR_NOMEM
                     : s == CXD_ERR_IO          ? CX_ERR_IO
                     : s == CXD_ERR_UNSUPPORTED ? CX_ERR_UNSUPPORTED
                     : s == CXD_ERR_INVALID     ? CX_ERR_INVALID
                     : s == CXD_ERR_INTERNAL    ? CX_ERR_INTERNAL
                                                : CX_ERR_FORMAT;
    return cx_error_set(err, code, "source", "%s", de->msg);
}

cx_status cx_node_process(cx_node *node, const cx_spool_job *job, const volatile int *cancel, cx_node_outcome *out,
                          cx_error *err)
{
    cx_node_outcome o;
    memset(&o, 0, sizeof o);
    cxd_error de = {0};
    cxd_file *f = NULL;
    cxd_status ds = cxd_file_open(job->object_path, &f, &de);
    if (ds != CXD_OK)
        return from_cxd(&de, ds, err);
    cxd_info info;
    memset(&info, 0, sizeof info);
    ds = cxd_file_info(f, &info, &de);
    if (ds != CXD_OK) {
        cxd_file_free(f);
        return from_cxd(&de, ds, err);
    }
    cxd_pixels px;
    memset(&px, 0, sizeof px);
    ds = cxd_file_decode(f, &px, &de);
    if (ds != CXD_OK) {
        cxd_info_clear(&info);
        cxd_file_free(f);
        return from_cxd(&de, ds, err);
    }
    snprintf(o.summary, sizeof o.summary, "decoded %dx%d %s (%s); segmentation step not linked in this build: "
             "no results", px.columns, px.rows, info.photometric, info.transfer_syntax_name);
    cxd_pixels_clear(&px);
    cxd_info_clear(&info);
    cxd_file_free(f);
    if (cancel && *cancel)
        return cx_error_set(err, CX_ERR_TIMEOUT, "process", "cancelled");

    if (node->relay_test_mode) {
        cx_node_result *r = &o.results[0];
        if (snprintf(r->path, sizeof r->path, "%s/transport-test.dcm", job->out_dir) >= (int)sizeof r->path)
            return cx_error_set(err, CX_ERR_INVALID, "process", "output path too long");
        ds = cxd_transport_test_copy(job->object_path, r->path, r->sop_instance_uid, sizeof r->sop_instance_uid, &de);
        if (ds != CXD_OK)
            return from_cxd(&de, ds, err);
        r->kind = CX_OUTPUT_SEG;
        o.n = 1;
        snprintf(o.summary, sizeof o.summary, "transport test copy %s (not a result)", r->sop_instance_uid);
    }
    *out = o;
    return CX_OK;
}

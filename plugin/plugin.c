/* plugin: libOrthancCxrSeg, the cxrseg pipeline inside Orthanc. The four exported entry points,
 * the configuration (Orthanc's "CxrSeg" section names the shared cxrseg XML file), the callbacks
 * (stored instance: enqueue only; OrthancStarted: request the start-up scan) and the REST routes
 * /cxrseg/status and /cxrseg/instances/{id}/process. Logs go to Orthanc's log.
 * Copyright the cxrseg authors. GPL-3.0-or-later. */
#include "config.h"
#include "cxp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "orthanc"

static OrthancPluginContext *g_ctx;
static cxp_plugin *g_plugin;     /* NULL when the plugin is disabled */
static char g_disabled_why[512]; /* shown by /cxrseg/status when disabled */

/* ---------------- logging ---------------- */

static void log_sink(cx_log_level level, const char *module, const char *job, const char *msg, void *user)
{
    (void)user;
    if (!g_ctx)
        return;
    char line[1400];
    snprintf(line, sizeof line, "cxrseg [%s]%s%s %s", module ? module : "-", job ? " job=" : "", job ? job : "", msg);
    if (level == CX_LOG_ERROR)
        OrthancPluginLogError(g_ctx, line);
    else if (level == CX_LOG_WARN)
        OrthancPluginLogWarning(g_ctx, line);
    else
        OrthancPluginLogInfo(g_ctx, line); /* Orthanc shows these with --verbose */
}

/* ---------------- callbacks ---------------- */

static const char *origin_name(OrthancPluginInstanceOrigin o)
{
    switch (o) {
    case OrthancPluginInstanceOrigin_DicomProtocol:
        return "DICOM";
    case OrthancPluginInstanceOrigin_RestApi:
        return "REST";
    case OrthancPluginInstanceOrigin_Plugin:
        return "Plugin";
    case OrthancPluginInstanceOrigin_Lua:
        return "Lua";
    case OrthancPluginInstanceOrigin_WebDav:
        return "WebDAV";
    default:
        return "unknown";
    }
}

/* Runs on whatever thread stored the instance: copy the id and the origin, nothing else. */
static OrthancPluginErrorCode on_stored(const OrthancPluginDicomInstance *instance, const char *instance_id)
{
    cxp_plugin *p = g_plugin;
    if (!p || !instance_id || strlen(instance_id) >= CXP_ID_MAX)
        return OrthancPluginErrorCode_Success;
    OrthancPluginInstanceOrigin o = OrthancPluginGetInstanceOrigin(g_ctx, instance);
    /* Everything a plugin stores (our results among it) is never a source: no loop. */
    if (o == OrthancPluginInstanceOrigin_Plugin)
        return OrthancPluginErrorCode_Success;
    cxp_item it;
    memset(&it, 0, sizeof it);
    snprintf(it.id, sizeof it.id, "%s", instance_id);
    snprintf(it.origin, sizeof it.origin, "%s", origin_name(o));
    if (o == OrthancPluginInstanceOrigin_DicomProtocol) {
        const char *aet = OrthancPluginGetInstanceRemoteAet(g_ctx, instance);
        if (aet)
            snprintf(it.remote_aet, sizeof it.remote_aet, "%s", aet);
    }
    int r = cxp_enqueue(p, &it, 0, 0);
    if (r == -1)
        cx_log(CX_LOG_WARN, MOD, instance_id, "queue full (%d): not queued now; a rescan after the queue drains "
               "finds it", CXP_QUEUE_MAX);
    else if (r == -2)
        cx_log(CX_LOG_INFO, MOD, instance_id, "Orthanc is stopping: the next start-up scan finds this instance");
    return OrthancPluginErrorCode_Success;
}

static OrthancPluginErrorCode on_change(OrthancPluginChangeType type, OrthancPluginResourceType rt, const char *id)
{
    (void)rt;
    (void)id;
    cxp_plugin *p = g_plugin;
    if (!p)
        return OrthancPluginErrorCode_Success;
    if (type == OrthancPluginChangeType_OrthancStarted) {
        cxp_request_scan(p);
    } else if (type == OrthancPluginChangeType_OrthancStopped) {
        /* Stop taking new work early; Finalize joins the threads. */
        pthread_mutex_lock(&p->mu);
        p->stopping = 1;
        pthread_cond_broadcast(&p->work_cv);
        pthread_cond_broadcast(&p->space_cv);
        pthread_mutex_unlock(&p->mu);
    }
    return OrthancPluginErrorCode_Success;
}

/* ---------------- REST ---------------- */

/* Sends a text from exchange.c (NULL: it could not be made) and frees it. */
static void answer_json(OrthancPluginRestOutput *out, char *text)
{
    if (!text)
        OrthancPluginSendHttpStatusCode(g_ctx, out, 500);
    else
        OrthancPluginAnswerBuffer(g_ctx, out, text, (uint32_t)strlen(text), "application/json");
    cx_free(text);
}

static void answer_error(OrthancPluginRestOutput *out, uint16_t status, const char *msg)
{
    char *text = cxp_error_answer(msg);
    if (text)
        OrthancPluginSendHttpStatus(g_ctx, out, status, text, (uint32_t)strlen(text));
    else
        OrthancPluginSendHttpStatusCode(g_ctx, out, status);
    cx_free(text);
}

static OrthancPluginErrorCode rest_status(OrthancPluginRestOutput *out, const char *url,
                                          const OrthancPluginHttpRequest *req)
{
    (void)url;
    if (req->method != OrthancPluginHttpMethod_Get) {
        OrthancPluginSendMethodNotAllowed(g_ctx, out, "GET");
        return OrthancPluginErrorCode_Success;
    }
    cxp_plugin *p = g_plugin;
    cxp_status s = {.version = PACKAGE_VERSION, .queue_capacity = CXP_QUEUE_MAX};
    if (!p) {
        s.disabled = g_disabled_why;
    } else {
        pthread_mutex_lock(&p->mu);
        s.stats = p->stats;
        s.queue_length = p->len;
        s.busy = p->busy;
        s.scan_pending = p->scan_requested;
        s.scanning = p->scanning;
        pthread_mutex_unlock(&p->mu);
        s.configuration = p->cfg->path;
        s.model_name = cx_model_name(p->model);
        s.model_version = cx_model_version(p->model);
        s.model_sha256 = cx_model_sha256(p->model);
        s.model_file = p->cfg->model.file;
        s.workers = p->n_workers;
    }
    answer_json(out, cxp_status_answer(&s));
    return OrthancPluginErrorCode_Success;
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (!n || n >= CXP_ID_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || *s == '-'))
            return 0;
    return 1;
}

static OrthancPluginErrorCode rest_process(OrthancPluginRestOutput *out, const char *url,
                                           const OrthancPluginHttpRequest *req)
{
    (void)url;
    if (req->method != OrthancPluginHttpMethod_Post) {
        OrthancPluginSendMethodNotAllowed(g_ctx, out, "POST");
        return OrthancPluginErrorCode_Success;
    }
    cxp_plugin *p = g_plugin;
    const char *id = req->groupsCount >= 1 ? req->groups[0] : "";
    if (!valid_id(id)) {
        answer_error(out, 400, "not an Orthanc instance identifier");
        return OrthancPluginErrorCode_Success;
    }
    char uri[128];
    snprintf(uri, sizeof uri, "/instances/%s/metadata/SopClassUid", id);
    char *cls = NULL;
    cx_error e = {0};
    if (cxp_rest_get(p, uri, &cls, NULL, &e) != CX_OK) {
        answer_error(out, 404, "no such instance");
        return OrthancPluginErrorCode_Success;
    }
    int source = cxp_is_source_class(cls);
    cx_free(cls);
    if (!source) {
        answer_error(out, 400, "not a CR/DX image (only source images are processed)");
        return OrthancPluginErrorCode_Success;
    }
    cxp_item it;
    memset(&it, 0, sizeof it);
    snprintf(it.id, sizeof it.id, "%s", id);
    snprintf(it.origin, sizeof it.origin, "re-run");
    int r = cxp_enqueue(p, &it, 1, 0);
    if (r < 0) {
        answer_error(out, 503, "queue full or stopping");
        return OrthancPluginErrorCode_Success;
    }
    cx_log(CX_LOG_INFO, MOD, id, "re-run requested through REST%s", r == 0 ? " (already queued)" : "");
    answer_json(out, cxp_queued_answer(id));
    return OrthancPluginErrorCode_Success;
}

/* ---------------- configuration ---------------- */

static void plugin_free(cxp_plugin *p)
{
    if (!p)
        return;
    cx_segment_params_release(&p->params);
    cx_model_free(p->model);
    cx_config_free(p->cfg);
    if (p->tmpdir[0])
        rmdir(p->tmpdir);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->space_cv);
    pthread_mutex_destroy(&p->mu);
    cx_free(p);
}

/* Segment parameters from the shared configuration (cx_segment_params_from_config, the mapping
 * of `cxrseg segment --conf` and the node). */
static cx_status params_from_config(cxp_plugin *p, cx_error *err)
{
    cx_segment_params *sp = &p->params;
    const cx_config *cfg = p->cfg;
    char version[64];
    snprintf(version, sizeof version, "cxrseg %s", PACKAGE_VERSION);
    cx_status st = cx_segment_params_from_config(cfg, version, sp, err);
    if (st != CX_OK)
        return st;
    /* The result stored last marks an instance as done (see work.c). */
    int out = sp->write.outputs;
    p->marker_kind = out & CXD_OUT_SR ? "sr" : out & CXD_OUT_SC ? "sc" : out & CXD_OUT_GSPS ? "gsps" : "seg";
    if (!out)
        return cx_error_set(err, CX_ERR_CONFIG, "orthanc", "%s: every output is switched off", cfg->path);
    return CX_OK;
}

/* Orthanc's "CxrSeg" section (cxp_config_section): 1 path set, 0 absent, -1 malformed (why). */
static int orthanc_section(char *path, size_t path_size, char *why, size_t why_size)
{
    char *json = OrthancPluginGetConfiguration(g_ctx);
    if (!json) {
        snprintf(why, why_size, "Orthanc did not give its configuration");
        return -1;
    }
    int rc = cxp_config_section(json, path, path_size, why, why_size);
    OrthancPluginFreeString(g_ctx, json);
    return rc;
}

/* ---------------- entry points ---------------- */

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext *context)
{
    g_ctx = context;
    if (!OrthancPluginCheckVersion(context)) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "cxrseg: this Orthanc (%s) is older than the plugin SDK it was built with (%d.%d.%d): not loaded",
                 context->orthancVersion, ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER, ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER,
                 ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER);
        OrthancPluginLogError(context, msg);
        return -1;
    }
    cx_log_set_sink(log_sink, NULL);
    OrthancPluginSetDescription(context, "cxrseg: lung fields and findings (the model's classes) on chest radiographs "
                                         "(DICOM SEG + TID 1500 SR added to the study)");
    OrthancPluginRegisterRestCallback(context, "/cxrseg/status", rest_status);

    char path[4096] = "", why[600] = "";
    int sec = orthanc_section(path, sizeof path, why, sizeof why);
    if (sec < 0) {
        cx_log(CX_LOG_ERROR, MOD, NULL, "%s", why);
        return -1;
    }
    if (sec == 0) {
        snprintf(g_disabled_why, sizeof g_disabled_why, "%s", why);
        cx_log(CX_LOG_WARN, MOD, NULL, "disabled: %s (add \"CxrSeg\": {\"ConfigurationFile\": "
               "\"/etc/cxrseg/cxrseg.xml\"})", why);
        return 0;
    }
    cx_config_errors errs;
    memset(&errs, 0, sizeof errs);
    cx_config *cfg = NULL;
    cx_status st = cx_config_load(path, NULL, &cfg, &errs);
    if (st != CX_OK) {
        for (size_t i = 0; i < errs.count; i++)
            cx_log(CX_LOG_ERROR, MOD, NULL, "%s", errs.items[i].text);
        if (errs.dropped)
            cx_log(CX_LOG_ERROR, MOD, NULL, "... and %zu more errors", errs.dropped);
        cx_log(CX_LOG_ERROR, MOD, NULL, "%s is not valid: Orthanc cannot start with the cxrseg plugin", path);
        cx_config_errors_clear(&errs);
        return -1;
    }
    cx_config_errors_clear(&errs);
    cx_log_set_level(cfg->logging.level);
    for (size_t i = 0; i < cfg->warnings.count; i++)
        cx_log(CX_LOG_WARN, MOD, NULL, "%s", cfg->warnings.items[i]);
    if (!cfg->orthanc.enabled) {
        snprintf(g_disabled_why, sizeof g_disabled_why, "%s: <orthanc><enabled> is false", path);
        cx_log(CX_LOG_WARN, MOD, NULL, "disabled: %s", g_disabled_why);
        cx_config_free(cfg);
        return 0;
    }

    cxp_plugin *p = cx_calloc(1, sizeof *p);
    if (!p) {
        cx_config_free(cfg);
        cx_log(CX_LOG_ERROR, MOD, NULL, "out of memory");
        return -1;
    }
    p->ctx = context;
    p->cfg = cfg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->space_cv, NULL);
    cx_error e = {0};
    if ((st = params_from_config(p, &e)) != CX_OK || (st = cx_model_load(cfg->model.file, &p->model, &e)) != CX_OK) {
        cx_log(CX_LOG_ERROR, MOD, NULL, "%s", e.msg);
        plugin_free(p);
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(p->tmpdir, sizeof p->tmpdir, "%s/cxrseg-orthanc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(p->tmpdir)) {
        cx_log(CX_LOG_ERROR, MOD, NULL, "cannot create a scratch folder %s", p->tmpdir);
        p->tmpdir[0] = 0;
        plugin_free(p);
        return -1;
    }
    if ((st = cxp_workers_start(p, &e)) != CX_OK) {
        cx_log(CX_LOG_ERROR, MOD, NULL, "%s", e.msg);
        cxp_workers_stop(p);
        plugin_free(p);
        return -1;
    }
    g_plugin = p;
    OrthancPluginRegisterOnStoredInstanceCallback(context, on_stored);
    OrthancPluginRegisterOnChangeCallback(context, on_change);
    OrthancPluginRegisterRestCallback(context, "/cxrseg/instances/([^/]+)/process", rest_process);
    cx_log(CX_LOG_INFO, MOD, NULL, "cxrseg %s: configuration %s, model %s (%s, sha256 %s, integrity digests %s), "
           "%d worker%s", PACKAGE_VERSION, cfg->path, cfg->model.file, cx_model_name(p->model),
           cx_model_sha256(p->model), cx_model_integrity(p->model), p->n_workers, p->n_workers == 1 ? "" : "s");
    return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize(void)
{
    cxp_plugin *p = g_plugin;
    if (p) {
        cxp_workers_stop(p);
        g_plugin = NULL;
        cx_log(CX_LOG_INFO, MOD, NULL, "stopped: %lu processed, %lu failed, %lu skipped", p->stats.processed,
               p->stats.failed, p->stats.skipped);
        plugin_free(p);
    }
    cx_log_set_sink(NULL, NULL);
    g_ctx = NULL;
}

ORTHANC_PLUGINS_API const char *OrthancPluginGetName(void)
{
    return "cxrseg";
}

ORTHANC_PLUGINS_API const char *OrthancPluginGetVersion(void)
{
    return PACKAGE_VERSION;
}

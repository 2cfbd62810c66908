/* exchange: what the plugin reads from and writes to Orthanc as JSON, over libjansson (see
 * exchange.h). Reading is strict (jansson is RFC 8259 strict; duplicate member names are refused
 * on top), every error names line and column; writing goes through jansson's encoder with every
 * string made valid UTF-8 first (cx_json_text). GPL-3.0-or-later. */
#include "exchange.h"

#include <stdio.h>
#include <string.h>

#include "cx_json.h"

#define MOD "orthanc"

cx_status cxp_json_parse(const char *text, size_t len, json_t **out, cx_error *err)
{
    if (!text || !out)
        return cx_error_set(err, CX_ERR_INVALID, "json", "no text");
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
    if (!v) {
        /* jansson leaves the text empty when an allocation failed (it names every syntax error) */
        int nomem = !je.text[0];
#if JANSSON_VERSION_HEX >= 0x020b00
        nomem = nomem || json_error_code(&je) == json_error_out_of_memory;
#endif
        if (nomem)
            return cx_error_set(err, CX_ERR_NOMEM, "json", "out of memory at byte %d", je.position);
        return cx_error_set(err, CX_ERR_FORMAT, "json", "line %d, column %d: %s", je.line, je.column, je.text);
    }
    *out = v;
    return CX_OK;
}

/* Parses an answer of Orthanc's REST API; a malformed one is an error naming the route. */
static cx_status parse_answer(const char *answer, const char *route, json_t **out, cx_error *err)
{
    cx_status st = cxp_json_parse(answer, answer ? strlen(answer) : 0, out, err);
    if (st != CX_OK)
        cx_error_prefix(err, route);
    return st;
}

int cxp_config_section(const char *conf, char *path, size_t path_size, char *why, size_t why_size)
{
    json_t *root = NULL;
    cx_error e = {0};
    if (cxp_json_parse(conf, conf ? strlen(conf) : 0, &root, &e) != CX_OK) {
        snprintf(why, why_size, "Orthanc's configuration: %s", e.msg);
        return -1;
    }
    json_t *sec = json_object_get(root, "CxrSeg"); /* NULL when root is not an object */
    json_t *file = json_object_get(sec, "ConfigurationFile");
    const char *f = json_string_value(file);
    int rc;
    if (!sec) {
        snprintf(why, why_size, "no \"CxrSeg\" section in Orthanc's configuration");
        rc = 0;
    } else if (!json_is_object(sec)) {
        snprintf(why, why_size, "\"CxrSeg\" must be an object with \"ConfigurationFile\"");
        rc = -1;
    } else if (!file) {
        snprintf(why, why_size, "\"CxrSeg\" has no \"ConfigurationFile\"");
        rc = 0;
    } else if (!f || !*f) {
        snprintf(why, why_size, "\"CxrSeg\": \"ConfigurationFile\" must be a non-empty string (a path)");
        rc = -1;
    } else if (strlen(f) >= path_size) {
        snprintf(why, why_size, "\"CxrSeg\": \"ConfigurationFile\" is longer than %zu characters", path_size - 1);
        rc = -1;
    } else {
        snprintf(path, path_size, "%s", f);
        rc = 1;
        const char *key;
        json_t *value;
        json_object_foreach(sec, key, value)
            if (strcmp(key, "ConfigurationFile"))
                cx_log(CX_LOG_WARN, MOD, NULL, "\"CxrSeg\": unknown option \"%s\" ignored", key);
    }
    json_decref(root);
    return rc;
}

cx_status cxp_stored_answer(const char *answer, char id[CXP_ID_MAX], int *already, cx_error *err)
{
    json_t *v = NULL;
    cx_status st = parse_answer(answer, "POST /instances", &v, err);
    if (st != CX_OK)
        return st;
    const char *oid = json_string_value(json_object_get(v, "ID"));
    const char *status = json_string_value(json_object_get(v, "Status"));
    if (!oid || strlen(oid) >= CXP_ID_MAX) {
        st = cx_error_set(err, CX_ERR_FORMAT, MOD, "POST /instances: no ID in Orthanc's answer");
    } else {
        snprintf(id, CXP_ID_MAX, "%s", oid);
        *already = status && !strcmp(status, "AlreadyStored");
    }
    json_decref(v);
    return st;
}

int cxp_lookup_answer(const char *answer, cx_error *err)
{
    json_t *v = NULL;
    if (parse_answer(answer, "/tools/lookup", &v, err) != CX_OK)
        return -1;
    int found = json_is_array(v) ? json_array_size(v) > 0 : -1;
    if (found < 0)
        cx_error_set(err, CX_ERR_FORMAT, MOD, "/tools/lookup did not answer with a list");
    json_decref(v);
    return found;
}

cx_status cxp_find_answer(const char *answer, json_t **list, cx_error *err)
{
    json_t *v = NULL;
    cx_status st = parse_answer(answer, "/tools/find", &v, err);
    if (st != CX_OK)
        return st;
    if (!json_is_array(v)) {
        json_decref(v);
        return cx_error_set(err, CX_ERR_FORMAT, MOD, "/tools/find did not answer with a list");
    }
    *list = v;
    return CX_OK;
}

int cxp_find_item(const json_t *item, const char **id, const char **sop_uid)
{
    *id = json_string_value(json_object_get(item, "ID"));
    *sop_uid = json_string_value(json_object_get(json_object_get(item, "MainDicomTags"), "SOPInstanceUID"));
    return *id && *sop_uid && strlen(*id) < CXP_ID_MAX;
}

/* ---------------- what the plugin writes ---------------- */

/* The text being written, in cx_malloc'ed memory. A failed append is remembered: jansson's
 * encoder does not check every write (it ignores a failed write of an object's member name), so
 * the text is used only when every write succeeded. */
typedef struct text_buf {
    char *data;
    size_t len, cap;
    int failed;
} text_buf;

static int append(const char *bytes, size_t n, void *user)
{
    text_buf *b = user;
    size_t need;
    if (b->failed || !cx_size_add(b->len, n, &need) || !cx_size_add(need, 1, &need)) {
        b->failed = 1;
        return -1;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        char *d = cx_realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

/* The text of v (its reference is taken; NULL gives NULL) as a cx_malloc'ed string, with a final
 * newline for answers to HTTP clients. */
static char *dump(json_t *v, size_t flags, int newline)
{
    text_buf b = {0};
    int r = v ? json_dump_callback(v, append, &b, flags) : -1;
    json_decref(v);
    if (r || (newline && append("\n", 1, &b)) || b.failed || !b.data) {
        cx_free(b.data);
        return NULL;
    }
    return b.data;
}

char *cxp_status_answer(const cxp_status *s)
{
    json_t *v;
    if (s->disabled) {
        v = json_pack("{s:o, s:b, s:o}", "Version", cx_json_text(s->version), "Enabled", 0, "Reason",
                      cx_json_text(s->disabled));
    } else {
        const cxp_stats *c = &s->stats;
        v = json_pack("{s:o, s:b, s:o, s:{s:o, s:o, s:o, s:o}, s:i, s:I, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, "
                      "s:I, s:I, s:b, s:b, s:I, s:I}",
                      "Version", cx_json_text(s->version), "Enabled", 1, "Configuration",
                      cx_json_text(s->configuration), "Model", "Name", cx_json_text(s->model_name), "Version",
                      cx_json_text(s->model_version), "Sha256", cx_json_text(s->model_sha256), "File",
                      cx_json_text(s->model_file), "Workers", s->workers, "QueueLength",
                      (json_int_t)s->queue_length, "QueueCapacity", s->queue_capacity, "Busy", s->busy, "Queued",
                      (json_int_t)c->queued, "Processed", (json_int_t)c->processed, "Failed", (json_int_t)c->failed,
                      "Skipped", (json_int_t)c->skipped, "Ignored", (json_int_t)c->ignored, "Dropped",
                      (json_int_t)c->dropped, "ForwardFailed", (json_int_t)c->forward_failed, "Scans",
                      (json_int_t)c->scans, "ScanPending", s->scan_pending, "Scanning", s->scanning, "QueuedByScan",
                      (json_int_t)c->scan_queued, "LastMilliseconds", (json_int_t)(c->last_ms + 0.5));
    }
    return dump(v, JSON_INDENT(2), 1);
}

char *cxp_queued_answer(const char *id)
{
    return dump(json_pack("{s:o, s:b}", "ID", cx_json_text(id), "Queued", 1), 0, 1);
}

char *cxp_error_answer(const char *msg)
{
    return dump(json_pack("{s:o}", "Error", cx_json_text(msg)), 0, 1);
}

char *cxp_find_query(size_t since, size_t limit)
{
    return dump(json_pack("{s:s, s:{s:s}, s:b, s:I, s:I}", "Level", "Instance", "Query", "Modality", "CR\\DX",
                          "Expand", 1, "Since", (json_int_t)since, "Limit", (json_int_t)limit),
                JSON_COMPACT, 0);
}

char *cxp_id_list(const char (*ids)[CXP_ID_MAX], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, cx_json_text(ids[i]))) {
            json_decref(a);
            a = NULL;
        }
    return dump(a, JSON_COMPACT, 0);
}

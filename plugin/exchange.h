/* exchange: the JSON the Orthanc plugin reads (Orthanc's configuration, the answers of POST
 * /instances, /tools/lookup and /tools/find) and the JSON it writes (its REST answers, the
 * /tools/find query, the list of results it forwards), over libjansson. No plugin SDK call in
 * here, so tests/unit/test_plugin_json runs all of it without an Orthanc. GPL-3.0-or-later. */
#ifndef CXP_EXCHANGE_H
#define CXP_EXCHANGE_H

#include <stddef.h>

#include <jansson.h>

#include "cx_base.h"

#define CXP_ID_MAX 64 /* Orthanc identifiers are 44 characters */

typedef struct cxp_stats {
    unsigned long queued, processed, failed, skipped, ignored, dropped, scans, scan_queued, forward_failed;
    double last_ms;          /* time of the last processed instance, fetch to stored */
} cxp_stats;

/* Parses JSON text from Orthanc strictly, as RFC 8259 has it: UTF-8 only, no \u0000, no
 * comments or trailing commas, nothing after the value; duplicate member names are refused too.
 * Numbers of any size are accepted (read as reals; the plugin reads none); nesting is bounded by
 * jansson (2048 levels). On success *out is the new value (json_decref); errors are CX_ERR_FORMAT
 * "json: line L, column C: <what jansson found wrong>" or CX_ERR_NOMEM, *out then untouched. */
cx_status cxp_json_parse(const char *text, size_t len, json_t **out, cx_error *err);

/* Orthanc's "CxrSeg" section in its configuration text (OrthancPluginGetConfiguration): 1 with
 * path set to "ConfigurationFile", 0 when the section or its "ConfigurationFile" is absent (the
 * plugin stays disabled), -1 when the text or the section is malformed. why says which in the
 * last two cases. Members other than "ConfigurationFile" are logged as ignored. */
int cxp_config_section(const char *conf, char *path, size_t path_size, char *why, size_t why_size);

/* The answer of POST /instances: id receives the stored instance's Orthanc id, *already whether
 * Orthanc kept an older copy instead (Status "AlreadyStored"). */
cx_status cxp_stored_answer(const char *answer, char id[CXP_ID_MAX], int *already, cx_error *err);

/* The answer of /tools/lookup: 1 when some resource has the UID, 0 when none, -1 (err set) when
 * it is not a JSON list. */
int cxp_lookup_answer(const char *answer, cx_error *err);

/* A page of /tools/find with "Expand": *list is the array (json_decref), else err (*list
 * untouched). */
cx_status cxp_find_answer(const char *answer, json_t **list, cx_error *err);
/* An item of that page: 1 with its Orthanc id and SOP Instance UID (pointing into item), 0 when
 * it lacks either or the id does not fit CXP_ID_MAX. */
int cxp_find_item(const json_t *item, const char **id, const char **sop_uid);

/* What the plugin shows at /cxrseg/status. */
typedef struct cxp_status {
    const char *version;
    const char *disabled;    /* NULL when the plugin runs, else why it is disabled */
    const char *configuration, *model_name, *model_version, *model_sha256, *model_file;
    int workers, queue_capacity, busy, scan_pending, scanning;
    size_t queue_length;
    cxp_stats stats;
} cxp_status;

/* The texts the plugin sends, cx_malloc'ed (cx_free); NULL when out of memory. Every string in
 * them goes through cx_json_text: valid UTF-8 whatever the bytes it was given. Answers to HTTP
 * clients end with a newline. */
char *cxp_status_answer(const cxp_status *s);         /* /cxrseg/status */
char *cxp_queued_answer(const char *id);              /* {"ID": id, "Queued": true} */
char *cxp_error_answer(const char *msg);              /* {"Error": msg} */
char *cxp_find_query(size_t since, size_t limit);     /* the body of POST /tools/find: CR/DX, a page */
char *cxp_id_list(const char (*ids)[CXP_ID_MAX], size_t n); /* ["id", ...] for .../store */

#endif

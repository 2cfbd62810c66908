/* cxp: internal interfaces of the Orthanc plugin (plugin/). plugin.c holds the four exported
 * entry points, the configuration, the callbacks and the REST routes; work.c the bounded queue,
 * the worker threads (fetch -> segment -> store -> forward) and the start-up scan; exchange.c
 * (exchange.h) the JSON read from and written to Orthanc.
 * Nothing outside plugin/ includes this header. GPL-3.0-or-later. */
#ifndef CXP_H
#define CXP_H

#include <pthread.h>
#include <stddef.h>

#include <orthanc/OrthancCPlugin.h>

#include "cx_base.h"
#include "cx_config.h"
#include "cx_mrcnn.h"
#include "exchange.h"
#include "segment.h"

/* Queue bound: a callback never waits; an instance that does not fit is picked up by the rescan
 * that an overflow triggers (see work.c). */
#define CXP_QUEUE_MAX 1024

typedef struct cxp_item {
    char id[CXP_ID_MAX];     /* Orthanc instance identifier */
    char origin[16];         /* "DICOM", "REST", "Plugin", "scan", "re-run", ... */
    char remote_aet[17];     /* calling AE title for DICOM arrivals, else "" */
} cxp_item;

typedef struct cxp_worker cxp_worker;

typedef struct cxp_plugin {
    OrthancPluginContext *ctx;
    cx_config *cfg;
    cx_model *model;
    cx_segment_params params;     /* from the configuration; accept is set per worker */
    const char *marker_kind;      /* derived-UID kind of the output stored last ("sr", ...) */
    char tmpdir[1024];            /* private scratch folder, removed at Finalize */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;       /* queue not empty, scan requested, or stopping */
    pthread_cond_t space_cv;      /* queue not full (the scanner waits on it) */
    cxp_item queue[CXP_QUEUE_MAX];
    size_t head, len;
    int stopping, scan_requested, scanning, overflowed, busy;
    cxp_stats stats;

    cxp_worker *workers;
    int n_workers;
    pthread_t scanner;
    int scanner_started;
} cxp_plugin;

/* work.c */
/* Adds an item unless the same instance id is already waiting. front: ahead of the others (a
 * re-run asked for through REST). block: wait for room (the scanner) instead of dropping (a
 * callback). Returns 1 queued, 0 already waiting, -1 dropped (full), -2 stopping. */
int cxp_enqueue(cxp_plugin *p, const cxp_item *it, int front, int block);
void cxp_request_scan(cxp_plugin *p);
cx_status cxp_workers_start(cxp_plugin *p, cx_error *err);
void cxp_workers_stop(cxp_plugin *p); /* sets stopping, wakes and joins everything */

/* REST helpers over the plugin SDK. The answer (NUL-terminated copy) is cx_malloc'ed into
 * *body when body is non-NULL. Returns CX_OK or CX_ERR_NETWORK with Orthanc's error text. */
cx_status cxp_rest_get(cxp_plugin *p, const char *uri, char **body, size_t *len, cx_error *err);
cx_status cxp_rest_post(cxp_plugin *p, const char *uri, const void *data, size_t n, char **body, cx_error *err);
cx_status cxp_rest_delete(cxp_plugin *p, const char *uri, cx_error *err);

/* Is this SOP class a source image (CR, DX for presentation or processing)? */
int cxp_is_source_class(const char *sop_class_uid);

#endif

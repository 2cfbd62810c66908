/* cx_config: the one configuration file (conf/cxrseg.xml) that the node, the plugin and the CLI
 * share. Loading = parse with libxml2 (no network, no entities, no DOCTYPE), validate against
 * conf/cxrseg.xsd, fill this plain struct (defaults for absent elements), then cross-field rules.
 * Every problem is reported as "file:line: message"; all of them are collected, not only the first. */
#ifndef CX_CONFIG_H
#define CX_CONFIG_H

#include "cx_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* File name of the shipped model. When <model><file> is absent the loader looks for it in
 * <conf dir>/../models/ (source tree), then in CX_DATADIR/models/ (installed). */
#define CX_CONFIG_DEFAULT_MODEL "cxrseg.cxm"

/* ---- Errors: caller-owned, no allocation (usable when memory is exhausted). ---- */
#define CX_CONFIG_MAX_ERRORS 64
typedef struct cx_config_error_entry {
    int line;        /* 1-based line in `text`'s file, 0 when the problem has no line */
    char text[640];  /* "file:line: message" (or "file: message" when line is 0) */
} cx_config_error_entry;

typedef struct cx_config_errors {
    size_t count;    /* entries filled (<= CX_CONFIG_MAX_ERRORS) */
    size_t dropped;  /* further errors that did not fit */
    cx_config_error_entry items[CX_CONFIG_MAX_ERRORS];
} cx_config_errors;

/* ---- The configuration. Strings are NUL-terminated and owned by the cx_config. ---- */

/* What happens to an object a filter rule does not accept. Values are stable. */
typedef enum cx_config_action {
    CX_ACTION_PROCESS = 0, /* the object passes (only meaningful for "when empty") */
    CX_ACTION_SKIP = 1,    /* acknowledge with success, log which rule, do not process */
    CX_ACTION_REJECT = 2   /* answer the C-STORE with a failure status naming the rule */
} cx_config_action;

/* Result objects; a destination's `outputs` is a bit set of these. */
enum { CX_OUTPUT_SEG = 1u, CX_OUTPUT_SR = 2u, CX_OUTPUT_GSPS = 4u, CX_OUTPUT_SC = 8u };

typedef enum cx_config_log_target {
    CX_LOG_TO_STDERR = 0, CX_LOG_TO_FILE = 1, CX_LOG_TO_SYSLOG = 2
} cx_config_log_target;

typedef enum cx_config_audit_target {
    CX_AUDIT_OFF = 0, CX_AUDIT_TO_FILE = 1, CX_AUDIT_TO_SYSLOG = 2
} cx_config_audit_target;

typedef struct cx_config_strings {
    size_t count;
    char **items;
} cx_config_strings;

typedef enum cx_config_tls_verify {
    CX_TLS_VERIFY_REQUIRE = 0, CX_TLS_VERIFY_IF_PRESENTED = 1, CX_TLS_VERIFY_NONE = 2
} cx_config_tls_verify;

/* DICOM TLS (PS3.15 B.9, BCP 195 non-downgrading: TLS 1.2 or newer only) of the listener or of
 * one destination. Files are PEM. verify_peer: "require" (the peer must present a certificate
 * that chains to ca_file: mutual authentication, IHE ATNA style), "if-presented" (checked when
 * the peer sends one) or "none" (not checked; a sender never uses it without saying so in the
 * log). Defaults: listener "require", destination "require". */
typedef struct cx_config_tls {
    int enabled;                     /* default 0 */
    char *certificate_file;          /* ours; listener: required; destination: for mutual auth */
    char *private_key_file;          /* ours, unencrypted; with certificate_file */
    char *ca_file;                   /* trusted CA certificates; required unless verify_peer none */
    cx_config_tls_verify verify_peer; /* default CX_TLS_VERIFY_REQUIRE */
    int line;                        /* line of <tls>, for messages */
} cx_config_tls;

typedef struct cx_config_listener {
    char *ae_title;                  /* our AE title (default "CXRSEG") */
    char *bind_address;              /* default "127.0.0.1": see docs/configuration.md */
    int port;                        /* default 11112 */
    int max_pdu_bytes;               /* default 65536 (4096..131072) */
    int acse_timeout_s;              /* association negotiation, default 30 */
    int dimse_timeout_s;             /* one DIMSE message, default 60 */
    int idle_timeout_s;              /* association without traffic, default 300 */
    int max_associations;            /* concurrent, default 16 */
    int max_per_host;                /* open TCP connections from one address, default 16 */
    int max_object_mb;               /* largest object accepted (node) or processed (plugin), default 1024 */
    cx_config_strings transfer_syntaxes; /* UIDs accepted, in preference order; default: every
                                          * syntax the decoder reads */
    cx_config_strings allowed_calling_ae_titles; /* empty: any calling AE */
    cx_config_strings allowed_hosts; /* IP, IP/prefix or host name; empty: any host */
    cx_config_tls tls;
} cx_config_listener;

/* A rule on one attribute: the object passes when its value is one of `accept`. */
typedef struct cx_config_value_rule {
    cx_config_strings accept;        /* empty: the rule is off */
    cx_config_action otherwise;      /* value present but not accepted (skip or reject) */
    cx_config_action when_empty;     /* attribute absent or empty (process, skip or reject) */
} cx_config_value_rule;

typedef struct cx_config_filters {
    cx_config_value_rule modality;       /* default accept CR, DX; otherwise skip; empty: skip */
    cx_config_value_rule body_part;      /* default accept CHEST; otherwise skip; empty: process */
    cx_config_value_rule view_position;  /* default accept PA, AP; otherwise skip; empty: process */
    int min_rows, min_columns;           /* default 512 each; 0 turns the check off */
    cx_config_action size_otherwise;     /* default skip */
    cx_config_strings series_include;    /* glob patterns, case-insensitive; empty: any */
    cx_config_strings series_exclude;    /* glob patterns, case-insensitive */
    cx_config_action series_otherwise;   /* default skip */
} cx_config_filters;

typedef enum cx_config_dest_kind {
    CX_DEST_DICOM = 0,               /* <destination>: C-STORE over DICOM (optionally TLS) */
    CX_DEST_STOW = 1                 /* <dicomweb-destination>: STOW-RS over HTTP(S) */
} cx_config_dest_kind;

typedef struct cx_config_destination {
    char *name;                      /* unique, used in logs and in <send-results-to> */
    cx_config_dest_kind kind;
    /* STOW-RS (kind CX_DEST_STOW; ae_title, host, port unused) */
    char *url;                       /* the STOW-RS endpoint, e.g. http://pacs:8042/dicom-web/studies */
    char *bearer_token_file;         /* a file holding the token (absolute after loading) */
    char *basic_auth_file;           /* a file holding "user:password" (absolute after loading) */
    char *http_ca_file;              /* CA certificates for an https URL; default the system's */
    int http_timeout_s;              /* whole request (default 120) */
    char *ae_title;                  /* called AE title of the peer */
    char *host;
    int port;
    char *calling_ae_title;          /* default: the listener's AE title */
    unsigned outputs;                /* CX_OUTPUT_* bits; default SEG|SR|GSPS|SC (only the
                                      * outputs switched on in <outputs> exist at all) */
    int connect_timeout_s;           /* default 10 */
    int dimse_timeout_s;             /* default 60 */
    cx_config_tls tls;
    int send_results;                /* 1 when results go here (see <send-results-to>) */
    int line;                        /* line of <destination> in the conf file */
} cx_config_destination;

/* Return to sender: results of objects received from `calling_ae_title` go back to host:port. */
typedef struct cx_config_sender {
    char *calling_ae_title;
    char *ae_title;                  /* AE title to call; default = calling_ae_title */
    char *host;
    int port;
    unsigned outputs;                /* default SEG|SR|GSPS|SC */
    int line;
} cx_config_sender;

typedef struct cx_config_retry {
    int initial_delay_s;             /* default 10 */
    double factor;                   /* default 2.0 (1.0..10.0) */
    int max_delay_s;                 /* default 600 */
    int max_attempts;                /* default 20; then the item moves to failed */
} cx_config_retry;

typedef struct cx_config_destinations {
    size_t count;
    cx_config_destination *items;
    size_t sender_count;
    cx_config_sender *senders;
    cx_config_retry retry;
} cx_config_destinations;

typedef struct cx_config_spool {
    char *directory;                 /* absolute; default "/var/spool/cxrseg" */
    long long quota_mb;              /* default 10240 */
    long long min_free_disk_mb;      /* default 1024; must not exceed quota_mb */
    int max_queued_items;            /* default 10000 */
    int keep_sent_days;              /* default 7; 0 deletes at once */
    int keep_failed_days;            /* default 30 */
} cx_config_spool;

typedef struct cx_config_workers {
    int count;                       /* default 2 */
    int threads_per_worker;          /* default 1; count * threads <= 64 */
    int job_timeout_s;               /* default 120 */
} cx_config_workers;

typedef struct cx_config_threshold {
    char *class_name;
    double score;                    /* 0..1 */
} cx_config_threshold;

typedef struct cx_config_model {
    char *file;                      /* absolute path, readable at load time */
    size_t threshold_count;          /* overrides of the model's own score thresholds */
    cx_config_threshold *thresholds;
} cx_config_model;

typedef struct cx_config_series {
    int enabled;
    int series_number;
    char *series_description;
} cx_config_series;

/* How the SEG stores its masks (<outputs><segmentation><encoding>); docs/outputs.md says which
 * viewer needs which. The values match cxdicom.h's CXD_SEG_* (the node maps them). */
typedef enum cx_config_seg_encoding {
    CX_SEG_ENCODING_FRACTIONAL = 0, /* 8-bit, 0 or 255: loads in OHIF at every size (default) */
    CX_SEG_ENCODING_BINARY = 1      /* 1-bit packed: the smaller object, for viewers without FRACTIONAL */
} cx_config_seg_encoding;

/* The SEG file's transfer syntax (<outputs><segmentation><compression>); matches CXD_SEG_RLE /
 * CXD_SEG_UNCOMPRESSED. RLE applies to FRACTIONAL masks; BINARY ones are stored uncompressed. */
typedef enum cx_config_seg_compression {
    CX_SEG_COMPRESSION_NONE = 0, /* Explicit VR Little Endian */
    CX_SEG_COMPRESSION_RLE = 1   /* RLE Lossless, ~50x smaller mask frames (default) */
} cx_config_seg_compression;

typedef struct cx_config_outputs {
    char *uid_root;                  /* default "2.25"; digits and dots, <= 40 characters */
    cx_config_series seg;            /* on, 9901, "CXRSEG Segmentation" */
    int seg_when_nothing_found;      /* 1: write a SEG with the lungs only (default) */
    cx_config_seg_encoding seg_encoding; /* default CX_SEG_ENCODING_FRACTIONAL */
    cx_config_seg_compression seg_compression; /* default CX_SEG_COMPRESSION_RLE */
    cx_config_series sr;             /* on, 9902, "CXRSEG Report" */
    cx_config_series gsps;           /* off, 9903, "CXRSEG Annotations" */
    cx_config_series sc;             /* off, 9904, "CXRSEG Overlay (not for diagnosis)" */
    char *manufacturer;              /* default "cxrseg project" */
    char *model_name;                /* ManufacturerModelName, default "cxrseg" */
} cx_config_outputs;

typedef struct cx_config_logging {
    cx_log_level level;              /* default CX_LOG_INFO */
    cx_config_log_target target;     /* default stderr */
    char *file;                      /* absolute path when target is CX_LOG_TO_FILE, else NULL */
    cx_config_audit_target audit_target; /* default CX_AUDIT_OFF */
    char *audit_file;                /* absolute path when audit_target is CX_AUDIT_TO_FILE, else NULL */
} cx_config_logging;

typedef struct cx_config_orthanc {
    int enabled;                     /* default 1 (the plugin only reads this file when Orthanc's
                                      * configuration names it) */
    int workers;                     /* default 1 */
    cx_config_strings forward_to_modalities; /* Orthanc modality names (checked by Orthanc) */
    cx_config_strings forward_to_peers;      /* Orthanc peer names */
} cx_config_orthanc;

/* The node's HTTP endpoint (/metrics for Prometheus, /healthz), libmicrohttpd. Off by default. */
typedef struct cx_config_http {
    int enabled;                     /* default 0 */
    char *bind_address;              /* default "127.0.0.1" (an IPv4 address) */
    int port;                        /* default 9110 */
    int destination_failing_s;       /* /healthz: not ready once a destination has failed this long
                                      * without a success (default 600) */
} cx_config_http;

typedef struct cx_config {
    char *path;                      /* the conf file as given */
    char *dir;                       /* its folder, absolute (relative paths resolve here) */
    cx_config_listener listener;
    cx_config_filters filters;
    cx_config_destinations destinations;
    cx_config_spool spool;
    cx_config_workers workers;
    cx_config_model model;
    cx_config_outputs outputs;
    cx_config_logging logging;
    cx_config_orthanc orthanc;
    cx_config_http http;
    /* Valid but probably unintended settings, each "file:line: warning: message" (e.g. listening
     * on the network with no allow-list). Programs log them at start-up; check-config prints them. */
    cx_config_strings warnings;
} cx_config;

/* Loads and checks `path`. xsd_path NULL means: $CXRSEG_XSD, then CX_DATADIR/cxrseg.xsd, then
 * cxrseg.xsd next to `path`. On success returns CX_OK and *out (free with cx_config_free); errs
 * may be NULL. On failure *out is untouched, returns CX_ERR_CONFIG (the file is wrong; errs holds
 * every problem found), CX_ERR_IO (file unreadable, XSD not found) or CX_ERR_NOMEM, with at least
 * one entry in errs. Cross-field rules run only when the file is valid against the schema.
 * Thread-safe (libxml2 error state is per thread). */
cx_status cx_config_load(const char *path, const char *xsd_path, cx_config **out, cx_config_errors *errs);

/* Frees everything; NULL is a no-op. */
void cx_config_free(cx_config *cfg);

/* Empties errs (call before reusing it). */
void cx_config_errors_clear(cx_config_errors *errs);

/* The attributes of an incoming object that the filters look at. NULL or "" means absent;
 * rows/columns 0 means unknown (the size rule then does not apply). */
typedef struct cx_config_object {
    const char *modality, *body_part, *view_position, *series_description;
    int rows, columns;
} cx_config_object;

/* Applies the filters in order modality, body part, view position, size, series description.
 * Returns CX_ACTION_PROCESS or the action of the first rule that did not accept the object;
 * then `why` (if non-NULL) gets e.g. "body part 'EXTREMITY' not in CHEST (filters/body-part)". */
cx_config_action cx_config_filter(const cx_config_filters *f, const cx_config_object *obj, char *why,
                                  size_t why_size);

/* Name of an action ("process", "skip", "reject"). */
const char *cx_config_action_name(cx_config_action a);

/* Transfer syntaxes the decoder reads, as (keyword, UID) pairs used by the schema's
 * <transfer-syntax> values; NULL-terminated. Also the default of listener.transfer_syntaxes. */
typedef struct cx_config_syntax {
    const char *keyword, *uid;
} cx_config_syntax;
extern const cx_config_syntax cx_config_syntaxes[];

#ifdef __cplusplus
}
#endif
#endif

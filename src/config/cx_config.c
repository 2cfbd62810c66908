/* cx_config: loads conf/cxrseg.xml into the plain struct of cx_config.h that the node, the plugin
 * and the CLI read. Three passes: libxml2 parse (no network, no entity expansion, no DOCTYPE),
 * XSD validation (collects every error with its line), then the option table below (defaults,
 * types, ranges) and the cross-field rules, each error naming the line of the offending element.
 *
 * How to add an option:
 *   1. add the field to the struct in cx_config.h (with its default and unit in the comment);
 *   2. add the element to conf/cxrseg.xsd (type, range, minOccurs="0");
 *   3. add one row to `options[]` below: section path, element name, type, offsetof the field,
 *      range (numbers: value; strings: length), default text (parsed like the file's text);
 *   4. document it in conf/cxrseg.xml (a comment with default and unit) and docs/configuration.md;
 *   5. a rule that involves several fields goes into cfg_check_rules() (cx_config_rules.c), with the
 *      element's line.
 * Lists (repeated elements) and items with their own fields (destinations, senders) are read by
 * code in fill_*(); their scalar fields still come from the table (base OB_DESTINATION/OB_SENDER).
 */
#include "config.h"
#include "cx_config.h"
#include "cx_config_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#ifndef CX_DATADIR
#define CX_DATADIR "/usr/share/cxrseg"
#endif

/* Largest conf file we read; a real one is a few kB. */
#define CONF_MAX_BYTES (4u << 20)

/* Every syntax the decoder (dicom/) reads, in the default order of preference: uncompressed
 * first (cheapest for both sides), then lossless, then lossy. */
const cx_config_syntax cx_config_syntaxes[] = {
    {"ExplicitVRLittleEndian", "1.2.840.10008.1.2.1"},
    {"ImplicitVRLittleEndian", "1.2.840.10008.1.2"},
    {"JPEG2000Lossless", "1.2.840.10008.1.2.4.90"},
    {"JPEGLossless", "1.2.840.10008.1.2.4.57"},
    {"JPEGLosslessSV1", "1.2.840.10008.1.2.4.70"},
    {"JPEGLSLossless", "1.2.840.10008.1.2.4.80"},
    {"RLELossless", "1.2.840.10008.1.2.5"},
    {"DeflatedExplicitVRLittleEndian", "1.2.840.10008.1.2.1.99"},
    {"ExplicitVRBigEndian", "1.2.840.10008.1.2.2"},
    {"JPEG2000", "1.2.840.10008.1.2.4.91"},
    {"JPEGLSNearLossless", "1.2.840.10008.1.2.4.81"},
    {"JPEGBaseline8Bit", "1.2.840.10008.1.2.4.50"},
    {"JPEGExtended12Bit", "1.2.840.10008.1.2.4.51"},
    {NULL, NULL},
};

/* ------------------------------------------------------------------------------------------ */
/* The option table                                                                            */

typedef enum opt_type {
    OT_INT, OT_LLONG, OT_DOUBLE, OT_BOOL, OT_STRING, OT_ACTION, OT_EMPTY_ACTION, OT_LEVEL, OT_OUTPUTS,
    OT_SEG_ENCODING, OT_SEG_COMPRESSION, OT_TLS_VERIFY
} opt_type;

typedef enum opt_base { OB_CONFIG, OB_DESTINATION, OB_SENDER } opt_base;

typedef struct opt {
    const char *section; /* parent element below <cxrseg>, '/'-separated */
    const char *name;    /* element name */
    opt_type type;
    opt_base base;       /* what `offset` is relative to */
    size_t offset;
    double min, max;     /* numbers: value range; strings: length range */
    const char *def;     /* default as text; NULL: none (required, or computed later) */
} opt;

#define C(field) OB_CONFIG, offsetof(cx_config, field)
#define D(field) OB_DESTINATION, offsetof(cx_config_destination, field)
#define S(field) OB_SENDER, offsetof(cx_config_sender, field)
#define ALL_OUTPUTS "seg sr gsps sc"

static const opt options[] = {
    {"listener", "ae-title", OT_STRING, C(listener.ae_title), 1, 16, "CXRSEG"},
    {"listener", "bind-address", OT_STRING, C(listener.bind_address), 1, 253, "127.0.0.1"},
    {"listener", "port", OT_INT, C(listener.port), 1, 65535, "11112"},
    {"listener", "max-pdu-bytes", OT_INT, C(listener.max_pdu_bytes), 4096, 131072, "65536"},
    {"listener", "acse-timeout-seconds", OT_INT, C(listener.acse_timeout_s), 1, 86400, "30"},
    {"listener", "dimse-timeout-seconds", OT_INT, C(listener.dimse_timeout_s), 1, 86400, "60"},
    {"listener", "idle-timeout-seconds", OT_INT, C(listener.idle_timeout_s), 1, 86400, "300"},
    {"listener", "max-associations", OT_INT, C(listener.max_associations), 1, 256, "16"},
    {"listener", "max-connections-per-host", OT_INT, C(listener.max_per_host), 1, 4096, "16"},
    {"listener", "max-object-mb", OT_INT, C(listener.max_object_mb), 1, 65536, "1024"},
    {"listener/tls", "enabled", OT_BOOL, C(listener.tls.enabled), 0, 0, "false"},
    {"listener/tls", "certificate-file", OT_STRING, C(listener.tls.certificate_file), 1, 4096, NULL},
    {"listener/tls", "private-key-file", OT_STRING, C(listener.tls.private_key_file), 1, 4096, NULL},
    {"listener/tls", "ca-file", OT_STRING, C(listener.tls.ca_file), 1, 4096, NULL},
    {"listener/tls", "verify-peer", OT_TLS_VERIFY, C(listener.tls.verify_peer), 0, 0, "require"},

    {"filters/modality", "otherwise", OT_ACTION, C(filters.modality.otherwise), 0, 0, "skip"},
    {"filters/modality", "when-empty", OT_EMPTY_ACTION, C(filters.modality.when_empty), 0, 0, "skip"},
    {"filters/body-part", "otherwise", OT_ACTION, C(filters.body_part.otherwise), 0, 0, "skip"},
    {"filters/body-part", "when-empty", OT_EMPTY_ACTION, C(filters.body_part.when_empty), 0, 0, "process"},
    {"filters/view-position", "otherwise", OT_ACTION, C(filters.view_position.otherwise), 0, 0, "skip"},
    {"filters/view-position", "when-empty", OT_EMPTY_ACTION, C(filters.view_position.when_empty), 0, 0,
     "process"},
    {"filters/minimum-size", "rows", OT_INT, C(filters.min_rows), 0, 65535, "512"},
    {"filters/minimum-size", "columns", OT_INT, C(filters.min_columns), 0, 65535, "512"},
    {"filters/minimum-size", "otherwise", OT_ACTION, C(filters.size_otherwise), 0, 0, "skip"},
    {"filters/series-description", "otherwise", OT_ACTION, C(filters.series_otherwise), 0, 0, "skip"},

    {"destinations/destination", "ae-title", OT_STRING, D(ae_title), 1, 16, NULL},
    {"destinations/destination", "host", OT_STRING, D(host), 1, 253, NULL},
    {"destinations/destination", "port", OT_INT, D(port), 1, 65535, NULL},
    {"destinations/destination", "calling-ae-title", OT_STRING, D(calling_ae_title), 1, 16, NULL},
    {"destinations/destination", "outputs", OT_OUTPUTS, D(outputs), 0, 0, ALL_OUTPUTS},
    {"destinations/destination", "connect-timeout-seconds", OT_INT, D(connect_timeout_s), 1, 86400, "10"},
    {"destinations/destination", "dimse-timeout-seconds", OT_INT, D(dimse_timeout_s), 1, 86400, "60"},
    {"destinations/destination/tls", "enabled", OT_BOOL, D(tls.enabled), 0, 0, "false"},
    {"destinations/destination/tls", "certificate-file", OT_STRING, D(tls.certificate_file), 1, 4096, NULL},
    {"destinations/destination/tls", "private-key-file", OT_STRING, D(tls.private_key_file), 1, 4096, NULL},
    {"destinations/destination/tls", "ca-file", OT_STRING, D(tls.ca_file), 1, 4096, NULL},
    {"destinations/destination/tls", "verify-peer", OT_TLS_VERIFY, D(tls.verify_peer), 0, 0, "require"},
    {"destinations/dicomweb-destination", "url", OT_STRING, D(url), 8, 2000, NULL},
    {"destinations/dicomweb-destination", "outputs", OT_OUTPUTS, D(outputs), 0, 0, ALL_OUTPUTS},
    {"destinations/dicomweb-destination", "bearer-token-file", OT_STRING, D(bearer_token_file), 1, 4096, NULL},
    {"destinations/dicomweb-destination", "basic-auth-file", OT_STRING, D(basic_auth_file), 1, 4096, NULL},
    {"destinations/dicomweb-destination", "ca-file", OT_STRING, D(http_ca_file), 1, 4096, NULL},
    {"destinations/dicomweb-destination", "timeout-seconds", OT_INT, D(http_timeout_s), 1, 86400, "120"},
    {"destinations/return-to-sender/sender", "calling-ae-title", OT_STRING, S(calling_ae_title), 1, 16, NULL},
    {"destinations/return-to-sender/sender", "host", OT_STRING, S(host), 1, 253, NULL},
    {"destinations/return-to-sender/sender", "port", OT_INT, S(port), 1, 65535, NULL},
    {"destinations/return-to-sender/sender", "ae-title", OT_STRING, S(ae_title), 1, 16, NULL},
    {"destinations/return-to-sender/sender", "outputs", OT_OUTPUTS, S(outputs), 0, 0, ALL_OUTPUTS},
    {"destinations/retry", "initial-delay-seconds", OT_INT, C(destinations.retry.initial_delay_s), 1, 86400,
     "10"},
    {"destinations/retry", "factor", OT_DOUBLE, C(destinations.retry.factor), 1, 10, "2.0"},
    {"destinations/retry", "max-delay-seconds", OT_INT, C(destinations.retry.max_delay_s), 1, 604800, "600"},
    {"destinations/retry", "max-attempts", OT_INT, C(destinations.retry.max_attempts), 1, 10000, "20"},

    {"spool", "directory", OT_STRING, C(spool.directory), 1, 4096, "/var/spool/cxrseg"},
    {"spool", "quota-mb", OT_LLONG, C(spool.quota_mb), 0, 1e9, "10240"},
    {"spool", "min-free-disk-mb", OT_LLONG, C(spool.min_free_disk_mb), 0, 1e9, "1024"},
    {"spool", "max-queued-items", OT_INT, C(spool.max_queued_items), 1, 1000000, "10000"},
    {"spool", "keep-sent-days", OT_INT, C(spool.keep_sent_days), 0, 3650, "7"},
    {"spool", "keep-failed-days", OT_INT, C(spool.keep_failed_days), 0, 3650, "30"},

    {"workers", "count", OT_INT, C(workers.count), 1, 64, "2"},
    {"workers", "threads-per-worker", OT_INT, C(workers.threads_per_worker), 1, 64, "1"},
    {"workers", "job-timeout-seconds", OT_INT, C(workers.job_timeout_s), 1, 86400, "120"},

    {"model", "file", OT_STRING, C(model.file), 1, 4096, NULL},

    {"outputs", "uid-root", OT_STRING, C(outputs.uid_root), 1, 64, "2.25"},
    {"outputs/segmentation", "enabled", OT_BOOL, C(outputs.seg.enabled), 0, 0, "true"},
    {"outputs/segmentation", "write-when-nothing-found", OT_BOOL, C(outputs.seg_when_nothing_found), 0, 0,
     "true"},
    {"outputs/segmentation", "encoding", OT_SEG_ENCODING, C(outputs.seg_encoding), 0, 0, "fractional"},
    {"outputs/segmentation", "compression", OT_SEG_COMPRESSION, C(outputs.seg_compression), 0, 0, "rle"},
    {"outputs/segmentation", "series-number", OT_INT, C(outputs.seg.series_number), 1, INT_MAX, "9901"},
    {"outputs/segmentation", "series-description", OT_STRING, C(outputs.seg.series_description), 1, 64,
     "CXRSEG Segmentation"},
    {"outputs/structured-report", "enabled", OT_BOOL, C(outputs.sr.enabled), 0, 0, "true"},
    {"outputs/structured-report", "series-number", OT_INT, C(outputs.sr.series_number), 1, INT_MAX, "9902"},
    {"outputs/structured-report", "series-description", OT_STRING, C(outputs.sr.series_description), 1, 64,
     "CXRSEG Report"},
    {"outputs/presentation-state", "enabled", OT_BOOL, C(outputs.gsps.enabled), 0, 0, "false"},
    {"outputs/presentation-state", "series-number", OT_INT, C(outputs.gsps.series_number), 1, INT_MAX,
     "9903"},
    {"outputs/presentation-state", "series-description", OT_STRING, C(outputs.gsps.series_description), 1,
     64, "CXRSEG Annotations"},
    {"outputs/secondary-capture", "enabled", OT_BOOL, C(outputs.sc.enabled), 0, 0, "false"},
    {"outputs/secondary-capture", "series-number", OT_INT, C(outputs.sc.series_number), 1, INT_MAX, "9904"},
    {"outputs/secondary-capture", "series-description", OT_STRING, C(outputs.sc.series_description), 1, 64,
     "CXRSEG Overlay (not for diagnosis)"},
    {"outputs", "manufacturer", OT_STRING, C(outputs.manufacturer), 1, 64, "cxrseg project"},
    {"outputs", "manufacturer-model-name", OT_STRING, C(outputs.model_name), 1, 64, "cxrseg"},

    {"logging", "level", OT_LEVEL, C(logging.level), 0, 0, "info"},
    {"logging", "write-to", OT_STRING, C(logging.file), 1, 4096, "stderr"},
    {"logging", "audit-to", OT_STRING, C(logging.audit_file), 1, 4096, "none"},
    {"http", "enabled", OT_BOOL, C(http.enabled), 0, 0, "false"},
    {"http", "bind-address", OT_STRING, C(http.bind_address), 1, 253, "127.0.0.1"},
    {"http", "port", OT_INT, C(http.port), 1, 65535, "9110"},
    {"http", "destination-failing-seconds", OT_INT, C(http.destination_failing_s), 10, 86400, "600"},

    {"orthanc", "enabled", OT_BOOL, C(orthanc.enabled), 0, 0, "true"},
    {"orthanc", "workers", OT_INT, C(orthanc.workers), 1, 64, "1"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

void cx_config_errors_clear(cx_config_errors *errs)
{
    if (errs) {
        errs->count = 0;
        errs->dropped = 0;
    }
}

static void errs_addv(cx_config_errors *errs, const char *file, int line, const char *fmt, va_list ap)
{
    if (!errs)
        return;
    if (errs->count >= CX_CONFIG_MAX_ERRORS) {
        errs->dropped++;
        return;
    }
    cx_config_error_entry *e = &errs->items[errs->count++];
    int n;
    e->line = line > 0 ? line : 0;
    if (line > 0)
        n = snprintf(e->text, sizeof e->text, "%s:%d: ", file, line);
    else
        n = snprintf(e->text, sizeof e->text, "%s: ", file);
    if (n < 0 || (size_t)n >= sizeof e->text)
        n = 0;
    vsnprintf(e->text + n, sizeof e->text - (size_t)n, fmt, ap);
}

static void errs_add(cx_config_errors *errs, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void errs_add(cx_config_errors *errs, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errs_addv(errs, file, line, fmt, ap);
    va_end(ap);
}


void ld_err(ld *l, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ld_err(ld *l, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errs_addv(l->errs, l->file, line, fmt, ap);
    va_end(ap);
    l->nerr++;
}

void ld_warn(ld *l, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int cfg_strings_add(ld *l, cx_config_strings *s, const char *v);
void ld_warn(ld *l, int line, const char *fmt, ...)
{
    char msg[600];
    int n = line > 0 ? snprintf(msg, sizeof msg, "%s:%d: warning: ", l->file, line)
                     : snprintf(msg, sizeof msg, "%s: warning: ", l->file);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    cfg_strings_add(l, &l->cfg->warnings, msg);
}

static void ld_nomem(ld *l)
{
    if (!l->nomem)
        ld_err(l, 0, "config: out of memory while loading");
    l->nomem = 1;
}

char *ld_strdup(ld *l, const char *s)
{
    char *d = cx_strdup(s);
    if (!d)
        ld_nomem(l);
    return d;
}

/* ------------------------------------------------------------------------------------------ */
/* libxml2 error collection                                                                    */

/* Element names whose XSD pattern message is replaced by a sentence IT staff can act on. */
static const struct { const char *element, *hint; } pattern_hints[] = {
    {"ae-title", "is not a valid AE title: 1 to 16 characters, no backslash, no leading or trailing space"},
    {"calling-ae-title",
     "is not a valid AE title: 1 to 16 characters, no backslash, no leading or trailing space"},
    {"accept", "is not a DICOM code string: 1 to 16 characters A-Z, 0-9, space or _ (upper case)"},
    {"host", "is not a host name or address (letters, digits, '.', ':', '-'; networks as address/prefix)"},
    {"bind-address", "is not an IP address"},
    {"include", "is not a valid pattern: 1 to 64 characters, no backslash or control characters"},
    {"exclude", "is not a valid pattern: 1 to 64 characters, no backslash or control characters"},
    {"series-description", "is too long or has a backslash or control character (DICOM LO: 1 to 64)"},
    {"manufacturer", "is too long or has a backslash or control character (DICOM LO: 1 to 64)"},
    {"manufacturer-model-name", "is too long or has a backslash or control character (DICOM LO: 1 to 64)"},
    {"name", "is not a valid name: 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"},
    {"send-results-to", "is not a valid destination name: 1 to 63 letters, digits, '_', '.' or '-', starting "
                        "with a letter or digit"},
};

static void xml_error_cb(void *user, xmlErrorPtr e)
{
    ld *l = user;
    if (!e || e->level == XML_ERR_WARNING)
        return;
    /* After the first well-formedness error the parser's further complaints are consequences of
     * it (every enclosing tag "mismatches"): report the cause only, like a compiler's first error. */
    if (e->domain == XML_FROM_PARSER && l->parse_errors++ > 0)
        return;
    /* A bad item in a list ("seg pdf") gives the item's error and then the same problem again
     * for the whole list: keep the first. */
    if (e->domain == XML_FROM_SCHEMASV && e->line == l->last_schema_line && e->message &&
        strstr(e->message, "is not a valid value of the list type"))
        return;
    if (e->domain == XML_FROM_SCHEMASV)
        l->last_schema_line = e->line;
    char msg[560];
    snprintf(msg, sizeof msg, "%s", e->message ? e->message : "unknown XML error");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = 0;
    /* "Element 'x': [facet 'pattern'] The value 'v' is not accepted by the pattern '...'." and the
     * same for attributes ("Element 'x', attribute 'name': ..."). */
    const char *facet = strstr(msg, "[facet 'pattern'] The value '");
    if (facet) {
        char elem[64] = "", value[300] = "";
        const char *a = strstr(msg, "attribute '");
        const char *s = a && a < facet ? a + 11 : (strncmp(msg, "Element '", 9) == 0 ? msg + 9 : NULL);
        const char *v = facet + strlen("[facet 'pattern'] The value '");
        const char *ve = strstr(v, "' is not accepted");
        if (s && ve) {
            snprintf(elem, sizeof elem, "%.*s", (int)(strcspn(s, "'")), s);
            snprintf(value, sizeof value, "%.*s", (int)(ve - v), v);
            for (size_t i = 0; i < sizeof pattern_hints / sizeof pattern_hints[0]; i++)
                if (strcmp(elem, pattern_hints[i].element) == 0) {
                    char prefix[200];
                    snprintf(prefix, sizeof prefix, "%.*s", (int)(facet - msg), msg);
                    snprintf(msg, sizeof msg, "%s'%s' %s", prefix, value, pattern_hints[i].hint);
                    break;
                }
        }
    }
    const char *file = e->file ? e->file : l->file;
    errs_add(l->errs, file, e->line, "%s", msg);
    l->nerr++;
}

/* ------------------------------------------------------------------------------------------ */
/* Tree helpers                                                                                */

int cfg_is_elem(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

xmlNode *cfg_child(xmlNode *parent, const char *name)
{
    if (!parent)
        return NULL;
    for (xmlNode *c = parent->children; c; c = c->next)
        if (cfg_is_elem(c, name))
            return c;
    return NULL;
}

/* Follows a '/'-separated path of element names from `from`; NULL when any step is absent. */
xmlNode *cfg_find_path(xmlNode *from, const char *path)
{
    char step[64];
    xmlNode *n = from;
    while (n && *path) {
        size_t k = strcspn(path, "/");
        if (k >= sizeof step)
            return NULL;
        memcpy(step, path, k);
        step[k] = 0;
        n = cfg_child(n, step);
        path += k + (path[k] == '/');
    }
    return n;
}

int cfg_line_of(const xmlNode *n)
{
    long line = n ? xmlGetLineNo(n) : 0;
    return line > 0 && line < INT_MAX ? (int)line : 0;
}

/* Line of the element at `path` below the root, or of its nearest present ancestor. */
int cfg_line_at(ld *l, const char *path)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s", path);
    for (;;) {
        xmlNode *n = cfg_find_path(l->root, buf);
        if (n)
            return cfg_line_of(n);
        char *slash = strrchr(buf, '/');
        if (!slash)
            return cfg_line_of(l->root);
        *slash = 0;
    }
}

/* Trimmed text content of an element, copied into buf (NUL-terminated, truncated). */
void cfg_text_of(xmlNode *n, char *buf, size_t size)
{
    buf[0] = 0;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return;
    const char *s = (const char *)t;
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= size)
        len = size - 1;
    memcpy(buf, s, len);
    buf[len] = 0;
    xmlFree(t);
}

/* ------------------------------------------------------------------------------------------ */
/* Values                                                                                      */

static int parse_action(const char *s, int allow_process, cx_config_action *out)
{
    if (strcmp(s, "skip") == 0)
        *out = CX_ACTION_SKIP;
    else if (strcmp(s, "reject") == 0)
        *out = CX_ACTION_REJECT;
    else if (allow_process && strcmp(s, "process") == 0)
        *out = CX_ACTION_PROCESS;
    else
        return -1;
    return 0;
}

static int parse_outputs(const char *s, unsigned *out)
{
    unsigned bits = 0;
    while (*s) {
        while (isspace((unsigned char)*s))
            s++;
        size_t k = 0;
        while (s[k] && !isspace((unsigned char)s[k]))
            k++;
        if (!k)
            break;
        if (k == 3 && strncmp(s, "seg", 3) == 0)
            bits |= CX_OUTPUT_SEG;
        else if (k == 2 && strncmp(s, "sr", 2) == 0)
            bits |= CX_OUTPUT_SR;
        else if (k == 4 && strncmp(s, "gsps", 4) == 0)
            bits |= CX_OUTPUT_GSPS;
        else if (k == 2 && strncmp(s, "sc", 2) == 0)
            bits |= CX_OUTPUT_SC;
        else
            return -1;
        s += k;
    }
    if (!bits)
        return -1;
    *out = bits;
    return 0;
}

/* The index of text among names[0..n), or -1. */
static int keyword_index(const char *text, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

/* OT_INT, OT_LLONG and OT_DOUBLE: the whole text a number within the option's range. */
static int set_number(ld *l, const opt *o, char *field, const char *text, int line)
{
    char *end = NULL;
    errno = 0;
    if (o->type == OT_DOUBLE) {
        double v = strtod(text, &end);
        if (!*text || *end || errno) {
            ld_err(l, line, "%s/%s: '%s' is not a number", o->section, o->name, text);
            return -1;
        }
        if (v < o->min || v > o->max) {
            ld_err(l, line, "%s/%s: %g is out of range %g..%g", o->section, o->name, v, o->min, o->max);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno) {
        ld_err(l, line, "%s/%s: '%s' is not a whole number", o->section, o->name, text);
        return -1;
    }
    if ((double)v < o->min || (double)v > o->max) {
        ld_err(l, line, "%s/%s: %lld is out of range %.0f..%.0f", o->section, o->name, v, o->min, o->max);
        return -1;
    }
    if (o->type == OT_INT)
        *(int *)field = (int)v;
    else
        *(long long *)field = v;
    return 0;
}

/* The options spelled as one keyword of a fixed set: the index of the keyword, or -1 after saying
 * which ones are allowed. */
static int keyword_option(ld *l, const opt *o, const char *text, int line)
{
    static const char *const bools[] = {"false", "true", "0", "1"}, *const tls[] = {"require", "if-presented", "none"},
                             *const enc[] = {"fractional", "binary"}, *const comp[] = {"none", "rle"};
    const char *const *names = bools;
    int n = 4;
    const char *expect = "true or false";
    switch (o->type) {
    case OT_TLS_VERIFY: names = tls, n = 3, expect = "require, if-presented or none"; break;
    case OT_SEG_ENCODING: names = enc, n = 2, expect = "fractional or binary"; break;
    case OT_SEG_COMPRESSION: names = comp, n = 2, expect = "rle or none"; break;
    default: break;
    }
    int k = keyword_index(text, names, n);
    if (k < 0)
        ld_err(l, line, "%s/%s: '%s' is not %s", o->section, o->name, text, expect);
    return k;
}

/* Sets one option from text (the file's or the default). Returns 0, or -1 after an error. */
static int set_option(ld *l, const opt *o, void *base, const char *text, int line)
{
    char *field = (char *)base + o->offset;
    int k;
    switch (o->type) {
    case OT_INT:
    case OT_LLONG:
    case OT_DOUBLE:
        return set_number(l, o, field, text, line);
    case OT_STRING: {
        size_t len = strlen(text);
        if ((double)len < o->min || (double)len > o->max) {
            ld_err(l, line, "%s/%s: '%s' has %zu characters, allowed %.0f..%.0f", o->section, o->name, text,
                   len, o->min, o->max);
            return -1;
        }
        char *d = ld_strdup(l, text);
        if (!d)
            return -1;
        cx_free(*(char **)field);
        *(char **)field = d;
        return 0;
    }
    case OT_ACTION:
    case OT_EMPTY_ACTION:
        if (parse_action(text, o->type == OT_EMPTY_ACTION, (cx_config_action *)field) != 0) {
            ld_err(l, line, "%s/%s: '%s' is not %s", o->section, o->name, text,
                   o->type == OT_EMPTY_ACTION ? "process, skip or reject" : "skip or reject");
            return -1;
        }
        return 0;
    case OT_LEVEL:
        if (cx_log_level_parse(text, (cx_log_level *)field) != 0) {
            ld_err(l, line, "%s/%s: '%s' is not error, warn, info or debug", o->section, o->name, text);
            return -1;
        }
        return 0;
    case OT_OUTPUTS:
        if (parse_outputs(text, (unsigned *)field) != 0) {
            ld_err(l, line, "%s/%s: '%s' is not a list of seg, sr, gsps, sc", o->section, o->name, text);
            return -1;
        }
        return 0;
    case OT_BOOL:
        if ((k = keyword_option(l, o, text, line)) < 0)
            return -1;
        *(int *)field = k & 1;
        return 0;
    case OT_TLS_VERIFY: /* require, if-presented, none: the enum's order */
        if ((k = keyword_option(l, o, text, line)) < 0)
            return -1;
        *(cx_config_tls_verify *)field = (cx_config_tls_verify)k;
        return 0;
    case OT_SEG_ENCODING:
        if ((k = keyword_option(l, o, text, line)) < 0)
            return -1;
        *(cx_config_seg_encoding *)field = k ? CX_SEG_ENCODING_BINARY : CX_SEG_ENCODING_FRACTIONAL;
        return 0;
    case OT_SEG_COMPRESSION:
        if ((k = keyword_option(l, o, text, line)) < 0)
            return -1;
        *(cx_config_seg_compression *)field = k ? CX_SEG_COMPRESSION_RLE : CX_SEG_COMPRESSION_NONE;
        return 0;
    }
    return -1;
}

/* Fills every option of `section` from the element `node` (NULL: section absent, all defaults). */
static void apply_section(ld *l, const char *section, xmlNode *node, void *base)
{
    char text[4200];
    for (size_t i = 0; i < N_OPTIONS && !l->nomem; i++) {
        const opt *o = &options[i];
        if (strcmp(o->section, section) != 0)
            continue;
        xmlNode *e = cfg_child(node, o->name);
        if (e) {
            cfg_text_of(e, text, sizeof text);
            set_option(l, o, base, text, cfg_line_of(e));
        } else if (o->def) {
            set_option(l, o, base, o->def, cfg_line_of(node));
        }
    }
}

int cfg_strings_add(ld *l, cx_config_strings *s, const char *v)
{
    char *d = ld_strdup(l, v);
    if (!d)
        return -1;
    char **items = cx_realloc(s->items, (s->count + 1) * sizeof *items);
    if (!items) {
        cx_free(d);
        ld_nomem(l);
        return -1;
    }
    items[s->count++] = d;
    s->items = items;
    return 0;
}

/* Appends the text of every child element named `name` of `parent` to `s`. */
static void collect(ld *l, xmlNode *parent, const char *name, cx_config_strings *s)
{
    char text[4200];
    if (!parent)
        return;
    for (xmlNode *c = parent->children; c && !l->nomem; c = c->next)
        if (cfg_is_elem(c, name)) {
            cfg_text_of(c, text, sizeof text);
            cfg_strings_add(l, s, text);
        }
}

static void strings_free(cx_config_strings *s)
{
    for (size_t i = 0; i < s->count; i++)
        cx_free(s->items[i]);
    cx_free(s->items);
    s->items = NULL;
    s->count = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Sections with lists or items                                                                */

static void fill_listener(ld *l)
{
    cx_config_listener *li = &l->cfg->listener;
    xmlNode *sec = cfg_child(l->root, "listener");
    apply_section(l, "listener", sec, l->cfg);
    xmlNode *tls = cfg_child(sec, "tls");
    apply_section(l, "listener/tls", tls, l->cfg);
    li->tls.line = cfg_line_of(tls ? tls : sec);
    xmlNode *ts = cfg_child(sec, "transfer-syntaxes");
    char text[200];
    if (ts) {
        for (xmlNode *c = ts->children; c && !l->nomem; c = c->next) {
            if (!cfg_is_elem(c, "transfer-syntax"))
                continue;
            cfg_text_of(c, text, sizeof text);
            const cx_config_syntax *sy = cx_config_syntaxes;
            while (sy->keyword && strcmp(sy->keyword, text) != 0)
                sy++;
            if (!sy->keyword)
                ld_err(l, cfg_line_of(c), "listener/transfer-syntax: '%s' is not a transfer syntax cxrseg decodes",
                       text);
            else
                cfg_strings_add(l, &li->transfer_syntaxes, sy->uid);
        }
    } else {
        for (const cx_config_syntax *sy = cx_config_syntaxes; sy->keyword && !l->nomem; sy++)
            cfg_strings_add(l, &li->transfer_syntaxes, sy->uid);
    }
    collect(l, cfg_child(sec, "allowed-calling-ae-titles"), "ae-title", &li->allowed_calling_ae_titles);
    collect(l, cfg_child(sec, "allowed-hosts"), "host", &li->allowed_hosts);
}

static void fill_rule(ld *l, const char *path, cx_config_value_rule *r, const char *const *defaults)
{
    xmlNode *node = cfg_find_path(l->root, path);
    apply_section(l, path, node, l->cfg);
    if (node)
        collect(l, node, "accept", &r->accept);
    else
        for (const char *const *d = defaults; *d && !l->nomem; d++)
            cfg_strings_add(l, &r->accept, *d);
}

static void fill_filters(ld *l)
{
    static const char *const modalities[] = {"CR", "DX", NULL};
    static const char *const body_parts[] = {"CHEST", NULL};
    static const char *const views[] = {"PA", "AP", NULL};
    cx_config_filters *f = &l->cfg->filters;
    fill_rule(l, "filters/modality", &f->modality, modalities);
    fill_rule(l, "filters/body-part", &f->body_part, body_parts);
    fill_rule(l, "filters/view-position", &f->view_position, views);
    apply_section(l, "filters/minimum-size", cfg_find_path(l->root, "filters/minimum-size"), l->cfg);
    xmlNode *sd = cfg_find_path(l->root, "filters/series-description");
    apply_section(l, "filters/series-description", sd, l->cfg);
    collect(l, sd, "include", &f->series_include);
    collect(l, sd, "exclude", &f->series_exclude);
}

static size_t count_children(xmlNode *parent, const char *name)
{
    size_t n = 0;
    if (parent)
        for (xmlNode *c = parent->children; c; c = c->next)
            n += cfg_is_elem(c, name);
    return n;
}

char *cfg_path_join(ld *l, const char *dir, const char *name);

static void fill_destinations(ld *l)
{
    cx_config_destinations *ds = &l->cfg->destinations;
    xmlNode *sec = cfg_child(l->root, "destinations");
    apply_section(l, "destinations/retry", cfg_child(sec, "retry"), l->cfg);

    size_t n = count_children(sec, "destination") + count_children(sec, "dicomweb-destination");
    if (n) {
        ds->items = cx_calloc(n, sizeof *ds->items);
        if (!ds->items) {
            ld_nomem(l);
            return;
        }
    }
    for (xmlNode *c = sec ? sec->children : NULL; c && !l->nomem; c = c->next) {
        int web = cfg_is_elem(c, "dicomweb-destination");
        if (!web && !cfg_is_elem(c, "destination"))
            continue;
        cx_config_destination *d = &ds->items[ds->count++];
        d->line = cfg_line_of(c);
        d->send_results = 1;
        xmlChar *name = xmlGetProp(c, (const xmlChar *)"name");
        d->name = ld_strdup(l, name ? (const char *)name : "");
        xmlFree(name);
        if (web) {
            d->kind = CX_DEST_STOW;
            apply_section(l, "destinations/dicomweb-destination", c, d);
            char **files[3] = {&d->bearer_token_file, &d->basic_auth_file, &d->http_ca_file};
            for (int i = 0; i < 3 && !l->nomem; i++)
                if (*files[i]) {
                    char *abs = cfg_path_join(l, l->cfg->dir, *files[i]);
                    cx_free(*files[i]);
                    *files[i] = abs;
                }
            continue;
        }
        apply_section(l, "destinations/destination", c, d);
        xmlNode *tls = cfg_child(c, "tls");
        apply_section(l, "destinations/destination/tls", tls, d);
        d->tls.line = tls ? cfg_line_of(tls) : d->line;
        if (!d->calling_ae_title && l->cfg->listener.ae_title)
            d->calling_ae_title = ld_strdup(l, l->cfg->listener.ae_title);
    }

    xmlNode *rts = cfg_child(sec, "return-to-sender");
    n = count_children(rts, "sender");
    if (n) {
        ds->senders = cx_calloc(n, sizeof *ds->senders);
        if (!ds->senders) {
            ld_nomem(l);
            return;
        }
    }
    for (xmlNode *c = rts ? rts->children : NULL; c && !l->nomem; c = c->next) {
        if (!cfg_is_elem(c, "sender"))
            continue;
        cx_config_sender *s = &ds->senders[ds->sender_count++];
        s->line = cfg_line_of(c);
        apply_section(l, "destinations/return-to-sender/sender", c, s);
        if (!s->ae_title && s->calling_ae_title)
            s->ae_title = ld_strdup(l, s->calling_ae_title);
    }
}

char *cfg_path_join(ld *l, const char *dir, const char *name)
{
    if (name[0] == '/')
        return ld_strdup(l, name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = cx_malloc(n);
    if (!p) {
        ld_nomem(l);
        return NULL;
    }
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void fill_model(ld *l)
{
    cx_config_model *m = &l->cfg->model;
    xmlNode *sec = cfg_child(l->root, "model");
    apply_section(l, "model", sec, l->cfg);
    if (l->nomem)
        return;
    if (m->file) {
        char *abs = cfg_path_join(l, l->cfg->dir, m->file);
        cx_free(m->file);
        m->file = abs;
    }
    size_t n = count_children(sec, "score-threshold");
    if (n) {
        m->thresholds = cx_calloc(n, sizeof *m->thresholds);
        if (!m->thresholds) {
            ld_nomem(l);
            return;
        }
    }
    char text[200];
    for (xmlNode *c = sec ? sec->children : NULL; c && !l->nomem; c = c->next) {
        if (!cfg_is_elem(c, "score-threshold"))
            continue;
        cx_config_threshold *t = &m->thresholds[m->threshold_count++];
        xmlChar *cls = xmlGetProp(c, (const xmlChar *)"class");
        t->class_name = ld_strdup(l, cls ? (const char *)cls : "");
        xmlFree(cls);
        cfg_text_of(c, text, sizeof text);
        char *end;
        t->score = strtod(text, &end);
        if (!*text || *end || t->score < 0 || t->score > 1)
            ld_err(l, cfg_line_of(c), "model/score-threshold: '%s' is not a score between 0 and 1", text);
    }
}

/* Looks for the shipped model when <model><file> is absent. */
void cfg_default_model(ld *l)
{
    cx_config_model *m = &l->cfg->model;
    if (m->file || l->nomem)
        return;
    char *candidates[2];
    candidates[0] = cfg_path_join(l, l->cfg->dir, "../models/" CX_CONFIG_DEFAULT_MODEL);
    candidates[1] = cfg_path_join(l, CX_DATADIR, "models/" CX_CONFIG_DEFAULT_MODEL);
    if (!candidates[0] || !candidates[1]) {
        cx_free(candidates[0]);
        cx_free(candidates[1]);
        return;
    }
    int pick = access(candidates[0], F_OK) == 0 ? 0 : access(candidates[1], F_OK) == 0 ? 1 : -1;
    if (pick < 0) {
        ld_err(l, cfg_line_at(l, "model"),
               "model: no <file> given, and the shipped model is neither %s nor %s; set <model><file>",
               candidates[0], candidates[1]);
    } else {
        m->file = candidates[pick];
        candidates[pick] = NULL;
    }
    cx_free(candidates[0]);
    cx_free(candidates[1]);
}

static void fill_outputs_logging_orthanc(ld *l)
{
    static const char *const paths[] = {"outputs", "outputs/segmentation", "outputs/structured-report",
                                        "outputs/presentation-state", "outputs/secondary-capture",
                                        "spool", "workers", "logging", "orthanc", "http"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        apply_section(l, paths[i], cfg_find_path(l->root, paths[i]), l->cfg);
    if (l->nomem)
        return;
    cx_config_logging *lg = &l->cfg->logging;
    if (lg->file && strcmp(lg->file, "stderr") == 0) {
        lg->target = CX_LOG_TO_STDERR;
    } else if (lg->file && strcmp(lg->file, "syslog") == 0) {
        lg->target = CX_LOG_TO_SYSLOG;
    } else if (lg->file) {
        lg->target = CX_LOG_TO_FILE;
    }
    if (lg->target != CX_LOG_TO_FILE) {
        cx_free(lg->file);
        lg->file = NULL;
    }
    if (lg->audit_file && strcmp(lg->audit_file, "none") == 0)
        lg->audit_target = CX_AUDIT_OFF;
    else if (lg->audit_file && strcmp(lg->audit_file, "syslog") == 0)
        lg->audit_target = CX_AUDIT_TO_SYSLOG;
    else if (lg->audit_file)
        lg->audit_target = CX_AUDIT_TO_FILE;
    if (lg->audit_target != CX_AUDIT_TO_FILE) {
        cx_free(lg->audit_file);
        lg->audit_file = NULL;
    }
    xmlNode *o = cfg_child(l->root, "orthanc");
    collect(l, o, "forward-to-modality", &l->cfg->orthanc.forward_to_modalities);
    collect(l, o, "forward-to-peer", &l->cfg->orthanc.forward_to_peers);
}

/* Freeing is driven by the option table: every OT_STRING row is a string the configuration owns,
 * relative to its base (the config, each destination, each sender). What the table does not hold
 * is listed here: the lists collect() fills and the strings set outside the table. */
static const size_t owned_lists[] = {
    offsetof(cx_config, listener.transfer_syntaxes),     offsetof(cx_config, listener.allowed_calling_ae_titles),
    offsetof(cx_config, listener.allowed_hosts),         offsetof(cx_config, filters.modality.accept),
    offsetof(cx_config, filters.body_part.accept),       offsetof(cx_config, filters.view_position.accept),
    offsetof(cx_config, filters.series_include),         offsetof(cx_config, filters.series_exclude),
    offsetof(cx_config, orthanc.forward_to_modalities),  offsetof(cx_config, orthanc.forward_to_peers),
    offsetof(cx_config, warnings),
};

static void free_table_strings(opt_base base, void *obj)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].type == OT_STRING && options[i].base == base)
            cx_free(*(char **)((char *)obj + options[i].offset));
}

void cx_config_free(cx_config *cfg)
{
    if (!cfg)
        return;
    free_table_strings(OB_CONFIG, cfg);
    for (size_t i = 0; i < sizeof owned_lists / sizeof owned_lists[0]; i++)
        strings_free((cx_config_strings *)((char *)cfg + owned_lists[i]));
    for (size_t i = 0; i < cfg->destinations.count; i++) {
        free_table_strings(OB_DESTINATION, &cfg->destinations.items[i]);
        cx_free(cfg->destinations.items[i].name); /* the name="" attribute, not an element */
    }
    cx_free(cfg->destinations.items);
    for (size_t i = 0; i < cfg->destinations.sender_count; i++)
        free_table_strings(OB_SENDER, &cfg->destinations.senders[i]);
    cx_free(cfg->destinations.senders);
    for (size_t i = 0; i < cfg->model.threshold_count; i++)
        cx_free(cfg->model.thresholds[i].class_name);
    cx_free(cfg->model.thresholds);
    cx_free(cfg->path);
    cx_free(cfg->dir);
    cx_free(cfg);
}

/* Reads the whole file into a cx_malloc'ed buffer. */
static cx_status read_file(ld *l, const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ld_err(l, 0, "cannot open: %s", strerror(errno));
        return CX_ERR_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        ld_err(l, 0, "not a regular file");
        return CX_ERR_IO;
    }
    if ((unsigned long long)st.st_size > CONF_MAX_BYTES) {
        fclose(f);
        ld_err(l, 0, "file is %lld bytes, a configuration file is at most %u", (long long)st.st_size,
               CONF_MAX_BYTES);
        return CX_ERR_CONFIG;
    }
    size_t n = (size_t)st.st_size;
    char *b = cx_malloc(n + 1);
    if (!b) {
        fclose(f);
        ld_nomem(l);
        return CX_ERR_NOMEM;
    }
    size_t got = fread(b, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != n || rerr) {
        cx_free(b);
        ld_err(l, 0, "read error (%zu of %zu bytes)", got, n);
        return CX_ERR_IO;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return CX_OK;
}

/* The XSD to use: explicit, $CXRSEG_XSD, installed, next to the conf file. */
static char *find_xsd(ld *l, const char *xsd_path, const char *conf_dir)
{
    if (xsd_path)
        return ld_strdup(l, xsd_path);
    const char *env = getenv("CXRSEG_XSD");
    if (env && *env)
        return ld_strdup(l, env);
    char *p = cfg_path_join(l, CX_DATADIR, "cxrseg.xsd");
    if (!p || access(p, R_OK) == 0)
        return p;
    cx_free(p);
    p = cfg_path_join(l, conf_dir, "cxrseg.xsd");
    if (!p || access(p, R_OK) == 0)
        return p;
    ld_err(l, 0, "schema cxrseg.xsd not found in %s nor in %s (set CXRSEG_XSD)", CX_DATADIR, conf_dir);
    cx_free(p);
    return NULL;
}

/* Absolute folder of `path`. */
static char *dir_of(ld *l, const char *path)
{
    const char *slash = strrchr(path, '/');
    char rel[4096];
    if (!slash)
        snprintf(rel, sizeof rel, ".");
    else if (slash == path)
        snprintf(rel, sizeof rel, "/");
    else
        snprintf(rel, sizeof rel, "%.*s", (int)(slash - path), path);
    char *real = realpath(rel, NULL);
    if (!real) {
        if (errno == ENOMEM)
            ld_nomem(l);
        else
            ld_err(l, 0, "cannot resolve folder %s: %s", rel, strerror(errno));
        return NULL;
    }
    char *d = ld_strdup(l, real);
    free(real); /* realpath allocates with libc malloc */
    return d;
}

static int validate(ld *l, xmlDocPtr doc, const char *xsd)
{
    int ok = 0;
    xmlSchemaParserCtxtPtr pctx = xmlSchemaNewParserCtxt(xsd);
    xmlSchemaPtr schema = NULL;
    xmlSchemaValidCtxtPtr vctx = NULL;
    if (access(xsd, R_OK) != 0) {
        ld_err(l, 0, "cannot read the schema %s: %s", xsd, strerror(errno));
        goto out;
    }
    if (!pctx) {
        ld_err(l, 0, "cannot read the schema %s", xsd);
        goto out;
    }
    xmlSchemaSetParserStructuredErrors(pctx, xml_error_cb, l);
    schema = xmlSchemaParse(pctx);
    if (!schema) {
        ld_err(l, 0, "the schema %s is not usable", xsd);
        goto out;
    }
    vctx = xmlSchemaNewValidCtxt(schema);
    if (!vctx) {
        ld_nomem(l);
        goto out;
    }
    xmlSchemaSetValidStructuredErrors(vctx, xml_error_cb, l);
    size_t before = l->nerr;
    int rc = xmlSchemaValidateDoc(vctx, doc);
    if (rc != 0 && l->nerr == before)
        ld_err(l, 0, "schema validation failed (libxml2 code %d)", rc);
    ok = rc == 0;
out:
    xmlSchemaFreeValidCtxt(vctx);
    xmlSchemaFree(schema);
    xmlSchemaFreeParserCtxt(pctx);
    return ok;
}

/* The line of buf's <!DOCTYPE (libxml2 keeps no line for the DTD node), comments skipped. */
static int doctype_line(const char *buf)
{
    int line = 1;
    for (const char *c = buf; *c && strncmp(c, "<!DOCTYPE", 9) != 0; c++) {
        if (strncmp(c, "<!--", 4) == 0) { /* a comment may mention DOCTYPE */
            const char *end = strstr(c + 4, "-->");
            for (; *c && c != end; c++)
                line += *c == '\n';
            if (!*c)
                break;
        }
        line += *c == '\n';
    }
    return line;
}

/* Parses buf and validates it against xsd; the document (NULL when not well-formed) in *doc.
 * Returns 1 when it is valid. libxml2 keeps its error handler per thread: ours is installed for
 * parse and validation (it also catches messages the schema code sends to the generic handler)
 * and the previous one restored after. */
static int parse_and_validate(ld *l, const char *buf, size_t len, const char *xsd, xmlDocPtr *doc)
{
    int valid = 0;
    xmlStructuredErrorFunc old_fn = xmlStructuredError;
    void *old_ctx = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(l, xml_error_cb);
    *doc = xmlReadMemory(buf, (int)len, l->file, NULL, XML_PARSE_NONET | XML_PARSE_BIG_LINES);
    if (!*doc) {
        if (l->nerr == 0)
            ld_err(l, 0, "not a well-formed XML file");
    } else if ((*doc)->intSubset || (*doc)->extSubset) {
        /* A DTD can declare entities (billion laughs, external files): configuration has no use
         * for one, so refuse it rather than reason about what libxml2 would expand. */
        ld_err(l, doctype_line(buf), "a <!DOCTYPE> declaration is not allowed in a configuration file");
    } else {
        l->root = xmlDocGetRootElement(*doc);
        valid = validate(l, *doc, xsd);
    }
    xmlSetStructuredErrorFunc(old_ctx, old_fn);
    return valid;
}

cx_status cx_config_load(const char *path, const char *xsd_path, cx_config **out, cx_config_errors *errs)
{
    ld l = {0};
    l.file = path ? path : "(null)";
    l.errs = errs;
    if (!path || !out) {
        ld_err(&l, 0, "config: no file given");
        return CX_ERR_INVALID;
    }

    /* Idempotent; libxml2 wants it before use from several threads (node reload, plugin). */
    xmlInitParser();
    char *buf = NULL, *xsd = NULL;
    size_t len = 0;
    xmlDocPtr doc = NULL;
    cx_status st = read_file(&l, path, &buf, &len);
    if (st != CX_OK)
        return st;

    cx_config *cfg = cx_calloc(1, sizeof *cfg);
    if (!cfg) {
        ld_nomem(&l);
        cx_free(buf);
        return CX_ERR_NOMEM;
    }
    l.cfg = cfg;
    cfg->path = ld_strdup(&l, path);
    cfg->dir = cfg->path ? dir_of(&l, path) : NULL;
    if (!cfg->dir)
        goto done;
    xsd = find_xsd(&l, xsd_path, cfg->dir);
    if (!xsd)
        goto done;
    if (len > INT_MAX) /* cannot happen below CONF_MAX_BYTES; xmlReadMemory takes an int */
        goto done;
    if (strspn(buf, " \t\r\n") == len) {
        ld_err(&l, 0, "the file is empty");
        goto done;
    }

    if (!parse_and_validate(&l, buf, len, xsd, &doc))
        goto done;

    fill_listener(&l);
    fill_filters(&l);
    fill_destinations(&l);
    fill_model(&l);
    fill_outputs_logging_orthanc(&l);
    if (!l.nomem && l.nerr == 0)
        cfg_check_rules(&l);

done:
    xmlFreeDoc(doc);
    cx_free(buf);
    int have_xsd = xsd != NULL;
    cx_free(xsd);
    if (l.nomem) {
        cx_config_free(cfg);
        return CX_ERR_NOMEM;
    }
    if (l.nerr) {
        /* No folder or no schema: the file could not be checked at all. */
        cx_status code = (cfg->dir == NULL || !have_xsd) ? CX_ERR_IO : CX_ERR_CONFIG;
        cx_config_free(cfg);
        return code;
    }
    *out = cfg;
    return CX_OK;
}

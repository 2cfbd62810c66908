/* cx_config_rules.c: the configuration rules that involve several fields (destinations, TLS files,
 * hosts, UID root, model), each error at the line of the element it is about. */
#include "config.h"
#include "cx_config.h"
#include "cx_config_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
/* ------------------------------------------------------------------------------------------ */
/* Cross-field rules                                                                           */

/* A UID root: components of digits without leading zeros, separated by single dots, first
 * component 0, 1 or 2, at most 40 characters so that root + "." + 23 digits fits in 64. */
static int check_uid_root(const char *r, char *why, size_t why_size)
{
    size_t len = strlen(r);
    if (len > 40) {
        snprintf(why, why_size, "is %zu characters long, at most 40 leave room for the derived part", len);
        return -1;
    }
    int comp = 1;
    const char *s = r;
    while (1) {
        size_t k = strspn(s, "0123456789");
        if (k == 0) {
            snprintf(why, why_size, "component %d is %s (only digits separated by single dots)", comp,
                     *s && *s != '.' ? "not a number" : "empty");
            return -1;
        }
        if (k > 1 && s[0] == '0') {
            snprintf(why, why_size, "component %d '%.*s' has a leading zero", comp, (int)k, s);
            return -1;
        }
        if (comp == 1 && (k != 1 || s[0] > '2')) {
            snprintf(why, why_size, "the first component must be 0, 1 or 2");
            return -1;
        }
        s += k;
        if (!*s)
            return 0;
        if (*s != '.') {
            snprintf(why, why_size, "character '%c' is not a digit or a dot", *s);
            return -1;
        }
        s++;
        comp++;
    }
}

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static void check_hosts(ld *l)
{
    const cx_config_listener *li = &l->cfg->listener;
    if (li->bind_address && !is_ip(li->bind_address))
        ld_err(l, cfg_line_at(l, "listener/bind-address"),
               "listener/bind-address: '%s' is not an IPv4 or IPv6 address (use 0.0.0.0 for every network card)",
               li->bind_address);
    xmlNode *ah = cfg_find_path(l->root, "listener/allowed-hosts");
    size_t i = 0;
    for (xmlNode *c = ah ? ah->children : NULL; c && i < li->allowed_hosts.count; c = c->next) {
        if (!cfg_is_elem(c, "host"))
            continue;
        const char *h = li->allowed_hosts.items[i++];
        const char *slash = strchr(h, '/');
        if (!slash)
            continue;
        char addr[256];
        snprintf(addr, sizeof addr, "%.*s", (int)(slash - h), h);
        unsigned char buf[16];
        int max = inet_pton(AF_INET, addr, buf) == 1 ? 32 : inet_pton(AF_INET6, addr, buf) == 1 ? 128 : -1;
        long prefix = strtol(slash + 1, NULL, 10);
        if (max < 0)
            ld_err(l, cfg_line_of(c), "listener/allowed-hosts: '%s': a network needs an IP address before the '/'", h);
        else if (prefix > max)
            ld_err(l, cfg_line_of(c), "listener/allowed-hosts: '%s': prefix length %ld is larger than %d", h, prefix,
                   max);
    }
}

static int is_local_host(const char *h)
{
    return strcmp(h, "127.0.0.1") == 0 || strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0;
}

/* TLS settings of the listener (server 1) or of a destination: the rule, and files that exist,
 * are readable and are relative to the configuration's folder when not absolute. The PEM content
 * itself is checked when the node sets up TLS (a bad certificate stops it at start). */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0; /* an encrypted key is refused, never asked for on a terminal */
}

/* What the files hold: a PEM certificate that has not expired, the unencrypted PEM key that
 * belongs to it, at least one PEM certificate in the CA file. Read with libcrypto, so a wrong
 * file is a file:line error at start, not a failed handshake later. */
static void check_tls_files(ld *l, const cx_config_tls *t, const char *what)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    FILE *f;
    if (t->certificate_file && (f = fopen(t->certificate_file, "r"))) {
        cert = PEM_read_X509(f, NULL, no_password, NULL);
        fclose(f);
        if (!cert)
            ld_err(l, t->line, "%s/tls/certificate-file: %s: not a PEM certificate", what, t->certificate_file);
        else if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
            ld_err(l, t->line, "%s/tls/certificate-file: %s: the certificate has expired", what, t->certificate_file);
    }
    if (t->private_key_file && (f = fopen(t->private_key_file, "r"))) {
        key = PEM_read_PrivateKey(f, NULL, no_password, NULL);
        fclose(f);
        if (!key)
            ld_err(l, t->line, "%s/tls/private-key-file: %s: not an unencrypted PEM private key", what,
                   t->private_key_file);
    }
    if (cert && key && X509_check_private_key(cert, key) != 1)
        ld_err(l, t->line, "%s/tls: private key %s does not belong to certificate %s", what, t->private_key_file,
               t->certificate_file);
    X509_free(cert);
    EVP_PKEY_free(key);
    if (t->ca_file && (f = fopen(t->ca_file, "r"))) {
        X509 *ca = PEM_read_X509(f, NULL, no_password, NULL);
        fclose(f);
        if (!ca)
            ld_err(l, t->line, "%s/tls/ca-file: %s: no PEM certificate in it", what, t->ca_file);
        X509_free(ca);
    }
}

static void check_tls(ld *l, cx_config_tls *t, const char *what, int server)
{
    char **files[3] = {&t->certificate_file, &t->private_key_file, &t->ca_file};
    static const char *const names[3] = {"certificate-file", "private-key-file", "ca-file"};
    for (int i = 0; i < 3; i++)
        if (*files[i]) {
            char *abs = cfg_path_join(l, l->cfg->dir, *files[i]);
            if (!abs)
                return;
            cx_free(*files[i]);
            *files[i] = abs;
        }
    if (!t->enabled)
        return;
    static const char *const rule[] = {"require", "if-presented", "none"};
    const char *v = rule[t->verify_peer];
    if (server && !t->certificate_file)
        ld_err(l, t->line, "%s/tls: a TLS listener needs certificate-file and private-key-file", what);
    if (!t->certificate_file != !t->private_key_file)
        ld_err(l, t->line, "%s/tls: certificate-file and private-key-file go together", what);
    if (!t->ca_file && t->verify_peer != CX_TLS_VERIFY_NONE)
        ld_err(l, t->line, "%s/tls: ca-file is needed to verify the peer (verify-peer %s)", what, v);
    for (int i = 0; i < 3; i++)
        if (*files[i] && access(*files[i], R_OK) != 0)
            ld_err(l, t->line, "%s/tls/%s: %s: %s", what, names[i], *files[i], strerror(errno));
    check_tls_files(l, t, what);
}

static void check_stow(ld *l, const cx_config_destination *d)
{
    if (strncmp(d->url, "http://", 7) != 0 && strncmp(d->url, "https://", 8) != 0)
        ld_err(l, d->line, "destinations/dicomweb-destination '%s': url '%s' is not http:// or https://", d->name,
               d->url);
    if (d->bearer_token_file && d->basic_auth_file)
        ld_err(l, d->line, "destinations/dicomweb-destination '%s': bearer-token-file or basic-auth-file, not both",
               d->name);
    const char *files[3] = {d->bearer_token_file, d->basic_auth_file, d->http_ca_file};
    static const char *const names[3] = {"bearer-token-file", "basic-auth-file", "ca-file"};
    for (int i = 0; i < 3; i++)
        if (files[i] && access(files[i], R_OK) != 0)
            ld_err(l, d->line, "destinations/dicomweb-destination '%s'/%s: %s: %s", d->name, names[i], files[i],
                   strerror(errno));
}

static void check_destinations(ld *l)
{
    cx_config *cfg = l->cfg;
    cx_config_destinations *ds = &cfg->destinations;
    unsigned enabled = (cfg->outputs.seg.enabled ? CX_OUTPUT_SEG : 0) | (cfg->outputs.sr.enabled ? CX_OUTPUT_SR : 0) |
                       (cfg->outputs.gsps.enabled ? CX_OUTPUT_GSPS : 0) | (cfg->outputs.sc.enabled ? CX_OUTPUT_SC : 0);
    static const struct { unsigned bit; const char *name, *element; } outs[] = {
        {CX_OUTPUT_SEG, "seg", "segmentation"}, {CX_OUTPUT_SR, "sr", "structured-report"},
        {CX_OUTPUT_GSPS, "gsps", "presentation-state"}, {CX_OUTPUT_SC, "sc", "secondary-capture"}};

    xmlNode *sec = cfg_child(l->root, "destinations");
    xmlNode *dn = sec ? sec->children : NULL;
    for (size_t i = 0; i < ds->count; i++) {
        cx_config_destination *d = &ds->items[i];
        while (dn && !cfg_is_elem(dn, "destination") && !cfg_is_elem(dn, "dicomweb-destination"))
            dn = dn->next;
        for (size_t j = 0; j < i; j++)
            if (strcmp(ds->items[j].name, d->name) == 0) {
                ld_err(l, d->line, "destinations: the name '%s' is already used by the destination on line %d",
                       d->name, ds->items[j].line);
                break;
            }
        /* The node keeps return-to-sender results in spool folders named "return-<AE title>". */
        if (strncmp(d->name, "return-", 7) == 0)
            ld_err(l, d->line, "destinations: the name '%s' is reserved (names starting with 'return-' are used "
                   "for return-to-sender)", d->name);
        /* Outputs named explicitly but switched off are a contradiction; the default (all) is not. */
        xmlNode *on = cfg_child(dn, "outputs");
        for (size_t k = 0; on && k < 4; k++)
            if ((d->outputs & outs[k].bit) && !(enabled & outs[k].bit))
                ld_err(l, cfg_line_of(on), "destinations: destination '%s' asks for %s, but outputs/%s is not enabled",
                       d->name, outs[k].name, outs[k].element);
        d->outputs &= enabled;
        char what[96];
        if (d->kind == CX_DEST_STOW) {
            check_stow(l, d);
            if (dn)
                dn = dn->next;
            continue;
        }
        snprintf(what, sizeof what, "destinations/destination '%.40s'", d->name);
        check_tls(l, &d->tls, what, 0);
        if (cfg->listener.ae_title && d->port == cfg->listener.port && is_local_host(d->host) &&
            strcmp(d->ae_title, cfg->listener.ae_title) == 0)
            ld_err(l, d->line, "destinations: destination '%s' is this node itself (%s@%s:%d): results would loop",
                   d->name, d->ae_title, d->host, d->port);
        if (dn)
            dn = dn->next;
    }

    /* <send-results-to>: names must exist; when present, only the named destinations get results. */
    int any = 0;
    for (xmlNode *c = sec ? sec->children : NULL; c; c = c->next) {
        if (!cfg_is_elem(c, "send-results-to"))
            continue;
        if (!any)
            for (size_t i = 0; i < ds->count; i++)
                ds->items[i].send_results = 0;
        any = 1;
        char name[200];
        cfg_text_of(c, name, sizeof name);
        size_t i = 0;
        while (i < ds->count && strcmp(ds->items[i].name, name) != 0)
            i++;
        if (i == ds->count)
            ld_err(l, cfg_line_of(c), "destinations/send-results-to: there is no destination named '%s'%s", name,
                   ds->count ? "" : " (no <destination> is defined)");
        else
            ds->items[i].send_results = 1;
    }

    xmlNode *rts = cfg_child(sec, "return-to-sender");
    xmlNode *sn = rts ? rts->children : NULL;
    for (size_t i = 0; i < ds->sender_count; i++) {
        cx_config_sender *s = &ds->senders[i];
        while (sn && !cfg_is_elem(sn, "sender"))
            sn = sn->next;
        for (size_t j = 0; j < i; j++)
            if (strcmp(ds->senders[j].calling_ae_title, s->calling_ae_title) == 0) {
                ld_err(l, s->line,
                       "destinations/return-to-sender: calling AE title '%s' is already mapped on line %d",
                       s->calling_ae_title, ds->senders[j].line);
                break;
            }
        xmlNode *on = cfg_child(sn, "outputs");
        for (size_t k = 0; on && k < 4; k++)
            if ((s->outputs & outs[k].bit) && !(enabled & outs[k].bit))
                ld_err(l, cfg_line_of(on),
                       "destinations/return-to-sender: sender '%s' asks for %s, but outputs/%s is not enabled",
                       s->calling_ae_title, outs[k].name, outs[k].element);
        s->outputs &= enabled;
        if (sn)
            sn = sn->next;
    }

    const cx_config_retry *r = &ds->retry;
    if (r->max_delay_s < r->initial_delay_s)
        ld_err(l, cfg_line_at(l, "destinations/retry/max-delay-seconds"),
               "destinations/retry: max-delay-seconds %d is smaller than initial-delay-seconds %d",
               r->max_delay_s, r->initial_delay_s);
}

static void check_spool_workers(ld *l)
{
    cx_config *cfg = l->cfg;
    if (cfg->spool.directory && cfg->spool.directory[0] != '/')
        ld_err(l, cfg_line_at(l, "spool/directory"),
               "spool/directory: '%s' is not an absolute path (it must start with /)", cfg->spool.directory);
    if (cfg->spool.quota_mb > 0 && cfg->spool.min_free_disk_mb > cfg->spool.quota_mb)
        ld_err(l, cfg_line_at(l, "spool/min-free-disk-mb"),
               "spool: min-free-disk-mb %lld is larger than quota-mb %lld", cfg->spool.min_free_disk_mb,
               cfg->spool.quota_mb);
    if (cfg->spool.quota_mb == 0)
        ld_err(l, cfg_line_at(l, "spool/quota-mb"), "spool/quota-mb: 0 leaves no room for a single image");

    long threads = (long)cfg->workers.count * cfg->workers.threads_per_worker;
    if (threads > 64)
        ld_err(l, cfg_line_at(l, "workers/threads-per-worker"),
               "workers: count %d x threads-per-worker %d = %ld threads, at most 64", cfg->workers.count,
               cfg->workers.threads_per_worker, threads);
}

/* The UID root, series numbers unique among the enabled result objects, at least one enabled. */
static void check_outputs(ld *l)
{
    cx_config *cfg = l->cfg;
    char why[200];
    if (cfg->outputs.uid_root && check_uid_root(cfg->outputs.uid_root, why, sizeof why) != 0)
        ld_err(l, cfg_line_at(l, "outputs/uid-root"), "outputs/uid-root: '%s' is not a valid UID root: %s",
               cfg->outputs.uid_root, why);

    const cx_config_series *series[4] = {&cfg->outputs.seg, &cfg->outputs.sr, &cfg->outputs.gsps,
                                         &cfg->outputs.sc};
    static const char *const series_el[4] = {"segmentation", "structured-report", "presentation-state",
                                             "secondary-capture"};
    int any = 0;
    for (int i = 0; i < 4; i++) {
        any |= series[i]->enabled;
        for (int j = 0; j < i; j++)
            if (series[i]->enabled && series[j]->enabled && series[i]->series_number == series[j]->series_number) {
                char p[80];
                snprintf(p, sizeof p, "outputs/%s/series-number", series_el[i]);
                ld_err(l, cfg_line_at(l, p), "outputs/%s: series number %d is already used by outputs/%s",
                       series_el[i], series[i]->series_number, series_el[j]);
            }
    }
    if (!any)
        ld_err(l, cfg_line_at(l, "outputs"), "outputs: every result object is switched off, nothing would be made");
}

static void check_logging_http(ld *l)
{
    cx_config *cfg = l->cfg;
    if (cfg->logging.target == CX_LOG_TO_FILE && cfg->logging.file[0] != '/')
        ld_err(l, cfg_line_at(l, "logging/write-to"),
               "logging/write-to: '%s' is not stderr, syslog or an absolute file path", cfg->logging.file);
    if (cfg->logging.audit_target == CX_AUDIT_TO_FILE && cfg->logging.audit_file[0] != '/')
        ld_err(l, cfg_line_at(l, "logging/audit-to"),
               "logging/audit-to: '%s' is not none, syslog or an absolute file path", cfg->logging.audit_file);
    if (!cfg->http.enabled)
        return;
    struct in_addr a4;
    if (inet_pton(AF_INET, cfg->http.bind_address, &a4) != 1)
        ld_err(l, cfg_line_at(l, "http/bind-address"), "http/bind-address: '%s' is not an IPv4 address",
               cfg->http.bind_address);
    else if (!is_local_host(cfg->http.bind_address))
        ld_warn(l, cfg_line_at(l, "http/bind-address"),
                "http: /metrics and /healthz on %s are readable by any machine that reaches port %d (no "
                "authentication; they name destinations and the model, never patients)",
                cfg->http.bind_address, cfg->http.port);
    if (cfg->http.port == cfg->listener.port)
        ld_err(l, cfg_line_at(l, "http/port"), "http/port: %d is the DICOM listener's port", cfg->http.port);
}

/* Valid, but worth a second look: an open listener, results that go nowhere. */
static void warn_open_or_idle(ld *l)
{
    cx_config *cfg = l->cfg;
    const cx_config_listener *li = &cfg->listener;
    if (li->bind_address && !is_local_host(li->bind_address) && li->allowed_calling_ae_titles.count == 0 &&
        li->allowed_hosts.count == 0)
        ld_warn(l, cfg_line_at(l, "listener/bind-address"),
                "listener: listening on %s with empty allowed-calling-ae-titles and allowed-hosts: any machine "
                "that reaches port %d can send images", li->bind_address, li->port);
    if (cfg->destinations.count == 0 && cfg->destinations.sender_count == 0)
        ld_warn(l, cfg_line_at(l, "destinations"),
                "destinations: none defined, the node makes results but sends them nowhere (fine for the "
                "Orthanc plugin, which stores them in Orthanc)");
    else if (cfg->destinations.sender_count == 0) {
        int any = 0;
        for (size_t i = 0; i < cfg->destinations.count; i++)
            any |= cfg->destinations.items[i].send_results && cfg->destinations.items[i].outputs;
        if (!any)
            ld_warn(l, cfg_line_at(l, "destinations"), "destinations: no destination receives any result");
    }
}

/* Each class's threshold given once; the model file (the default when none is given) a readable
 * regular file, kept as its real path. */
static void check_model(ld *l)
{
    cx_config *cfg = l->cfg;
    for (size_t i = 0; i < cfg->model.threshold_count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->model.thresholds[i].class_name, cfg->model.thresholds[j].class_name) == 0)
                ld_err(l, cfg_line_at(l, "model"), "model/score-threshold: class '%s' is given twice",
                       cfg->model.thresholds[i].class_name);
    cfg_default_model(l);
    if (!cfg->model.file)
        return;
    struct stat st;
    int line = cfg_line_at(l, "model/file");
    if (stat(cfg->model.file, &st) != 0)
        ld_err(l, line, "model/file: %s: %s", cfg->model.file, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        ld_err(l, line, "model/file: %s is not a regular file", cfg->model.file);
    else if (access(cfg->model.file, R_OK) != 0)
        ld_err(l, line, "model/file: %s is not readable: %s", cfg->model.file, strerror(errno));
    else {
        /* Logs and the SEG/SR provenance read better without "conf/../models". */
        char *real = realpath(cfg->model.file, NULL);
        char *copy = real ? ld_strdup(l, real) : NULL;
        free(real); /* realpath allocates with libc malloc */
        if (copy) {
            cx_free(cfg->model.file);
            cfg->model.file = copy;
        }
    }
}

void cfg_check_rules(ld *l)
{
    check_hosts(l);
    check_tls(l, &l->cfg->listener.tls, "listener", 1);
    check_destinations(l);
    check_spool_workers(l);
    check_outputs(l);
    check_logging_http(l);
    warn_open_or_idle(l);
    check_model(l);
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                     */

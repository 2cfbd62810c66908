/* node_config.c: maps the configuration (src/config) onto the parameters of the listener, the
 * spool and the sender threads, so the rest of the daemon never walks the XML-shaped struct. */
#include "node.h"

#include <stdio.h>
#include <string.h>

static void copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
}

static int tls_verify(cx_config_tls_verify v)
{
    return v == CX_TLS_VERIFY_NONE ? CXD_TLS_VERIFY_NONE
           : v == CX_TLS_VERIFY_IF_PRESENTED ? CXD_TLS_VERIFY_IF_PRESENTED : CXD_TLS_VERIFY_REQUIRE;
}

static void dest_tls(cx_node_dest *o, const cx_config_tls *t)
{
    o->tls = t->enabled;
    o->tls_verify = tls_verify(t->verify_peer);
    copy(o->tls_cert, sizeof o->tls_cert, t->certificate_file);
    copy(o->tls_key, sizeof o->tls_key, t->private_key_file);
    copy(o->tls_ca, sizeof o->tls_ca, t->ca_file);
}

void cx_node_return_name(const char *ae, char out[CX_SPOOL_NAME_MAX])
{
    /* AE titles may hold characters a folder name should not: keep [A-Za-z0-9_.-], map the rest. */
    char buf[CX_SPOOL_NAME_MAX];
    size_t k = 0;
    for (const char *p = "return-"; *p; p++)
        buf[k++] = *p;
    for (const char *p = ae ? ae : ""; *p && k < sizeof buf - 1; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                 c == '.';
        buf[k++] = ok ? c : '_';
    }
    buf[k] = 0;
    memcpy(out, buf, k + 1);
}

cx_status cx_node_dests(const cx_config *cfg, cx_node_dest **out, size_t *n, cx_error *err)
{
    const cx_config_destinations *ds = &cfg->destinations;
    size_t total = ds->count + ds->sender_count, k = 0;
    cx_node_dest *v = total ? cx_calloc(total, sizeof *v) : NULL;
    if (total && !v)
        return cx_error_set(err, CX_ERR_NOMEM, "node", "out of memory for %zu destinations", total);
    for (size_t i = 0; i < ds->count; i++) {
        const cx_config_destination *d = &ds->items[i];
        if (!d->send_results)
            continue;
        if (!cx_spool_dest_name_ok(d->name)) {
            cx_free(v);
            return cx_error_set(err, CX_ERR_CONFIG, "node",
                                "%s:%d: destination name \"%s\" must be 1-63 characters A-Z a-z 0-9 _ . - "
                                "(it names a spool folder)",
                                cfg->path, d->line, d->name);
        }
        cx_node_dest *o = &v[k++];
        copy(o->name, sizeof o->name, d->name);
        if (d->kind == CX_DEST_STOW) {
            o->stow = 1;
            o->outputs = d->outputs;
            o->http_timeout_s = d->http_timeout_s;
            copy(o->url, sizeof o->url, d->url);
            copy(o->bearer_token_file, sizeof o->bearer_token_file, d->bearer_token_file);
            copy(o->basic_auth_file, sizeof o->basic_auth_file, d->basic_auth_file);
            copy(o->tls_ca, sizeof o->tls_ca, d->http_ca_file);
            copy(o->peer, sizeof o->peer, d->url);
            continue;
        }
        copy(o->ae_title, sizeof o->ae_title, d->ae_title);
        copy(o->calling_ae, sizeof o->calling_ae, d->calling_ae_title ? d->calling_ae_title : cfg->listener.ae_title);
        copy(o->host, sizeof o->host, d->host);
        o->port = d->port;
        o->outputs = d->outputs;
        o->connect_timeout_s = d->connect_timeout_s;
        o->dimse_timeout_s = d->dimse_timeout_s;
        dest_tls(o, &d->tls);
        snprintf(o->peer, sizeof o->peer, "%s@%.255s:%d", o->ae_title, o->host, o->port);
    }
    for (size_t i = 0; i < ds->sender_count; i++) {
        const cx_config_sender *s = &ds->senders[i];
        cx_node_dest *o = &v[k++];
        cx_node_return_name(s->calling_ae_title, o->name);
        copy(o->ae_title, sizeof o->ae_title, s->ae_title ? s->ae_title : s->calling_ae_title);
        copy(o->calling_ae, sizeof o->calling_ae, cfg->listener.ae_title);
        copy(o->host, sizeof o->host, s->host);
        o->port = s->port;
        o->outputs = s->outputs;
        o->connect_timeout_s = 10;
        o->dimse_timeout_s = 60;
        copy(o->return_for_ae, sizeof o->return_for_ae, s->calling_ae_title);
        /* The sender reached us over the listener's TLS: its results go back the same way, with
         * the same certificate and trust. */
        dest_tls(o, &cfg->listener.tls);
        snprintf(o->peer, sizeof o->peer, "%s@%.255s:%d", o->ae_title, o->host, o->port);
    }
    *out = v;
    *n = k;
    return CX_OK;
}

void cx_node_listener_params(const cx_config *cfg, cxd_listener_params *p)
{
    const cx_config_listener *l = &cfg->listener;
    memset(p, 0, sizeof *p);
    p->ae_title = l->ae_title;
    p->bind_address = l->bind_address;
    p->port = l->port;
    p->max_pdu = (unsigned)l->max_pdu_bytes;
    p->acse_timeout_s = (unsigned)l->acse_timeout_s;
    p->dimse_timeout_s = (unsigned)l->dimse_timeout_s;
    p->max_associations = (unsigned)l->max_associations;
    p->max_per_host = (unsigned)l->max_per_host;
    p->transfer_syntaxes = (const char *const *)l->transfer_syntaxes.items;
    p->n_transfer_syntaxes = l->transfer_syntaxes.count;
    p->calling_aes = (const char *const *)l->allowed_calling_ae_titles.items;
    p->n_calling_aes = l->allowed_calling_ae_titles.count;
    p->hosts = (const char *const *)l->allowed_hosts.items;
    p->n_hosts = l->allowed_hosts.count;
    p->tls.enabled = l->tls.enabled;
    p->tls.certificate_file = l->tls.certificate_file;
    p->tls.private_key_file = l->tls.private_key_file;
    p->tls.ca_file = l->tls.ca_file;
    p->tls.verify_peer = tls_verify(l->tls.verify_peer);
}

void cx_node_listener_params_clear(cxd_listener_params *p)
{
    /* The arrays are borrowed from the configuration: nothing to free. */
    memset(p, 0, sizeof *p);
}

cx_spool_params cx_node_spool_params(const cx_config *cfg)
{
    cx_spool_params p = cx_spool_default_params();
    p.root = cfg->spool.directory;
    p.quota_bytes = cfg->spool.quota_mb > 0 ? (uint64_t)cfg->spool.quota_mb << 20 : 0;
    p.min_free_bytes = cfg->spool.min_free_disk_mb > 0 ? (uint64_t)cfg->spool.min_free_disk_mb << 20 : 0;
    p.max_queued = cfg->spool.max_queued_items > 0 ? (unsigned)cfg->spool.max_queued_items : 0;
    p.retention_done_s = 0;
    p.retention_sent_s = cfg->spool.keep_sent_days * 86400.0;
    p.retention_failed_s = cfg->spool.keep_failed_days * 86400.0;
    return p;
}

/* node_stow.c: results to a DICOMweb server by STOW-RS (PS3.18 10.5): one POST per batch, the
 * body multipart/related; type="application/dicom" with one part per file, over libcurl (HTTP,
 * TLS, authentication). The answer decides each file's fate: 200 stored; 202 stored except the
 * instances the server lists in its Failed SOP Sequence (0008,1198); 408, 429 and 5xx, or no
 * answer, are retried like an unreachable C-STORE peer; any other 4xx refuses the request itself
 * and is not retried (the caller moves the results to failed with the server's message).
 * GPL-3.0-or-later. */
#define _GNU_SOURCE
#include "node.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The first line of a file, without its line end ("" when unreadable). */
static int first_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    out[0] = 0;
    if (!fgets(out, (int)cap, f))
        out[0] = 0;
    fclose(f);
    out[strcspn(out, "\r\n")] = 0;
    return out[0] ? 0 : -1;
}

/* Appends one file as a body part; -1 when it cannot be read. */
static int add_part(FILE *body, const char *boundary, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fprintf(body, "--%s\r\nContent-Type: application/dicom\r\n\r\n", boundary);
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, k, body);
    int bad = ferror(f);
    fclose(f);
    fputs("\r\n", body);
    return bad ? -1 : 0;
}

/* SOP Instance UIDs of the answer's Failed SOP Sequence, marked 0xC000 in statuses. */
static void mark_failed(const char *answer, const cxd_object_info *info, size_t n, uint16_t *statuses)
{
    json_t *root = json_loads(answer, 0, NULL);
    json_t *seq = root ? json_object_get(json_object_get(root, "00081198"), "Value") : NULL;
    size_t i;
    json_t *item;
    json_array_foreach(seq, i, item) {
        json_t *v = json_object_get(json_object_get(item, "00081155"), "Value");
        const char *uid = json_string_value(json_array_get(v, 0));
        for (size_t k = 0; uid && k < n; k++)
            if (!strcmp(info[k].sop_instance_uid, uid))
                statuses[k] = 0xC000;
    }
    json_decref(root);
}

/* The multipart body of the request: one part per file (its header read into info[i] for the
 * answer), then the closing boundary. */
static cxd_status stow_body(const cx_node_dest *d, const char *const *paths, size_t n, cxd_object_info *info,
                            FILE *bf, const char *boundary, cxd_error *err)
{
    for (size_t i = 0; i < n; i++) {
        cxd_error pe = {0};
        if (cxd_object_peek(paths[i], &info[i], &pe) != CXD_OK || add_part(bf, boundary, paths[i]) != 0) {
            snprintf(err->msg, sizeof err->msg, "STOW-RS to %.160s: cannot read %.160s: %.160s", d->url, paths[i],
                     pe.msg[0] ? pe.msg : "read error");
            return CXD_ERR_MALFORMED;
        }
    }
    fprintf(bf, "--%s--\r\n", boundary);
    if (fflush(bf) != 0) {
        snprintf(err->msg, sizeof err->msg, "STOW-RS to %.200s: out of memory for the request", d->url);
        return CXD_ERR_NOMEM;
    }
    return CXD_OK;
}

/* The destination's credentials on the handle: a bearer token header or HTTP basic, each read from
 * the first line of its file into secret (the caller wipes it after the request). -1: not usable. */
static int stow_auth(CURL *c, const cx_node_dest *d, struct curl_slist **hdr, char *secret, size_t cap,
                     cxd_error *err)
{
    char line[1200];
    if (d->bearer_token_file[0]) {
        if (first_line(d->bearer_token_file, secret, cap) != 0) {
            snprintf(err->msg, sizeof err->msg, "STOW-RS to %.200s: no token in %.200s", d->url, d->bearer_token_file);
            return -1;
        }
        snprintf(line, sizeof line, "Authorization: Bearer %s", secret);
        *hdr = curl_slist_append(*hdr, line);
        memset(line, 0, sizeof line); /* the header list keeps its own copy */
    } else if (d->basic_auth_file[0]) {
        if (first_line(d->basic_auth_file, secret, cap) != 0 || !strchr(secret, ':')) {
            snprintf(err->msg, sizeof err->msg, "STOW-RS to %.200s: %.200s does not hold user:password", d->url,
                     d->basic_auth_file);
            return -1;
        }
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, secret);
    }
    return 0;
}

/* The rest of the handle: the POST of body, headers, timeouts, TLS, the answer into af. */
static void stow_setopt(CURL *c, const cx_node_dest *d, const char *body, size_t body_len, struct curl_slist *hdr,
                        FILE *af)
{
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(d->http_timeout_s > 0 ? d->http_timeout_s : 120));
    curl_easy_setopt(c, CURLOPT_WRITEDATA, af); /* libcurl's default writer: fwrite to this FILE */
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (d->tls_ca[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, d->tls_ca);
}

/* What the HTTP answer means for each file (see the file's header). */
static cxd_status stow_answer(const cx_node_dest *d, long code, const char *answer, const cxd_object_info *info,
                              size_t n, uint16_t *statuses, int *permanent, cxd_error *err)
{
    if (code == 200 || code == 202) {
        for (size_t i = 0; i < n; i++)
            statuses[i] = 0x0000;
        if (answer)
            mark_failed(answer, info, n, statuses);
        return CXD_OK;
    }
    /* The server's own words, on one line, for the log and the failed/ record. */
    char said[300] = "";
    if (answer) {
        snprintf(said, sizeof said, "%s", answer);
        for (char *p = said; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
    }
    snprintf(err->msg, sizeof err->msg, "STOW-RS to %.160s: HTTP %ld%s%.300s", d->url, code, said[0] ? ": " : "", said);
    *permanent = code >= 400 && code < 500 && code != 408 && code != 429;
    return CXD_ERR_NETWORK;
}

cxd_status cx_node_stow_send(const cx_node_dest *d, const char *const *paths, size_t n, uint16_t *statuses,
                             int *permanent, cxd_error *err)
{
    pthread_once(&g_once, init_curl);
    *permanent = 0;
    for (size_t i = 0; i < n; i++)
        statuses[i] = CXD_STATUS_NOT_SENT;
    cxd_object_info *info = cx_calloc(n ? n : 1, sizeof *info);
    char *body = NULL, *answer = NULL;
    size_t body_len = 0, answer_len = 0;
    FILE *bf = open_memstream(&body, &body_len), *af = open_memstream(&answer, &answer_len);
    cxd_status ret = CXD_ERR_NETWORK;
    CURL *c = NULL;
    struct curl_slist *hdr = NULL;
    if (!info || !bf || !af) {
        snprintf(err->msg, sizeof err->msg, "STOW-RS to %.200s: out of memory", d->url);
        ret = CXD_ERR_NOMEM;
        goto out;
    }
    char boundary[64], line[200], secret[1024];
    snprintf(boundary, sizeof boundary, "cxrseg-%08lx%08lx", (unsigned long)random(), (unsigned long)random());
    if ((ret = stow_body(d, paths, n, info, bf, boundary, err)) != CXD_OK)
        goto out;
    ret = CXD_ERR_NETWORK;
    snprintf(line, sizeof line, "Content-Type: multipart/related; type=\"application/dicom\"; boundary=%s", boundary);
    hdr = curl_slist_append(hdr, line);
    hdr = curl_slist_append(hdr, "Accept: application/dicom+json");
    c = curl_easy_init();
    if (!c || !hdr) {
        snprintf(err->msg, sizeof err->msg, "STOW-RS to %.200s: cannot set up libcurl", d->url);
        ret = CXD_ERR_INTERNAL;
        goto out;
    }
    if (stow_auth(c, d, &hdr, secret, sizeof secret, err) != 0)
        goto out;
    stow_setopt(c, d, body, body_len, hdr, af);
    CURLcode rc = curl_easy_perform(c);
    memset(secret, 0, sizeof secret);
    fflush(af);
    if (rc != CURLE_OK) {
        snprintf(err->msg, sizeof err->msg, "STOW-RS to %.200s: %s", d->url, curl_easy_strerror(rc));
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    ret = stow_answer(d, code, answer, info, n, statuses, permanent, err);
out:
    err->code = ret;
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    if (bf)
        fclose(bf);
    if (af)
        fclose(af);
    free(body);
    free(answer);
    cx_free(info);
    return ret;
}

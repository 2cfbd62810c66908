/* node_status.c: `cxrseg-node status -c FILE`: what is in the spool, per state and destination,
 * read from the folders themselves (works whether or not the daemon runs). */
#include "node.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void age(char *buf, size_t n, double s)
{
    if (s <= 0)
        snprintf(buf, n, "-");
    else if (s < 120)
        snprintf(buf, n, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, n, "%.0f min", s / 60);
    else
        snprintf(buf, n, "%.1f h", s / 3600);
}

/* The running node's counters, read from its /metrics (the numbers Prometheus sees). */
static void print_counters(const cx_config *cfg)
{
    if (!cfg->http.enabled) {
        printf("counters: <http> is off in this configuration (turn it on to see them here and in Prometheus)\n");
        return;
    }
    char url[300], *text = NULL;
    size_t len = 0;
    snprintf(url, sizeof url, "http://%s:%d/metrics", cfg->http.bind_address, cfg->http.port);
    FILE *f = open_memstream(&text, &len);
    CURL *c = f ? curl_easy_init() : NULL;
    CURLcode rc = CURLE_FAILED_INIT;
    long code = 0;
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, f); /* libcurl's default writer: fwrite to this FILE */
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
    }
    if (f)
        fclose(f);
    if (rc != CURLE_OK || code != 200) {
        printf("counters: %s not readable (%s): is the node running?\n", url,
               rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP error");
        free(text);
        return;
    }
    static const char *const shown[] = {"cxrseg_objects_total", "cxrseg_processing_total", "cxrseg_deliveries_total",
                                        "cxrseg_processing_seconds_sum", "cxrseg_processing_seconds_count"};
    printf("counters since the node started (%s)\n", url);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
            if (!strncmp(line, shown[i], strlen(shown[i])) && (line[strlen(shown[i])] == '{' ||
                                                                 line[strlen(shown[i])] == ' '))
                printf("  %s\n", line);
    free(text);
}

int cx_node_status_main(const char *conf_path)
{
    cx_config *cfg = NULL;
    cx_config_errors *errs = cx_calloc(1, sizeof *errs);
    if (!errs) {
        fprintf(stderr, "cxrseg-node: out of memory\n");
        return CX_NODE_EXIT_INTERNAL;
    }
    if (cx_config_load(conf_path, NULL, &cfg, errs) != CX_OK) {
        for (size_t i = 0; i < errs->count; i++)
            fprintf(stderr, "%s\n", errs->items[i].text);
        cx_free(errs);
        return CX_NODE_EXIT_CONFIG;
    }
    cx_free(errs);
    cx_spool_status st;
    cx_error err = {0};
    if (cx_spool_status_scan(cfg->spool.directory, &st, &err) != CX_OK) {
        fprintf(stderr, "cxrseg-node: %s\n", err.msg);
        cx_config_free(cfg);
        return CX_NODE_EXIT_SPOOL;
    }
    char a[32];
    age(a, sizeof a, st.oldest_incoming_s);
    printf("spool %s (%.1f MB)\n", cfg->spool.directory, (double)st.bytes / 1048576.0);
    printf("  waiting     %u   (oldest: %s)\n", st.incoming, a);
    printf("  processing  %u\n", st.processing);
    printf("  failed      %u\n", st.failed);
    printf("destination          outbox   sent  failed  oldest waiting\n");
    for (size_t i = 0; i < st.ndest; i++) {
        age(a, sizeof a, st.dest[i].oldest_s);
        printf("  %-18s %6u %6u %7u  %s\n", st.dest[i].name, st.dest[i].outbox, st.dest[i].sent, st.dest[i].failed, a);
    }
    if (!st.ndest)
        printf("  (none yet)\n");
    cx_spool_status_clear(&st);
    print_counters(cfg);
    cx_config_free(cfg);
    return CX_NODE_EXIT_OK;
}

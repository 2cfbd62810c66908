/* Unit tests for src/config: the shipped conf validates and gives the documented defaults, every
 * broken conf in tests/config/ gives exactly the `file:line: message` errors written in its header
 * (<!-- expect: LINE: substring -->), allocation failures give an error and no crash, and the
 * filter rules decide as documented. */
#include "config.h"
#include "cx_config.h"
#include "cx_test.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static cx_config_errors errs; /* 40 kB: keep it off the stack */

static const char *src_path(const char *rel)
{
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", cx_test_srcdir(), rel);
    return buf[k];
}

static void dump_errors(void)
{
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "    [%zu] %s\n", i, errs.items[i].text);
}

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    char buf[8192];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a)
        fclose(a);
    if (b && fclose(b) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* A scratch tree <tmp>/conf/ + <tmp>/models/cxrseg.cxm, so that the default model is found the
 * way it is in the source tree, whether or not the real model has been committed yet. */
static char scratch[256];
static const char *scratch_conf(const char *name)
{
    static char p[512];
    if (!scratch[0]) {
        snprintf(scratch, sizeof scratch, "/tmp/cx_test_config.XXXXXX");
        if (!mkdtemp(scratch))
            return NULL;
        char d[400];
        snprintf(d, sizeof d, "%s/conf", scratch);
        mkdir(d, 0755);
        snprintf(d, sizeof d, "%s/models", scratch);
        mkdir(d, 0755);
        snprintf(d, sizeof d, "%s/models/" CX_CONFIG_DEFAULT_MODEL, scratch);
        write_text(d, "placeholder: the config loader only checks that the model file is readable\n");
    }
    snprintf(p, sizeof p, "%s/conf/%s", scratch, name);
    return p;
}

static void cleanup_scratch(void)
{
    if (!scratch[0])
        return;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", scratch);
}

static cx_config *load_ok(const char *path)
{
    cx_config *cfg = NULL;
    cx_config_errors_clear(&errs);
    cx_status st = cx_config_load(path, src_path("conf/cxrseg.xsd"), &cfg, &errs);
    CU_ASSERT_EQUAL(st, CX_OK);
    CU_ASSERT_EQUAL(errs.count, 0);
    if (st != CX_OK)
        dump_errors();
    return cfg;
}

/* The documented defaults (cx_config.h, conf/cxrseg.xml comments, docs/configuration.md). */
static void check_defaults(const cx_config *c)
{
    CU_ASSERT_STRING_EQUAL(c->listener.ae_title, "CXRSEG");
    CU_ASSERT_STRING_EQUAL(c->listener.bind_address, "127.0.0.1");
    CU_ASSERT_EQUAL(c->listener.port, 11112);
    CU_ASSERT_EQUAL(c->listener.max_pdu_bytes, 65536);
    CU_ASSERT_EQUAL(c->listener.acse_timeout_s, 30);
    CU_ASSERT_EQUAL(c->listener.dimse_timeout_s, 60);
    CU_ASSERT_EQUAL(c->listener.idle_timeout_s, 300);
    CU_ASSERT_EQUAL(c->listener.max_associations, 16);
    CU_ASSERT_EQUAL(c->listener.transfer_syntaxes.count, 13);
    if (c->listener.transfer_syntaxes.count == 13) {
        CU_ASSERT_STRING_EQUAL(c->listener.transfer_syntaxes.items[0], "1.2.840.10008.1.2.1");
        CU_ASSERT_STRING_EQUAL(c->listener.transfer_syntaxes.items[2], "1.2.840.10008.1.2.4.90");
        CU_ASSERT_STRING_EQUAL(c->listener.transfer_syntaxes.items[9], "1.2.840.10008.1.2.4.91");
    }
    CU_ASSERT_EQUAL(c->listener.allowed_calling_ae_titles.count, 0);
    CU_ASSERT_EQUAL(c->listener.allowed_hosts.count, 0);

    CU_ASSERT_EQUAL(c->filters.modality.accept.count, 2);
    if (c->filters.modality.accept.count == 2) {
        CU_ASSERT_STRING_EQUAL(c->filters.modality.accept.items[0], "CR");
        CU_ASSERT_STRING_EQUAL(c->filters.modality.accept.items[1], "DX");
    }
    CU_ASSERT_EQUAL(c->filters.modality.otherwise, CX_ACTION_SKIP);
    CU_ASSERT_EQUAL(c->filters.modality.when_empty, CX_ACTION_SKIP);
    CU_ASSERT_EQUAL(c->filters.body_part.accept.count, 1);
    CU_ASSERT_EQUAL(c->filters.body_part.when_empty, CX_ACTION_PROCESS);
    CU_ASSERT_EQUAL(c->filters.view_position.accept.count, 2);
    CU_ASSERT_EQUAL(c->filters.view_position.otherwise, CX_ACTION_SKIP);
    CU_ASSERT_EQUAL(c->filters.view_position.when_empty, CX_ACTION_PROCESS);
    CU_ASSERT_EQUAL(c->filters.min_rows, 512);
    CU_ASSERT_EQUAL(c->filters.min_columns, 512);
    CU_ASSERT_EQUAL(c->filters.size_otherwise, CX_ACTION_SKIP);
    CU_ASSERT_EQUAL(c->filters.series_include.count, 0);
    CU_ASSERT_EQUAL(c->filters.series_exclude.count, 0);

    CU_ASSERT_EQUAL(c->destinations.sender_count, 0);
    CU_ASSERT_EQUAL(c->destinations.retry.initial_delay_s, 10);
    CU_ASSERT_DOUBLE_EQUAL(c->destinations.retry.factor, 2.0, 1e-12);
    CU_ASSERT_EQUAL(c->destinations.retry.max_delay_s, 600);
    CU_ASSERT_EQUAL(c->destinations.retry.max_attempts, 20);

    CU_ASSERT_STRING_EQUAL(c->spool.directory, "/var/spool/cxrseg");
    CU_ASSERT_EQUAL(c->spool.quota_mb, 10240);
    CU_ASSERT_EQUAL(c->spool.min_free_disk_mb, 1024);
    CU_ASSERT_EQUAL(c->spool.max_queued_items, 10000);
    CU_ASSERT_EQUAL(c->spool.keep_sent_days, 7);
    CU_ASSERT_EQUAL(c->spool.keep_failed_days, 30);

    CU_ASSERT_EQUAL(c->workers.count, 2);
    CU_ASSERT_EQUAL(c->workers.threads_per_worker, 1);
    CU_ASSERT_EQUAL(c->workers.job_timeout_s, 120);

    CU_ASSERT_PTR_NOT_NULL(c->model.file);
    if (c->model.file) {
        CU_ASSERT_EQUAL(c->model.file[0], '/');
        CU_ASSERT_PTR_NOT_NULL(strstr(c->model.file, "/models/" CX_CONFIG_DEFAULT_MODEL));
    }
    CU_ASSERT_EQUAL(c->model.threshold_count, 0);

    CU_ASSERT_STRING_EQUAL(c->outputs.uid_root, "2.25");
    CU_ASSERT_EQUAL(c->outputs.seg.enabled, 1);
    CU_ASSERT_EQUAL(c->outputs.seg.series_number, 9901);
    CU_ASSERT_STRING_EQUAL(c->outputs.seg.series_description, "CXRSEG Segmentation");
    CU_ASSERT_EQUAL(c->outputs.seg_when_nothing_found, 1);
    CU_ASSERT_EQUAL(c->outputs.seg_encoding, CX_SEG_ENCODING_FRACTIONAL);
    CU_ASSERT_EQUAL(c->outputs.seg_compression, CX_SEG_COMPRESSION_RLE);
    CU_ASSERT_EQUAL(c->outputs.sr.enabled, 1);
    CU_ASSERT_EQUAL(c->outputs.sr.series_number, 9902);
    CU_ASSERT_STRING_EQUAL(c->outputs.sr.series_description, "CXRSEG Report");
    CU_ASSERT_EQUAL(c->outputs.gsps.enabled, 0);
    CU_ASSERT_EQUAL(c->outputs.gsps.series_number, 9903);
    CU_ASSERT_EQUAL(c->outputs.sc.enabled, 0);
    CU_ASSERT_EQUAL(c->outputs.sc.series_number, 9904);
    CU_ASSERT_STRING_EQUAL(c->outputs.sc.series_description, "CXRSEG Overlay (not for diagnosis)");
    CU_ASSERT_STRING_EQUAL(c->outputs.manufacturer, "cxrseg project");
    CU_ASSERT_STRING_EQUAL(c->outputs.model_name, "cxrseg");

    CU_ASSERT_EQUAL(c->logging.level, CX_LOG_INFO);
    CU_ASSERT_EQUAL(c->logging.target, CX_LOG_TO_STDERR);
    CU_ASSERT_PTR_NULL(c->logging.file);

    CU_ASSERT_EQUAL(c->orthanc.enabled, 1);
    CU_ASSERT_EQUAL(c->orthanc.workers, 1);
    CU_ASSERT_EQUAL(c->orthanc.forward_to_modalities.count, 0);
    CU_ASSERT_EQUAL(c->orthanc.forward_to_peers.count, 0);
}

/* conf/cxrseg.xml (copied next to a placeholder model) validates and holds the defaults. */
static void test_shipped_conf(void)
{
    const char *p = scratch_conf("cxrseg.xml");
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(copy_file(src_path("conf/cxrseg.xml"), p) == 0);
    cx_config *c = load_ok(p);
    if (!c)
        return;
    check_defaults(c);
    /* The one non-default: the example destination. */
    CU_ASSERT_EQUAL(c->destinations.count, 1);
    if (c->destinations.count == 1) {
        const cx_config_destination *d = &c->destinations.items[0];
        CU_ASSERT_STRING_EQUAL(d->name, "pacs");
        CU_ASSERT_STRING_EQUAL(d->ae_title, "ORTHANC");
        CU_ASSERT_STRING_EQUAL(d->host, "127.0.0.1");
        CU_ASSERT_EQUAL(d->port, 4242);
        CU_ASSERT_STRING_EQUAL(d->calling_ae_title, "CXRSEG");
        CU_ASSERT_EQUAL(d->outputs, CX_OUTPUT_SEG | CX_OUTPUT_SR);
        CU_ASSERT_EQUAL(d->connect_timeout_s, 10);
        CU_ASSERT_EQUAL(d->dimse_timeout_s, 60);
        CU_ASSERT_EQUAL(d->send_results, 1);
        CU_ASSERT(d->line > 100); /* the line of <destination> in the file */
    }
    CU_ASSERT_STRING_EQUAL(c->path, p);
    CU_ASSERT_EQUAL(c->warnings.count, 0);
    cx_config_free(c);

    /* In the source tree itself, once the shipped model is committed. */
    if (access(src_path("models/" CX_CONFIG_DEFAULT_MODEL), R_OK) == 0) {
        c = load_ok(src_path("conf/cxrseg.xml"));
        cx_config_free(c);
    } else {
        fprintf(stderr, "  (models/" CX_CONFIG_DEFAULT_MODEL " not in the tree yet: source-tree load not run)\n");
    }
}

/* A file with nothing but the root element gets every default from the option table: the same
 * values as the shipped file, which writes them out. */
static void test_minimal_conf_defaults(void)
{
    const char *p = scratch_conf("minimal.xml");
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(write_text(p, "<?xml version=\"1.0\"?>\n<cxrseg version=\"1\"/>\n") == 0);
    cx_config *c = load_ok(p);
    if (!c)
        return;
    check_defaults(c);
    CU_ASSERT_EQUAL(c->destinations.count, 0);
    /* Valid, but the node would send results nowhere: a warning on the root's line. */
    CU_ASSERT_EQUAL(c->warnings.count, 1);
    if (c->warnings.count == 1) {
        char want[600];
        snprintf(want, sizeof want, "%s:2: warning: destinations: none defined", p);
        CU_ASSERT_NSTRING_EQUAL(c->warnings.items[0], want, strlen(want));
    }
    cx_config_free(c);
}

/* Listening on the network with no allow-list is valid but is said. */
static void test_warnings(void)
{
    const char *p = scratch_conf("open.xml");
    CU_ASSERT_FATAL(write_text(p,
        "<cxrseg version=\"1\">\n"
        "  <listener>\n"
        "    <bind-address>0.0.0.0</bind-address>\n"
        "  </listener>\n"
        "  <destinations><destination name=\"p\"><ae-title>P</ae-title><host>h</host><port>104</port>\n"
        "  </destination></destinations>\n"
        "</cxrseg>\n") == 0);
    cx_config *c = load_ok(p);
    if (!c)
        return;
    CU_ASSERT_EQUAL(c->warnings.count, 1);
    if (c->warnings.count == 1) {
        CU_ASSERT_PTR_NOT_NULL(strstr(c->warnings.items[0], ":3: warning: listener: listening on 0.0.0.0"));
        CU_ASSERT_PTR_NOT_NULL(strstr(c->warnings.items[0], "any machine that reaches port 11112"));
    }
    cx_config_free(c);
}

/* A conf that sets every non-default thing a node or plugin reads. */
static void test_full_conf(void)
{
    const char *p = scratch_conf("full.xml");
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_FATAL(write_text(p,
        "<cxrseg version=\"1\">\n"
        " <listener><ae-title>AI NODE</ae-title><bind-address>0.0.0.0</bind-address><port>104</port>\n"
        "  <transfer-syntaxes><transfer-syntax>JPEG2000</transfer-syntax>\n"
        "   <transfer-syntax>ImplicitVRLittleEndian</transfer-syntax></transfer-syntaxes>\n"
        "  <allowed-calling-ae-titles><ae-title>PACS</ae-title><ae-title>CR1</ae-title></allowed-calling-ae-titles>\n"
        "  <allowed-hosts><host>10.20.0.0/16</host><host>pacs.example.org</host></allowed-hosts></listener>\n"
        " <filters><body-part><otherwise>reject</otherwise></body-part>\n"
        "  <series-description><include>*chest*</include><exclude>*LAT*</exclude></series-description></filters>\n"
        " <destinations>\n"
        "  <destination name=\"a\"><ae-title>A</ae-title><host>10.0.0.1</host><port>104</port>\n"
        "   <calling-ae-title>ME</calling-ae-title><outputs>sr gsps</outputs></destination>\n"
        "  <destination name=\"b\"><ae-title>B</ae-title><host>h</host><port>105</port></destination>\n"
        "  <send-results-to>b</send-results-to>\n"
        "  <return-to-sender><sender><calling-ae-title>CR1</calling-ae-title><host>10.0.0.5</host>\n"
        "   <port>11112</port></sender></return-to-sender></destinations>\n"
        " <model><file>../models/" CX_CONFIG_DEFAULT_MODEL "</file>\n"
        "  <score-threshold class=\"ggo\">0.65</score-threshold></model>\n"
        " <outputs><uid-root>1.2.826.0.1.3680043.10.1234</uid-root>\n"
        "  <segmentation><encoding>binary</encoding><compression>none</compression></segmentation>\n"
        "  <presentation-state><enabled>true</enabled></presentation-state></outputs>\n"
        " <logging><level>debug</level><write-to>/var/log/cxrseg.log</write-to></logging>\n"
        " <orthanc><enabled>false</enabled><workers>3</workers><forward-to-modality>pacs</forward-to-modality>\n"
        "  <forward-to-peer>site2</forward-to-peer></orthanc>\n"
        "</cxrseg>\n") == 0);
    cx_config *c = load_ok(p);
    if (!c)
        return;
    CU_ASSERT_STRING_EQUAL(c->listener.ae_title, "AI NODE");
    CU_ASSERT_EQUAL(c->listener.port, 104);
    CU_ASSERT_EQUAL(c->listener.transfer_syntaxes.count, 2);
    CU_ASSERT_STRING_EQUAL(c->listener.transfer_syntaxes.items[0], "1.2.840.10008.1.2.4.91");
    CU_ASSERT_STRING_EQUAL(c->listener.transfer_syntaxes.items[1], "1.2.840.10008.1.2");
    CU_ASSERT_EQUAL(c->listener.allowed_calling_ae_titles.count, 2);
    CU_ASSERT_STRING_EQUAL(c->listener.allowed_hosts.items[1], "pacs.example.org");
    /* A rule element without <accept> turns the rule off. */
    CU_ASSERT_EQUAL(c->filters.body_part.accept.count, 0);
    CU_ASSERT_EQUAL(c->filters.body_part.otherwise, CX_ACTION_REJECT);
    CU_ASSERT_EQUAL(c->filters.series_include.count, 1);
    CU_ASSERT_EQUAL(c->destinations.count, 2);
    if (c->destinations.count == 2) {
        CU_ASSERT_STRING_EQUAL(c->destinations.items[0].calling_ae_title, "ME");
        CU_ASSERT_EQUAL(c->destinations.items[0].outputs, CX_OUTPUT_SR | CX_OUTPUT_GSPS);
        CU_ASSERT_EQUAL(c->destinations.items[0].send_results, 0);
        CU_ASSERT_STRING_EQUAL(c->destinations.items[1].calling_ae_title, "AI NODE");
        /* default "all" is limited to the enabled outputs: SEG, SR, GSPS here */
        CU_ASSERT_EQUAL(c->destinations.items[1].outputs, CX_OUTPUT_SEG | CX_OUTPUT_SR | CX_OUTPUT_GSPS);
        CU_ASSERT_EQUAL(c->destinations.items[1].send_results, 1);
    }
    CU_ASSERT_EQUAL(c->destinations.sender_count, 1);
    if (c->destinations.sender_count == 1) {
        CU_ASSERT_STRING_EQUAL(c->destinations.senders[0].ae_title, "CR1");
        CU_ASSERT_EQUAL(c->destinations.senders[0].port, 11112);
    }
    CU_ASSERT_EQUAL(c->model.threshold_count, 1);
    if (c->model.threshold_count == 1) {
        CU_ASSERT_STRING_EQUAL(c->model.thresholds[0].class_name, "ggo");
        CU_ASSERT_DOUBLE_EQUAL(c->model.thresholds[0].score, 0.65, 1e-12);
    }
    CU_ASSERT_EQUAL(c->model.file[0], '/');
    CU_ASSERT_STRING_EQUAL(c->outputs.uid_root, "1.2.826.0.1.3680043.10.1234");
    CU_ASSERT_EQUAL(c->outputs.seg_encoding, CX_SEG_ENCODING_BINARY);
    CU_ASSERT_EQUAL(c->outputs.seg_compression, CX_SEG_COMPRESSION_NONE);
    CU_ASSERT_EQUAL(c->logging.level, CX_LOG_DEBUG);
    CU_ASSERT_EQUAL(c->logging.target, CX_LOG_TO_FILE);
    CU_ASSERT_STRING_EQUAL(c->logging.file, "/var/log/cxrseg.log");
    CU_ASSERT_EQUAL(c->orthanc.enabled, 0);
    CU_ASSERT_EQUAL(c->orthanc.workers, 3);
    CU_ASSERT_STRING_EQUAL(c->orthanc.forward_to_peers.items[0], "site2");
    CU_ASSERT_EQUAL(c->warnings.count, 0); /* 0.0.0.0, but with allow-lists */
    cx_config_free(c);
}

/* Every annotated example in conf/examples/ loads (next to a placeholder model). */
static void test_examples(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", src_path("conf/examples"));
    DIR *d = opendir(dir);
    CU_ASSERT_FATAL(d != NULL);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        size_t k = strlen(de->d_name);
        if (k <= 4 || strcmp(de->d_name + k - 4, ".xml") != 0)
            continue;
        char from[8200];
        snprintf(from, sizeof from, "%s/%s", dir, de->d_name);
        const char *to = scratch_conf(de->d_name);
        CU_ASSERT_FATAL(copy_file(from, to) == 0);
        cx_config *c = load_ok(to);
        if (!c)
            fprintf(stderr, "\n  example %s does not load\n", de->d_name);
        n++;
        if (c && strcmp(de->d_name, "hospital-node.xml") == 0) {
            CU_ASSERT_STRING_EQUAL(c->listener.ae_title, "CXRSEG_AI");
            CU_ASSERT_EQUAL(c->listener.allowed_calling_ae_titles.count, 3);
            CU_ASSERT_EQUAL(c->filters.body_part.otherwise, CX_ACTION_REJECT);
            CU_ASSERT_EQUAL(c->destinations.count, 2);
            if (c->destinations.count == 2) {
                CU_ASSERT_EQUAL(c->destinations.items[0].outputs, CX_OUTPUT_SEG | CX_OUTPUT_SR);
                CU_ASSERT_EQUAL(c->destinations.items[1].outputs, CX_OUTPUT_SC);
                CU_ASSERT_EQUAL(c->destinations.items[1].connect_timeout_s, 5);
                CU_ASSERT_STRING_EQUAL(c->destinations.items[1].calling_ae_title, "CXRSEG_AI");
            }
            CU_ASSERT_EQUAL(c->destinations.sender_count, 1);
            CU_ASSERT_EQUAL(c->workers.threads_per_worker, 2);
            CU_ASSERT_EQUAL(c->outputs.sc.enabled, 1);
        }
        cx_config_free(c);
    }
    closedir(d);
    CU_ASSERT(n >= 2);
}

/* Replays every tests/config/NAME.xml: each header line `<!-- expect: LINE: text -->` is one error that
 * must be reported on LINE with `text` in its message; no other error may appear. */
typedef struct expectation {
    int line;
    char text[300];
} expectation;

static int read_expectations(const char *path, expectation *ex, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        char *p = strstr(line, "<!-- expect: ");
        if (!p)
            continue;
        p += strlen("<!-- expect: ");
        char *end = strstr(p, " -->");
        if (!end)
            continue;
        *end = 0;
        char *colon = strchr(p, ':');
        if (!colon)
            continue;
        ex[n].line = atoi(p);
        snprintf(ex[n].text, sizeof ex[n].text, "%s", colon + 2);
        n++;
    }
    fclose(f);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_broken_configs(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", src_path("tests/config"));
    DIR *d = opendir(dir);
    CU_ASSERT_FATAL(d != NULL);
    char *names[200];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < 200) {
        size_t k = strlen(de->d_name);
        if (k > 4 && strcmp(de->d_name + k - 4, ".xml") == 0)
            names[nn++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], cmp_str);
    CU_ASSERT(nn >= 25);
    int files_ok = 0;
    for (int i = 0; i < nn; i++) {
        char path[4300];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        expectation ex[16];
        int ne = read_expectations(path, ex, 16);
        int ok = ne > 0;
        if (ne <= 0)
            fprintf(stderr, "\n  %s: no <!-- expect: LINE: text --> header\n", names[i]);
        cx_config *cfg = NULL;
        cx_config_errors_clear(&errs);
        cx_status st = cx_config_load(path, src_path("conf/cxrseg.xsd"), &cfg, &errs);
        if (st != CX_ERR_CONFIG) {
            fprintf(stderr, "\n  %s: status %s, expected config\n", names[i], cx_status_name(st));
            ok = 0;
        }
        if (cfg) {
            cx_config_free(cfg);
            ok = 0;
        }
        if ((int)errs.count != ne) {
            fprintf(stderr, "\n  %s: %zu errors, expected %d\n", names[i], errs.count, ne);
            ok = 0;
        }
        for (int e = 0; e < ne; e++) {
            char prefix[4400];
            snprintf(prefix, sizeof prefix, "%s:%d: ", path, ex[e].line);
            int found = 0;
            for (size_t j = 0; j < errs.count && !found; j++)
                found = errs.items[j].line == ex[e].line && strncmp(errs.items[j].text, prefix, strlen(prefix)) == 0 &&
                        strstr(errs.items[j].text + strlen(prefix), ex[e].text) != NULL;
            if (!found) {
                fprintf(stderr, "\n  %s: no error '%d: %s'\n", names[i], ex[e].line, ex[e].text);
                ok = 0;
            }
        }
        if (!ok)
            dump_errors();
        CU_ASSERT(ok);
        files_ok += ok;
        free(names[i]);
    }
    fprintf(stderr, "  (%d of %d broken configs gave exactly their expected errors) ", files_ok, nn);
}

static void test_io_errors(void)
{
    cx_config *cfg = NULL;
    cx_config_errors_clear(&errs);
    CU_ASSERT_EQUAL(cx_config_load("/nonexistent/cxrseg.xml", NULL, &cfg, &errs), CX_ERR_IO);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].text, "/nonexistent/cxrseg.xml: cannot open: No such file"));
    /* errs may be NULL */
    CU_ASSERT_EQUAL(cx_config_load("/nonexistent/cxrseg.xml", NULL, &cfg, NULL), CX_ERR_IO);
    CU_ASSERT_EQUAL(cx_config_load(NULL, NULL, &cfg, NULL), CX_ERR_INVALID);
    /* A folder is not a conf file. */
    cx_config_errors_clear(&errs);
    CU_ASSERT_EQUAL(cx_config_load("/tmp", NULL, &cfg, &errs), CX_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.items[0].text, "not a regular file"));

    /* The XSD is looked for via $CXRSEG_XSD; a wrong one is an I/O error naming it. */
    const char *p = scratch_conf("minimal2.xml");
    CU_ASSERT_FATAL(write_text(p, "<cxrseg version=\"1\"/>\n") == 0);
    setenv("CXRSEG_XSD", "/nonexistent/cxrseg.xsd", 1);
    cx_config_errors_clear(&errs);
    cx_status st = cx_config_load(p, NULL, &cfg, &errs);
    CU_ASSERT_NOT_EQUAL(st, CX_OK);
    CU_ASSERT(errs.count >= 1);
    setenv("CXRSEG_XSD", src_path("conf/cxrseg.xsd"), 1);
    cx_config_errors_clear(&errs);
    CU_ASSERT_EQUAL(cx_config_load(p, NULL, &cfg, &errs), CX_OK);
    cx_config_free(cfg);
    unsetenv("CXRSEG_XSD");
    cx_config_free(NULL);
}

/* Every allocation of a full load fails in turn: an error, never a crash (valgrind: no leak). */
static void test_alloc_failures(void)
{
    const char *p = scratch_conf("alloc.xml");
    CU_ASSERT_FATAL(copy_file(src_path("conf/cxrseg.xml"), p) == 0);
    cx_config *cfg = NULL;
    cx_alloc_reset();
    CU_ASSERT_EQUAL_FATAL(cx_config_load(p, src_path("conf/cxrseg.xsd"), &cfg, NULL), CX_OK);
    unsigned long total = cx_alloc_count();
    cx_config_free(cfg);
    CU_ASSERT(total > 50);
    unsigned long failed_ok = 0;
    for (int sticky = 0; sticky <= 1; sticky++)
        for (unsigned long n = 1; n <= total; n++) {
            cfg = NULL;
            cx_config_errors_clear(&errs);
            cx_alloc_fail_at(n, sticky);
            cx_status st = cx_config_load(p, src_path("conf/cxrseg.xsd"), &cfg, &errs);
            cx_alloc_reset();
            int ok = st == CX_ERR_NOMEM && cfg == NULL && errs.count >= 1 &&
                     strstr(errs.items[errs.count - 1].text, "out of memory") != NULL;
            if (!ok)
                fprintf(stderr, "\n  allocation %lu (sticky %d): status %s, %zu errors\n", n, sticky,
                        cx_status_name(st), errs.count);
            failed_ok += ok;
            cx_config_free(cfg);
        }
    CU_ASSERT_EQUAL(failed_ok, 2 * total);
    fprintf(stderr, "  (%lu allocations, each failed once and sticky) ", total);
}

static void test_filters(void)
{
    const char *p = scratch_conf("filters.xml");
    CU_ASSERT_FATAL(write_text(p,
        "<cxrseg version=\"1\"><filters>\n"
        " <view-position><accept>PA</accept><accept>AP</accept><otherwise>reject</otherwise></view-position>\n"
        " <series-description><include>*chest*</include><include>THORAX*</include>\n"
        "  <exclude>*lat*</exclude></series-description>\n"
        "</filters></cxrseg>\n") == 0);
    cx_config *c = load_ok(p);
    if (!c)
        return;
    char why[300];
    const cx_config_filters *f = &c->filters;
    cx_config_object rg1 = {"CR", "CHEST", "PA", "Chest PA", 1955, 1841};
    CU_ASSERT_EQUAL(cx_config_filter(f, &rg1, why, sizeof why), CX_ACTION_PROCESS);
    CU_ASSERT_STRING_EQUAL(why, "");
    cx_config_object o = rg1;
    o.body_part = "EXTREMITY";
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_SKIP);
    CU_ASSERT_STRING_EQUAL(why, "body part 'EXTREMITY' not in CHEST (filters/body-part)");
    o = rg1;
    o.view_position = "LL";
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_REJECT);
    CU_ASSERT_STRING_EQUAL(why, "view position 'LL' not in PA, AP (filters/view-position)");
    o = rg1;
    o.modality = NULL;
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_SKIP);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "modality is empty"));
    o = rg1;
    o.modality = "NM";
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, NULL, 0), CX_ACTION_SKIP);
    o = rg1;
    o.body_part = "  "; /* empty after trimming: when-empty = process */
    o.view_position = "ap ";
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_PROCESS);
    o = rg1;
    o.rows = 400;
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_SKIP);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "400 x 1841"));
    o = rg1;
    o.series_description = "Chest LAT";
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_SKIP);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "<exclude> '*lat*'"));
    o.series_description = "thorax ap";
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_PROCESS);
    o.series_description = "Abdomen";
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_SKIP);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "matches no <include>"));
    o.series_description = NULL;
    CU_ASSERT_EQUAL(cx_config_filter(f, &o, why, sizeof why), CX_ACTION_SKIP);
    CU_ASSERT_STRING_EQUAL(cx_config_action_name(CX_ACTION_REJECT), "reject");
    cx_config_free(c);
}

/* The shipped file cut at many points, and with single bytes replaced: always a clean result
 * (OK or errors with a line), never a crash; valgrind sees no invalid access. */
static void test_truncated_and_mangled(void)
{
    FILE *f = fopen(src_path("conf/cxrseg.xml"), "rb");
    CU_ASSERT_FATAL(f != NULL);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    CU_ASSERT_FATAL(len > 1000);
    const char *p = scratch_conf("cut.xml");
    int runs = 0, clean = 0, ok_count = 0;
    for (int mode = 0; mode < 2; mode++)
        for (size_t cut = 0; cut < len; cut += mode ? 37 : 53) {
            FILE *o = fopen(p, "wb");
            CU_ASSERT_FATAL(o != NULL);
            if (mode == 0) {
                fwrite(text, 1, cut, o); /* truncated */
            } else {
                char saved = text[cut];
                text[cut] = "<>&\"x\0/"[cut % 7]; /* one byte replaced */
                fwrite(text, 1, len, o);
                text[cut] = saved;
            }
            fclose(o);
            cx_config *cfg = NULL;
            cx_config_errors_clear(&errs);
            cx_status st = cx_config_load(p, src_path("conf/cxrseg.xsd"), &cfg, &errs);
            runs++;
            if (st == CX_OK) {
                ok_count++;
                clean += cfg != NULL && errs.count == 0;
            } else {
                int good = cfg == NULL && st == CX_ERR_CONFIG && errs.count >= 1 &&
                           (errs.items[0].line >= 1 || (cut == 0 && strstr(errs.items[0].text, ": the file is empty")));
                clean += good;
                if (!good)
                    fprintf(stderr, "\n  mode %d at %zu: %s\n", mode, cut, errs.count ? errs.items[0].text : "(none)");
            }
            cx_config_free(cfg);
        }
    CU_ASSERT_EQUAL(clean, runs);
    CU_ASSERT(ok_count < runs / 2);
    fprintf(stderr, "  (%d damaged files, %d still valid) ", runs, ok_count);
}

/* The node reloads on SIGHUP while workers run and the plugin loads from Orthanc's threads:
 * loads in parallel must not mix their errors (libxml2's handler is per thread). */
#include <pthread.h>
typedef struct load_job {
    const char *conf, *xsd;
    int ok, right_errors;
} load_job;

static void *load_many(void *arg)
{
    load_job *j = arg;
    static __thread cx_config_errors e; /* per thread: 40 kB each */
    for (int i = 0; i < 25; i++) {
        cx_config *cfg = NULL;
        cx_config_errors_clear(&e);
        cx_status st = cx_config_load(j->conf, j->xsd, &cfg, &e);
        if (st == CX_OK)
            j->ok++;
        else if (e.count == 3 && strstr(e.items[0].text, "several-errors.xml:7:"))
            j->right_errors++;
        cx_config_free(cfg);
    }
    return NULL;
}

static void test_parallel_loads(void)
{
    const char *good = scratch_conf("parallel.xml");
    CU_ASSERT_FATAL(copy_file(src_path("conf/cxrseg.xml"), good) == 0);
    char bad[4096];
    snprintf(bad, sizeof bad, "%s", src_path("tests/config/several-errors.xml"));
    char xsd[4096];
    snprintf(xsd, sizeof xsd, "%s", src_path("conf/cxrseg.xsd"));
    load_job jobs[4] = {{good, xsd, 0, 0}, {bad, xsd, 0, 0}, {good, xsd, 0, 0}, {bad, xsd, 0, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, load_many, &jobs[i]) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(jobs[0].ok, 25);
    CU_ASSERT_EQUAL(jobs[2].ok, 25);
    CU_ASSERT_EQUAL(jobs[1].right_errors, 25);
    CU_ASSERT_EQUAL(jobs[3].right_errors, 25);
}

static int suite_cleanup(void)
{
    cleanup_scratch();
    return 0;
}

static const cx_test_case cases[] = {
    {"shipped conf/cxrseg.xml validates, gives the defaults", test_shipped_conf},
    {"minimal conf gives the same defaults", test_minimal_conf_defaults},
    {"full conf: lists, items, references", test_full_conf},
    {"warnings for valid but risky settings", test_warnings},
    {"conf/examples load", test_examples},
    {"broken configs give their file:line errors", test_broken_configs},
    {"I/O errors and XSD lookup", test_io_errors},
    {"allocation failure at every allocation", test_alloc_failures},
    {"filters decide and explain", test_filters},
    {"damaged copies of the shipped conf", test_truncated_and_mangled},
    {"parallel loads keep their errors apart", test_parallel_loads},
    {NULL, NULL},
};

CX_TEST_MAIN_SUITE("config", NULL, suite_cleanup, cases)

/* The option table of src/config/cx_config.c and conf/cxrseg.xsd must agree: for every numeric
 * option the schema accepts the table's default, minimum and maximum and refuses one past each
 * end; for every string option it refuses one character more than the table allows. The table is
 * static, so this program compiles cx_config.c itself (and does not link libcxconfig). */
#include "../../src/config/cx_config.c"

#include "cx_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cx_config_errors errs;
static char dir[256];

static const char *xsd_path(void)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/conf/cxrseg.xsd", cx_test_srcdir());
    return p;
}

static void close_section(char *buf, size_t size, const char *section)
{
    char copy[200], *parts[8];
    int k = 0;
    snprintf(copy, sizeof copy, "%s", section);
    for (char *s = strtok(copy, "/"); s && k < 8; s = strtok(NULL, "/"))
        parts[k++] = s;
    while (k--) {
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, "</%s>", parts[k]);
    }
}

/* Required children of destination and sender, unless the option under test is one of them. */
static void required_children(char *buf, size_t size, const opt *o)
{
    static const char *const dest[] = {"ae-title", "A", "host", "h", "port", "104", NULL};
    static const char *const sender[] = {"calling-ae-title", "C", "host", "h", "port", "104", NULL};
    static const char *const web[] = {"url", "http://pacs/dicom-web/studies", NULL};
    const char *const *req = o->base == OB_DESTINATION ? (strstr(o->section, "dicomweb") ? web : dest)
                             : o->base == OB_SENDER    ? sender
                                                       : NULL;
    for (; req && *req; req += 2)
        if (strcmp(req[0], o->name) != 0) {
            size_t n = strlen(buf);
            snprintf(buf + n, size - n, "<%s>%s</%s>", req[0], req[1], req[0]);
        }
}

/* Appends the opening tags of `section`; an item element (destination, sender) gets its required
 * children right after its own tag, also when the option sits in a sub-element of it (tls). */
static void open_section(char *buf, size_t size, const opt *o)
{
    char copy[200];
    snprintf(copy, sizeof copy, "%s", o->section);
    for (char *s = strtok(copy, "/"); s; s = strtok(NULL, "/")) {
        size_t n = strlen(buf);
        if (strcmp(s, "destination") == 0 || strcmp(s, "dicomweb-destination") == 0)
            snprintf(buf + n, size - n, "<%s name=\"d\">", s);
        else
            snprintf(buf + n, size - n, "<%s>", s);
        if (strcmp(s, "destination") == 0 || strcmp(s, "sender") == 0 || strcmp(s, "dicomweb-destination") == 0)
            required_children(buf, size, o);
    }
}

/* Loads a conf that sets only option `o` to `value`; returns 1 when the schema reported an error
 * on that element (libxml2 messages start with "Element 'NAME'"). */
static int schema_refuses(const opt *o, const char *value)
{
    static char xml[20000];
    snprintf(xml, sizeof xml, "<cxrseg version=\"1\">");
    open_section(xml, sizeof xml, o);
    size_t n = strlen(xml);
    snprintf(xml + n, sizeof xml - n, "<%s>%s</%s>", o->name, value, o->name);
    close_section(xml, sizeof xml, o->section);
    n = strlen(xml);
    snprintf(xml + n, sizeof xml - n, "</cxrseg>\n");

    char path[300];
    snprintf(path, sizeof path, "%s/t.xml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(xml, f);
    fclose(f);
    cx_config *cfg = NULL;
    cx_config_errors_clear(&errs);
    cx_config_load(path, xsd_path(), &cfg, &errs);
    cx_config_free(cfg);
    char needle[100];
    snprintf(needle, sizeof needle, "Element '%s'", o->name);
    for (size_t i = 0; i < errs.count; i++)
        if (strstr(errs.items[i].text, needle))
            return 1;
    return 0;
}

static void expect(const opt *o, const char *value, int refused, int *bad)
{
    int r = schema_refuses(o, value);
    if (r != refused) {
        fprintf(stderr, "\n  %s/%s = '%.40s%s': the schema %s it, the table says it is %s", o->section, o->name,
                value, strlen(value) > 40 ? "..." : "", r ? "refuses" : "accepts", refused ? "invalid" : "valid");
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "\n    %s", errs.items[i].text);
        (*bad)++;
    }
}

static void test_table_matches_schema(void)
{
    snprintf(dir, sizeof dir, "/tmp/cx_test_table.XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    int bad = 0, checked = 0;
    char v[5000];
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt *o = &options[i];
        if (o->def) {
            expect(o, o->def, 0, &bad);
            checked++;
        }
        switch (o->type) {
        case OT_INT:
        case OT_LLONG:
            snprintf(v, sizeof v, "%.0f", o->min);
            expect(o, v, 0, &bad);
            snprintf(v, sizeof v, "%.0f", o->max);
            expect(o, v, 0, &bad);
            snprintf(v, sizeof v, "%.0f", o->min - 1);
            expect(o, v, 1, &bad);
            snprintf(v, sizeof v, "%.0f", o->max + 1);
            expect(o, v, 1, &bad);
            checked += 4;
            break;
        case OT_DOUBLE:
            snprintf(v, sizeof v, "%g", o->min - 0.001);
            expect(o, v, 1, &bad);
            snprintf(v, sizeof v, "%g", o->max + 0.001);
            expect(o, v, 1, &bad);
            checked += 2;
            break;
        case OT_STRING: {
            size_t len = (size_t)o->max + 1;
            if (len >= sizeof v)
                break;
            memset(v, 'A', len);
            v[len] = 0;
            expect(o, v, 1, &bad);
            v[len - 1] = 0;
            expect(o, v, 0, &bad);
            checked += 2;
            break;
        }
        default:
            break;
        }
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    fprintf(stderr, "  (%d values of %zu options checked) ", checked, N_OPTIONS);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(checked > 150);
}

static const cx_test_case cases[] = {
    {"option table and XSD agree on defaults and ranges", test_table_matches_schema},
    {NULL, NULL},
};

CX_TEST_MAIN("config_table", cases)

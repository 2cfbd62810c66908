/* Unit tests for cx_base: error formatting, the allocation hook, the log sink and cx_getopt. */
#include "cx_base.h"
#include "cx_getopt.h"
#include "cx_test.h"
#include <string.h>

static void test_error_format(void)
{
    cx_error e = {0};
    cx_status s = cx_error_set(&e, CX_ERR_FORMAT, "decode", "rows = %d, expected > %d", 0, 0);
    CU_ASSERT_EQUAL(s, CX_ERR_FORMAT);
    CU_ASSERT_EQUAL(e.code, CX_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "decode: rows = 0, expected > 0");
    cx_error_prefix(&e, "pipeline");
    CU_ASSERT_STRING_EQUAL(e.msg, "pipeline: decode: rows = 0, expected > 0");
    CU_ASSERT_EQUAL(cx_error_set(NULL, CX_ERR_IO, "x", "y"), CX_ERR_IO);
    CU_ASSERT_STRING_EQUAL(cx_status_name(CX_ERR_NOMEM), "nomem");
    CU_ASSERT_STRING_EQUAL(cx_status_name((cx_status)999), "unknown");
}

static void test_alloc_hook(void)
{
    cx_alloc_fail_at(3, 0);
    void *a = cx_malloc(10), *b = cx_malloc(10), *c = cx_malloc(10), *d = cx_malloc(10);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(d);
    CU_ASSERT_EQUAL(cx_alloc_count(), 4);
    cx_free(a); cx_free(b); cx_free(d);
    cx_alloc_fail_at(1, 1);
    CU_ASSERT_PTR_NULL(cx_malloc(1));
    CU_ASSERT_PTR_NULL(cx_calloc(2, 2));
    CU_ASSERT_PTR_NULL(cx_aligned_alloc(64));
    cx_alloc_reset();
    void *p = cx_aligned_alloc(100);
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_EQUAL(((size_t)p) % 64, 0);
    cx_aligned_free(p);
    CU_ASSERT_PTR_NULL(cx_calloc((size_t)-1, 16)); /* overflow refused */
    cx_free(NULL);
}

static int sink_calls;
static char sink_last[256];
static void sink(cx_log_level lvl, const char *mod, const char *job, const char *msg, void *user)
{
    (void)lvl; (void)user;
    sink_calls++;
    snprintf(sink_last, sizeof sink_last, "%s|%s|%s", mod, job ? job : "-", msg);
}

static void test_log_sink(void)
{
    cx_log_set_sink(sink, NULL);
    cx_log_set_level(CX_LOG_INFO);
    cx_log(CX_LOG_DEBUG, "m", NULL, "hidden");
    CU_ASSERT_EQUAL(sink_calls, 0);
    cx_log(CX_LOG_WARN, "decode", "42", "bits stored %d", 15);
    CU_ASSERT_EQUAL(sink_calls, 1);
    CU_ASSERT_STRING_EQUAL(sink_last, "decode|42|bits stored 15");
    cx_log_set_sink(NULL, NULL);
    cx_log_level l;
    CU_ASSERT_EQUAL(cx_log_level_parse("debug", &l), 0);
    CU_ASSERT_EQUAL(l, CX_LOG_DEBUG);
    CU_ASSERT_NOT_EQUAL(cx_log_level_parse("loud", &l), 0);
}

static void test_size_math(void)
{
    size_t r;
    CU_ASSERT_TRUE(cx_size_mul(1000, 1000, &r));
    CU_ASSERT_EQUAL(r, 1000000);
    CU_ASSERT_FALSE(cx_size_mul((size_t)-1 / 2, 3, &r));
    CU_ASSERT_FALSE(cx_size_add((size_t)-1, 1, &r));
}

/* cx_getopt over argv (NULL-terminated): the returned codes as letters ('1' for a positional, '!'
 * for an error) with their values, space-separated, into out; the last error message into msg. */
static void scan(char **argv, char *out, size_t size, char *msg)
{
    static const struct option longs[] = {
        {"output", required_argument, NULL, 'o'}, {"json", no_argument, NULL, 'j'},
        {"min-size", required_argument, NULL, 256}, {"max-size", required_argument, NULL, 257},
        {NULL, 0, NULL, 0}};
    int argc = 0, c;
    while (argv[argc])
        argc++;
    out[0] = msg[0] = 0;
    optind = 0;
    while ((c = cx_getopt(argc, argv, "o:jq", longs, msg, 200)) != -1) {
        size_t n = strlen(out);
        if (c == '?')
            snprintf(out + n, size - n, "! ");
        else if (c >= 256)
            snprintf(out + n, size - n, "%s=%s ", c == 256 ? "min" : "max", optarg);
        else if (c == 1 || c == 'o')
            snprintf(out + n, size - n, "%c=%s ", c == 1 ? '1' : 'o', optarg);
        else
            snprintf(out + n, size - n, "%c ", c);
        if (c == '?')
            break;
    }
}

static void test_getopt(void)
{
    char out[400], msg[200];
    char *a1[] = {"cmd", "in.dcm", "-o", "x.png", "--json", "--min=4", "--max-size", "-5", "-qj", "--", "-q", NULL};
    scan(a1, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(out, "1=in.dcm o=x.png j min=4 max=-5 q j 1=-q ");
    char *a2[] = {"cmd", "--output=o.png", "-oy", "-", "", NULL};
    scan(a2, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(out, "o=o.png o=y 1=- 1= ");
    char *a3[] = {"cmd", "a", "--bogus", "b", NULL};
    scan(a3, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(out, "1=a ! ");
    CU_ASSERT_STRING_EQUAL(msg, "unknown option '--bogus'");
    char *a4[] = {"cmd", "-jxq", NULL};
    scan(a4, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(msg, "unknown option '-x'");
    char *a5[] = {"cmd", "x", "--output", NULL};
    scan(a5, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(msg, "option --output needs a value");
    char *a6[] = {"cmd", "-qo", NULL};
    scan(a6, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(msg, "option -o needs a value");
    char *a7[] = {"cmd", "--json=yes", NULL};
    scan(a7, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(msg, "option --json takes no value");
    char *a8[] = {"cmd", "--m", "3", NULL};
    scan(a8, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(msg, "ambiguous option '--m'");
    /* a new scan after a "--": the reset forgets it */
    char *a9[] = {"cmd", "-j", NULL};
    scan(a9, out, sizeof out, msg);
    CU_ASSERT_STRING_EQUAL(out, "j ");
}

static const cx_test_case cases[] = {
    {"error format", test_error_format},
    {"allocation hook", test_alloc_hook},
    {"log sink", test_log_sink},
    {"size arithmetic", test_size_math},
    {"getopt", test_getopt},
    {NULL, NULL},
};
CX_TEST_MAIN("base", cases)

/* Unit tests of the Orthanc plugin's strict JSON reader (plugin/json.c): the shapes Orthanc
 * produces (configuration, /tools/find, POST /instances answers), every kind of malformed text
 * with its line/column message, escapes and UTF-8, depth and allocation failures. */
#include "cx_test.h"
#include "json.h"

#include <string.h>

static cxj_value *ok(const char *text)
{
    cxj_value *v = NULL;
    cx_error e = {0};
    cx_status st = cxj_parse(text, strlen(text), &v, &e);
    if (st != CX_OK)
        fprintf(stderr, "unexpected error for %s: %s\n", text, e.msg);
    CU_ASSERT_EQUAL(st, CX_OK);
    return v;
}

/* Parses text that must fail; returns the message (static) for checks. */
static const char *bad(const char *text, size_t len)
{
    static cx_error e;
    memset(&e, 0, sizeof e);
    cxj_value *v = (cxj_value *)0x1;
    cx_status st = cxj_parse(text, len, &v, &e);
    CU_ASSERT_EQUAL(st, CX_ERR_FORMAT);
    CU_ASSERT_PTR_EQUAL(v, (cxj_value *)0x1); /* out untouched on failure */
    CU_ASSERT(strncmp(e.msg, "json: line ", 11) == 0);
    return e.msg;
}
#define BAD(s) bad((s), strlen(s))

static void test_orthanc_configuration(void)
{
    const char *conf = "{\n   \"Name\" : \"x\",\n   \"HttpPort\" : 8042,\n   \"Plugins\" : [ \"/a.so\", \"/b\" ],\n"
                       "   \"CxrSeg\" : {\n      \"ConfigurationFile\" : \"/etc/cxrseg/cxrseg.xml\"\n   },\n"
                       "   \"RemoteAccessAllowed\" : false, \"X\": null, \"T\": true, \"F\": -1.5e2\n}\n";
    cxj_value *v = ok(conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(v->type, CXJ_OBJECT);
    CU_ASSERT_STRING_EQUAL(cxj_str(cxj_get(cxj_get(v, "CxrSeg"), "ConfigurationFile")), "/etc/cxrseg/cxrseg.xml");
    CU_ASSERT_EQUAL(cxj_get(v, "HttpPort")->number, 8042);
    CU_ASSERT_EQUAL(cxj_get(v, "Plugins")->count, 2);
    CU_ASSERT_STRING_EQUAL(cxj_str(cxj_at(cxj_get(v, "Plugins"), 1)), "/b");
    CU_ASSERT_PTR_NULL(cxj_at(cxj_get(v, "Plugins"), 2));
    CU_ASSERT_EQUAL(cxj_get(v, "RemoteAccessAllowed")->type, CXJ_FALSE);
    CU_ASSERT_EQUAL(cxj_get(v, "X")->type, CXJ_NULL);
    CU_ASSERT_EQUAL(cxj_get(v, "T")->type, CXJ_TRUE);
    CU_ASSERT_DOUBLE_EQUAL(cxj_get(v, "F")->number, -150.0, 1e-12);
    CU_ASSERT_PTR_NULL(cxj_get(v, "Missing"));
    CU_ASSERT_PTR_NULL(cxj_str(cxj_get(v, "HttpPort"))); /* not a string */
    CU_ASSERT_PTR_NULL(cxj_get(cxj_get(v, "Name"), "x")); /* not an object */
    cxj_free(v);
}

static void test_rest_answers(void)
{
    cxj_value *v = ok("[ { \"ID\" : \"0a9b-01\", \"MainDicomTags\" : { \"SOPInstanceUID\" : \"1.2.3\" }, "
                      "\"Type\" : \"Instance\" }, {\"ID\":\"x\",\"MainDicomTags\":{}} ]");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(v->count, 2);
    CU_ASSERT_STRING_EQUAL(cxj_str(cxj_get(cxj_get(cxj_at(v, 0), "MainDicomTags"), "SOPInstanceUID")), "1.2.3");
    CU_ASSERT_PTR_NULL(cxj_get(cxj_get(cxj_at(v, 1), "MainDicomTags"), "SOPInstanceUID"));
    cxj_free(v);
    v = ok("[]");
    CU_ASSERT_EQUAL(v->type, CXJ_ARRAY);
    CU_ASSERT_EQUAL(v->count, 0);
    cxj_free(v);
    v = ok(" {} ");
    CU_ASSERT_EQUAL(v->type, CXJ_OBJECT);
    cxj_free(v);
    v = ok("\"plain\"");
    CU_ASSERT_STRING_EQUAL(cxj_str(v), "plain");
    cxj_free(v);
}

static void test_strings(void)
{
    cxj_value *v = ok("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00 \xc3\xa9\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v->string, "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xc3\xa9");
    cxj_free(v);
    CU_ASSERT(strstr(BAD("\"abc"), "not terminated") != NULL);
    CU_ASSERT(strstr(BAD("\"a\tb\""), "control character") != NULL);
    CU_ASSERT(strstr(BAD("\"\\x\""), "invalid escape") != NULL);
    CU_ASSERT(strstr(BAD("\"\\u12\""), "four hex digits") != NULL);
    CU_ASSERT(strstr(BAD("\"\\ud83d\""), "high surrogate") != NULL);
    CU_ASSERT(strstr(BAD("\"\\ude00\""), "lone low surrogate") != NULL);
    CU_ASSERT(strstr(BAD("\"\\u0000\""), "\\u0000") != NULL);
    CU_ASSERT(strstr(BAD("\"\xff\""), "UTF-8") != NULL);
    CU_ASSERT(strstr(BAD("\"\xc0\xaf\""), "UTF-8") != NULL);         /* overlong '/' */
    CU_ASSERT(strstr(BAD("\"\xed\xa0\x80\""), "UTF-8") != NULL);     /* encoded surrogate */
    CU_ASSERT(strstr(BAD("\"\xe2\x82\""), "UTF-8") != NULL);         /* truncated sequence */
    CU_ASSERT(strstr(BAD("\"\\"), "not terminated") != NULL);
    /* an embedded NUL byte in the text is a control character, not an early end */
    CU_ASSERT(strstr(bad("\"a\0b\"", 5), "control character") != NULL);
}

static void test_numbers(void)
{
    const char *good[] = {"0", "-0", "12", "-3.25", "1e3", "1E+2", "2.5e-3", NULL};
    const double want[] = {0, 0, 12, -3.25, 1000, 100, 0.0025};
    for (int i = 0; good[i]; i++) {
        cxj_value *v = ok(good[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_EQUAL(v->type, CXJ_NUMBER);
        CU_ASSERT_DOUBLE_EQUAL(v->number, want[i], 1e-12);
        cxj_free(v);
    }
    CU_ASSERT(strstr(BAD("01"), "leading zero") != NULL);
    CU_ASSERT(strstr(BAD("1."), "decimal point") != NULL);
    CU_ASSERT(strstr(BAD("1e"), "exponent") != NULL);
    CU_ASSERT(strstr(BAD("-"), "invalid number") != NULL);
    CU_ASSERT(strstr(BAD("+1"), "unexpected character") != NULL);
    CU_ASSERT(strstr(BAD("1e999"), "out of range") != NULL);
    CU_ASSERT(strstr(BAD(".5"), "unexpected character") != NULL);
    CU_ASSERT(strstr(BAD("NaN"), "unexpected character") != NULL);
}

static void test_structure_errors(void)
{
    CU_ASSERT(strstr(BAD(""), "end of text") != NULL);
    CU_ASSERT(strstr(BAD("   "), "end of text") != NULL);
    CU_ASSERT(strstr(BAD("[1,]"), "unexpected character") != NULL);      /* trailing comma */
    CU_ASSERT(strstr(BAD("{\"a\":1,}"), "member name") != NULL);
    CU_ASSERT(strstr(BAD("[1 2]"), "',' or ']'") != NULL);
    CU_ASSERT(strstr(BAD("{\"a\" 1}"), "':' expected") != NULL);
    CU_ASSERT(strstr(BAD("{\"a\":1 \"b\":2}"), "',' or '}'") != NULL);
    CU_ASSERT(strstr(BAD("{a:1}"), "member name") != NULL);
    CU_ASSERT(strstr(BAD("[1"), "array not closed") != NULL);
    CU_ASSERT(strstr(BAD("{\"a\":1"), "object not closed") != NULL);
    CU_ASSERT(strstr(BAD("{} x"), "text after") != NULL);
    CU_ASSERT(strstr(BAD("tru"), "unexpected character") != NULL);
    CU_ASSERT(strstr(BAD("// comment\n{}"), "comments") != NULL);
    CU_ASSERT(strstr(BAD("{\"a\":1,\"a\":2}"), "duplicate member") != NULL);
    /* line and column of the problem */
    const char *m = BAD("{\n  \"a\": 1,\n  \"b\": ]\n}");
    CU_ASSERT(strstr(m, "line 3, column 8") != NULL);
    /* nesting bound */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    CU_ASSERT(strstr(bad(deep, 200), "deeper than 64") != NULL);
    cxj_value *v = ok("[[[[[[[[[[1]]]]]]]]]]");
    cxj_free(v);
    cxj_free(NULL);
}

static void test_allocation_failures(void)
{
    const char *text = "{\"a\":[1,2,3,{\"b\":\"cccc\"}],\"d\":\"e\",\"f\":[\"g\",\"h\",\"i\",\"j\",\"k\"]}";
    int failed_cleanly = 0;
    for (unsigned long n = 1; n < 200; n++) {
        cx_alloc_fail_at(n, 0);
        cxj_value *v = NULL;
        cx_error e = {0};
        cx_status st = cxj_parse(text, strlen(text), &v, &e);
        cx_alloc_fail_at(0, 0);
        if (st == CX_OK) {
            CU_ASSERT_STRING_EQUAL(cxj_str(cxj_get(v, "d")), "e");
            cxj_free(v);
            break;
        }
        CU_ASSERT_EQUAL(st, CX_ERR_NOMEM);
        CU_ASSERT_PTR_NULL(v);
        failed_cleanly++;
    }
    CU_ASSERT(failed_cleanly > 5);
}

static void test_buffer(void)
{
    cxj_buf b = {0};
    cxj_buf_printf(&b, "{\"k\": ");
    cxj_buf_string(&b, "q\"\\\n\x01 \xc3\xa9");
    cxj_buf_printf(&b, ", \"n\": %d}", 42);
    CU_ASSERT_FALSE(b.failed);
    CU_ASSERT_STRING_EQUAL(b.data, "{\"k\": \"q\\\"\\\\\\u000a\\u0001 \xc3\xa9\", \"n\": 42}");
    /* round trip through the reader */
    cxj_value *v = ok(b.data);
    CU_ASSERT_STRING_EQUAL(cxj_str(cxj_get(v, "k")), "q\"\\\n\x01 \xc3\xa9");
    cxj_free(v);
    cxj_buf_free(&b);
    cxj_buf_free(NULL);
}

static const cx_test_case cases[] = {
    {"orthanc configuration", test_orthanc_configuration},
    {"REST answers", test_rest_answers},
    {"strings, escapes, UTF-8", test_strings},
    {"numbers", test_numbers},
    {"structure errors with line/column", test_structure_errors},
    {"allocation failures", test_allocation_failures},
    {"answer buffer", test_buffer},
    {NULL, NULL},
};

CX_TEST_MAIN("plugin_json", cases)

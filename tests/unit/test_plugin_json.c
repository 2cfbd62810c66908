/* Unit tests of the Orthanc plugin's JSON with Orthanc (plugin/exchange.c over libjansson): the
 * shapes Orthanc produces (configuration, /tools/find, /tools/lookup, POST /instances answers),
 * every kind of malformed text with its line/column message, escapes and UTF-8, the depth bound,
 * allocation failures, and the texts the plugin writes (cx_json.h for every string). */
#include "cx_test.h"
#include "cx_json.h"
#include "exchange.h"

#include <string.h>

static json_t *ok(const char *text)
{
    json_t *v = NULL;
    cx_error e = {0};
    cx_status st = cxp_json_parse(text, strlen(text), &v, &e);
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
    json_t *v = (json_t *)0x1;
    cx_status st = cxp_json_parse(text, len, &v, &e);
    CU_ASSERT_EQUAL(st, CX_ERR_FORMAT);
    CU_ASSERT_PTR_EQUAL(v, (json_t *)0x1); /* out untouched on failure */
    CU_ASSERT(strncmp(e.msg, "json: line ", 11) == 0);
    return e.msg;
}
#define BAD(s) bad((s), strlen(s))

static const char *conf_text =
    "{\n   \"Name\" : \"x\",\n   \"HttpPort\" : 8042,\n   \"Plugins\" : [ \"/a.so\", \"/b\" ],\n"
    "   \"CxrSeg\" : {\n      \"ConfigurationFile\" : \"/etc/cxrseg/cxrseg.xml\"\n   },\n"
    "   \"RemoteAccessAllowed\" : false, \"X\": null, \"T\": true, \"F\": -1.5e2\n}\n";

static void test_orthanc_configuration(void)
{
    json_t *v = ok(conf_text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT(json_is_object(v));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(v, "CxrSeg"), "ConfigurationFile")),
                           "/etc/cxrseg/cxrseg.xml");
    CU_ASSERT_EQUAL(json_number_value(json_object_get(v, "HttpPort")), 8042);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(v, "Plugins")), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(v, "Plugins"), 1)), "/b");
    CU_ASSERT_PTR_NULL(json_array_get(json_object_get(v, "Plugins"), 2));
    CU_ASSERT(json_is_false(json_object_get(v, "RemoteAccessAllowed")));
    CU_ASSERT(json_is_null(json_object_get(v, "X")));
    CU_ASSERT(json_is_true(json_object_get(v, "T")));
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(v, "F")), -150.0, 1e-12);
    CU_ASSERT_PTR_NULL(json_object_get(v, "Missing"));
    CU_ASSERT_PTR_NULL(json_string_value(json_object_get(v, "HttpPort"))); /* not a string */
    CU_ASSERT_PTR_NULL(json_object_get(json_object_get(v, "Name"), "x")); /* not an object */
    json_decref(v);
}

/* The "CxrSeg" section as the plugin reads it (OrthancPluginGetConfiguration's text). */
static int section(const char *conf, char *path, size_t path_size, char *why)
{
    path[0] = 0;
    why[0] = 0;
    return cxp_config_section(conf, path, path_size, why, 256);
}

static void test_config_section(void)
{
    char path[64], why[256];
    CU_ASSERT_EQUAL(section(conf_text, path, sizeof path, why), 1);
    CU_ASSERT_STRING_EQUAL(path, "/etc/cxrseg/cxrseg.xml");
    CU_ASSERT_EQUAL(section("{\"CxrSeg\": {\"ConfigurationFile\": \"/c.xml\", \"Other\": 1}}", path, sizeof path, why), 1);
    CU_ASSERT_STRING_EQUAL(path, "/c.xml"); /* "Other" is only logged */
    CU_ASSERT_EQUAL(section("{\"Name\": \"x\"}", path, sizeof path, why), 0);
    CU_ASSERT(strstr(why, "no \"CxrSeg\" section") != NULL);
    CU_ASSERT_EQUAL(section("{\"CxrSeg\": {}}", path, sizeof path, why), 0);
    CU_ASSERT(strstr(why, "has no \"ConfigurationFile\"") != NULL);
    CU_ASSERT_EQUAL(section("{\"CxrSeg\": \"/c.xml\"}", path, sizeof path, why), -1);
    CU_ASSERT(strstr(why, "must be an object") != NULL);
    CU_ASSERT_EQUAL(section("{\"CxrSeg\": {\"ConfigurationFile\": \"\"}}", path, sizeof path, why), -1);
    CU_ASSERT(strstr(why, "non-empty string") != NULL);
    CU_ASSERT_EQUAL(section("{\"CxrSeg\": {\"ConfigurationFile\": 3}}", path, sizeof path, why), -1);
    CU_ASSERT(strstr(why, "non-empty string") != NULL);
    CU_ASSERT_EQUAL(section("{\"CxrSeg\": {\"ConfigurationFile\": \"/0123456789\"}}", path, 8, why), -1);
    CU_ASSERT(strstr(why, "longer than 7 characters") != NULL);
    CU_ASSERT_STRING_EQUAL(path, ""); /* not written unless found */
    CU_ASSERT_EQUAL(section("{\"CxrSeg\": {,}}", path, sizeof path, why), -1);
    CU_ASSERT(strncmp(why, "Orthanc's configuration: json: line 1, column ", 46) == 0);
}

static void test_rest_answers(void)
{
    cx_error e = {0};
    json_t *v = NULL;
    CU_ASSERT_EQUAL_FATAL(cxp_find_answer("[ { \"ID\" : \"0a9b-01\", \"MainDicomTags\" : { \"SOPInstanceUID\" : \"1.2.3\" }, "
                                          "\"Type\" : \"Instance\" }, {\"ID\":\"x\",\"MainDicomTags\":{}} ]",
                                          &v, &e),
                          CX_OK);
    CU_ASSERT_EQUAL(json_array_size(v), 2);
    const char *id = NULL, *uid = NULL;
    CU_ASSERT_EQUAL(cxp_find_item(json_array_get(v, 0), &id, &uid), 1);
    CU_ASSERT_STRING_EQUAL(id, "0a9b-01");
    CU_ASSERT_STRING_EQUAL(uid, "1.2.3");
    CU_ASSERT_EQUAL(cxp_find_item(json_array_get(v, 1), &id, &uid), 0);
    CU_ASSERT_PTR_NULL(uid); /* no SOPInstanceUID */
    json_decref(v);
    v = (json_t *)0x1;
    CU_ASSERT_EQUAL(cxp_find_answer("{}", &v, &e), CX_ERR_FORMAT);
    CU_ASSERT_PTR_EQUAL(v, (json_t *)0x1);
    CU_ASSERT(strstr(e.msg, "did not answer with a list") != NULL);
    CU_ASSERT_EQUAL(cxp_find_answer("[", &v, &e), CX_ERR_FORMAT);
    CU_ASSERT(strncmp(e.msg, "/tools/find: json: line 1, column ", 34) == 0);

    /* /tools/lookup */
    CU_ASSERT_EQUAL(cxp_lookup_answer("[]", &e), 0);
    CU_ASSERT_EQUAL(cxp_lookup_answer("[{\"ID\": \"a\", \"Type\": \"Instance\"}]", &e), 1);
    CU_ASSERT_EQUAL(cxp_lookup_answer(" {} ", &e), -1);
    CU_ASSERT_EQUAL(cxp_lookup_answer("\"plain\"", &e), -1);
    CU_ASSERT_EQUAL(cxp_lookup_answer("[1,]", &e), -1);
    CU_ASSERT(strncmp(e.msg, "/tools/lookup: json: line 1, column 4: ", 39) == 0);

    /* POST /instances */
    char oid[CXP_ID_MAX] = "";
    int already = -1;
    CU_ASSERT_EQUAL(cxp_stored_answer("{\"ID\": \"9f3e\", \"Path\": \"/instances/9f3e\", \"Status\": \"Success\"}",
                                      oid, &already, &e),
                    CX_OK);
    CU_ASSERT_STRING_EQUAL(oid, "9f3e");
    CU_ASSERT_EQUAL(already, 0);
    CU_ASSERT_EQUAL(cxp_stored_answer("{\"ID\": \"77\", \"Status\": \"AlreadyStored\"}", oid, &already, &e), CX_OK);
    CU_ASSERT_STRING_EQUAL(oid, "77");
    CU_ASSERT_EQUAL(already, 1);
    char longid[CXP_ID_MAX + 16];
    snprintf(longid, sizeof longid, "{\"ID\": \"%0*d\"}", CXP_ID_MAX, 0);
    CU_ASSERT_EQUAL(cxp_stored_answer(longid, oid, &already, &e), CX_ERR_FORMAT);
    CU_ASSERT_EQUAL(cxp_stored_answer("{\"Status\": \"Success\"}", oid, &already, &e), CX_ERR_FORMAT);
    CU_ASSERT(strstr(e.msg, "no ID in Orthanc's answer") != NULL);
    CU_ASSERT_STRING_EQUAL(oid, "77"); /* untouched on failure */
    CU_ASSERT_EQUAL(cxp_stored_answer("{\"ID\": \"a\"} x", oid, &already, &e), CX_ERR_FORMAT);
    CU_ASSERT(strncmp(e.msg, "POST /instances: json: line 1, column ", 38) == 0);

    v = ok("[]");
    CU_ASSERT(json_is_array(v));
    CU_ASSERT_EQUAL(json_array_size(v), 0);
    json_decref(v);
    v = ok(" {} ");
    CU_ASSERT(json_is_object(v));
    json_decref(v);
    v = ok("\"plain\"");
    CU_ASSERT_STRING_EQUAL(json_string_value(v), "plain");
    json_decref(v);
}

static void test_strings(void)
{
    json_t *v = ok("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00 \xc3\xa9\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(json_string_value(v), "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xc3\xa9");
    json_decref(v);
    /* jansson's own words for each problem */
    CU_ASSERT(strstr(BAD("\"abc"), "premature end of input") != NULL);
    CU_ASSERT(strstr(BAD("\"a\tb\""), "control character") != NULL);
    CU_ASSERT(strstr(BAD("\"\\x\""), "invalid escape") != NULL);
    CU_ASSERT(strstr(BAD("\"\\u12\""), "invalid escape") != NULL);
    CU_ASSERT(strstr(BAD("\"\\ud83d\""), "invalid Unicode '\\uD83D'") != NULL); /* high surrogate alone */
    CU_ASSERT(strstr(BAD("\"\\ude00\""), "invalid Unicode '\\uDE00'") != NULL); /* lone low surrogate */
    CU_ASSERT(strstr(BAD("\"\\u0000\""), "\\u0000") != NULL);
    CU_ASSERT(strstr(BAD("\"\xff\""), "unable to decode byte 0xff") != NULL);
    CU_ASSERT(strstr(BAD("\"\xc0\xaf\""), "unable to decode byte 0xc0") != NULL);     /* overlong '/' */
    CU_ASSERT(strstr(BAD("\"\xed\xa0\x80\""), "unable to decode byte 0xed") != NULL); /* encoded surrogate */
    CU_ASSERT(strstr(BAD("\"\xe2\x82\""), "unable to decode byte 0xe2") != NULL);     /* truncated sequence */
    CU_ASSERT(strstr(BAD("\"\\"), "invalid escape") != NULL);
    /* an embedded NUL byte in the text is a control character, not an early end */
    CU_ASSERT(strstr(bad("\"a\0b\"", 5), "control character") != NULL);
}

static void test_numbers(void)
{
    const char *good[] = {"0", "-0", "12", "-3.25", "1e3", "1E+2", "2.5e-3", "123456789012345678901234567890", NULL};
    const double want[] = {0, 0, 12, -3.25, 1000, 100, 0.0025, 1.2345678901234568e29};
    for (int i = 0; good[i]; i++) {
        json_t *v = ok(good[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT(json_is_number(v));
        CU_ASSERT_DOUBLE_EQUAL(json_number_value(v), want[i], 1e-12 * (1 + want[i]));
        json_decref(v);
    }
    CU_ASSERT(strstr(BAD("01"), "invalid token") != NULL); /* leading zero */
    CU_ASSERT(strstr(BAD("1."), "invalid token") != NULL); /* no digit after the decimal point */
    CU_ASSERT(strstr(BAD("1e"), "invalid token") != NULL); /* no digit in the exponent */
    CU_ASSERT(strstr(BAD("-"), "invalid token") != NULL);
    CU_ASSERT(strstr(BAD("+1"), "invalid token") != NULL);
    CU_ASSERT(strstr(BAD("1e999"), "real number overflow") != NULL);
    CU_ASSERT(strstr(BAD(".5"), "invalid token") != NULL);
    CU_ASSERT(strstr(BAD("NaN"), "invalid token") != NULL);
}

static void test_structure_errors(void)
{
    CU_ASSERT(strstr(BAD(""), "end of file") != NULL);
    CU_ASSERT(strstr(BAD("   "), "end of file") != NULL);
    CU_ASSERT(strstr(BAD("[1,]"), "unexpected token") != NULL); /* trailing comma */
    CU_ASSERT(strstr(BAD("{\"a\":1,}"), "string or '}' expected") != NULL);
    CU_ASSERT(strstr(BAD("[1 2]"), "']' expected") != NULL);
    CU_ASSERT(strstr(BAD("{\"a\" 1}"), "':' expected") != NULL);
    CU_ASSERT(strstr(BAD("{\"a\":1 \"b\":2}"), "'}' expected") != NULL);
    CU_ASSERT(strstr(BAD("{a:1}"), "string or '}' expected") != NULL);
    CU_ASSERT(strstr(BAD("[1"), "']' expected near end of file") != NULL);         /* array not closed */
    CU_ASSERT(strstr(BAD("{\"a\":1"), "'}' expected near end of file") != NULL);   /* object not closed */
    CU_ASSERT(strstr(BAD("{} x"), "end of file expected") != NULL);                /* text after the value */
    CU_ASSERT(strstr(BAD("tru"), "invalid token") != NULL);
    CU_ASSERT(strstr(BAD("// comment\n{}"), "invalid token") != NULL);
    CU_ASSERT(strstr(BAD("{\"a\":1,\"a\":2}"), "duplicate object key") != NULL);
    /* line and column of the problem */
    const char *m = BAD("{\n  \"a\": 1,\n  \"b\": ]\n}");
    CU_ASSERT(strstr(m, "line 3, column 8") != NULL);
    /* nesting bound: jansson's, 2048 levels */
    enum { DEPTH = 2048 };
    static char deep[2 * (DEPTH + 1)];
    memset(deep, '[', DEPTH + 1);
    memset(deep + DEPTH + 1, ']', DEPTH + 1);
    CU_ASSERT(strstr(bad(deep, sizeof deep), "maximum parsing depth") != NULL);
    json_t *v = NULL;
    cx_error e = {0};
    memset(deep, '[', DEPTH);
    memset(deep + DEPTH, ']', DEPTH);
    CU_ASSERT_EQUAL(cxp_json_parse(deep, 2 * DEPTH, &v, &e), CX_OK);
    json_decref(v);
    v = ok("[[[[[[[[[[1]]]]]]]]]]");
    json_decref(v);
    json_decref(NULL);
}

/* jansson allocates through cx_malloc here, so cx_alloc_fail_at reaches it. */
static int injected;
static void *jansson_malloc(size_t n)
{
    void *p = cx_malloc(n);
    injected += !p;
    return p;
}

static void test_allocation_failures(void)
{
    const char *text = "{\"a\":[1,2,3,{\"b\":\"cccc\"}],\"d\":\"e\",\"f\":[\"g\",\"h\",\"i\",\"j\",\"k\"]}";
    int failed_cleanly = 0, as_syntax = 0;
    unsigned long n;
    for (n = 1; n < 200; n++) {
        injected = 0;
        cx_alloc_fail_at(n, 0);
        json_t *v = NULL;
        cx_error e = {0};
        cx_status st = cxp_json_parse(text, strlen(text), &v, &e);
        cx_alloc_fail_at(0, 0);
        if (st == CX_OK) {
            CU_ASSERT_EQUAL(injected, 0);
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "d")), "e");
            json_decref(v);
            break;
        }
        CU_ASSERT_EQUAL(injected, 1);
        CU_ASSERT_PTR_NULL(v);
        if (st == CX_ERR_NOMEM) {
            failed_cleanly++;
        } else {
            /* jansson's lexer turns a failed allocation of a string token's text into a syntax
             * error at that string (load.c: "this is not very nice, since TOKEN_INVALID is
             * returned"): still an error, never a wrong value */
            CU_ASSERT_EQUAL(st, CX_ERR_FORMAT);
            CU_ASSERT(strstr(e.msg, "invalid token near '\"") != NULL ||
                      strstr(e.msg, "string or '}' expected near '\"") != NULL);
            as_syntax++;
        }
    }
    CU_ASSERT(n < 200); /* it succeeded in the end */
    CU_ASSERT(failed_cleanly > 5);
    CU_ASSERT(as_syntax <= 11); /* at most once per string in the text */
}

static void test_answers(void)
{
    /* every string through cx_json_text: escapes, UTF-8 kept, round trip through the reader */
    char *t = cxp_error_answer("q\"\\\n\x01 \xc3\xa9");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t, "{\"Error\": \"q\\\"\\\\\\n\\u0001 \xc3\xa9\"}\n");
    json_t *v = ok(t);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "Error")), "q\"\\\n\x01 \xc3\xa9");
    json_decref(v);
    cx_free(t);
    /* text that is not UTF-8 is read as ISO 8859-1: the answer still parses */
    t = cxp_error_answer("caf\xe9");
    CU_ASSERT_STRING_EQUAL(t, "{\"Error\": \"caf\xc3\xa9\"}\n");
    cx_free(t);
    t = cxp_error_answer(NULL);
    CU_ASSERT_STRING_EQUAL(t, "{\"Error\": \"\"}\n");
    cx_free(t);

    t = cxp_queued_answer("0a9b-01");
    CU_ASSERT_STRING_EQUAL(t, "{\"ID\": \"0a9b-01\", \"Queued\": true}\n");
    cx_free(t);
    t = cxp_find_query(200, 100);
    CU_ASSERT_STRING_EQUAL(t, "{\"Level\":\"Instance\",\"Query\":{\"Modality\":\"CR\\\\DX\"},\"Expand\":true,"
                              "\"Since\":200,\"Limit\":100}");
    cx_free(t);
    const char ids[2][CXP_ID_MAX] = {"a1", "b2"};
    t = cxp_id_list(ids, 2);
    CU_ASSERT_STRING_EQUAL(t, "[\"a1\",\"b2\"]");
    cx_free(t);
    t = cxp_id_list(ids, 0);
    CU_ASSERT_STRING_EQUAL(t, "[]");
    cx_free(t);

    cxp_status s = {.version = "0.1.0", .disabled = "no \"CxrSeg\" section", .queue_capacity = 1024};
    t = cxp_status_answer(&s);
    v = ok(t);
    CU_ASSERT(json_is_false(json_object_get(v, "Enabled")));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "Reason")), "no \"CxrSeg\" section");
    CU_ASSERT_EQUAL(json_object_size(v), 3);
    json_decref(v);
    CU_ASSERT(t[strlen(t) - 1] == '\n');
    cx_free(t);
    s = (cxp_status){.version = "0.1.0", .configuration = "/etc/c.xml", .model_name = "m", .model_version = "1",
                     .model_sha256 = "ab", .model_file = "/m.cxm", .workers = 2, .queue_capacity = 1024, .busy = 1,
                     .scanning = 1, .queue_length = 3,
                     .stats = {.queued = 5, .processed = 4, .failed = 1, .skipped = 2, .ignored = 3, .dropped = 6,
                               .scans = 7, .scan_queued = 8, .forward_failed = 9, .last_ms = 1234.6}};
    t = cxp_status_answer(&s);
    CU_ASSERT(strncmp(t, "{\n  \"Version\": \"0.1.0\",\n  \"Enabled\": true,\n", 43) == 0);
    v = ok(t);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(v, "Model"), "Sha256")), "ab");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(v, "Model"), "File")), "/m.cxm");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "Configuration")), "/etc/c.xml");
    static const struct {
        const char *key;
        double value;
    } want[] = {{"Workers", 2},  {"QueueLength", 3}, {"QueueCapacity", 1024}, {"Busy", 1},
                {"Queued", 5},   {"Processed", 4},   {"Failed", 1},           {"Skipped", 2},
                {"Ignored", 3},  {"Dropped", 6},     {"ForwardFailed", 9},    {"Scans", 7},
                {"QueuedByScan", 8}, {"LastMilliseconds", 1235}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CU_ASSERT_EQUAL(json_number_value(json_object_get(v, want[i].key)), want[i].value);
    CU_ASSERT(json_is_false(json_object_get(v, "ScanPending")));
    CU_ASSERT(json_is_true(json_object_get(v, "Scanning")));
    CU_ASSERT_EQUAL(json_object_size(v), 20);
    json_decref(v);
    cx_free(t);
}

/* Each answer is NULL or whole when an allocation fails (plugin.c then answers 500). */
static void test_answers_allocation_failures(void)
{
    cxp_status s = {.version = "0.1.0", .configuration = "/etc/c.xml", .model_name = "m\xc3\xa9", .model_version = "1",
                    .model_sha256 = "ab", .model_file = "/m.cxm\xe9", .workers = 2, .queue_capacity = 1024};
    char *full = cxp_status_answer(&s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(full);
    int nulls = 0;
    unsigned long n;
    for (n = 1; n < 400; n++) {
        cx_alloc_fail_at(n, 0);
        char *t = cxp_status_answer(&s);
        cx_alloc_fail_at(0, 0);
        if (t && !strcmp(t, full)) {
            cx_free(t);
            break;
        }
        CU_ASSERT_PTR_NULL(t);
        cx_free(t);
        nulls++;
    }
    CU_ASSERT(n < 400);
    CU_ASSERT(nulls > 20);
    cx_free(full);
    const char ids[3][CXP_ID_MAX] = {"a", "b", "c"};
    for (n = 1; n < 50; n++) {
        cx_alloc_fail_at(n, 0);
        char *t = cxp_id_list(ids, 3);
        cx_alloc_fail_at(0, 0);
        CU_ASSERT(!t || !strcmp(t, "[\"a\",\"b\",\"c\"]"));
        cx_free(t);
    }
}

static void test_utf8_rule(void)
{
    CU_ASSERT(cx_json_utf8_ok(""));
    CU_ASSERT(cx_json_utf8_ok("plain \x7f"));
    CU_ASSERT(cx_json_utf8_ok("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf")); /* up to U+10FFFF */
    CU_ASSERT_FALSE(cx_json_utf8_ok("\xff"));
    CU_ASSERT_FALSE(cx_json_utf8_ok("\xe9t\xe9"));         /* ISO 8859-1 */
    CU_ASSERT_FALSE(cx_json_utf8_ok("\xc0\xaf"));          /* overlong '/' */
    CU_ASSERT_FALSE(cx_json_utf8_ok("\xe0\x80\xaf"));      /* overlong, 3 bytes */
    CU_ASSERT_FALSE(cx_json_utf8_ok("\xed\xa0\x80"));      /* encoded surrogate */
    CU_ASSERT_FALSE(cx_json_utf8_ok("\xe2\x82"));          /* truncated sequence */
    CU_ASSERT_FALSE(cx_json_utf8_ok("\xf4\x90\x80\x80"));  /* above U+10FFFF */
    CU_ASSERT_FALSE(cx_json_utf8_ok("\xf5\x80\x80\x80"));
    CU_ASSERT_FALSE(cx_json_utf8_ok("a\x80"));             /* lone continuation byte */
    /* the same rule as jansson's reader: what one accepts the other does */
    const char *samples[] = {"\xc3\xa9", "\xf4\x8f\xbf\xbf", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe9"};
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        char text[16];
        snprintf(text, sizeof text, "\"%s\"", samples[i]);
        json_t *v = NULL;
        CU_ASSERT_EQUAL(cxp_json_parse(text, strlen(text), &v, NULL) == CX_OK, cx_json_utf8_ok(samples[i]));
        json_decref(v);
    }
    /* out of memory is NULL, never a string read the other way */
    cx_alloc_fail_at(1, 1);
    CU_ASSERT_PTR_NULL(cx_json_text("\xc3\xa9"));
    CU_ASSERT_PTR_NULL(cx_json_text("\xe9"));
    cx_alloc_fail_at(0, 0);
    json_t *j = cx_json_text("\xe9t\xe9");
    CU_ASSERT_STRING_EQUAL(json_string_value(j), "\xc3\xa9t\xc3\xa9");
    json_decref(j);
}

static void test_fput_text(void)
{
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(cx_json_fput_text(f, "a\"b\\c\t/\x7f"), 0);
    fputc(' ', f);
    CU_ASSERT_EQUAL(cx_json_fput_text(f, "Gr\xfc\xdf"), 0); /* ISO 8859-1 */
    fputc(' ', f);
    CU_ASSERT_EQUAL(cx_json_fput_text(f, NULL), 0);
    char buf[64] = "";
    rewind(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "\"a\\\"b\\\\c\\t/\x7f\" \"Gr\xc3\xbc\xc3\x9f\" \"\"");
}

static int suite_init(void)
{
    json_set_alloc_funcs(jansson_malloc, cx_free);
    return 0;
}

static const cx_test_case cases[] = {
    {"orthanc configuration", test_orthanc_configuration},
    {"the CxrSeg section", test_config_section},
    {"REST answers", test_rest_answers},
    {"strings, escapes, UTF-8", test_strings},
    {"numbers", test_numbers},
    {"structure errors with line/column", test_structure_errors},
    {"allocation failures", test_allocation_failures},
    {"the plugin's answers", test_answers},
    {"answers when allocations fail", test_answers_allocation_failures},
    {"cx_json.h: which text is UTF-8", test_utf8_rule},
    {"cx_json_fput_text", test_fput_text},
    {NULL, NULL},
};

CX_TEST_MAIN_SUITE("plugin_json", suite_init, NULL, cases)

/* Fuzz harness: the JSON the Orthanc plugin reads (plugin/exchange.c): the strict parser, the
 * "CxrSeg" configuration section, the answers of POST /instances, /tools/lookup and /tools/find
 * with its items, each given the input as Orthanc's text; then what the plugin writes from what it
 * read (its answers and the id list it forwards) must parse back. GPL-3.0-or-later. */
#include "fuzz.h"

#include "cx_base.h"
#include "exchange.h"

static void log_drop(cx_log_level level, const char *module, const char *job, const char *msg, void *user)
{
    (void)level, (void)module, (void)job, (void)msg, (void)user;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cx_log_set_sink(log_drop, NULL);
    return 0;
}

static void check_err(cx_status st, const cx_error *e)
{
    FUZZ_CHECK(st != CX_OK && e->code == st);
    FUZZ_CHECK(FUZZ_TERMINATED(e->msg) && e->msg[0] != 0);
}

/* A text the plugin writes is JSON that its own strict reader takes (NULL only on no memory). */
static void check_written(char *text)
{
    if (!text)
        return;
    json_t *v = NULL;
    cx_error e;
    memset(&e, 0, sizeof e);
    cx_status st = cxp_json_parse(text, strlen(text), &v, &e);
    if (st != CX_OK)
        fprintf(stderr, "fuzz: the plugin wrote JSON its reader refuses (%s): %s\n", e.msg, text);
    FUZZ_CHECK(st == CX_OK);
    json_decref(v);
    cx_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cx_error e;
    memset(&e, 0, sizeof e);
    json_t *v = NULL;
    static const char none[1];
    cx_status st = cxp_json_parse(size ? (const char *)data : none, size, &v, &e);
    if (st == CX_OK) {
        FUZZ_CHECK(v != NULL);
        json_decref(v);
    } else {
        check_err(st, &e);
        FUZZ_CHECK(v == NULL);
    }

    /* The readers take NUL-terminated text, as the SDK hands it over. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;

    char path[256], why[512];
    path[0] = why[0] = 0;
    int rc = cxp_config_section(text, path, sizeof path, why, sizeof why);
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    FUZZ_CHECK(memchr(why, 0, sizeof why) && memchr(path, 0, sizeof path));
    FUZZ_CHECK(rc != 1 || path[0] != 0);
    FUZZ_CHECK(rc == 1 || why[0] != 0);

    char id[CXP_ID_MAX];
    int already = -1;
    memset(&e, 0, sizeof e);
    st = cxp_stored_answer(text, id, &already, &e);
    if (st == CX_OK) {
        FUZZ_CHECK(memchr(id, 0, sizeof id) != NULL);
        FUZZ_CHECK(already == 0 || already == 1);
        check_written(cxp_queued_answer(id));
    } else {
        check_err(st, &e);
    }

    memset(&e, 0, sizeof e);
    rc = cxp_lookup_answer(text, &e);
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc < 0)
        check_err(e.code, &e);

    json_t *list = NULL;
    memset(&e, 0, sizeof e);
    st = cxp_find_answer(text, &list, &e);
    if (st == CX_OK) {
        FUZZ_CHECK(json_is_array(list));
        size_t n = json_array_size(list), k = 0;
        char (*ids)[CXP_ID_MAX] = calloc(n ? n : 1, CXP_ID_MAX);
        for (size_t i = 0; ids && i < n; i++) {
            const char *oid = NULL, *uid = NULL;
            if (cxp_find_item(json_array_get(list, i), &oid, &uid)) {
                FUZZ_CHECK(oid && uid && strlen(oid) < CXP_ID_MAX);
                snprintf(ids[k++], CXP_ID_MAX, "%s", oid);
            }
        }
        if (ids)
            check_written(cxp_id_list((const char(*)[CXP_ID_MAX])ids, k));
        free(ids);
        json_decref(list);
    } else {
        check_err(st, &e);
        FUZZ_CHECK(list == NULL);
    }

    /* Orthanc's bytes in an error message the plugin sends back (any bytes, not only UTF-8). */
    check_written(cxp_error_answer(text));
    free(text);
    return 0;
}

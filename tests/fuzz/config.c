/* Fuzz harness: the configuration loader (cx_config_load: libxml2, validation against
 * conf/cxrseg.xsd, then the option table and the cross-field rules), given the input as the conf
 * file, and the filters of a conf that loads applied to one object. GPL-3.0-or-later. */
#include "fuzz.h"

#include "cx_base.h"
#include "cx_config.h"

static char xsd[4096];

static void log_drop(cx_log_level level, const char *module, const char *job, const char *msg, void *user)
{
    (void)level, (void)module, (void)job, (void)msg, (void)user;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(xsd, sizeof xsd, "%s/conf/cxrseg.xsd", fuzz_srcdir());
    fuzz_need_file(xsd, "the schema");
    cx_log_set_sink(log_drop, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_tmp_write(data, size, ".xml");
    FUZZ_CHECK(path != NULL);
    cx_config *cfg = NULL;
    static cx_config_errors errs; /* 40 KB: not on the stack */
    memset(&errs, 0, sizeof errs);
    cx_status st = cx_config_load(path, xsd, &cfg, &errs);
    FUZZ_CHECK(errs.count <= CX_CONFIG_MAX_ERRORS);
    for (size_t i = 0; i < errs.count; i++)
        FUZZ_CHECK(FUZZ_TERMINATED(errs.items[i].text) && errs.items[i].text[0] != 0);
    if (st != CX_OK) {
        FUZZ_CHECK(cfg == NULL);
        FUZZ_CHECK(errs.count >= 1);
        FUZZ_CHECK(st == CX_ERR_CONFIG || st == CX_ERR_IO || st == CX_ERR_NOMEM);
        return 0;
    }
    FUZZ_CHECK(cfg != NULL);
    const cx_config_object obj = {"CR", "CHEST", "PA", "PA chest", 2048, 2500};
    char why[256];
    why[0] = 0;
    cx_config_action a = cx_config_filter(&cfg->filters, &obj, why, sizeof why);
    FUZZ_CHECK(cx_config_action_name(a) != NULL);
    FUZZ_CHECK(memchr(why, 0, sizeof why) != NULL);
    cx_config_free(cfg);
    return 0;
}

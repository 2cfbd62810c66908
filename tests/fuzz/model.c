/* Fuzz harness: the model file (models/FORMAT.md) given as the input: the container reader
 * (cx_mfile_open, every count, length and offset against the file) and the model loader
 * (cx_model_load: hyper-parameters, class table, every tensor's shape, the weight transforms),
 * then everything a loaded model tells its callers. GPL-3.0-or-later. */
#include "fuzz.h"

#include "cx_base.h"
#include "cx_mfile.h"
#include "cx_mrcnn.h"

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

static void check_container(cx_mfile *mf, size_t size)
{
    FUZZ_CHECK(cx_mfile_size(mf) == size);
    FUZZ_CHECK(strlen(cx_mfile_sha256(mf)) == 64);
    for (int i = 0; i < cx_mfile_meta_count(mf); i++) {
        const cx_meta *m = cx_mfile_meta_at(mf, i);
        FUZZ_CHECK(m && m->key && cx_mfile_meta(mf, m->key) == m);
        FUZZ_CHECK(m->count >= 0);
        FUZZ_CHECK(m->type >= CX_META_I64 && m->type <= CX_META_STR_ARRAY);
        volatile size_t sum = 0; /* every value is readable (ASan) */
        for (int j = 0; j < m->count; j++) {
            if (m->s)
                sum += strlen(m->s[j]);
            else
                sum += (size_t)m->i[j] + (size_t)(m->f[j] == m->f[j]);
        }
        (void)sum;
    }
    for (int i = 0; i < cx_mfile_tensor_count(mf); i++) {
        cx_tensor_ref *t = cx_mfile_tensor_at(mf, i);
        FUZZ_CHECK(t && t->name && t->ndim >= 0 && t->ndim <= CX_MFILE_MAX_DIMS);
        FUZZ_CHECK(((uintptr_t)t->data & 63) == 0);
        if (t->nbytes) { /* first and last byte lie in the mapping */
            volatile uint8_t b = ((const uint8_t *)t->data)[0];
            b = ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)b;
        }
    }
}

static void check_model(const cx_model *m)
{
    FUZZ_CHECK(cx_model_name(m) && cx_model_version(m) && cx_model_path(m));
    FUZZ_CHECK(strlen(cx_model_sha256(m)) == 64);
    FUZZ_CHECK(cx_model_integrity(m) != NULL);
    const cx_arch_info *a = cx_model_arch(m);
    FUZZ_CHECK(a && a->backbone);
    int k = cx_model_num_classes(m);
    FUZZ_CHECK(k >= 1 && k + 1 == a->num_classes);
    for (int l = 1; l <= k; l++) {
        const cx_class_info *c = cx_model_class(m, l);
        FUZZ_CHECK(c && c->name && c->meaning && c->code.value && c->code.scheme && c->code.meaning);
        FUZZ_CHECK(!c->has_modifier || (c->modifier.value && c->modifier.scheme && c->modifier.meaning));
    }
    FUZZ_CHECK(cx_model_class(m, 0) == NULL && cx_model_class(m, k + 1) == NULL);
    const cx_decision *d = cx_model_decision(m);
    FUZZ_CHECK(d && d->label >= 0 && d->label <= k);
    for (int i = 0; i < cx_model_provenance_count(m); i++) {
        const char *key = NULL, *value = NULL;
        if (cx_model_provenance_at(m, i, &key, &value))
            FUZZ_CHECK(key && value);
    }
    (void)cx_model_meta_str(m, "model.name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_tmp_write(data, size, ".cxm");
    FUZZ_CHECK(path != NULL);
    cx_error e;
    memset(&e, 0, sizeof e);
    cx_mfile *mf = NULL;
    cx_status st = cx_mfile_open(path, &mf, &e);
    if (st != CX_OK) {
        check_err(st, &e);
        FUZZ_CHECK(mf == NULL);
        return 0; /* cx_model_load opens the same way */
    }
    check_container(mf, size);
    cx_mfile_free(mf);

    cx_model *m = NULL;
    memset(&e, 0, sizeof e);
    st = cx_model_load(path, &m, &e);
    if (st != CX_OK) {
        check_err(st, &e);
        FUZZ_CHECK(m == NULL);
        return 0;
    }
    check_model(m);
    cx_model_free(m);
    return 0;
}

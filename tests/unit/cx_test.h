/* Shared CUnit runner: every unit-test program ends with CX_TEST_MAIN so that main returns non-zero
 * when any assertion failed (CU_basic_run_tests alone returns 0), and 77 (automake "skip") when a
 * suite asked to skip because a resource (../shared, a tool) is absent. */
#ifndef CX_TEST_H
#define CX_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>

/* Path of the shared data folder (CX_SHARED from the test environment), or NULL when absent. */
static inline const char *cx_test_shared(void)
{
    const char *s = getenv("CX_SHARED");
    static char buf[4096];
    if (!s || !*s)
        return NULL;
    snprintf(buf, sizeof buf, "%s/data", s);
    FILE *f;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/README.md", buf);
    if (!(f = fopen(probe, "r")))
        return NULL;
    fclose(f);
    return buf;
}

static inline const char *cx_test_srcdir(void)
{
    const char *s = getenv("CX_SRCDIR");
    return s && *s ? s : ".";
}

typedef struct cx_test_case {
    const char *name;
    void (*fn)(void);
} cx_test_case;

static inline int cx_test_run(const char *suite_name, const cx_test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite_name, NULL, NULL);
    if (!s)
        return 2;
    for (const cx_test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn))
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (failed)
        return 1;
    return run ? 0 : 77;
}

#define CX_TEST_MAIN(suite, cases) \
    int main(void) { return cx_test_run(suite, cases); }

#endif

/* Shared CUnit runner: every unit-test program ends with CX_TEST_MAIN (or cx_test_run_suite) so that
 * main returns non-zero when any assertion failed (CU_basic_run_tests alone returns 0), and 77
 * (automake "skip") when nothing failed but some check could not run because a resource (../shared,
 * a tool) is absent: cx_test_skip says which, and the program is then SKIP, never PASS. */
#ifndef CX_TEST_H
#define CX_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int cx_test_skips;

/* A check that cannot run here (its tool or data is missing): printed, and the program's exit
 * status becomes 77 unless something failed. */
static inline void cx_test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\n  SKIP: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    cx_test_skips++;
}

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

/* init/cleanup: CUnit suite set-up and tear-down (NULL for none); 0 = success. */
static inline int cx_test_run_suite(const char *suite_name, int (*init)(void), int (*cleanup)(void),
                                    const cx_test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite_name, init, cleanup);
    if (!s)
        return 2;
    for (const cx_test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn))
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                      CU_get_number_of_suites_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (failed)
        return 1;
    if (cx_test_skips)
        fprintf(stderr, "SKIP: %d check%s could not run here (see SKIP lines above); the rest passed\n",
                cx_test_skips, cx_test_skips == 1 ? "" : "s");
    return run && !cx_test_skips ? 0 : 77;
}

static inline int cx_test_run(const char *suite_name, const cx_test_case *cases)
{
    return cx_test_run_suite(suite_name, NULL, NULL, cases);
}

#define CX_TEST_MAIN(suite, cases) \
    int main(void) { return cx_test_run(suite, cases); }
#define CX_TEST_MAIN_SUITE(suite, init, cleanup, cases) \
    int main(void) { return cx_test_run_suite(suite, init, cleanup, cases); }

#endif

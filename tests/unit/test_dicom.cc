#include "cx_test.h"
#include "cxdicom.h"
static void t_none(void) { CU_ASSERT(1); }
static const cx_test_case cases[] = {{"none", t_none}, {NULL, NULL}};
CX_TEST_MAIN("dicom", cases)

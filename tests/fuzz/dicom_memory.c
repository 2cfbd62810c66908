/* Fuzz harness: a source image handed over in memory (cxd_file_open_memory, as the Orthanc plugin
 * gets it from Orthanc), then what the pipeline reads and decodes from it (fuzz_dicom.h).
 * GPL-3.0-or-later. */
#include "fuzz.h"
#include "fuzz_dicom.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_dicom_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    cxd_file *f = NULL;
    cxd_error e;
    memset(&e, 0, sizeof e);
    cxd_status st = cxd_file_open_memory(size ? data : none, size, &f, &e);
    if (st != CXD_OK) {
        fuzz_check_cxd_error(st, &e);
        FUZZ_CHECK(f == NULL);
        return 0;
    }
    FUZZ_CHECK(f != NULL);
    fuzz_dicom_exercise(f);
    cxd_file_free(f);
    return 0;
}

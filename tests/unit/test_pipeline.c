/* Unit tests for the pipeline's DICOM -> grey-scale mapping on synthetic attribute sets: which
 * modality transform, which window or LUT, which function, which polarity; and the mapping of the
 * DICOM layer's status codes. Real files are in test_pipeline_files.c. */
#include "config.h"
#include "cx_pipe.h"
#include "cx_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cxd_info mono2(void)
{
    cxd_info i;
    memset(&i, 0, sizeof i);
    strcpy(i.photometric, "MONOCHROME2");
    i.samples_per_pixel = 1;
    i.bits_allocated = 16;
    i.bits_stored = 12;
    i.rows = i.columns = 4;
    return i;
}

static void test_first_window_and_polarity(void)
{
    cxd_info i = mono2();
    strcpy(i.photometric, "MONOCHROME1");
    i.n_windows = 2;
    i.window_center[0] = 15000;
    i.window_width[0] = 30000;
    i.window_center[1] = 100;
    i.window_width[1] = 50;
    cx_pipe_mapping m;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.modality.kind, CX_MODALITY_IDENTITY);
    CU_ASSERT_EQUAL(m.voi.kind, CX_VOI_WINDOW);
    CU_ASSERT_EQUAL(m.voi.function, CX_VOI_LINEAR);
    CU_ASSERT_EQUAL(m.voi.center, 15000);
    CU_ASSERT_EQUAL(m.voi.width, 30000);
    CU_ASSERT_EQUAL(m.voi.invert, 1);
    CU_ASSERT_STRING_EQUAL(m.description,
                           "modality: identity; VOI: window 1 of 2, 15000/30000 LINEAR; polarity: inverted (MONOCHROME1)");
    cx_pipe_params p = cx_pipe_default_params();
    p.window_index = 1;
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, &p, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.center, 100);
    /* MONOCHROME1 with INVERSE: one inversion, not two */
    strcpy(i.presentation_lut_shape, "INVERSE");
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.invert, 1);
    /* MONOCHROME2 with INVERSE: inverted; with IDENTITY: normal */
    strcpy(i.photometric, "MONOCHROME2");
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.invert, 1);
    strcpy(i.presentation_lut_shape, "IDENTITY");
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.invert, 0);
}

static void test_functions(void)
{
    cxd_info i = mono2();
    i.n_windows = 1;
    i.window_center[0] = 40;
    i.window_width[0] = 400;
    cx_pipe_mapping m;
    cx_error e = {0};
    strcpy(i.voi_lut_function, "SIGMOID");
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.function, CX_VOI_SIGMOID);
    strcpy(i.voi_lut_function, "LINEAR_EXACT");
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.function, CX_VOI_LINEAR_EXACT);
    strcpy(i.voi_lut_function, "BOGUS"); /* unknown: LINEAR, the standard's default */
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.function, CX_VOI_LINEAR);
    /* width 0.5 is valid for LINEAR_EXACT, not for LINEAR (then: no usable window -> automatic) */
    i.window_width[0] = 0.5;
    strcpy(i.voi_lut_function, "LINEAR_EXACT");
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.kind, CX_VOI_WINDOW);
    strcpy(i.voi_lut_function, "");
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.kind, CX_VOI_AUTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.description, "automatic window (percentile; the file has none)"));
}

static void test_voi_lut_and_auto(void)
{
    static uint16_t vlut[256], mlut[16];
    for (int k = 0; k < 256; k++)
        vlut[k] = (uint16_t)(k * 257);
    for (int k = 0; k < 16; k++)
        mlut[k] = (uint16_t)(k * 100);
    cxd_info i = mono2();
    i.voi_lut.present = 1;
    i.voi_lut.entries = 256;
    i.voi_lut.bits = 16;
    i.voi_lut.data = vlut;
    i.n_voi_luts = 1;
    cx_pipe_mapping m;
    cx_error e = {0};
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.kind, CX_VOI_LUT);
    CU_ASSERT_PTR_EQUAL(m.voi.lut.data, vlut);
    /* a window, when present, wins over the LUT */
    i.n_windows = 1;
    i.window_center[0] = 10;
    i.window_width[0] = 20;
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, NULL, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.kind, CX_VOI_WINDOW);
    /* overrides */
    cx_pipe_params p = cx_pipe_default_params();
    p.voi_mode = CX_PIPE_VOI_AUTO;
    p.auto_method = CX_AUTO_MINMAX;
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, &p, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.voi.kind, CX_VOI_AUTO);
    CU_ASSERT_EQUAL(m.voi.auto_method, CX_AUTO_MINMAX);
    p.voi_mode = CX_PIPE_VOI_WINDOW;
    p.center = 5;
    p.width = 0;
    CU_ASSERT_EQUAL(cx_pipe_map(&i, &p, &m, &e), CX_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(e.msg, "load: window 5/0 unusable for LINEAR");
    /* NONE: the full modality range. Rescale 2/-1000 over 12-bit unsigned: -1000 .. 7190 */
    i.has_rescale = 1;
    i.rescale_slope = 2;
    i.rescale_intercept = -1000;
    p.voi_mode = CX_PIPE_VOI_NONE;
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, &p, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.modality.kind, CX_MODALITY_RESCALE);
    CU_ASSERT_EQUAL(m.voi.range_min, -1000);
    CU_ASSERT_EQUAL(m.voi.range_max, 7190);
    /* a modality LUT wins over rescale; NONE then spans the LUT's entries */
    i.modality_lut.present = 1;
    i.modality_lut.entries = 16;
    i.modality_lut.first_mapped = -8;
    i.modality_lut.bits = 16;
    i.modality_lut.data = mlut;
    CU_ASSERT_EQUAL_FATAL(cx_pipe_map(&i, &p, &m, &e), CX_OK);
    CU_ASSERT_EQUAL(m.modality.kind, CX_MODALITY_LUT);
    CU_ASSERT_EQUAL(m.modality.lut.first_mapped, -8);
    CU_ASSERT_EQUAL(m.voi.range_min, 0);
    CU_ASSERT_EQUAL(m.voi.range_max, 1500);
    /* a LUT whose entries exceed its declared bits is refused with the numbers */
    i.modality_lut.bits = 8;
    CU_ASSERT_EQUAL(cx_pipe_map(&i, &p, &m, &e), CX_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "image: modality LUT: LUT entry 3 = 300 exceeds 255 (descriptor says 8 bits)");
}

static void test_unsupported(void)
{
    cxd_info i = mono2();
    cx_pipe_mapping m;
    memset(&m, 0x5a, sizeof m);
    unsigned char before = ((unsigned char *)&m)[0];
    cx_error e = {0};
    strcpy(i.photometric, "RGB");
    i.samples_per_pixel = 3;
    CU_ASSERT_EQUAL(cx_pipe_map(&i, NULL, &m, &e), CX_ERR_UNSUPPORTED);
    CU_ASSERT_STRING_EQUAL(e.msg, "load: photometric interpretation 'RGB' is not greyscale (MONOCHROME1/2 expected)");
    CU_ASSERT_EQUAL(((unsigned char *)&m)[0], before); /* out untouched on failure */
    i = mono2();
    i.has_rescale = 1;
    i.rescale_slope = 0;
    CU_ASSERT_EQUAL(cx_pipe_map(&i, NULL, &m, &e), CX_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "load: rescale slope 0 / intercept 0 unusable");
}

static void test_status_mapping(void)
{
    CU_ASSERT_EQUAL(cx_pipe_status_from_cxd(CXD_OK), CX_OK);
    CU_ASSERT_EQUAL(cx_pipe_status_from_cxd(CXD_ERR_NOMEM), CX_ERR_NOMEM);
    CU_ASSERT_EQUAL(cx_pipe_status_from_cxd(CXD_ERR_IO), CX_ERR_IO);
    CU_ASSERT_EQUAL(cx_pipe_status_from_cxd(CXD_ERR_NOT_DICOM), CX_ERR_FORMAT);
    CU_ASSERT_EQUAL(cx_pipe_status_from_cxd(CXD_ERR_MALFORMED), CX_ERR_FORMAT);
    CU_ASSERT_EQUAL(cx_pipe_status_from_cxd(CXD_ERR_MISSING), CX_ERR_FORMAT);
    CU_ASSERT_EQUAL(cx_pipe_status_from_cxd(CXD_ERR_UNSUPPORTED), CX_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(cx_pipe_status_from_cxd(CXD_ERR_INTERNAL), CX_ERR_INTERNAL);
    cxd_error d;
    memset(&d, 0, sizeof d);
    snprintf(d.msg, sizeof d.msg, "decode: rows = 0");
    cx_error e = {0};
    CU_ASSERT_EQUAL(cx_pipe_error_from_cxd(&d, CXD_ERR_MALFORMED, &e), CX_ERR_FORMAT);
    CU_ASSERT_EQUAL(e.code, CX_ERR_FORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "decode: rows = 0");
}

static void test_load_errors(void)
{
    cx_pipe_image *img = NULL;
    cx_error e = {0};
    CU_ASSERT_EQUAL(cx_pipe_load_file("/nonexistent/x.dcm", NULL, &img, NULL, &e), CX_ERR_IO);
    CU_ASSERT_STRING_EQUAL(e.msg, "load: cannot open /nonexistent/x.dcm: No such file or directory");
    CU_ASSERT_PTR_NULL(img);
    /* a text file is neither PNG/JPEG nor DICOM: the DICOM layer's message, mapped to FORMAT */
    char path[] = "/tmp/cx_test_pipe_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, "this is not an image at all\n", 28) == 28);
    close(fd);
    cx_status s = cx_pipe_load_file(path, NULL, &img, NULL, &e);
    CU_ASSERT(s == CX_ERR_FORMAT);
    CU_ASSERT(strlen(e.msg) > 0);
    CU_ASSERT_PTR_NULL(img);
    unlink(path);
}

static const cx_test_case cases[] = {
    {"first window and polarity", test_first_window_and_polarity},
    {"VOI LUT functions", test_functions},
    {"VOI LUT, overrides, modality", test_voi_lut_and_auto},
    {"unsupported and invalid", test_unsupported},
    {"status mapping", test_status_mapping},
    {"load errors", test_load_errors},
    {NULL, NULL},
};

CX_TEST_MAIN("pipeline", cases)

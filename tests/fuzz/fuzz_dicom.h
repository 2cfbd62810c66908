/* fuzz_dicom.h: what the pipeline does with an opened source image (src/pipeline/cx_pipe_load.c:
 * cxd_file_info, the spacing, cxd_file_decode, cx_pipe_map and the grey-scale chain), shared by
 * the two DICOM harnesses, with the invariants dicom/cxdicom.h promises. GPL-3.0-or-later. */
#ifndef CX_FUZZ_DICOM_H
#define CX_FUZZ_DICOM_H

#include <math.h>

#include "cx_base.h"
#include "cx_image.h"
#include "cx_pipe.h"
#include "cxdicom.h"
#include "fuzz.h"

/* Largest image the harness decodes: 4 Mpixel (a 2048 x 2048 film). The layer itself accepts up to
 * 32768 x 32768, whose 4 GiB of decoded values would only measure the fuzzer's malloc limit. */
#define FUZZ_MAX_PIXELS ((size_t)1 << 22)
/* A second guard for buffers the layer hands out (a decoder that trusts another size than
 * Rows x Columns): refuse anything beyond twice the decoded image. */
#define FUZZ_MAX_ALLOC (FUZZ_MAX_PIXELS * sizeof(int32_t) * 2)

static void *fuzz_dicom_malloc_(size_t n) { return n > FUZZ_MAX_ALLOC ? NULL : malloc(n); }

static void fuzz_cx_log_drop_(cx_log_level level, const char *module, const char *job, const char *msg, void *user)
{
    (void)level, (void)module, (void)job, (void)msg, (void)user;
}

static inline void fuzz_dicom_init(void)
{
    cxd_error e;
    memset(&e, 0, sizeof e);
    if (cxd_init(&e) != CXD_OK) {
        fprintf(stderr, "fuzz: SKIP: cxd_init: %s\n", e.msg);
        exit(77);
    }
    cxd_set_allocator(fuzz_dicom_malloc_, free);
    cxd_set_log(NULL, NULL);
    cx_log_set_sink(fuzz_cx_log_drop_, NULL);
}

/* A failed call sets a message and the status it returned. */
static inline void fuzz_check_cxd_error(cxd_status st, const cxd_error *e)
{
    FUZZ_CHECK(st != CXD_OK);
    FUZZ_CHECK(e->code == st);
    FUZZ_CHECK(FUZZ_TERMINATED(e->msg) && e->msg[0] != 0);
}

static inline void fuzz_check_lut(const cxd_lut *l)
{
    if (!l->present)
        return;
    FUZZ_CHECK(l->entries >= 1 && l->entries <= 65536);
    FUZZ_CHECK(l->data != NULL);
    FUZZ_CHECK(FUZZ_TERMINATED(l->explanation) && FUZZ_TERMINATED(l->lut_type));
    volatile uint32_t sum = 0; /* every entry is readable (ASan) */
    for (uint32_t i = 0; i < l->entries; i++)
        sum += l->data[i];
    (void)sum;
}

static inline void fuzz_check_info(const cxd_info *in)
{
    FUZZ_CHECK(FUZZ_TERMINATED(in->sop_class_uid) && FUZZ_TERMINATED(in->sop_instance_uid));
    FUZZ_CHECK(FUZZ_TERMINATED(in->transfer_syntax_uid) && FUZZ_TERMINATED(in->transfer_syntax_name));
    FUZZ_CHECK(FUZZ_TERMINATED(in->photometric) && FUZZ_TERMINATED(in->patient_name));
    FUZZ_CHECK(FUZZ_TERMINATED(in->specific_character_set) && FUZZ_TERMINATED(in->voi_lut_function));
    FUZZ_CHECK(in->n_windows >= 0 && in->n_windows <= CXD_MAX_WINDOWS);
    for (int i = 0; i < in->n_windows; i++)
        FUZZ_CHECK(FUZZ_TERMINATED(in->window_explanation[i]));
    FUZZ_CHECK(in->rows >= 0 && in->rows <= 65535 && in->columns >= 0 && in->columns <= 65535);
    FUZZ_CHECK(!in->has_pixel_spacing || (in->pixel_spacing[0] > 0 && in->pixel_spacing[1] > 0));
    fuzz_check_lut(&in->modality_lut);
    fuzz_check_lut(&in->voi_lut);
}

static inline void fuzz_dicom_exercise(cxd_file *f)
{
    cxd_info info;
    cxd_error e;
    memset(&info, 0, sizeof info);
    memset(&e, 0, sizeof e);
    cxd_status st = cxd_file_info(f, &info, &e);
    if (st != CXD_OK) {
        fuzz_check_cxd_error(st, &e);
        return;
    }
    fuzz_check_info(&info);
    double sp[2];
    const char *which = NULL;
    int has = cxd_info_spacing(&info, sp, &which);
    FUZZ_CHECK(which != NULL);
    FUZZ_CHECK(!has || (sp[0] > 0 && sp[1] > 0));

    if ((size_t)info.rows * (size_t)info.columns <= FUZZ_MAX_PIXELS) {
        cxd_pixels px;
        memset(&px, 0, sizeof px);
        st = cxd_file_decode(f, &px, &e);
        if (st == CXD_OK) {
            FUZZ_CHECK(px.rows == info.rows && px.columns == info.columns);
            FUZZ_CHECK(px.data != NULL && px.bits_stored >= 1 && px.bits_stored <= 16);
            cx_pipe_params params = cx_pipe_default_params();
            cx_pipe_mapping m;
            cx_error ce;
            memset(&ce, 0, sizeof ce);
            if (cx_pipe_map(&info, &params, &m, &ce) == CX_OK) {
                cx_image *img = NULL;
                if (cx_grey_render(px.data, px.columns, px.rows, &m.modality, &m.voi, &img, &ce) == CX_OK) {
                    FUZZ_CHECK(img && img->width == px.columns && img->height == px.rows);
                    for (size_t i = 0; i < (size_t)img->width * (size_t)img->height; i++)
                        FUZZ_CHECK(!(img->data[i] < 0.0f || img->data[i] > 1.0f)); /* NaN passes */
                    cx_image_free(img);
                } else {
                    FUZZ_CHECK(ce.code != CX_OK && ce.msg[0]);
                }
            } else {
                FUZZ_CHECK(ce.code != CX_OK && ce.msg[0]);
            }
            cxd_pixels_clear(&px);
        } else {
            fuzz_check_cxd_error(st, &e);
            FUZZ_CHECK(px.data == NULL); /* out-parameters are written only on success */
        }
    }
    cxd_info_clear(&info);
}

#endif

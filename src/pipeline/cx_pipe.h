/* cx_pipe: the only module that knows every stage. This first part loads a source image (DICOM
 * through dicom/cxdicom.h, or a PNG/JPEG training/evaluation image) and produces exactly what the
 * engine will see: the DICOM grey-scale chain chosen from the file's attributes, then the resize
 * to the engine's input size. Inference and result writing are added here by later stages. */
#ifndef CX_PIPE_H
#define CX_PIPE_H

#include "cx_base.h"
#include "cx_image.h"
#include "cxdicom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Maps a DICOM-layer status onto cx_status (NOT_DICOM, MALFORMED and MISSING are FORMAT). */
cx_status cx_pipe_status_from_cxd(cxd_status s);
/* Copies the DICOM layer's message and mapped code into err (if non-NULL); returns the code. */
cx_status cx_pipe_error_from_cxd(const cxd_error *derr, cxd_status s, cx_error *err);

/* Which VOI transform to use. FILE is the normal choice and follows PS3.3/PS3.4 practice: the
 * file's window number `window_index` (the first by default) if usable, else the first VOI LUT,
 * else the automatic window. The others are overrides for the CLI and for tests. */
typedef enum cx_pipe_voi_mode {
    CX_PIPE_VOI_FILE = 0,
    CX_PIPE_VOI_AUTO = 1,   /* ignore the file's VOI; automatic window */
    CX_PIPE_VOI_WINDOW = 2, /* the given centre/width (LINEAR unless the file says otherwise) */
    CX_PIPE_VOI_NONE = 3    /* no VOI: the full modality output range, as dcm2pnm's default */
} cx_pipe_voi_mode;

typedef struct cx_pipe_params {
    cx_pipe_voi_mode voi_mode;
    int window_index;            /* FILE: which window, 0-based */
    double center, width;        /* WINDOW */
    cx_auto_method auto_method;  /* AUTO, and FILE when the file has no VOI */
    double auto_low_pct, auto_high_pct;
    cx_fit_params fit;           /* engine input size; longest = 0 and min_size = 0: no resize */
} cx_pipe_params;

/* FILE mode, window 0, percentile 1..99 automatic window, no resize. */
cx_pipe_params cx_pipe_default_params(void);
/* The engine input size a model asks for (its min_size/max_size): a square model (min = max) fits
 * the longest side; otherwise torchvision's min/max rule. */
cx_fit_params cx_pipe_fit_for(int min_size, int max_size);

/* The chosen grey-scale chain for one DICOM image, in image-module terms. LUT data pointers are
 * borrowed from the cxd_info they were mapped from: use the mapping while that info lives. */
typedef struct cx_pipe_mapping {
    cx_modality_params modality;
    cx_voi_params voi;
    char description[400]; /* e.g. "modality: rescale 1/0; VOI: window 1 of 1, 15000/30000 LINEAR;
                              polarity: inverted (MONOCHROME1)" */
} cx_pipe_mapping;

/* Chooses modality transform, VOI and polarity from the attributes:
 * - modality: Modality LUT Sequence if present, else Rescale Slope/Intercept, else identity;
 * - VOI per params (see cx_pipe_voi_mode); a window that is unusable for its function (width < 1
 *   for LINEAR, <= 0 otherwise) is skipped with a warning in the log; an unknown VOI LUT Function
 *   is treated as LINEAR (the default the standard gives) with a warning;
 * - polarity: inverted when Photometric Interpretation is MONOCHROME1 or Presentation LUT Shape is
 *   INVERSE (for DX, MONOCHROME1 comes with INVERSE and both name the same single inversion).
 * Colour or non-MONOCHROME photometric interpretations are CX_ERR_UNSUPPORTED. */
cx_status cx_pipe_map(const cxd_info *info, const cx_pipe_params *params, cx_pipe_mapping *out,
                      cx_error *err);

/* A loaded source image. */
typedef struct cx_pipe_image {
    cx_image *display;       /* [0,1] at source resolution: the windowed image a viewer shows */
    cx_image *input;         /* resized per params.fit (NULL when no resize was asked for) */
    int source_width, source_height;
    char source_kind[8];     /* "dicom", "png" or "jpeg" */
    char description[400];   /* how display was made (cx_pipe_mapping.description for DICOM) */
    double ms_decode;        /* pixel data decoding (DICOM; 0 for PNG/JPEG, read in one step) */
    double ms_window;        /* modality LUT, VOI, polarity and the resize */
} cx_pipe_image;

void cx_pipe_image_free(cx_pipe_image *img); /* NULL is a no-op */

/* Renders an opened DICOM file whose attributes the caller already read into `info`. */
cx_status cx_pipe_render_dicom(const cxd_file *f, const cxd_info *info, const cx_pipe_params *params,
                               cx_pipe_image **out, cx_error *err);

/* Loads any supported file: PNG and JPEG are recognised by their signature (their pixels are
 * already display values: only the resize applies); anything else is opened as DICOM.
 * When `info` is non-NULL and the file is DICOM, it receives the attributes (release with
 * cxd_info_clear); for PNG/JPEG it is zeroed. */
cx_status cx_pipe_load_file(const char *path, const cx_pipe_params *params, cx_pipe_image **out,
                            cxd_info *info, cx_error *err);

/* Pixel spacing for areas, row then column (see cxd_info_spacing): PixelSpacing unless absent or
 * 0\0, else ImagerPixelSpacing. Returns 1 with *which set, or 0 and "none". */
int cx_pipe_spacing(const cxd_info *info, double spacing[2], const char **which);

#ifdef __cplusplus
}
#endif
#endif

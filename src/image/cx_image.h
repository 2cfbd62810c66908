/* cx_image: the greyscale pipeline between decoded stored values and what the engine sees:
 * modality LUT -> VOI (window or LUT, or an automatic window) -> polarity -> [0,1] float, area
 * resize to the engine's input size, PNG/JPEG in and out, and the overlay picture (masks and a
 * legend burned into the display image). Knows nothing of DICOM (the pipeline
 * module maps DICOM attributes onto these parameters); depends on cx_base only. */
#ifndef CX_IMAGE_H
#define CX_IMAGE_H

#include "cx_base.h"
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A single-channel float image, row-major, `width*height` values in `data`.
 * Created by cx_image_new (or the functions below), released with cx_image_free; the fields are
 * public so the engine can read the pixels without a copy, but width/height must not be changed. */
typedef struct cx_image {
    int width, height;
    float *data;
} cx_image;

/* Largest side accepted anywhere in this module (guards size arithmetic and absurd inputs). */
#define CX_IMAGE_MAX_SIDE 65536

/* Allocates a zeroed width x height image. CX_ERR_INVALID for non-positive or too large sizes. */
cx_status cx_image_new(int width, int height, cx_image **out, cx_error *err);
void cx_image_free(cx_image *img); /* NULL is a no-op */
cx_status cx_image_clone(const cx_image *src, cx_image **out, cx_error *err);

/* ---- Modality LUT (PS3.3 C.11.1): stored values -> modality values ---- */
typedef struct cx_grey_lut {
    uint32_t entries;      /* number of entries (1..65536) */
    int32_t first_mapped;  /* stored value mapped to data[0]; may be negative (signed LUT) */
    int bits;              /* bits per entry (8..16): output range is 0 .. 2^bits-1 */
    const uint16_t *data;  /* `entries` values, borrowed (not copied, not freed) */
} cx_grey_lut;

typedef enum cx_modality_kind {
    CX_MODALITY_IDENTITY = 0, /* modality value = stored value */
    CX_MODALITY_RESCALE = 1,  /* slope * stored + intercept */
    CX_MODALITY_LUT = 2       /* explicit LUT; inputs outside the LUT clamp to its first/last entry */
} cx_modality_kind;

typedef struct cx_modality_params {
    cx_modality_kind kind;
    double slope, intercept;  /* RESCALE; slope must be finite and non-zero */
    cx_grey_lut lut;          /* LUT */
} cx_modality_params;

/* Applies the modality transform to n = width*height stored values. */
cx_status cx_grey_modality(const int32_t *stored, int width, int height, const cx_modality_params *p,
                           cx_image **out, cx_error *err);
/* Checks a LUT (entries, bits, every value within 2^bits-1). Message names the first bad value. */
cx_status cx_grey_lut_check(const cx_grey_lut *lut, const char *what, cx_error *err);

/* ---- VOI (PS3.3 C.11.2) and presentation: modality values -> [0,1] ---- */
typedef enum cx_voi_function {
    CX_VOI_LINEAR = 0,       /* C.11.2.1.2.1, needs width >= 1 */
    CX_VOI_LINEAR_EXACT = 1, /* C.11.2.1.3.2, needs width > 0 */
    CX_VOI_SIGMOID = 2       /* C.11.2.1.3.1, needs width > 0 */
} cx_voi_function;

typedef enum cx_voi_kind {
    CX_VOI_WINDOW = 0, /* centre/width with `function` */
    CX_VOI_LUT = 1,    /* explicit VOI LUT; output = entry / (2^bits - 1) */
    CX_VOI_AUTO = 2,   /* automatic window computed from the image (cx_grey_auto_window) */
    CX_VOI_NONE = 3    /* no VOI: map [range_min, range_max] linearly (DCMTK's "no windowing") */
} cx_voi_kind;

/* Automatic window: the pixels equal to the image's minimum or maximum value are left out (they are
 * usually collimator shadow, unexposed or saturated background, or padding), then the window spans
 * the low..high percentiles of what remains (defaults 1 and 99: robust to the few very bright labels
 * and burned-in markers a radiograph carries). If nothing remains (a two-level image) or the
 * percentiles coincide, it falls back to min..max of the whole image. MINMAX is plain min..max. */
typedef enum cx_auto_method { CX_AUTO_PERCENTILE = 0, CX_AUTO_MINMAX = 1 } cx_auto_method;

typedef struct cx_voi_params {
    cx_voi_kind kind;
    double center, width;        /* WINDOW */
    cx_voi_function function;    /* WINDOW (AUTO always uses LINEAR_EXACT over low..high) */
    cx_grey_lut lut;             /* LUT */
    cx_auto_method auto_method;  /* AUTO */
    double auto_low_pct, auto_high_pct; /* AUTO percentile bounds, 0 <= low < high <= 100 */
    double range_min, range_max; /* NONE: the full range of modality values (range_max > range_min) */
    int invert;                  /* 1: output = 1 - y (MONOCHROME1, or Presentation LUT Shape INVERSE) */
} cx_voi_params;

/* Defaults: AUTO, PERCENTILE 1..99, LINEAR, no inversion. */
cx_voi_params cx_voi_default_params(void);

/* Evaluates one window function at x (ymin 0, ymax 1). Exactly the PS3.3 formulas, including the
 * degenerate LINEAR width = 1 (a step at c - 0.5). Returns NAN for an invalid width. */
double cx_grey_window_eval(cx_voi_function f, double center, double width, double x);

/* Computes the automatic window over `img`: *center and *width describe the LINEAR_EXACT window
 * low..high (width = high - low, > 0). CX_ERR_FORMAT when the image holds non-finite values. */
cx_status cx_grey_auto_window(const cx_image *img, cx_auto_method method, double low_pct,
                              double high_pct, double *center, double *width, cx_error *err);

/* Applies VOI and polarity to modality values; *out is a new image in [0,1]. */
cx_status cx_grey_voi(const cx_image *modality, const cx_voi_params *p, cx_image **out, cx_error *err);

/* Whole chain: stored values -> modality -> VOI -> polarity -> [0,1] float image. */
cx_status cx_grey_render(const int32_t *stored, int width, int height, const cx_modality_params *m,
                         const cx_voi_params *v, cx_image **out, cx_error *err);

/* [0,1] -> 8 bit: round(y * 255), clamped; NaN becomes 0. `out` holds width*height bytes. */
void cx_image_to_u8(const cx_image *img, uint8_t *out);
/* [0,1] -> 16 bit: round(y * 65535), clamped. */
void cx_image_to_u16(const cx_image *img, uint16_t *out);

/* ---- Resize ---- */
/* Target size rule. longest > 0: the longest side becomes `longest` (the other side rounded,
 * at least 1). Otherwise torchvision's GeneralizedRCNNTransform rule: scale = min_size / shorter
 * side, reduced to max_size / longer side when the longer side would exceed max_size; each side is
 * floor(side * scale) (at least 1). Aspect ratio is kept either way. */
typedef struct cx_fit_params {
    int longest;
    int min_size, max_size;
} cx_fit_params;
cx_status cx_image_fit_size(int width, int height, const cx_fit_params *p, int *out_width,
                            int *out_height, cx_error *err);

/* Area-averaging resize: every output pixel is the mean of the source area it covers, with
 * fractional coverage at its borders (an exact box filter; separable). Constant images stay
 * constant and the image mean is preserved for any ratio. Works for upscaling too. */
cx_status cx_image_resize_area(const cx_image *src, int out_width, int out_height, cx_image **out,
                               cx_error *err);

/* ---- Overlay: masks and a legend burned into the display image ---- */
/* One mask to draw: a box in image pixels and its w*h bytes (non-zero = inside), borrowed.
 * With has_box, also the rectangle box (x1, y1, x2, y2 in image pixels, clipped to the image)
 * outlined in the layer's colour, and label (may be empty) written at its top left. */
typedef struct cx_overlay_layer {
    int x0, y0, w, h;
    const uint8_t *mask;
    uint8_t rgb[3];
    int has_box;
    int box[4];
    char label[64];
} cx_overlay_layer;

/* One legend line: ASCII text (drawn in upper case; characters the font lacks become '?'),
 * wrapped at spaces to the image width, in rgb (when has_color; otherwise white), after a
 * square swatch of that colour when swatch is set. */
typedef struct cx_legend_line {
    char text[200];
    int has_color, swatch;
    uint8_t rgb[3];
} cx_legend_line;

/* Renders the [0,1] display image as 8-bit RGB with every layer tinted (35 % of its colour) and
 * outlined in it, each layer over the ones before it, then the boxes and their labels (on dark
 * backing, above the box where there is room), then the legend lines in a dark box at the top left
 * (font scaled to the image: 1 px per 400 px of the shorter side). *out receives
 * width*height*3 bytes allocated with cx_malloc (release with cx_free); written only on success.
 * CX_ERR_INVALID for a layer outside the image. */
cx_status cx_overlay_render(const cx_image *display, const cx_overlay_layer *layers, size_t n_layers,
                            const cx_legend_line *lines, size_t n_lines, uint8_t **out, cx_error *err);

/* ---- PNG and JPEG files ---- */
/* Writes img ([0,1]) as 8-bit (bits = 8) or 16-bit (bits = 16) greyscale PNG. */
cx_status cx_image_write_png(const char *path, const cx_image *img, int bits, cx_error *err);
/* Writes interleaved 8-bit RGB (overlays): width*height*3 bytes. */
cx_status cx_image_write_png_rgb(const char *path, const uint8_t *rgb, int width, int height,
                                 cx_error *err);

/* Reads a PNG or JPEG file (recognised by its signature, not its name) into greyscale [0,1].
 * Colour is converted to luma with ITU-R BT.601 weights computed exactly as Pillow's
 * convert("L") does for 8-bit data ((19595 R + 38470 G + 7471 B + 32768) >> 16), so that images
 * match those the Python training tools see; alpha is ignored; palettes are expanded; 16-bit
 * PNG keeps its precision (value / 65535). *bit_depth (may be NULL) receives 8 or 16. */
cx_status cx_image_read(const char *path, cx_image **out, int *bit_depth, cx_error *err);
/* 1 if the first bytes look like PNG or JPEG (used by callers to pick a reader). */
int cx_image_sniff(const void *head, size_t len);

#ifdef __cplusplus
}
#endif
#endif

/* segment: one source DICOM image through every stage: render (cx_pipe) -> engine (cx_mrcnn) ->
 * findings (labels and DICOM codes from the model's class table; the image-level present/absent
 * answer from the model's decision rule; lungs; share of each lung affected; areas by the spacing
 * rule) -> SEG, SR, GSPS, SC (dicom/ writers) and an overlay PNG.
 * The CLI (`cxrseg segment`) and, later, the node's workers call it. */
#ifndef CX_SEGMENT_H
#define CX_SEGMENT_H

#include "cx_base.h"
#include "cx_mrcnn.h"
#include "cx_image.h"
#include "cxdicom.h"

#include <stdatomic.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most foreground classes a model may have for the pipeline (the thresholds live on the stack). */
#define CX_SEGMENT_MAX_CLASSES 64

typedef struct cx_segment_params {
    cxd_write_options write;       /* UID root, series, outputs (CXD_OUT_*), SEG-when-nothing rule */
    double score;                  /* >= 0: one reporting threshold for every class; < 0: per class */
    /* Per-class reporting thresholds by class name (conf file <threshold class=...>), else the
     * model's own class.<i>.score_thresh. */
    size_t n_thresholds;
    const char *const *threshold_names;
    const double *threshold_scores;
    const char *overlay_png;       /* path of the overlay PNG, or NULL for none */
    /* Optional filter run on the attributes before any pixel work (the conf file's filters):
     * returns 1 to process; 0 to skip, with the reason in why. A skip is CX_ERR_UNSUPPORTED. */
    int (*accept)(const cxd_info *info, void *user, char *why, size_t why_size);
    void *accept_user;
    /* Set by another thread to stop the work (the node's job deadline): checked between the
     * stages and inside the engine (cx_mrcnn_set_cancel); the call then fails with CX_ERR_TIMEOUT.
     * NULL: never. */
    const atomic_int *cancel;
} cx_segment_params;

/* Defaults: cxd_write_options_default (SEG + SR), model thresholds, no overlay. */
void cx_segment_default_params(cx_segment_params *p);

/* The parameters a loaded configuration asks for (outputs, UID root, series numbers and
 * descriptions, SEG encoding and empty-SEG rule, manufacturer, per-class thresholds), on top of
 * the defaults; software_version (NULL: the default) names the writer in the objects. The
 * threshold names point into cfg, which must outlive p; the arrays are p's: free them with
 * cx_segment_params_release. The one mapping used by the CLI, the node and the plugin. */
struct cx_config;
cx_status cx_segment_params_from_config(const struct cx_config *cfg, const char *software_version,
                                        cx_segment_params *p, cx_error *err);
void cx_segment_params_release(cx_segment_params *p);

/* What one image gave (for logs, the CLI summary table and tests). */
typedef struct cx_segment_result {
    int width, height;             /* source image */
    int n_detections;              /* returned by the network before the reporting thresholds */
    int n_lungs;                   /* lung fields kept (0..2) */
    int n_findings;                /* abnormal findings kept (opacity, GGO, ...) */
    double max_finding_score;      /* 0 when none */
    /* The image-level answer (cx_segment_decide): what the SR's present/absent item says. */
    double image_score;            /* cx_decision_image_score; 0 when no detection qualifies */
    int finding_present;           /* 1 present, 0 absent */
    cx_decision rule;              /* the rule applied (label 0: the model has no finding class) */
    /* Share of each lung covered by the union of all findings, %; -1 when that lung was not found.
     * Index 0 = right, 1 = left (the patient's sides, from the class modifiers). */
    double lung_share_pct[2];
    long finding_pixels;           /* union of all findings */
    double finding_area_mm2;       /* -1 without usable spacing */
    char spacing_used[24];         /* "PixelSpacing", "ImagerPixelSpacing" or "none" */
    cxd_write_result written;      /* files and UIDs */
    double ms_render, ms_infer, ms_write; /* ms_write: the DICOM outputs only */
    double ms_decode, ms_window;          /* the parts of ms_render (cx_pipe_image); the rest is
                                             opening and parsing the file */
    double ms_overlay;                    /* the overlay PNG */
} cx_segment_result;

/* The image-level answer for detections d of a width x height image: the model's decision rule
 * (cx_decision, models/FORMAT.md decision.*), its score raised to the decision class's reporting
 * threshold under p when that is higher (so that "present" always comes with a reported finding).
 * Returns 1 when present; *rule (the rule applied) and *image_score may be NULL. keep (NULL, or
 * d->count entries) gets 1 for each detection the product reports (cx_decision_keep: the class
 * thresholds, one best detection per single-instance class, the finding only when present). */
int cx_segment_decide(const cx_model *m, const cx_segment_params *p, const cx_detections *d, int width, int height,
                      cx_decision *rule, double *image_score, int *keep);
/* "a detection >= 0.62 covering >= 0.5% of the image" (no area part when min_area is 0). */
void cx_segment_rule_text(const cx_decision *rule, char *buf, size_t n);
/* "<meaning of the decision class>: present (image score 0.93[; rule: <cx_segment_rule_text>])",
 * or "no finding class in the model". */
void cx_segment_verdict_text(const cx_model *m, const cx_decision *rule, double image_score, int present,
                             int with_rule, char *buf, size_t n);

/* The step between engine and writers, on its own for tests: decides the image-level answer
 * (cx_segment_decide), applies the reporting thresholds (detections of the decision class only
 * when present), keeps the best lung field of each side, and describes every kept detection as
 * a cxd_finding (lungs first, right then left; then the findings by score). For each finding: the
 * share of each lung it covers (its pixels inside that lung's mask / the lung's pixels) and the
 * finding site laterality (Right, Left, Bilateral, or none when it touches no lung). Classes come
 * from m. fs and keep need room for d->count entries; fs points into d's masks. Fills r's
 * image_score, finding_present, rule, n_lungs, n_findings, max_finding_score, lung_share_pct
 * (union of all findings per lung; -1 for a lung not found) and finding_pixels. */
cx_status cx_segment_findings(const cx_model *m, const cx_detections *d, const cx_segment_params *p, int width,
                              int height, cxd_finding *fs, size_t *n_out, int *keep, cx_segment_result *r,
                              cx_error *err);

/* The legend of that picture (below), on its own for tests: at most CX_SEGMENT_LEGEND_LINES(nf)
 * lines into lines[], their number in *n_lines. W x H: the image size the findings' boxes are in. */
#define CX_SEGMENT_LEGEND_LINES(nf) ((nf) + 5)
cx_status cx_segment_legend(const cx_model *m, int W, int H, const cxd_finding *fs, size_t nf,
                            const cx_segment_result *r, const double *spacing_mm, cx_legend_line *lines,
                            size_t *n_lines, cx_error *err);

/* The picture of overlay.png and of the secondary capture: the display image ([0,1], source size)
 * with the findings fs tinted and outlined in their colours, and a legend: "research use only -
 * not for diagnosis", the model's name and version, the image-level answer, then each class in its
 * colour with (findings) the share of each lung the union of its findings covers and (with
 * spacing_mm, row and column spacing; NULL = none) its area. *rgb receives width*height*3 bytes
 * (cx_malloc'ed; release with cx_free), written only on success. r: its rule, image_score and
 * finding_present are used. */
cx_status cx_segment_picture(const cx_model *m, const cx_image *display, const cxd_finding *fs, size_t nf,
                             const cx_segment_result *r, const double *spacing_mm, uint8_t **rgb, cx_error *err);

/* Processes one DICOM file into out_dir (must exist). m and s belong to the caller (one state
 * per thread). PNG/JPEG input is CX_ERR_UNSUPPORTED: results are DICOM objects that reference a
 * DICOM source. *out is written only on success. */
cx_status cx_segment_file(const cx_model *m, cx_mrcnn *s, const char *path, const char *out_dir,
                          const cx_segment_params *p, cx_segment_result *out, cx_error *err);

#ifdef __cplusplus
}
#endif
#endif

/* cx_eval: validation figures for `cxrseg eval`. Reads a dataset in the shared form (images/,
 * masks/ cropped RGBA PNGs, structure.csv), builds ground-truth instances per model class, and
 * accumulates per-class Dice, COCO mask AP, image-level detection sensitivity/specificity and the
 * "% of each lung affected" error from the engine's detections. Depends on mrcnn (detections, class
 * table) and base; the CLI runs the pipeline and the engine and feeds the results in. */
#ifndef CX_EVAL_H
#define CX_EVAL_H

#include "cx_base.h"
#include "cx_mrcnn.h"
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CX_EVAL_MAX_CLASSES 16
#define CX_EVAL_MAX_SIDE 65536

/* ---------------- dataset ---------------- */
typedef struct cx_eval_dataset cx_eval_dataset;

/* Opens DIR/structure.csv (columns Class, Filename, Mask, Top, Left by header name; rows with an
 * empty Mask are kept as images without that annotation). Errors name file:line. */
cx_status cx_eval_dataset_open(const char *dir, cx_eval_dataset **out, cx_error *err);
void cx_eval_dataset_free(cx_eval_dataset *d);
int cx_eval_dataset_count(const cx_eval_dataset *d);          /* images, in file order */
const char *cx_eval_dataset_name(const cx_eval_dataset *d, int i); /* Filename column */
const char *cx_eval_dataset_dir(const cx_eval_dataset *d);
/* Keeps only the images named in `names` (n entries), in that order. Unknown names are an error. */
cx_status cx_eval_dataset_select(cx_eval_dataset *d, const char *const *names, int n, cx_error *err);

/* Reads the array of strings under `key` of a JSON object file (e.g. split.json's "val"). *out is
 * a cx_malloc'ed array of cx_strdup'ed strings; free with cx_eval_strings_free. */
cx_status cx_eval_read_split(const char *path, const char *key, char ***out, int *n, cx_error *err);
void cx_eval_strings_free(char **s, int n);

/* Which model label a dataset Class string means, 0 for none. Matches the model class's name or
 * meaning, or the known aliases ("COVID-19 Ground Glass Opacities" -> ggo), case-insensitively,
 * ignoring a "COVID-19 " prefix and treating spaces, '-' and '_' alike. */
int cx_eval_class_label(const cx_model *m, const char *dataset_class);

/* Ground truth of one image: for each label 1..K an instance map (0 = none, i = instance i,
 * 1-based), width*height int32. Instances: ggo-like classes one per 8-connected region of at least
 * min_region_px pixels (regions below are dropped everywhere, including the Dice union); other
 * classes one instance per class (all its pixels). */
typedef struct cx_eval_gt {
    int width, height, num_classes;
    int32_t *inst[CX_EVAL_MAX_CLASSES + 1];
    int n_inst[CX_EVAL_MAX_CLASSES + 1];
    int64_t *inst_area[CX_EVAL_MAX_CLASSES + 1]; /* [n_inst + 1], index 0 unused */
} cx_eval_gt;

/* Which labels are split into connected regions (1) or kept whole (0): by default the model
 * class named "ggo" and anything whose name is not a lung. */
typedef struct cx_eval_params {
    int split_regions[CX_EVAL_MAX_CLASSES + 1];
    double min_region_frac; /* drop regions smaller than this fraction of the image area */
} cx_eval_params;
cx_eval_params cx_eval_default_params(const cx_model *m);
/* Same without a model: label 1 split into regions, others whole. */
cx_eval_params cx_eval_default_params_k(int num_classes);

/* Builds the ground truth of image i at its full resolution width x height. The model's class
 * names map dataset rows to labels (see cx_eval_class_label); rows of other classes are ignored.
 * A mask lying wholly outside the image, or an unreadable mask PNG, is CX_ERR_FORMAT. */
cx_status cx_eval_load_gt(const cx_eval_dataset *d, int i, const cx_model *m, int width, int height,
                          const cx_eval_params *p, cx_eval_gt *out, cx_error *err);
/* Same, with the class list given directly: names[1..k] are model class names (for tests). */
cx_status cx_eval_load_gt_names(const cx_eval_dataset *d, int i, const char *const *names, int k,
                                int width, int height, const cx_eval_params *p, cx_eval_gt *out,
                                cx_error *err);
/* Builds the instance maps from per-label binary masks (masks[1..k], width*height bytes, 0/1). */
cx_status cx_eval_gt_from_masks(const uint8_t *const *masks, int k, int width, int height,
                                const cx_eval_params *p, cx_eval_gt *out, cx_error *err);
void cx_eval_gt_clear(cx_eval_gt *gt);

/* ---------------- metrics ---------------- */
typedef struct cx_eval cx_eval;

/* k foreground classes; score_thresh[1..k] = the shipped reporting threshold per class (Dice,
 * image-level detection and lung-share figures count only detections at or above it; AP uses
 * every detection). lung_right / lung_left / finding: labels for the "% of lung affected" error
 * (0 disables it). */
cx_status cx_eval_new(int k, const float *score_thresh, int finding, int lung_right, int lung_left,
                      cx_eval **out, cx_error *err);
void cx_eval_free(cx_eval *e);

/* Adds one image: ground truth and detections at the same resolution (masks box-local as the
 * engine returns them). */
cx_status cx_eval_add(cx_eval *e, const char *name, const cx_eval_gt *gt, const cx_detections *dets,
                      double ms, cx_error *err);

typedef struct cx_eval_class_result {
    int n_dice;                 /* images where GT or prediction is non-empty */
    double dice_mean, dice_median;
    int n_gt, n_det;            /* instances */
    double ap50, ap75, ap;      /* COCO mask AP at IoU 0.5, 0.75, and mean over 0.50:0.05:0.95 */
} cx_eval_class_result;

typedef struct cx_eval_result {
    int k, n_images;
    cx_eval_class_result cls[CX_EVAL_MAX_CLASSES + 1];
    double map50, map;          /* means over classes with ground truth */
    /* image-level detection of `finding` at the shipped threshold */
    int tp, fn, fp, tn;
    double sensitivity, specificity; /* NAN when undefined */
    /* "% of lung affected" error in percentage points over images where the GT lung exists */
    int n_share[2];
    double share_mae[2], share_bias[2]; /* [0] right, [1] left */
    double ms_mean;
} cx_eval_result;

cx_status cx_eval_result_get(const cx_eval *e, cx_eval_result *out, cx_error *err);

/* Writes the table (names from the model when non-NULL, else "class N"). */
void cx_eval_print_table(const cx_eval *e, const cx_eval_result *r, const cx_model *m, FILE *out);
/* Writes everything as JSON: summary, per class (incl. the precision-recall curve at IoU 0.5 on
 * the 101 recall points), per image. */
cx_status cx_eval_write_json(const cx_eval *e, const cx_eval_result *r, const cx_model *m,
                             const char *model_path, const char *data_dir, const char *path,
                             cx_error *err);

#ifdef __cplusplus
}
#endif
#endif

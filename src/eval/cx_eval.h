/* cx_eval: validation figures for `cxrseg eval`. Reads a dataset in either of two forms: the
 * structure form (images/, masks/ cropped RGBA PNGs, structure.csv) or the mask-folder form
 * (images/, lung/, infection/ full-size masks, manifest.csv; COVID-QU-Ex), builds ground-truth
 * instances per model class, and accumulates per-class Dice, COCO mask AP, the image-level decision
 * (ROC AUC, sensitivity/specificity) and the "% of lung affected" error from the engine's
 * detections, for the whole dataset and per category. Depends on mrcnn (detections, class table),
 * image (PNG reading) and base; the CLI runs the pipeline and the engine and feeds the results in. */
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

typedef enum cx_eval_form {
    CX_EVAL_FORM_STRUCTURE = 0,  /* images/, masks/, structure.csv */
    CX_EVAL_FORM_MASKFOLDER = 1  /* images/<id>.png, lung/<id>.png, infection/<id>.png, manifest.csv */
} cx_eval_form;

/* Opens a dataset folder, its form chosen by what DIR holds: structure.csv -> the structure form;
 * else manifest.csv and images/ -> the mask-folder form; else CX_ERR_IO naming both.
 * Structure form: structure.csv (columns Class, Filename, Mask, Top, Left by header name; rows
 * with an empty Mask are kept as images without that annotation).
 * Mask-folder form: manifest.csv (columns by header name: id required; category and source_split
 * optional; others ignored); an image's files are images/<id>.png, lung/<id>.png (both lung fields
 * in one 0/non-zero mask) and infection/<id>.png (the finding; empty on images without one).
 * Errors name file:line. */
cx_status cx_eval_dataset_open(const char *dir, cx_eval_dataset **out, cx_error *err);
void cx_eval_dataset_free(cx_eval_dataset *d);
cx_eval_form cx_eval_dataset_form(const cx_eval_dataset *d);
int cx_eval_dataset_count(const cx_eval_dataset *d);          /* images, in file order */
/* The image's name: the Filename column (structure form) or the id (mask-folder form). */
const char *cx_eval_dataset_name(const cx_eval_dataset *d, int i);
/* The image file relative to the dataset folder ("images/<Filename>", "images/<id>.png"). */
const char *cx_eval_dataset_file(const cx_eval_dataset *d, int i);
/* The manifest's category and source_split of image i; NULL when the dataset has no such column. */
const char *cx_eval_dataset_category(const cx_eval_dataset *d, int i);
const char *cx_eval_dataset_source_split(const cx_eval_dataset *d, int i);
const char *cx_eval_dataset_dir(const cx_eval_dataset *d);
/* Keeps only the images named in `names` (n entries), in that order. Unknown names are an error. */
cx_status cx_eval_dataset_select(cx_eval_dataset *d, const char *const *names, int n, cx_error *err);
/* Keeps, in order, the images whose source_split equals `source_split` (NULL: any) and whose
 * category is one of categories[0..n_categories) (n_categories 0: any). CX_ERR_FORMAT when the
 * dataset lacks the column asked for, or when no image is left. */
cx_status cx_eval_dataset_filter(cx_eval_dataset *d, const char *source_split,
                                 const char *const *categories, int n_categories, cx_error *err);

/* Reads the array of strings under `key` of a JSON object file (e.g. split.json's "val"). *out is
 * a cx_malloc'ed array of cx_strdup'ed strings; free with cx_eval_strings_free. */
cx_status cx_eval_read_split(const char *path, const char *key, char ***out, int *n, cx_error *err);
void cx_eval_strings_free(char **s, int n);

/* Which model label a dataset Class string means, 0 for none. Matches the model class's name or
 * meaning, or the known aliases ("COVID-19 Ground Glass Opacities" -> ggo; GGO and
 * "COVID-19 Consolidation" -> opacity, so that opacity's ground truth is their union), case-
 * insensitively, ignoring a "COVID-19 " prefix and treating spaces, '-' and '_' alike. The
 * mask-folder form's folders are matched the same way: "infection" means opacity (and ggo, the
 * nearest ground truth an old GGO-only model has), the split lung "Right Lung" / "Left Lung". */
int cx_eval_class_label(const cx_model *m, const char *dataset_class);
/* The same rule on a class name alone (the model's short name, no meaning). */
int cx_eval_class_matches(const char *model_class_name, const char *dataset_class);

/* Splits a mask holding both lung fields (w*h bytes, non-zero = lung) into the patient's sides, by
 * the same rule as the trainer (models/train/maskfolder.py split_lungs): 8-connected regions; the
 * two largest regions of at least 1 % of the image are the fields; the one whose mean column is
 * smaller (image left) is the patient's RIGHT lung; other regions join the field whose mean column
 * is nearer (the right one on a tie). *ambiguous = 1 (right and left left all zero) when fewer
 * than two such regions exist, or when the two fields' column ranges overlap by more than half of
 * the narrower one's width (one above the other). right and left: w*h bytes, written 0/1. */
cx_status cx_eval_split_lungs(const uint8_t *lung, int w, int h, uint8_t *right, uint8_t *left,
                              int *ambiguous, cx_error *err);

/* Ground truth of one image: for each label 1..K an instance map (0 = none, i = instance i,
 * 1-based), width*height int32. Instances: finding classes one per 8-connected region of at least
 * min_region_px pixels (regions below are dropped everywhere, including the Dice union); other
 * classes one instance per class (all its pixels). */
typedef struct cx_eval_gt {
    int width, height, num_classes;
    int32_t *inst[CX_EVAL_MAX_CLASSES + 1];
    int n_inst[CX_EVAL_MAX_CLASSES + 1];
    int64_t *inst_area[CX_EVAL_MAX_CLASSES + 1]; /* [n_inst + 1], index 0 unused */
    /* Both lungs, width*height bytes 0/1, from the loaders (NULL from cx_eval_gt_from_masks: the
     * union of the lung labels' instances is used then). */
    uint8_t *lung;
    /* 1 when the sides of the lung are unknown (mask-folder form, cx_eval_split_lungs ambiguous):
     * the lung-side labels then have no instances and are left out of their Dice and AP. */
    int lung_side_unknown;
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
 * names map dataset rows (structure form) or mask folders (mask-folder form) to labels (see
 * cx_eval_class_label); rows of other classes are ignored. A mask lying wholly outside the image
 * (structure form), a mask whose size is not width x height (mask-folder form), or an unreadable
 * mask PNG is CX_ERR_FORMAT naming the file and the sizes. */
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

#define CX_EVAL_MAX_CATEGORIES 8
#define CX_EVAL_CATEGORY_LEN 32
/* When images carry categories, the image-level negatives are the images of this category; images
 * of other categories without a GT finding (non-COVID pneumonia) have no ground truth for the
 * finding: they count for neither, and their share called present is reported apart. Without
 * categories the negatives are the images without a GT finding. */
#define CX_EVAL_NEGATIVE_CATEGORY "normal"

/* k foreground classes; score_thresh[1..k] = the reporting threshold per class (printed, and used
 * by cx_eval_add; AP uses every detection). finding: the decision class (image level, the "% of
 * lung affected" figure, 0 disables them); lung_right / lung_left: the lung labels (0 = none). */
cx_status cx_eval_new(int k, const float *score_thresh, int finding, int lung_right, int lung_left,
                      cx_eval **out, cx_error *err);
void cx_eval_free(cx_eval *e);

/* What one image brings besides its ground truth and detections. */
typedef struct cx_eval_image {
    const char *name;
    const char *category;  /* NULL or "" when the dataset has none */
    const int *keep;       /* [dets->count] 0/1: the detections the product reports (cx_decision_keep);
                            * NULL: score >= the class's threshold */
    double image_score;    /* the decision rule's score (cx_decision_image_score, ALL detections) */
    int present;           /* the decision rule's answer (cx_decision_present) */
    double ms;             /* inference time */
} cx_eval_image;

/* Adds one image: ground truth and detections at the same resolution (masks box-local as the
 * engine returns them). Dice, lung figures and the "% of lung affected" use the reported
 * detections; AP uses all of them (lung-side detections are left out of AP on images whose lung
 * sides are unknown). More than CX_EVAL_MAX_CATEGORIES categories is CX_ERR_INVALID. */
cx_status cx_eval_add_image(cx_eval *e, const cx_eval_image *im, const cx_eval_gt *gt,
                            const cx_detections *dets, cx_error *err);
/* The same without a model, for tests: keep = NULL, image score = the highest score of a finding
 * detection with a non-empty mask, present = that score >= the finding's threshold (the default
 * decision rule of a model without decision.* keys), no category. */
cx_status cx_eval_add(cx_eval *e, const char *name, const cx_eval_gt *gt, const cx_detections *dets,
                      double ms, cx_error *err);

/* ROC AUC of scores: the probability that a positive scores above a negative, ties counting 1/2
 * (the Mann-Whitney statistic). NAN when either list is empty. */
double cx_eval_roc_auc(const double *pos, int n_pos, const double *neg, int n_neg);

typedef struct cx_eval_stat {
    int n;                      /* images counted */
    double mean, median;        /* NAN when n = 0 */
} cx_eval_stat;

typedef struct cx_eval_error {
    int n;
    double mae, bias;           /* percentage points (predicted - GT); NAN when n = 0 */
} cx_eval_error;

/* The figures of a set of images: the whole dataset, or one category. */
typedef struct cx_eval_group {
    char category[CX_EVAL_CATEGORY_LEN]; /* "" = the whole dataset */
    int n_images, n_gt_finding, n_present, n_side_unknown;
    /* Dice of the reported union mask per image vs the GT union, per label: images where GT or
     * prediction is non-empty (lung sides: images whose sides are known) */
    cx_eval_stat dice[CX_EVAL_MAX_CLASSES + 1];
    cx_eval_stat dice_finding_gt;  /* the finding over the images with a GT finding */
    cx_eval_stat dice_lungs;       /* reported right + left lungs vs the whole GT lung */
    /* "% of lung affected" = finding inside the lung / lung: per side (known sides only), both
     * lungs over every image with a GT lung, and both lungs over the images with a GT finding */
    cx_eval_error share[2];        /* [0] right, [1] left */
    cx_eval_error share_lungs, share_lungs_gt;
} cx_eval_group;

typedef struct cx_eval_class_result {
    int n_gt, n_det;            /* instances */
    double ap50, ap75, ap;      /* COCO mask AP at IoU 0.5, 0.75, and mean over 0.50:0.05:0.95 */
} cx_eval_class_result;

typedef struct cx_eval_result {
    int k, n_images;
    cx_eval_class_result cls[CX_EVAL_MAX_CLASSES + 1];
    double map50, map;          /* means over classes with ground truth */
    cx_eval_group all;
    int n_categories;           /* in order of first appearance */
    cx_eval_group cat[CX_EVAL_MAX_CATEGORIES];
    /* image level: positives = images with a GT finding, negatives see CX_EVAL_NEGATIVE_CATEGORY */
    int n_pos, n_neg, by_category;  /* by_category: negatives are the CX_EVAL_NEGATIVE_CATEGORY images */
    double auc;                 /* of the image score; NAN when undefined */
    int tp, fn, fp, tn;         /* at the decision rule */
    double sensitivity, specificity; /* NAN when undefined */
    double ms_mean;
} cx_eval_result;

cx_status cx_eval_result_get(const cx_eval *e, cx_eval_result *out, cx_error *err);

/* Writes the tables (names from the model when non-NULL, else "class N"). */
void cx_eval_print_table(const cx_eval *e, const cx_eval_result *r, const cx_model *m, FILE *out);
/* Writes everything as JSON: summary, per class (incl. the precision-recall curve at IoU 0.5 on
 * the 101 recall points), per group (dataset, categories), per image (name, category, gt_finding,
 * image_score, present, Dice per class, lung shares). */
cx_status cx_eval_write_json(const cx_eval *e, const cx_eval_result *r, const cx_model *m,
                             const char *model_path, const char *data_dir, const char *path,
                             cx_error *err);

#ifdef __cplusplus
}
#endif
#endif

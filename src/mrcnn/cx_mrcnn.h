/* cx_mrcnn: the Mask R-CNN engine the pipeline calls. An immutable cx_model (weights mmapped from a
 * model file, see models/FORMAT.md) is shared by any number of workers; each worker owns a
 * cx_mrcnn state (thread pool + scratch arena) and runs cx_mrcnn_detect, which computes what
 * torchvision 0.14's MaskRCNN computes for the same weights (checked by tests/unit/test_mrcnn). */
#ifndef CX_MRCNN_H
#define CX_MRCNN_H

#include <stddef.h>
#include <stdint.h>
#include "cx_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_model cx_model;
typedef struct cx_mrcnn cx_mrcnn;

/* A coded concept: (code value, coding scheme designator, code meaning), e.g. ("24028007","SCT","Right"). */
typedef struct cx_code {
    const char *value, *scheme, *meaning;
} cx_code;

typedef struct cx_class_info {
    const char *name;      /* short name, e.g. "ggo" */
    const char *meaning;   /* human-readable, e.g. "Ground-glass opacity" */
    cx_code code;          /* segmented property type */
    cx_code category;      /* segmented property category */
    int has_modifier;
    cx_code modifier;      /* valid when has_modifier */
    unsigned char color[3];
    float score_thresh;    /* reporting thresholds (the engine itself applies arch.box_score_thresh) */
    float mask_thresh;
    int single;            /* class.N.single: one structure per image (a lung): its best-scoring
                            * detection is reported whatever its score, the others never */
} cx_class_info;

typedef struct cx_arch_info {
    const char *backbone;  /* "resnet18" | "resnet34" | "resnet50" */
    int in_channels, fpn_channels, num_classes; /* num_classes includes background */
    int min_size, max_size;
    int detections_per_img;
    float box_score_thresh;
} cx_arch_info;

/* Loads and checks a model file. The model keeps the file mapped until cx_model_free.
 * Errors (CX_ERR_MODEL/IO/NOMEM) name the tensor or key and the numbers. */
cx_status cx_model_load(const char *path, cx_model **out, cx_error *err);
void cx_model_free(cx_model *m);

const char *cx_model_name(const cx_model *m);
const char *cx_model_version(const cx_model *m);
const char *cx_model_sha256(const cx_model *m);   /* SHA-256 of the file, 64 hex digits */
/* "verified" when the file's integrity digests matched at load, "none" when it carries none
 * (models/FORMAT.md "Integrity"); a file whose digests do not match does not load. */
const char *cx_model_integrity(const cx_model *m);
const char *cx_model_path(const cx_model *m);
const cx_arch_info *cx_model_arch(const cx_model *m);
int cx_model_num_classes(const cx_model *m);      /* foreground classes K (labels 1..K) */
const cx_class_info *cx_model_class(const cx_model *m, int label);  /* label 1..K, else NULL */
float cx_model_score_thresh(const cx_model *m);
float cx_model_mask_thresh(const cx_model *m);
/* The image-level answer "this X-ray shows <finding>" (models/FORMAT.md, decision.*): the image's
 * score is the highest score of a `label` detection whose mask covers at least min_area_frac of
 * the image; the finding is present when that score is >= score. A model with an image head
 * (arch.image_head 1) scores the image with the head's probability instead, provided such a
 * detection exists (at any score the engine returns), so that "present" always has a region to
 * show. Models without decision.* keys get label = the first class that is not a lung, score =
 * its reporting threshold, min_area 0. */
typedef struct cx_decision {
    int label;             /* 1..K, 0 when the model has no finding class */
    double score;
    double min_area_frac;
    int image_head;        /* 1: score is the image head's probability (arch.image_head) */
} cx_decision;
const cx_decision *cx_model_decision(const cx_model *m);
/* 1 when the model has an image-level head (arch.image_head; cx_detections.image_prob). */
int cx_model_has_image_head(const cx_model *m);

/* Provenance strings ("provenance.<key>" in the file); i in [0, count). */
int cx_model_provenance_count(const cx_model *m);
int cx_model_provenance_at(const cx_model *m, int i, const char **key, const char **value);
/* Any metadata string by full key ("model.name", "provenance.data"), or NULL. */
const char *cx_model_meta_str(const cx_model *m, const char *key);

/* One instance. The mask is box-local at output resolution: mask[y * mask_w + x] (0/1) covers
 * pixels (mask_x0 + x, mask_y0 + y); mask_w or mask_h may be 0 for a box outside the image. */
typedef struct cx_detection {
    int label;             /* 1..K */
    float score;
    float box[4];          /* x1, y1, x2, y2 in output pixels */
    int mask_x0, mask_y0, mask_w, mask_h;
    uint8_t *mask;
} cx_detection;

typedef struct cx_detections {
    int count;
    cx_detection *items;   /* sorted by decreasing score, as torchvision */
    int capacity;
    int has_image_prob;    /* 1 when the model has an image head: */
    float image_prob;      /* sigmoid of the head's logit, the probability the image shows the finding */
} cx_detections;

/* The image-level score of `d` under m's decision rule (see cx_decision) for an image of
 * width x height pixels: 0 when no detection qualifies. */
double cx_decision_image_score(const cx_model *m, const cx_detections *d, int width, int height);
/* 1 when that score reaches the threshold of m's rule / of rule r. */
int cx_decision_present(const cx_model *m, double image_score);
int cx_decision_present_at(const cx_decision *r, double image_score);
/* The rule in force with reporting thresholds score_thresh[1..K] (NULL: the classes' own): m's
 * rule, its score raised to the decision class's reporting threshold when that is higher, so that
 * "present" always comes with at least one reported finding (a conf file or --score can only make
 * the rule stricter; release.sh keeps the shipped class threshold at or below decision.score).
 * With an image head the rule scores a probability, not a detection: it is m's rule unchanged. */
cx_decision cx_decision_effective(const cx_model *m, const float *score_thresh);
/* Which detections the product reports (the SEG/SR and `cxrseg eval` call this one rule):
 * keep[i] = 1 when d->items[i].score >= score_thresh[label] and, for a detection of the decision
 * class, the image is present under the effective rule (cx_decision_effective); else 0. When the
 * image is present, its best qualifying detection of the decision class (the one the image score
 * rests on) is kept whatever its score, so "present" is never without a region. A class marked single
 * (cx_class_info.single) keeps exactly its best-scoring detection, whatever its score and
 * score_thresh: every frontal chest film has one right and one left lung. score_thresh[1..K] are the
 * reporting thresholds per label (index 0 unused); NULL means each class's cx_class_info.score_thresh.
 * A model whose decision label is 0 gates nothing. keep (d->count entries, caller-owned) is always
 * written; labels outside 1..K are never kept. Returns the image score, computed from ALL of d
 * (cx_decision_image_score), so callers need not compute it again; 0 when d is NULL or empty. */
double cx_decision_keep(const cx_model *m, const cx_detections *d, int width, int height,
                        const float *score_thresh, int *keep);

/* Releases the masks and the array; leaves an empty, reusable list. */
void cx_detections_clear(cx_detections *d);

/* Per-worker state: the worker's pool of n_threads (>= 1) that runs every op, GEMMs included;
 * OpenBLAS itself is set to one thread process-wide (the pool splits the GEMMs). */
cx_status cx_mrcnn_new(const cx_model *m, int n_threads, cx_mrcnn **out, cx_error *err);
void cx_mrcnn_free(cx_mrcnn *s);

/* Runs the network on a grey image img[h][w] with values in [0, 1] (replicated when the model
 * has 3 input channels) and returns the detections mapped to an out_h x out_w image, as torchvision's
 * postprocess does with original_image_sizes = (out_h, out_w). out is cleared first, then filled. */
cx_status cx_mrcnn_detect(cx_mrcnn *s, const float *img, int h, int w, int out_h, int out_w,
                          cx_detections *out, cx_error *err);

/* Detections scoring below min_score are returned without a mask (mask_w = mask_h = 0, mask
 * NULL): the mask head costs about 1 GFLOP per detection at ResNet-50 widths, wasted on detections
 * a consumer drops under its reporting threshold. Default 0: every detection gets its mask, exactly
 * as torchvision. Boxes, scores and the masks that are computed are unchanged. */
void cx_mrcnn_set_mask_min_score(cx_mrcnn *s, float min_score);

#ifndef __cplusplus
#include <stdatomic.h>
/* A flag another thread sets to stop a detect in progress (the node's job deadline): checked
 * between the engine's stages (backbone+FPN, RPN, box head, mask head); a set flag makes
 * cx_mrcnn_detect return CX_ERR_TIMEOUT naming the stage reached. NULL (default): never. */
void cx_mrcnn_set_cancel(cx_mrcnn *s, const atomic_int *flag);
#endif

/* The OpenBLAS kernel in use ("Haswell", "Cooperlake", ...), for logs and benchmarks. */
const char *cx_mrcnn_blas_kernel(void);

/* ---- Introspection for the parity tests (valid after the last detect, until the next). ---- */
/* FPN level l (0..4 = P2..P6): pointer to [C][H][W], sizes in *c, *h, *w. */
const float *cx_mrcnn_debug_fpn(const cx_mrcnn *s, int level, int *c, int *h, int *w);
/* Proposals (x1,y1,x2,y2 in resized-image pixels), count in *n. */
const float *cx_mrcnn_debug_proposals(const cx_mrcnn *s, int *n);
/* Size after the transform's resize (before padding). */
void cx_mrcnn_debug_resized(const cx_mrcnn *s, int *h, int *w);
/* Timing of the last detect in ms: backbone+FPN, RPN, box branch, mask branch + paste. */
void cx_mrcnn_debug_times(const cx_mrcnn *s, double t[4]);

#ifdef __cplusplus
}
#endif
#endif

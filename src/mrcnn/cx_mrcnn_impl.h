/* Private to src/mrcnn: the loaded model (weights as cx_conv views into the mapping) and the
 * per-worker state. cx_model.c fills cx_model; cx_mrcnn.c runs it. */
#ifndef CX_MRCNN_IMPL_H
#define CX_MRCNN_IMPL_H

#include "cx_mfile.h"
#include "cx_mrcnn.h"
#include "cx_nn.h"

#define MR_LEVELS 5        /* P2..P6 */
#define MR_MAX_ANCHORS 64  /* per location */
#define MR_MAX_MASK_LAYERS 8

typedef struct mr_block {
    cx_conv c1, c2, c3;    /* c3 only for Bottleneck */
    int has_down;
    cx_conv down;
} mr_block;

struct cx_model {
    cx_mfile *mf;
    char *name, *version;
    cx_arch_info arch;
    int bottleneck, width, nblocks[4];
    mr_block *blocks[4];
    cx_conv conv1;
    cx_conv fpn_inner[4], fpn_layer[4];
    cx_conv rpn_conv, rpn_head;          /* rpn_head = cls_logits and bbox_pred fused: A + 4A outputs */
    float *rpn_head_w, *rpn_head_b;      /* owned */
    int A;                               /* anchors per location */
    float base_anchors[MR_LEVELS][MR_MAX_ANCHORS][4];
    float mean[3], std[3];
    int pre_nms, post_nms;
    double rpn_nms, box_nms;
    float rpn_score, box_score;
    float bbox_w[4];
    int rep;
    const float *fc6_w, *fc6_b, *fc7_w, *fc7_b;
    float *pred_w, *pred_b;              /* cls_score and bbox_pred fused: K + 4K outputs; owned */
    int n_mask_layers;
    cx_conv mask_conv[MR_MAX_MASK_LAYERS];
    int mask_dim;
    int mask_pool;                       /* arch.mask_pool: RoIAlign size P, masks 2P x 2P (14: 28) */
    const float *deconv_w, *deconv_b;
    cx_conv mask_logits;
    int K;                               /* foreground classes */
    cx_class_info *classes;              /* [K], index label-1 */
    float score_thresh, mask_thresh;
    cx_decision decision;
    int image_head;                      /* arch.image_head: mean of C5, then one linear unit */
    const float *image_w, *image_b;      /* [C5 channels], [1] */
    int n_prov;
    const cx_meta **prov;
    float *wino_buf;                     /* owned: Winograd forms of the convs that use it */
};

#endif

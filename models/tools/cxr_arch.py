"""The one definition of cxrseg's network in PyTorch terms.

Training (models/train), the exporter and the parity-reference generator (models/tools) all build
the torchvision 0.14 MaskRCNN through build_model(arch), so the C engine (src/mrcnn) and PyTorch
always agree on what the weights mean. `arch` is a plain dict (stored in checkpoints and, key by
key, in the model file's metadata); DEFAULT_ARCH lists every key with its default.

Supported by the C engine: ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck) bodies with
BatchNorm (folded into the convs at export) or FrozenBatchNorm, any number of input channels,
FPN over layers 1-4 with any channel count and a max-pool P6, the standard RPNHead, TwoMLPHead of
any representation size, MaskRCNNHeads of any widths (dilation 1) and MaskRCNNPredictor.
"""
import copy

import torch
import torchvision
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign, misc as misc_nn_ops

DEFAULT_ARCH = {
    "backbone": "resnet18",          # resnet18 | resnet34 | resnet50
    "backbone_width": 64,            # width of conv1/layer1 (torchvision: 64); layers 2-4 double it
    "norm": "batchnorm",             # batchnorm | frozenbatchnorm (both fold into the conv)
    "in_channels": 1,                # 1 = greyscale radiograph, 3 = torchvision default
    "fpn_channels": 256,
    "num_classes": 4,                # including background (index 0)
    "min_size": 512,
    "max_size": 512,
    "image_mean": [0.5],
    "image_std": [0.25],
    "anchor_sizes": [[32], [64], [128], [256], [512]],
    "aspect_ratios": [0.5, 1.0, 2.0],
    "rpn_pre_nms_top_n_test": 1000,
    "rpn_post_nms_top_n_test": 1000,
    "rpn_nms_thresh": 0.7,
    "rpn_score_thresh": 0.0,
    "box_score_thresh": 0.05,
    "box_nms_thresh": 0.5,
    "box_detections_per_img": 100,
    "bbox_reg_weights": [10.0, 10.0, 5.0, 5.0],
    "representation_size": 1024,
    "mask_layers": [256, 256, 256, 256],
    "mask_dim_reduced": 256,
    # RoIAlign output of the mask head (torchvision: 14): the masks come out 2x that, 28 x 28 by
    # default; 28 gives 56 x 56 masks, a finer boundary for large structures such as the lungs.
    "mask_pool": 14,
    # 1 = an image-level head: the mean of the backbone's last stage (C5) over the image, then one
    # linear unit; its sigmoid is the probability that the image shows the decision class.
    "image_head": 0,
    # training-only knobs (not used by the engine, kept for provenance)
    "rpn_pre_nms_top_n_train": 2000,
    "rpn_post_nms_top_n_train": 2000,
    "box_batch_size_per_image": 512,
}


def full_arch(arch):
    """DEFAULT_ARCH overridden by `arch`; unknown keys are an error (typos must not pass)."""
    out = copy.deepcopy(DEFAULT_ARCH)
    for k, v in (arch or {}).items():
        if k not in DEFAULT_ARCH:
            raise KeyError(f"unknown architecture key {k!r}")
        out[k] = v
    if len(out["image_mean"]) != out["in_channels"] or len(out["image_std"]) != out["in_channels"]:
        raise ValueError("image_mean/image_std need one value per input channel")
    return out


def build_model(arch):
    """A torchvision MaskRCNN exactly as the C engine computes it (eval() it for inference)."""
    a = full_arch(arch)
    norm = nn.BatchNorm2d if a["norm"] == "batchnorm" else misc_nn_ops.FrozenBatchNorm2d
    body = getattr(torchvision.models, a["backbone"])(weights=None, norm_layer=norm)
    if a["backbone_width"] != 64:
        _narrow_resnet(body, a["backbone_width"], norm)
    if a["in_channels"] != 3:
        body.conv1 = nn.Conv2d(a["in_channels"], a["backbone_width"], kernel_size=7, stride=2, padding=3, bias=False)
    backbone = _resnet_fpn_extractor(body, trainable_layers=5)
    if a["fpn_channels"] != backbone.out_channels:
        backbone = _resnet_fpn_extractor_channels(body, a["fpn_channels"])
    anchor_gen = AnchorGenerator(tuple(tuple(s) for s in a["anchor_sizes"]),
                                 (tuple(a["aspect_ratios"]),) * len(a["anchor_sizes"]))
    c = backbone.out_channels
    box_head = TwoMLPHead(c * 7 * 7, a["representation_size"])
    box_predictor = FastRCNNPredictor(a["representation_size"], a["num_classes"])
    mask_head = MaskRCNNHeads(c, tuple(a["mask_layers"]), 1)
    mask_predictor = MaskRCNNPredictor(a["mask_layers"][-1], a["mask_dim_reduced"], a["num_classes"])
    model = MaskRCNN(
        backbone, num_classes=None,
        min_size=a["min_size"], max_size=a["max_size"],
        image_mean=a["image_mean"], image_std=a["image_std"],
        rpn_anchor_generator=anchor_gen,
        rpn_pre_nms_top_n_train=a["rpn_pre_nms_top_n_train"],
        rpn_post_nms_top_n_train=a["rpn_post_nms_top_n_train"],
        rpn_pre_nms_top_n_test=a["rpn_pre_nms_top_n_test"],
        rpn_post_nms_top_n_test=a["rpn_post_nms_top_n_test"],
        rpn_nms_thresh=a["rpn_nms_thresh"], rpn_score_thresh=a["rpn_score_thresh"],
        box_head=box_head, box_predictor=box_predictor,
        box_score_thresh=a["box_score_thresh"], box_nms_thresh=a["box_nms_thresh"],
        box_detections_per_img=a["box_detections_per_img"],
        box_batch_size_per_image=a["box_batch_size_per_image"],
        bbox_reg_weights=tuple(a["bbox_reg_weights"]),
        mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], a["mask_pool"], 2),
        mask_head=mask_head, mask_predictor=mask_predictor,
    )
    if a["image_head"]:
        c5 = body.layer4[-1].conv2.out_channels if a["backbone"] != "resnet50" else body.layer4[-1].conv3.out_channels
        model.image_head = nn.Linear(c5, 1)
        model.backbone.body.register_forward_hook(_keep_c5)
        model.transform.register_forward_hook(_keep_sizes)
    return model


def _keep_c5(module, inputs, outputs):
    module.last_c5 = outputs["3"]


def _keep_sizes(module, inputs, outputs):
    module.last_sizes = list(outputs[0].image_sizes)


def image_logits(model):
    """The image head's logit per image of the last forward pass of `model` (arch image_head 1).
    The mean is taken over the C5 cells each image covers once padded to a multiple of 32 (what
    the engine, which runs one image at a time, sees), not over the batch's padding."""
    c5 = model.backbone.body.last_c5
    out = []
    for i, (h, w) in enumerate(model.transform.last_sizes):
        fh, fw = -(-h // 32), -(-w // 32)
        out.append(c5[i, :, :fh, :fw].mean(dim=(1, 2)))
    return model.image_head(torch.stack(out))[:, 0]


def _narrow_resnet(body, width, norm):
    """Rebuilds a torchvision ResNet with conv1/layer1 `width` wide (layers 2-4: 2x, 4x, 8x), same
    module names and block structure, so small test models keep the real network's code path."""
    block = type(body.layer1[0])
    counts = [len(body.layer1), len(body.layer2), len(body.layer3), len(body.layer4)]
    body.inplanes = width
    body.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    body.bn1 = norm(width)
    body.layer1 = body._make_layer(block, width, counts[0])
    body.layer2 = body._make_layer(block, width * 2, counts[1], stride=2)
    body.layer3 = body._make_layer(block, width * 4, counts[2], stride=2)
    body.layer4 = body._make_layer(block, width * 8, counts[3], stride=2)
    body.fc = nn.Linear(width * 8 * block.expansion, 1000)


def _resnet_fpn_extractor_channels(body, out_channels):
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
    in_ch2 = body.inplanes // 8
    return BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                           [in_ch2 * 2 ** i for i in range(4)], out_channels,
                           extra_blocks=LastLevelMaxPool())


if __name__ == "__main__":
    m = build_model({"fpn_channels": 128, "representation_size": 512, "mask_layers": [128] * 4,
                     "mask_dim_reduced": 128}).eval()
    with torch.no_grad():
        out = m([torch.rand(1, 300, 280)])
    print(sum(p.numel() for p in m.parameters()), "parameters;", len(out[0]["boxes"]), "detections")

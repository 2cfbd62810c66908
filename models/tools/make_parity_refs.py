#!/usr/bin/python3
"""Generates the parity fixtures of tests/unit/test_mrcnn.c: a small random-weight Mask R-CNN in the
cxrseg model format (tests/data/parity_model.cxm) and torchvision 0.14's outputs for 3 inputs
(tests/data/parity_refs.cxm, same container): FPN levels, RPN proposals, detections, pasted masks.

The weights are random but shaped so the network does something worth comparing: BatchNorm
statistics are calibrated on the inputs, the RPN and box-predictor layers are scaled so scores
spread out (no near-ties that would make the order arbitrary), and several detections pass.
Usage: make_parity_refs.py [--outdir tests/data] [--shared ../shared]
     or make_parity_refs.py --arch JSON --sizes 512,800 --check MODEL_OUT REFS_OUT  (full-size runs)
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cxm  # noqa: E402
import cxr_arch  # noqa: E402
import export  # noqa: E402

TEST_ARCH = {
    "backbone": "resnet18", "backbone_width": 16, "in_channels": 1, "fpn_channels": 32,
    "num_classes": 4, "min_size": 256, "max_size": 320, "representation_size": 128,
    "mask_layers": [32, 32, 32, 32], "mask_dim_reduced": 32, "box_score_thresh": 0.3,
    "box_detections_per_img": 20,
}
CXR = "cxr-covid-seg/images/pneumocystis-pneumonia-1.jpg"   # CC BY (Radiopaedia rID 9171)


def shape_image(h, w, seed):
    g = np.random.default_rng(seed)
    img = np.full((h, w), 0.2, np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(6):
        cy, cx, r = g.uniform(0, h), g.uniform(0, w), g.uniform(10, min(h, w) / 3)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = g.uniform(0.4, 1.0)
    y0, x0 = g.integers(0, h // 2), g.integers(0, w // 2)
    img[y0:y0 + h // 4, x0:x0 + w // 3] = 0.9
    return np.clip(img + g.normal(0, 0.03, img.shape).astype(np.float32), 0, 1)


def randomize(model, images, seed):
    """Random weights that produce varied, well-separated scores; BN calibrated on the inputs."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
            m.momentum = None   # cumulative average over the calibration passes
            m.reset_running_stats()
    body = model.backbone.body
    body.train()
    with torch.no_grad():
        batch, _ = model.transform([torch.from_numpy(i)[None] for i in images])
        for i in range(batch.tensors.shape[0]):
            body(batch.tensors[i:i + 1])
    body.eval()
    # Perturb the calibrated statistics so the folded bias/scale are not trivial.
    for m in body.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.add_(torch.randn_like(m.running_mean) * 0.05)
            m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25))
    head = model.rpn.head
    with torch.no_grad():
        for conv in (head.conv[0][0], head.cls_logits, head.bbox_pred):
            fan_in = conv.weight[0].numel()
            conv.weight.normal_(0, (2.0 / fan_in) ** 0.5)
            conv.bias.normal_(0, 0.1)
        head.cls_logits.weight.mul_(3.0)
        head.bbox_pred.weight.mul_(0.3)
        bp = model.roi_heads.box_predictor
        bp.cls_score.weight.normal_(0, 3.0 / bp.cls_score.weight.shape[1] ** 0.5)
        bp.cls_score.bias.normal_(0, 0.5)
        bp.cls_score.bias[0] = 1.0
        bp.bbox_pred.weight.normal_(0, 0.3 / bp.bbox_pred.weight.shape[1] ** 0.5)
        bp.bbox_pred.bias.normal_(0, 0.05)
        ml = model.roi_heads.mask_predictor.mask_fcn_logits
        ml.bias.normal_(0, 0.5)
        # Calibrate output ranges on the inputs: objectness within +-6 (sigmoid never saturates to
        # 1.0f, which would make top-k and NMS order arbitrary), deltas within +-1, class logits
        # with a spread of about 2.
        obj_max, dmax, logits = 0.0, 0.0, []
        for img in images:
            ims, _ = model.transform([torch.from_numpy(img)[None]])
            feats = model.backbone(ims.tensors)
            o, d = head(list(feats.values()))
            obj_max = max(obj_max, max(float(t.abs().max()) for t in o))
            dmax = max(dmax, max(float(t.abs().max()) for t in d))
        head.cls_logits.weight.mul_(6.0 / obj_max)
        head.cls_logits.bias.mul_(6.0 / obj_max)
        head.bbox_pred.weight.mul_(1.0 / dmax)
        head.bbox_pred.bias.mul_(1.0 / dmax)
        for img in images:
            ims, _ = model.transform([torch.from_numpy(img)[None]])
            feats = model.backbone(ims.tensors)
            props, _ = model.rpn(ims, feats)
            x = model.roi_heads.box_roi_pool(feats, props, ims.image_sizes)
            logits.append(bp.cls_score(model.roi_heads.box_head(x)))
        spread = float(torch.cat(logits).std())
        bp.cls_score.weight.mul_(2.0 / spread)


def run_reference(model, img, out_size):
    """torchvision's forward, stage by stage (identical to model([img]) but keeping intermediates)."""
    with torch.no_grad():
        x = torch.from_numpy(img)[None]
        images, _ = model.transform([x])
        feats = model.backbone(images.tensors)
        props, _ = model.rpn(images, feats)
        dets, _ = model.roi_heads(feats, props, images.image_sizes)
        dets = model.transform.postprocess(dets, images.image_sizes, [out_size])
        full = model([x])[0]
    d = dets[0]
    # Self-check: the staged run is the model's own forward when out_size is the input size.
    if tuple(out_size) == img.shape:
        assert torch.equal(full["boxes"], d["boxes"]) and torch.equal(full["scores"], d["scores"])
    return images.image_sizes[0], feats, props[0], d


def gen_cases(shared):
    cases = []
    path = os.path.join(shared, "data", CXR) if shared else None
    from PIL import Image
    if path and os.path.exists(path):
        im = Image.open(path).convert("L").resize((280, 280), Image.BILINEAR)
        im = im.crop((20, 0, 260, 280))   # 240 wide x 280 high
    else:
        im = Image.open(os.path.join(OUTDIR, "parity_cxr.png"))
    im.save(os.path.join(OUTDIR, "parity_cxr.png"))
    cxr = np.asarray(Image.open(os.path.join(OUTDIR, "parity_cxr.png")), np.float32) / 255.0
    g = np.random.default_rng(7)
    noise = np.clip(g.normal(0.5, 0.2, (200, 256)), 0, 1).astype(np.float32)
    cases.append((cxr, (420, 360)))          # resized up, mapped to 1.5x the input resolution
    cases.append((noise, (200, 256)))        # different aspect, resized by the max-size rule
    cases.append((shape_image(256, 256, 3), (256, 256)))   # no resize
    return cases


def write_refs(path, model, cases):
    tensors = []
    stats = []
    for i, (img, out_size) in enumerate(cases):
        p = f"case{i}."
        rsz, feats, props, d = run_reference(model, img, out_size)
        tensors.append((p + "image", img.astype(np.float32)))
        tensors.append((p + "out_size", np.array(out_size, np.int32)))
        tensors.append((p + "resized", np.array(rsz, np.int32)))
        for l, k in enumerate(["0", "1", "2", "3", "pool"]):
            tensors.append((p + f"fpn{l}", feats[k][0].numpy().astype(np.float32)))
        tensors.append((p + "proposals", props.numpy().astype(np.float32).reshape(-1, 4)))
        tensors.append((p + "boxes", d["boxes"].numpy().astype(np.float32).reshape(-1, 4)))
        tensors.append((p + "scores", d["scores"].numpy().astype(np.float32)))
        tensors.append((p + "labels", d["labels"].numpy().astype(np.int32)))
        if hasattr(model, "image_head"):  # the image-level head's probability (arch image_head 1)
            with torch.no_grad():
                model([torch.from_numpy(img)[None]])
                prob = torch.sigmoid(cxr_arch.image_logits(model))
            tensors.append((p + "image_prob", prob.numpy().astype(np.float32)))
        masks = (d["masks"][:, 0] > 0.5).numpy().astype(np.uint8).reshape(-1, out_size[0] * out_size[1])
        # one bit per pixel, row-major, most significant bit first (np.packbits)
        tensors.append((p + "masks", np.packbits(masks, axis=1).reshape(masks.shape[0], -1)))
        stats.append((img.shape, tuple(rsz), len(props), len(d["boxes"]),
                      [round(float(s), 3) for s in d["scores"][:5]], d["labels"].tolist()[:10],
                      [int(m.sum()) for m in masks[:5]]))
    meta = [("format.kind", "cxrseg-parity-refs"), ("cases", len(cases)),
            ("torch", torch.__version__), ("torchvision", __import__("torchvision").__version__)]
    cxm.write(path, meta, tensors)
    return stats


def main():
    global OUTDIR
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--outdir", default=os.path.join(here, "..", "..", "tests", "data"))
    ap.add_argument("--shared", default=os.environ.get("CX_SHARED", os.path.join(here, "..", "..", "..", "shared")))
    ap.add_argument("--arch", help="JSON arch (full-size parity: writes MODEL and REFS given by --model/--refs)")
    ap.add_argument("--sizes", default="512", help="input sizes for --arch runs (square images, shapes)")
    ap.add_argument("--model")
    ap.add_argument("--refs")
    a = ap.parse_args()
    OUTDIR = a.outdir
    if a.arch:
        arch = json.loads(a.arch)
        sizes = [int(s) for s in a.sizes.split(",")]
        cases = [(shape_image(s, s, 11 + s), (s, s)) for s in sizes]
        torch.manual_seed(1)
        model = cxr_arch.build_model(arch).eval()
        randomize(model, [c[0] for c in cases], 1)
        export.export(model.state_dict(), arch, export.default_classes(cxr_arch.full_arch(arch)["num_classes"] - 1),
                      None, {"purpose": "full-size parity, random weights"}, "parity-full", "0", a.model)
        for s in write_refs(a.refs, model, cases):
            print(s)
        return
    os.makedirs(OUTDIR, exist_ok=True)
    torch.manual_seed(0)
    cases = gen_cases(a.shared)
    model = cxr_arch.build_model(TEST_ARCH).eval()
    randomize(model, [c[0] for c in cases], 0)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    mpath = os.path.join(OUTDIR, "parity_model.cxm")
    export.export(sd, TEST_ARCH, export.default_classes(3), {"score": 0.5, "mask": 0.5},
                  {"purpose": "parity test fixture, random weights", "generator": "models/tools/make_parity_refs.py"},
                  "parity-test", "1", mpath)
    for s in write_refs(os.path.join(OUTDIR, "parity_refs.cxm"), model, cases):
        print(s)
    print("wrote", mpath, os.path.getsize(mpath), "bytes")


if __name__ == "__main__":
    main()

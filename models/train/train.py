"""Trains cxrseg's Mask R-CNN from scratch on the CPU within a wall-clock budget.

The network is models/tools/cxr_arch.py build_model(arch) (what the C engine computes). The LR
schedule is a function of elapsed training time (linear warm-up, then cosine to ~0 at the budget), so
a run ends on time on a shared 2-core machine whatever its speed. Checkpoints every --ckpt-min
minutes (and on SIGTERM/SIGINT) can be resumed with --resume.

  /usr/bin/python3 models/train/train.py --data ../shared/data/cxr-covid-seg \
      --out models/train/runs/r18 --hours 1.5
"""
import argparse
import json
import math
import os
import random
import signal
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import cxrdata  # noqa: E402
import maskfolder  # noqa: E402
from cxr_arch import build_model, full_arch, image_logits  # noqa: E402
import import_cxm  # noqa: E402

# What the model file says about each label (DICOM codes for the SEG/SR writers).
CLASSES = [
    # One finding class, "lung opacity": COVID-QU-Ex annotates infection as ground-glass opacity and
    # consolidation together, and cxr-covid-seg's GGO and consolidation masks overlap (their union
    # is what is trained); the model card gives the figures behind this choice.
    {"name": "opacity", "meaning": "Lung opacity (ground-glass opacity or consolidation)",
     "code": ["409609008", "SCT", "Radiologic infiltrate of lung"],
     "category": ["49755003", "SCT", "Morphologically Abnormal Structure"],
     "modifier": None, "color": [255, 160, 0]},
    {"name": "right_lung", "meaning": "Right lung",
     "code": ["39607008", "SCT", "Lung"],
     "category": ["123037004", "SCT", "Anatomical Structure"],
     "modifier": ["24028007", "SCT", "Right"], "color": [0, 160, 255], "single": True},
    {"name": "left_lung", "meaning": "Left lung",
     "code": ["39607008", "SCT", "Lung"],
     "category": ["123037004", "SCT", "Anatomical Structure"],
     "modifier": ["7771000", "SCT", "Left"], "color": [0, 220, 120], "single": True},
]

ARCH = {
    "backbone": "resnet18", "norm": "batchnorm", "in_channels": 1, "fpn_channels": 64,
    "representation_size": 192, "mask_layers": [96, 96, 96, 96], "mask_dim_reduced": 96,
    "num_classes": 4, "min_size": 256, "max_size": 256, "box_batch_size_per_image": 64,
    "box_detections_per_img": 20,
    "rpn_pre_nms_top_n_train": 1000, "rpn_post_nms_top_n_train": 1000,
}


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


# ---------------------------------------------------------------- augmentation (DTL spirit)
def augment(img_u8, planes, rng):
    """Random geometric + intensity augmentation of one cached image.

    Geometry: rotation +-7 deg, scale 0.85-1.15, shift +-6%, applied to image and label planes with
    the same affine grid (image bilinear, masks bilinear then >= 0.5).  No left-right flip: it would
    put the heart on the wrong side and swap the meaning of the lung labels.
    Intensity: simulated windowing (clip a random low/high range and stretch), contrast/brightness
    around mid-grey, gamma, Gaussian noise, then back to 8-bit steps like the C pipeline's input.
    Returns (float32 1xHxW tensor in [0,1], uint8 planes HxW).
    """
    h, w = img_u8.shape
    ang = math.radians(rng.uniform(-7, 7))
    sc = rng.uniform(0.85, 1.15)
    tx, ty = rng.uniform(-0.06, 0.06) * 2, rng.uniform(-0.06, 0.06) * 2
    # affine_grid maps output coords -> input coords in [-1,1]; keep pixel aspect with w/h factors.
    ca, sa = math.cos(ang) / sc, math.sin(ang) / sc
    theta = torch.tensor([[ca, -sa * h / w, tx], [sa * w / h, ca, ty]], dtype=torch.float32)[None]
    bits = [1, 2, 4]
    stack = np.stack([img_u8.astype(np.float32) / 255.0] +
                     [((planes & b) > 0).astype(np.float32) for b in bits])
    t = torch.from_numpy(stack)[None]
    grid = F.affine_grid(theta, (1, 4, h, w), align_corners=False)
    out = F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    x = out[0]
    newp = np.zeros((h, w), dtype=np.uint8)
    for i, b in enumerate(bits):
        newp |= (out[i + 1].numpy() >= 0.5).astype(np.uint8) * b
    if rng.random() < 0.5:  # windowing differences between sites/modalities
        lo, hi = rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0)
        x = ((x - lo) / (hi - lo)).clamp(0, 1)
    if rng.random() < 0.8:  # contrast/brightness, DTL formula around mid-grey
        x = ((x - 0.5) * rng.uniform(0.75, 1.3) + 0.5 + rng.uniform(-0.1, 0.1)).clamp(0, 1)
    if rng.random() < 0.5:
        x = x.clamp(1e-6, 1) ** math.exp(rng.uniform(-0.4, 0.4))
    if rng.random() < 0.5:
        g = torch.Generator().manual_seed(rng.randrange(1 << 30))
        x = (x + torch.randn(x.shape, generator=g) * rng.uniform(0.005, 0.03)).clamp(0, 1)
    x = torch.round(x * 255) / 255
    return x[None].contiguous(), newp


def limit_mask_rois(model, per_image, seed):
    """Trains the mask branch on at most `per_image` of each image's positive RoIs (drawn at random;
    the box head still sees all of them). torchvision runs the mask head on every positive RoI, up
    to a quarter of box_batch_size_per_image; at mask_pool 28 (56 x 56 masks) that branch costs
    several times the rest of the network. The RoI pool draws the subset (editing the proposal list
    torchvision passes on to the loss) and the loss takes the same subset of the matched targets."""
    from torchvision.models.detection import roi_heads as rh
    gen = torch.Generator().manual_seed(seed)
    pool, keep = model.roi_heads.mask_roi_pool, []
    loss = getattr(rh.maskrcnn_loss, "unlimited", rh.maskrcnn_loss)

    class PoolSubset(torch.nn.Module):
        def forward(self, features, proposals, image_shapes):
            keep.clear()
            if model.training:
                for i, p in enumerate(proposals):
                    k = torch.randperm(len(p), generator=gen)[:per_image].sort().values
                    keep.append(k)
                    proposals[i] = p[k]
            return pool(features, proposals, image_shapes)

    def loss_subset(mask_logits, proposals, gt_masks, gt_labels, matched_idxs):
        if keep:
            matched_idxs = [m[k] for m, k in zip(matched_idxs, keep)]
        return loss(mask_logits, proposals, gt_masks, gt_labels, matched_idxs)

    model.roi_heads.mask_roi_pool = PoolSubset()
    loss_subset.unlimited = loss
    rh.maskrcnn_loss = loss_subset


def make_target(planes, min_px=cxrdata.MIN_REGION_PX):
    inst = cxrdata.instances_from_planes(planes, min_px)
    if not inst:
        return None
    masks = np.stack([m for _, m in inst]).astype(np.uint8)
    boxes = []
    for _, m in inst:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return {"boxes": torch.tensor(boxes, dtype=torch.float32),
            "labels": torch.tensor([l for l, _ in inst], dtype=torch.int64),
            "masks": torch.from_numpy(masks)}


# ---------------------------------------------------------------- checkpoints
def model_payload(model, arch, args, extra):
    return {
        "model": model.state_dict(), "arch": arch, "classes": CLASSES,
        "thresholds": {"score": args.score_thresh, "mask": 0.5},
        "provenance": dict({
            "data": "COVID-QU-Ex infection segmentation data (Tahir et al. 2021; covid and normal "
                    "images of its train split) and cxr-covid-seg (General Blockchain COVID-19 CXR "
                    "segmentations over Cohen et al. COVID-19 image data collection); research use "
                    "only, not for diagnosis",
            "split": os.path.relpath(args.split, os.path.join(HERE, "..", "..")),
            "size": args.size, "mix": args.mix, "holdout_per_category": args.holdout,
            "recipe": "models/train/train.py", "seed": args.seed, "lr": args.lr,
            "batch": args.batch, "budget_hours": args.hours, "torch": torch.__version__,
            "mask_rois": args.mask_rois,
            "init": os.path.relpath(args.init, os.path.join(HERE, "..", "..")) if args.init else "",
        }, **extra),
    }


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def precise_bn(model, images, mean, std):
    """Re-estimate the backbone's BatchNorm running statistics on clean training images (cumulative
    average), so inference sees statistics of un-augmented 512 images, not a momentum trail."""
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [(m.momentum,) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.backbone.train()
    for img in images:
        x = (torch.from_numpy(img).float()[None, None] / 255.0 - mean) / std
        model.backbone(x)
    for m, (mom,) in zip(bns, saved):
        m.momentum = mom
    model.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="", help="dataset folder in the structure.csv form")
    ap.add_argument("--maskfolder", default="", help="dataset folder in the mask-folder form")
    ap.add_argument("--size", type=int, default=256, help="engine input size (longer side)")
    ap.add_argument("--mix", type=float, default=0.15,
                    help="share of samples drawn from --data when both sources are given")
    ap.add_argument("--holdout", type=int, default=100,
                    help="per category (covid, normal) of --maskfolder's train split kept out of "
                         "training, for choosing the operating point")
    ap.add_argument("--bn-images", type=int, default=600, help="images for precise BN")
    ap.add_argument("--out", required=True, help="run directory (checkpoints, log, curves)")
    ap.add_argument("--split", default=os.path.join(HERE, "split.json"))
    ap.add_argument("--cache", default=os.path.join(HERE, "runs", "cache"))
    ap.add_argument("--hours", type=float, default=1.5, help="training wall-clock budget")
    ap.add_argument("--deadline", type=float, default=0,
                    help="absolute stop time (Unix seconds); 0 = none")
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--warmup", type=int, default=100, help="warm-up iterations")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--clip", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-min", type=float, default=10.0)
    ap.add_argument("--score-thresh", type=float, default=0.5)
    ap.add_argument("--arch", default="", help="JSON overriding keys of the default arch")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--init", default="",
                    help="start from these weights: final.pt of an earlier run, or a released model file "
                         "(.cxm, e.g. models/cxrseg.cxm): its arch, image mean/std and weights; "
                         "--arch may add keys such as image_head")
    ap.add_argument("--image-loss", type=float, default=1.0,
                    help="weight of the image head's loss (binary cross-entropy, opacity present)")
    ap.add_argument("--mask-rois", type=int, default=0,
                    help="train the mask head on at most N positive RoIs per image (0: all; "
                         "useful with a mask_pool 28 arch, whose mask head is 4x the work)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    size = args.size
    min_px = max(4, int(round(cxrdata.MIN_REGION_PX * (size / cxrdata.LONG_SIDE) ** 2)))
    train, weights, holdout, used = [], [], [], {}
    if args.data:
        with open(args.split) as f:
            split = json.load(f)
        index = {it["file"]: it for it in cxrdata.build_cache(args.data, args.cache, log=log,
                                                              long_side=size)}
        missing = [fn for fn in split["train"] if fn not in index]
        if missing:
            sys.exit(f"train: {len(missing)} split images not in the dataset, e.g. {missing[0]}")
        overlap = set(split["train"]) & set(split["val"])
        if overlap:
            sys.exit(f"train: {len(overlap)} images in both train and val")
        for fn in split["train"]:
            img, planes, info = cxrdata.load_cached(index[fn]["cache"])
            planes = planes | ((planes >> 4) & 1)  # opacity = GGO or consolidation
            train.append((img, planes, info))
        used["structure"] = len(train)
    if args.maskfolder:
        # Training uses source_split == train only: COVID images (finding outlined) and normal
        # images (true negatives). Non-COVID pneumonia is left out: its opacities were never outlined
        # and would be taught as background. Images whose lung sides are ambiguous are left out too.
        index = maskfolder.build_cache(args.maskfolder, args.cache, size, log=log)
        cand = [it for it in index if it.get("source_split", "train") == "train"
                and it["category"] in ("covid", "normal")]
        amb = [it for it in cand if it["lung_side_ambiguous"]]
        cand = [it for it in cand if not it["lung_side_ambiguous"]]
        hrng = random.Random(12345)
        for cat in ("covid", "normal"):
            ids = sorted(it["id"] for it in cand if it["category"] == cat)
            hrng.shuffle(ids)
            holdout += ids[:args.holdout]
        hset = set(holdout)
        n0 = len(train)
        for it in cand:
            if it["id"] not in hset:
                train.append(cxrdata.load_cached(it["cache"]))
        used["maskfolder"] = len(train) - n0
        used["maskfolder_ambiguous_left_out"] = len(amb)
        used["maskfolder_holdout"] = len(holdout)
        with open(os.path.join(args.out, "holdout.json"), "w") as f:
            json.dump({"data": os.path.abspath(args.maskfolder), "holdout": sorted(holdout),
                       "ambiguous_left_out": sorted(it["id"] for it in amb)}, f, indent=1)
    if not train:
        sys.exit("train: no training images (give --data and/or --maskfolder)")
    # Sampling weights: the structure-form images (few, larger, GGO annotated by radiologists) are
    # drawn with total probability --mix when both sources are given.
    ns = used.get("structure", 0)
    if ns and len(train) > ns:
        weights = [args.mix / ns] * ns + [(1 - args.mix) / (len(train) - ns)] * (len(train) - ns)
    else:
        weights = [1.0 / len(train)] * len(train)
    log(f"training images: {json.dumps(used)}")
    allpix = np.concatenate([im.ravel() for im, _, _ in train[::7]]).astype(np.float64) / 255.0
    mean, std = round(float(allpix.mean()), 4), round(float(allpix.std()), 4)

    arch = dict(ARCH, image_mean=[mean], image_std=[std], min_size=size, max_size=size)
    init = None
    if args.init:
        if args.init.endswith(".cxm"):  # a released model file: folded BatchNorms come back
            init = import_cxm.checkpoint(args.init)
        else:
            init = torch.load(args.init, map_location="cpu")
        arch = dict(init["arch"])
        mean, std = arch["image_mean"][0], arch["image_std"][0]
    if args.arch:
        arch.update(json.loads(args.arch))
    full_arch(arch)  # validates keys
    model = build_model(arch)
    if init is not None:
        missing, unexpected = model.load_state_dict(init["model"], strict=False)
        if unexpected or any(not k.startswith("image_head.") for k in missing):
            sys.exit(f"train: --init {args.init} does not fit the arch: missing {missing}, "
                     f"unexpected {unexpected}")
        log(f"initialised from {args.init} ({init.get('provenance', {}).get('iterations', '?')} "
            f"iterations); new: {missing or 'nothing'}")
        if missing:  # a fresh image head starts at the prior's log-odds
            torch.nn.init.normal_(model.image_head.weight, std=0.01)
            torch.nn.init.zeros_(model.image_head.bias)
        if "folded_bias" in init:
            sample = [im for im, _, _ in train[::max(1, len(train) // args.bn_images)]]
            import_cxm.calibrate_bn(model, init["folded_bias"],
                                    ((torch.from_numpy(im).float()[None, None] / 255.0 - mean) / std
                                     for im in sample))
            log(f"BatchNorms of the folded body rebuilt from {len(sample)} training images")
        del init
    has_head = bool(full_arch(arch)["image_head"])
    # The image head's label: the decision class (opacity, bit 0 of the planes) outlined anywhere.
    present = [bool((p & 1).any()) for _, p, _ in train]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=args.wd)

    state = {"iter": 0, "elapsed": 0.0, "epoch": 0, "pos": 0}
    rng = random.Random(args.seed)
    last = os.path.join(args.out, "last.pt")
    if args.resume and os.path.exists(last):
        ck = torch.load(last, map_location="cpu")
        arch = ck["arch"]
        model = build_model(arch)
        model.load_state_dict(ck["model"])
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=args.wd)
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        rng.setstate(ck["rng"])
        torch.set_rng_state(ck["torch_rng"])
        log(f"resumed at iteration {state['iter']}, {state['elapsed'] / 60:.1f} min trained")
    if args.mask_rois:
        limit_mask_rois(model, args.mask_rois, args.seed)
    model.train()

    budget = args.hours * 3600.0
    log(f"arch {json.dumps(arch)}")
    log(f"{len(train)} training images, batch {args.batch}, budget {budget / 3600:.2f} h, "
        f"lr {args.lr}, mean/std {mean}/{std}, threads {torch.get_num_threads()}")

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True
        log(f"signal {signum}: saving and stopping after this iteration")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def checkpoint(path):
        extra = {"iterations": state["iter"], "train_minutes": round(state["elapsed"] / 60, 1)}
        obj = model_payload(model, arch, args, extra)
        obj.update(optimizer=opt.state_dict(), state=dict(state), rng=rng.getstate(),
                   torch_rng=torch.get_rng_state())
        save_atomic(obj, path)

    def epoch_order(epoch):  # one "epoch" = len(train) draws with the sampling weights
        return random.Random(args.seed * 1000 + epoch).choices(range(len(train)), weights, k=len(train))
    order = epoch_order(state["epoch"])
    logf = open(os.path.join(args.out, "log.jsonl"), "a")
    t_ckpt = time.time()
    win_t, win_n = time.time(), 0
    while True:
        if state["elapsed"] >= budget or stop["flag"] or (args.deadline and time.time() >= args.deadline):
            break
        t0 = time.time()
        it = state["iter"]
        frac = state["elapsed"] / budget
        if args.deadline:  # whichever runs out first sets the schedule's position
            state.setdefault("wall_start", time.time())
            frac = max(frac, (time.time() - state["wall_start"]) /
                       max(args.deadline - state["wall_start"], 1.0))
        frac = min(frac, 1.0)
        if it < args.warmup:
            lr = args.lr * (0.001 + 0.999 * it / args.warmup)
        else:
            lr = args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        images, targets, labels = [], [], []
        while len(images) < args.batch:
            if state["pos"] >= len(order):
                state["epoch"] += 1
                state["pos"] = 0
                order = epoch_order(state["epoch"])
            idx = order[state["pos"]]
            img, planes, _ = train[idx]
            state["pos"] += 1
            x, p = augment(img, planes, rng)
            tg = make_target(p, min_px)
            if tg is None:
                continue
            images.append(x)
            targets.append(tg)
            labels.append(float(present[idx]))
        losses = model(images, targets)
        if has_head:
            logit = image_logits(model)
            losses["loss_image"] = args.image_loss * F.binary_cross_entropy_with_logits(
                logit, torch.tensor(labels))
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            log(f"iteration {it}: non-finite loss {loss.item()} ({ {k: v.item() for k, v in losses.items()} }); skipped")
            opt.zero_grad()
            state["iter"] += 1
            continue
        opt.zero_grad()
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(params, args.clip))
        opt.step()
        dt = time.time() - t0
        state["elapsed"] += dt
        state["iter"] += 1
        win_n += len(images)
        rec = {"iter": state["iter"], "epoch": state["epoch"], "lr": lr, "loss": loss.item(),
               "grad_norm": gn, "s_iter": dt, "elapsed": state["elapsed"]}
        rec.update({k: v.item() for k, v in losses.items()})
        logf.write(json.dumps(rec) + "\n")
        if state["iter"] % 10 == 0 or state["iter"] <= 3:
            logf.flush()
            ips = win_n / max(time.time() - win_t, 1e-6)
            win_t, win_n = time.time(), 0
            eta = budget - state["elapsed"]
            if args.deadline:
                eta = min(eta, args.deadline - time.time())
            parts = " ".join(f"{k.replace('loss_', '')} {v.item():.3f}" for k, v in losses.items())
            log(f"it {state['iter']} ep {state['epoch']} loss {loss.item():.3f} ({parts}) "
                f"lr {lr:.4f} gn {gn:.1f} {dt:.2f} s/it {ips:.2f} img/s ETA {eta / 60:.1f} min")
        if time.time() - t_ckpt >= args.ckpt_min * 60:
            checkpoint(last)
            t_ckpt = time.time()
            log(f"checkpoint {last} at iteration {state['iter']}")
    checkpoint(last)
    bn_idx = random.Random(args.seed).sample(range(len(train)), min(args.bn_images, len(train)))
    precise_bn(model, [train[i][0] for i in bn_idx], mean, std)
    final = os.path.join(args.out, "final.pt")
    extra = {"iterations": state["iter"], "train_minutes": round(state["elapsed"] / 60, 1), "images": json.dumps(used),
             "epochs": state["epoch"], "precise_bn": True}
    save_atomic(model_payload(model, arch, args, extra), final)
    log(f"done: {state['iter']} iterations, {state['epoch']} epochs, "
        f"{state['elapsed'] / 60:.1f} min; wrote {final}")


if __name__ == "__main__":
    main()

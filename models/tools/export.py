#!/usr/bin/python3
"""Exports a trained torchvision Mask R-CNN (built by cxr_arch.build_model) to a cxrseg model file.

Input: a training checkpoint (torch.save dict with 'model', 'arch', 'classes', 'thresholds',
'provenance' and optionally 'decision') or a bare state_dict plus --arch JSON. BatchNorm/FrozenBatchNorm
is folded into the preceding convolution here, so the C engine (src/mrcnn) never sees a normalisation
layer. The reporting thresholds and the image-level decision rule (models/FORMAT.md, decision.*) can be
set or overridden on the command line, e.g. with the operating point chosen on a holdout.
Usage: export.py CHECKPOINT -o MODEL.cxm [--arch arch.json] [--classes classes.json] [--name N] [--version V]
       [--score-thresh [CLASS=]X ...] [--decision-class C] [--decision-score X] [--decision-min-area F]
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
from torchvision.ops import misc as misc_nn_ops  # noqa: E402


def _bn_of(conv_name):
    """Name of the norm layer that follows a ResNet body conv (torchvision's naming)."""
    if conv_name.endswith("downsample.0"):
        return conv_name[:-1] + "1"
    head, _, last = conv_name.rpartition(".")
    assert last.startswith("conv")
    return (head + "." if head else "") + "bn" + last[4:]


def fold_state(model):
    """Returns [(name, float32 array)] with every body conv's norm folded into weight/bias."""
    body = model.backbone.body
    mods = dict(body.named_modules())
    out = []
    folded = set()
    for name, m in body.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue
        bn = mods[_bn_of(name)]
        if not isinstance(bn, (nn.BatchNorm2d, misc_nn_ops.FrozenBatchNorm2d)):
            raise ValueError(f"{name}: expected a BatchNorm after the conv, found {type(bn).__name__}")
        w = m.weight.detach().double()
        mean, var = bn.running_mean.double(), bn.running_var.double()
        gamma, beta = bn.weight.detach().double(), bn.bias.detach().double()
        scale = gamma / torch.sqrt(var + bn.eps)
        b = beta - mean * scale
        if m.bias is not None:
            b = b + m.bias.detach().double() * scale
        out.append((f"backbone.body.{name}.weight", (w * scale[:, None, None, None]).float().numpy()))
        out.append((f"backbone.body.{name}.bias", b.float().numpy()))
        folded.add(name)
    for k, v in model.state_dict().items():
        if k.startswith("backbone.body."):
            continue
        out.append((k, v.detach().float().numpy()))
    return out


def _meta_value(v):
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple)):
        raise TypeError("nested")
    return list(v) if isinstance(v, tuple) else v


def _number(v, what):
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: {v!r} is not a number") from None
    if not 0 <= x <= 1:
        raise ValueError(f"{what}: {x:g} outside 0..1")
    return x


def resolve_decision(decision, classes, class_scores):
    """The image-level decision rule as (label, score, min_area), or None when nothing is given
    (the loader's default then applies: the first class that is not a lung, its reporting threshold,
    min_area 0). decision: dict with any of 'class' (label 1..K or class name), 'score' and
    'min_area' (fraction of the image area); what is missing gets that same default.
    class_scores: the reporting score threshold of each class, label order."""
    if not decision:
        return None
    unknown = set(decision) - {"class", "score", "min_area"}
    if unknown:
        raise ValueError(f"decision: unknown key(s) {sorted(unknown)} (class, score, min_area)")
    names = [str(c["name"]) for c in classes]
    c = decision.get("class")
    if c is None:
        label = next((i for i, n in enumerate(names, 1) if "lung" not in n), 0)
        if not label:
            raise ValueError("decision: every class is a lung; give the decision class")
    elif isinstance(c, str) and not c.lstrip("-").isdigit():
        if c not in names:
            raise ValueError(f"decision class '{c}' is not one of {names}")
        label = names.index(c) + 1
    else:
        label = int(c)
        if not 1 <= label <= len(names):
            raise ValueError(f"decision class {label} outside 1..{len(names)}")
    score = decision.get("score")
    score = class_scores[label - 1] if score is None else _number(score, "decision score")
    min_area = _number(decision.get("min_area", 0.0), "decision min_area")
    if score < class_scores[label - 1]:
        # The pipeline reports a finding only at or above its class threshold, so a looser rule
        # would answer "present" for detections it does not show.
        print(f"export: warning: decision score {score:g} is below the reporting threshold "
              f"{class_scores[label - 1]:g} of class '{names[label - 1]}'; the threshold then decides",
              file=sys.stderr)
    return label, score, min_area


def build_meta(arch, classes, thresholds, provenance, name, version, decision=None):
    a = cxr_arch.full_arch(arch)
    k = a["num_classes"] - 1
    if len(classes) != k:
        raise ValueError(f"{len(classes)} classes given, arch num_classes {a['num_classes']} needs {k}")
    meta = [("format.kind", "cxrseg-model"), ("model.name", name), ("model.version", version)]
    for key, v in a.items():
        if key == "anchor_sizes":
            per = {len(s) for s in v}
            if len(per) != 1:
                raise ValueError("anchor_sizes: every level needs the same number of sizes")
            meta.append(("arch.anchor_sizes", [float(x) for s in v for x in s]))
            meta.append(("arch.anchor_sizes_per_level", per.pop()))
        elif key in ("image_mean", "image_std", "aspect_ratios", "bbox_reg_weights"):
            meta.append((f"arch.{key}", [float(x) for x in v]))
        elif key in ("mask_layers",):
            meta.append((f"arch.{key}", [int(x) for x in v]))
        elif key.endswith("_thresh"):
            meta.append((f"arch.{key}", float(v)))
        else:
            meta.append((f"arch.{key}", _meta_value(v)))
    thresholds = dict(thresholds or {})
    score = float(thresholds.get("score", 0.5))
    mask = float(thresholds.get("mask", 0.5))
    meta += [("thresholds.score", score), ("thresholds.mask", mask), ("classes.count", k)]
    class_scores = []
    for i, c in enumerate(classes, 1):
        p = f"class.{i}."
        meta.append((p + "name", str(c["name"])))
        meta.append((p + "meaning", str(c.get("meaning") or c["name"])))
        for f in ("code", "category"):
            t = c.get(f)
            if not t or len(t) != 3:
                raise ValueError(f"class {c['name']}: '{f}' must be a (value, scheme, meaning) triple")
            meta.append((p + f, [str(x) for x in t]))
        if c.get("modifier"):
            if len(c["modifier"]) != 3:
                raise ValueError(f"class {c['name']}: 'modifier' must be a triple or None")
            meta.append((p + "modifier", [str(x) for x in c["modifier"]]))
        col = c.get("color") or [255, 0, 0]
        meta.append((p + "color", [int(x) for x in col]))
        per = thresholds.get(c["name"], thresholds.get("per_class", {}).get(c["name"]))
        cs, cm = score, mask
        if isinstance(per, (int, float)):
            cs = float(per)
        elif isinstance(per, dict):
            cs, cm = float(per.get("score", score)), float(per.get("mask", mask))
        meta += [(p + "score_thresh", cs), (p + "mask_thresh", cm)]
        if c.get("single"):
            meta.append((p + "single", 1))
        class_scores.append(cs)
    rule = resolve_decision(decision, classes, class_scores)
    if rule:
        meta += [("decision.class", rule[0]), ("decision.score", float(rule[1])),
                 ("decision.min_area", float(rule[2]))]
    for key, v in sorted((provenance or {}).items()):
        meta.append((f"provenance.{key}", v if isinstance(v, str) else json.dumps(v)))
    return meta


def export(state_dict, arch, classes, thresholds, provenance, name, version, out_path, decision=None):
    meta = build_meta(arch, classes, thresholds, provenance, name, version, decision)
    model = cxr_arch.build_model(arch)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    cxm.write(out_path, meta, fold_state(model))
    return model


def default_classes(n):
    return [{"name": f"class{i}", "meaning": f"class {i}", "code": [f"C{i}", "99CXR", f"class {i}"],
             "category": ["49755003", "SCT", "Morphologically Abnormal Structure"], "modifier": None,
             "color": [[255, 64, 64], [64, 255, 64], [64, 64, 255], [255, 255, 64]][(i - 1) % 4]}
            for i in range(1, n + 1)]


def apply_overrides(thresholds, overrides, classes, key="score"):
    """thresholds with each "[CLASS=]X" of overrides applied to `key` ("score" or "mask"): without
    a class, the default threshold (classes without their own); with one, that class's threshold
    (its other threshold stays)."""
    thr = dict(thresholds or {})
    names = [str(c["name"]) for c in classes]
    opt = f"--{key}-thresh"
    for o in overrides or []:
        cls, sep, val = o.rpartition("=")
        if sep and not cls:
            raise ValueError(f"{opt} '{o}': expected X or CLASS=X")
        x = _number(val, f"{opt} '{o}'")
        if not cls:
            thr[key] = x
            continue
        if cls not in names:
            raise ValueError(f"{opt} '{o}': class '{cls}' is not one of {names}")
        old = thr.get(cls, thr.get("per_class", {}).get(cls))
        if isinstance(old, dict):
            thr[cls] = dict(old, **{key: x})
        elif key == "score" or old is None:
            thr[cls] = {key: x}
        else:  # a bare number is the class's score threshold
            thr[cls] = {"score": float(old), key: x}
    return thr


def rethreshold(in_path, out_path, score_overrides, mask_overrides):
    """A released model file with other reporting thresholds: the class.<i>.score_thresh /
    mask_thresh entries rewritten by the "[CLASS=]X" overrides (as --score-thresh / --mask-thresh),
    every tensor and every other entry as it was; provenance.rethresholded_from names the input."""
    import hashlib
    meta, tensors = cxm.read(in_path)
    k = int(meta["classes.count"])
    names = [str(meta[f"class.{i}.name"]) for i in range(1, k + 1)]
    classes = [{"name": n} for n in names]
    per = {n: {"score": float(meta[f"class.{i}.score_thresh"]), "mask": float(meta[f"class.{i}.mask_thresh"])}
           for i, n in enumerate(names, 1)}
    thr = {"score": float(meta["thresholds.score"]), "mask": float(meta["thresholds.mask"]), **per}
    thr = apply_overrides(thr, score_overrides, classes, "score")
    thr = apply_overrides(thr, mask_overrides, classes, "mask")
    for i, n in enumerate(names, 1):
        own = thr[n] if isinstance(thr[n], dict) else {"score": thr[n]}
        meta[f"class.{i}.score_thresh"] = float(own.get("score", thr["score"]))
        meta[f"class.{i}.mask_thresh"] = float(own.get("mask", thr["mask"]))
    with open(in_path, "rb") as f:
        meta["provenance.rethresholded_from"] = hashlib.sha256(f.read()).hexdigest()
    cxm.write(out_path, list(meta.items()), list(tensors.items()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--arch", help="JSON file or string (for a bare state_dict)")
    ap.add_argument("--classes", help="JSON file with the class list (for a bare state_dict)")
    ap.add_argument("--name", default="cxrseg")
    ap.add_argument("--version", default="0")
    ap.add_argument("--score-thresh", action="append", metavar="[CLASS=]X",
                    help="reporting score threshold: X for every class without its own, CLASS=X for one "
                         "class (repeatable; overrides the checkpoint's 'thresholds')")
    ap.add_argument("--mask-thresh", action="append", metavar="[CLASS=]X",
                    help="mask binarisation threshold, as --score-thresh (repeatable)")
    ap.add_argument("--decision-class", metavar="C",
                    help="the class the image-level present/absent answer is about: label 1..K or class name")
    ap.add_argument("--decision-score", type=float, metavar="X",
                    help="the image is 'present' when a detection of that class scores >= X")
    ap.add_argument("--decision-min-area", type=float, metavar="F",
                    help="... and its mask covers >= F of the image area (0.005 = 0.5%%)")
    ap.add_argument("--single", action="append", metavar="CLASS", default=[],
                    help="CLASS is one structure per image (a lung): the product reports its best-scoring "
                         "detection whatever its score, and no other (repeatable)")
    a = ap.parse_args(argv)
    if a.checkpoint.endswith(".cxm"):  # a released file: only its reporting thresholds change
        if a.arch or a.classes or a.single or a.decision_class or a.decision_score is not None \
                or a.decision_min_area is not None:
            raise SystemExit("export: a .cxm input takes only --score-thresh and --mask-thresh")
        try:
            rethreshold(a.checkpoint, a.output, a.score_thresh, a.mask_thresh)
        except ValueError as e:
            raise SystemExit(f"export: {e}")
        print(f"wrote {a.output} ({os.path.getsize(a.output)} bytes)")
        return
    ck = torch.load(a.checkpoint, map_location="cpu")
    decision = None
    if isinstance(ck, dict) and "model" in ck and isinstance(ck["model"], dict):
        sd, arch = ck["model"], ck.get("arch", {})
        classes, thr, prov = ck.get("classes"), ck.get("thresholds"), ck.get("provenance", {})
        decision = ck.get("decision")
    else:
        sd, arch, classes, thr, prov = ck, {}, None, None, {}
    if a.arch:
        arch = json.load(open(a.arch)) if os.path.exists(a.arch) else json.loads(a.arch)
    if a.classes:
        classes = json.load(open(a.classes))
    if classes is None:
        classes = default_classes(cxr_arch.full_arch(arch)["num_classes"] - 1)
    for name in a.single:
        hit = [c for c in classes if c["name"] == name]
        if not hit:
            raise SystemExit(f"export: --single {name}: no such class in {[c['name'] for c in classes]}")
        hit[0]["single"] = True
    if decision is not None and not isinstance(decision, dict):
        raise SystemExit(f"export: the checkpoint's 'decision' must be a dict, is {type(decision).__name__}")
    decision = dict(decision or {})
    for key, v in (("class", a.decision_class), ("score", a.decision_score), ("min_area", a.decision_min_area)):
        if v is not None:
            decision[key] = v
    try:
        thr = apply_overrides(thr, a.score_thresh, classes, "score")
        thr = apply_overrides(thr, a.mask_thresh, classes, "mask")
        export(sd, arch, classes, thr, prov, a.name, a.version, a.output, decision)
    except ValueError as e:
        raise SystemExit(f"export: {e}")
    print(f"wrote {a.output} ({os.path.getsize(a.output)} bytes)")


if __name__ == "__main__":
    main()

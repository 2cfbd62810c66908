"""A cxrseg model file (.cxm) back into a trainable PyTorch checkpoint.

The exporter folds every ResNet body BatchNorm into its conv (weight * gamma / sqrt(var + eps), one
bias), so the file keeps only the folded weights. To train on from a shipped model (a site
fine-tuning on its own images, or stage 2 of the recipe started from a released stage 1), each
folded conv gets back a BatchNorm that reproduces it exactly in eval mode and closely in train
mode:
  1. load the folded weight into the conv and give the BatchNorm the identity with the folded
     bias as beta (running mean 0, running var 1 - eps): eval output = the engine's;
  2. calibrate_bn(): per channel, measure the mean m and variance v of each conv's output on real
     images (in that exact eval network), then set running mean m, running var v, gamma
     sqrt(v + eps), beta m + bias. Eval output is unchanged (the affine cancels), and in train mode
     a batch whose statistics are near m, v is normalised to nearly the same values.
What cannot come back is the original split between gamma and the conv's scale; SGD does not care.

Usage (a check): import_cxm.py MODEL.cxm  -- prints the arch and the tensor counts.
GPL-3.0-or-later.
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cxm  # noqa: E402
import cxr_arch  # noqa: E402
from export import _bn_of  # noqa: E402


def arch_from_meta(meta):
    """The arch dict stored key by key as arch.* in the file's metadata."""
    arch = {k[5:]: v for k, v in meta.items() if k.startswith("arch.")}
    per = int(arch.pop("anchor_sizes_per_level", 1))
    flat = arch.get("anchor_sizes")
    if flat is not None:
        arch["anchor_sizes"] = [list(flat[i:i + per]) for i in range(0, len(flat), per)]
    return cxr_arch.full_arch(arch)


def checkpoint(path):
    """{'arch', 'model' (state_dict), 'provenance', 'folded_bias'} from a model file. The state
    dict's body BatchNorms are the identity with the folded bias (exact in eval mode); call
    calibrate_bn() on the built model before training in train mode."""
    meta, tensors = cxm.read(path)
    if meta.get("format.kind") != "cxrseg-model":
        raise ValueError(f"{path}: not a cxrseg model file (format.kind {meta.get('format.kind')!r})")
    arch = arch_from_meta(meta)
    model = cxr_arch.build_model(arch)
    body = model.backbone.body
    mods = dict(body.named_modules())
    sd = model.state_dict()
    used, folded_bias = set(), {}
    for name, m in body.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue
        wk, bk = f"backbone.body.{name}.weight", f"backbone.body.{name}.bias"
        if wk not in tensors or bk not in tensors:
            raise ValueError(f"{path}: no folded tensors for body conv {name}")
        bn_name = _bn_of(name)
        bn = mods[bn_name]
        p = f"backbone.body.{bn_name}."
        sd[wk] = torch.from_numpy(tensors[wk].copy())
        b = torch.from_numpy(tensors[bk].copy())
        sd[p + "weight"] = torch.ones_like(b)
        sd[p + "bias"] = b.clone()
        if p + "running_mean" in sd:
            sd[p + "running_mean"] = torch.zeros_like(b)
            sd[p + "running_var"] = torch.full_like(b, 1.0 - bn.eps)
        folded_bias[name] = b
        used.update((wk, bk))
    for k in sd:
        if k.startswith("backbone.body.") or k.endswith("num_batches_tracked"):
            continue
        if k not in tensors:
            raise ValueError(f"{path}: tensor {k} missing")
        if tuple(tensors[k].shape) != tuple(sd[k].shape):
            raise ValueError(f"{path}: tensor {k} has shape {tensors[k].shape}, the arch wants "
                             f"{tuple(sd[k].shape)}")
        sd[k] = torch.from_numpy(tensors[k].copy())
        used.add(k)
    extra = sorted(set(tensors) - used)
    if extra:
        raise ValueError(f"{path}: tensors the arch does not have: {extra[:5]}")
    prov = {k[11:]: v for k, v in meta.items() if k.startswith("provenance.")}
    prov["imported_from"] = os.path.basename(path)
    prov["model_version"] = meta.get("model.version")
    return {"arch": {k: v for k, v in arch.items()}, "model": sd, "provenance": prov,
            "folded_bias": folded_bias}


@torch.no_grad()
def calibrate_bn(model, folded_bias, batches):
    """Sets each body BatchNorm from the conv output statistics over `batches` (normalised image
    tensors N x C x H x W), keeping the eval-mode output as it is (see the module comment)."""
    body = model.backbone.body
    mods = dict(body.named_modules())
    sums, hooks = {}, []

    def hook(name):
        def f(_mod, _inp, out):
            s = sums.setdefault(name, [0, 0.0, 0.0])
            o = out.double()
            s[0] += o.numel() // o.shape[1]
            s[1] = s[1] + o.sum(dim=(0, 2, 3))
            s[2] = s[2] + (o * o).sum(dim=(0, 2, 3))
        return f

    for name in folded_bias:
        hooks.append(mods[name].register_forward_hook(hook(name)))
    was = model.training
    model.eval()
    try:
        for x in batches:
            model.backbone(x)
    finally:
        for h in hooks:
            h.remove()
    for name, b in folded_bias.items():
        n, s1, s2 = sums[name]
        mean = s1 / n
        var = torch.clamp(s2 / n - mean * mean, min=1e-6)
        bn = mods[_bn_of(name)]
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_(var.float())
        bn.weight.copy_(torch.sqrt(var + bn.eps).float())
        bn.bias.copy_((mean + b.double()).float())
    model.train(was)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: import_cxm.py MODEL.cxm")
    ck = checkpoint(argv[0])
    print(f"arch: {ck['arch']}")
    print(f"{len(ck['model'])} state entries, {len(ck['folded_bias'])} folded body convs")


if __name__ == "__main__":
    main()

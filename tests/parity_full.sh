#!/bin/sh
# Full-size parity with torchvision: a ResNet-50-FPN with random weights (4 classes, 100 detections)
# at 512 and 800 px, and the shipped network's shapes with a 28 x 28 mask pool at 256 px. torchvision writes its outputs (models/tools/make_parity_refs.py), then the
# C engine is compared with them by tests/unit/test_mrcnn in its full-size mode (CX_PARITY_FULL:
# the criteria are in that file's header). The 512 px model has the image-level head (image_head 1). Winograd on, as shipped. Runs when Debian's
# python3-torchvision is installed (scripts/setup installs it); about 3 minutes.
set -u
top=${CX_SRCDIR:-.}
bld=${CX_BUILDDIR:-.}
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || { echo "SKIP: torchvision not installed (python3-torchvision)"; exit 77; }
[ -x "$bld/tests/unit/test_mrcnn" ] || { echo "FAIL: $bld/tests/unit/test_mrcnn not built"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for S in 512 800 256; do
    arch="{\"backbone\": \"resnet50\", \"in_channels\": 3, \"image_mean\": [0.485, 0.456, 0.406],
      \"image_std\": [0.229, 0.224, 0.225], \"fpn_channels\": 256, \"num_classes\": 4, \"min_size\": $S,
      \"max_size\": $S, \"box_detections_per_img\": 100, \"representation_size\": 1024,
      \"mask_layers\": [256, 256, 256, 256], \"mask_dim_reduced\": 256, \"image_head\": $((S == 512))}"
    # 256: the shipped network's shapes (ResNet-18, FPN 64, 1 channel, image head) with the mask
    # head pooled at 28 x 28 (arch.mask_pool 28: 56 x 56 masks)
    [ "$S" = 256 ] && arch='{"backbone": "resnet18", "in_channels": 1, "image_mean": [0.54],
      "image_std": [0.24], "fpn_channels": 64, "num_classes": 4, "min_size": 256, "max_size": 256,
      "box_detections_per_img": 20, "box_nms_thresh": 0.3, "representation_size": 192,
      "mask_layers": [96, 96, 96, 96], "mask_dim_reduced": 96, "mask_pool": 28, "image_head": 1}'
    /usr/bin/python3 "$top/models/tools/make_parity_refs.py" --arch "$arch" --sizes "$S" \
        --model "$tmp/m$S.cxm" --refs "$tmp/r$S.cxm" > "$tmp/gen$S.log" 2>&1 ||
        { echo "FAIL: torchvision references at $S px:"; cat "$tmp/gen$S.log"; exit 1; }
    CX_PARITY_FULL=1 CX_PARITY_MODEL="$tmp/m$S.cxm" CX_PARITY_REFS="$tmp/r$S.cxm" \
        "$bld/tests/unit/test_mrcnn" > "$tmp/c$S.log" 2>&1
    rc=$?
    grep -E "case 0|proposals without|detection [0-9]" "$tmp/c$S.log" | sort -u
    if [ $rc -ne 0 ] || grep -q FAILED "$tmp/c$S.log"; then
        echo "FAIL: full-size parity at $S px"
        cat "$tmp/c$S.log"
        exit 1
    fi
    echo "ok: full-size parity at $S px"
done

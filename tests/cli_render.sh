#!/bin/sh
# Runs the real cxrseg binary on the real files in $CX_SHARED/data: info (text and JSON) on the
# chest CR with PixelSpacing 0\0, render at full and engine size, 16-bit output, a training JPEG,
# and the error paths (truncated DICOM, unwritable output). Skips (77) without the shared data.
set -u
bin="${CX_BUILDDIR:-.}/cxrseg"
data="${CX_SHARED:-}/data"
rg1="$data/dicom/RG1_J2KI.dcm"
if [ ! -f "$rg1" ]; then
    echo "SKIP: $rg1 not found (set CX_SHARED)"
    exit 77
fi
tmp=$(mktemp -d /tmp/cx_cli_render.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "${CX_SRCDIR:-.}/tests/cli_lib.sh"

# PNG header facts: width, height, bit depth, colour type from IHDR
png_ihdr() { od -An -tu1 -j16 -N10 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8, $9, $10}'; }
check_png() {
    n=$((n + 1))
    got=$(png_ihdr "$1")
    if [ "$got" != "$2" ]; then
        echo "FAIL: $1 IHDR '$got', expected '$2'"; fails=$((fails + 1))
    else
        echo "ok: $1 is $2 (width height bits colour-type)"
    fi
}

expect 0 '^Photometric Interpretation +MONOCHROME1$' -- info "$rg1"
expect 0 '^Size +1841 x 1955 \(columns x rows\)$' -- info "$rg1"
expect 0 '^Window 1 \(centre/width\) +15000/30000$' -- info "$rg1"
expect 0 '^Pixel Spacing +present but 0\\0 or not two positive numbers \(not calibrated\): treated as absent$' -- info "$rg1"
expect 0 '^Imager Pixel Spacing +absent$' -- info "$rg1"
expect 0 '^  "pixel_spacing_unusable": true,$' -- info "$rg1" --json
expect 0 '^Pixel Spacing +absent$' -- info "$data/dicom/mlut_18.dcm"
expect 0 '^Spacing for areas +none: no usable spacing, areas are reported in pixels only$' -- info "$rg1"
expect 0 '^Transfer Syntax UID +1\.2\.840\.10008\.1\.2\.4\.91$' -- info "$rg1"
expect 0 '^Rendering +modality: identity; VOI: window 1 of 1, 15000/30000 LINEAR; polarity: inverted \(MONOCHROME1\)$' -- info "$rg1"
expect 0 '^  "pixel_spacing": null,$' -- info "$rg1" --json
expect 0 '^  "spacing_for_areas": \{"source": "none"\},$' -- info "$rg1" --json
expect 0 '^  "windows": \[\{"center": 15000, "width": 30000, "explanation": ""\}\],$' -- info "$rg1" --json
expect 0 '^  "photometric": "MONOCHROME1",$' -- info "$rg1" --json
expect 0 '^  "modality_lut": \{"entries": 4096, "first_mapped": -2048, "bits": 16, "lut_type": "US", "explanation": ""\},$' -- \
    info "$data/dicom/mlut_18.dcm" --json
# JSON is one object: first line "{", last line "}"
"$bin" info "$rg1" --json >"$tmp/j" 2>&1
n=$((n + 1))
if [ "$(head -n1 "$tmp/j")" = "{" ] && [ "$(tail -n1 "$tmp/j")" = "}" ] && [ "$(grep -c '^  "' "$tmp/j")" -ge 45 ]; then
    echo "ok: info --json is one object with $(grep -c '^  "' "$tmp/j") keys"
else
    echo "FAIL: info --json shape"; fails=$((fails + 1))
fi

expect 0 "^wrote $tmp/full.png: 1841x1955 8-bit from dicom 1841x1955; modality: identity; VOI: window 1 of 1, 15000/30000 LINEAR; polarity: inverted \(MONOCHROME1\); [0-9]+ ms$" -- \
    render "$rg1" -o "$tmp/full.png"
check_png "$tmp/full.png" "1841 1955 8 0"
expect 0 "^wrote $tmp/512.png: 482x512 8-bit from dicom 1841x1955;" -- render "$rg1" -o "$tmp/512.png" --size 512
check_png "$tmp/512.png" "482 512 8 0"
expect 0 "^wrote $tmp/tv.png: 800x849 16-bit" -- render "$rg1" -o "$tmp/tv.png" --min-size 800 --max-size 1333 --16bit
check_png "$tmp/tv.png" "800 849 16 0"
expect 0 'VOI: automatic window \(percentile, asked for\)' -- render "$rg1" -o "$tmp/auto.png" --size 256 --auto
expect 0 'VOI: window 2000/4000 LINEAR \(given\)' -- render "$rg1" -o "$tmp/w.png" --size 256 --window 2000,4000
expect 0 'VOI: LUT 1 of 1, 256 entries from 0, 16 bits; polarity: normal' -- render "$data/dicom/vlut_04.dcm" -o "$tmp/v.png"

jpg=$(ls "$data"/cxr-covid-seg/images/*.jpeg 2>/dev/null | head -n1)
if [ -n "$jpg" ]; then
    expect 0 "^wrote $tmp/j.png: [0-9]+x[0-9]+ 8-bit from jpeg [0-9]+x[0-9]+; jpeg, 8-bit greyscale" -- \
        render "$jpg" -o "$tmp/j.png" --size 256
    expect 0 '^Format +jpeg$' -- info "$jpg"
fi

# errors: a truncated DICOM (exit 2, the DICOM layer's message), an unwritable output (exit 2)
head -c 20000 "$rg1" >"$tmp/trunc.dcm"
expect 2 '^cxrseg render: ' -- render "$tmp/trunc.dcm" -o "$tmp/t.png"
[ -e "$tmp/t.png" ] && { echo "FAIL: output written for a failed render"; fails=$((fails + 1)); }
expect 2 "^cxrseg render: png: cannot create $tmp/no/such/dir.png: No such file or directory$" -- \
    render "$data/dicom/vlut_04.dcm" -o "$tmp/no/such/dir.png"

echo "$n checks, $fails failed"
[ "$fails" -eq 0 ]

#!/bin/bash
# Generates the broken-input corpus (and a few tiny valid files) replayed by tests/unit/test_dicom.
# Run once by hand when the corpus changes; the output files are committed (each is < 2 KB).
# Needs dcmtk (dump2dcm, dcmodify, dcmconv, dcmcjpeg, dcmcjpls, dcmcrle) and libgdcm-tools (gdcmconv).
# The expected status and message of every file are in tests/corpus/expected.txt.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export DCMDICTPATH=/usr/share/libdcmtk17/dicom.dic

ROWS=20
COLS=24

# Pixel values of a 12-bit ramp with a diagonal edge: cheap to compress, easy to check.
# dump2dcm reads OW values as hexadecimal.
pixels() { # $1 = count, $2 = max value
    awk -v n="$1" -v m="$2" -v c="$COLS" 'BEGIN { s = ""; for (i = 0; i < n; i++) {
        r = int(i / c); k = i % c; v = (r * 97 + k * 53 + (k > r ? 700 : 0)) % (m + 1);
        s = s (i ? "\\" : "") sprintf("%04x", v) } print s }'
}

# A dump of a small CR image; $1 extra dump lines placed before the pixel data, overrides by
# environment (rows, cols, ba, bs, hb, pr, pi, spp, npix, vr).
dump() {
    local rows=${rows:-$ROWS} cols=${cols:-$COLS} ba=${ba:-16} bs=${bs:-12} hb=${hb:-11} pr=${pr:-0}
    local pi=${pi:-MONOCHROME2} spp=${spp:-1} npix=${npix:-$((ROWS * COLS))} vr=${vr:-OW}
    cat <<EOF
(0002,0010) UI [${ts:-1.2.840.10008.1.2.1}]
(0008,0016) UI [1.2.840.10008.5.1.4.1.1.1]
(0008,0018) UI [1.2.826.0.1.3680043.10.1234.1.$RANDOM]
(0008,0060) CS [CR]
(0010,0010) PN [Corpus^Test]
(0010,0020) LO [CORPUS]
(0018,0015) CS [CHEST]
(0020,000d) UI [1.2.826.0.1.3680043.10.1234.2]
(0020,000e) UI [1.2.826.0.1.3680043.10.1234.3]
(0028,0002) US $spp
(0028,0004) CS [$pi]
(0028,0010) US $rows
(0028,0011) US $cols
(0028,0100) US $ba
(0028,0101) US $bs
(0028,0102) US $hb
(0028,0103) US $pr
${1:-}
(7fe0,0010) $vr $(pixels "$npix" $(((1 << bs) - 1 > 4095 ? 4095 : (1 << bs) - 1)))
EOF
}

mk() { # name, dump text on stdin
    cat > "$1.txt"
    dump2dcm -q +te "$1.txt" "$out/$1.dcm"
}

# Byte offset of the first match of a binary pattern (perl regex escapes).
offset() { LC_ALL=C grep -obUaP "$2" "$1" | head -1 | cut -d: -f1; }

# Replaces the only pixel fragment of an encapsulated file with the bytes of file $2.
replace_fragment() { # file, new-fragment-file
    local f=$1 frag=$2 start len
    # Pixel Data tag, VR OB, reserved, undefined length; then the offset-table item.
    start=$(offset "$f" '\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff')
    local bot_len
    bot_len=$(od -An -tu4 -j $((start + 16)) -N4 "$f" | tr -d ' ')
    local item2=$((start + 12 + 8 + bot_len))
    len=$(stat -c %s "$frag")
    if [ $((len % 2)) = 1 ]; then printf '\0' >> "$frag"; len=$((len + 1)); fi
    head -c "$item2" "$f" > "$f.new"
    printf '\xfe\xff\x00\xe0' >> "$f.new"
    le32 "$len" >> "$f.new"
    cat "$frag" >> "$f.new"
    printf '\xfe\xff\xdd\xe0\x00\x00\x00\x00' >> "$f.new"
    mv "$f.new" "$f"
}

# First pixel fragment of an encapsulated file, written to $2.
extract_fragment() {
    local f=$1 start bot_len item2 len
    start=$(offset "$f" '\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff')
    bot_len=$(od -An -tu4 -j $((start + 16)) -N4 "$f" | tr -d ' ')
    item2=$((start + 12 + 8 + bot_len))
    len=$(od -An -tu4 -j $((item2 + 4)) -N4 "$f" | tr -d ' ')
    tail -c +$((item2 + 9)) "$f" | head -c "$len" > "$2"
}

# Little-endian binary integers for byte surgery.
le16() { printf "$(printf '\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)))"; }
le32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"; }

# Rewrites the meta header's TransferSyntaxUID (DCMTK tools refuse to write a syntax they cannot
# produce), fixing the element length and the group length.
set_meta_ts() { # file, uid
    local f=$1 uid=$2 o oldlen newlen g glen
    [ $((${#uid} % 2)) = 1 ] && uid="$uid"$'\x01' # placeholder for the NUL pad, see below
    newlen=${#uid}
    o=$(offset "$f" '\x02\x00\x10\x00UI')
    oldlen=$(od -An -tu2 -j $((o + 6)) -N2 "$f" | tr -d ' ')
    g=$(offset "$f" '\x02\x00\x00\x00UL\x04\x00')
    glen=$(od -An -tu4 -j $((g + 8)) -N4 "$f" | tr -d ' ')
    { head -c $((g + 8)) "$f"; le32 $((glen + newlen - oldlen))
      tail -c +$((g + 13)) "$f" | head -c $((o - g - 12))
      printf '\x02\x00\x10\x00UI'; le16 "$newlen"; printf '%s' "$uid" | tr '\001' '\000'
      tail -c +$((o + 9 + oldlen)) "$f"; } > "$f.new"
    mv "$f.new" "$f"
}

# ---- valid small files (the allocation-failure tests and smoke tests use them) ----
dump | mk ok_native
dcmconv -q +ti "$out/ok_native.dcm" "$out/ok_implicit.dcm"
dcmconv -q +tb "$out/ok_native.dcm" "$out/ok_bigendian.dcm"
dcmconv -q +td "$out/ok_native.dcm" "$out/ok_deflated.dcm"
dcmcjpeg -q +e1 "$out/ok_native.dcm" "$out/ok_jpeg_sv1.dcm"
dcmcjpls -q +el "$out/ok_native.dcm" "$out/ok_jpegls.dcm"
dcmcrle -q "$out/ok_native.dcm" "$out/ok_rle.dcm"
gdcmconv --j2k "$out/ok_native.dcm" "$out/ok_j2k.dcm"
pr=1 bs=12 hb=11 dump | mk ok_signed
gdcmconv --j2k "$out/ok_signed.dcm" "$out/ok_j2k_signed.dcm"

# ---- broken inputs ----
printf 'This is a plain text file, not a DICOM object.\n%.0s' $(seq 1 8) > "$out/not_dicom.txt"
: > "$out/empty.dcm"
head -c 60 "$out/ok_native.dcm" > "$out/short_header.dcm"

size=$(stat -c %s "$out/ok_native.dcm")
head -c $((size - 301)) "$out/ok_native.dcm" > "$out/truncated.dcm"

npix=50 dump | mk short_pixels
rows=0 dump | mk rows_zero
bs=17 hb=16 dump | mk bits_stored_gt_allocated
bs=12 hb=3 dump | mk high_bit_bad
ba=0 bs=0 hb=0 npix=4 dump | mk bits_allocated_zero
ba=32 bs=32 hb=31 npix=4 dump | mk bits_allocated_32
rows=65535 cols=65535 npix=100 dump | mk absurd_size
pi=RGB spp=3 dump | mk colour
pi=PALETTE\ COLOR dump | mk palette
dump '(0028,0008) IS [2]' | mk multiframe
dump '(0028,0008) IS [many]' | mk frames_not_number
dump | mk unknown_syntax
set_meta_ts "$out/unknown_syntax.dcm" 1.2.3.4.5.6.7
dump | grep -v '^(7fe0' | mk missing_pixels
pr=1 dump '(0028,3000) SQ (Sequence with explicit length #=1)
  (fffe,e000) na (Item with explicit length #=3)
    (0028,3002) US 4096\63488\16
    (0028,3004) LO [HU]
    (0028,3006) US 0\1\2\3\4\5\6\7\8\9
  (fffe,e00d) na (ItemDelimitationItem for re-encoding)
(fffe,e0dd) na (SequenceDelimitationItem for re-encod.)' | mk lut_short

# Rows written as UL with a 2-byte value: a length that does not fit its VR. (An odd-length US
# is not in the corpus: DCMTK pads it and reads the right value.)
f="$out/wrong_vr_length.dcm"
cp "$out/ok_native.dcm" "$f"
o=$(offset "$f" '\x28\x00\x10\x00US\x02\x00')
printf 'UL' | dd of="$f" bs=1 seek=$((o + 4)) conv=notrunc status=none

# Rows with a 4-byte length: the parser loses the element boundaries from there on.
f="$out/vr_length_desync.dcm"
cp "$out/ok_native.dcm" "$f"
printf '\x04\x00' | dd of="$f" bs=1 seek=$((o + 6)) conv=notrunc status=none

# PatientID whose 2-byte length points far beyond the end of the file.
f="$out/length_past_end.dcm"
cp "$out/ok_native.dcm" "$f"
o=$(offset "$f" '\x10\x00\x20\x00LO')
printf '\xf0\xff' | dd of="$f" bs=1 seek=$((o + 6)) conv=notrunc status=none

# Video transfer syntax (MPEG-2): well-formed encapsulated data we do not decode.
cp "$out/ok_j2k.dcm" "$out/video_mpeg2.dcm"
set_meta_ts "$out/video_mpeg2.dcm" 1.2.840.10008.1.2.4.100

# JPEG 2000 whose fragment is garbage / a truncated codestream / a header that disagrees.
extract_fragment "$out/ok_j2k.dcm" frag.j2k
cp "$out/ok_j2k.dcm" "$out/j2k_garbage.dcm"
printf 'GARBAGE-NOT-A-CODESTREAM-' > garbage.bin
replace_fragment "$out/j2k_garbage.dcm" garbage.bin
cp "$out/ok_j2k.dcm" "$out/j2k_truncated.dcm"
head -c $(($(stat -c %s frag.j2k) / 2)) frag.j2k > half.j2k
replace_fragment "$out/j2k_truncated.dcm" half.j2k
cp "$out/ok_j2k.dcm" "$out/j2k_size_mismatch.dcm"
dcmodify -q -nb -m "(0028,0010)=10" "$out/j2k_size_mismatch.dcm"
cp "$out/ok_j2k.dcm" "$out/j2k_precision.dcm"
dcmodify -q -nb -m "(0028,0100)=8" -m "(0028,0101)=8" -m "(0028,0102)=7" "$out/j2k_precision.dcm"
cp "$out/ok_native.dcm" "$out/j2k_not_encapsulated.dcm"
set_meta_ts "$out/j2k_not_encapsulated.dcm" 1.2.840.10008.1.2.4.90

# JPEG lossless whose fragment lost its frame header (SOF3 marker overwritten).
extract_fragment "$out/ok_jpeg_sv1.dcm" frag.jpg
cp "$out/ok_jpeg_sv1.dcm" "$out/jpeg_no_sof.dcm"
o=$(offset frag.jpg '\xff\xc3')
printf '\xff\xfe' | dd of=frag.jpg bs=1 seek="$o" conv=notrunc status=none
replace_fragment "$out/jpeg_no_sof.dcm" frag.jpg

# RLE: a segment offset far past the fragment (DCMTK 3.6.7's frame decoder crashes on this),
# a header announcing 3 segments for a 16-bit image, and a second segment that starts 2 bytes
# before the end (decodes to too few bytes).
rle_frag() { # prints the offset of the RLE header inside ok_rle.dcm
    local f="$out/ok_rle.dcm" start bot_len
    start=$(offset "$f" '\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff')
    bot_len=$(od -An -tu4 -j $((start + 16)) -N4 "$f" | tr -d ' ')
    echo $((start + 12 + 8 + bot_len + 8))
}
r=$(rle_frag)
rlen=$(od -An -tu4 -j $((r - 4)) -N4 "$out/ok_rle.dcm" | tr -d ' ')
cp "$out/ok_rle.dcm" "$out/rle_segment_offset.dcm"
le32 $((0x7ffffff0)) | dd of="$out/rle_segment_offset.dcm" bs=1 seek=$((r + 8)) conv=notrunc status=none
cp "$out/ok_rle.dcm" "$out/rle_segment_count.dcm"
le32 3 | dd of="$out/rle_segment_count.dcm" bs=1 seek="$r" conv=notrunc status=none
cp "$out/ok_rle.dcm" "$out/rle_short_segment.dcm"
le32 $((rlen - 2)) | dd of="$out/rle_short_segment.dcm" bs=1 seek=$((r + 8)) conv=notrunc status=none

ls -l "$out" | awk '{ s += $5 } END { print NR - 1 " files, " s " bytes" }'

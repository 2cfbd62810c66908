#!/bin/sh
# End-to-end viewer test: cxrseg segments the real chest CR (uncut, 1841 x 1955), the same writer
# makes hand-made results with 1 to 8 segments for stand-ins of odd sizes, a private Orthanc
# (DICOMweb plugin) stores every source and result, OHIF 3.13.2 is served with Orthanc from one
# origin, and headless Chromium checks, case by case, that each SEG loads (its requests all
# answered), that its overlay is where the SEG says, that the SR's findings are listed as
# editable measurements with their areas, and that the page threw nothing (tests/viewer/drive.js).
#
# Installs what is missing (chromium and nodejs/npm via apt when root, the pinned npm packages via
# `npm ci` from tests/viewer/package-lock.json, OHIF's prebuilt dist via `npm pack`), caching
# downloads in $CX_CACHE (default ~/.cache/cxrseg-viewer). Exit 77 (skip) only when something
# cannot be had; every skip and failure says why. Screenshots: $CX_BUILDDIR/tests/viewer/artifacts.
# Environment: CX_VIEWER_RESULTS=DIR uses the DICOM files in DIR instead of running
# `cxrseg segment` (for debugging the harness); CX_VIEWER_KEEP=1 keeps the work directory;
# CX_VIEWER_REQUIRE_LUNGS=yes|no overrides whether the SEG must have lung segments;
# CX_VIEWER_TIMEOUT (seconds, default 120) bounds each wait in the browser; CX_VIEWER_MODEL=FILE
# picks the model (default: models/*.cxm, else tests/data's untrained fixture);
# CX_VIEWER_STANDINS lists the stand-in cases (see below; "none" for the real CR only);
# CX_VIEWER_SEG_ENCODING=binary|fractional makes the stand-ins' SEGs with that encoding.
# A summary table (one line per case) is printed and kept in $CX_BUILDDIR/tests/viewer/artifacts.
set -u

srcdir=${CX_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${CX_BUILDDIR:-$(pwd)}
shared=${CX_SHARED:-$srcdir/../shared}
cache=${CX_CACHE:-${HOME:-/root}/.cache/cxrseg-viewer}
viewer=$srcdir/tests/viewer
art=$builddir/tests/viewer/artifacts
ohif_version=3.13.2

say() { echo "viewer: $*"; }
skip() { echo "viewer: SKIP: $*"; exit 77; }
fail() { echo "viewer: FAIL: $*"; exit 1; }
t_start=$(date +%s)
elapsed() { echo $(( $(date +%s) - t_start )); }

# ---- inputs ---------------------------------------------------------------------------------
source_dcm=$shared/data/dicom/RG1_J2KI.dcm
if [ ! -r "$source_dcm" ]; then
    # Without ../shared: a stand-in CR of the real radiograph in tests/data (tests/make_synthetic_cr.py).
    standin=$builddir/tests/viewer/standin
    mkdir -p "$standin"
    /usr/bin/python3 "$srcdir/tests/make_synthetic_cr.py" "$standin" "$srcdir" >"$standin.log" 2>&1 ||
        skip "shared data not found ($source_dcm) and no stand-in: $(tail -n 1 "$standin.log")"
    source_dcm=$standin/chest.dcm
    say "shared data absent: using a stand-in CR made by tests/make_synthetic_cr.py"
fi
command -v gdcmconv >/dev/null 2>&1 || skip "gdcmconv not installed (Debian package libgdcm-tools)"
for t in dcmodify dcmdump dcmsend dcmscale; do
    command -v $t >/dev/null 2>&1 || skip "$t not installed (Debian package dcmtk)"
done
command -v curl >/dev/null 2>&1 || skip "curl not installed (Debian package curl)"

cxrseg=$builddir/cxrseg
model=""
if [ -z "${CX_VIEWER_RESULTS:-}" ]; then
    [ -x "$cxrseg" ] || skip "$cxrseg not built"
    mkdir -p "$builddir/tests/viewer"
    help=$builddir/tests/viewer/segment-help.txt
    if ! "$cxrseg" segment --help >"$help" 2>&1; then
        skip "\`cxrseg segment\` is not available in this build: $(head -n 1 "$help")"
    fi
    # CX_VIEWER_MODEL, else the trained model if there is one, else the test fixture model.
    for m in ${CX_VIEWER_MODEL:-} "$srcdir"/models/*.cxm "$builddir"/models/*.cxm "$srcdir"/tests/data/*model*.cxm; do
        if [ -f "$m" ]; then model=$m; break; fi
    done
    [ -n "$model" ] || skip "no model file (*.cxm) in models/ or tests/data/"
fi
# The fixtures in tests/data are untrained (random weights): they find no lungs, so the lung
# check is only required of a real model.
case $model in
    "$srcdir"/tests/data/*) require_lungs=no ;;
    *) require_lungs=yes ;;
esac
require_lungs=${CX_VIEWER_REQUIRE_LUNGS:-$require_lungs}

# ---- tools: Chromium, Node.js, npm packages, OHIF ---------------------------------------------
apt_install() {
    [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    say "installing Debian packages: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$builddir/tests/viewer/apt.log" 2>&1 ||
        { apt-get update -q >>"$builddir/tests/viewer/apt.log" 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$builddir/tests/viewer/apt.log" 2>&1; }
}
chromium=${CX_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    apt_install chromium || skip "chromium is not installed and could not be installed (see $builddir/tests/viewer/apt.log)"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || skip "node/npm are not installed and could not be installed"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || skip "node $node_major is too old (puppeteer-core needs >= 18)"

mkdir -p "$cache" || skip "cannot create the cache directory $cache"
# npm packages: installed once per lock file, keyed by its hash.
lock_hash=$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha256").update(f.readFileSync(process.argv[1])).digest("hex").slice(0,16))' "$viewer/package-lock.json")
npm_dir=$cache/npm-$lock_hash
# Installed beside the final place and renamed into it, so a concurrent or interrupted run never
# sees half a tree.
if [ ! -f "$npm_dir/.complete" ]; then
    say "installing the pinned npm packages into $npm_dir"
    tmp=$npm_dir.tmp.$$
    rm -rf "$tmp" && mkdir -p "$tmp" &&
        cp "$viewer/package.json" "$viewer/package-lock.json" "$tmp/" &&
        (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund >npm-ci.log 2>&1) &&
        touch "$tmp/.complete" || { cp "$tmp/npm-ci.log" "$cache/npm-ci.log" 2>/dev/null; rm -rf "$tmp";
            skip "npm ci failed (no registry access?); see $cache/npm-ci.log"; }
    rm -rf "$npm_dir" && mv "$tmp" "$npm_dir" || fail "could not move $tmp to $npm_dir"
fi
# OHIF's prebuilt viewer: the npm tarball, checked against the integrity pinned in package.json.
ohif_dir=$cache/ohif-$ohif_version
if [ ! -f "$ohif_dir/.complete" ]; then
    tgz=$cache/ohif-app-$ohif_version.tgz
    if [ ! -f "$tgz" ]; then
        say "fetching @ohif/app@$ohif_version (about 50 MB)"
        (cd "$cache" && npm pack "@ohif/app@$ohif_version" >npm-pack.log 2>&1) ||
            skip "npm pack @ohif/app@$ohif_version failed; see $cache/npm-pack.log"
    fi
    want=$(node -p 'require(process.argv[1]).ohif.integrity' "$viewer/package.json")
    got=$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz")
    if [ "$want" != "$got" ]; then
        rm -f "$tgz"
        fail "$tgz does not match the pinned integrity ($got != $want); removed it, rerun to fetch again"
    fi
    tmp=$ohif_dir.tmp.$$
    rm -rf "$tmp" && mkdir -p "$tmp" &&
        tar -xzf "$tgz" -C "$tmp" --strip-components=1 &&
        [ -f "$tmp/dist/index.html" ] && touch "$tmp/.complete" ||
        { rm -rf "$tmp"; fail "unpacking $tgz gave no dist/index.html"; }
    rm -rf "$ohif_dir" && mv "$tmp" "$ohif_dir" || fail "could not move $tmp to $ohif_dir"
fi
say "tools ready after $(elapsed) s (chromium: $("$chromium" --version 2>/dev/null | head -n 1), node $(node --version))"

# ---- work directory and clean-up ---------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/cxrseg-viewer.XXXXXX")
serve_pid=""
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    "$srcdir/tests/peers/orthanc-stop.sh" "$work/orthanc" 2>/dev/null
    if [ "${CX_VIEWER_KEEP:-0}" = 1 ]; then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
rm -rf "$art"
mkdir -p "$art"

# ---- cxrseg's results for the real chest CR ------------------------------------------------------
# RG1_J2KI.dcm has PixelSpacing 0\0 and no ImagerPixelSpacing. OHIF 3.13.2 renders such an image
# black with WebGL (a zero spacing makes a degenerate image plane), and without a spacing the SR
# has no areas to show. The test therefore works on a copy with PixelSpacing 0.2\0.2 mm (about
# right for a 35x43 cm cassette); the UIDs and the size (1841 x 1955 for RG1) stay the original's.
cp "$source_dcm" "$work/source.dcm" && chmod u+w "$work/source.dcm" &&
    dcmodify -nb -i "(0028,0030)=0.2\\0.2" "$work/source.dcm" >/dev/null ||
    fail "could not make the test copy of $source_dcm"
# The first value of a top-level attribute given by its tag number (dcmdump indents nested
# ones, and +P would find those too): a string in brackets, or a number (US) as dcmdump prints it.
tag() {
    dcmdump -q -M "$1" 2>/dev/null | grep -i "^($2)" | head -n 1 |
        sed -n -e 's/.*\[\(.*\)\].*/\1/p' -e 't' -e 's/^([0-9a-fA-F,]*) [A-Z][A-Z] \([0-9]*\) .*/\1/p'
}
size_of() { echo "$(tag "$1" 0028,0011)x$(tag "$1" 0028,0010)"; }
study=$(tag "$work/source.dcm" 0020,000d)
[ -n "$study" ] || fail "no StudyInstanceUID in $source_dcm"

# Every case is a study of its own in Orthanc: its source (to store) and its results folder.
# cases.tsv: name, source file, results folder, whether lungs are required.
: >"$work/cases.tsv"
if [ -n "${CX_VIEWER_RESULTS:-}" ]; then
    say "using the results in $CX_VIEWER_RESULTS (CX_VIEWER_RESULTS), not cxrseg segment"
    printf 'rg1\t%s\t%s\t%s\n' "$work/source.dcm" "$CX_VIEWER_RESULTS" "$require_lungs" >>"$work/cases.tsv"
else
    results=$work/out/rg1
    mkdir -p "$results"
    set -- "$cxrseg" segment
    # Pass the model the way this build's `segment` takes it.
    if grep -q -- '--model' "$help"; then set -- "$@" --model "$model"; fi
    set -- "$@" "$work/source.dcm" -o "$results"
    say "running: $*"
    t0=$(date +%s)
    "$@" >"$art/segment.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || { cat "$art/segment.log"; fail "cxrseg segment failed (exit $rc)"; }
    say "cxrseg segment took $(( $(date +%s) - t0 )) s with model $model"
    printf 'rg1\t%s\t%s\t%s\n' "$work/source.dcm" "$results" "$require_lungs" >>"$work/cases.tsv"
fi

# Stand-ins: every segment count at odd image sizes, with hand-made findings written by the same
# writer (tests/viewer/results), each in a study of its own. CX_VIEWER_STANDINS lists
# SIZE:COUNTS items; SIZE is WxH (columns x rows: the radiograph of tests/data scaled to it) or
# rg1 (the real CR's test copy above, in a new study); COUNTS is a list such as 1-8 or 2,5.
# "none" runs the real CR only.
standins=${CX_VIEWER_STANDINS-333x401:1-8 602x699:3,4,7}
[ "$standins" = none ] && standins=""
seg_encoding=${CX_VIEWER_SEG_ENCODING:-}
fixture=$builddir/tests/viewer/results
if [ -n "$standins" ]; then
    [ -x "$fixture" ] || skip "$fixture not built (make check builds it; or set CX_VIEWER_STANDINS=none)"
    sizes=""
    for item in $standins; do
        s=${item%%:*}
        case $s in rg1) ;; *x*) sizes="$sizes $s" ;; *) fail "CX_VIEWER_STANDINS: bad size in $item" ;; esac
    done
    if [ -n "$sizes" ]; then
        # shellcheck disable=SC2086
        /usr/bin/python3 "$srcdir/tests/make_synthetic_cr.py" "$work/standin" "$srcdir" $sizes >"$work/standin.log" 2>&1 ||
            skip "cannot make the stand-in CRs (python3 with numpy, PIL, pydicom): $(tail -n 1 "$work/standin.log")"
    fi
    for item in $standins; do
        s=${item%%:*} counts=${item#*:}
        case $s in rg1) base=$work/source.dcm ;; *) base=$work/standin/chest-$s.dcm ;; esac
        [ -f "$base" ] || fail "no stand-in source $base"
        for part in $(echo "$counts" | tr ',' ' '); do
            case $part in
                *-*) list=$(seq "${part%-*}" "${part#*-}") ;;
                *) list=$part ;;
            esac
            for n in $list; do
                name=$s-$n
                dir=$work/out/$name
                mkdir -p "$dir"
                # A new study, series and instance for this case, so that OHIF sees one SEG per study.
                cp "$base" "$dir.src.dcm" &&
                    dcmodify -nb -gst -gse -gin -m "(0008,1030)=stand-in $s, $n segments" "$dir.src.dcm" >/dev/null ||
                    fail "could not make the source of case $name"
                "$fixture" "$dir.src.dcm" "$dir" "$n" $seg_encoding >"$dir.log" 2>&1 ||
                    fail "tests/viewer/results for $name: $(cat "$dir.log")"
                printf '%s\t%s\t%s\tno\n' "$name" "$dir.src.dcm" "$dir" >>"$work/cases.tsv"
            done
        done
    done
fi

# The cases for drive.js: study, SEG series, size and the segment labels OHIF must show.
n_sources=0
n_results=0
printf '[' >"$work/cases.json"
sep=""
while IFS="$(printf '\t')" read -r name src res lungs; do
    seg="" sr=""
    for f in "$res"/*.dcm; do
        [ -f "$f" ] || continue
        n_results=$((n_results + 1))
        case $(tag "$f" 0008,0060) in
            SEG) [ -z "$seg" ] || fail "more than one SEG in $res"; seg=$f ;;
            SR) [ -z "$sr" ] || fail "more than one SR in $res"; sr=$f ;;
        esac
    done
    n_sources=$((n_sources + 1))
    [ -n "$seg" ] || fail "case $name: no SEG among the DICOM files in $res"
    [ -n "$sr" ] || fail "case $name: no SR among the DICOM files in $res"
    labels=$(dcmdump +P SegmentLabel "$seg" | sed -n 's/.*\[\(.*\)\].*/\1/p' |
        node -e 'const l=require("fs").readFileSync(0,"utf8").split("\n").filter(Boolean);process.stdout.write(JSON.stringify(l))')
    [ "$labels" != "[]" ] || fail "the SEG $seg has no SegmentLabel"
    # The SEG must keep the source's size (OHIF's adapter throws otherwise).
    [ "$(size_of "$seg")" = "$(size_of "$src")" ] || fail "case $name: SEG is $(size_of "$seg"), the source $(size_of "$src")"
    # The masks as an independent reader (pydicom) decodes the file, for OHIF's labelmap to match.
    stats=$(/usr/bin/python3 "$viewer/segstats.py" "$seg" 2>"$work/segstats.err") ||
        fail "case $name: segstats.py could not read $seg: $(tail -n 1 "$work/segstats.err")"
    printf '%s{"name":"%s","study":"%s","segSeries":"%s","size":"%s","labels":%s,"requireLungs":"%s","encoding":"%s","segStats":%s}' \
        "$sep" "$name" "$(tag "$src" 0020,000d)" "$(tag "$seg" 0020,000e)" "$(size_of "$src")" \
        "$labels" "$lungs" "$(tag "$seg" 0062,0001)" "$stats" >>"$work/cases.json"
    sep=","
    say "case $name: $(size_of "$src"), SEG $(tag "$seg" 0062,0001) $(tag "$seg" 0028,0100)-bit, segments $labels"
done <"$work/cases.tsv"
printf ']\n' >>"$work/cases.json"
cp "$work/cases.json" "$art/cases.json"

# ---- Orthanc with DICOMweb, the sources and the results stored over DICOM ---------------------
"$srcdir/tests/peers/orthanc-start.sh" "$work/orthanc" >/dev/null
rc=$?
[ $rc -eq 77 ] && skip "Orthanc or its DICOMweb plugin is not installed (Debian packages orthanc, orthanc-dicomweb)"
[ $rc -eq 0 ] || { tail -n 20 "$work/orthanc/orthanc.out"; fail "Orthanc did not start"; }
. "$work/orthanc/env"
# dcmsend proposes each file's own transfer syntax; storescu's defaults would have to convert the
# JPEG 2000 source, which DCMTK cannot.
cut -f 2 "$work/cases.tsv" >"$work/send.lst"
cut -f 3 "$work/cases.tsv" | while read -r d; do ls "$d"/*.dcm; done >>"$work/send.lst"
# shellcheck disable=SC2046
if ! dcmsend -aet CXVIEWERTEST -aec "$ORTHANC_AET" 127.0.0.1 "$ORTHANC_DICOM_PORT" \
        $(cat "$work/send.lst") >"$art/dcmsend.log" 2>&1; then
    cat "$art/dcmsend.log"
    fail "dcmsend to Orthanc failed"
fi
stored=$(curl -fsS "$ORTHANC_URL/statistics" | sed -n 's/.*"CountInstances" *: *\([0-9]*\).*/\1/p')
[ "$stored" = $((n_results + n_sources)) ] || fail "Orthanc holds $stored instances, expected $((n_results + n_sources))"
say "Orthanc on 127.0.0.1:$ORTHANC_HTTP_PORT holds $n_sources sources and $n_results results"

# ---- one origin for OHIF and DICOMweb -------------------------------------------------------------
node "$viewer/serve.js" --dist "$ohif_dir/dist" --config "$viewer/app-config.js" \
    --orthanc "$ORTHANC_URL" --log "$art/serve.log" >"$work/serve.out" 2>&1 &
serve_pid=$!
port=""
i=0
while [ $i -lt 100 ]; do
    port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$work/serve.out" 2>/dev/null)
    [ -n "$port" ] && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || { cat "$work/serve.out"; fail "serve.js did not start"; }
# The comma fix is what makes OHIF's study list readable: check it through the proxy.
desc=$(curl -fsS "http://127.0.0.1:$port/dicom-web/studies?StudyInstanceUID=$study&includefield=00081030%2C00080061")
want_desc=$(dcmdump +P 0008,1030 "$work/source.dcm" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -n 1)
[ -n "$want_desc" ] || fail "the test copy has no StudyDescription"
case $desc in
    *"$want_desc"*) ;;
    *) fail "QIDO through serve.js lost the study description ($want_desc): $desc" ;;
esac

# ---- the browser ------------------------------------------------------------------------------------
say "driving OHIF at http://127.0.0.1:$port over $n_sources cases (setup took $(elapsed) s)"
NODE_PATH=$npm_dir/node_modules node "$viewer/drive.js" --base "http://127.0.0.1:$port" \
    --cases "$work/cases.json" --out "$art" --serve-log "$art/serve.log" --chromium "$chromium" \
    --timeout "${CX_VIEWER_TIMEOUT:-120}"
status=$?
cp "$work/orthanc/orthanc.out" "$art/orthanc.out" 2>/dev/null
say "screenshots in $art/<case>/; summary in $art/summary.txt; total $(elapsed) s"
[ $status -eq 0 ] || fail "viewer checks failed (see above and $art/<case>/console.log)"
exit 0

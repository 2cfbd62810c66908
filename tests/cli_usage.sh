#!/bin/sh
# Runs the real cxrseg binary on bad command lines and missing/broken inputs and matches its
# messages and documented exit codes (see cxrseg --help, docs/cli.md). Needs no shared data.
set -u
bin="${CX_BUILDDIR:-.}/cxrseg"
tmp=$(mktemp -d /tmp/cx_cli_usage.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "${CX_SRCDIR:-.}/tests/cli_lib.sh"

expect 0 '^Exit codes:' -- --help
for c in '0  success' '1  usage error' '2  input or I/O error' '3  unsupported input' '4  configuration error' \
         '5  model error' '6  internal error'; do
    expect 0 "^  $c" -- --help
done
expect 0 '^cxrseg [0-9]+\.[0-9]+\.[0-9]+$' -- --version
expect 1 '^Usage: cxrseg' --
expect 1 "^cxrseg: unknown command 'bogus' \(see: cxrseg --help\)$" -- bogus
expect 1 "^cxrseg: unknown option '--bogus'" -- --bogus info x
expect 0 '^Usage: cxrseg render FILE -o OUT.png' -- help render
expect 0 '^Usage: cxrseg info FILE \[--json\]' -- info --help
expect 1 "^cxrseg help: unknown command 'nope'" -- help nope
expect 1 '^cxrseg info: FILE missing \(see: cxrseg info --help\)$' -- info
expect 1 "^cxrseg info: unknown option '--xml'" -- info --xml x.dcm
expect 1 "^cxrseg info: one FILE expected, got 'a' and 'b'" -- info a b
expect 1 '^cxrseg render: FILE missing' -- render -o x.png
expect 1 '^cxrseg render: -o OUT.png missing' -- render x.dcm
expect 1 '^cxrseg render: option -o needs a value' -- render x.dcm -o
expect 1 "^cxrseg render: --size 'abc': expected an integer 1..65536" -- render x.dcm -o y.png --size abc
expect 1 "^cxrseg render: --size '0': expected an integer" -- render x.dcm -o y.png --size 0
expect 1 "^cxrseg render: --window '40': expected CENTRE,WIDTH" -- render x.dcm -o y.png --window 40
expect 1 "^cxrseg render: --window '40,x': expected two numbers" -- render x.dcm -o y.png --window 40,x
expect 1 '^cxrseg render: --window, --auto, --auto-minmax and --no-voi exclude each other' -- \
    render x.dcm -o y.png --auto --no-voi
expect 1 '^cxrseg render: --size excludes --min-size/--max-size' -- render x.dcm -o y.png --size 5 --min-size 4 --max-size 8
expect 1 '^cxrseg render: --min-size and --max-size go together' -- render x.dcm -o y.png --min-size 4
expect 1 '^cxrseg render: --min-size 9 exceeds --max-size 8' -- render x.dcm -o y.png --min-size 9 --max-size 8
# getopt_long: one wording for bad options in every command; --name=value, "--" ends the options
expect 1 "^cxrseg: unknown option '-x' \(see: cxrseg --help\)$" -- -x info a
expect 1 "^cxrseg render: unknown option '--bogus' \(see: cxrseg render --help\)$" -- render x.dcm --bogus
expect 1 '^cxrseg render: option --size needs a value' -- render x.dcm -o y.png --size
expect 1 "^cxrseg render: ambiguous option '--win'" -- render x.dcm -o y.png --win 3
expect 1 '^cxrseg info: option --json takes no value' -- info --json=yes x.dcm
built() { ! "$bin" --help | grep -q "^  $1 .*(not built)$"; }
built check-config && expect 1 '^cxrseg check-config: option --xsd needs a value' -- check-config --xsd
built eval && expect 1 "^cxrseg eval: unknown option '--bogus'" -- eval --bogus
built eval && expect 1 "^cxrseg eval: unexpected argument 'x'" -- eval x
built detect && expect 1 '^cxrseg detect: option --model needs a value' -- detect x.png --model
built segment && expect 1 "^cxrseg segment: unknown option '--bogus'" -- segment x.dcm -o d --bogus
expect 1 "^cxrseg render: --size '0': expected an integer" -- render x.dcm --output=y.png --size=0
expect 2 '^cxrseg info: cannot open -x.dcm: ' -- info -- -x.dcm

# input errors: exit 2 with the cause
expect 2 '^cxrseg info: cannot open /nonexistent/a.dcm: No such file or directory$' -- info /nonexistent/a.dcm
expect 2 '^cxrseg render: load: cannot open /nonexistent/a.dcm: No such file or directory$' -- \
    render /nonexistent/a.dcm -o "$tmp/a.png"
printf 'just some text, not an image\n' >"$tmp/text.dcm"
expect 2 '^cxrseg info: ' -- info "$tmp/text.dcm"
expect 2 '^cxrseg render: ' -- render "$tmp/text.dcm" -o "$tmp/b.png"
[ -e "$tmp/b.png" ] && { echo "FAIL: output written for a failed render"; fails=$((fails + 1)); }
# a PNG cut short: the PNG reader's message, exit 2
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000' >"$tmp/cut.png"
expect 2 '^cxrseg render: png: .*cut.png' -- render "$tmp/cut.png" -o "$tmp/c.png"
expect 2 '^cxrseg info: png: ' -- info "$tmp/cut.png"

# a command whose module is not linked in: exit 3 (skipped once it is built)
if "$bin" --help | grep -q '^  detect .*(not built)$'; then
    expect 3 "^cxrseg: command 'detect' is not built into this binary$" -- detect x.dcm
fi

echo "$n checks, $fails failed"
[ "$fails" -eq 0 ]

# Shared by the CLI tests (sourced): `expect` runs the real cxrseg binary and checks its exit code
# and output. The caller sets bin (the binary) and tmp (a scratch folder) before sourcing.
fails=0
n=0

# expect CODE PATTERN -- ARGS...: runs cxrseg ARGS, checks the exit code and that stdout+stderr
# contains PATTERN (a grep -E expression; "" = no check).
expect() {
    want=$1 pat=$2
    shift 3
    n=$((n + 1))
    "$bin" "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: cxrseg $* exited $got, expected $want"; sed 's/^/    /' "$tmp/out"; fails=$((fails + 1)); return
    fi
    if [ -n "$pat" ] && ! grep -Eq -- "$pat" "$tmp/out"; then
        echo "FAIL: cxrseg $* output lacks /$pat/"; sed 's/^/    /' "$tmp/out"; fails=$((fails + 1)); return
    fi
    echo "ok: cxrseg $* -> $got"
}

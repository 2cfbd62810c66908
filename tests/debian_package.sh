#!/bin/sh
# The Debian packages, as an administrator meets them (issue "Operations", part 1). As root only:
#   1. dpkg-buildpackage -us -uc -b on a copy of the tree; lintian on the result: no error;
#   2. apt-get install ./cxrseg_*.deb ./cxrseg-orthanc_*.deb: the system user, the spool owned by
#      it (0750), /etc/cxrseg/cxrseg.xml registered as a conffile, the hardened unit, the plugin
#      where Debian's Orthanc loads it, the installed CLI finding the installed XSD and model;
#   3. the administrator edits the conffile (port, destination), the service starts and processes
#      the real CR: SEG + SR arrive at a DCMTK storescp;
#   4. upgrade over itself (the same packages, version +up1): the edited conffile is kept without a
#      question, the node still processes the CR;
#   5. apt-get purge: no file of the packages is left, nor the spool, the log folder or /etc/cxrseg.
# The service is started by systemd when systemd runs this machine; otherwise (containers, CI) it
# is started the way the unit says: its ExecStartPre and ExecStart lines, its Environment, as its
# User and Group with no new privileges (setpriv). The unit itself is checked with
# `systemd-analyze verify` and its hardening with `systemd-analyze security --offline`.
# CX_DEB_DIR=DIR: take the packages (and .changes) already built in DIR instead of building them.
# Skips (77): not root; a tool missing (scripts/setup installs debhelper, lintian, dcmtk);
# a cxrseg package already installed on this machine (the test would replace it).
. "$(dirname "$0")/node_lib.sh"
unset CXRSEG_XSD # the installed CLI and node must find the installed schema

[ "$(id -u)" -eq 0 ] || skip "not root: building, installing and purging packages needs root"
for tool in dpkg-buildpackage dh lintian apt-get setpriv; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not installed (Debian packages dpkg-dev, debhelper, lintian, apt, util-linux)"
done
for p in cxrseg cxrseg-orthanc; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        skip "package $p is installed on this machine; the test would replace and purge it"
    fi
done

INSTALLED=0
purge_packages() {
    [ "$INSTALLED" = 1 ] || return 0
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q cxrseg-orthanc cxrseg > "$T/purge.log" 2>&1 </dev/null
}
trap 'purge_packages; cleanup' EXIT INT TERM

# ---- 1. build and lintian
if [ -n "${CX_DEB_DIR:-}" ]; then
    mkdir -p "$T/src" && cp "$CX_DEB_DIR"/*.deb "$CX_DEB_DIR"/*.changes "$CX_DEB_DIR"/*.buildinfo "$T/src/" ||
        fail "CX_DEB_DIR=$CX_DEB_DIR: no packages there"
    echo "using the packages in $CX_DEB_DIR (CX_DEB_DIR)"
else
    SRC="$T/src/cxrseg-0.1.0"
    mkdir -p "$SRC"
    # The tree as a clean clone has it (with the working tree's changes): in a git checkout the
    # files git tracks and the untracked ones .gitignore does not exclude; in an unpacked tarball
    # everything but build output.
    if git -C "$CX_SRCDIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$CX_SRCDIR" && git ls-files -z --cached --others --exclude-standard |
            tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$SRC" -xf -
    else
    tar -C "$CX_SRCDIR" --exclude=./.git --exclude=./build --exclude='./build-*' --exclude=./out \
        --exclude=./models/train/runs --exclude=./debian/build --exclude=./tests/fuzz/build \
        --exclude=./tests/fuzz/run --exclude=./autom4te.cache --exclude='*.o' --exclude='*.lo' \
        --exclude=./configure --exclude=./config.status --exclude=Makefile.in -cf - . | tar -C "$SRC" -xf -
    fi
    [ -f "$SRC/debian/control" ] || fail "no debian/control in $CX_SRCDIR"
    echo "building the packages in $SRC (log: dpkg-buildpackage.log)"
    # Without the make variables of the `make check` that runs this test: its TEST_LOGS (in
    # MAKEFLAGS) would override the package build's own test list and run this test inside the
    # package build, recursively.
    (cd "$SRC" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
        DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
        > "$T/dpkg-buildpackage.log" 2>&1 || { tail -n 40 "$T/dpkg-buildpackage.log"; fail "dpkg-buildpackage failed"; }
fi
CHANGES=$(ls "$T"/src/cxrseg_*.changes)
DEB=$(ls "$T"/src/cxrseg_*.deb)
DEB_ORTHANC=$(ls "$T"/src/cxrseg-orthanc_*.deb)
ok "built $(basename "$DEB") ($(du -k "$DEB" | cut -f1) kB) and $(basename "$DEB_ORTHANC")"
lintian --tag-display-limit 0 "$CHANGES" > "$T/lintian.log" 2>&1
lint_rc=$?
nE=$(grep -c '^E: ' "$T/lintian.log"); nW=$(grep -c '^W: ' "$T/lintian.log")
nI=$(grep -c '^I: ' "$T/lintian.log"); nO=$(grep -c '^O: ' "$T/lintian.log")
echo "lintian: $nE errors, $nW warnings, $nI info, $nO overridden"
sed 's/^/  /' "$T/lintian.log"
[ "$nE" -eq 0 ] || fail "lintian reports errors"
[ "$lint_rc" -eq 0 ] || fail "lintian exited $lint_rc"
ok "lintian: no error"

# ---- 2. install
INSTALLED=1
(cd "$T/src" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "./$(basename "$DEB")" "./$(basename "$DEB_ORTHANC")") > "$T/install.log" 2>&1 </dev/null ||
    { tail -n 30 "$T/install.log"; fail "apt-get install ./*.deb failed"; }
ok "apt-get install ./$(basename "$DEB") ./$(basename "$DEB_ORTHANC")"
getent passwd cxrseg | grep -q ':/usr/sbin/nologin$' || fail "system user cxrseg missing or has a login shell: $(getent passwd cxrseg)"
[ "$(stat -c '%U:%G %a' /var/spool/cxrseg)" = "cxrseg:cxrseg 750" ] ||
    fail "/var/spool/cxrseg is $(stat -c '%U:%G %a' /var/spool/cxrseg 2>&1), want cxrseg:cxrseg 750"
dpkg-query -W -f='${Conffiles}\n' cxrseg | grep -q '^ /etc/cxrseg/cxrseg.xml ' || fail "/etc/cxrseg/cxrseg.xml is not a conffile"
UNIT=/lib/systemd/system/cxrseg-node.service
[ -f "$UNIT" ] || fail "$UNIT not installed"
for key in 'User=cxrseg' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'PrivateTmp=yes' 'ReadWritePaths=/var/spool/cxrseg'; do
    grep -qx "$key" "$UNIT" || fail "$UNIT lacks $key"
done
[ "$(grep -c '^ReadWritePaths=' "$UNIT")" -eq 1 ] || fail "$UNIT has more than one ReadWritePaths line"
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify "$UNIT" > "$T/verify.log" 2>&1 || { cat "$T/verify.log"; fail "systemd-analyze verify $UNIT"; }
    if systemd-analyze security --offline=true "$UNIT" > "$T/security.log" 2>&1; then
        echo "systemd-analyze security: $(grep -i 'overall exposure' "$T/security.log")"
    fi
    ok "systemd-analyze verify: the unit is valid"
fi
PLUGIN=/usr/share/orthanc/plugins/libOrthancCxrSeg.so
[ -e "$PLUGIN" ] || fail "$PLUGIN missing (cxrseg-orthanc)"
dpkg -S "$(readlink -f "$PLUGIN")" | grep -q '^cxrseg-orthanc:' || fail "$(readlink -f "$PLUGIN") not owned by cxrseg-orthanc"
nm -D --defined-only "$PLUGIN" | grep -q ' OrthancPluginInitialize$' || fail "the installed plugin does not export OrthancPluginInitialize"
grep -q '"ConfigurationFile" : "/etc/cxrseg/cxrseg.xml"' /etc/orthanc/cxrseg.json || fail "/etc/orthanc/cxrseg.json does not name /etc/cxrseg/cxrseg.xml"
/usr/bin/cxrseg check-config /etc/cxrseg/cxrseg.xml > "$T/check.log" 2>&1 || { cat "$T/check.log"; fail "the installed cxrseg rejects the installed conf"; }
ok "installed: user, spool, conffile, hardened unit, plugin, $(cat "$T/check.log")"

# ---- 3. the administrator's edit (listener port, the example destination), the service, the real CR
PORT=$(free_port); DPORT=$(free_port)
CONF=/etc/cxrseg/cxrseg.xml
/usr/bin/python3 - "$CONF" "$PORT" "$DPORT" <<'PY' || fail "could not edit $CONF"
import re, sys
path, port, dport = sys.argv[1:]
s = open(path).read()
s, n = re.subn(r"<port>11112</port>", f"<port>{port}</port>", s, count=1)
# the example destination becomes the site's PACS (here a storescp)
s, m = re.subn(r"<ae-title>ORTHANC</ae-title>(\s*)<host>127.0.0.1</host>(\s*)<port>4242</port>",
              rf"<ae-title>DEST</ae-title>\1<host>127.0.0.1</host>\2<port>{dport}</port>", s, count=1)
if n != 1 or m != 1:
    sys.exit(f"{path}: the listener port or the example destination not found ({n}, {m})")
open(path, "w").write(s)
PY
/usr/bin/cxrseg check-config "$CONF" > "$T/check2.log" 2>&1 || { cat "$T/check2.log"; fail "the edited conf is invalid"; }
start_dest "$DPORT" "$T/dest"

SVC_PID=""
start_service() {
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload && systemctl start cxrseg-node || fail "systemctl start cxrseg-node"
        SVC_PID=$(systemctl show -p MainPID --value cxrseg-node)
    else
        # systemd does not run this machine: the unit's own lines, as its user.
        user=$(sed -n 's/^User=//p' "$UNIT"); group=$(sed -n 's/^Group=//p' "$UNIT")
        envs=$(sed -n 's/^Environment=//p' "$UNIT")
        sed -n 's/^ExecStartPre=//p' "$UNIT" > "$T/pre.lines"
        while read -r line; do
            case "$line" in
            +*) sh -c "${line#+}" || fail "ExecStartPre (as root) failed: $line" ;;
            *) env $envs setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs \
                   sh -c "$line" >> "$T/node.log" 2>&1 || fail "ExecStartPre failed: $line" ;;
            esac
        done < "$T/pre.lines"
        start=$(sed -n 's/^ExecStart=//p' "$UNIT")
        # shellcheck disable=SC2086 # the unit's command line, split as systemd splits it here
        env $envs setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs $start >> "$T/node.log" 2>&1 &
        SVC_PID=$!
        PIDS="$PIDS $SVC_PID"
    fi
    wait_echo "$PORT" CXRSEG 30 || fail "the service does not answer C-ECHO on port $PORT"
    [ "$(stat -c %U "/proc/$SVC_PID")" = cxrseg ] || fail "the service runs as $(stat -c %U "/proc/$SVC_PID"), not cxrseg"
}
stop_service() {
    if [ -d /run/systemd/system ]; then systemctl stop cxrseg-node; else
        kill -TERM "$SVC_PID"; i=0
        while running "$SVC_PID" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
        running "$SVC_PID" && fail "the service did not stop within 30 s of SIGTERM"
    fi
}
# process_cr N: send the N-th copy of the real CR (its own UIDs: results have deterministic UIDs),
# wait for the N-th SEG and SR at the destination (storescp names them SG.<uid>, SRc.<uid>).
make_copies 2 "$T/cr"
process_cr() {
    storescu -xw -aet PACS -aec CXRSEG 127.0.0.1 "$PORT" "$T/cr/cr$1.dcm" > "$T/storescu.log" 2>&1 ||
        { cat "$T/storescu.log"; fail "storescu to the service failed"; }
    i=0
    while [ $i -lt 1200 ]; do
        nseg=$(ls "$T/dest" | grep -c '^SG\.'); nsr=$(ls "$T/dest" | grep -c '^SR.\.')
        [ "$nseg" -ge "$1" ] && [ "$nsr" -ge "$1" ] && return 0
        sleep 0.1; i=$((i + 1))
    done
    fail "no SEG + SR (#$1) at the destination within 120 s: $(ls "$T/dest")"
}
start_service
process_cr 1
ok "the service (user cxrseg) processed the real CR: $(ls "$T/dest" | tr '\n' ' ')"
stop_service

# ---- 4. upgrade over itself, keeping the edited conffile
edited=$(md5sum < "$CONF")
for d in "$DEB" "$DEB_ORTHANC"; do
    rm -rf "$T/repack"; dpkg-deb -R "$d" "$T/repack"
    v=$(sed -n 's/^Version: //p' "$T/repack/DEBIAN/control")
    sed -i -e "s/^Version: .*/Version: $v+up1/" -e "s/(= $v)/(= $v+up1)/" "$T/repack/DEBIAN/control"
    dpkg-deb -b "$T/repack" "$T/src/up1_$(basename "$d")" > /dev/null || fail "dpkg-deb -b (upgrade package)"
done
(cd "$T/src" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "./up1_$(basename "$DEB")" "./up1_$(basename "$DEB_ORTHANC")") > "$T/upgrade.log" 2>&1 </dev/null ||
    { tail -n 30 "$T/upgrade.log"; fail "the upgrade failed (a conffile question would fail it too)"; }
grep -q '^Unpacking cxrseg .* over (0.1.0)' "$T/upgrade.log" || { cat "$T/upgrade.log"; fail "apt-get did not upgrade cxrseg"; }
[ "$(md5sum < "$CONF")" = "$edited" ] || fail "the upgrade changed the edited $CONF"
[ ! -e "$CONF.dpkg-new" ] && [ ! -e "$CONF.dpkg-dist" ] || fail "the upgrade left $CONF.dpkg-new/.dpkg-dist"
[ "$(stat -c '%U:%G %a' /var/spool/cxrseg)" = "cxrseg:cxrseg 750" ] || fail "the upgrade changed the spool's owner or mode"
ok "upgraded to $(dpkg-query -W -f='${Version}' cxrseg): the edited conffile kept"
start_service
process_cr 2
ok "after the upgrade the service processed the CR again"
stop_service

# ---- 5. purge
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q cxrseg-orthanc cxrseg > "$T/purge.log" 2>&1 </dev/null ||
    { tail -n 30 "$T/purge.log"; fail "apt-get purge failed"; }
INSTALLED=0
for p in cxrseg cxrseg-orthanc; do
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$st" in ""|un*|pn*) ;; *) fail "package $p left in state '$st' after purge" ;; esac
done
left=""
for f in /etc/cxrseg /usr/share/cxrseg /var/spool/cxrseg /var/log/cxrseg /usr/bin/cxrseg /usr/bin/cxrseg-node \
         "$UNIT" /etc/orthanc/cxrseg.json "$PLUGIN" /usr/lib/orthanc/libOrthancCxrSeg.so /usr/share/doc/cxrseg; do
    [ -e "$f" ] || [ -L "$f" ] && left="$left $f"
done
[ -z "$left" ] || fail "left after purge:$left"
ok "purged: no file, folder or package state left (the system user stays, as is Debian's practice)"
exit 0

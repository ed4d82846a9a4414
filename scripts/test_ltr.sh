#!/usr/bin/env bash
# Run the test suite (`make test`) on QGIS 3.40 LTR: a Debian 13 (trixie) userland, built once with
# debootstrap under build/ltr-root, holding the same Debian packages as scripts/setup.sh and its PyPI
# packages (torch) in a venv that sees them. Later runs reuse it (marker files; packages that setup.sh gains
# later are added). The suite runs on a copy of the working tree; every mount is undone and the copy
# removed on exit, also on failure or Ctrl-C. Needs root (debootstrap, chroot, mount).
#   LTR_ROOT=DIR         where the userland lives (default build/ltr-root)
#   DEBIAN_MIRROR=URL    (default http://deb.debian.org/debian)
#   LTR_PYTEST_ARGS=...  when set, run `pytest $LTR_PYTEST_ARGS` instead of `make test`
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=$PWD
ROOT=${LTR_ROOT:-$CHECKOUT/build/ltr-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TORCH=torch==2.13.0
VENV=/opt/dualsr-venv

if [ "$(id -u)" -ne 0 ]; then
    echo "test-ltr: needs root (it runs debootstrap, chroot and mount); run: sudo make test-ltr" >&2
    exit 2
fi
# In a mount namespace of its own when possible: the kernel then drops every mount made here when
# the script ends, however it ends (the trap below unmounts them too).
if [ -z "${DUALSR_LTR_NAMESPACE:-}" ] && command -v unshare >/dev/null && unshare -m --propagation private true 2>/dev/null; then
    DUALSR_LTR_NAMESPACE=1 exec unshare -m --propagation private "$0" "$@"
fi

exec 3>&1
say() { echo "test-ltr: $*" >&3; }
timed() {  # timed LABEL CMD...: run CMD and print how long it took, also when it fails
    local label=$1 start=$SECONDS rc=0
    shift
    "$@" || rc=$?
    say "$label took $((SECONDS - start)) s$([ $rc -eq 0 ] || echo " and failed (exit code $rc)")"
    return $rc
}

# Debian packages: the list in scripts/setup.sh (so both stay the same) plus make, which runs the suite,
# and git, which `make package` (tested by the suite) uses.
PACKAGES="$(sed -n '/^DEBIAN_PACKAGES="/,/"$/p' scripts/setup.sh | tr -d '"' | sed 's/^DEBIAN_PACKAGES=//') make git"
[ -n "${PACKAGES// /}" ] || { echo "test-ltr: no DEBIAN_PACKAGES list found in scripts/setup.sh" >&2; exit 1; }

command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

# 1. The base system. A half-built root (no marker) is removed and built again.
if [ ! -e "$ROOT/.dualsr-debootstrap-done" ]; then
    if [ -e "$ROOT" ]; then
        grep -q " $ROOT/" /proc/mounts && { echo "test-ltr: $ROOT has mounts left; unmount them first" >&2; exit 1; }
        rm -rf --one-file-system "$ROOT"
    fi
    mkdir -p "$ROOT"
    say "debootstrap trixie into $ROOT"
    timed debootstrap debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 || {
        tail -20 "$ROOT.debootstrap.log" >&2
        exit 1
    }
    touch "$ROOT/.dualsr-debootstrap-done"
fi

# 2. Mounts, undone in reverse order whatever happens next.
MOUNTS=()
cleanup() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null \
            || echo "test-ltr: could not unmount ${MOUNTS[i]}" >&2
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bind() {  # bind SOURCE TARGET [ro]
    mkdir -p "$2"
    mount --bind "$1" "$2"
    MOUNTS+=("$2")
    [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}
mount -t proc proc "$ROOT/proc"
MOUNTS+=("$ROOT/proc")
bind /dev "$ROOT/dev"
# Same network as the host: its name server and its /etc/hosts (the host name resolves without DNS).
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp -L /etc/hosts "$ROOT/etc/hosts"
# The host's CA bundle, kept apart from the one the chroot's ca-certificates package regenerates.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/host-ca-bundle.crt" 2>/dev/null \
    || cp "$ROOT/etc/ssl/certs/ca-certificates.crt" "$ROOT/etc/host-ca-bundle.crt" 2>/dev/null || true

in_root() {  # pip (torch below, the installer's tests in the suite) trusts the host's CA bundle
    chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive PIP_CERT=/etc/host-ca-bundle.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_DEFAULT_TIMEOUT=180 "$@"
}

# 3. QGIS 3.40 and the Debian Python stack: whatever of the list is not installed yet.
missing=$(in_root sh -c 'for p in "$@"; do dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done' sh $PACKAGES | tr '\n' ' ')
if [ -n "${missing// /}" ]; then
    say "installing Debian packages: $missing"
    install_packages() {
        in_root apt-get update -qq
        in_root apt-get install -y -qq --no-install-recommends $missing >"$ROOT.apt.log" 2>&1 || {
            tail -20 "$ROOT.apt.log" >&2
            return 1
        }
    }
    timed "Debian packages" install_packages
fi

# 4. The PyPI packages: each `.venv/bin/pip install ...` command of scripts/setup.sh (torch first), run
#    with a venv here that sees the Debian packages; commands already run are recorded and not repeated.
[ -x "$ROOT$VENV/bin/python" ] || in_root /usr/bin/python3 -m venv --system-site-packages "$VENV"
mapfile -t PIP_COMMANDS < <(grep -E '^[[:space:]]*\.venv/bin/pip install' scripts/setup.sh \
    | sed -e 's/^[[:space:]]*//' -e "s#^\.venv/bin/pip #$VENV/bin/pip #")
[ ${#PIP_COMMANDS[@]} -gt 0 ] || PIP_COMMANDS=("$VENV/bin/pip install -q $TORCH")
for command in "${PIP_COMMANDS[@]}"; do
    grep -qxF "$command" "$ROOT/.dualsr-pip-done" 2>/dev/null && continue
    say "$command"
    timed "${command##* }" in_root sh -c "$command" </dev/null
    echo "$command" >>"$ROOT/.dualsr-pip-done"
done
in_root "$VENV/bin/python" -c "import torch, qgis.core, osgeo.gdal, rasterio; \
print('test-ltr: QGIS', qgis.core.Qgis.QGIS_VERSION, '| GDAL', osgeo.gdal.__version__, '| torch', torch.__version__)"

# 5. The suite, on a copy of the working tree taken now (tracked and untracked files that git does not
#    ignore, and .git for `make package`), so that edits made while it runs do not change what it tests.
#    The copy lives in a folder of this run (runs can overlap) at the checkout's own path below it, with
#    ../shared beside it (read-only) when present, as the tests that use real scenes look there. It is
#    removed at the end; screenshots come back to build/desktop.
RUN_DIR=/ltr-run-$$
COPY=$ROOT$RUN_DIR$CHECKOUT
mkdir -p "$COPY"
remove_run_dir() { grep -q " $ROOT$RUN_DIR" /proc/mounts || rm -rf --one-file-system "${ROOT:?}$RUN_DIR"; }
trap 'cleanup; remove_run_dir' EXIT
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$COPY"
cp -a .git "$COPY/.git"
[ -d "$CHECKOUT/../shared" ] && bind "$(realpath "$CHECKOUT/../shared")" "$ROOT$RUN_DIR$(realpath -m "$CHECKOUT/../shared")" ro
copy_back() {
    if [ -d "$COPY/build/desktop" ]; then mkdir -p build/desktop && cp "$COPY"/build/desktop/* build/desktop/ 2>/dev/null; fi
    return 0
}
if [ -n "${LTR_PYTEST_ARGS:-}" ]; then
    run_suite() { in_root QT_QPA_PLATFORM=offscreen sh -c "cd '$RUN_DIR$CHECKOUT' && $VENV/bin/python -m pytest $LTR_PYTEST_ARGS"; }
else
    # `make test` without its setup step (setup.sh targets the host's .venv), with the chroot's interpreter;
    # -k: a failing group does not stop the others.
    run_suite() { in_root sh -c "cd '$RUN_DIR$CHECKOUT' && make -k -o setup test PY=$VENV/bin/python"; }
fi
rc=0
timed "suite" run_suite || rc=$?
copy_back
exit $rc

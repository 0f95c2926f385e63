#!/bin/sh
# Run GIMP 3 headless inside the trixie root, for tests/test_gimp.py.
#
#   unshare --mount sh tests/gimp/run_in_root.sh ROOT JOBDIR [HOSTPATH...]
#
# Must run in its own mount namespace (unshare --mount, private propagation
# is unshare's default): every mount below disappears when it exits, even on
# a crash, so nothing is left mounted on the host.
#   JOBDIR      -> /mnt/job inside the root (read-write): batch.py, images, profile/
#   HOSTPATH... -> bind-mounted read-only at the same path inside the root, so
#                  the plug-in's subprocess can run the project's Python there
#                  (the interpreter's prefix, the checkout with its .venv).
# GIMP runs with a clean environment (the PATH pitfall in
# shared/docs/gimp3-headless-notes.md) and GIMP3_DIRECTORY=/mnt/job/profile.
# With CMFNET_TEST_DISPLAY=:N it runs the GUI (gimp-3.0, for the interactive
# dialog test) on that X display; /tmp/.X11-unix is bind-mounted for it.
set -eu
ROOT=$1
JOB=$2
shift 2

mount --make-rprivate / 2>/dev/null || true
mkdir -p "$ROOT/mnt/job"
mount --bind "$JOB" "$ROOT/mnt/job"
for p in "$@"; do
    mkdir -p "$ROOT$p"
    mount --bind "$p" "$ROOT$p"
    mount -o remount,bind,ro "$ROOT$p"
done
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --rbind /dev "$ROOT/dev"
mkdir -p "$ROOT/tmp" && chmod 1777 "$ROOT/tmp"

GIMP=gimp-console-3.0
UI=-i
DISPLAY_ENV=
if [ -n "${CMFNET_TEST_DISPLAY:-}" ]; then
    mkdir -p "$ROOT/tmp/.X11-unix"
    mount --bind /tmp/.X11-unix "$ROOT/tmp/.X11-unix"
    GIMP=gimp-3.0
    UI=--no-splash
    DISPLAY_ENV="DISPLAY=$CMFNET_TEST_DISPLAY"
fi

# CMFNET_TEST_LANG: the language GIMP and the plug-in run in (the Chinese test)
exec chroot "$ROOT" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG="${CMFNET_TEST_LANG:-C.UTF-8}" \
    PYTHONUNBUFFERED=1 TMPDIR=/tmp GIMP3_DIRECTORY=/mnt/job/profile $DISPLAY_ENV \
    "$GIMP" $UI --batch-interpreter=python-fu-eval \
    -b "exec(open('/mnt/job/batch.py').read())" --quit

#!/bin/sh
# Build (or reuse) a Debian 13 "trixie" root with GIMP 3 for the opt-in GIMP test.
#
#   sh tests/gimp/build_root.sh [ROOT]
#
# ROOT defaults to $CMFNET_GIMP_ROOT, else ~/.cache/cmfnet-restore/gimp-trixie.
# Idempotent: a root that already has gimp-console-3.0 is left alone; a half-built
# one is resumed (debootstrap is redone only if it never finished).
# Needs root (debootstrap, chroot, mounts) and network access to deb.debian.org.
# Host packages: debootstrap (Debian 12's 1.0.128+nmu2+deb12u2 knows trixie).
set -eu

ROOT=${1:-${CMFNET_GIMP_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/cmfnet-restore/gimp-trixie}}
MIRROR=${CMFNET_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '[build_root %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# -2: the root also has the zh_CN.UTF-8 locale (the plug-in's Chinese test); an older root gets it
if [ -x "$ROOT/usr/bin/gimp-console-3.0" ] && [ -f "$ROOT/.cmfnet-root-complete-2" ]; then
    log "root ready: $ROOT"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "build_root.sh: must run as root (debootstrap/chroot)" >&2
    exit 2
fi
command -v debootstrap >/dev/null 2>&1 || {
    echo "build_root.sh: debootstrap missing (apt-get install -y debootstrap)" >&2
    exit 2
}

mkdir -p "$ROOT"

if [ ! -f "$ROOT/.cmfnet-debootstrap-done" ]; then
    if [ -e "$ROOT/debootstrap" ] || [ -e "$ROOT/usr" ]; then
        log "removing an unfinished debootstrap in $ROOT"
        # never follow into bind mounts of an interrupted run
        for m in dev/pts dev sys proc; do umount "$ROOT/$m" 2>/dev/null || true; done
        rm -rf --one-file-system "$ROOT"
        mkdir -p "$ROOT"
    fi
    log "debootstrap trixie -> $ROOT"
    debootstrap --variant=minbase --include=ca-certificates trixie "$ROOT" "$MIRROR"
    touch "$ROOT/.cmfnet-debootstrap-done"
fi

cleanup() {
    for m in dev/pts dev sys proc; do
        umount "$ROOT/$m" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
mountpoint -q "$ROOT/dev/pts" || mount --bind /dev/pts "$ROOT/dev/pts"
mountpoint -q "$ROOT/sys" || mount -t sysfs sysfs "$ROOT/sys"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

log "apt-get install gimp (inside the root)"
chroot "$ROOT" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive apt-get update
chroot "$ROOT" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gimp locales
chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin localedef -i zh_CN -f UTF-8 zh_CN.UTF-8
chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin apt-get clean

chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin gimp-console-3.0 --version
touch "$ROOT/.cmfnet-root-complete-2"
log "root ready: $ROOT"

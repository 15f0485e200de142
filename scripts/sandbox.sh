#!/usr/bin/env bash
# Runs a command (by default the subgroup-matrix tests, test/mixed) in a Debian
# trixie chroot with Mesa >= 26.1 from trixie-backports: its lavapipe has
# VK_KHR_cooperative_matrix, so Dawn offers shader-f16 and the subgroup
# matrices (8×8×8) on a CPU. Debian 12's Mesa lacks them and its libc is too
# old for that Mesa, hence the chroot. The host's node_modules run as they are.
#   bash scripts/sandbox.sh [command ...]     (as root)
# The root (WGSL_UNET_SANDBOX, default below) is built once and reused; all
# mounts live in a private mount namespace and vanish when the command ends.
set -euo pipefail

ROOT=$(realpath -m "${WGSL_UNET_SANDBOX:-/var/cache/wgsl-unet/sandbox-trixie}")
MARKER=$ROOT/.wgsl-unet-sandbox-ok   # written only after a complete install
PROJ=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PARENT=$(dirname "$PROJ")            # bound whole: tests read ../shared

if [ "$(id -u)" != 0 ]; then
  echo "sandbox: must run as root (debootstrap, chroot and mounts need it): sudo bash $0 $*" >&2
  exit 1
fi
[ "$PARENT" != / ] || { echo "sandbox: the project's parent folder is /; move the project into a folder" >&2; exit 1; }

# Re-run this script inside a private mount namespace; everything below runs
# there. The re-run is told by a first argument of its own, which no caller
# passes (an inherited variable could skip the namespace by mistake).
if [ "${1:-}" != --in-private-mount-namespace ]; then
  if [ ! -f "$MARKER" ] && ! command -v debootstrap >/dev/null; then
    echo "sandbox: installing debootstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  fi
  exec unshare --mount --propagation private bash "$PROJ/scripts/sandbox.sh" --in-private-mount-namespace "$@"
fi
shift

mount_basics() {
  mount -t proc proc "$ROOT/proc"
  mount --rbind /dev "$ROOT/dev"   # with /dev/shm and /dev/pts
}

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"; flock 9   # one build at a time
if [ ! -f "$MARKER" ]; then
  start=$SECONDS
  if [ -e "$ROOT" ] && [ ! -f "$ROOT.started" ] && [ -n "$(ls -A "$ROOT")" ]; then
    # Only a root this script began is removed: never a folder it did not make.
    echo "sandbox: $ROOT exists, is not empty and was not made here; choose another WGSL_UNET_SANDBOX" >&2; exit 1
  fi
  if [ -e "$ROOT" ]; then
    echo "sandbox: removing an unfinished root at $ROOT"
    if findmnt -rno TARGET | grep -qF "$ROOT/"; then
      echo "sandbox: $ROOT has mounts on it; unmount them first" >&2; exit 1
    fi
    rm -rf --one-file-system "$ROOT"
  fi
  touch "$ROOT.started"
  echo "sandbox: creating Debian trixie root at $ROOT (debootstrap)…"
  debootstrap --variant=minbase trixie "$ROOT" http://deb.debian.org/debian >"$ROOT.log" 2>&1 \
    || { tail -n 20 "$ROOT.log" >&2; echo "sandbox: debootstrap failed (log: $ROOT.log)" >&2; exit 1; }
  echo "sandbox: root made in $((SECONDS - start)) s; installing Mesa (trixie-backports) and Node.js…"
  echo "deb http://deb.debian.org/debian trixie-backports main" >"$ROOT/etc/apt/sources.list.d/backports.list"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  mount_basics
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive bash -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends -t trixie-backports mesa-vulkan-drivers libvulkan1 nodejs && apt-get clean' \
    >>"$ROOT.log" 2>&1 || { tail -n 20 "$ROOT.log" >&2; echo "sandbox: apt-get in the root failed (log: $ROOT.log)" >&2; exit 1; }
  mesa=$(chroot "$ROOT" dpkg-query -W -f='${Version}' mesa-vulkan-drivers)
  dpkg --compare-versions "$mesa" ge 26.1 || { echo "sandbox: got Mesa $mesa, need >= 26.1" >&2; exit 1; }
  echo "$mesa" >"$MARKER"
  echo "sandbox: ready in $((SECONDS - start)) s (Mesa $mesa, Node $(chroot "$ROOT" node --version))"
else
  mount_basics
fi
flock -u 9

mkdir -p "$ROOT$PARENT"
mount --rbind "$PARENT" "$ROOT$PARENT"
[ $# -gt 0 ] || set -- node node_modules/vitest/vitest.mjs run test/mixed
# A clean environment (the host's NODE_OPTIONS, VK_ICD_FILENAMES… do not fit
# the root), keeping WGSL_UNET_* and CI.
envs=(PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "TERM=${TERM:-dumb}" XDG_RUNTIME_DIR=/tmp
      "WGSL_UNET_REQUIRE_MIXED=${WGSL_UNET_REQUIRE_MIXED:-1}")
for v in $(compgen -e); do
  case $v in WGSL_UNET_SANDBOX*|WGSL_UNET_REQUIRE_MIXED) ;; WGSL_UNET_*|CI) envs+=("$v=${!v}") ;; esac
done
echo "sandbox: running in $ROOT: $*"
set +e
chroot "$ROOT" /usr/bin/env -i "${envs[@]}" bash -c 'cd "$0" && exec "$@"' "$PROJ" "$@"
status=$?
echo "sandbox: exit status $status"
exit $status

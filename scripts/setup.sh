#!/usr/bin/env bash
# Prepares a machine to run wgsl-unet: a WebGPU-capable Vulkan driver,
# Chromium for the browser test, and the npm packages. Safe to run again. On a
# machine without a GPU driver it installs Mesa's software Vulkan driver
# (lavapipe); Debian 12 needs Mesa from bookworm-backports, because its own
# Mesa 22.3 is too old for Dawn.
set -euo pipefail
cd "$(dirname "$0")/.."

have_vulkan_driver() {
  ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/nvidia/share/vulkan/icd.d/*.json 2>/dev/null | grep -q . \
    && ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'
}

mesa_too_old() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" lt 23
}

if [ "$(uname -s)" = Linux ] && { ! have_vulkan_driver || mesa_too_old; }; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: no Vulkan driver found and no apt-get: install your GPU's Vulkan driver, or Mesa >= 23 (mesa-vulkan-drivers) and libvulkan1" >&2
    exit 1
  fi
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  . /etc/os-release
  target=()
  if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $sudo tee /etc/apt/sources.list.d/wgsl-unet-backports.list >/dev/null
    target=(-t bookworm-backports)
  fi
  echo "setup: installing the software Vulkan driver (mesa-vulkan-drivers, libvulkan1)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${target[@]}" mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# The browser test (test/browser) drives Debian's Chromium headless through
# playwright-core, which downloads no browser of its own.
if [ "$(uname -s)" = Linux ] && [ ! -x /usr/bin/chromium ] && [ -z "${WGSL_UNET_CHROMIUM:-}" ]; then
  if command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "setup: installing Chromium for the browser test (chromium)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: warning: /usr/bin/chromium is missing and there is no apt-get; the browser test needs Chromium (or WGSL_UNET_CHROMIUM set to a Chromium binary)" >&2
  fi
fi

# The Keras tests read exported HDF5 files with h5py, as Keras 2 does, where a python3 has it.
if [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null && ! /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing h5py for the Keras HDF5 tests (python3-h5py)"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-h5py >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-h5py >/dev/null; } \
    || echo "setup: warning: python3-h5py could not be installed; the h5py checks of the Keras tests will be skipped" >&2
fi

if [ ! -d node_modules/webgpu ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  # onnxruntime-node (a test dependency) would fetch its CUDA libraries from
  # nuget.org on Linux x64; the tests run it on the CPU, which its npm package has.
  ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL:-skip} npm ci --no-audit --no-fund --loglevel=error
fi

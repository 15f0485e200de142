#!/usr/bin/env bash
# Adds libglvnd's libraries to the pack for the GPU machine (.device/, made by
# ../shared/device/pack.sh), whose run.sh unpacks every .deb there. The NVIDIA
# driver's Vulkan ICD (libGLX_nvidia.so.0) needs libGLX and libGLdispatch; on
# a machine without them Dawn finds no adapter. It also packs the test runner
# (vitest, @vitest, vite: about 1 MiB), which pack.sh leaves out and
# bench/gpu-suite.sh unpacks there. Usage, from the project's root after
# pack.sh: bash bench/device-gl.sh
set -euo pipefail
[ -d .device ] || { echo "no .device/ here: run ../shared/device/pack.sh first" >&2; exit 1; }
tar -cJf .device/test-runner.tar.xz node_modules/vitest node_modules/@vitest node_modules/vite
cd .device
apt-get download libglvnd0 libglx0 libgl1 libegl1 libgles2 libopengl0 2>&1 | grep -v '^W: ' || true
ls -1 ./*.deb ./test-runner.tar.xz

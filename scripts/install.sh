#!/usr/bin/env bash
# Install recon4d with every extra into .venv/ at the repository root.
#   - Debian libraries that open3d needs (installed when run as root, else the apt line is printed);
#   - torch/torchvision pinned by constraints.txt (the builds on the project machines' disk);
#   - the package itself in editable mode with all extras and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

# open3d (libusb, libgomp; EGL/GL and Vulkan + Mesa's software drivers for headless rendering)
# and chromium for the HTML report test.
DEBIAN_PACKAGES=(libusb-1.0-0 libgomp1 libegl1 libgl1 libgl1-mesa-dri libvulkan1 mesa-vulkan-drivers chromium)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[install] apt-get install ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "[install] open3d needs Debian packages that are missing; as root run:"
        echo "    apt-get update && apt-get install -y ${missing[*]}"
    fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt)
echo "[install] torch + torchvision (first run: a few minutes, torch is large)"
"${PIP[@]}" torch torchvision "setuptools>=70" wheel
# sam2 ships as an sdist whose build imports torch: build it against the torch just installed
# (no isolated build env, which would fetch a second torch) and without its optional CUDA op.
echo "[install] sam2 (SAM2_BUILD_CUDA=0)"
SAM2_BUILD_CUDA=0 "${PIP[@]}" --no-build-isolation "sam2==1.1.0"
# deepspeed is an sdist too (its build imports torch): same treatment; its CPU Adam op is built on first use.
echo "[install] deepspeed"
"${PIP[@]}" --no-build-isolation "deepspeed==0.19.8"
echo "[install] pip install -e '.[all,dev]'"
"${PIP[@]}" -e '.[all,dev]'
# numba compiles each kernel on first use (20-35 s for the first `recon4d process`); compile
# them now into numba's cache so that the first run is as fast as the next ones.
echo "[install] compiling numba kernels (python -m recon4d.warmup)"
.venv/bin/python -m recon4d.warmup
echo "[install] done: $(.venv/bin/recon4d --version)"

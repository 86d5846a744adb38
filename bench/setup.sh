#!/usr/bin/env bash
# Installs what the benchmark peers need, from Debian's packages, when it is missing:
#   containerd (ctr)   the reference pull path, run as a private daemon by bench/peers
#   skopeo + umoci     copy to an OCI layout, then unpack it
#   time               GNU time: peak RSS of peer processes
# `npm run bench` runs this only when a tool is missing and it runs as root; run it by
# hand otherwise (sudo bash bench/setup.sh). Exits non-zero when it cannot install.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
for tool in containerd:containerd ctr:containerd skopeo:skopeo umoci:umoci /usr/bin/time:time; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ "${#need[@]}" -eq 0 ]; then
  echo "bench setup: containerd, skopeo, umoci and time are installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bench setup: missing ${need[*]}; run as root: sudo bash bench/setup.sh" >&2
  exit 1
fi
# One package may be named twice (containerd provides both binaries).
mapfile -t packages < <(printf '%s\n' "${need[@]}" | sort -u)
echo "bench setup: installing ${packages[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"

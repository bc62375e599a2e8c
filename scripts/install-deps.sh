#!/usr/bin/env bash
# Installs every Debian 12 package docpipe needs to build, test and run.
# Idempotent: packages already installed are skipped, and apt is not touched at all
# when nothing is missing. Run as root (or with sudo available).
set -euo pipefail

# One line on purpose: libtesseract-dev depends on the virtual libcurl4-dev, and only
# when libcurl4-openssl-dev is in the same transaction does apt pick the OpenSSL flavour
# (see ../shared/notes/deps.md, gotcha 3). python3-cryptography: the fake Google and
# NCB servers in tests/fakes verify RS256 token requests with it. chromium: the review UI's
# browser tests (tests/ui) drive it headless; their npm package comes from the machine's npm.
# systemd: systemd-analyze checks deploy/systemd (ctest ops.systemd_units). gcovr: the line
# coverage gate (`make coverage`, scripts/run-gates.sh). clang for `make fuzz` is installed
# by scripts/run-fuzz.sh itself, as no other target needs it.
# dovecot-imapd: the IMAP server source.imap is tested against (plugins/mail/imap_test.cpp);
# the tests start their own instance (own config, ports and base_dir), not the system service.
# prometheus: its promtool checks deploy/prometheus/alerts.yml and runs the rules' unit tests
# (ctest ops.alert_rules, which skipped without it); the tests do not use its service.
PACKAGES=(
  cmake g++ make pkg-config git
  libboost-dev libboost-filesystem-dev libtbb-dev libyaml-cpp-dev
  libtesseract-dev libleptonica-dev libjpeg-dev libpng-dev libtiff-dev libheif-dev libqpdf-dev libwebp-dev tesseract-ocr-eng tesseract-ocr-msa
  libcurl4-openssl-dev nlohmann-json3-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhiredis-dev redis-server libsqlite3-dev libjemalloc2
  libgmime-3.0-dev libarchive-dev zlib1g-dev libbz2-dev libpoppler-cpp-dev libcpp-httplib-dev libssl-dev libsystemd-dev
  libcli11-dev imagemagick img2pdf python3 curl
  python3-cryptography
  systemd
  gcovr
  chromium
  dovecot-imapd
  prometheus
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Install the whole list (not only the missing ones) so apt resolves the curl flavour
# the same way on every machine; already-installed packages cost nothing.
$SUDO apt-get install -y -qq "${PACKAGES[@]}"
echo "install-deps: done"

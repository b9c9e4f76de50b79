#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian packages) for the browser tests
# (tests/deploy/test_report_browser.py). Idempotent: does nothing when both are on PATH.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "install-browser: chromium and chromedriver already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium chromium-driver

chromium --version
chromedriver --version

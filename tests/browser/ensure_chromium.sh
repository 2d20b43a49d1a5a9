#!/bin/sh
# Make sure a Chromium is on this machine for the browser test (tests/browser/test_notebooks_in_browser.py).
#
# The test drives Chromium with the `playwright` Python package, pointing it at the Debian
# `chromium` package (no browser download by playwright). When `chromium` is missing this script
# installs it with apt-get (as root, or through passwordless sudo). It never fails the caller: if
# Chromium cannot be installed it says why on stderr and exits 0, and the browser test then skips
# with the same reason. Set LSTSD_EDU_CHROMIUM to use another Chromium binary.
set -u

say() { echo "ensure_chromium: $*" >&2; }

if [ -n "${LSTSD_EDU_CHROMIUM:-}" ]; then
    [ -x "${LSTSD_EDU_CHROMIUM}" ] || say "LSTSD_EDU_CHROMIUM=${LSTSD_EDU_CHROMIUM} is not an executable file"
    exit 0
fi
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "chromium is not installed and apt-get is not available; the browser test will be skipped"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    AS_ROOT=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    AS_ROOT="sudo -n"
else
    say "chromium is not installed and this user cannot install packages (not root, no sudo);"
    say "install it with 'apt-get install chromium' — the browser test will be skipped"
    exit 0
fi

# Wait for another apt-get (another `make test`, say) rather than failing on its lock.
APT="$AS_ROOT env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q -y"
say "installing Debian's chromium with apt-get (once per machine)"
if ! $APT install --no-install-recommends chromium >/dev/null 2>&1; then
    # The package lists may be missing or stale: refresh them and try again.
    $APT update >/dev/null 2>&1
    if ! $APT install --no-install-recommends chromium >&2; then
        say "apt-get could not install chromium; the browser test will be skipped"
        exit 0
    fi
fi
say "installed $(chromium --version 2>/dev/null || echo chromium)"
exit 0

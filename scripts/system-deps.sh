#!/usr/bin/env bash
# Debian packages that the tests and the demo need: Chromium (browser tests), the JDK's Java sources (a real
# corpus to mine) and PostgreSQL (the shared-store tests start a throwaway server with its initdb/pg_ctl).
# Installs them when run as root with apt; otherwise says what is missing.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/lib/jvm/openjdk-17/lib/src.zip ] || missing+=(openjdk-17-source)
# Debian keeps initdb off PATH, under /usr/lib/postgresql/<version>/bin (the tests look there too).
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "note: missing Debian packages: ${missing[*]}" >&2
    echo "      install them with: sudo apt-get install ${missing[*]}" >&2
    echo "      (until then the tests that need them are skipped, and the demo atlas has no JDK corpus)" >&2
fi

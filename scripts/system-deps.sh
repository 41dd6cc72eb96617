#!/usr/bin/env bash
# Operating-system packages the test suite needs. Installed with apt when
# missing and running as root; otherwise say what is missing and go on (the
# tests that need a missing piece say so loudly).
set -euo pipefail

need=()
have_pg_server() {
  local bindir
  bindir=$(pg_config --bindir 2>/dev/null || true)
  [[ -n "$bindir" && -x "$bindir/initdb" ]] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
have_pg_server || need+=(postgresql-15 postgresql-client-15)
# pdftotext reads the PDFs (statements, vouchers, certificates) in the tests
command -v pdftotext >/dev/null || need+=(poppler-utils)
# ... and needs the Adobe-GB1 CMaps to read the Chinese text (CID font STSong-Light)
[[ -d /usr/share/poppler/cMap/Adobe-GB1 ]] || need+=(poppler-data)
# the telephone line's recorded prompts (issue 6)
command -v espeak-ng >/dev/null || need+=(espeak-ng)

# browser tests of the web channels (issue 5): Debian's Chromium and a CJK font
command -v chromium >/dev/null || need+=(chromium)
compgen -G "/usr/share/fonts/truetype/wqy/wqy-zenhei.tt*" >/dev/null || need+=(fonts-wqy-zenhei)

# issue 17: the failover test (pg_auto_failover) and the restore drill (pgBackRest)
{ command -v pg_autoctl && compgen -G "/usr/lib/postgresql/*/lib/pgautofailover.so"; } >/dev/null || need+=(postgresql-15-auto-failover)
command -v pgbackrest >/dev/null || need+=(pgbackrest)

if ((${#need[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "system-deps: missing ${need[*]}; run as root or install them (tests needing them will skip loudly)" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

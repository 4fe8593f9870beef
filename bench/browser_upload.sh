#!/usr/bin/env bash
# Browser upload throughput (issue 16 item 3, decision 0031): a file sent from the dashboard's
# "Send a file" page in headless Chromium — read, encrypted with WebCrypto (AES-256-GCM) and
# hashed in the page, uploaded chunk by chunk through the API — next to `mftctl send` of the
# same file to the same recipient on the same local `mftplus dev` cloud (release build): the
# same stream format, the same routes, native code.
#
# Rounds alternate which goes first. The browser's time runs from the click on "Encrypt and
# send" to the page saying it sent the file (the transfer is complete on the server); mftctl's is
# the whole command. Each round's transfer is received once with `mftctl receive` and compared
# with the original (cmp), outside the timing. Chromium is driven over WebDriver by a few lines
# of Python (chromedriver's JSON protocol, no library).
#
# The load average is printed before and after: run it when the machine is otherwise quiet.
#
# Usage: bench/browser_upload.sh              (256 MiB, 3 rounds; medians and the ratio reported)
#        SIZE_MIB=1024 ROUNDS=5 bench/browser_upload.sh
#        BENCH_DIR=/some/disk SKIP_BUILD=1 bench/browser_upload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-256}"
ROUNDS="${ROUNDS:-3}"
PASSWORD="a-bench-password-that-is-long-enough"

# shellcheck source=bench/lib/dev_cloud.sh
. bench/lib/dev_cloud.sh
bench_need chromium:chromium chromedriver:chromium-driver python3:python3
bench_build
bench_workdir upload-bench
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the cloud, the sender (a dashboard user) and the recipient (a key pair) --------------------
bench_start_cloud < /dev/null
as() { local home="$1"; shift; HOME="$home" MFTPLUS_SERVER="$server" "$@"; }
mkdir -p "$work/admin" "$work/alice" "$work/bob"
for who in alice bob; do
  printf '%s' "$PASSWORD" | as "$work/admin" env MFTPLUS_API_KEY="$admin_key" "$MFTCTL" users create \
    --email "$who@bench.test" --role user --password-stdin >/dev/null
  printf '%s' "$PASSWORD" | as "$work/$who" "$MFTCTL" login --email "$who@bench.test" --password-stdin \
    >/dev/null 2>&1
done

src="$work/source.bin"
echo "writing ${SIZE_MIB} MiB of random data"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$src"

# --- chromedriver and the page -----------------------------------------------------------------
bench_start_chromedriver
cat > "$work/browser.py" <<'PY'
import sys, time
from webdriver import Browser

driver, server, source, password, profile = sys.argv[1:6]
browser = Browser(driver, profile)
script, type_into = browser.script, browser.type_into
try:
    browser.go(server + "/login?next=/transfers/new")
    type_into("#email", "alice@bench.test")
    type_into("#password", password)
    browser.click("#sign-in")
    while script("return document.getElementById('upload') ? 1 : 0") != 1:
        time.sleep(0.05)
    type_into("#file", source)
    type_into("#recipients", "bob@bench.test")
    started = time.time()
    browser.click("#send")
    while True:
        state = script("return document.body.dataset.upload || ''")
        assert state != "failed", script("return document.getElementById('upload-error').textContent")
        if state == "sent":
            break
        time.sleep(0.02)
    finished = time.time()
    sent = script("return document.getElementById('sent-transfer').getAttribute('href')")
    print(f"{started:.6f} {finished:.6f} {sent.rsplit('/', 1)[1]}")
finally:
    browser.close()
PY

check() {
  local id="$1" dir
  dir="$(mktemp -d "$work/received.XXXX")"
  as "$work/bob" "$MFTCTL" receive "$id" --dir "$dir" >/dev/null 2>&1
  cmp -s "$src" "$dir/source.bin" || { echo "transfer $id differs from the original"; exit 1; }
  rm -rf "$dir"
}

browser_round() {
  rm -rf "$work/profile"
  read -r t0 t1 id < <(PYTHONPATH="$PWD/bench/lib" python3 "$work/browser.py" "http://127.0.0.1:$driver_port" "$server" "$src" \
    "$PASSWORD" "$work/profile")
  check "$id"
  echo "browser $(python3 -c "print(f'{$SIZE_MIB / ($t1 - $t0):.1f}')")" >> "$work/results.txt"
}

mftctl_round() {
  t0=$(now)
  id="$(as "$work/alice" "$MFTCTL" send "$src" bob@bench.test 2>/dev/null | head -1)"
  t1=$(now)
  check "$id"
  echo "mftctl $(python3 -c "print(f'{$SIZE_MIB / ($t1 - $t0):.1f}')")" >> "$work/results.txt"
}

bench_alternate browser_round mftctl_round
python3 bench/lib/ratio.py "$work/results.txt" "$SIZE_MIB" "$ROUNDS" upload \
  browser "Chromium through the Send a file page (read + encrypt + hash + upload)" \
  mftctl "mftctl send of the same file"

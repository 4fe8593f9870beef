#!/usr/bin/env bash
# Share-link download throughput (issue 16, decision 0023): a file sent with
# `mftctl send --link` through a local `mftplus dev` cloud (release build), downloaded in
# headless Chromium through the link's page — fetched, decrypted with WebCrypto, checked against
# the manifest and streamed to disk by the page's service worker — next to `curl` fetching the
# same ciphertext from the same cloud (the link's public chunk route, with an open's ticket, one
# connection, chunk after chunk, written to files on the same disk).
#
# Rounds alternate which of the two goes first. Each timed download ends with an fsync of what
# it wrote (`sync FILE`), so both are timed to the same durability. The browser's time runs from
# the click on Download to the file being complete under its name (Chromium renames it from
# `.crdownload` when the stream ends); its file is compared with the original (cmp). Chromium is
# driven over WebDriver by a few lines of Python (chromedriver's JSON protocol, no library).
#
# The load average is printed before and after: run it when the machine is otherwise quiet.
#
# Usage: bench/link_download.sh              (1 GiB, 3 rounds; medians and the ratio reported)
#        SIZE_MIB=200 ROUNDS=5 bench/link_download.sh
#        BENCH_DIR=/some/disk SKIP_BUILD=1 bench/link_download.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-1024}"
ROUNDS="${ROUNDS:-3}"

# shellcheck source=bench/lib/dev_cloud.sh
. bench/lib/dev_cloud.sh
bench_need chromium:chromium chromedriver:chromium-driver curl:curl python3:python3
bench_build
bench_workdir link-bench
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the cloud and the sender -------------------------------------------------------------------
bench_start_cloud <<YAML
  per_address_link_lookups_per_minute: 100000
YAML
mkdir -p "$work/home"

src="$work/source.bin"
echo "writing ${SIZE_MIB} MiB of random data and sending it with --link"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$src"
out="$(HOME="$work/home" MFTPLUS_SERVER="$server" MFTPLUS_API_KEY="$admin_key" "$MFTCTL" send "$src" --link 2>"$work/send.err")" \
  || { cat "$work/send.err"; exit 1; }
url="$(printf '%s\n' "$out" | sed -n 2p)"
token="$(printf '%s' "${url%%#*}" | sed 's#.*/s/##')"
chunks="$(curl -sf "$server/api/v1/shared/$token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunk_count"])')"
echo "link ready: $chunks chunks"

# --- chromedriver and the browser --------------------------------------------------------------
bench_start_chromedriver
mkdir -p "$work/browser" "$work/curl"
cat > "$work/browser.py" <<'PY'
import os, sys, time
from webdriver import Browser

driver, url, downloads, name, profile = sys.argv[1:6]
browser = Browser(driver, profile, prefs={
    "download.default_directory": downloads, "download.prompt_for_download": False,
    "safebrowsing.enabled": False}, timeout=600)
script = browser.script
try:
    browser.go(url)
    while script("return document.body.dataset.state") == "loading":
        time.sleep(0.05)
    assert script("return document.body.dataset.state") == "ready", "the page did not get ready"
    target = os.path.join(downloads, name)
    started = time.time()
    script("document.getElementById('download').click()")
    while True:
        state = script("return document.body.dataset.state")
        assert state != "failed", script("return document.getElementById('link-error').textContent")
        partial = [f for f in os.listdir(downloads) if f.endswith(".crdownload")]
        if state == "done" and os.path.exists(target) and not partial:
            break
        time.sleep(0.02)
    os.sync()
    print(f"{started:.6f} {time.time():.6f}")
finally:
    browser.close()
PY

browser_round() {
  rm -rf "$work/browser/"* "$work/profile"
  read -r t0 t1 < <(PYTHONPATH="$PWD/bench/lib" python3 "$work/browser.py" "http://127.0.0.1:$driver_port" "$url" "$work/browser" \
    source.bin "$work/profile")
  cmp -s "$src" "$work/browser/source.bin" || { echo "the browser's file differs"; exit 1; }
  echo "browser $(python3 -c "print(f'{$SIZE_MIB / ($t1 - $t0):.1f}')")" >> "$work/results.txt"
}

curl_round() {
  rm -rf "$work/curl/"*
  t0=$(now)
  ticket="$(curl -sf -X POST "$server/api/v1/shared/$token/open" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ticket"])')"
  curl -sf -H "x-link-ticket: $ticket" "$server/api/v1/shared/$token/chunks/[0-$((chunks - 1))]" \
    -o "$work/curl/chunk_#1"
  sync "$work/curl/"chunk_*
  t1=$(now)
  echo "curl $(python3 -c "print(f'{$SIZE_MIB / ($t1 - $t0):.1f}')")" >> "$work/results.txt"
}

bench_alternate browser_round curl_round
python3 bench/lib/ratio.py "$work/results.txt" "$SIZE_MIB" "$ROUNDS" download \
  browser "Chromium through the link's page (decrypt + verify + write)" \
  curl "curl of the same ciphertext (write only)"

#!/bin/bash
# The checks packaging/test-deb.sh runs inside a freshly booted minimal Debian (systemd as
# PID 1, no network): install the packages from /debs, then check what they promise
# (docs/packages.md), start the cloud, the hub and the agent through their units, upgrade,
# remove and purge. Prints "PASS: …" per check and exits non-zero at the first failure.
# Secrets made here (the admin password, the deploy key, the retrieval password) are never
# printed.
set -euo pipefail
export LC_ALL=C.UTF-8 SYSTEMD_PAGER=
passed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # WHAT ACTUAL WANTED
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
  pass "$1"
}
# Retries COMMAND… for up to SECONDS; quiet.
wait_for() { # SECONDS COMMAND…
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}
random() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
as_mftplus() { # run a command as the services do: the service user, cloud.env read by systemd
  systemd-run --quiet --wait --pipe --collect --uid=mftplus --gid=mftplus \
    -p EnvironmentFile=/etc/mftplus/cloud.env "$@"
}
owner_mode() { stat -c '%U:%G %a' "$1"; }
cloud=http://127.0.0.1:8080

install_packages() {
  local agent
  agent=$(ls /debs/mftplus-agent_*.deb 2>/dev/null || true)
  dpkg -i /debs/mftplus_*.deb /debs/mftctl_*.deb $agent >/tmp/dpkg.log 2>&1 \
    || { cat /tmp/dpkg.log >&2; fail "dpkg -i"; }
  pass "dpkg -i installs the packages, their Depends satisfied by a minimal Debian"
  [ -n "$agent" ] && has_agent=1 || has_agent=0
}

check_layout() {
  local entry
  entry=$(getent passwd mftplus) || fail "no mftplus user"
  IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
  expect "mftplus user's home" "$home" /var/lib/mftplus
  expect "mftplus user's shell" "$shell" /usr/sbin/nologin
  [ "$uid" -lt 1000 ] || fail "mftplus is not a system user (uid $uid)"
  pass "mftplus is a system user"
  expect "/etc/mftplus" "$(owner_mode /etc/mftplus)" "root:mftplus 750"
  expect "/var/lib/mftplus" "$(owner_mode /var/lib/mftplus)" "mftplus:mftplus 700"
  expect "server.yaml" "$(owner_mode /etc/mftplus/server.yaml)" "root:mftplus 640"
  expect "cloud.env" "$(owner_mode /etc/mftplus/cloud.env)" "root:root 600"
  expect "hub.env" "$(owner_mode /etc/mftplus/hub.env)" "root:root 600"
  expect "jwt/" "$(owner_mode /etc/mftplus/jwt)" "mftplus:mftplus 700"
  expect "jwt/secret" "$(owner_mode /etc/mftplus/jwt/secret)" "mftplus:mftplus 600"
  [ "$(stat -c %s /etc/mftplus/jwt/secret)" -ge 32 ] || fail "jwt-secret is too short"
  pass "jwt-secret is long enough"
  local conffiles
  conffiles=$(dpkg-query -W -f='${Conffiles}\n' mftplus)
  for file in server.yaml cloud.env hub.env; do
    grep -q "/etc/mftplus/$file " <<<"$conffiles" || fail "$file is not a conffile"
  done
  pass "server.yaml, cloud.env and hub.env are conffiles"
  for unit in mftplus-cloud mftplus-hub; do
    expect "$unit is not enabled" "$(systemctl is-enabled $unit || true)" disabled
    expect "$unit is not started" "$(systemctl is-active $unit || true)" inactive
  done
}

check_cli() {
  expect "mftctl --version" "$(mftctl --version)" "mftctl $(dpkg-query -W -f='${Version}' mftctl | cut -d- -f1)"
  mftplus --version | grep -q '^mftplus ' || fail "mftplus --version"
  pass "mftplus --version"
  for file in /usr/share/bash-completion/completions/mftctl \
    /usr/share/zsh/vendor-completions/_mftctl /usr/share/fish/vendor_completions.d/mftctl.fish; do
    [ -s "$file" ] || fail "no $file"
  done
  pass "bash, zsh and fish completions are installed"
  bash -c '. /usr/share/bash-completion/completions/mftctl && complete -p mftctl' | grep -q _mftctl \
    || fail "bash does not load the completion"
  mftctl completions bash | cmp -s - /usr/share/bash-completion/completions/mftctl \
    || fail "the installed bash completion differs from mftctl completions bash"
  pass "bash loads the completion; it is what mftctl completions bash prints"
  local page
  for page in mftctl mftctl-send mftctl-hubs-deploy-keys-create mftplus; do
    man -P cat "$page" 2>/tmp/man.err | grep -q SYNOPSIS || fail "man $page"
    [ ! -s /tmp/man.err ] || { cat /tmp/man.err >&2; fail "man $page warns"; }
  done
  pass "man mftctl, mftctl-send, mftctl-hubs-deploy-keys-create and mftplus render"
}

start_cloud() {
  as_mftplus mftplus cloud --check-config --config /etc/mftplus/server.yaml >/dev/null \
    || fail "the shipped configuration does not pass --check-config"
  pass "the shipped server.yaml and cloud.env pass --check-config"
  admin_password=$(random)
  printf '%s\n' "$admin_password" | as_mftplus mftplus cloud init --config /etc/mftplus/server.yaml \
    --admin-email admin@example.com >/dev/null || fail "mftplus cloud init"
  expect "cloud.db written by the service user" "$(stat -c %U /var/lib/mftplus/cloud.db)" mftplus
  systemctl start mftplus-cloud
  wait_for 60 mftplus healthcheck --url "$cloud/api/v1/health" \
    || fail "the cloud does not answer /api/v1/health"
  pass "systemctl start mftplus-cloud: /api/v1/health answers 200"
  local pid
  pid=$(systemctl show -p MainPID --value mftplus-cloud)
  expect "the cloud runs as mftplus" "$(stat -c %U /proc/$pid)" mftplus
  expect "/etc/mftplus after a start" "$(owner_mode /etc/mftplus)" "root:mftplus 750"
  printf '%s\n' "$admin_password" | mftctl --server "$cloud" login --email admin@example.com \
    --password-stdin >/tmp/login.log 2>&1 || { cat /tmp/login.log >&2; fail "mftctl login"; }
  pass "mftctl signs in to the packaged cloud"
  as_mftplus mftplus cloud rotate-jwt --config /etc/mftplus/server.yaml >/tmp/rotate.log 2>&1 \
    || { cat /tmp/rotate.log >&2; fail "mftplus cloud rotate-jwt"; }
  expect "jwt-previous-secret after a rotation" \
    "$(owner_mode /etc/mftplus/jwt/previous-secret)" "mftplus:mftplus 600"
  mftctl --server "$cloud" status >/tmp/status.log 2>&1 \
    || { cat /tmp/status.log >&2; fail "the session ended with the JWT rotation"; }
  pass "mftplus cloud rotate-jwt: the signed-in session goes on"
}

start_hub() {
  local key
  key=$(mftctl --server "$cloud" hubs deploy-keys create --label deb-test 2>/dev/null \
    | awk '$1 == "key" { print $2 }')
  [ -n "$key" ] || fail "no deploy key"
  install -o mftplus -g mftplus -m 0600 /dev/null /etc/mftplus/hub-registration-key
  printf '%s\n' "$key" >/etc/mftplus/hub-registration-key
  printf 'CLOUD_API_URL=%s/api\nHUB_REGISTRATION_KEY_FILE=%s\nHUB_LISTEN_ADDR=127.0.0.1\n' \
    "$cloud" /etc/mftplus/hub-registration-key >>/etc/mftplus/hub.env
  systemctl start mftplus-hub
  wait_for 60 mftplus healthcheck --url http://127.0.0.1:3002/health \
    || fail "the hub does not answer /health"
  pass "systemctl start mftplus-hub: /health answers 200"
  expect "hub data directory" "$(owner_mode /var/lib/mftplus/hub)" "mftplus:mftplus 700"
  wait_for 30 sh -c "mftctl --server $cloud --json hubs list | grep -q deb-test" \
    || fail "the hub did not register with the cloud"
  pass "the hub registered with the cloud through its key file"
}

start_agent() {
  [ "$has_agent" = 1 ] || { echo "note: no mftplus-agent package to check" >&2; return 0; }
  expect "mftplus-agent is not enabled" "$(systemctl is-enabled mftplus-agent || true)" disabled
  local password
  password=$(random)-$(random)
  printf '%s\n' "$password" | mftctl --server "$cloud" customers create --name "Deb Test" \
    --email it@example.com --id deb-test --retrieval-password-stdin >/dev/null 2>&1 \
    || fail "mftctl customers create"
  printf '%s\n' "$password" | mftplus-agent --config /etc/mftplus/agent.yaml enroll \
    --server http://127.0.0.1:3002 --customer deb-test --password-stdin >/dev/null \
    || fail "mftplus-agent enroll through the hub"
  systemctl start mftplus-agent || fail "systemctl start mftplus-agent (Type=notify)"
  pass "the agent enrolled through the hub and started under its unit"
  wait_for 60 sh -c "mftctl --server $cloud --json hosts list | grep -q deb-test" \
    || fail "the agent's host is not listed"
  pass "the agent's host reports to the cloud"
}

upgrade_remove_purge() {
  dpkg -i /debs/mftplus_*.deb >/dev/null 2>&1 || fail "reinstalling mftplus"
  wait_for 60 mftplus healthcheck --url "$cloud/api/v1/health" || fail "no cloud after an upgrade"
  expect "an upgrade keeps the running cloud running" "$(systemctl is-active mftplus-cloud)" active
  if [ "$has_agent" = 1 ]; then systemctl stop mftplus-agent; fi
  dpkg -r mftplus >/dev/null 2>&1 || fail "dpkg -r mftplus"
  expect "dpkg -r stops the cloud" "$(systemctl is-active mftplus-cloud || true)" inactive
  [ ! -e /usr/bin/mftplus ] || fail "/usr/bin/mftplus is still there"
  [ -s /var/lib/mftplus/cloud.db ] && [ -d /var/lib/mftplus/hub ] || fail "dpkg -r removed data"
  [ -e /etc/mftplus/server.yaml ] || fail "dpkg -r removed the configuration"
  getent passwd mftplus >/dev/null || fail "dpkg -r removed the user"
  pass "dpkg -r keeps /var/lib/mftplus, /etc/mftplus and the user"
  dpkg -P mftplus >/dev/null 2>&1 || fail "dpkg -P mftplus"
  [ ! -e /etc/mftplus/server.yaml ] && [ ! -e /etc/mftplus/jwt/secret ] \
    || fail "purge left the configuration"
  [ -s /var/lib/mftplus/cloud.db ] || fail "purge removed the data"
  [ -z "$(dpkg-statoverride --list '*mftplus*')" ] || fail "purge left statoverrides"
  pass "dpkg -P removes the configuration and keeps the data"
}

install_packages
check_layout
check_cli
start_cloud
start_hub
start_agent
upgrade_remove_purge
echo "deb-test: all $passed checks passed"

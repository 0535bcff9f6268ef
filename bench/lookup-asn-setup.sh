#!/usr/bin/env bash
# Fetches the full real data sets that bench/lookup-asn.sh measures, into bench/out/lookup
# (git-ignored), with `npm pack` from the npm registry, and checks their sha256. The tests never
# need these files.
#   @ip-location-db/asn                         CC BY 4.0 (RouteViews, NRO, DB-IP): IP → ASN CSVs
#   @ip-location-db/geo-whois-asn-country-mmdb  CC0 1.0 + NRO CC BY 4.0: IP → country MMDB
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out/lookup
mkdir -p "$out"

fetch() {
    local pkg=$1 sha=$2 file=$3 dir=$4
    if [ ! -f "$out/$file" ]; then
        echo "==> npm pack $pkg"
        (cd "$out" && npm pack --silent "$pkg" >/dev/null)
    fi
    echo "$sha  $out/$file" | sha256sum -c --quiet -
    if [ ! -d "$out/$dir" ]; then
        mkdir -p "$out/$dir"
        tar -xzf "$out/$file" -C "$out/$dir" --strip-components=1
    fi
}

fetch @ip-location-db/asn@2.3.2026061719 \
    b9425daf2f011c28f8586685d4f89166e77627e2c15fd93c6262c3e2dead6153 \
    ip-location-db-asn-2.3.2026061719.tgz asn
fetch @ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719 \
    91757a1b06cdcd1955f292e4c4cfc54e091204f998e159a3187f7a2ef3724be0 \
    ip-location-db-geo-whois-asn-country-mmdb-2.3.2026061719.tgz country
ls -la "$out/asn" "$out/country"

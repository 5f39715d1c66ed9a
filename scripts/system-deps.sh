#!/usr/bin/env bash
# System packages the test suite needs, installed with apt only when missing.
# - chromium: the browser tests drive Debian's chromium with Playwright (never a downloaded one).
# - node + npm: the official AsyncAPI parser checks docs/events/asyncapi.json (tools/asyncapi,
#   its npm packages pinned by package-lock.json, installed by `npm ci` when missing or when the lock changed); and the
#   tarball of Scalar's @scalar/api-reference pinned in tools/scalar (`npm pack`: the one package,
#   not its build tree), which a test checks against the lock's integrity and the bundle /docs serves.
# - prometheus (for its promtool): checks deploy/observability's scrape configs and alert rules
#   and runs the alerts' unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
npm_tools() {
  # installed again whenever package-lock.json differs from the one last installed
  if ! cmp -s tools/asyncapi/package-lock.json tools/asyncapi/node_modules/.installed-lock.json; then
    echo "system-deps: installing tools/asyncapi (npm ci)"
    npm ci --prefix tools/asyncapi --silent --no-audit --no-fund
    cp tools/asyncapi/package-lock.json tools/asyncapi/node_modules/.installed-lock.json
  fi
  local version
  version=$(sed -n 's/.*"@scalar\/api-reference": "\(.*\)".*/\1/p' tools/scalar/package.json)
  if [ ! -f "tools/scalar/pack/scalar-api-reference-$version.tgz" ]; then
    echo "system-deps: fetching @scalar/api-reference $version (npm pack)"
    mkdir -p tools/scalar/pack
    npm pack "@scalar/api-reference@$version" --pack-destination tools/scalar/pack --silent >/dev/null
  fi
}
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -eq 0 ]; then
  npm_tools
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${missing[*]} and no apt-get to install them" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_tools

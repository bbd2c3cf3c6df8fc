#!/usr/bin/env bash
# Downloads the Debian 12 (amd64) packages of scripts/studio_device_packages.txt into a folder that travels to
# the GPU machine (default: .studio-debs/ at the repository root; keep it out of git with
# `echo /.studio-debs/ >> .git/info/exclude`). Runs on any Debian machine whose apt reaches Debian's archive,
# whatever its own architecture: the package lists go to a private folder and apt is told amd64. Nothing
# is installed here.
#
#   scripts/fetch_studio_debs.sh [DEST]
#
# Every package is slimmed (documentation, man pages and demo data dropped, then repacked with xz) because
# what travels is limited to 64 MiB with the repository; DEST/MANIFEST lists name, version, size and sha256.
# STUDIO_DEBS_SLIM=0 keeps the packages exactly as Debian ships them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$(mkdir -p "${1:-$ROOT/.studio-debs}" && cd "${1:-$ROOT/.studio-debs}" && pwd)"
LIST="$ROOT/scripts/studio_device_packages.txt"
STATE="$(mktemp -d /tmp/studio-apt.XXXXXX)"
trap 'rm -rf "$STATE"' EXIT
mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial"
: >"$STATE/status"
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$STATE/lists"
          -oDir::State::status="$STATE/status" -oDir::Cache="$STATE/cache" -oDebug::NoLocking=1 -oAPT::Sandbox::User=root)
echo "== apt-get update (private lists in $STATE)"
apt-get "${apt_opts[@]}" update -qq
mapfile -t packages < <(sed -e 's/#.*//' "$LIST" | awk 'NF >= 2 {print $2}')
echo "== downloading ${#packages[@]} packages into $DEST"
rm -f "$DEST"/*.deb
(cd "$DEST" && apt-get "${apt_opts[@]}" download -qq "${packages[@]}")

if [[ "${STUDIO_DEBS_SLIM:-1}" != 0 ]]; then
  echo "== slimming (docs, man pages, demo data out; xz)"
  work="$STATE/slim"
  for deb in "$DEST"/*.deb; do
    rm -rf "$work" && mkdir -p "$work"
    dpkg-deb -R "$deb" "$work"
    rm -rf "$work/usr/share/doc" "$work/usr/share/man" "$work/usr/share/info" "$work/usr/share/lintian" \
           "$work/usr/share/bug" "$work/usr/share/mesa-demos"
    # md5sums would now name files that are gone; dpkg -x never reads it.
    rm -f "$work/DEBIAN/md5sums"
    dpkg-deb --root-owner-group -Zxz -z9 -b "$work" "$deb.new" >/dev/null
    mv "$deb.new" "$deb"
  done
  rm -rf "$work"
fi

{
  echo "# package version bytes sha256 (Debian 12 bookworm, amd64; slimmed: ${STUDIO_DEBS_SLIM:-1})"
  for deb in "$DEST"/*.deb; do
    printf '%s %s %s %s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" \
      "$(stat -c %s "$deb")" "$(sha256sum "$deb" | cut -d' ' -f1)"
  done
} >"$DEST/MANIFEST"
missing=()
for p in "${packages[@]}"; do
  ls "$DEST/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fetch_studio_debs.sh: not downloaded: ${missing[*]}" >&2
  exit 1
fi
echo "== $(ls "$DEST"/*.deb | wc -l) packages, $(du -sh "$DEST" | cut -f1) in $DEST"

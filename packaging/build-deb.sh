#!/usr/bin/env bash
# Builds the Debian package of Candor from a self-contained 'dotnet publish' (no .NET needed on the target).
#
#   packaging/build-deb.sh [--out DIR] [--arch amd64|arm64] [--version VERSION]
#
# Prints the path of the .deb it made (default DIR: ./dist). The package installs:
#   /usr/lib/candor/          the published server and web client; /usr/bin/candor links to it
#   /etc/candor/candor.json   commented defaults (a conffile: dpkg never overwrites a changed one)
#   /lib/systemd/system/candor.service   hardened unit running 'candor serve --config /etc/candor/candor.json'
#   /usr/share/doc/candor/    README, CONFIGURATION, SECURITY, PROTOCOLS, copyright notice
# and its maintainer scripts create the 'candor' system user and /var/lib/candor (0750, candor:candor).
# The sources are published from a copy, so a build running beside it in the tree is not disturbed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/dist
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
VERSION=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$ROOT/Directory.Build.props" | head -n 1)
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --arch) ARCH=$2; shift 2 ;;
        --version) VERSION=$2; shift 2 ;;
        *) echo "usage: packaging/build-deb.sh [--out DIR] [--arch amd64|arm64] [--version VERSION]" >&2; exit 2 ;;
    esac
done
case "$ARCH" in
    amd64) RID=linux-x64 ;;
    arm64) RID=linux-arm64 ;;
    *) echo "build-deb.sh: unsupported architecture $ARCH (amd64 or arm64)" >&2; exit 2 ;;
esac
for tool in dotnet dpkg-deb tar; do
    command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool not found" >&2; exit 1; }
done

WORK=$(mktemp -d -t candor-deb-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/src"
tar -C "$ROOT" --exclude=bin --exclude=obj -cf - src web Directory.Build.props Directory.Packages.props | tar -C "$WORK/src" -xf -

PKG=$WORK/pkg
echo "build-deb.sh: publishing candor $VERSION for $RID (self-contained)" >&2
dotnet publish "$WORK/src/src/Candor/Candor.csproj" -c Release -r "$RID" --self-contained true \
    -p:DebugType=none -p:Version="$VERSION" -o "$PKG/usr/lib/candor" >"$WORK/publish.log" 2>&1 \
    || { tail -n 40 "$WORK/publish.log" >&2; echo "build-deb.sh: dotnet publish failed" >&2; exit 1; }

install -d "$PKG/usr/bin" "$PKG/etc/candor" "$PKG/lib/systemd/system" "$PKG/usr/share/doc/candor" "$PKG/DEBIAN"
ln -s ../lib/candor/candor "$PKG/usr/bin/candor"
install -m 0644 "$ROOT/packaging/candor.json" "$PKG/etc/candor/candor.json"
install -m 0644 "$ROOT/packaging/candor.service" "$PKG/lib/systemd/system/candor.service"
for doc in README.md docs/CONFIGURATION.md docs/SECURITY.md docs/PROTOCOLS.md; do
    install -m 0644 "$ROOT/$doc" "$PKG/usr/share/doc/candor/$(basename "$doc")"
done
printf 'Candor %s\nSelf-contained build including the .NET runtime (MIT licence) and the packages named in\nDirectory.Packages.props of the source tree, each under its own licence.\n' "$VERSION" \
    >"$PKG/usr/share/doc/candor/copyright"
chmod -R u+rwX,go+rX,go-w "$PKG/usr" "$PKG/etc" "$PKG/lib"

for script in postinst prerm postrm; do
    install -m 0755 "$ROOT/packaging/debian/$script" "$PKG/DEBIAN/$script"
done
install -m 0644 "$ROOT/packaging/debian/conffiles" "$PKG/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" "$ROOT/packaging/debian/control" >"$PKG/DEBIAN/control"

mkdir -p "$OUT"
DEB=$OUT/candor_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zgzip --build "$PKG" "$DEB" >&2
echo "$DEB"

#!/usr/bin/env bash
# Replaces web/converse/ with the files Candor serves from a pinned Converse.js release (npm package
# converse.js). Run it by hand to move to another version, check the browser test, and commit the result:
#
#   web/update-converse.sh 14.0.0
#
# Only what the browser loads is kept: the minified ES module and stylesheet, the code-split locale chunks
# (without source maps), emoji data, fonts, sounds, the few images the page refers to, and the OMEMO
# crypto library with its WebAssembly module. Files are copied byte for byte (source maps are left out, so
# browser devtools report them missing): running this script again must leave `git diff` empty. Licences come along (MPL-2.0 for Converse; libomemo.js,
# loaded only when OMEMO is used, is GPL-3.0).
set -euo pipefail
VERSION=${1:?usage: $0 VERSION}
WEB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

(cd "$TMP" && npm pack --silent "converse.js@$VERSION" >/dev/null && tar xzf converse.js-*.tgz)
SRC="$TMP/package"
DIST="$SRC/dist"
OUT="$WEB/converse"
rm -rf "$OUT"
mkdir -p "$OUT/chunkjs/locales/dayjs" "$OUT/images/custom_emojis" "$OUT/images/logo" "$OUT/webfonts" "$OUT/sounds"

cp "$DIST"/{converse.min.js,converse.min.css,emoji.json,libomemo.esm.min.js,curve25519_compiled.wasm} "$OUT/"
cp "$DIST"/webfonts/*.ttf "$OUT/webfonts/"
cp "$DIST"/sounds/{msg_received.mp3,msg_received.ogg,README} "$OUT/sounds/"
cp "$DIST"/images/favicon.ico "$OUT/images/"
cp "$DIST"/images/custom_emojis/*.png "$OUT/images/custom_emojis/"
cp "$DIST"/images/logo/conversejs-filled.svg "$OUT/images/logo/"
# The locale chunks Converse can load, and the dayjs locale each of them asks for.
for chunk in "$DIST"/chunkjs/locales/*-LC_MESSAGES-converse-po.js; do
    cp "$chunk" "$OUT/chunkjs/locales/"
    locale=$(basename "$chunk" -LC_MESSAGES-converse-po.js)
    dayjs=$(echo "$locale" | tr 'A-Z_' 'a-z-')
    [ "$dayjs" = ug ] && dayjs=ug-cn
    [ -f "$DIST/chunkjs/locales/dayjs/$dayjs-js.js" ] && cp "$DIST/chunkjs/locales/dayjs/$dayjs-js.js" "$OUT/chunkjs/locales/dayjs/"
done
cp "$SRC/LICENSE" "$OUT/LICENSE.txt"   # .txt: served at /converse/LICENSE.txt
cp "$SRC/COPYRIGHT" "$OUT/COPYRIGHT.txt"
cp /usr/share/common-licenses/GPL-3 "$OUT/LICENSE.libomemo-GPL-3.0.txt" 2>/dev/null || true
echo "$VERSION" > "$OUT/VERSION.txt"
du -sh "$OUT"

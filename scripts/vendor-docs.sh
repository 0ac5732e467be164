#!/usr/bin/env bash
# Re-vendors the interactive reference's renderer, swagger-ui-dist, from the
# npm registry at a pinned version into pkg/apidocs/assets/swagger-ui. Only
# the files the page loads are kept, plus the licence and notice. The page
# itself (index.html, init.js, docs.css) is ours and is left alone.
#
#   scripts/vendor-docs.sh            # the pinned version
#   SWAGGER_UI_VERSION=5.x.y scripts/vendor-docs.sh
#
# Then run the tests of pkg/apidocs (they include a headless-browser render)
# and commit pkg/apidocs/assets.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${SWAGGER_UI_VERSION:-5.35.0}"
ZOPFLI_VERSION=1.0.15
DEST=pkg/apidocs/assets/swagger-ui
FILES=(swagger-ui-bundle.js swagger-ui.css favicon-32x32.png favicon-16x16.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt)

command -v npm >/dev/null 2>&1 || { echo "vendor-docs: npm is not on PATH (apt-get install -y npm)." >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@${VERSION}" >/dev/null)
tar -xzf "$tmp"/swagger-ui-dist-"${VERSION}".tgz -C "$tmp"

rm -rf "$DEST"
mkdir -p "$DEST"
for f in "${FILES[@]}"; do
  cp "$tmp/package/$f" "$DEST/$f"
done
# Source maps are not vendored; drop the comments that point at them so a
# browser's developer tools do not request missing files.
sed -i -e 's#/\*\# sourceMappingURL=[^*]*\*/##' -e 's#^//\# sourceMappingURL=.*$##' "$DEST/swagger-ui.css" "$DEST/swagger-ui-bundle.js"
# The two large files are stored gzip-compressed (no name or time in the
# header, so the output is reproducible); pkg/apidocs serves them encoded,
# or decompressed to a client that does not accept gzip. They are
# compressed with Zopfli (@gfx/zopfli, a WebAssembly build, pinned): a
# gzip stream any client reads, 4% smaller than gzip -9, which keeps the
# API function's bootstrap within its budget.
(cd "$tmp" && npm install --silent --no-save "@gfx/zopfli@${ZOPFLI_VERSION}" >/dev/null)
for f in swagger-ui.css swagger-ui-bundle.js; do
  NODE_PATH="$tmp/node_modules" node -e '
    const fs = require("fs");
    require("@gfx/zopfli").gzipAsync(fs.readFileSync(process.argv[1]), { numiterations: 15 })
      .then((out) => fs.writeFileSync(process.argv[1] + ".gz", out));' "$DEST/$f"
  gzip -t "$DEST/$f.gz"
  rm "$DEST/$f"
done

license=$(cd "$tmp/package" && node -p "require('./package.json').license")
cat > "$DEST/VERSION" <<EOT
swagger-ui-dist ${VERSION} (${license}), from https://www.npmjs.com/package/swagger-ui-dist
vendored by scripts/vendor-docs.sh
EOT
echo "vendor-docs: swagger-ui-dist ${VERSION} (${license}) is in ${DEST}:"
ls -l "$DEST"

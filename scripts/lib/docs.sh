# Shared by the scripts: the DocC catalogs build without a warning.
#
# kappa_docs_check extracts the public symbol graphs of Kappa and KappaPostgres from the debug build
# that the tests use (swift symbolgraph-extract: no second build) and converts each catalog with
# `docc convert --warnings-as-errors`: a broken link, a parameter without documentation or a missing
# article fails it. The output is kept in .build/docs.log; the rendered archives in .build/docs/.
# Run it after `swift build`.
kappa_docs_check() {
  local log="$PWD/.build/docs.log" out="$PWD/.build/docs" debug module status=0
  debug="$(swift build --show-bin-path)"
  rm -rf "$out" && mkdir -p "$out"
  : > "$log"
  # The C modules the Swift modules import (NIO's, swift-atomics'...): their module maps and headers.
  local clang=()
  while IFS= read -r map; do clang+=(-Xcc "-fmodule-map-file=$map"); done < <(
    find "$(readlink -f "$debug")" -mindepth 2 -maxdepth 2 -name module.modulemap
    find "$PWD/.build/checkouts" -path '*/include/module.modulemap')
  while IFS= read -r dir; do clang+=(-Xcc "-I$dir"); done < <(find "$PWD/.build/checkouts" -type d -name include)
  # CLibPQ, the system library of libpq: its module map, and libpq's headers where pkg-config says.
  clang+=(-Xcc "-fmodule-map-file=$PWD/Sources/CLibPQ/module.modulemap" -Xcc "-I$(pkg-config --variable=includedir libpq)")
  for module in Kappa KappaPostgres; do
    mkdir -p "$out/$module-symbols"
    swift symbolgraph-extract -module-name "$module" -I "$debug/Modules" "${clang[@]}" -target "$(uname -m)-unknown-linux-gnu" \
      -output-dir "$out/$module-symbols" -minimum-access-level public >> "$log" 2>&1 || status=1
    docc convert "Sources/$module/$module.docc" --additional-symbol-graph-dir "$out/$module-symbols" \
      --fallback-display-name "$module" --fallback-bundle-identifier "org.kappa.$module" \
      --output-path "$out/$module.doccarchive" --warnings-as-errors >> "$log" 2>&1 || status=1
  done
  return "$status"
}

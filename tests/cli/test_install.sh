#!/usr/bin/env bash
# `cmake --install` gives a usable package: bin/pmap, the libraries, the
# headers, the man pages, pmap.pc and a CMake package; a project outside the
# tree builds against it with find_package(pmap) and with pkg-config.
. "$(dirname "$0")/lib.sh"
PM_SRC=${PM_SRC:?}
build=$(dirname "$(dirname "$PM_BIN")")       # the build tree of PM_BIN
command -v cmake >/dev/null || skip "no cmake"
run cmake --install "$build" --prefix "$T/p"; expect_rc 0 "cmake --install"
for f in bin/pmap lib/libpmap.a lib/libpmap.so include/pmap/pmap.h include/pmap/version.h \
         include/pmap/pipeline.h lib/pkgconfig/pmap.pc lib/cmake/pmap/pmapConfig.cmake; do
    [ -e "$T/p/$f" ] || fail "not installed: $f"
done
"$T/p/bin/pmap" --version | grep -q '^pmap ' || fail "installed pmap --version"
ok "installed files in place"

# Man pages: one per command in man1 (pmap --help's commands, and
# pmap-datagen), the overview pmap-tools(7) in man7, each page exactly its
# source in docs/man; and no pmap(1) in any section, which would hide
# procps's page (procps's pmap is a process's memory map).
cmds=$("$T/p/bin/pmap" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p')
[ -n "$cmds" ] || fail "no commands in pmap --help"
for c in $cmds datagen; do
    page=$T/p/share/man/man1/pmap-$c.1
    [ -f "$page" ] || fail "not installed: share/man/man1/pmap-$c.1"
    cmp -s "$page" "$PM_SRC/docs/man/pmap-$c.1" || fail "pmap-$c.1 differs from docs/man"
done
[ -f "$T/p/share/man/man7/pmap-tools.7" ] || fail "not installed: share/man/man7/pmap-tools.7"
found=$(find "$T/p" -name 'pmap.[0-9]*')
[ -z "$found" ] || fail "a pmap man page would hide procps's pmap(1): $found"
if command -v man >/dev/null; then
    for page in compress decompress checksum wc datagen; do
        run env MANPATH="$T/p/share/man" MANWIDTH=80 man -P cat "pmap-$page"
        expect_rc 0 "man pmap-$page"; expect_out "pmap-$page" "man pmap-$page"
    done
    run env MANPATH="$T/p/share/man" MANWIDTH=80 man -P cat 7 pmap-tools
    expect_rc 0 "man 7 pmap-tools"; expect_out "PMAP AND PROCPS" "man 7 pmap-tools"
fi
ok "man pages: pmap-{$(echo $cmds | tr ' ' ,),datagen}(1) and pmap-tools(7), no pmap(1)"

# CMake consumer (same compiler and sanitizer flags as the build under test)
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
san=$(sed -n 's/^PM_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")
flags=${san:+-fsanitize=$san}
run cmake -S "$PM_SRC/tests/install" -B "$T/consumer" -DCMAKE_PREFIX_PATH="$T/p" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags"
expect_rc 0 "configure a find_package(pmap) consumer"
run cmake --build "$T/consumer"; expect_rc 0 "build the consumer"
run env LD_LIBRARY_PATH="$T/p/lib" "$T/consumer/consumer"; expect_rc 0 "run the consumer"
expect_out "crc32(\"hello\")=3610a686" "consumer output"
ok "find_package(pmap) + pmap::pmap"

# pkg-config consumer
if command -v pkg-config >/dev/null; then
    pcflags=$(PKG_CONFIG_PATH="$T/p/lib/pkgconfig" pkg-config --cflags --libs pmap) \
        || fail "pkg-config pmap"
    # shellcheck disable=SC2086
    run "$cc" $flags -fopenmp "$PM_SRC/tests/install/consumer.c" -o "$T/pc-consumer" $pcflags
    expect_rc 0 "build with pkg-config flags"
    run env LD_LIBRARY_PATH="$T/p/lib" "$T/pc-consumer"; expect_rc 0 "run the pkg-config consumer"
    ok "pkg-config --cflags --libs pmap"
fi

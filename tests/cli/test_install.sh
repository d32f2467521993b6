#!/usr/bin/env bash
# `cmake --install` gives a usable package: bin/pmap, the libraries, the
# headers, the man page, pmap.pc and a CMake package; a project outside the
# tree builds against it with find_package(pmap) and with pkg-config.
. "$(dirname "$0")/lib.sh"
PM_SRC=${PM_SRC:?}
build=$(dirname "$(dirname "$PM_BIN")")       # the build tree of PM_BIN
command -v cmake >/dev/null || skip "no cmake"
run cmake --install "$build" --prefix "$T/p"; expect_rc 0 "cmake --install"
for f in bin/pmap lib/libpmap.a lib/libpmap.so include/pmap/pmap.h include/pmap/version.h \
         include/pmap/pipeline.h lib/pkgconfig/pmap.pc lib/cmake/pmap/pmapConfig.cmake \
         share/man/man1/pmap.1; do
    [ -e "$T/p/$f" ] || fail "not installed: $f"
done
"$T/p/bin/pmap" --version | grep -q '^pmap ' || fail "installed pmap --version"
ok "installed files in place"

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

#!/usr/bin/env bash
# The man pages in docs/man stay accurate: every command that `pmap --help`
# lists has its page pmap-COMMAND(1), which names every option that
# `pmap COMMAND --help` shows (pmap-datagen(1) likewise); the overview
# pmap-tools(7) leads to each page; groff renders every page without a
# warning. (That they are installed is test_install.sh's.)
. "$(dirname "$0")/lib.sh"
PM_SRC=${PM_SRC:?}
man_dir=$PM_SRC/docs/man
datagen=$(dirname "$PM_BIN")/pmap-datagen

# page_text PAGE: the page's troff source with \- as -, fonts dropped.
page_text() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$1"; }

# options HELP_FILE: the options a --help text shows, one per line.
options() { grep -oE -- '(^|[ ,[(|])--?[A-Za-z0-9][A-Za-z0-9-]*' "$1" | sed 's/^[ ,[(|]//' | sort -u; }

# covers PAGE HELP_FILE WHAT: every option of HELP_FILE is in PAGE.
covers() {
    local opt missing=
    page_text "$1" >"$T/page"
    for opt in $(options "$2"); do
        grep -qE -- "(^|[^A-Za-z0-9-])$opt([^A-Za-z0-9-]|$)" "$T/page" || missing+=" $opt"
    done
    [ -z "$missing" ] || fail "$3 shows options that $(basename "$1") lacks:$missing"
}

"$PM_BIN" --help >"$T/help" || fail "pmap --help"
cmds=$(sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p' "$T/help")
[ -n "$cmds" ] || fail "no commands in pmap --help"
grep -q 'pmap-tools(7)' "$T/help" || fail "pmap --help does not name the manual pmap-tools(7)"
for c in $cmds; do
    page=$man_dir/pmap-$c.1
    [ -f "$page" ] || fail "no man page docs/man/pmap-$c.1 for 'pmap $c'"
    "$PM_BIN" "$c" --help >"$T/help-$c" || fail "pmap $c --help"
    grep -E '^ {2,6}-' "$T/help-$c" >"$T/opts-$c"          # its table of options
    [ -s "$T/opts-$c" ] || fail "no options in pmap $c --help"
    covers "$page" "$T/opts-$c" "pmap $c --help"
    grep -q "^\.TH PMAP-$(echo "$c" | tr a-z A-Z) 1 " "$page" || fail "pmap-$c.1: .TH"
    grep -q "^\.BR pmap\\\\-$c (1)" "$man_dir/pmap-tools.7" || fail "pmap-tools.7 does not lead to pmap-$c(1)"
done
ok "pmap-{$(echo $cmds | tr ' ' ,)}(1) name every option of their --help"

if [ -x "$datagen" ]; then
    "$datagen" --help >"$T/help-datagen" || fail "pmap-datagen --help"
    covers "$man_dir/pmap-datagen.1" "$T/help-datagen" "pmap-datagen --help"
    ok "pmap-datagen(1) names every option of its --help"
fi

# No page may be called pmap: that is procps's pmap(1).
found=$(cd "$man_dir" && ls pmap.[0-9]* 2>/dev/null)
[ -z "$found" ] || fail "docs/man/$found would hide procps's pmap(1)"

if command -v groff >/dev/null; then
    for page in "$man_dir"/*.[1-9]; do
        groff -man -Tutf8 -ww -z "$page" 2>"$T/.err" || fail "groff $page"
        [ ! -s "$T/.err" ] || fail "groff warns about $(basename "$page")"
    done
    ok "groff renders every page without a warning"
else
    echo "note: no groff: the pages are not rendered"
fi

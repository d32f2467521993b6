#!/usr/bin/env bash
# `pmap PID` and procps's options with PIDs (`pmap -x PID`) are procps's
# pmap (a process's memory map): they are handed to it (exec'd with the same
# arguments) when it is installed, and fail with a clear message when not.
# PMAP_PROCPS points the look-up at a fake procps pmap that records its
# arguments; the real /usr/bin/pmap is used when it is procps's.
. "$(dirname "$0")/lib.sh"

fake=$T/fake-pmap
cat >"$fake" <<'SH'
#!/bin/sh
printf 'FAKE'; for a in "$@"; do printf ' [%s]' "$a"; done; echo
exit 42
SH
chmod +x "$fake"

# handed_over ARGS...: pmap ARGS runs the fake with exactly ARGS.
handed_over() {
    run env PMAP_PROCPS="$fake" "$PM_BIN" "$@"
    expect_rc 42 "pmap $* (exit status of procps's pmap)"
    local want="FAKE" a
    for a in "$@"; do want+=" [$a]"; done
    [ "$(cat "$T/.out")" = "$want" ] || fail "pmap $*: fake got '$(cat "$T/.out")', expected '$want'"
}
handed_over 1
handed_over $$
handed_over 1 2 3
handed_over 1 compress               # a PID first is never a command
handed_over -x 1
handed_over -X $$
handed_over -XX 1
handed_over -d 1
handed_over -q 1
handed_over -p 1
handed_over -xq 1 2
handed_over -x -q 1
handed_over 1 -x                     # getopt permutes
handed_over -A 0,ffff 1
handed_over -A0,ffff 1
handed_over --range=0,ffff 1
handed_over --range 0,ffff 1
handed_over --extended --device --quiet --show-path 1
handed_over -c 1
handed_over -C rcfile 1
handed_over --read-rc-from=rcfile 1
handed_over -n                       # writes its rc file: no PID
handed_over -N rcfile
handed_over --create-rc
handed_over -x -- 1
ok "pmap PID and procps's options with PIDs are handed to procps's pmap"

# Not procps's: pmap's own command lines and usage errors, whatever
# PMAP_PROCPS says.
own() {
    run env PMAP_PROCPS="$fake" "$PM_BIN" "$@"
    ! grep -q FAKE "$T/.out" || fail "pmap $*: handed to procps's pmap"
}
own --help; expect_rc 0 "--help"
own -h; expect_rc 0 "-h"
own --version; expect_rc 0 "--version"; expect_out "pmap " "--version"
own -V; expect_rc 0 "-V"
echo x >"$T/f"
own checksum "$T/f"; expect_rc 0 "checksum"
own -d x.gz; expect_rc 1 "-d x.gz (gzip's habit)"
expect_err "unknown option '-d'" "-d x.gz"; expect_err "procps" "-d x.gz hint"
own -x; expect_rc 1 "-x without a PID"; expect_err "'pmap -x PID...' would run procps's pmap" "-x"
own -r 1; expect_rc 1 "-r is no procps-only option"
own -k 1; expect_rc 1 "-k"; expect_err "unknown option '-k'" "-k"
own 12a; expect_rc 1 "12a"; expect_err "unknown command '12a'" "12a"
own -x 1 file; expect_rc 1 "-x 1 file (an operand that is no PID)"
ok "pmap's own command lines stay pmap's"

# Not installed: a clear error, exit status 1.
run env PMAP_PROCPS= "$PM_BIN" 1
expect_rc 1 "pmap 1, PMAP_PROCPS empty"
expect_err "procps's pmap (a process's memory map), which is not installed" "not installed"
expect_err "PMAP_PROCPS is empty" "not installed: why"
expect_err "parallel file toolkit" "not installed: what this pmap is"
run env PMAP_PROCPS="$T/none" "$PM_BIN" -x $$
expect_rc 1 "pmap -x PID, PMAP_PROCPS names nothing"
expect_err "which is not installed" "PMAP_PROCPS names nothing"
expect_err "PMAP_PROCPS=$T/none" "PMAP_PROCPS names nothing: named"
# PMAP_PROCPS naming pmap itself, or a link to it: never exec'd (no loop).
ln -s "$PM_BIN" "$T/self-link"
for self in "$PM_BIN" "$T/self-link"; do
    run timeout 10 env PMAP_PROCPS="$self" "$PM_BIN" $$
    expect_rc 1 "PMAP_PROCPS=$self (this pmap)"
    expect_err "not an executable other than this pmap" "PMAP_PROCPS=$self"
done
ok "without procps's pmap: a clear error, exit status 1"

# The default look-up (/usr/bin/pmap, then /bin/pmap): the real thing.
if [ -x /usr/bin/pmap ] && /usr/bin/pmap -V 2>/dev/null | grep -q procps; then
    sleep 30 & pid=$!
    PM_CLEANUP+=("kill $pid")
    # The child may not have exec'd sleep yet (procps would show the shell).
    for _ in $(seq 1 100); do
        tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null | grep -q '^sleep 30' && break
        sleep 0.05
    done
    run env -u PMAP_PROCPS "$PM_BIN" $pid; expect_rc 0 "pmap PID (procps)"
    head -n1 "$T/.out" | grep -q "^$pid: *sleep 30" || fail "pmap $pid: not procps's output"
    /usr/bin/pmap -x $pid >"$T/want"
    run env -u PMAP_PROCPS "$PM_BIN" -x $pid; expect_rc 0 "pmap -x PID (procps)"
    cmp -s "$T/.out" "$T/want" || fail "pmap -x $pid differs from /usr/bin/pmap -x $pid"
    /usr/bin/pmap 999999999 >/dev/null 2>&1; want=$?
    run env -u PMAP_PROCPS "$PM_BIN" 999999999; expect_rc $want "pmap of no process (procps's status)"
    ok "pmap PID runs /usr/bin/pmap (procps)"
else
    echo "note: procps's pmap is not in /usr/bin: the default look-up is not tried"
fi

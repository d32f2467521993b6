# mpi_lib.sh - helpers of the pmap-mpi tests (sourced after lib.sh):
# skips unless pmap was built with PM_MPI=ON and mpirun is here.
PM_MPI_BIN=${PM_MPI_BIN:-}
[ -n "$PM_MPI_BIN" ] || skip "built without PM_MPI"
[ -x "$PM_MPI_BIN" ] || fail "$PM_MPI_BIN is not executable"
command -v mpirun >/dev/null || skip "no mpirun (apt-get install openmpi-bin)"
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI leaks by design at exit (its MCA plugins, unloaded by then, so
# no suppression can name them): under AddressSanitizer, leak checking is
# off for the ranks; every other check stays on.
case "${PM_SANITIZE:-}" in *address*) export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ;; esac
# Ranks of one job share this machine's cores: two workers each at most.
export PMAP_JOBS=2

# mpi NP ARGS...: pmap-mpi ARGS under mpirun with NP ranks (-q: no
# banners of mpirun's own, so stderr is rank 0's).
mpi() { local np=$1; shift; mpirun -q --oversubscribe -np "$np" "$PM_MPI_BIN" "$@"; }

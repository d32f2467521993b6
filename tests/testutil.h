/* testutil.h - small helpers shared by the CUnit suites. */
#ifndef PM_TESTUTIL_H
#define PM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <CUnit/CUnit.h>

/* One test case of a suite table. */
typedef struct pm_test_case {
    const char *name;
    void (*fn)(void);
} pm_test_case;

/* Runs the cases as one CUnit suite named `suite` and returns the process
 * exit status: 0 when all passed, 1 on any failure, 77 (ctest's skip code)
 * when every case called pm_test_skip() and none failed.
 *
 * It reads the program's command line itself (suites keep `int main(void)`;
 * glibc hands argc/argv to constructors too), so every suite accepts:
 *   -t SUBSTRING, --case SUBSTRING   run only the cases whose name contains
 *                                    SUBSTRING (case-sensitive; several -t
 *                                    select the cases matching any of them)
 *   -x SUBSTRING, --exclude SUBSTRING  leave out the cases whose name
 *                                    contains SUBSTRING (tests/CMakeLists.txt
 *                                    uses -t and -x to run a suite's long
 *                                    cases as a separate test labelled slow)
 *   -l, --list                       print the selected case names, run none
 *   -h, --help
 * With no -t, the environment variable PM_TEST_CASE is the filter. A filter
 * that matches no case is a failure (exit 1), never a silent pass; a usage
 * error exits with 2. Each case is printed with its wall time.
 * Example: ./tests/test_pool -t "imap" --list */
int pm_test_run(const char *suite, const pm_test_case *cases);

/* Marks the running case as skipped, with a reason printed on stderr. */
void pm_test_skip(const char *why);

/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp), removed with
 * its contents by pm_test_rmtree(). The returned string is malloc'd. */
char *pm_test_tmpdir(void);
void pm_test_rmtree(const char *dir);

/* Deterministic pseudo-random bytes (xorshift64*) from a seed. */
void pm_test_fill_random(void *buf, size_t len, uint64_t seed);
/* Text-like, compressible bytes (words from a small vocabulary). */
void pm_test_fill_text(void *buf, size_t len, uint64_t seed);

/* Writes len bytes to path (creating/truncating it); 0 or -errno. */
int pm_test_write_file(const char *path, const void *buf, size_t len);
/* Reads a whole file into a malloc'd buffer; NULL on error. */
void *pm_test_read_file(const char *path, size_t *len_ret);

/* Runs a shell command and returns its exit status (-1 if it could not). */
int pm_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic time in seconds. */
double pm_test_now(void);

/* Whether process pid has exited: gone, or a zombie its parent (or init)
 * has not reaped yet. */
int pm_test_pid_gone(int pid);

/* Defined when built with AddressSanitizer or ThreadSanitizer (gcc or
 * clang), for cases their shadow memory cannot run (address-space limits). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PM_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PM_TEST_SANITIZED 1
#endif
#endif

/* 1 if an io_uring loop can be made here (io_uring may be blocked by a
 * seccomp filter or a sysctl); computed once. */
int pm_test_uring_available(void);

/* Cases run once per loop engine. In a file with a variable
 * `static pm_loop_engine engine;`, PM_TEST_BOTH(fn) defines fn_uring (skipped
 * where io_uring is unavailable) and fn_threads, each setting engine and
 * calling fn(); PM_TEST_CASE2(fn, "name") lists both in a case table. */
#define PM_TEST_BOTH(fn)                                                \
    static void fn##_uring(void)                                        \
    {                                                                   \
        if (!pm_test_uring_available()) {                               \
            pm_test_skip("io_uring unavailable here");                  \
            return;                                                     \
        }                                                               \
        engine = PM_LOOP_URING;                                         \
        fn();                                                           \
    }                                                                   \
    static void fn##_threads(void)                                      \
    {                                                                   \
        engine = PM_LOOP_THREADS;                                       \
        fn();                                                           \
    }
#define PM_TEST_CASE2(fn, name) {name " [uring]", fn##_uring}, {name " [threads]", fn##_threads}

#endif

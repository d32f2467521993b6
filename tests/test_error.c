/* test_error.c - pm_strerror covers pmap's codes and plain errno values,
 * and every string it returns is static: it stays valid and unchanged after
 * later calls, in any thread and after the thread that asked has exited.
 * Run under ASan+UBSan (PM_SANITIZE=address,undefined) a stale per-thread
 * buffer is a heap-use-after-free and pm_strerror(INT_MIN) an overflow. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <pmap/error.h>
#include "testutil.h"

static void test_known_codes(void)
{
    CU_ASSERT_STRING_EQUAL(pm_strerror(-EBADMSG), "corrupt data");
    CU_ASSERT_STRING_EQUAL(pm_strerror(EBADMSG), "corrupt data");
    CU_ASSERT_STRING_EQUAL(pm_strerror(0), "success");
    CU_ASSERT_STRING_EQUAL(pm_strerror(-ENOENT), strerror(ENOENT));
    CU_ASSERT_STRING_EQUAL(pm_strerror(ENOSPC), strerror(ENOSPC));
    CU_ASSERT_PTR_NOT_NULL(pm_strerror(-99999));
}

/* glibc's strerror() formats an unknown code into a per-thread buffer that
 * its next such call frees: the first string must survive the second call. */
static void test_unknown_codes_static(void)
{
    const char *a = pm_strerror(-99999);
    char copy[128];
    snprintf(copy, sizeof copy, "%s", a);
    const char *b = pm_strerror(-99998);
    CU_ASSERT_STRING_EQUAL(a, copy);            /* ASan: use after free before the fix */
    CU_ASSERT_STRING_EQUAL(a, "unknown error");
    CU_ASSERT_STRING_EQUAL(b, "unknown error");
    CU_ASSERT_STRING_EQUAL(pm_strerror(4096), "unknown error");
    CU_ASSERT_STRING_EQUAL(pm_strerror(INT_MAX), "unknown error");
}

/* INT_MIN has no negation in int: no overflow (UBSan), and no "-2147483648". */
static void test_int_min(void)
{
    CU_ASSERT_STRING_EQUAL(pm_strerror(INT_MIN), "unknown error");
    CU_ASSERT_STRING_EQUAL(pm_strerror(INT_MIN + 1), "unknown error");
    CU_ASSERT_STRING_EQUAL(pm_strerror(-INT_MAX), "unknown error");
}

static void *ask_in_thread(void *arg)
{
    return (void *)pm_strerror(*(int *)arg);
}

/* A string obtained in a thread outlives the thread (glibc frees its
 * per-thread buffer at thread exit). */
static void test_string_outlives_thread(void)
{
    int codes[] = { -77777, -ENOENT, -EBADMSG };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        pthread_t t;
        void *s = NULL;
        CU_ASSERT_FATAL(pthread_create(&t, NULL, ask_in_thread, &codes[i]) == 0);
        pthread_join(t, &s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT_STRING_EQUAL((const char *)s, pm_strerror(codes[i]));
    }
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"known codes", test_known_codes},
        {"unknown codes: static strings", test_unknown_codes_static},
        {"INT_MIN", test_int_min},
        {"string outlives its thread", test_string_outlives_thread},
        {NULL, NULL},
    };
    return pm_test_run("error", cases);
}

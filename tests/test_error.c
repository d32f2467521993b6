/* test_error.c - pm_strerror covers pmap's codes and plain errno values. */
#include <errno.h>
#include <string.h>

#include <pmap/error.h>
#include "testutil.h"

static void test_known_codes(void)
{
    CU_ASSERT_STRING_EQUAL(pm_strerror(-EBADMSG), "corrupt data");
    CU_ASSERT_STRING_EQUAL(pm_strerror(EBADMSG), "corrupt data");
    CU_ASSERT_STRING_EQUAL(pm_strerror(0), "success");
    CU_ASSERT_STRING_EQUAL(pm_strerror(-ENOENT), strerror(ENOENT));
    CU_ASSERT_PTR_NOT_NULL(pm_strerror(-99999));
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"known codes", test_known_codes},
        {NULL, NULL},
    };
    return pm_test_run("error", cases);
}

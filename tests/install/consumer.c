/* consumer.c - uses the installed libpmap: a pool map and a CRC-32. */
#include <stdio.h>
#include <string.h>

#include <pmap/pmap.h>

static int square(const void *in, void *out, void *arg)
{
    (void)arg;
    *(long *)out = *(const long *)in * *(const long *)in;
    return 0;
}

int main(void)
{
    long in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = i;
    pm_pool_opts po = PM_POOL_OPTS_INIT;
    pm_pool *pool;
    if (pm_pool_new(&po, &pool) < 0)
        return 1;
    pm_map_spec spec = {.fn = square, .in = in, .in_size = sizeof(long), .out = out,
                        .out_size = sizeof(long), .n = 100};
    int rc = pm_pool_map(pool, &spec, NULL);
    pm_pool_free(pool);
    if (rc != 0 || out[99] != 99 * 99)
        return 2;
    printf("pmap %s crc32(\"hello\")=%08x\n", PM_VERSION_STRING, pm_crc32(0, "hello", 5));
    return pm_crc32(0, "hello", 5) == 0x3610a686u ? 0 : 3;
}

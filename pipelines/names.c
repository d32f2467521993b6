/* names.c - output names for compress and decompress, as gzip makes them.
 *
 * The rules are the codec's (pmap/codec.h: its suffix list, and gzip
 * 1.12's get_suffix() order in lib/codec/codec.c); these are the gzip
 * codec's, kept for the CLI and for callers that name no codec. The -S
 * suffix, then ".gz", ".z", ".taz", ".tgz", "-gz", "-z" and "_z", all
 * compared without regard to case (UP.GZ -> UP); ".tgz" and ".taz" become
 * ".tar". A -S suffix that ends one of the built-in ones (-S z) is tried
 * last, so that "x.gz" loses ".gz", not "z". A name that is only a suffix
 * (".gz") has none.
 */
#include <pmap/codec.h>

#include "pipelines.h"

int pmp_compressed_name(const char *in, const char *suffix, char *buf, size_t cap)
{
    return pm_codec_compressed_name(pm_codec_find(NULL), in, suffix, buf, cap);
}

int pmp_has_gz_suffix(const char *in, const char *suffix)
{
    return (int)pm_codec_suffix_len(pm_codec_find(NULL), in, suffix);
}

int pmp_decompressed_name(const char *in, const char *suffix, char *buf, size_t cap)
{
    return pm_codec_decompressed_name(pm_codec_find(NULL), in, suffix, buf, cap);
}

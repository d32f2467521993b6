/* le.h - the gzip format's little-endian 32-bit fields, for lib/codec. */
#ifndef PM_CODEC_LE_H
#define PM_CODEC_LE_H

#include <stdint.h>

static inline uint32_t pm__get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void pm__put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

#endif

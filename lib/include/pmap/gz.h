/* pmap/gz.h - the gzip codec: CRC-32, block-parallel deflate (pigz's
 * scheme) and a streaming, fully checking gzip decoder.
 *
 * Compression of one gzip member is split into blocks that are deflated
 * independently and concatenated: each block uses the up to 32 KiB of input
 * that precede it as a preset dictionary, ends on a byte boundary (sync
 * flush) unless it is the last, and the per-block CRC-32s are joined with
 * pm_crc32_combine(). The result is one ordinary gzip member. The deflate
 * engine sits behind an internal interface (lib/codec/deflate_engine.h) so that
 * faster engines can replace zlib without changing this API.
 *
 * A header can also be read from a buffer (pm_gz_parse_header), which is
 * how members of pmap's blocked format are found without inflating them.
 * The pipelines do not call this header directly: they use gzip through the
 * codec interface (pmap/codec.h), which is built on it.
 */
#ifndef PMAP_GZ_H
#define PMAP_GZ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pmap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_GZ_DICT_SIZE 32768      /* preset dictionary: the preceding 32 KiB */
#define PM_GZ_TRAILER_SIZE 8       /* CRC-32 + ISIZE */

/* CRC-32 (gzip's polynomial) of buf, continuing crc (start with 0). */
PM_API uint32_t pm_crc32(uint32_t crc, const void *buf, size_t len);
/* CRC-32 of A||B from crc(A), crc(B) and len(B). */
PM_API uint32_t pm_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* ---- compression ---- */

/* A reusable block compressor; one per thread (not thread-safe). */
typedef struct pm_gz_deflater pm_gz_deflater;

/* For one gzip member made of blocks chained by preset dictionaries
 * (pigz's scheme): level 1..9 (else -EINVAL). zlib does the blocks, a
 * faster engine a file that fits in one block. Returns 0 or -errno. */
PM_API int pm_gz_deflater_new(int level, pm_gz_deflater **d_ret);

#define PM_GZ_LEVEL_MAX 12          /* with PM_GZ_INDEPENDENT */
#define PM_GZ_INDEPENDENT 1u        /* every block a complete stream of its own */

/* pm_gz_deflater_new() with flags. PM_GZ_INDEPENDENT: for blocks that are
 * complete streams (no dictionary, last: the blocked format's members),
 * levels 1..PM_GZ_LEVEL_MAX, each done by the engine and engine level that
 * measured fastest at no more than pigz's size for that level (ISA-L at 1,
 * libdeflate above; BENCHMARKS.md). Such a deflater still accepts any
 * block, with zlib at min(level, 9) for what its engine cannot do. */
PM_API int pm_gz_deflater_new_ex(int level, unsigned flags, pm_gz_deflater **d_ret);
/* The name of the engine d gives its complete streams to ("isal",
 * "libdeflate", "zlib"). */
PM_API const char *pm_gz_deflater_engine(const pm_gz_deflater *d);
PM_API void pm_gz_deflater_free(pm_gz_deflater *d);   /* NULL: no-op */

/* Upper bound on pm_gz_deflate_block()'s output for len input bytes, last
 * block or not, any level, any engine (about len + 0.1% + 28 bytes). */
PM_API size_t pm_gz_block_bound(size_t len);

/* Deflates in[0..len) as raw deflate into out, using dict[0..dict_len)
 * (the input just before `in`, at most PM_GZ_DICT_SIZE bytes are used) as a
 * preset dictionary. last != 0 ends the stream (final block); otherwise the
 * output ends byte-aligned so that blocks concatenate (an empty non-last
 * block is 0 bytes). Returns the number of bytes written, or -ENOSPC if
 * out_cap is too small (pm_gz_block_bound(len) always suffices; a block
 * may need a little more room than it ends up using), or -EINVAL. The
 * deflater stays usable after a failure. */
PM_API ssize_t pm_gz_deflate_block(pm_gz_deflater *d, const void *dict,
                                   size_t dict_len, const void *in, size_t len,
                                   int last, void *out, size_t out_cap);

/* What goes into a member header. name NULL: no FNAME; mtime 0: none. */
typedef struct pm_gz_header {
    const char *name;        /* original file name, or NULL; only the part
                                after the last '/' is written (none if
                                that is empty), bytes as given */
    uint32_t mtime;          /* seconds since the epoch, or 0 */
    int level;               /* sets XFL: 9 and up -> 2 (best), 1 -> 4 (fastest) */
    int blocked;             /* a member of pmap's blocked format: FEXTRA with
                                the "PM" subfield (docs/format.md), sizes
                                filled in later by pm_gz_set_member_sizes() */
} pm_gz_header;

/* The blocked format's subfield (docs/format.md): SI1 SI2 = 'P' 'M', LEN 8:
 * the member's whole size in bytes (header to trailer) and its
 * uncompressed size, each 32-bit little-endian. */
#define PM_GZ_BLOCKED_SI1 'P'
#define PM_GZ_BLOCKED_SI2 'M'
#define PM_GZ_BLOCKED_MAX ((size_t)1 << 30)   /* largest input per member */

/* Bytes pm_gz_write_header() will need for h. */
PM_API size_t pm_gz_header_size(const pm_gz_header *h);
/* Writes a gzip member header; returns its size or -ENOSPC. */
PM_API ssize_t pm_gz_write_header(const pm_gz_header *h, void *out, size_t cap);
/* Writes the 8-byte trailer (CRC-32, length mod 2^32, little-endian). */
PM_API void pm_gz_write_trailer(uint32_t crc, uint64_t length, void *out);
/* Fills in the "PM" subfield of a blocked member's header (written with
 * .blocked = 1 at `header`). */
PM_API void pm_gz_set_member_sizes(void *header, uint32_t member_size, uint32_t data_size);

/* ---- reading a member header ---- */

/* FLG bits (RFC 1952). */
#define PM_GZ_FTEXT 0x01u
#define PM_GZ_FHCRC 0x02u
#define PM_GZ_FEXTRA 0x04u
#define PM_GZ_FNAME 0x08u
#define PM_GZ_FCOMMENT 0x10u
#define PM_GZ_FRESERVED 0xe0u

typedef enum pm_gz_header_status {
    PM_GZ_HEADER_OK = 0,        /* a whole header; every field is set */
    PM_GZ_HEADER_MORE = 1,      /* the bytes are a proper prefix of a header
                                   (possibly empty): more are needed */
    PM_GZ_HEADER_NOT_GZIP = 2,  /* the first bytes are not the magic 1f 8b */
    PM_GZ_HEADER_BAD = 3,       /* the magic, then what no gzip reader takes:
                                   a method other than 8, reserved flag bits,
                                   or an FHCRC that does not match */
} pm_gz_header_status;

/* A parsed member header. Offsets count from the header's first byte. The
 * parts come in the order of RFC 1952 (fixed 10 bytes, extra, name,
 * comment, header CRC); a part's fields are set once it is complete in the
 * bytes given, even when the status is not PM_GZ_HEADER_OK. */
typedef struct pm_gz_header_info {
    size_t size;             /* bytes of the complete parts: with _OK the
                                header's length, where the deflate data starts */
    unsigned flags;          /* FLG (set from 4 bytes on) */
    unsigned parts;          /* the optional parts complete: PM_GZ_FEXTRA,
                                _FNAME, _FCOMMENT, _FHCRC bits */
    uint32_t mtime;          /* MTIME (from the fixed part) */
    unsigned xfl, os;        /* XFL, OS (from the fixed part) */
    size_t extra_off;        /* FEXTRA: the field's data, after XLEN */
    size_t extra_len;        /*   XLEN */
    size_t name_off;         /* FNAME: the name's first byte */
    size_t name_len;         /*   its length without the terminating zero */
    size_t comment_off;      /* FCOMMENT: as the name */
    size_t comment_len;
    uint16_t hcrc;           /* FHCRC: the stored value (it matched, or _BAD) */
    int blocked;             /* the extra field is exactly one "PM" subfield
                                of pmap's blocked format (XLEN 12, LEN 8) */
    uint32_t member_size;    /* blocked: MSIZE as stored, not checked */
    uint32_t data_size;      /* blocked: USIZE as stored, not checked */
} pm_gz_header_info;

/* Parses the member header at p[0..n) into *info (zeroed first). Reads no
 * byte outside p[0..n); n may be 0. Returns a pm_gz_header_status, or
 * -EINVAL when info is NULL or p is NULL with n > 0. Method and flags are
 * judged as soon as their byte is there, as gzip does (1f 8b 07 is _BAD,
 * not _MORE). Pure function, thread-safe. */
PM_API int pm_gz_parse_header(const void *p, size_t n, pm_gz_header_info *info);

/* Is p[0..n) the start of a member of pmap's blocked format with sizes
 * that can be true? 1 with *member_size, *data_size set when the header is
 * complete in p[0..n), has no flags but FEXTRA and FNAME, its extra field
 * is the "PM" subfield, MSIZE is at least the header plus 10 bytes and
 * USIZE at most PM_GZ_BLOCKED_MAX; else 0. MSIZE may still run past n and
 * the member may still be corrupt: callers check both. */
PM_API int pm_gz_blocked_member(const void *p, size_t n, uint32_t *member_size,
                                uint32_t *data_size);

/* ---- decompression ---- */

/* A streaming decoder of a gzip file: any number of members, every header
 * flag, CRC-32 and length checked. Not thread-safe; one per file. */
typedef struct pm_gz_inflater pm_gz_inflater;

PM_API int pm_gz_inflater_new(pm_gz_inflater **z_ret);
PM_API void pm_gz_inflater_free(pm_gz_inflater *z);    /* NULL: no-op */
/* Forget everything and start a new file. */
PM_API void pm_gz_inflater_reset(pm_gz_inflater *z);

typedef enum pm_gz_status {
    PM_GZ_NEED_INPUT = 0,    /* all input consumed; feed more */
    PM_GZ_OUTPUT_FULL = 1,   /* out is full; call again with more room (and
                                the unconsumed input); more output may or
                                may not follow */
    PM_GZ_DONE = 2,          /* end of input reached and everything checked */
} pm_gz_status;

/* Decodes from in[0..in_len) into out[0..out_cap). *in_used and *out_len
 * tell what was consumed and produced. in_eof != 0 says no input follows
 * this call's: then the decoder finishes (PM_GZ_DONE) or reports truncation.
 * Returns a pm_gz_status, or -EBADMSG (corrupt, not gzip, CRC or length
 * mismatch), -ENODATA (truncated, or empty input), -ENOMEM; -EINVAL for bad
 * arguments or input given after PM_GZ_DONE. pm_gz_inflater_message() then
 * says what and where, in gzip's words ("not in gzip format", "invalid
 * compressed data (...)", "crc error (stored ..., computed ...)", "length
 * error ...", "unexpected end of file", ...). The error is returned again by
 * every later call until pm_gz_inflater_reset(). What follows the last
 * member is handled as gzip does: zero bytes to the end are ignored
 * (trailing_zeros), data not starting with the gzip magic is ignored
 * (trailing_garbage; gzip exits with 2 for it), both with a warning message
 * and PM_GZ_DONE; a member after it that is bad is an error. */
PM_API int pm_gz_inflate(pm_gz_inflater *z, const void *in, size_t in_len,
                         size_t *in_used, void *out, size_t out_cap,
                         size_t *out_len, int in_eof);

/* Tells z that n complete members (in_bytes of input, out_bytes of output)
 * were decoded elsewhere -- pmap's blocked format inflates whole members in
 * parallel -- so that it carries on after them as if it had decoded them:
 * its totals count them and what follows is judged as what follows a
 * member. Returns 0, or -EINVAL when z is not at a member boundary (within
 * a member, after an error or the end). */
PM_API int pm_gz_inflater_skip_members(pm_gz_inflater *z, uint64_t n, uint64_t in_bytes,
                                       uint64_t out_bytes);

/* One whole member, decoded in one call (pmap's blocked format, where the
 * sizes are known; libdeflate): one decoder per thread. */
typedef struct pm_gz_member_decoder pm_gz_member_decoder;

PM_API int pm_gz_member_decoder_new(pm_gz_member_decoder **d_ret);
PM_API void pm_gz_member_decoder_free(pm_gz_member_decoder *d);     /* NULL: no-op */
/* Decodes the gzip member that is exactly in[0..in_len) into out, which
 * must receive exactly out_len bytes: any header flags, the deflate stream
 * ending right before the 8-byte trailer, CRC-32 and ISIZE matching.
 * Returns 0, -EBADMSG when the member is not exactly that (corrupt, or the
 * sizes are wrong: the caller may then decode it as a stream to learn
 * why), or -EINVAL. */
PM_API int pm_gz_member_decode(pm_gz_member_decoder *d, const void *in, size_t in_len, void *out,
                               size_t out_len);

/* Text of the last error or warning ("" if none); valid until the next call. */
PM_API const char *pm_gz_inflater_message(const pm_gz_inflater *z);

/* Facts about the stream decoded so far. */
typedef struct pm_gz_info {
    uint64_t members;        /* complete members decoded */
    uint64_t in_bytes;       /* compressed bytes consumed, trailing data included */
    uint64_t out_bytes;      /* uncompressed bytes produced */
    uint32_t mtime;          /* first member's MTIME (0 if none) */
    char name[256];          /* first member's FNAME, truncated ("" if none) */
    int trailing_zeros;      /* zero padding after the last member was ignored */
    int trailing_garbage;    /* non-gzip data after the last member was ignored */
} pm_gz_info;

PM_API void pm_gz_inflater_info(const pm_gz_inflater *z, pm_gz_info *info);

#ifdef __cplusplus
}
#endif
#endif

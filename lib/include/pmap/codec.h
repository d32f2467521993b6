/* pmap/codec.h - a codec: everything about one compressed file format that
 * the compress and decompress pipelines need, as one ops table.
 *
 * A codec owns its container: headers, blocks, trailers, the check value
 * (gzip: CRC-32) and how checks combine, its decoders, the magic that
 * recognises its data and the suffixes that recognise its files. The
 * pipelines (pipelines/compress.c, decompress.c) own the rest -- chunks,
 * order, files, names on disk -- and call a codec only through this table,
 * so a second format is one more table (lib/codec/codec_<name>.c) and one
 * line in the registry (lib/codec/codec.c). gzip is the first
 * (codec_gzip.c, on pmap/gz.h).
 *
 * Two output layouts, chosen per encoder:
 *   blocked (PM_CODEC_BLOCKED)  each chunk is encoded into a whole member
 *                        of its own (encode_member) that records its sizes,
 *                        so a reader can find members without decoding
 *                        (member_at) and decode them in parallel
 *                        (unpack_member); gzip: docs/format.md.
 *   chained (flags 0)    one member per file: chunk i is encoded as a block
 *                        (encode_block) with the dict_size bytes before it
 *                        as history; a serial step combines the chunks'
 *                        checks in order (check_combine) and appends the
 *                        trailer (write_trailer).
 *
 * Every op is thread-safe on distinct state; a state (encoder, unpacker,
 * decoder) belongs to one thread at a time. Errors are negative errno
 * values. Sizes that an input states about itself (member_at) are claims,
 * never trusted before they are checked against the bytes.
 */
#ifndef PMAP_CODEC_H
#define PMAP_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pmap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_CODEC_BLOCKED 1u         /* encoder_new: independent members */
#define PM_CODEC_MAGIC_MAX 8        /* largest magic_size of any codec */

/* What a file's first header may store; the other members store nothing. */
typedef struct pm_codec_meta {
    const char *name;        /* the input's name (a codec keeps the part
                                after the last '/'), or NULL: none */
    uint32_t mtime;          /* seconds since the epoch, or 0: none */
} pm_codec_meta;

/* The streaming decoder's results: the values of pm_gz_status. */
typedef enum pm_codec_status {
    PM_CODEC_NEED_INPUT = 0,     /* all input consumed; feed more */
    PM_CODEC_OUTPUT_FULL = 1,    /* out is full; call again with more room */
    PM_CODEC_DONE = 2,           /* end of input reached, everything checked */
} pm_codec_status;

/* Facts about a stream decoded so far. */
typedef struct pm_codec_info {
    uint64_t members;        /* complete members decoded */
    uint64_t in_bytes;       /* compressed bytes consumed, trailing data included */
    uint64_t out_bytes;      /* uncompressed bytes produced */
    uint32_t mtime;          /* first member's stored mtime (0 if none) */
    char name[256];          /* first member's stored name, cut ("" if none) */
    int trailing_zeros;      /* zero padding after the last member was ignored */
    int trailing_garbage;    /* other data after the last member was ignored */
} pm_codec_info;

/* A suffix that marks a compressed file, and what replaces it when the
 * name is decompressed ("" drops it; gzip: ".tgz" becomes ".tar"). */
typedef struct pm_codec_suffix {
    const char *suffix;
    const char *becomes;
} pm_codec_suffix;

typedef struct pm_codec {
    const char *name;                 /* "gzip" */
    const char *suffix;               /* appended on compression: ".gz" */
    const pm_codec_suffix *suffixes;  /* recognised on decompression, in any
                                         case, in this order; ends with {NULL} */
    int level_min, level_max;         /* levels of blocked output */
    int level_max_chained;            /* highest level of chained output */
    int level_default;
    size_t dict_size;                 /* chained: history before each block */
    size_t member_max;                /* blocked: largest input per member */
    size_t trailer_size;              /* chained: bytes write_trailer() writes */
    size_t magic_size;                /* sniff() decides from this many bytes */
    size_t name_bytes;                /* stored_name() wants this many leading
                                         bytes of a file (fewer if it is shorter) */

    /* ---- compression ---- */

    /* The default chunk size for a level and encoder flags. */
    size_t (*chunk_size)(int level, unsigned flags);
    /* Output room that always suffices for one chunk of len bytes, by
     * encode_member or by encode_block plus the trailer, with a header that
     * stores a name of up to 4096 bytes. */
    size_t (*bound)(size_t len);
    /* A per-thread encoder for level (within the ranges above, else
     * -EINVAL) and flags (PM_CODEC_BLOCKED or 0). 0 or -errno. */
    int (*encoder_new)(int level, unsigned flags, void **enc_ret);
    void (*encoder_free)(void *enc);                  /* NULL: no-op */
    /* Blocked: in[0..len) (at most member_max bytes) as one whole member
     * into out[0..cap), with meta in its header (NULL: none). Returns the
     * member's size, -ENAMETOOLONG when the header does not fit, or another
     * -errno. */
    ssize_t (*encode_member)(void *enc, const pm_codec_meta *meta, const void *in,
                             size_t len, void *out, size_t cap);
    /* Chained: one block of a file's single member, with dict[0..dict_len)
     * (the input just before in, up to dict_size bytes used) as history;
     * meta non-NULL: the file's first block, which starts with the header
     * (meta's fields may be NULL/0). last ends the stream. Leaves
     * trailer_size bytes of cap unused. Returns the bytes written,
     * -ENAMETOOLONG when the header does not fit, or another -errno. */
    ssize_t (*encode_block)(void *enc, const pm_codec_meta *meta, const void *dict,
                            size_t dict_len, const void *in, size_t len, int last,
                            void *out, size_t cap);
    /* The check value of buf[0..len) continuing check (start with 0). */
    uint64_t (*check)(uint64_t check, const void *buf, size_t len);
    /* The check of A||B from check(A), check(B) and len(B). */
    uint64_t (*check_combine)(uint64_t check_a, uint64_t check_b, uint64_t len_b);
    /* Chained: the member's trailer for the whole file's check and length. */
    void (*write_trailer)(uint64_t check, uint64_t length, void *out);

    /* ---- decompression: whole members, in parallel ---- */

    /* Does p[0..avail) start with a member of the blocked layout whose
     * header states its sizes? 1 with *member_size (its bytes, header to
     * trailer) and *data_size (its decoded bytes) plausible for the format,
     * else 0. The member may extend past avail or lie: callers check. */
    int (*member_at)(const void *p, size_t avail, uint64_t *member_size,
                     uint64_t *data_size);
    /* Per-thread state for unpack_member. 0 or -errno. */
    int (*unpacker_new)(void **u_ret);
    void (*unpacker_free)(void *u);                   /* NULL: no-op */
    /* Decodes the whole member in[0..in_len) into out[0..out_len): 0 only
     * when it is valid (checks included), ends exactly at in_len and
     * decodes to exactly out_len bytes; else -EBADMSG (the streaming
     * decoder will say why). */
    int (*unpack_member)(void *u, const void *in, size_t in_len, void *out, size_t out_len);

    /* ---- decompression: the streaming decoder, one per file ---- */

    int (*decoder_new)(void **dec_ret);
    void (*decoder_free)(void *dec);                  /* NULL: no-op */
    /* As pm_gz_inflate(): a pm_codec_status or -errno, with message(). */
    int (*decode)(void *dec, const void *in, size_t in_len, size_t *in_used, void *out,
                  size_t out_cap, size_t *out_len, int in_eof);
    /* As pm_gz_inflater_skip_members(): n members decoded elsewhere. */
    int (*skip_members)(void *dec, uint64_t n, uint64_t in_bytes, uint64_t out_bytes);
    void (*info)(const void *dec, pm_codec_info *info);
    const char *(*message)(const void *dec);          /* "" if none */

    /* ---- recognising data and names ---- */

    /* The stored name of a file whose first n bytes are head[0..n)
     * (n <= name_bytes), as gzip -N uses it: the part after its last '/',
     * cut to cap - 1 bytes. Returns 0, or 1 when it was cut, with the name
     * in out; -ENOENT when there is none (or the header is not whole in
     * head), -EINVAL for a name that cannot be a file's ("", ".", ".."),
     * -ENAMETOOLONG when the name does not end within name_bytes. */
    int (*stored_name)(const void *head, size_t n, char *out, size_t cap);
    /* Is p[0..n) the start of this codec's data? 1 yes, 0 no, -EAGAIN when
     * n < magic_size and more bytes could still make it so. */
    int (*sniff)(const void *p, size_t n);
} pm_codec;

/* The codec called name; NULL or "gzip" gives gzip. NULL for an unknown
 * name. The tables are static: never freed, any thread. */
PM_API const pm_codec *pm_codec_find(const char *name);

/* ---- what every codec shares, built on its table ---- */

/* The length of the suffix that decompression strips from the base name of
 * path (after its last '/'), 0 for none, as gzip 1.12 decides it: user (-S,
 * may be NULL) first, then the codec's suffixes, all without regard to
 * case; a user suffix that is the end of a built-in one (-S z) is tried
 * last, and a name that is only a suffix has none. */
PM_API size_t pm_codec_suffix_len(const pm_codec *c, const char *path, const char *user);
/* path without its suffix (the codec's `becomes` appended) into buf[0..cap):
 * 0, -EINVAL when it has none, -ENAMETOOLONG when buf is too small. */
PM_API int pm_codec_decompressed_name(const pm_codec *c, const char *path, const char *user,
                                      char *buf, size_t cap);
/* path with user (NULL: the codec's suffix) appended: 0, -EINVAL for an
 * empty suffix, -ENAMETOOLONG when buf is too small. */
PM_API int pm_codec_compressed_name(const pm_codec *c, const char *path, const char *user,
                                    char *buf, size_t cap);

/* A framer for the blocked layout (pm_frame_fn's contract): where to cut
 * data[0..len) so that the chunk before the cut holds whole members only.
 * When data starts with a member, the cut follows the last whole member
 * whose decoded size (by the headers' word) still fits in out_budget
 * bytes -- or a later member end, as far as needed to leave at most
 * chunk_size bytes (the carry room) after the cut. When the first member
 * is not all in data yet, PM_FRAME_DEFER if data fits the carry room (the
 * next read completes it). When that is impossible (a member longer than
 * the carry room) or data does not start with a member, it returns 0: no
 * cut. Every other cut is a member's end within len. */
PM_API size_t pm_codec_frame_members(const pm_codec *c, const unsigned char *data, size_t len,
                                     size_t chunk_size, size_t out_budget);

/* Decodes the whole members at the start of in[0..len) into out[0..cap),
 * in order, while member_at() finds one that lies within len, its output
 * fits and unpack_member() accepts it. Returns the members decoded, with
 * the bytes they took in *in_used and made in *out_used. */
PM_API uint64_t pm_codec_unpack_members(const pm_codec *c, void *u, const unsigned char *in,
                                        size_t len, unsigned char *out, size_t cap,
                                        size_t *in_used, size_t *out_used);

#ifdef __cplusplus
}
#endif
#endif

/* codec.c - the codec registry and what every codec shares on top of its
 * ops table (pmap/codec.h): suffix rules for names, the framer that cuts a
 * blocked file at member boundaries, and the loop that decodes a chunk's
 * whole members.
 *
 * Names follow gzip 1.12 (its get_suffix()): the -S suffix, then the
 * codec's own in table order, all compared without regard to case
 * (UP.GZ -> UP); a -S suffix that ends one of the codec's (-S z) is tried
 * last, so that "x.gz" loses ".gz", not "z"; a name that is only a suffix
 * (".gz") has none.
 *
 * The framer and the decode loop trust nothing a header says: a member is
 * taken only when it lies within the bytes at hand, and is decoded only
 * into room that holds its stated size; unpack_member() then checks that
 * the stated sizes are the real ones. Pure functions of their arguments
 * (the unpacker belongs to the calling thread).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <pmap/codec.h>
#include <pmap/pipeline.h>     /* PM_FRAME_DEFER */

extern const pm_codec pm__codec_gzip;

/* The default first. */
static const pm_codec *const codecs[] = {
    &pm__codec_gzip,
    NULL,
};

const pm_codec *pm_codec_find(const char *name)
{
    if (!name)
        return codecs[0];
    for (size_t i = 0; codecs[i]; i++)
        if (strcmp(codecs[i]->name, name) == 0)
            return codecs[i];
    return NULL;
}

/* ---- names ---- */

/* Length of suffix if base (blen bytes) ends in it (any case), else 0. */
static size_t ends_with(const char *base, size_t blen, const char *suffix)
{
    size_t m = strlen(suffix);
    return m > 0 && blen > m && !strcasecmp(base + blen - m, suffix) ? m : 0;
}

/* Does user end one of the codec's suffixes (and is shorter)? */
static int ends_builtin(const pm_codec *c, const char *user)
{
    size_t u = strlen(user);
    for (const pm_codec_suffix *s = c->suffixes; s->suffix; s++) {
        size_t b = strlen(s->suffix);
        if (u < b && !strcasecmp(s->suffix + b - u, user))
            return 1;
    }
    return 0;
}

/* The suffix gzip would strip from base: its length (0: none). */
static size_t known_suffix(const pm_codec *c, const char *base, const char *user)
{
    size_t blen = strlen(base), m;
    int user_last = user && *user && ends_builtin(c, user);
    if (user && *user && !user_last && (m = ends_with(base, blen, user)))
        return m;
    for (const pm_codec_suffix *s = c->suffixes; s->suffix; s++)
        if ((m = ends_with(base, blen, s->suffix)))
            return m;
    return user_last ? ends_with(base, blen, user) : 0;
}

/* What replaces a stripped suffix: the `becomes` of the codec's suffix
 * that it is (in any case; -S .TGZ too), else nothing. */
static const char *replacement(const pm_codec *c, const char *stripped)
{
    for (const pm_codec_suffix *s = c->suffixes; s->suffix; s++)
        if (!strcasecmp(stripped, s->suffix))
            return s->becomes ? s->becomes : "";
    return "";
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

size_t pm_codec_suffix_len(const pm_codec *c, const char *path, const char *user)
{
    return c && path ? known_suffix(c, base_name(path), user) : 0;
}

int pm_codec_decompressed_name(const pm_codec *c, const char *path, const char *user,
                               char *buf, size_t cap)
{
    size_t m = c && path ? known_suffix(c, base_name(path), user) : 0;
    if (!m)
        return -EINVAL;
    size_t keep = strlen(path) - m;
    const char *add = replacement(c, path + keep);
    int w = snprintf(buf, cap, "%.*s%s", (int)keep, path, add);
    return w < 0 ? -EINVAL : (size_t)w >= cap ? -ENAMETOOLONG : 0;
}

int pm_codec_compressed_name(const pm_codec *c, const char *path, const char *user,
                             char *buf, size_t cap)
{
    if (!user)
        user = c ? c->suffix : NULL;
    if (!path || !user || !*user)
        return -EINVAL;
    int n = snprintf(buf, cap, "%s%s", path, user);
    return n < 0 ? -EINVAL : (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ---- the blocked layout ---- */

/* A member at p[0..avail) that lies wholly within it: 1 and its sizes. */
static int whole_member(const pm_codec *c, const unsigned char *p, size_t avail,
                        uint64_t *ms, uint64_t *us)
{
    return c->member_at(p, avail, ms, us) && *ms > 0 && *ms <= avail;
}

size_t pm_codec_frame_members(const pm_codec *c, const unsigned char *data, size_t len,
                              size_t chunk_size, size_t out_budget)
{
    size_t pos = 0, budget = 0;     /* budget: the cut within out_budget */
    uint64_t out = 0, ms, us;
    if (c->member_at(data, len, &ms, &us) && ms > len)
        return len <= chunk_size ? PM_FRAME_DEFER : 0;   /* the first member is not all here */
    while (whole_member(c, data + pos, len - pos, &ms, &us)) {
        if (pos == 0 || (out <= out_budget && us <= out_budget - out)) {
            if (budget == pos)
                budget = pos + (size_t)ms;    /* still within the output budget */
            out += us;
        }
        pos += (size_t)ms;
        if (budget < pos && len - budget <= chunk_size)
            break;                            /* the budget's cut leaves a small tail */
    }
    if (len - budget <= chunk_size)
        return budget;
    return len - pos <= chunk_size ? pos : 0;
}

uint64_t pm_codec_unpack_members(const pm_codec *c, void *u, const unsigned char *in,
                                 size_t len, unsigned char *out, size_t cap,
                                 size_t *in_used, size_t *out_used)
{
    size_t pos = 0, made = 0;
    uint64_t ms, us, n = 0;
    while (whole_member(c, in + pos, len - pos, &ms, &us) && us <= cap - made &&
           c->unpack_member(u, in + pos, (size_t)ms, out + made, (size_t)us) == 0) {
        pos += (size_t)ms;
        made += (size_t)us;
        n++;
    }
    *in_used = pos;
    *out_used = made;
    return n;
}

/* dg_text.c - the vocabulary, English-like prose, and shared formatting.
 *
 * The vocabulary is a fixed "language": a few hundred common English words
 * in rough frequency order, followed by pronounceable made-up words built
 * from syllables by a PRNG with a constant seed (independent of the user's
 * seed, so every dataset speaks the same language). Prose draws words from
 * a Zipf distribution over it: a realistic mix of very frequent short words
 * and a long tail, without the repeated lines that make data compress
 * unrealistically well. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dg.h"

/* Tuned so that gzip -6 compresses the prose about 3.5:1 (real English
 * text: roughly 2.7-3.5:1): a vocabulary of 8000 words, Zipf weights
 * 1/(rank + 2), and 80% of the words one of 2 successors of the previous
 * word. */
#define DG_VOCAB 8000           /* words in the language */
#define DG_ZIPF_OFFSET 2
#define DG_WORD_MAX 24
#define DG_LINE_WIDTH 72
#define DG_FOLLOW_PCT 80        /* words that follow from the previous word */
#define DG_SUCCESSORS 2         /* successors each word has */

static const char *const common_words[] = {
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was",
    "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from",
    "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
    "one", "all", "we", "can", "her", "has", "there", "been", "if", "more",
    "when", "will", "would", "who", "so", "no", "she", "other", "its", "may",
    "these", "what", "them", "than", "some", "him", "time", "into", "only",
    "do", "could", "new", "about", "two", "such", "any", "then", "first",
    "also", "most", "made", "over", "people", "our", "like", "after", "many",
    "where", "must", "those", "through", "each", "should", "well", "much",
    "before", "between", "work", "very", "way", "state", "because", "being",
    "same", "under", "world", "year", "life", "back", "might", "while", "long",
    "both", "great", "never", "own", "still", "part", "system", "water",
    "number", "place", "use", "without", "point", "found", "house", "every",
    "since", "down", "city", "government", "against", "right", "small",
    "large", "during", "how", "country", "man", "day", "men", "within",
    "here", "last", "air", "high", "used", "group", "national", "often",
    "another", "again", "order", "form", "old", "even", "end", "left", "case",
    "given", "make", "general", "public", "several", "power", "early", "war",
    "children", "among", "family", "study", "road", "side", "local", "night",
    "river", "result", "free", "social", "line", "history", "school", "field",
    "support", "market", "process", "change", "north", "south", "service",
    "body", "whole", "less", "interest", "however", "business", "view",
    "fact", "thought", "later", "morning", "voice", "light", "open", "far",
    "around", "table", "story", "along", "name", "young", "hand", "second",
    "took", "came", "went", "said", "knew", "turned", "seemed", "looked",
    "across", "toward", "until", "near", "above", "below", "almost", "enough",
    "rather", "quite", "perhaps", "always", "sometimes", "together", "already",
    "certain", "important", "different", "possible", "known", "human",
    "least", "present", "common", "true", "white", "black", "hard", "real",
    "best", "better", "strong", "clear", "short", "full", "whose", "ground",
};

static const char *const onsets[] = {
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t",
    "v", "w", "b", "d", "l", "m", "n", "p", "r", "s", "t", "st", "tr", "pl",
    "br", "ch", "sh", "th", "gr", "cl", "pr", "", "", "", "",
};
static const char *const vowels[] = {
    "a", "e", "i", "o", "u", "a", "e", "i", "o", "a", "e", "ea", "ou", "io",
    "ai", "ee", "y",
};
static const char *const codas[] = {
    "", "", "", "", "", "", "n", "r", "s", "t", "l", "n", "r", "s", "t", "l",
    "nd", "st", "ng", "ck", "m", "rt", "ll", "ss", "nt", "rd",
};
static const char *const suffixes[] = {
    "", "", "", "", "", "", "", "", "", "", "", "", "s", "s", "s", "ing",
    "ed", "ed", "tion", "ly", "er", "er", "ment", "ness", "able", "al",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static size_t pick_append(char *w, size_t len, const char *part)
{
    size_t n = strlen(part);
    memcpy(w + len, part, n);
    return len + n;
}

/* One made-up word of 1-4 syllables plus an optional suffix. */
static size_t make_word(dg_rng *r, char *w)
{
    size_t len;
    do {
        len = 0;
        unsigned roll = (unsigned)dg_below(r, 20);
        unsigned syl = roll < 9 ? 1 : roll < 18 ? 2 : 3;
        for (unsigned i = 0; i < syl; i++) {
            len = pick_append(w, len, onsets[dg_below(r, NELEM(onsets))]);
            len = pick_append(w, len, vowels[dg_below(r, NELEM(vowels))]);
            len = pick_append(w, len, codas[dg_below(r, NELEM(codas))]);
        }
        len = pick_append(w, len, suffixes[dg_below(r, NELEM(suffixes))]);
    } while (len < 2 || len > DG_WORD_MAX);
    return len;
}

int dg_tables_init(dg_tables *t)
{
    memset(t, 0, sizeof *t);
    t->nwords = DG_VOCAB;
    t->words = malloc(sizeof *t->words * DG_VOCAB);
    t->word_len = malloc(DG_VOCAB);
    t->word_store = malloc((size_t)DG_VOCAB * (DG_WORD_MAX + 1));
    if (!t->words || !t->word_len || !t->word_store)
        goto fail;
    dg_rng r;
    dg_rng_seed(&r, 0x6c616e6775616765ull, 0);     /* the language's own seed */
    char *p = t->word_store;
    for (uint32_t i = 0; i < DG_VOCAB; i++) {
        size_t len;
        if (i < NELEM(common_words)) {
            len = strlen(common_words[i]);
            memcpy(p, common_words[i], len);
        } else {
            len = make_word(&r, p);
        }
        p[len] = '\0';
        t->words[i] = p;
        t->word_len[i] = (uint8_t)len;
        p += len + 1;
    }
    if (dg_zipf_init(&t->word_zipf, DG_VOCAB, DG_ZIPF_OFFSET) < 0 ||
        dg_zipf_init(&t->small_zipf, 64, 2) < 0 ||
        dg_zipf_init(&t->mid_zipf, 4096, 8) < 0)
        goto fail;
    return 0;
fail:
    dg_tables_free(t);
    return -ENOMEM;
}

void dg_tables_free(dg_tables *t)
{
    free(t->words);
    free(t->word_len);
    free(t->word_store);
    dg_zipf_free(&t->word_zipf);
    dg_zipf_free(&t->small_zipf);
    dg_zipf_free(&t->mid_zipf);
    memset(t, 0, sizeof *t);
}

void dg_put_word(dg_sink *s, const dg_tables *t, uint32_t rank)
{
    dg_put(s, t->words[rank], t->word_len[rank]);
}

/* ---- prose ---- */

typedef struct prose {
    dg_sink *s;
    unsigned col;        /* column of the current output line */
} prose;

/* Places a token of n bytes (already appended at the end of the sink)
 * after a space or a line break, wrapping at DG_LINE_WIDTH. */
static void prose_place(prose *p, size_t start, size_t n)
{
    if (p->col == 0) {
        p->col = (unsigned)n;
        return;
    }
    char *b = p->s->buf;
    memmove(b + start + 1, b + start, n);
    if (p->col + 1 + n > DG_LINE_WIDTH) {
        b[start] = '\n';
        p->col = (unsigned)n;
    } else {
        b[start] = ' ';
        p->col += 1 + (unsigned)n;
    }
    p->s->len++;
}

/* Words follow words the way they do in a language: most of the time
 * the next word is one of a few fixed successors of the previous one (a
 * function of its rank), which makes recurring phrases; otherwise it is a
 * fresh draw from the Zipf distribution. */
static uint32_t next_word(dg_gen *g)
{
    const dg_zipf *z = &g->t->word_zipf;
    uint32_t rank = g->prev_word;
    if (dg_chance(&g->rng, DG_FOLLOW_PCT, 100))
        rank = dg_zipf_map(z, dg_mix(((uint64_t)g->prev_word << 3) + dg_below(&g->rng, DG_SUCCESSORS)));
    if (rank == g->prev_word)
        rank = dg_zipf_draw(z, &g->rng);
    g->prev_word = rank;
    return rank;
}

/* One token: usually a word, sometimes a number or a capitalised name. */
static void prose_token(dg_gen *g, prose *p, int capital, int last)
{
    dg_sink *s = p->s;
    size_t start = s->len;
    unsigned roll = (unsigned)dg_below(&g->rng, 1000);
    if (roll < 12) {
        dg_put_u(s, dg_range(&g->rng, 1850, 2030));           /* a year */
    } else if (roll < 25) {
        dg_put_u(s, dg_range(&g->rng, 2, 250));                /* a count */
    } else {
        uint32_t rank = next_word(g);
        dg_put_word(s, g->t, rank);
        if (capital || (roll < 45 && rank > 300))
            s->buf[start] = (char)(s->buf[start] - 'a' + 'A');
    }
    if (last) {
        unsigned end = (unsigned)dg_below(&g->rng, 20);
        dg_putc(s, end == 0 ? '?' : end == 1 ? '!' : '.');
    } else if (dg_chance(&g->rng, 1, 11)) {
        dg_putc(s, dg_chance(&g->rng, 1, 8) ? ';' : ',');
    }
    prose_place(p, start, s->len - start);
}

/* A record is one paragraph of 2-7 sentences of 3-28 words, wrapped at 72
 * columns and followed by a blank line. */
void dg_text_record(dg_gen *g, dg_sink *s)
{
    prose p = { .s = s, .col = 0 };
    unsigned sentences = (unsigned)dg_range(&g->rng, 2, 7);
    for (unsigned i = 0; i < sentences; i++) {
        unsigned words = (unsigned)(dg_range(&g->rng, 3, 16) + dg_below(&g->rng, 13));
        for (unsigned w = 0; w < words; w++)
            prose_token(g, &p, w == 0, w + 1 == words);
    }
    dg_put(s, "\n\n", 2);
}

/* ---- time ---- */

void dg_civil(uint64_t ms, unsigned *y, unsigned *mo, unsigned *d,
              unsigned *h, unsigned *mi, unsigned *sec, unsigned *milli)
{
    uint64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    *milli = (unsigned)(ms % 1000);
    *h = (unsigned)(rem / 3600);
    *mi = (unsigned)(rem / 60 % 60);
    *sec = (unsigned)(rem % 60);
    /* Days since 1970-01-01 to a date, in 400-year eras of 146097 days
     * whose years start on March 1st (so the leap day ends a year). */
    uint64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *mo = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (unsigned)(yoe + era * 400 + (*mo <= 2));
}

void dg_put_iso_time(dg_sink *s, uint64_t ms)
{
    unsigned y, mo, d, h, mi, sec, milli;
    dg_civil(ms, &y, &mo, &d, &h, &mi, &sec, &milli);
    dg_put_u0(s, y, 4);
    dg_putc(s, '-');
    dg_put_u0(s, mo, 2);
    dg_putc(s, '-');
    dg_put_u0(s, d, 2);
    dg_putc(s, 'T');
    dg_put_u0(s, h, 2);
    dg_putc(s, ':');
    dg_put_u0(s, mi, 2);
    dg_putc(s, ':');
    dg_put_u0(s, sec, 2);
    dg_putc(s, '.');
    dg_put_u0(s, milli, 3);
    dg_putc(s, 'Z');
}

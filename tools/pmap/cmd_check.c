/* cmd_check.c - pmap checksum -c LIST...: verifies the lines of lists
 * written by pmap checksum, as sha256sum -c verifies its own.
 *
 * Each list ("-" or none: stdin) is read whole; its well-formed lines
 * (CRC32HEX  BYTES  PATH, a leading backslash meaning an escaped PATH)
 * become entries, in order. Directories are failed at once; every other
 * entry's path is an operand of one pmp_checksum() run, so files are
 * checksummed in parallel, and events come back in the entries' order: an
 * event whose path is the next entry's (or a later one's: those before it
 * had none) settles that entry. Output per entry: "PATH: OK", "PATH:
 * FAILED" (CRC or size differs) or "PATH: FAILED open or read"; then the
 * sha256sum-style warnings on stderr. Exit status 1 when any entry failed,
 * a list could not be read or had no well-formed line; badly formed lines
 * alone are a warning.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

typedef struct check_entry {
    char *path;
    uint32_t crc;
    uint64_t bytes;
    int is_dir;              /* failed without reading */
} check_entry;

typedef struct check_state {
    check_entry *e;
    size_t n, cap;
    size_t next;             /* first entry not yet settled */
    uint64_t ok, mismatched, unreadable;
    int list_failed;
    int have;                /* a result for the event that follows */
    uint32_t crc;
    uint64_t bytes;
} check_state;

/* Undoes pm_print_name()'s escapes in place. Returns 0, or -1 if bad. */
static int unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (*p != '\\') {
            *w++ = *p;
            continue;
        }
        p++;
        switch (*p) {
        case '\\': *w++ = '\\'; break;
        case 'n': *w++ = '\n'; break;
        case 't': *w++ = '\t'; break;
        case 'r': *w++ = '\r'; break;
        default:
            if (p[0] < '0' || p[0] > '3' || p[1] < '0' || p[1] > '7' || p[2] < '0' || p[2] > '7')
                return -1;
            *w++ = (char)((p[0] - '0') << 6 | (p[1] - '0') << 3 | (p[2] - '0'));
            p += 2;
        }
    }
    *w = 0;
    return w == s ? -1 : 0;
}

/* Parses one line (without its newline) into e. Returns 0 or -1. */
static int parse_line(char *line, check_entry *e)
{
    int escaped = line[0] == '\\';
    char *p = line + escaped, *end;
    for (int i = 0; i < 8; i++)
        if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
            return -1;
    if (p[8] != ' ' || p[9] != ' ' || p[10] < '0' || p[10] > '9')
        return -1;
    e->crc = (uint32_t)strtoul(p, NULL, 16);
    errno = 0;
    e->bytes = strtoull(p + 10, &end, 10);
    if (errno || end[0] != ' ' || end[1] != ' ' || !end[2])
        return -1;
    if (escaped && unescape(end + 2) < 0)
        return -1;
    e->path = strdup(end + 2);
    return e->path ? 0 : -1;
}

static int add_entry(check_state *cs, const check_entry *e)
{
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 64;
        check_entry *ne = realloc(cs->e, cap * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        cs->e = ne;
        cs->cap = cap;
    }
    cs->e[cs->n++] = *e;
    return 0;
}

/* Reads one list into cs. Returns 0 or -1 (said on stderr). */
static int read_list(cli_report *r, check_state *cs, const char *name)
{
    int is_stdin = !strcmp(name, "-");
    FILE *f = is_stdin ? stdin : fopen(name, "r");
    if (!f) {
        cli_error(r, "%s: %s", name, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, good = 0, bad = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = 0;
        check_entry e = { 0 };
        if (memchr(line, 0, (size_t)len) || parse_line(line, &e) < 0) {
            bad++;
            continue;
        }
        if (add_entry(cs, &e) < 0) {
            free(e.path);
            free(line);
            cli_error(r, "%s: %s", name, strerror(ENOMEM));
            return -1;
        }
        good++;
    }
    int err = ferror(f) ? errno : 0;
    free(line);
    if (!is_stdin)
        fclose(f);
    if (err) {
        cli_error(r, "%s: %s", name, strerror(err));
        return -1;
    }
    if (bad && !r->o->check_status)
        cli_error(r, "WARNING: %s: %zu line%s improperly formatted", name, bad,
                  bad == 1 ? " is" : "s are");
    if (!good) {
        cli_error(r, "%s: no properly formatted checksum lines found", name);
        return -1;
    }
    return 0;
}

static void verdict(cli_report *r, const char *path, const char *what, int is_ok)
{
    if (r->o->check_status || (is_ok && r->o->quiet))
        return;
    cli_report_before_stdout(r);
    if (cli_name_needs_escape(path))
        putchar('\\');
    pm_print_name(stdout, path);
    printf(": %s\n", what);
}

/* Entries before `upto` that no event settled (or directories). */
static void settle_unread(cli_report *r, check_state *cs, size_t upto)
{
    for (; cs->next < upto; cs->next++) {
        check_entry *e = &cs->e[cs->next];
        if (e->is_dir && !r->o->check_status) {
            errno = EISDIR;
            cli_error(r, "%s: %s", e->path, strerror(EISDIR));
        }
        cs->unreadable++;
        verdict(r, e->path, "FAILED open or read", 0);
    }
}

static void on_check_result(const pmp_result *res, void *arg)
{
    cli_report *r = arg;
    check_state *cs = r->cmd_state;
    cs->have = 1;
    cs->crc = res->crc32;
    cs->bytes = res->bytes;
}

static void on_check_event(const pm_event *ev, void *arg)
{
    cli_report *r = arg;
    check_state *cs = r->cmd_state;
    int had = cs->have;
    cs->have = 0;
    cli_on_event(ev, arg);
    size_t k = cs->next;
    while (k < cs->n && (cs->e[k].is_dir || strcmp(cs->e[k].path, ev->path)))
        k++;
    if (k == cs->n)              /* found inside a directory put in a file's place */
        return;
    settle_unread(r, cs, k);
    const check_entry *e = &cs->e[k];
    cs->next = k + 1;
    if (!had) {                  /* failed or skipped: its message is out */
        cs->unreadable++;
        verdict(r, e->path, "FAILED open or read", 0);
    } else if (cs->crc != e->crc || cs->bytes != e->bytes) {
        cs->mismatched++;
        verdict(r, e->path, "FAILED", 0);
    } else {
        cs->ok++;
        verdict(r, e->path, "OK", 1);
    }
}

static void summary(cli_report *r, const check_state *cs)
{
    if (r->o->check_status)
        return;
    if (cs->unreadable)
        cli_error(r, "WARNING: %llu listed file%s could not be read",
                  (unsigned long long)cs->unreadable, cs->unreadable == 1 ? "" : "s");
    if (cs->mismatched)
        cli_error(r, "WARNING: %llu computed checksum%s did NOT match",
                  (unsigned long long)cs->mismatched, cs->mismatched == 1 ? "" : "s");
}

int cli_run_check(cli_opts *o)
{
    static const char *const only_stdin[] = { "-" };
    const char *const *lists = o->npaths ? o->paths : only_stdin;
    size_t nlists = o->npaths ? o->npaths : 1;
    cli_report r;
    check_state cs = { 0 };
    cli_report_init(&r, o, CLI_DONE_SILENT);
    r.cmd_state = &cs;
    for (size_t i = 0; i < nlists; i++)
        if (read_list(&r, &cs, lists[i]) < 0)
            cs.list_failed = 1;
    const char **paths = malloc((cs.n ? cs.n : 1) * sizeof *paths);
    size_t np = 0;
    if (!paths) {
        cli_error(&r, "%s", strerror(ENOMEM));
        cs.list_failed = 1;
    }
    for (size_t i = 0; paths && i < cs.n; i++) {
        struct stat st;
        cs.e[i].is_dir = stat(cs.e[i].path, &st) == 0 && S_ISDIR(st.st_mode);
        if (!cs.e[i].is_dir)
            paths[np++] = cs.e[i].path;
    }
    if (np) {
        pmp_opts p = { 0 };
        cli_report_pipeline_opts(&r, &p);
        p.pl.on_event = on_check_event;
        p.on_result = on_check_result;
        p.pl.flags = PM_PL_SKIP_SPECIAL_OK;
        if (o->force)
            p.pl.flags |= PM_PL_FOLLOW_SYMLINKS;
        pm_pipeline_stats st = { 0 };
        int ret = pmp_checksum(&p, paths, np, &st);
        cli_report_run(&r, ret, &st);
    }
    if (!pm_signals_caught(o->sig)) {
        settle_unread(&r, &cs, cs.n);
        summary(&r, &cs);
    }
    /* Mismatches and unread entries fail; the tally says so (exit 1). */
    r.tally.failed += cs.mismatched + cs.list_failed;
    r.tally.done -= cs.mismatched <= r.tally.done ? cs.mismatched : r.tally.done;
    if (cs.unreadable && !r.tally.failed)
        r.tally.failed = cs.unreadable;
    for (size_t i = 0; i < cs.n; i++)
        free(cs.e[i].path);
    free(cs.e);
    free(paths);
    return cli_report_finish(&r);
}

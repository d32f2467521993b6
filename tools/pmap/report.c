/* report.c - what the user sees: per-file messages, the -v lines, the
 * progress bar, the --json line and the exit status.
 *
 * Every hook here runs on the pipeline's calling thread (the main thread),
 * one call at a time, so the report needs no locking. Events arrive in
 * source order; each is counted (done, error, skip, warning) and the exit
 * status follows gzip: 1 if anything failed, else 2 if anything was skipped
 * or warned about, else 0. The progress bar lives on stderr's last line and
 * is erased before any other line is written to stderr or to a terminal
 * stdout, then redrawn by the next progress call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pmap/app.h>
#include <pmap/error.h>

#include "cli.h"

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- names ---- */

int cli_name_needs_escape(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            return 1;
    return 0;
}

/* ---- the progress bar ---- */

static void bar_clear(cli_report *r)
{
    if (r->bar_drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        r->bar_drawn = 0;
    }
}

void cli_report_before_stdout(cli_report *r)
{
    if (r->bar_drawn && isatty(STDOUT_FILENO))
        bar_clear(r);
}

/* Decimal units, as the MB/s figures. */
static void human(char *buf, size_t cap, double v)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB" };
    unsigned u = 0;
    while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1000.0;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void eta_text(char *buf, size_t cap, double secs)
{
    if (secs < 0 || secs > 360000.0) {
        snprintf(buf, cap, "--:--");
        return;
    }
    unsigned long s = (unsigned long)(secs + 0.5);
    if (s >= 3600)
        snprintf(buf, cap, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%lu:%02lu", s / 60, s % 60);
}

static void bar_draw(cli_report *r, const pm_progress *p)
{
    uint64_t done = r->base.bytes_read + p->bytes_done;
    uint64_t total = r->base.bytes_total + p->bytes_total;
    double elapsed = r->base.elapsed + p->elapsed;
    uint64_t files = r->base.files_done + p->files_done + p->files_failed + p->files_skipped;
    double frac = total ? (double)done / (double)total : 0.0;
    if (frac > 1.0)
        frac = 1.0;
    double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    char sdone[24], stotal[24], srate[24], seta[32], bar[21];
    human(sdone, sizeof sdone, (double)done);
    human(stotal, sizeof stotal, (double)total);
    human(srate, sizeof srate, rate);
    eta_text(seta, sizeof seta, rate > 0 ? (double)(total - (done < total ? done : total)) / rate : -1);
    int fill = (int)(frac * 20.0);
    for (int i = 0; i < 20; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    fprintf(stderr, "%s[%s] %3d%% %s / %s  %s/s  ETA %s  %llu files%s",
            r->bar_tty ? "\r" : "", bar, (int)(frac * 100.0), sdone, stotal, srate, seta,
            (unsigned long long)files, r->bar_tty ? "\033[K" : "\n");
    fflush(stderr);
    r->bar_drawn = r->bar_tty;
}

void cli_on_progress(const pm_progress *p, void *arg)
{
    cli_report *r = arg;
    if (!r->bar_enabled)
        return;
    /* Automatic mode: only jobs that last, and redraws at most 4 per second. */
    if (r->o->progress == CLI_PROGRESS_AUTO && r->base.elapsed + p->elapsed < 1.0)
        return;
    double now = cli_now();
    if (now - r->bar_last < (r->bar_tty ? 0.2 : 0.9))
        return;
    r->bar_last = now;
    bar_draw(r, p);
}

/* ---- messages ---- */

void cli_error(cli_report *r, const char *fmt, ...)
{
    bar_clear(r);
    fprintf(stderr, "%s %s: ", cli_argv0, r->cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    putc('\n', stderr);
}

/* The command's options that would have changed the outcome. */
static const char *hint(const pm_event *ev)
{
    switch (ev->reason) {
    case PM_REASON_SYMLINK:            return " (use -f to follow)";
    case PM_REASON_HARD_LINKS:
    case PM_REASON_SET_ID:             return " (use -f to force)";
    case PM_REASON_STDIN_NEEDS_STREAM: return " (use -c)";
    default:                           return "";
    }
}

static void file_message(cli_report *r, const pm_event *ev)
{
    bar_clear(r);
    const char *h = hint(ev);
    if (!*h) {
        pm_event_print(stderr, cli_argv0, ev);
        return;
    }
    fprintf(stderr, "%s: ", cli_argv0);
    pm_print_name(stderr, ev->path ? ev->path : "?");
    const char *msg = ev->message && *ev->message ? ev->message : pm_strerror(ev->err);
    fprintf(stderr, ": %s%s\n", msg, h);
}

static double ratio(uint64_t small, uint64_t big)
{
    return big ? 100.0 * (1.0 - (double)small / (double)big) : 0.0;
}

/* The -v line of a processed file, on stderr as gzip prints it. */
static void done_line(cli_report *r, const pm_event *ev)
{
    const pm_file *f = ev->file;
    uint64_t in = f ? f->bytes_in : 0, out = f ? f->bytes_out : 0;
    bar_clear(r);
    pm_print_name(stderr, ev->path);
    switch (r->style) {
    case CLI_DONE_TEST:
        fputs(":  OK", stderr);
        break;
    case CLI_DONE_COMPRESS:
    case CLI_DONE_DECOMPRESS:
        fprintf(stderr, ": %5.1f%%", r->style == CLI_DONE_COMPRESS ? ratio(out, in) : ratio(in, out));
        if (ev->out_path) {
            fputs(r->keep ? " -- created " : " -- replaced with ", stderr);
            pm_print_name(stderr, ev->out_path);
        }
        break;
    case CLI_DONE_SILENT:
        break;
    }
    putc('\n', stderr);
}

/* Remembers that an event accounted for error code err. */
static void note_err(cli_report *r, int err)
{
    unsigned e = (unsigned)(err < 0 ? -err : err);
    if (e && e < CLI_ERRNO_MAX)
        r->errs_seen[e / 8] |= (unsigned char)(1u << (e % 8));
}

static int err_seen(const cli_report *r, int err)
{
    unsigned e = (unsigned)(err < 0 ? -err : err);
    return e < CLI_ERRNO_MAX && (r->errs_seen[e / 8] & (1u << (e % 8)));
}

void cli_on_event(const pm_event *ev, void *arg)
{
    cli_report *r = arg;
    note_err(r, ev->err);
    pm_tally_event(&r->tally, ev);
    switch (ev->kind) {
    case PM_EVENT_DONE:
        if (r->o->verbose && r->style != CLI_DONE_SILENT)
            done_line(r, ev);
        break;
    case PM_EVENT_WARNING:
        if (!r->o->quiet)
            file_message(r, ev);
        if (r->o->verbose && r->style != CLI_DONE_SILENT)
            done_line(r, ev);
        break;
    case PM_EVENT_SKIP:
        if (ev->incidental) {        /* found by walking, not for this job: */
            if (r->o->verbose)       /* as gzip -r, no warning, no status 2 */
                file_message(r, ev);
            break;
        }
        if (!r->o->quiet)
            file_message(r, ev);
        break;
    case PM_EVENT_ERROR:
    default:
        file_message(r, ev);
        break;
    }
}

/* ---- runs and the end ---- */

void cli_report_init(cli_report *r, const cli_opts *o, cli_done_style style)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->cmd = o->cmd->name;
    r->style = style;
    r->sig = o->sig;
    r->keep = o->keep;
    r->t0 = cli_now();
    r->bar_tty = isatty(STDERR_FILENO);
    if (o->progress == CLI_PROGRESS_ON)
        r->bar_enabled = 1;
    else if (o->progress == CLI_PROGRESS_AUTO)
        r->bar_enabled = r->bar_tty && !o->quiet;
}

void cli_report_pipeline_opts(cli_report *r, pmp_opts *p)
{
    const cli_opts *o = r->o;
    p->pl.jobs = o->jobs;
    p->pl.chunk_size = o->chunk_size;
    p->pl.on_event = cli_on_event;
    p->pl.on_progress = cli_on_progress;
    p->pl.progress_interval = 0.2;
    p->pl.arg = r;
    p->signals = o->sig;
}

void cli_report_run(cli_report *r, int ret, const pm_pipeline_stats *st)
{
    if (st) {
        pm_pipeline_stats_add(&r->total, st);
        r->base.bytes_read += st->bytes_in;
        r->base.bytes_total += st->bytes_in;
        r->base.files_done += st->files_done + st->files_failed + st->files_skipped;
        r->base.elapsed += st->wall_seconds;
    }
    if (ret >= 0 || (ret == -ECANCELED && pm_signals_caught(r->sig)))
        return;
    /* A failure no file event explained: setup, the walk itself, memory. */
    if (!err_seen(r, ret)) {
        cli_error(r, "%s", pm_strerror(ret));
        r->tally.failed++;
    }
}

/* --json: the statistics line, on stderr or into --json=FILE; never on
 * stdout, which carries data or results. Returns 0, or -1 when FILE could
 * not be written (said on stderr). */
static int print_json(cli_report *r, int status, int signo)
{
    const cli_opts *o = r->o;
    FILE *f = o->json_file ? fopen(o->json_file, "w") : stderr;
    if (!f) {
        cli_error(r, "cannot write statistics to %s: %s", o->json_file, strerror(errno));
        return -1;
    }
    const pm_pipeline_stats *s = &r->total;
    double wall = s->wall_seconds > 0 ? s->wall_seconds : cli_now() - r->t0;
    double mbps = wall > 0 ? (double)s->bytes_in / 1e6 / wall : 0.0;
    fprintf(f, "{\"command\":\"%s\",\"exit\":%d,\"signal\":%d,"
            "\"files_ok\":%llu,\"files_failed\":%llu,\"files_skipped\":%llu,"
            "\"files_warned\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
            "\"wall_seconds\":%.6f,\"cpu_seconds\":%.6f,\"mb_per_s\":%.3f,"
            "\"chunks\":%llu,\"peak_live_chunks\":%zu}\n",
            r->cmd, status, signo,
            (unsigned long long)(r->tally.done + r->tally.warned),
            (unsigned long long)r->tally.failed, (unsigned long long)r->tally.skipped,
            (unsigned long long)r->tally.warned,
            (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
            wall, s->cpu_seconds, mbps, (unsigned long long)s->chunks,
            s->peak_live_chunks);
    int bad = f == stderr ? fflush(f) : fclose(f);
    if (bad && o->json_file) {
        cli_error(r, "cannot write statistics to %s: %s", o->json_file, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_report_finish(cli_report *r)
{
    int signo = pm_signals_caught(r->sig);
    int status = pm_tally_status(&r->tally, signo);   /* gzip's 0, 1, 2; 128 + N */
    bar_clear(r);
    if (r->o->json && print_json(r, status, signo) < 0 && !signo)
        status = CLI_EXIT_ERROR;
    if (signo)
        pm_signals_die(signo);
    return status;
}

/* report.c - events in words and the exit status (pmap/app.h): the parts
 * of reporting every program that runs pipelines shares. */
#include <stdio.h>

#include <pmap/app.h>
#include <pmap/error.h>

const char *pm_reason_name(pm_reason reason)
{
    switch (reason) {
    case PM_REASON_NONE:               return "none";
    case PM_REASON_SYMLINK:            return "symlink";
    case PM_REASON_NOT_REGULAR:        return "not-regular";
    case PM_REASON_HAS_SUFFIX:         return "has-suffix";
    case PM_REASON_OUTPUT_EXISTS:      return "output-exists";
    case PM_REASON_REFUSED:            return "refused";
    case PM_REASON_INPUT:              return "input";
    case PM_REASON_CHANGED:            return "changed";
    case PM_REASON_OUTPUT:             return "output";
    case PM_REASON_STAGE:              return "stage";
    case PM_REASON_STDIN_NEEDS_STREAM: return "stdin-needs-stream";
    case PM_REASON_CANCELLED:          return "cancelled";
    case PM_REASON_INPUT_KEPT:         return "input-kept";
    case PM_REASON_FILE_WARNING:       return "warning";
    case PM_REASON_HARD_LINKS:         return "hard-links";
    case PM_REASON_SET_ID:             return "set-id";
    case PM_REASON_TEMPORARY:          return "temporary";
    }
    return "unknown";
}

static int needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '\\';
}

void pm_print_name(FILE *out, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (!needs_escape(*p)) {
            const unsigned char *run = p;     /* one call for a run of plain bytes */
            while (p[1] && !needs_escape(p[1]))
                p++;
            fwrite(run, 1, (size_t)(p - run + 1), out);
            continue;
        }
        switch (*p) {
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default: fprintf(out, "\\%03o", *p); break;
        }
    }
}

void pm_event_print(FILE *out, const char *prog, const pm_event *ev)
{
    if (prog)
        fprintf(out, "%s: ", prog);
    pm_print_name(out, ev->path ? ev->path : "?");
    const char *msg = ev->message && *ev->message ? ev->message : pm_strerror(ev->err);
    fprintf(out, ": %s\n", msg);
}

void pm_tally_event(pm_tally *t, const pm_event *ev)
{
    switch (ev->kind) {
    case PM_EVENT_DONE:    t->done++; break;
    case PM_EVENT_WARNING: t->warned++; break;
    case PM_EVENT_SKIP:
        if (!ev->incidental)
            t->skipped++;
        break;
    case PM_EVENT_ERROR:
    default:               t->failed++; break;
    }
}

int pm_tally_status(const pm_tally *t, int signo)
{
    if (signo)
        return 128 + signo;
    if (t->failed)
        return 1;
    return t->skipped || t->warned ? 2 : 0;
}

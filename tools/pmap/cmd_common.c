/* cmd_common.c - what compress and decompress share: running a pipeline
 * over operands in which "-" (stdin) may be mixed with paths.
 *
 * A pipeline has one sink for the whole run, while gzip writes stdin to
 * stdout and files next to themselves in the same invocation. So the
 * operands are split into maximal runs of "-" and of other paths, in order,
 * and each run is one pipeline call: stdin runs go to stdout (inputs kept),
 * the others as the options say. With a single kind of operand (the usual
 * case) this is exactly one call.
 */
#include <string.h>

#include "cli.h"

static int is_stdin(const char *path)
{
    return !strcmp(path, "-");
}

int cli_has_stdin(const cli_opts *o)
{
    if (!o->npaths)
        return 1;
    for (size_t i = 0; i < o->npaths; i++)
        if (is_stdin(o->paths[i]))
            return 1;
    return 0;
}

void cli_run_split(cli_report *r, cli_pipeline_fn fn, const pmp_opts *p, const cli_opts *o)
{
    static const char *const only_stdin[] = { "-" };
    const char *const *paths = o->npaths ? o->paths : only_stdin;
    size_t n = o->npaths ? o->npaths : 1;
    for (size_t i = 0; i < n && !pm_signals_caught(r->sig);) {
        size_t j = i + 1;
        while (j < n && is_stdin(paths[j]) == is_stdin(paths[i]))
            j++;
        pmp_opts q = *p;
        if (is_stdin(paths[i]) && !q.test_only && !q.list) {
            q.to_stdout = 1;
            q.pl.flags &= ~PM_PL_REMOVE_INPUT;
        }
        pm_pipeline_stats st;
        memset(&st, 0, sizeof st);
        int ret = fn(&q, paths + i, j - i, &st);
        cli_report_run(r, ret, &st);
        i = j;
    }
}

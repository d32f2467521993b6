/* main.c - the pmap command: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include <pmap/pmap.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: pmap [--version] [--help] COMMAND [options] [PATH...]\n"
        "\n"
        "Data-parallel batch processing over files and directories.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("pmap %s\n", PM_VERSION_STRING);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "pmap: unknown command '%s' (see pmap --help)\n", argv[1]);
    return 1;
}

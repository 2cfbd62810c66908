/* cxrseg: the command-line program. main() only parses the global options and dispatches to the
 * subcommand table below; each subcommand is a cmd_*.c file. exit() is called here only, with the
 * exit codes documented in --help and docs/cli.md. */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv); /* NULL when the command is not built into this binary */
    const char *args;
    const char *summary;
} cli_command;

static const char *const HELP_TAIL =
    "\n"
    "Global options (before the command):\n"
    "  -v, --verbose     log debug messages on stderr\n"
    "  -q, --quiet       log errors only\n"
    "  -h, --help        this help;  cxrseg COMMAND --help: help on one command\n"
    "  -V, --version     print the version\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  usage error (bad command line or option value)\n"
    "  2  input or I/O error (file missing, unreadable, malformed, or output not writable)\n"
    "  3  unsupported input (colour, multi-frame, unknown transfer syntax) or command not built\n"
    "  4  configuration error\n"
    "  5  model error\n"
    "  6  internal error (out of memory, or a bug)\n"
    "\n"
    "Environment: DCMDICTPATH (DCMTK data dictionary; Debian: /usr/share/libdcmtk17/dicom.dic).\n"
    "See docs/cli.md for details and examples.\n";

static int cmd_help(int argc, char **argv);

/* The dispatch table. Optional commands are weak symbols (cli.h): NULL when their file is not
 * linked in, and then listed as "(not built)". */
static const cli_command commands[] = {
    {"info", cx_cli_info, "FILE [--json]", "show the attributes of a DICOM file (or size of a PNG/JPEG)"},
    {"render", cx_cli_render, "FILE -o OUT.png [--size N] [...]", "write the windowed image (as the engine sees it)"},
    {"check-config", cx_cli_check_config, "FILE", "validate a configuration file, report errors as file:line"},
    {"detect", cx_cli_detect, "FILE ...", "run the model on an image and report the findings"},
    {"segment", cx_cli_segment, "FILE|DIR -o DIR [--model M]", "write SEG, SR (and GSPS, SC) and an overlay for DICOM images"},
    {"eval", cx_cli_eval, "--model M --data DIR ...", "validation figures of a model on an annotated dataset"},
    {"help", cmd_help, "[COMMAND]", "show help"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *out)
{
    fprintf(out, "Usage: cxrseg [GLOBAL OPTIONS] COMMAND [ARGS]\n"
                 "cxrseg %s: chest X-ray segmentation (lung fields and the model's findings), DICOM in, SEG/SR out.\n\n"
                 "Commands:\n",
            PACKAGE_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const cli_command *c = &commands[i];
        char head[64];
        snprintf(head, sizeof head, "%s %s", c->name, c->args);
        fprintf(out, "  %-40s %s%s\n", head, c->summary, c->fn ? "" : " (not built)");
    }
    fputs(HELP_TAIL, out);
}

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stdout);
        return CX_EXIT_OK;
    }
    const cli_command *c = find_command(argv[1]);
    int (*fn)(int, char **) = c ? c->fn : NULL;
    if (!c)
        return cx_cli_usage("help", "unknown command '%s'", argv[1]);
    if (!fn || fn == cmd_help) {
        print_help(stdout);
        return CX_EXIT_OK;
    }
    char *sub[] = {argv[1], (char *)"--help", NULL};
    return fn(2, sub);
}

int cx_cli_exit_code(cx_status s)
{
    switch (s) {
    case CX_OK: return CX_EXIT_OK;
    case CX_ERR_IO:
    case CX_ERR_FORMAT:
    case CX_ERR_DICOM:
    case CX_ERR_NETWORK:
    case CX_ERR_TIMEOUT:
    case CX_ERR_FULL: return CX_EXIT_INPUT;
    case CX_ERR_UNSUPPORTED: return CX_EXIT_UNSUPPORTED;
    case CX_ERR_CONFIG: return CX_EXIT_CONFIG;
    case CX_ERR_MODEL: return CX_EXIT_MODEL;
    case CX_ERR_INVALID: return CX_EXIT_USAGE;
    case CX_ERR_NOMEM:
    case CX_ERR_INTERNAL: return CX_EXIT_INTERNAL;
    }
    return CX_EXIT_INTERNAL;
}

int cx_cli_fail(const char *cmd, const cx_error *e)
{
    fprintf(stderr, "cxrseg %s: %s\n", cmd, e->msg[0] ? e->msg : cx_status_name(e->code));
    return cx_cli_exit_code(e->code);
}

int cx_cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cxrseg%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see: cxrseg%s%s --help)\n", cmd ? " " : "", cmd ? cmd : "");
    va_end(ap);
    return CX_EXIT_USAGE;
}

int cx_cli_getopt(const char *cmd, int argc, char **argv, const char *shorts, const struct option *longs)
{
    char msg[200];
    int c = cx_getopt(argc, argv, shorts, longs, msg, sizeof msg);
    if (c == '?')
        cx_cli_usage(cmd, "%s", msg);
    return c;
}

int cx_cli_parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cx_cli_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {{"help", no_argument, NULL, 'h'},
                                          {"version", no_argument, NULL, 'V'},
                                          {"verbose", no_argument, NULL, 'v'},
                                          {"quiet", no_argument, NULL, 'q'},
                                          {NULL, 0, NULL, 0}};
    const char *name = NULL;
    int c;
    cx_log_set_level(CX_LOG_WARN);
    optind = 0;
    while (!name && (c = cx_cli_getopt(NULL, argc, argv, "hVvq", longs)) != -1) {
        switch (c) {
        case 'h': print_help(stdout); return CX_EXIT_OK;
        case 'V': printf("cxrseg %s\n", PACKAGE_VERSION); return CX_EXIT_OK;
        case 'v': cx_log_set_level(CX_LOG_DEBUG); break;
        case 'q': cx_log_set_level(CX_LOG_ERROR); break;
        case 1: name = optarg; break; /* the command: its arguments are its own */
        default: return CX_EXIT_USAGE;
        }
    }
    if (!name) {
        print_help(stderr);
        return CX_EXIT_USAGE;
    }
    const cli_command *cmd = find_command(name);
    if (!cmd)
        return cx_cli_usage(NULL, "unknown command '%s'", name);
    int (*fn)(int, char **) = cmd->fn;
    if (!fn) {
        fprintf(stderr, "cxrseg: command '%s' is not built into this binary\n", cmd->name);
        return CX_EXIT_UNSUPPORTED;
    }
    int i = optind - 1; /* argv[i] is the command */
    return fn(argc - i, argv + i);
}

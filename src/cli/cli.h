/* cli.h: what the `cxrseg` subcommands share: the documented exit codes, the status -> exit code
 * rule, and the subcommand entry points. Each subcommand lives in its own cmd_*.c and is called
 * as fn(argc, argv) with argv[0] = the subcommand's name and argv[1..] its own arguments; it
 * returns the process exit code (it never calls exit()). */
#ifndef CX_CLI_H
#define CX_CLI_H

#include "cx_base.h"
#include "cx_getopt.h"
#include <stdio.h>

/* Exit codes (documented in --help and docs/cli.md; stable). */
enum {
    CX_EXIT_OK = 0,
    CX_EXIT_USAGE = 1,       /* bad command line */
    CX_EXIT_INPUT = 2,       /* input or I/O error: unreadable, malformed, cannot write */
    CX_EXIT_UNSUPPORTED = 3, /* well-formed input the program does not handle (colour, multi-frame) */
    CX_EXIT_CONFIG = 4,      /* configuration invalid */
    CX_EXIT_MODEL = 5,       /* model file invalid or inconsistent */
    CX_EXIT_INTERNAL = 6     /* out of memory or a bug */
};

/* IO, FORMAT, DICOM, NETWORK, TIMEOUT, FULL -> 2; UNSUPPORTED -> 3; CONFIG -> 4; MODEL -> 5;
 * INVALID -> 1 (an argument the library refused); NOMEM, INTERNAL -> 6. */
int cx_cli_exit_code(cx_status s);

/* Prints "cxrseg <cmd>: <message>" on stderr and returns cx_cli_exit_code(e->code). */
int cx_cli_fail(const char *cmd, const cx_error *e);
/* Prints "cxrseg <cmd>: <formatted>" and a hint to run --help on stderr; returns CX_EXIT_USAGE.
 * cmd NULL: "cxrseg: <formatted> (see: cxrseg --help)", for the global options. */
int cx_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cx_getopt (cx_getopt.h: arguments in order, a positional one as 1 in optarg, -1 at the end)
 * that prints a bad option as a usage error of cmd before returning '?' for it. Each subcommand
 * sets optind = 0 before its first call (main() has parsed the global options with it). */
int cx_cli_getopt(const char *cmd, int argc, char **argv, const char *shorts, const struct option *longs);

/* Strict number parsing for options: whole string, range-checked. Return 0 on success. */
int cx_cli_parse_int(const char *s, long lo, long hi, long *out);
int cx_cli_parse_double(const char *s, double *out);

/* Subcommands. Those defined in optional files are weak: when their file is not linked in, the
 * symbol is NULL and the dispatcher says the command is not built (exit 3). */
int cx_cli_info(int argc, char **argv);
int cx_cli_render(int argc, char **argv);
int cx_cli_check_config(int argc, char **argv) __attribute__((weak)); /* src/cli/cmd_config.c */
int cx_cli_detect(int argc, char **argv) __attribute__((weak));       /* src/cli/cmd_detect.c */
int cx_cli_eval(int argc, char **argv) __attribute__((weak));         /* src/cli/cmd_eval.c */
int cx_cli_segment(int argc, char **argv) __attribute__((weak));      /* src/cli/cmd_segment.c */

#endif

/* cx_getopt: getopt_long(3) for the programs' command lines (cxrseg, cxrseg-node), with one wording
 * for the errors. Libc only; like getopt, not thread-safe (command lines are parsed in main()). */
#ifndef CX_GETOPT_H
#define CX_GETOPT_H

#include <getopt.h>
#include <stddef.h>

/* Set optind = 0 before the first call of a scan (glibc's full reset); argv[0] is skipped.
 * Arguments come back in order, options and positional arguments mixed as on the command line
 * (POSIXLY_CORRECT does not change that): an option as getopt_long returns it (its letter, or its
 * long option's val), a positional argument, also one after "--", as 1 with optarg pointing at it;
 * -1 at the end. Long options may be abbreviated to a unique prefix and take "--name=value".
 * A bad option comes back as '?' with msg holding "unknown option '--foo'", "unknown option '-x'",
 * "ambiguous option '--m'", "option --model needs a value" or "option --json takes no value".
 * shorts: getopt's letters and colons ("ho:"), without a leading '+', '-' or ':'. Each long
 * option's flag must be NULL and its val nonzero: its letter, or a code >= 256 when long-only. */
int cx_getopt(int argc, char **argv, const char *shorts, const struct option *longs, char *msg, size_t msg_size);

#endif

/* cx_getopt: see cx_getopt.h. Relies on glibc's getopt_long: "-" first in optstring returns
 * positional arguments in order (as 1), ":" next returns ':' for a missing value, and after an
 * error optopt is the letter or long option's val (0 for an unknown or ambiguous long option). */
#include "config.h"
#include "cx_getopt.h"

#include <stdio.h>
#include <string.h>

static int after_dashes; /* getopt_long has returned -1: what is left (after "--") is positional */

/* What went wrong, in words. getopt_long has consumed the element it failed on, argv[optind - 1],
 * except for an unknown letter inside a group ("-xq"), which is named by optopt. */
static void describe(int c, char **argv, const struct option *longs, char *msg, size_t size)
{
    const char *a = argv[optind - 1];
    int is_long = a[0] == '-' && a[1] == '-';
    if (c == ':') {
        if (is_long)
            snprintf(msg, size, "option %s needs a value", a);
        else
            snprintf(msg, size, "option -%c needs a value", optopt);
    } else if (optopt == 0) {
        size_t len = strcspn(a + 2, "=");
        int matches = 0;
        for (const struct option *o = longs; o && o->name; o++)
            matches += strncmp(o->name, a + 2, len) == 0;
        snprintf(msg, size, "%s option '%s'", matches > 1 ? "ambiguous" : "unknown", a);
    } else {
        if (is_long && strchr(a, '='))
            for (const struct option *o = longs; o && o->name; o++)
                if (o->val == optopt && o->has_arg == no_argument) {
                    snprintf(msg, size, "option --%s takes no value", o->name);
                    return;
                }
        snprintf(msg, size, "unknown option '-%c'", optopt);
    }
}

int cx_getopt(int argc, char **argv, const char *shorts, const struct option *longs, char *msg, size_t msg_size)
{
    if (optind == 0)
        after_dashes = 0;
    if (!after_dashes) {
        char spec[64];
        snprintf(spec, sizeof spec, "-:%s", shorts);
        opterr = 0;
        int c = getopt_long(argc, argv, spec, longs, NULL);
        if (c == '?' || c == ':') {
            describe(c, argv, longs, msg, msg_size);
            return '?';
        }
        if (c != -1)
            return c;
        after_dashes = 1;
    }
    if (optind < argc) {
        optarg = argv[optind++];
        return 1;
    }
    return -1;
}

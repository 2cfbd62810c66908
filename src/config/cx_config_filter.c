/* cx_config_filter.c: the per-object filters of <filters> (modality, body part, view position,
 * image size, series description), applied to each received object. */
#include "config.h"
#include "cx_config.h"
#include "cx_config_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
/* ------------------------------------------------------------------------------------------ */
/* Filters                                                                                     */

const char *cx_config_action_name(cx_config_action a)
{
    switch (a) {
    case CX_ACTION_PROCESS: return "process";
    case CX_ACTION_SKIP: return "skip";
    case CX_ACTION_REJECT: return "reject";
    }
    return "unknown";
}

/* Copies a DICOM string value without leading/trailing spaces. */
static void trim_copy(const char *s, char *buf, size_t size)
{
    buf[0] = 0;
    if (!s)
        return;
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
}

static void list_text(const cx_config_strings *s, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < s->count && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", s->items[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static cx_config_action rule_check(const cx_config_value_rule *r, const char *what, const char *element,
                                   const char *value, char *why, size_t why_size)
{
    char v[80], list[200];
    if (!r->accept.count)
        return CX_ACTION_PROCESS;
    trim_copy(value, v, sizeof v);
    if (!v[0]) {
        if (r->when_empty != CX_ACTION_PROCESS && why)
            snprintf(why, why_size, "%s is empty (filters/%s/when-empty)", what, element);
        return r->when_empty;
    }
    for (size_t i = 0; i < r->accept.count; i++)
        if (strcasecmp(r->accept.items[i], v) == 0)
            return CX_ACTION_PROCESS;
    if (why) {
        list_text(&r->accept, list, sizeof list);
        snprintf(why, why_size, "%s '%s' not in %s (filters/%s)", what, v, list, element);
    }
    return r->otherwise;
}

cx_config_action cx_config_filter(const cx_config_filters *f, const cx_config_object *obj, char *why,
                                  size_t why_size)
{
    if (why && why_size)
        why[0] = 0;
    else
        why = NULL;
    cx_config_action a;
    if ((a = rule_check(&f->modality, "modality", "modality", obj->modality, why, why_size)) != CX_ACTION_PROCESS)
        return a;
    if ((a = rule_check(&f->body_part, "body part", "body-part", obj->body_part, why, why_size)) !=
        CX_ACTION_PROCESS)
        return a;
    if ((a = rule_check(&f->view_position, "view position", "view-position", obj->view_position, why,
                        why_size)) != CX_ACTION_PROCESS)
        return a;
    if (obj->rows > 0 && obj->columns > 0 && (obj->rows < f->min_rows || obj->columns < f->min_columns)) {
        if (why)
            snprintf(why, why_size, "image %d x %d (rows x columns) smaller than %d x %d (filters/minimum-size)",
                     obj->rows, obj->columns, f->min_rows, f->min_columns);
        return f->size_otherwise;
    }
    if (f->series_include.count || f->series_exclude.count) {
        char d[80];
        trim_copy(obj->series_description, d, sizeof d);
        int included = f->series_include.count == 0;
        for (size_t i = 0; i < f->series_include.count && !included; i++)
            included = fnmatch(f->series_include.items[i], d, FNM_CASEFOLD) == 0;
        if (!included) {
            if (why)
                snprintf(why, why_size, "series description '%s' matches no <include> (filters/series-description)",
                         d);
            return f->series_otherwise;
        }
        for (size_t i = 0; i < f->series_exclude.count; i++)
            if (fnmatch(f->series_exclude.items[i], d, FNM_CASEFOLD) == 0) {
                if (why)
                    snprintf(why, why_size, "series description '%s' matches <exclude> '%s' "
                             "(filters/series-description)", d, f->series_exclude.items[i]);
                return f->series_otherwise;
            }
    }
    return CX_ACTION_PROCESS;
}

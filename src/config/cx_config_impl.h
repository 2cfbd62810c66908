/* cx_config_impl.h: what the configuration loader's parts share (not installed, not for callers).
 * cx_config.c parses, validates and fills the struct through the option table; cx_config_rules.c
 * checks the rules that involve several fields; cx_config_filter.c applies the per-object filters. */
#ifndef CX_CONFIG_IMPL_H
#define CX_CONFIG_IMPL_H

#include "cx_config.h"

#include <libxml/tree.h>
#include <stddef.h>

/* Loader state. */
typedef struct ld {
    const char *file;        /* the conf path as given, for messages */
    cx_config_errors *errs;
    size_t nerr;             /* errors this load added (errs may be shared or full) */
    int nomem;
    int parse_errors;        /* well-formedness errors seen (only the first is reported) */
    int last_schema_line;    /* line of the last schema error (to drop libxml2's echo) */
    cx_config *cfg;
    xmlNode *root;
} ld;

/* An error (or warning) at a line of the file (0: the file as a whole). */
void ld_err(ld *l, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ld_warn(ld *l, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* cx_strdup that records an allocation failure in l. */
char *ld_strdup(ld *l, const char *s);
/* Appends a copy of v; -1 (and l->nomem) when out of memory. */
int cfg_strings_add(ld *l, cx_config_strings *s, const char *v);

/* The XML tree: element name test, first child element of that name, a '/'-separated path below
 * `from`, an element's line, the line of a path below the root (0 when absent), trimmed text. */
int cfg_is_elem(const xmlNode *n, const char *name);
xmlNode *cfg_child(xmlNode *parent, const char *name);
xmlNode *cfg_find_path(xmlNode *from, const char *path);
int cfg_line_of(const xmlNode *n);
int cfg_line_at(ld *l, const char *path);
void cfg_text_of(xmlNode *n, char *buf, size_t size);

/* dir/name, or name when absolute; NULL (and l->nomem) when out of memory. */
char *cfg_path_join(ld *l, const char *dir, const char *name);
/* The model file when the conf names none: ../models next to the conf, then the installed one. */
void cfg_default_model(ld *l);

/* cx_config_rules.c: every rule that involves several fields, run after the table filled cfg. */
void cfg_check_rules(ld *l);

#endif

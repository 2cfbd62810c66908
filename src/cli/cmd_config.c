/* `cxrseg check-config [--xsd SCHEMA] FILE`: loads the configuration exactly as the node and the
 * plugin do (cx_config_load) and prints "FILE: OK" with a short summary of what the node will do,
 * (and any warnings on stderr), or every problem as "file:line: message" on stderr. Exit 0 valid, 4 invalid, 2 unreadable,
 * 1 usage, 6 out of memory. */
#include "config.h"
#include "cli.h"
#include "cx_config.h"

#include <stdio.h>
#include <stdlib.h>

static void print_list(FILE *o, const cx_config_strings *s, const char *none)
{
    if (!s->count) {
        fputs(none, o);
        return;
    }
    for (size_t i = 0; i < s->count; i++)
        fprintf(o, "%s%s", i ? ", " : "", s->items[i]);
}

static void print_outputs(FILE *o, unsigned bits)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {CX_OUTPUT_SEG, "seg"}, {CX_OUTPUT_SR, "sr"}, {CX_OUTPUT_GSPS, "gsps"}, {CX_OUTPUT_SC, "sc"}};
    int first = 1;
    for (size_t i = 0; i < 4; i++)
        if (bits & names[i].bit) {
            fprintf(o, "%s%s", first ? "" : " ", names[i].name);
            first = 0;
        }
    if (first)
        fputs("nothing", o);
}

static void print_rule(FILE *o, const char *what, const cx_config_value_rule *r)
{
    fprintf(o, "%s ", what);
    print_list(o, &r->accept, "any");
    if (r->accept.count)
        fprintf(o, " (else %s)", cx_config_action_name(r->otherwise));
}

static void print_summary(FILE *o, const cx_config *c)
{
    const cx_config_listener *li = &c->listener;
    fprintf(o, "  listener:     %s on %s:%d, %zu transfer syntaxes, calling AE: ", li->ae_title,
            li->bind_address, li->port, li->transfer_syntaxes.count);
    print_list(o, &li->allowed_calling_ae_titles, "any");
    fputs(", hosts: ", o);
    print_list(o, &li->allowed_hosts, "any");
    fputs("\n  filters:      ", o);
    print_rule(o, "modality", &c->filters.modality);
    fputs("; ", o);
    print_rule(o, "body part", &c->filters.body_part);
    fputs("; ", o);
    print_rule(o, "view", &c->filters.view_position);
    fprintf(o, "; at least %d x %d\n", c->filters.min_rows, c->filters.min_columns);

    const cx_config_destinations *ds = &c->destinations;
    fprintf(o, "  destinations: %zu", ds->count);
    for (size_t i = 0; i < ds->count; i++) {
        const cx_config_destination *d = &ds->items[i];
        fprintf(o, "%s %s = %s@%s:%d (", i ? "," : ":", d->name, d->ae_title, d->host, d->port);
        print_outputs(o, d->outputs);
        fprintf(o, "%s)", d->send_results ? "" : ", not used");
    }
    fprintf(o, "; return to sender: %zu", ds->sender_count);
    for (size_t i = 0; i < ds->sender_count; i++)
        fprintf(o, "%s %s -> %s@%s:%d", i ? "," : ":", ds->senders[i].calling_ae_title, ds->senders[i].ae_title,
                ds->senders[i].host, ds->senders[i].port);
    fprintf(o, "\n  retry:        after %d s, x%g, at most %d s apart, %d attempts\n", ds->retry.initial_delay_s,
            ds->retry.factor, ds->retry.max_delay_s, ds->retry.max_attempts);
    fprintf(o, "  spool:        %s (quota %lld MB, keep %lld MB free, at most %d queued)\n", c->spool.directory,
            c->spool.quota_mb, c->spool.min_free_disk_mb, c->spool.max_queued_items);
    fprintf(o, "  workers:      %d x %d thread(s), job timeout %d s\n", c->workers.count,
            c->workers.threads_per_worker, c->workers.job_timeout_s);
    fprintf(o, "  model:        %s", c->model.file);
    for (size_t i = 0; i < c->model.threshold_count; i++)
        fprintf(o, "%s %s >= %g", i ? "," : "; thresholds:", c->model.thresholds[i].class_name,
                c->model.thresholds[i].score);
    unsigned outs = (c->outputs.seg.enabled ? CX_OUTPUT_SEG : 0) | (c->outputs.sr.enabled ? CX_OUTPUT_SR : 0) |
                    (c->outputs.gsps.enabled ? CX_OUTPUT_GSPS : 0) | (c->outputs.sc.enabled ? CX_OUTPUT_SC : 0);
    fputs("\n  outputs:      ", o);
    print_outputs(o, outs);
    fprintf(o, ", UID root %s\n", c->outputs.uid_root);
    fprintf(o, "  logging:      %s to %s\n", cx_log_level_name(c->logging.level),
            c->logging.target == CX_LOG_TO_FILE ? c->logging.file
            : c->logging.target == CX_LOG_TO_SYSLOG ? "syslog" : "stderr");
}

int cx_cli_check_config(int argc, char **argv)
{
    const char *cmd = "check-config";
    static const struct option longs[] = {{"xsd", required_argument, NULL, 256}, {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *xsd = NULL, *file = NULL;
    int c;
    optind = 0;
    while ((c = cx_cli_getopt(cmd, argc, argv, "h", longs)) != -1) {
        switch (c) {
        case 256: xsd = optarg; break;
        case 'h':
            printf("usage: cxrseg check-config [--xsd SCHEMA] FILE\n"
                   "Checks a cxrseg configuration file against its schema and rules.\n"
                   "The schema is --xsd, else $CXRSEG_XSD, else %s/cxrseg.xsd, else next to FILE.\n"
                   "Exit: 0 valid, 4 invalid (each error printed as file:line: message),\n"
                   "      2 file unreadable or schema not found, 1 usage, 6 out of memory.\n",
#ifdef CX_DATADIR
                   CX_DATADIR
#else
                   "/usr/share/cxrseg"
#endif
            );
            return CX_EXIT_OK;
        case 1:
            if (file)
                return cx_cli_usage(cmd, "one configuration file at a time ('%s' and '%s')", file, optarg);
            file = optarg;
            break;
        default: return CX_EXIT_USAGE;
        }
    }
    if (!file)
        return cx_cli_usage(cmd, "which configuration file? (cxrseg check-config FILE)");

    /* 40 kB: not on the stack of a program that may run with a small one. */
    cx_config_errors *errs = malloc(sizeof *errs);
    if (!errs) {
        fprintf(stderr, "cxrseg %s: out of memory\n", cmd);
        return CX_EXIT_INTERNAL;
    }
    cx_config_errors_clear(errs);
    cx_config *cfg = NULL;
    cx_status st = cx_config_load(file, xsd, &cfg, errs);
    if (st == CX_OK) {
        printf("%s: OK\n", file);
        print_summary(stdout, cfg);
        for (size_t i = 0; i < cfg->warnings.count; i++)
            fprintf(stderr, "%s\n", cfg->warnings.items[i]);
        cx_config_free(cfg);
    } else {
        for (size_t i = 0; i < errs->count; i++)
            fprintf(stderr, "%s\n", errs->items[i].text);
        if (errs->dropped)
            fprintf(stderr, "%s: ... and %zu more errors\n", file, errs->dropped);
        size_t n = errs->count + errs->dropped;
        fprintf(stderr, "cxrseg %s: %s: %zu error%s, not valid\n", cmd, file, n, n == 1 ? "" : "s");
    }
    free(errs);
    return cx_cli_exit_code(st);
}

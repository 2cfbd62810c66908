# src/cli: the `cxrseg` command-line program. main() and the dispatch table are in cxrseg.c; each
# subcommand is a cmd_*.c file. The program contains C++ (the DICOM layer): link with $(CXX).
#
# Adding a subcommand from another module (its file defines `int cx_cli_NAME(int argc, char **argv)`,
# declared weak in cli.h, so the program builds with or without it):
#   cxrseg_SOURCES += src/cli/cmd_config.c
#   cxrseg_LDADD += $(XML_LIBS)   (and the module's library in the one list of cxrseg_LDADD below)
# (append such lines at the end of this file; keep $(CUNIT_LIBS) out of it).
bin_PROGRAMS += cxrseg
cxrseg_SOURCES = src/cli/cxrseg.c src/cli/cli.h src/cli/cmd_info.c src/cli/cmd_render.c
cxrseg_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/cli -I$(top_srcdir)/src/pipeline \
	-I$(top_srcdir)/src/image -I$(top_srcdir)/dicom $(JANSSON_CFLAGS)
# One ordered list of the modules the commands call (eval's and the pipeline's); no association code.
cxrseg_LDADD = src/eval/libcxeval.la $(CX_PIPELINE_LIBS) $(JANSSON_LIBS) -lm
nodist_EXTRA_cxrseg_SOURCES = dummy.cxx

# Tests that run the real binary and match its messages and exit codes.
TESTS += tests/cli_usage.sh tests/cli_render.sh
EXTRA_DIST += tests/cli_usage.sh tests/cli_render.sh tests/cli_lib.sh docs/cli.md

# check-config (owned by the config module: src/cli/cmd_config.c)
cxrseg_SOURCES += src/cli/cmd_config.c
cxrseg_CPPFLAGS += -I$(top_srcdir)/src/config
cxrseg_LDADD += $(XML_LIBS)

# eval (owned by the model module: src/cli/cmd_eval.c over src/eval)
cxrseg_SOURCES += src/cli/cmd_eval.c
cxrseg_CPPFLAGS += -I$(top_srcdir)/src/eval -I$(top_srcdir)/src/mrcnn

# detect (owned by the engine: src/cli/cmd_detect.c over src/mrcnn)
cxrseg_CPPFLAGS += -I$(top_srcdir)/src/mrcnn
cxrseg_SOURCES += src/cli/cmd_detect.c
cxrseg_LDADD += $(OPENBLAS_LIBS)
TESTS += tests/cli_detect.sh tests/cli_detect_reported.sh
EXTRA_DIST += tests/cli_detect.sh tests/cli_detect_reported.sh

# segment (owned by the results work: src/cli/cmd_segment.c over src/pipeline/segment.c)
cxrseg_SOURCES += src/cli/cmd_segment.c
TESTS += tests/results_segment.sh
EXTRA_DIST += tests/results_segment.sh

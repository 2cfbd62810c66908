# tests/fuzz: libFuzzer harnesses over what reads untrusted bytes (see tests/fuzz/README.md).
# make check: each harness linked with a replay driver (replay.c) built by the normal compiler,
# run over its saved corpus and crash reproducers. make fuzz: the same harnesses built with clang,
# libFuzzer, ASan and UBSan by tests/fuzz/fuzz.mk in $(builddir)/tests/fuzz/build (own objects, so
# the normal build is untouched), each run FUZZ_SECONDS on a copy of its corpus.

FUZZ_HARNESSES = dicom_file dicom_memory config model plugin_json
FUZZ_COMMON = tests/fuzz/fuzz.h tests/fuzz/replay.c

check_PROGRAMS += tests/fuzz/replay_dicom_file tests/fuzz/replay_dicom_memory tests/fuzz/replay_config \
	tests/fuzz/replay_model tests/fuzz/replay_plugin_json
TESTS += tests/fuzz/replay_dicom_file tests/fuzz/replay_dicom_memory tests/fuzz/replay_config \
	tests/fuzz/replay_model tests/fuzz/replay_plugin_json

FUZZ_DICOM_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz -I$(top_srcdir)/dicom -I$(top_srcdir)/src/image \
	-I$(top_srcdir)/src/pipeline -DCX_FUZZ_SRCDIR='"$(abs_top_srcdir)"'
tests_fuzz_replay_dicom_file_SOURCES = $(FUZZ_COMMON) tests/fuzz/fuzz_dicom.h tests/fuzz/dicom_file.c
tests_fuzz_replay_dicom_file_CPPFLAGS = $(FUZZ_DICOM_CPPFLAGS) -DCX_FUZZ_NAME='"dicom_file"'
tests_fuzz_replay_dicom_file_LDADD = $(CX_PIPELINE_LIBS)
nodist_EXTRA_tests_fuzz_replay_dicom_file_SOURCES = dummy.cxx
tests_fuzz_replay_dicom_memory_SOURCES = $(FUZZ_COMMON) tests/fuzz/fuzz_dicom.h tests/fuzz/dicom_memory.c
tests_fuzz_replay_dicom_memory_CPPFLAGS = $(FUZZ_DICOM_CPPFLAGS) -DCX_FUZZ_NAME='"dicom_memory"'
tests_fuzz_replay_dicom_memory_LDADD = $(CX_PIPELINE_LIBS)
nodist_EXTRA_tests_fuzz_replay_dicom_memory_SOURCES = dummy.cxx

tests_fuzz_replay_config_SOURCES = $(FUZZ_COMMON) tests/fuzz/config.c
tests_fuzz_replay_config_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz -I$(top_srcdir)/src/config \
	$(XML_CFLAGS) -DCX_FUZZ_SRCDIR='"$(abs_top_srcdir)"' -DCX_FUZZ_NAME='"config"'
tests_fuzz_replay_config_LDADD = $(CX_CONFIG_LIBS) $(XML_LIBS) $(CRYPTO_LIBS)

tests_fuzz_replay_model_SOURCES = $(FUZZ_COMMON) tests/fuzz/model.c
tests_fuzz_replay_model_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz -I$(top_srcdir)/src/nn \
	-I$(top_srcdir)/src/mrcnn -DCX_FUZZ_SRCDIR='"$(abs_top_srcdir)"' -DCX_FUZZ_NAME='"model"'
tests_fuzz_replay_model_LDADD = $(CX_MRCNN_LIBS)

tests_fuzz_replay_plugin_json_SOURCES = $(FUZZ_COMMON) tests/fuzz/plugin_json.c plugin/exchange.c plugin/exchange.h
tests_fuzz_replay_plugin_json_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz -I$(top_srcdir)/plugin \
	$(JANSSON_CFLAGS) -DCX_FUZZ_SRCDIR='"$(abs_top_srcdir)"' -DCX_FUZZ_NAME='"plugin_json"'
tests_fuzz_replay_plugin_json_LDADD = src/base/libcxbase.la $(JANSSON_LIBS)

# The clang build compiles the modules' own source lists (a file added to a module is picked up).
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_CXX = clang++
FUZZ_SRCLIST = $(src_base_libcxbase_la_SOURCES) $(src_config_libcxconfig_la_SOURCES) \
	$(src_image_libcximage_la_SOURCES) $(src_nn_libcxnn_la_SOURCES) $(src_mrcnn_libcxmrcnn_la_SOURCES) \
	$(dicom_libcxdicomread_la_SOURCES) $(dicom_libcxdicomwrite_la_SOURCES) $(src_pipeline_libcxpipeline_la_SOURCES) plugin/exchange.c
# (no quoted -D values in here: the list goes through the shell; fuzz.mk adds AM_CPPFLAGS' own)
FUZZ_CPPFLAGS = -I$(abs_top_srcdir)/src/base -I$(abs_top_builddir) -I$(abs_top_srcdir)/tests/fuzz -I$(abs_top_srcdir)/plugin \
	-I$(abs_top_srcdir)/src/pipeline -I$(abs_top_srcdir)/src/mrcnn -I$(abs_top_srcdir)/src/nn \
	-I$(abs_top_srcdir)/src/config -I$(abs_top_srcdir)/src/image -I$(abs_top_srcdir)/dicom \
	$(OPENJPEG_CFLAGS) $(PNG_CFLAGS) $(XML_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS) \
	$(SSL_CFLAGS)
FUZZ_LIBS = $(DCMTK_LIBS) $(OPENJPEG_LIBS) $(PNG_LIBS) $(JPEG_LIBS) $(XML_LIBS) $(OPENBLAS_LIBS) $(SSL_LIBS) \
	$(CRYPTO_LIBS) $(JANSSON_LIBS) -lz -lpthread -lm

FUZZ_MAKE = $(MAKE) -f $(abs_top_srcdir)/tests/fuzz/fuzz.mk SRC='$(abs_top_srcdir)' \
	OUT='$(abs_top_builddir)/tests/fuzz' FUZZ_CC='$(FUZZ_CC)' FUZZ_CXX='$(FUZZ_CXX)' \
	FUZZ_SRCLIST='$(FUZZ_SRCLIST)' FUZZ_CPPFLAGS='$(FUZZ_CPPFLAGS)' FUZZ_LIBS='$(FUZZ_LIBS)' \
	PKGDATADIR='$(pkgdatadir)' SYSCONFDIR='$(sysconfdir)' \
	HARNESSES='$(FUZZ_HARNESSES)' FUZZ_SECONDS='$(FUZZ_SECONDS)' DCMDICTPATH='$(DCMTK_DICT)'

# Builds the clang harnesses only; `make fuzz` also runs them (FUZZ_HARNESSES= picks some,
# FUZZ_FLAGS= adds libFuzzer options).
fuzz-build:
	@+$(FUZZ_MAKE) build
fuzz:
	@+$(FUZZ_MAKE) run

clean-fuzz:
	rm -rf tests/fuzz/build tests/fuzz/run
.PHONY: fuzz fuzz-build clean-fuzz

EXTRA_DIST += tests/fuzz/README.md tests/fuzz/fuzz.mk tests/fuzz/make-model-seeds.py tests/fuzz/corpus \
	tests/fuzz/crashes

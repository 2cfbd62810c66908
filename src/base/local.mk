# base: errors, log sink, allocation hook, command-line options (cx_getopt.h). Depends on libc
# only. cx_json.h is header-only (how a C string becomes a JSON string, over libjansson): only code
# built with $(JANSSON_CFLAGS) and linked with $(JANSSON_LIBS) includes it.
noinst_LTLIBRARIES += src/base/libcxbase.la
src_base_libcxbase_la_SOURCES = src/base/cx_base.c src/base/cx_base.h src/base/cx_json.h \
	src/base/cx_getopt.c src/base/cx_getopt.h
src_base_libcxbase_la_LIBADD = -lpthread

check_PROGRAMS += tests/unit/test_base
TESTS += tests/unit/test_base
tests_unit_test_base_SOURCES = tests/unit/test_base.c tests/unit/cx_test.h
tests_unit_test_base_CPPFLAGS = $(CX_TEST_CPPFLAGS)
tests_unit_test_base_LDADD = src/base/libcxbase.la $(CUNIT_LIBS)

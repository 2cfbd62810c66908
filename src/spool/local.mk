# src/spool: the node's durable folder queue. Depends on base only.
noinst_LTLIBRARIES += src/spool/libcxspool.la
src_spool_libcxspool_la_SOURCES = src/spool/cx_spool.c src/spool/cx_spool.h
src_spool_libcxspool_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/spool
src_spool_libcxspool_la_LIBADD = -lpthread

check_PROGRAMS += tests/unit/test_spool
TESTS += tests/unit/test_spool
# the spool compiled again with its test hook (CX_SPOOL_TEST_HOOKS: simulated write failures)
tests_unit_test_spool_SOURCES = tests/unit/test_spool.c tests/unit/cx_test.h src/spool/cx_spool.c
tests_unit_test_spool_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/spool -DCX_SPOOL_TEST_HOOKS
tests_unit_test_spool_LDADD = src/base/libcxbase.la $(CUNIT_LIBS) -lpthread

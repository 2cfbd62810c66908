# src/config: the configuration loader (libxml2). Depends on base only.
noinst_LTLIBRARIES += src/config/libcxconfig.la
src_config_libcxconfig_la_SOURCES = src/config/cx_config.c src/config/cx_config_rules.c \
	src/config/cx_config_filter.c src/config/cx_config.h src/config/cx_config_impl.h
src_config_libcxconfig_la_CPPFLAGS = $(AM_CPPFLAGS) $(XML_CFLAGS) $(CRYPTO_CFLAGS)
src_config_libcxconfig_la_LIBADD = $(XML_LIBS) $(CRYPTO_LIBS)

check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config tests/config/xmllint.sh tests/config/check_config.sh
tests_unit_test_config_SOURCES = tests/unit/test_config.c tests/unit/cx_test.h
tests_unit_test_config_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/config $(XML_CFLAGS)
tests_unit_test_config_LDADD = $(CX_CONFIG_LIBS) $(XML_LIBS) $(CRYPTO_LIBS) $(CUNIT_LIBS)
EXTRA_DIST += tests/config

# The option table (static in cx_config.c, compiled into the test itself) agrees with the XSD.
check_PROGRAMS += tests/unit/test_config_table
TESTS += tests/unit/test_config_table
tests_unit_test_config_table_SOURCES = tests/unit/test_config_table.c tests/unit/cx_test.h \
	src/config/cx_config_rules.c src/config/cx_config_filter.c
tests_unit_test_config_table_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/config $(XML_CFLAGS)
tests_unit_test_config_table_LDADD = src/base/libcxbase.la $(XML_LIBS) $(CRYPTO_LIBS) $(CUNIT_LIBS)
EXTRA_DIST += tests/config/check_config.sh tests/config/xmllint.sh

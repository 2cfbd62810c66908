# plugin: libOrthancCxrSeg.so, the Orthanc plugin over the same pipeline (owned by the module).
# Built only when the Orthanc SDK header is there (Debian package orthanc-dev).
# A libtool module over the same convenience libraries as the programs (all objects are PIC:
# LT_INIT([disable-static]) in configure.ac), so its module boundaries are the programs' ones. It
# links with a version script that exports only the four entry points (check: nm -D
# --defined-only plugin/.libs/libOrthancCxrSeg.so); the .la file is not installed.
# Installed where Debian's Orthanc looks for plugins: /usr/share/orthanc/plugins with --prefix=/usr
# (datarootdir); elsewhere `make install orthancplugindir=DIR`.
if HAVE_ORTHANC_SDK
orthancplugindir = $(datarootdir)/orthanc/plugins
orthancplugin_LTLIBRARIES = plugin/libOrthancCxrSeg.la
plugin_libOrthancCxrSeg_la_SOURCES = plugin/cxp.h plugin/plugin.c plugin/work.c plugin/exchange.h plugin/exchange.c
nodist_EXTRA_plugin_libOrthancCxrSeg_la_SOURCES = dummy.cxx
plugin_libOrthancCxrSeg_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugin -I$(top_srcdir)/src/pipeline \
	-I$(top_srcdir)/src/mrcnn -I$(top_srcdir)/src/nn -I$(top_srcdir)/src/config -I$(top_srcdir)/src/image \
	-I$(top_srcdir)/dicom $(XML_CFLAGS) $(JANSSON_CFLAGS)
plugin_libOrthancCxrSeg_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
plugin_libOrthancCxrSeg_la_LDFLAGS = -module -avoid-version -shared -no-undefined \
	-Wl,--version-script=$(top_srcdir)/plugin/exports.map
plugin_libOrthancCxrSeg_la_LIBADD = $(CX_PIPELINE_LIBS) $(XML_LIBS) $(JANSSON_LIBS) -lpthread -lm
EXTRA_plugin_libOrthancCxrSeg_la_DEPENDENCIES = plugin/exports.map
install-data-hook: cx-plugin-drop-la
cx-plugin-drop-la:
	rm -f "$(DESTDIR)$(orthancplugindir)/libOrthancCxrSeg.la"
uninstall-hook:
	rm -f "$(DESTDIR)$(orthancplugindir)/libOrthancCxrSeg.so"

# A real Orthanc 1.10.1 with the plugin loaded (skips, exit 77, when Orthanc or a tool is missing).
TESTS += tests/plugin_orthanc.sh
endif
EXTRA_DIST += plugin/exports.map tests/plugin_orthanc.sh

# The plugin's JSON with Orthanc (plugin/exchange.c: its configuration section, the answers of
# POST /instances, /tools/lookup and /tools/find, what it writes). exchange.c makes no SDK call,
# so this runs whether or not orthanc-dev is installed.
check_PROGRAMS += tests/unit/test_plugin_json
TESTS += tests/unit/test_plugin_json
tests_unit_test_plugin_json_SOURCES = tests/unit/test_plugin_json.c tests/unit/cx_test.h plugin/exchange.c \
	plugin/exchange.h src/base/cx_json.h
tests_unit_test_plugin_json_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/plugin $(JANSSON_CFLAGS)
tests_unit_test_plugin_json_LDADD = src/base/libcxbase.la $(JANSSON_LIBS) $(CUNIT_LIBS)

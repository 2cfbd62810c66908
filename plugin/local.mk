# plugin: libOrthancCxrSeg.so, the Orthanc plugin over the same pipeline (owned by the module).
# Built only when the Orthanc SDK header is there (Debian package orthanc-dev).
# A shared module needs position-independent code, and the project's convenience libraries are
# built for the programs (LT_INIT disable-shared, no -fPIC); so the plugin compiles its own PIC
# copies of the modules it runs, taking their source lists from the modules' own variables (a file
# added to a module is picked up here). It links with -shared and a version script that exports
# only the four entry points (check: nm -D --defined-only plugin/libOrthancCxrSeg.so).
# Installed where Debian's Orthanc looks for plugins: /usr/share/orthanc/plugins with --prefix=/usr
# (datarootdir); elsewhere `make install orthancplugindir=DIR`.
if HAVE_ORTHANC_SDK
orthancplugindir = $(datarootdir)/orthanc/plugins
orthancplugin_PROGRAMS = plugin/libOrthancCxrSeg.so
plugin_libOrthancCxrSeg_so_SOURCES = plugin/cxp.h plugin/plugin.c plugin/work.c plugin/exchange.h plugin/exchange.c \
	$(src_base_libcxbase_la_SOURCES) $(src_config_libcxconfig_la_SOURCES) $(src_image_libcximage_la_SOURCES) \
	$(src_nn_libcxnn_la_SOURCES) $(src_mrcnn_libcxmrcnn_la_SOURCES) $(dicom_libcxdicomread_la_SOURCES) $(dicom_libcxdicomwrite_la_SOURCES) \
	$(src_pipeline_libcxpipeline_la_SOURCES)
plugin_libOrthancCxrSeg_so_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugin -I$(top_srcdir)/src/pipeline \
	-I$(top_srcdir)/src/mrcnn -I$(top_srcdir)/src/nn -I$(top_srcdir)/src/config -I$(top_srcdir)/src/image \
	-I$(top_srcdir)/dicom $(OPENJPEG_CFLAGS) $(PNG_CFLAGS) $(XML_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS)
plugin_libOrthancCxrSeg_so_CFLAGS = $(AM_CFLAGS) -fPIC -fvisibility=hidden
plugin_libOrthancCxrSeg_so_CXXFLAGS = $(AM_CXXFLAGS) -fPIC -fvisibility=hidden
plugin_libOrthancCxrSeg_so_LINK = $(CXX) $(AM_CXXFLAGS) $(CXXFLAGS) -shared -Wl,--no-undefined \
	-Wl,--version-script=$(top_srcdir)/plugin/exports.map $(LDFLAGS) -o $@
plugin_libOrthancCxrSeg_so_LDADD = $(DCMTK_LIBS) $(OPENJPEG_LIBS) $(PNG_LIBS) $(JPEG_LIBS) $(XML_LIBS) \
	$(OPENBLAS_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS) $(JANSSON_LIBS) -lz -lpthread -lm
EXTRA_plugin_libOrthancCxrSeg_so_DEPENDENCIES = plugin/exports.map

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

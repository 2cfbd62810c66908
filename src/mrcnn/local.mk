# src/mrcnn: the model file and the Mask R-CNN engine. Calls nn and base.
noinst_LTLIBRARIES += src/mrcnn/libcxmrcnn.la
src_mrcnn_libcxmrcnn_la_SOURCES = src/mrcnn/cx_mrcnn.h src/mrcnn/cx_mrcnn_impl.h src/mrcnn/cx_mfile.h \
	src/mrcnn/cx_mfile.c src/mrcnn/cx_model.c src/mrcnn/cx_mrcnn.c
src_mrcnn_libcxmrcnn_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/nn $(CRYPTO_CFLAGS)
src_mrcnn_libcxmrcnn_la_LIBADD = $(CRYPTO_LIBS) -lm

check_PROGRAMS += tests/unit/test_mrcnn tests/unit/test_mrcnn_model
TESTS += tests/unit/test_mrcnn tests/unit/test_mrcnn_model
# full-size parity (ResNet-50-FPN at 512 and 800 px) against torchvision, when it is installed
TESTS += tests/parity_full.sh
EXTRA_DIST += tests/parity_full.sh
tests_unit_test_mrcnn_SOURCES = tests/unit/test_mrcnn.c tests/unit/cx_test.h
tests_unit_test_mrcnn_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/nn -I$(top_srcdir)/src/mrcnn
tests_unit_test_mrcnn_LDADD = $(CX_MRCNN_LIBS) $(CUNIT_LIBS)
tests_unit_test_mrcnn_model_SOURCES = tests/unit/test_mrcnn_model.c tests/unit/cx_test.h
tests_unit_test_mrcnn_model_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/nn -I$(top_srcdir)/src/mrcnn
tests_unit_test_mrcnn_model_LDADD = $(CX_MRCNN_LIBS) $(CUNIT_LIBS)
EXTRA_DIST += tests/data/parity_model.cxm tests/data/parity_refs.cxm tests/data/parity_cxr.png \
	tests/data/README.md models/FORMAT.md

# src/nn: tensor ops on OpenBLAS and the worker thread pool. Calls base only.
noinst_LTLIBRARIES += src/nn/libcxnn.la
src_nn_libcxnn_la_SOURCES = src/nn/cx_nn.h src/nn/cx_nn.c src/nn/cx_pool.c
src_nn_libcxnn_la_CPPFLAGS = $(AM_CPPFLAGS) $(OPENBLAS_CFLAGS)
src_nn_libcxnn_la_LIBADD = $(OPENBLAS_LIBS) -lpthread -lm

check_PROGRAMS += tests/unit/test_nn
TESTS += tests/unit/test_nn
tests_unit_test_nn_SOURCES = tests/unit/test_nn.c tests/unit/cx_test.h tests/unit/cx_ref_conv.h
tests_unit_test_nn_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/nn $(OPENBLAS_CFLAGS)
tests_unit_test_nn_LDADD = $(CX_NN_LIBS) $(CUNIT_LIBS)
src_nn_libcxnn_la_SOURCES += src/nn/cx_winograd.h src/nn/cx_winograd.c

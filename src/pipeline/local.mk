# src/pipeline: the only module that knows every stage. Load/render (this file's first part);
# later stages append their sources with  src_pipeline_libcxpipeline_la_SOURCES += ...; the modules
# it calls are in CX_PIPELINE_LIBS (Makefile.am).
noinst_LTLIBRARIES += src/pipeline/libcxpipeline.la
src_pipeline_libcxpipeline_la_SOURCES = src/pipeline/cx_pipe.h src/pipeline/cx_pipe_load.c
src_pipeline_libcxpipeline_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/pipeline \
	-I$(top_srcdir)/src/image -I$(top_srcdir)/dicom
src_pipeline_libcxpipeline_la_LIBADD =

# Mapping rules on synthetic attributes (no files needed).
check_PROGRAMS += tests/unit/test_pipeline
TESTS += tests/unit/test_pipeline
tests_unit_test_pipeline_SOURCES = tests/unit/test_pipeline.c tests/unit/cx_test.h
tests_unit_test_pipeline_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/pipeline \
	-I$(top_srcdir)/src/image -I$(top_srcdir)/dicom
tests_unit_test_pipeline_LDADD = $(CX_PIPELINE_LIBS) $(CUNIT_LIBS)
nodist_EXTRA_tests_unit_test_pipeline_SOURCES = dummy.cxx

# Real files from $CX_SHARED/data/dicom against DCMTK's dcm2pnm (skips when either is absent).
check_PROGRAMS += tests/unit/test_pipeline_files
TESTS += tests/unit/test_pipeline_files
tests_unit_test_pipeline_files_SOURCES = tests/unit/test_pipeline_files.c tests/unit/cx_test.h
tests_unit_test_pipeline_files_CPPFLAGS = $(tests_unit_test_pipeline_CPPFLAGS)
tests_unit_test_pipeline_files_LDADD = $(CX_PIPELINE_LIBS) $(CUNIT_LIBS)
nodist_EXTRA_tests_unit_test_pipeline_files_SOURCES = dummy.cxx

# segment: render -> engine -> findings -> SEG/SR/GSPS/SC (owned by the results work)
src_pipeline_libcxpipeline_la_SOURCES += src/pipeline/segment.h src/pipeline/segment.c src/pipeline/segment_picture.c \
	src/pipeline/segment_config.c
src_pipeline_libcxpipeline_la_CPPFLAGS += -I$(top_srcdir)/src/mrcnn -I$(top_srcdir)/src/config
src_pipeline_libcxpipeline_la_LIBADD += $(XML_LIBS)
check_PROGRAMS += tests/unit/test_write_segment
TESTS += tests/unit/test_write_segment
tests_unit_test_write_segment_SOURCES = tests/unit/test_write_segment.c tests/unit/cx_test.h
tests_unit_test_write_segment_CPPFLAGS = $(tests_unit_test_pipeline_CPPFLAGS) -I$(top_srcdir)/src/mrcnn
tests_unit_test_write_segment_LDADD = $(CX_PIPELINE_LIBS) $(CUNIT_LIBS)
nodist_EXTRA_tests_unit_test_write_segment_SOURCES = dummy.cxx

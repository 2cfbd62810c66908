# dicom writers (SEG, SR, GSPS, SC): build fragment owned by the results work
noinst_LTLIBRARIES += dicom/libcxdicomwrite.la
dicom_libcxdicomwrite_la_CPPFLAGS = $(dicom_libcxdicomread_la_CPPFLAGS)
dicom_libcxdicomwrite_la_CXXFLAGS = $(AM_CXXFLAGS)
dicom_libcxdicomwrite_la_LIBADD =
dicom_libcxdicomwrite_la_SOURCES = dicom/write_internal.hh dicom/write_util.cc dicom/write_api.cc \
	dicom/write_seg.cc dicom/write_sr.cc dicom/write_gsps.cc dicom/write_sc.cc

# Unit and validation tests of the writers: real chest CR from $CX_SHARED (skipped when absent)
# and synthetic sources made in the test; every object is checked with dciodvfy -new (dicom3tools)
# and read back with DCMTK (DcmSegmentation, dsrdump).
check_PROGRAMS += tests/unit/test_write
TESTS += tests/unit/test_write
tests_unit_test_write_SOURCES = tests/unit/test_write.cc tests/unit/cx_test.h
tests_unit_test_write_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/dicom
tests_unit_test_write_CXXFLAGS = $(AM_CXXFLAGS)
tests_unit_test_write_LDADD = $(CX_DICOMWRITE_LIBS) $(CUNIT_LIBS)
EXTRA_DIST += docs/outputs.md docs/dciodvfy-warnings.md

# dicom: the C++17 layer over DCMTK behind dicom/cxdicom.h, in three libraries so that a program
# links only the roles it has: reading/decoding (here, libcxdicomread), writing results (write.mk,
# libcxdicomwrite, over read) and the network roles (net.mk, libcxdicomnet, over read). The CLI and
# the plugin link read + write; only the node links net.
# A program that links these contains C++ objects and needs the C++ linker: in its fragment add
#   nodist_EXTRA_<prog>_SOURCES = dummy.cxx   (automake then links with $(CXX)).
noinst_LTLIBRARIES += dicom/libcxdicomread.la
dicom_libcxdicomread_la_SOURCES = dicom/cxdicom.h dicom/read_internal.h \
	dicom/read.cc dicom/read_deflate.cc dicom/read_decode.cc dicom/j2k.cc dicom/rle.cc
dicom_libcxdicomread_la_CPPFLAGS = -I$(top_srcdir)/dicom $(OPENJPEG_CFLAGS) $(CRYPTO_CFLAGS) $(SSL_CFLAGS)
dicom_libcxdicomread_la_CXXFLAGS = $(AM_CXXFLAGS)
dicom_libcxdicomread_la_LIBADD = $(DCMTK_LIBS) $(OPENJPEG_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS) -lz -lpthread

# Unit tests of reading/decoding: real files in $CX_SHARED/data/dicom, synthetic files made with
# DCMTK and GDCM command-line tools at run time, the broken-input corpus in tests/corpus, and
# allocation failures (cxd allocator hook and a throwing global operator new in the test).
check_PROGRAMS += tests/unit/test_dicom
TESTS += tests/unit/test_dicom tests/dicom_nodict.sh tests/dicom_valgrind.sh
tests_unit_test_dicom_SOURCES = tests/unit/test_dicom.cc tests/unit/cx_test.h
tests_unit_test_dicom_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/dicom
tests_unit_test_dicom_CXXFLAGS = $(AM_CXXFLAGS)
tests_unit_test_dicom_LDADD = dicom/libcxdicomread.la $(CUNIT_LIBS)
EXTRA_DIST += tests/corpus tests/dicom_valgrind.sh tests/dicom_nodict.sh docs/decoding.md

# src/image: greyscale pipeline (modality LUT, VOI, polarity), area resize, PNG/JPEG I/O, and the
# overlay picture (masks and legend burned in).
# Knows nothing of DICOM; links base only (plus libpng and libjpeg).
noinst_LTLIBRARIES += src/image/libcximage.la
src_image_libcximage_la_SOURCES = src/image/cx_image.h src/image/cx_grey.c src/image/cx_resize.c \
	src/image/cx_image_io.c src/image/cx_overlay.c
src_image_libcximage_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/image $(PNG_CFLAGS)
src_image_libcximage_la_LIBADD = $(PNG_LIBS) $(JPEG_LIBS) -lm

check_PROGRAMS += tests/unit/test_image
TESTS += tests/unit/test_image
tests_unit_test_image_SOURCES = tests/unit/test_image.c tests/unit/cx_test.h
tests_unit_test_image_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/image
tests_unit_test_image_LDADD = $(CX_IMAGE_LIBS) $(JPEG_LIBS) $(CUNIT_LIBS)

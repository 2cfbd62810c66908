# tests: build fragment (owned by the module; see Makefile.am)

# End-to-end viewer test (OHIF 3.13.2 in headless Chromium over a private Orthanc; docs/viewer.md)
# and the private-Orthanc helpers that the Orthanc-plugin tests reuse.
TESTS += tests/viewer.sh
EXTRA_DIST += tests/viewer.sh tests/viewer/serve.js tests/viewer/drive.js tests/viewer/app-config.js tests/viewer/segstats.py \
	tests/viewer/package.json tests/viewer/package-lock.json \
	tests/peers/orthanc-start.sh tests/peers/orthanc-stop.sh

# Winograd 3x3 convolution (src/nn/cx_winograd) against a direct convolution and cx_conv2d.
check_PROGRAMS += tests/unit/test_winograd
TESTS += tests/unit/test_winograd
tests_unit_test_winograd_SOURCES = tests/unit/test_winograd.c tests/unit/cx_test.h tests/unit/cx_ref_conv.h
tests_unit_test_winograd_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/nn $(OPENBLAS_CFLAGS)
tests_unit_test_winograd_LDADD = $(CX_NN_LIBS) $(CUNIT_LIBS)

# The model's image-level decision rule (src/mrcnn: cx_decision_*) on hand-made detections, with
# the fixture export.py writes (tests/data/decision_model.cxm, models/train/make_decision_fixture.py).
check_PROGRAMS += tests/unit/test_decision
TESTS += tests/unit/test_decision
tests_unit_test_decision_SOURCES = tests/unit/test_decision.c tests/unit/cx_test.h tests/unit/cx_test_mfile.h
tests_unit_test_decision_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/nn -I$(top_srcdir)/src/mrcnn
tests_unit_test_decision_LDADD = $(CX_MRCNN_LIBS) $(CUNIT_LIBS)
EXTRA_DIST += tests/data/decision_model.cxm tests/data/decision_head_model.cxm

# The viewer test's hand-made results: SEG + SR with 1..16 segments for any source image
# (tests/viewer.sh shows OHIF every segment count at odd image sizes with them).
check_PROGRAMS += tests/viewer/results
tests_viewer_results_SOURCES = tests/viewer/results.c
tests_viewer_results_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/dicom
tests_viewer_results_LDADD = $(CX_DICOMWRITE_LIBS) -lm
nodist_EXTRA_tests_viewer_results_SOURCES = dummy.cxx

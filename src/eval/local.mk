# src/eval: the figures of `cxrseg eval` (structure and mask-folder dataset readers, ground-truth
# instances, Dice, COCO mask AP, image-level decision, lung-share error). Calls mrcnn (detections,
# class table), image (PNG reading) and base.
noinst_LTLIBRARIES += src/eval/libcxeval.la
src_eval_libcxeval_la_SOURCES = src/eval/cx_eval.h src/eval/cx_eval.c src/eval/cx_eval_data.c
src_eval_libcxeval_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/eval -I$(top_srcdir)/src/mrcnn \
	-I$(top_srcdir)/src/image $(PNG_CFLAGS) $(JANSSON_CFLAGS)
src_eval_libcxeval_la_LIBADD = $(PNG_LIBS) $(JANSSON_LIBS) -lm

# Metrics on hand-made detections with hand-computed answers, ROC AUC, the lung split, the dataset
# readers on the tests/data/eval fixture and on small datasets the test writes (both forms).
check_PROGRAMS += tests/unit/test_eval
TESTS += tests/unit/test_eval
tests_unit_test_eval_SOURCES = tests/unit/test_eval.c tests/unit/cx_test.h
tests_unit_test_eval_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/eval -I$(top_srcdir)/src/mrcnn \
	-I$(top_srcdir)/src/image
tests_unit_test_eval_LDADD = $(CX_EVAL_LIBS) $(JPEG_LIBS) $(CUNIT_LIBS)

# `cxrseg eval` end to end on the fixture with the engine's small test model.
TESTS += tests/cli_eval.sh
EXTRA_DIST += tests/cli_eval.sh tests/data/eval tests/data/eval_mf

# The shipped model on 4 real validation images (skips without ../shared or models/cxrseg.cxm).
TESTS += tests/model_shipped.sh
EXTRA_DIST += tests/model_shipped.sh

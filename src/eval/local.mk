# src/eval: the figures of `cxrseg eval` (dataset form reader, ground-truth instances, Dice, COCO mask
# AP, image-level detection, lung-share error). Calls mrcnn (detections, class table) and base.
noinst_LTLIBRARIES += src/eval/libcxeval.la
src_eval_libcxeval_la_SOURCES = src/eval/cx_eval.h src/eval/cx_eval.c src/eval/cx_eval_data.c
src_eval_libcxeval_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/eval -I$(top_srcdir)/src/mrcnn \
	$(PNG_CFLAGS)
src_eval_libcxeval_la_LIBADD = src/mrcnn/libcxmrcnn.la src/base/libcxbase.la $(PNG_LIBS) -lm

# Metrics on hand-made detections with hand-computed answers, and the dataset reader on the
# tests/data/eval fixture.
check_PROGRAMS += tests/unit/test_eval
TESTS += tests/unit/test_eval
tests_unit_test_eval_SOURCES = tests/unit/test_eval.c tests/unit/cx_test.h
tests_unit_test_eval_CPPFLAGS = $(CX_TEST_CPPFLAGS) -I$(top_srcdir)/src/eval -I$(top_srcdir)/src/mrcnn
tests_unit_test_eval_LDADD = src/eval/libcxeval.la $(CUNIT_LIBS)

# `cxrseg eval` end to end on the fixture with the engine's small test model.
TESTS += tests/cli_eval.sh
EXTRA_DIST += tests/cli_eval.sh tests/data/eval

# The shipped model on 4 real validation images (skips without ../shared or models/cxrseg.cxm).
TESTS += tests/model_shipped.sh
EXTRA_DIST += tests/model_shipped.sh

# bench: performance drivers (not run by make check). bench/engine compares the C engine with
# torchvision on the same weights and input; it runs bench/cx_bench_engine (built here).
noinst_PROGRAMS += bench/cx_bench_engine
bench_cx_bench_engine_SOURCES = bench/cx_bench_engine.c
bench_cx_bench_engine_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/mrcnn
bench_cx_bench_engine_LDADD = $(CX_MRCNN_LIBS) $(OPENBLAS_LIBS) -lm
EXTRA_DIST += bench/engine bench/README.md docs/engine.md

# bench/cx_bench_wino: cx_conv2d (im2col) against cx_conv2d_wino m = 2 / 4 on 3x3 conv shapes.
noinst_PROGRAMS += bench/cx_bench_wino
bench_cx_bench_wino_SOURCES = bench/cx_bench_wino.c
bench_cx_bench_wino_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/nn $(OPENBLAS_CFLAGS)
bench_cx_bench_wino_LDADD = $(CX_NN_LIBS) $(OPENBLAS_LIBS) -lm

# fuzz.mk: the clang + libFuzzer + ASan/UBSan build and run of the harnesses, called by `make fuzz`
# (tests/fuzz/local.mk passes the module source lists and the configured flags). GNU make.
#   build: $(OUT)/build/fuzz_<harness>, from objects of every module source (own -MMD deps)
#   run:   each harness FUZZ_SECONDS on $(OUT)/run/<harness>/corpus (a copy of the seed corpus,
#          which keeps what the run adds); crashes, leaks, timeouts and OOMs are written to
#          $(SRC)/tests/fuzz/crashes/<harness>/, the log to $(OUT)/run/<harness>/fuzz.log.

FUZZ_SECONDS ?= 60
FUZZ_FLAGS ?=
# 2 GiB resident, 1 GiB per allocation: a declared length that is believed shows up as an OOM.
FUZZ_LIMITS ?= -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=30
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
CFLAGS_F = -std=c11 -g -O1 $(SAN) -fsanitize=fuzzer-no-link
CXXFLAGS_F = -std=c++17 -g -O1 $(SAN) -fsanitize=fuzzer-no-link
B = $(OUT)/build
DEFS_F = -DCX_DATADIR='"$(PKGDATADIR)"' -DCX_SYSCONFDIR='"$(SYSCONFDIR)/cxrseg"' -DCX_FUZZ_SRCDIR='"$(SRC)"'

LIB_SRC = $(filter %.c %.cc,$(FUZZ_SRCLIST))
LIB_OBJ = $(patsubst %,$(B)/obj/%.o,$(LIB_SRC))
HARNESS_OBJ = $(patsubst %,$(B)/obj/tests/fuzz/%.c.o,$(HARNESSES))
BINS = $(patsubst %,$(B)/fuzz_%,$(HARNESSES))

export DCMDICTPATH
export CX_SRCDIR = $(SRC)
export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1

.PHONY: build run
.DELETE_ON_ERROR:

build: $(BINS)

$(B)/obj/%.c.o: $(SRC)/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CFLAGS_F) $(FUZZ_CPPFLAGS) $(DEFS_F) -MMD -MP -c -o $@ $<
$(B)/obj/%.cc.o: $(SRC)/%.cc
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(CXXFLAGS_F) $(FUZZ_CPPFLAGS) $(DEFS_F) -MMD -MP -c -o $@ $<

# An archive, so that each harness takes only the objects it calls.
$(B)/libcxfuzz.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/fuzz_%: $(B)/obj/tests/fuzz/%.c.o $(B)/libcxfuzz.a
	$(FUZZ_CXX) $(SAN) -fsanitize=fuzzer -o $@ $< $(B)/libcxfuzz.a $(FUZZ_LIBS)

-include $(LIB_OBJ:.o=.d) $(HARNESS_OBJ:.o=.d)

# One harness after another (the machine may have other work); every harness runs even when an
# earlier one found something, and the run fails at the end if any did.
run: build
	@failed=; for h in $(HARNESSES); do \
	  d=$(OUT)/run/$$h; mkdir -p $$d/corpus $(SRC)/tests/fuzz/crashes/$$h; \
	  cp -p $(SRC)/tests/fuzz/corpus/$$h/* $$d/corpus/ 2>/dev/null; \
	  echo "fuzz: $$h for $(FUZZ_SECONDS) s (log $$d/fuzz.log)"; \
	  if $(B)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) $(FUZZ_LIMITS) -print_final_stats=1 \
	      -artifact_prefix=$(SRC)/tests/fuzz/crashes/$$h/ $(FUZZ_FLAGS) $$d/corpus >$$d/fuzz.log 2>&1; then \
	    tail -n 12 $$d/fuzz.log | grep -E '^(#[0-9]+|Done|stat::)' ; \
	  else \
	    failed="$$failed $$h"; tail -n 40 $$d/fuzz.log; \
	  fi; \
	done; \
	if test -n "$$failed"; then \
	  echo "fuzz: FAILED:$$failed (inputs in $(SRC)/tests/fuzz/crashes/<harness>/)"; exit 1; \
	fi; echo "fuzz: no crash"

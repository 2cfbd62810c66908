# src/node: the cxrseg-node daemon (listener + spool + workers + senders). Links the C++ DICOM
# layer, hence the C++ linker (nodist_EXTRA_..._SOURCES = dummy.cxx).
bin_PROGRAMS += cxrseg-node
cxrseg_node_SOURCES = src/node/node.h src/node/node_main.c src/node/node_config.c src/node/node_ingest.c \
	src/node/node_work.c src/node/node_process.c src/node/node_send.c src/node/node_log.c \
	src/node/node_status.c src/node/node_audit.c src/node/node_metrics.c src/node/node_stow.c
nodist_EXTRA_cxrseg_node_SOURCES = dummy.cxx
cxrseg_node_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/node -I$(top_srcdir)/src/spool \
	-I$(top_srcdir)/src/config -I$(top_srcdir)/dicom -I$(top_srcdir)/src/pipeline \
	-I$(top_srcdir)/src/mrcnn -I$(top_srcdir)/src/image $(XML_CFLAGS) $(JANSSON_CFLAGS) $(MHD_CFLAGS) $(CURL_CFLAGS)
cxrseg_node_LDADD = src/spool/libcxspool.la dicom/libcxdicomnet.la $(CX_PIPELINE_LIBS) $(XML_LIBS) $(JANSSON_LIBS) $(MHD_LIBS) $(CURL_LIBS) -lpthread -lm

# The relay test build (check only, never installed): the same sources with CX_NODE_RELAY, where a
# transport-test copy stands in for the results, so the delivery tests run without a model.
check_PROGRAMS += tests/cxrseg-node-relay
tests_cxrseg_node_relay_SOURCES = $(cxrseg_node_SOURCES) tests/node/relay_copy.cc
tests_cxrseg_node_relay_CPPFLAGS = $(cxrseg_node_CPPFLAGS) -DCX_NODE_RELAY
tests_cxrseg_node_relay_CXXFLAGS = $(AM_CXXFLAGS)
tests_cxrseg_node_relay_LDADD = $(cxrseg_node_LDADD)

# The systemd unit (runs as the unprivileged user "cxrseg"), with the installed paths filled in.
systemdunitdir = $(prefix)/lib/systemd/system
systemdunit_DATA = cxrseg-node.service
cxrseg-node.service: $(top_srcdir)/conf/cxrseg-node.service.in Makefile
	sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' -e 's|@dcmtk_dict[@]|$(DCMTK_DICT)|g' $(top_srcdir)/conf/cxrseg-node.service.in > $@
CLEANFILES += cxrseg-node.service
EXTRA_DIST += conf/cxrseg-node.service.in bench/node.sh

# Integration tests with real DCMTK peers on 127.0.0.1 (skip, exit 77, when a tool is missing).
TESTS += tests/node_basic.sh tests/node_delivery.sh tests/node_kill9.sh tests/node_load.sh tests/node_orthanc.sh \
	tests/node_dcmjs.sh tests/node_diskfull.sh tests/node_return.sh tests/node_attack.sh tests/node_tls.sh tests/node_metrics.sh tests/node_stow.sh tests/node_scaleout.sh
EXTRA_DIST += tests/make_synthetic_cr.py tests/node_lib.sh tests/node_basic.sh tests/node_delivery.sh tests/node_kill9.sh tests/node_load.sh tests/node_orthanc.sh \
	tests/node_dcmjs.sh tests/node_dcmjs_send.js tests/node_diskfull.sh tests/node_return.sh \
	tests/node_attack.sh tests/node_tls.sh tests/node_metrics.sh tests/node_stow.sh tests/node_scaleout.sh tests/node/attack.py \
	docs/conformance.md docs/operations.md docs/audit.md docs/metrics.md docs/scale-out.md

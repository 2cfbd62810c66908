# conf: the default configuration and its schema. The conf file goes to $(sysconfdir)/cxrseg
# (kept on upgrade: an existing file is never overwritten), the XSD to $(pkgdatadir) where the
# loader finds it (CX_DATADIR).
dist_pkgdata_DATA += conf/cxrseg.xsd
EXTRA_DIST += conf/cxrseg.xml conf/examples

install-data-local: install-cxrseg-conf
install-cxrseg-conf:
	$(MKDIR_P) '$(DESTDIR)$(sysconfdir)/cxrseg'
	if test -f '$(DESTDIR)$(sysconfdir)/cxrseg/cxrseg.xml'; then \
	  echo "conf: keeping the existing $(DESTDIR)$(sysconfdir)/cxrseg/cxrseg.xml"; \
	else \
	  $(INSTALL_DATA) '$(srcdir)/conf/cxrseg.xml' '$(DESTDIR)$(sysconfdir)/cxrseg/cxrseg.xml'; \
	fi
uninstall-local: uninstall-cxrseg-conf
uninstall-cxrseg-conf:
	-cmp -s '$(srcdir)/conf/cxrseg.xml' '$(DESTDIR)$(sysconfdir)/cxrseg/cxrseg.xml' && \
	  rm -f '$(DESTDIR)$(sysconfdir)/cxrseg/cxrseg.xml'
.PHONY: install-cxrseg-conf uninstall-cxrseg-conf

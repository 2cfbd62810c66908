# tests: build fragment (owned by the module; see Makefile.am)

# End-to-end viewer test (OHIF 3.13.2 in headless Chromium over a private Orthanc; docs/viewer.md)
# and the private-Orthanc helpers that the Orthanc-plugin tests reuse.
TESTS += tests/viewer.sh
EXTRA_DIST += tests/viewer.sh tests/viewer/serve.js tests/viewer/drive.js tests/viewer/app-config.js \
	tests/viewer/package.json tests/viewer/package-lock.json \
	tests/peers/orthanc-start.sh tests/peers/orthanc-stop.sh

# dicom network roles (listener, sender): build fragment owned by the node work
noinst_LTLIBRARIES += dicom/libcxdicomnet.la
dicom_libcxdicomnet_la_SOURCES = dicom/net.cc
dicom_libcxdicomnet_la_CPPFLAGS = $(dicom_libcxdicomread_la_CPPFLAGS)
dicom_libcxdicomnet_la_CXXFLAGS = $(AM_CXXFLAGS)
dicom_libcxdicomnet_la_LIBADD =

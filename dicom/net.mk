# dicom network roles (listener, sender): build fragment owned by the node work
dicom_libcxdicom_la_SOURCES += dicom/net.cc

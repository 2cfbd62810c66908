# dicom network roles (listener, sender): build fragment owned by the node work

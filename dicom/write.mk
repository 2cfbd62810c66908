# dicom writers (SEG, SR, GSPS, SC): build fragment owned by the results work

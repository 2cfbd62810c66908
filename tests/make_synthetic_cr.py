#!/usr/bin/python3
"""Writes stand-ins for the shared sample CRs when ../shared is absent, so the node tests still run.

OUTDIR/chest.dcm: a CR of a real chest radiograph. The pixels are tests/data/parity_cxr.png
(CC BY, see tests/data/README.md) scaled to 600 x 700. It is stored as 12-bit MONOCHROME1 like
the shared RG1 (so inversion is exercised), Explicit VR Little Endian, about 0.8 MB.
OUTDIR/extremity.dcm: the same with BodyPartExamined EXTREMITY and ViewPosition AP, which the
default rules skip, as they skip the shared RG3.
With sizes (WxH, columns x rows), OUTDIR/chest-WxH.dcm for each instead: the same radiograph
scaled to that size, each in a study of its own (StudyDescription "stand-in CR WxH"), for the
viewer test's odd image sizes.
With --dx WxH, OUTDIR/dx-WxH.dcm: the same radiograph as an uncompressed DX for presentation of
that size (bench/node.sh's large uncompressed source).

Usage: make_synthetic_cr.py OUTDIR [SRCDIR [WxH ...]]
       make_synthetic_cr.py --dx WxH OUTDIR [SRCDIR]
"""
import os
import sys

import numpy as np
from PIL import Image
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def chest_pixels(src, size=(600, 700)):
    im = Image.open(os.path.join(src, "tests", "data", "parity_cxr.png")).convert("L")
    im = im.resize(size, Image.BICUBIC)
    v = np.asarray(im, np.uint16) * 16 + 8           # 12 bits
    return (4095 - v).astype(np.uint16)               # MONOCHROME1: high = dark


def write(path, pixels, body_part, view, description="synthetic test CR", sop_class=CR_STORAGE):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20261127"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = "SYN0001"
    ds.Modality = "DX" if sop_class == DX_PRESENTATION else "CR"
    if sop_class == DX_PRESENTATION:
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "cxrseg tests"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = description
    ds.PatientName = "CXRSEG^SYNTHETIC"
    ds.PatientID = "SYN0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = body_part
    ds.ViewPosition = view
    ds.ImagerPixelSpacing = [0.5, 0.5]
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["R", "F"] if view == "AP" else ["L", "F"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    ds.PixelData = pixels.tobytes()
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    pydicom.dcmwrite(path, ds, write_like_original=False)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "--dx":
        if len(sys.argv) < 4:
            sys.exit(__doc__)
        w, h = (int(v) for v in sys.argv[2].lower().split("x"))
        out = sys.argv[3]
        src = sys.argv[4] if len(sys.argv) > 4 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
        os.makedirs(out, exist_ok=True)
        write(os.path.join(out, "dx-%dx%d.dcm" % (w, h)), chest_pixels(src, (w, h)), "CHEST", "PA",
              "stand-in DX %dx%d" % (w, h), DX_PRESENTATION)
        return
    out = sys.argv[1]
    src = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.makedirs(out, exist_ok=True)
    if len(sys.argv) > 3:
        for spec in sys.argv[3:]:
            w, h = (int(v) for v in spec.lower().split("x"))
            write(os.path.join(out, "chest-%dx%d.dcm" % (w, h)), chest_pixels(src, (w, h)), "CHEST", "PA",
                  "stand-in CR %dx%d" % (w, h))
        return
    px = chest_pixels(src)
    write(os.path.join(out, "chest.dcm"), px, "CHEST", "PA")
    write(os.path.join(out, "extremity.dcm"), px, "EXTREMITY", "AP")


if __name__ == "__main__":
    main()

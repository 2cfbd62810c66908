// Secondary Capture for legacy viewers: the caller's picture (the windowed image with every
// finding and a legend burned in, drawn by src/image's cx_overlay_render) as an RGB image. An
// extra series, marked as derived, burned in and not for diagnosis.
#include "write_internal.hh"

namespace cxdw {

void write_sc(Context &ctx, const std::string &path, std::string &sop_uid)
{
    const Source &s = ctx.src;
    const cxd_write_options &o = ctx.opt;
    if (!o.display_rgb)
        fail(CXD_ERR_INVALID, "sc", "no picture given");
    if (o.display_rows != s.rows || o.display_cols != s.cols)
        fail(CXD_ERR_INVALID, "sc", "picture is %dx%d, the source is %dx%d (columns x rows)", o.display_cols,
             o.display_rows, s.cols, s.rows);

    DcmFileFormat ff;
    DcmDataset &ds = *ff.getDataset();
    std::string da, tm;
    now_da_tm(da, tm);
    sop_uid = ctx.uid("sc");
    put(ds, DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    put(ds, DCM_SOPInstanceUID, sop_uid);
    copy_patient_study(s, ds);
    put(ds, DCM_Modality, "OT");
    put(ds, DCM_SeriesInstanceUID, ctx.uid("sc-series"));
    put(ds, DCM_SeriesNumber, ctx.series_number(3));
    put(ds, DCM_SeriesDescription, ctx.series_description(3, "overlay (not for diagnosis)"));
    put(ds, DCM_InstanceNumber, "1");
    put(ds, DCM_ConversionType, "WSD");
    put(ds, DCM_Manufacturer, ctx.text(o.manufacturer));
    put(ds, DCM_SecondaryCaptureDeviceManufacturer, ctx.text(o.manufacturer));
    put(ds, DCM_SecondaryCaptureDeviceManufacturerModelName, ctx.text(ctx.alg->name));
    put(ds, DCM_SecondaryCaptureDeviceSoftwareVersions, ctx.text(o.software_version));
    put(ds, DCM_ContentDate, da);
    put(ds, DCM_ContentTime, tm);
    put(ds, DCM_DateOfSecondaryCapture, da);
    put(ds, DCM_TimeOfSecondaryCapture, tm);
    put(ds, DCM_ImageType, "DERIVED\\SECONDARY");
    put(ds, DCM_DerivationDescription, "Windowed source image with the findings and a legend burned in");
    ds.insertEmptyElement(DCM_PatientOrientation);
    if (!s.patient_orientation.empty())
        put(ds, DCM_PatientOrientation, s.patient_orientation);
    if (!s.body_part.empty())
        put(ds, DCM_BodyPartExamined, s.body_part);
    put(ds, DCM_BurnedInAnnotation, "YES");
    DcmItem *ref = nullptr;
    check(ds.findOrCreateSequenceItem(DCM_SourceImageSequence, ref, 0), "sc", "SourceImageSequence");
    put(*ref, DCM_ReferencedSOPClassUID, s.sop_class);
    put(*ref, DCM_ReferencedSOPInstanceUID, s.sop_uid);
    check(ds.putAndInsertUint16(DCM_SamplesPerPixel, 3), "sc", "SamplesPerPixel");
    put(ds, DCM_PhotometricInterpretation, "RGB");
    check(ds.putAndInsertUint16(DCM_PlanarConfiguration, 0), "sc", "PlanarConfiguration");
    check(ds.putAndInsertUint16(DCM_Rows, (Uint16)s.rows), "sc", "Rows");
    check(ds.putAndInsertUint16(DCM_Columns, (Uint16)s.cols), "sc", "Columns");
    check(ds.putAndInsertUint16(DCM_BitsAllocated, 8), "sc", "BitsAllocated");
    check(ds.putAndInsertUint16(DCM_BitsStored, 8), "sc", "BitsStored");
    check(ds.putAndInsertUint16(DCM_HighBit, 7), "sc", "HighBit");
    check(ds.putAndInsertUint16(DCM_PixelRepresentation, 0), "sc", "PixelRepresentation");
    check(ds.putAndInsertUint8Array(DCM_PixelData, o.display_rgb, (unsigned long)((size_t)s.rows * s.cols * 3)), "sc",
          "PixelData");
    save_atomic(ff, path);
}

} // namespace cxdw

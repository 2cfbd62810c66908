/* Reading side of the DICOM layer: library set-up (codec registration, dictionary check, DCMTK
 * log routing), opening a file or buffer with DCMTK, and extracting the attributes the pipeline
 * needs into the plain C struct cxd_info. Pixel decoding is in read_decode.cc and j2k.cc. */
#include "read_internal.h"

#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <dcmtk/oflog/spi/logevent.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- errors, allocator, log */

cxd_status cxd_set_error(cxd_error *err, cxd_status code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

cxd_status cxd_status_from_dcmtk(const OFCondition &c, cxd_status other)
{
    return c == EC_MemoryExhausted ? CXD_ERR_NOMEM : other;
}

extern "C" const char *cxd_status_name(cxd_status s)
{
    switch (s) {
    case CXD_OK: return "ok";
    case CXD_ERR_NOMEM: return "nomem";
    case CXD_ERR_IO: return "io";
    case CXD_ERR_NOT_DICOM: return "not-dicom";
    case CXD_ERR_MALFORMED: return "malformed";
    case CXD_ERR_UNSUPPORTED: return "unsupported";
    case CXD_ERR_MISSING: return "missing";
    case CXD_ERR_INVALID: return "invalid";
    case CXD_ERR_WRITE: return "write";
    case CXD_ERR_NETWORK: return "network";
    case CXD_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

static std::atomic<cxd_malloc_fn> g_malloc{nullptr};
static std::atomic<cxd_free_fn> g_free{nullptr};

extern "C" void cxd_set_allocator(cxd_malloc_fn m, cxd_free_fn f)
{
    /* Both or neither: a custom malloc paired with libc free would corrupt the heap. */
    if (!m || !f)
        m = nullptr, f = nullptr;
    g_malloc.store(m);
    g_free.store(f);
}

void *cxd_alloc(size_t n)
{
    cxd_malloc_fn m = g_malloc.load();
    return m ? m(n ? n : 1) : malloc(n ? n : 1);
}

void cxd_dealloc(void *p)
{
    if (!p)
        return;
    cxd_free_fn f = g_free.load();
    if (f)
        f(p);
    else
        free(p);
}

/* DCMTK logs through its own log4cplus copy, which prints to stderr by default. A library must
 * not print, so cxd_init replaces the root appender with this one, which forwards to the
 * caller's sink (or drops the message when none is installed). */
static std::atomic<cxd_log_fn> g_log_fn{nullptr};
static std::atomic<void *> g_log_user{nullptr};

namespace {
class cxd_appender : public dcmtk::log4cplus::Appender {
public:
    ~cxd_appender() override { destructorImpl(); }
    void close() override { closed = true; }

protected:
    void append(const dcmtk::log4cplus::spi::InternalLoggingEvent &ev) override
    {
        cxd_log_fn fn = g_log_fn.load();
        if (!fn)
            return;
        int lv = ev.getLogLevel();
        int level = lv >= dcmtk::log4cplus::ERROR_LOG_LEVEL  ? 0
                    : lv >= dcmtk::log4cplus::WARN_LOG_LEVEL ? 1
                    : lv >= dcmtk::log4cplus::INFO_LOG_LEVEL ? 2
                                                             : 3;
        fn(level, ev.getMessage().c_str(), g_log_user.load());
    }
};
} // namespace

extern "C" void cxd_set_log(cxd_log_fn fn, void *user)
{
    g_log_user.store(user);
    g_log_fn.store(fn);
}

/* ---------------------------------------------------------------- init */

/* Registration is retried after a failure (an allocation failure at start-up must not disable
 * the library for the life of the process); DCMTK's registerCodecs are no-ops once done. */
static std::mutex g_init_mu;
static bool g_init_done = false;

extern "C" cxd_status cxd_init(cxd_error *err)
{
    try {
        std::lock_guard<std::mutex> lock(g_init_mu);
        if (!g_init_done) {
            dcmtk::log4cplus::Logger root = dcmtk::log4cplus::Logger::getRoot();
            root.removeAllAppenders();
            root.addAppender(dcmtk::log4cplus::SharedAppenderPtr(new cxd_appender()));
            root.setLogLevel(dcmtk::log4cplus::WARN_LOG_LEVEL);
            DJDecoderRegistration::registerCodecs();
            DJLSDecoderRegistration::registerCodecs();
            DcmRLEDecoderRegistration::registerCodecs();
            g_init_done = true;
        }
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "init: out of memory while registering the DICOM codecs");
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "init: unexpected exception while registering the codecs");
    }
    if (!dcmDataDict.isDictionaryLoaded()) {
        const char *p = getenv("DCMDICTPATH");
        return cxd_set_error(err, CXD_ERR_INTERNAL,
                             "init: the DICOM data dictionary is not loaded (DCMDICTPATH=%s); install "
                             "libdcmtk17 or set DCMDICTPATH=/usr/share/libdcmtk17/dicom.dic",
                             p ? p : "(unset)");
    }
    return CXD_OK;
}

extern "C" void cxd_shutdown(void)
{
    std::lock_guard<std::mutex> lock(g_init_mu);
    if (!g_init_done)
        return;
    DJDecoderRegistration::cleanup();
    DJLSDecoderRegistration::cleanup();
    DcmRLEDecoderRegistration::cleanup();
    g_init_done = false;
}

/* ---------------------------------------------------------------- open */

/* DCMTK's auto-detection parses almost any bytes as a headerless dataset, so a file is taken as
 * DICOM only with the Part 10 "DICM" prefix or when it starts with a plausible first tag of a
 * bare dataset (group 0x0002 or 0x0008, either byte order). */
static cxd_status sniff(const unsigned char *b, size_t n, const char *what, cxd_error *err)
{
    if (n == 0)
        return cxd_set_error(err, CXD_ERR_NOT_DICOM, "open: %s is empty (0 bytes)", what);
    if (n >= 132 && memcmp(b + 128, "DICM", 4) == 0)
        return CXD_OK;
    if (n >= 8) {
        unsigned le = b[0] | (b[1] << 8), be = (b[0] << 8) | b[1];
        if (le == 0x0002 || le == 0x0008 || be == 0x0008)
            return CXD_OK;
    }
    if (n < 132)
        return cxd_set_error(err, CXD_ERR_NOT_DICOM,
                             "open: %s is not DICOM (%zu bytes, too short for the 132-byte preamble "
                             "and no dataset tag at the start)",
                             what, n);
    return cxd_set_error(err, CXD_ERR_NOT_DICOM,
                         "open: %s is not DICOM (no \"DICM\" at byte 128; first bytes %02x %02x %02x "
                         "%02x are not a dataset tag)",
                         what, b[0], b[1], b[2], b[3]);
}

static void fill_ts(cxd_file *f)
{
    OFString ts;
    DcmMetaInfo *meta = f->ff.getMetaInfo();
    if (meta && meta->findAndGetOFString(DCM_TransferSyntaxUID, ts).good() && !ts.empty())
        f->ts_uid = ts.c_str();
    else
        f->ts_uid = DcmXfer(f->ff.getDataset()->getOriginalXfer()).getXferID();
}

static cxd_status load_error(const OFCondition &c, const char *what, size_t size, cxd_error *err)
{
    if (c == EC_MemoryExhausted)
        return cxd_set_error(err, CXD_ERR_NOMEM, "open: out of memory while parsing %s", what);
    /* DCMTK reports an element running past the end of the data with these conditions. */
    if (c == EC_StreamNotifyClient || c == EC_EndOfStream || c == EC_InvalidStream)
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "open: %s (%zu bytes) is truncated or an element length runs past its end (%s)",
                             what, size, c.text());
    return cxd_set_error(err, CXD_ERR_MALFORMED, "open: %s (%zu bytes) cannot be parsed: %s", what, size,
                         c.text());
}

/* Parses the file at path (what names it in messages) with DCMTK's file stream, which knows the
 * file's size: an element whose declared length runs past the end is an error before anything is
 * allocated for it (DcmInputBufferStream lets DCMTK allocate whatever a length field says). */
static cxd_status load_dcmtk(const char *path, const char *what, size_t size, cxd_file **out, cxd_error *err)
{
    cxd_status st;
    cxd_file *f = nullptr;
    try {
        f = new cxd_file();
        OFCondition c = f->ff.loadFile(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
        if (c.good())
            c = f->ff.loadAllDataIntoMemory(); /* no lazy reads later: the file may be gone */
        if (c.bad()) {
            st = load_error(c, what, size, err);
            delete f;
            return st;
        }
        fill_ts(f);
    } catch (const std::bad_alloc &) {
        delete f;
        return cxd_set_error(err, CXD_ERR_NOMEM, "open: out of memory while reading %s", what);
    } catch (const std::exception &e) {
        delete f;
        return cxd_set_error(err, CXD_ERR_INTERNAL, "open: %s: %s", what, e.what());
    } catch (...) {
        delete f;
        return cxd_set_error(err, CXD_ERR_INTERNAL, "open: %s: unknown exception", what);
    }
    *out = f;
    return CXD_OK;
}

/* A deflated data set is inflated first (read_deflate.cc: DCMTK's inflating stream has no end to
 * check a length against); everything else goes to DCMTK as it is. */
static cxd_status load_path(const char *path, const char *what, size_t size, cxd_file **out, cxd_error *err)
{
    int fd = size >= 132 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    void *map = fd >= 0 ? mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (fd >= 0)
        close(fd);
    if (map == MAP_FAILED) /* not a regular file, or it changed under us: DCMTK reports it */
        return load_dcmtk(path, what, size, out, err);
    int ifd = -1;
    cxd_status st;
    try { /* the meta header's copy is a std::string; the file descriptor comes after it */
        st = cxd_deflated_rewrite((const unsigned char *)map, size, what, &ifd, err);
    } catch (...) {
        st = cxd_set_error(err, CXD_ERR_NOMEM, "open: out of memory while reading %s", what);
    }
    munmap(map, size);
    if (st != CXD_OK)
        return st;
    if (ifd < 0)
        return load_dcmtk(path, what, size, out, err);
    struct stat sb;
    size_t isize = fstat(ifd, &sb) == 0 ? (size_t)sb.st_size : 0;
    char ipath[64];
    snprintf(ipath, sizeof ipath, "/proc/self/fd/%d", ifd);
    cxd_file *f = nullptr;
    st = load_dcmtk(ipath, what, isize, &f, err);
    close(ifd);
    if (st != CXD_OK)
        return st;
    try {
        f->ts_uid = cxd_deflated_uid();
        f->ff.getMetaInfo()->putAndInsertString(DCM_TransferSyntaxUID, cxd_deflated_uid());
    } catch (...) {
        delete f;
        return cxd_set_error(err, CXD_ERR_NOMEM, "open: out of memory while reading %s", what);
    }
    *out = f;
    return CXD_OK;
}

extern "C" cxd_status cxd_file_open(const char *path, cxd_file **out, cxd_error *err)
{
    if (!path || !out)
        return cxd_set_error(err, CXD_ERR_INVALID, "open: NULL %s", path ? "out" : "path");
    cxd_status st = cxd_init(err);
    if (st != CXD_OK)
        return st;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cxd_set_error(err, CXD_ERR_IO, "open: cannot open '%s': %s", path, strerror(errno));
    unsigned char head[132];
    size_t n = fread(head, 1, sizeof head, fp);
    int rerr = ferror(fp);
    long fsize = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    fclose(fp);
    if (rerr)
        return cxd_set_error(err, CXD_ERR_IO, "open: cannot read '%s'", path);
    char what[300];
    snprintf(what, sizeof what, "'%s'", path);
    if ((st = sniff(head, n, what, err)) != CXD_OK)
        return st;
    return load_path(path, what, fsize < 0 ? 0 : (size_t)fsize, out, err);
}

extern "C" cxd_status cxd_file_open_memory(const void *buf, size_t len, cxd_file **out, cxd_error *err)
{
    if (!buf || !out)
        return cxd_set_error(err, CXD_ERR_INVALID, "open: NULL %s", buf ? "out" : "buffer");
    cxd_status st = cxd_init(err);
    if (st != CXD_OK)
        return st;
    if ((st = sniff((const unsigned char *)buf, len, "the buffer", err)) != CXD_OK)
        return st;
    if (len > (size_t)0xFFFFFFF0u)
        return cxd_set_error(err, CXD_ERR_UNSUPPORTED, "open: buffer of %zu bytes exceeds the 4 GiB limit", len);
    /* The bytes go to an anonymous in-memory file so that DCMTK reads them through its file
     * stream, bounded by the size (see load_path); one copy, in the page cache. */
    int fd = memfd_create("cxrseg-dicom", MFD_CLOEXEC);
    if (fd < 0)
        return cxd_set_error(err, CXD_ERR_IO, "open: memfd_create: %s", strerror(errno));
    const unsigned char *p = (const unsigned char *)buf;
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return cxd_set_error(err, e == ENOMEM || e == ENOSPC ? CXD_ERR_NOMEM : CXD_ERR_IO,
                                 "open: copying the %zu-byte buffer: %s", len, strerror(e));
        }
        done += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    st = load_path(path, "the buffer", len, out, err);
    close(fd);
    return st;
}

extern "C" void cxd_file_free(cxd_file *f)
{
    delete f; /* DCMTK destructors do not throw */
}

/* ---------------------------------------------------------------- info */

static void copy_str(char *dst, size_t cap, const OFString &s)
{
    snprintf(dst, cap, "%s", s.c_str());
}

/* Whole value (all components, backslash-separated), "" when absent. */
static void get_str(DcmItem *it, const DcmTagKey &tag, char *dst, size_t cap)
{
    OFString s;
    if (it->findAndGetOFStringArray(tag, s).good())
        copy_str(dst, cap, s);
    else
        dst[0] = 0;
}

static int get_us(DcmItem *it, const DcmTagKey &tag, int dflt)
{
    Uint16 v;
    return it->findAndGetUint16(tag, v).good() ? (int)v : dflt;
}

/* Number of parseable values of a DS element (0 when absent); values beyond cap are ignored. */
static int get_ds(DcmItem *it, const DcmTagKey &tag, double *vals, int cap)
{
    DcmElement *e = nullptr;
    if (it->findAndGetElement(tag, e).bad() || !e)
        return 0;
    int vm = (int)e->getVM(), n = 0;
    for (int i = 0; i < vm && n < cap; i++) {
        Float64 d;
        if (e->getFloat64(d, (unsigned long)i).bad() || !std::isfinite(d))
            break;
        vals[n++] = d;
    }
    return n;
}

/* LUT Descriptor: US or SS with VM 3. Returns false when absent or unusable. */
static bool get_lut_descriptor(DcmItem *it, int pixel_rep, uint32_t *entries, int32_t *first, int *bits)
{
    DcmElement *e = nullptr;
    if (it->findAndGetElement(DCM_LUTDescriptor, e).bad() || !e || e->getVM() != 3)
        return false;
    Uint16 u[3];
    if (e->ident() == EVR_SS) {
        Sint16 s[3];
        for (int i = 0; i < 3; i++)
            if (e->getSint16(s[i], (unsigned long)i).bad())
                return false;
        for (int i = 0; i < 3; i++)
            u[i] = (Uint16)s[i];
    } else {
        for (int i = 0; i < 3; i++)
            if (e->getUint16(u[i], (unsigned long)i).bad())
                return false;
    }
    *entries = u[0] == 0 ? 65536u : u[0];
    *first = pixel_rep == 1 || e->ident() == EVR_SS ? (int32_t)(Sint16)u[1] : (int32_t)u[1];
    *bits = u[2];
    return true;
}

/* First item of a LUT sequence. Returns OK with lut->present = 0 when the sequence is absent. */
static cxd_status get_lut(DcmItem *ds, const DcmTagKey &seq_tag, const char *name, int pixel_rep,
                          cxd_lut *lut, int *n_items, cxd_error *err)
{
    DcmSequenceOfItems *seq = nullptr;
    if (ds->findAndGetSequence(seq_tag, seq).bad() || !seq || seq->card() == 0)
        return CXD_OK;
    if (n_items)
        *n_items = (int)seq->card();
    DcmItem *it = seq->getItem(0);
    uint32_t entries;
    int32_t first;
    int bits;
    if (!get_lut_descriptor(it, pixel_rep, &entries, &first, &bits))
        return cxd_set_error(err, CXD_ERR_MALFORMED,
                             "info: %s LUT Descriptor (0028,3002) is missing or not 3 US/SS values", name);
    if (bits < 1 || bits > 16)
        return cxd_set_error(err, CXD_ERR_MALFORMED, "info: %s LUT Descriptor says %d bits per entry (1..16)",
                             name, bits);
    DcmElement *d = nullptr;
    if (it->findAndGetElement(DCM_LUTData, d).bad() || !d)
        return cxd_set_error(err, CXD_ERR_MISSING, "info: %s LUT Data (0028,3006) is missing", name);
    Uint32 bytes = d->getLength();
    uint16_t *data = (uint16_t *)cxd_alloc((size_t)entries * sizeof(uint16_t));
    if (!data)
        return cxd_set_error(err, CXD_ERR_NOMEM, "info: out of memory for a %s LUT of %u entries", name,
                             (unsigned)entries);
    Uint16 *w = nullptr;
    OFCondition c = d->getUint16Array(w);
    if (c.bad() || !w) {
        cxd_dealloc(data);
        return cxd_set_error(err, cxd_status_from_dcmtk(c, CXD_ERR_MALFORMED),
                             "info: %s LUT Data (0028,3006) cannot be read as 16-bit words", name);
    }
    if (bits <= 8 && bytes / 2 < entries && (bytes + 1) / 2 * 2 >= entries) {
        /* 8-bit entries packed two per word, first entry in the low byte (PS3.3 C.11.1.1.1) */
        for (uint32_t i = 0; i < entries; i++)
            data[i] = (uint16_t)((w[i / 2] >> ((i & 1) * 8)) & 0xFF);
    } else if (bytes / 2 < entries) {
        cxd_dealloc(data);
        return cxd_set_error(err, CXD_ERR_MALFORMED, "info: %s LUT Data has %u values, its descriptor says %u entries",
                             name, (unsigned)(bytes / 2), (unsigned)entries);
    } else {
        memcpy(data, w, (size_t)entries * sizeof(uint16_t));
    }
    lut->present = 1;
    lut->entries = entries;
    lut->first_mapped = first;
    lut->bits = bits;
    lut->data = data;
    get_str(it, DCM_LUTExplanation, lut->explanation, sizeof lut->explanation);
    get_str(it, DCM_ModalityLUTType, lut->lut_type, sizeof lut->lut_type);
    return CXD_OK;
}

static cxd_status fill_info(cxd_file *f, cxd_info *o, cxd_error *err)
{
    DcmDataset *ds = f->ff.getDataset();
    DcmMetaInfo *meta = f->ff.getMetaInfo();
    get_str(ds, DCM_SOPClassUID, o->sop_class_uid, sizeof o->sop_class_uid);
    if (!o->sop_class_uid[0] && meta)
        get_str(meta, DCM_MediaStorageSOPClassUID, o->sop_class_uid, sizeof o->sop_class_uid);
    get_str(ds, DCM_SOPInstanceUID, o->sop_instance_uid, sizeof o->sop_instance_uid);
    if (!o->sop_instance_uid[0] && meta)
        get_str(meta, DCM_MediaStorageSOPInstanceUID, o->sop_instance_uid, sizeof o->sop_instance_uid);
    get_str(ds, DCM_StudyInstanceUID, o->study_instance_uid, sizeof o->study_instance_uid);
    get_str(ds, DCM_SeriesInstanceUID, o->series_instance_uid, sizeof o->series_instance_uid);
    snprintf(o->transfer_syntax_uid, sizeof o->transfer_syntax_uid, "%s", f->ts_uid.c_str());
    DcmXfer x(f->ts_uid.c_str());
    snprintf(o->transfer_syntax_name, sizeof o->transfer_syntax_name, "%s", x.getXferName());
    get_str(ds, DCM_Modality, o->modality, sizeof o->modality);
    get_str(ds, DCM_BodyPartExamined, o->body_part_examined, sizeof o->body_part_examined);
    get_str(ds, DCM_ViewPosition, o->view_position, sizeof o->view_position);
    get_str(ds, DCM_Laterality, o->laterality, sizeof o->laterality);
    if (!o->laterality[0])
        get_str(ds, DCM_ImageLaterality, o->laterality, sizeof o->laterality);
    get_str(ds, DCM_PhotometricInterpretation, o->photometric, sizeof o->photometric);
    get_str(ds, DCM_SeriesDescription, o->series_description, sizeof o->series_description);
    get_str(ds, DCM_PatientOrientation, o->patient_orientation, sizeof o->patient_orientation);

    o->samples_per_pixel = get_us(ds, DCM_SamplesPerPixel, 1);
    o->number_of_frames = 1;
    if (ds->tagExists(DCM_NumberOfFrames)) {
        Sint32 nf = 0;
        o->number_of_frames = ds->findAndGetSint32(DCM_NumberOfFrames, nf).good() && nf >= 0 ? (int)nf : 0;
    }
    o->bits_allocated = get_us(ds, DCM_BitsAllocated, 0);
    o->bits_stored = get_us(ds, DCM_BitsStored, 0);
    o->high_bit = get_us(ds, DCM_HighBit, 0);
    o->pixel_representation = get_us(ds, DCM_PixelRepresentation, 0);
    o->rows = get_us(ds, DCM_Rows, 0);
    o->columns = get_us(ds, DCM_Columns, 0);

    double v[2];
    o->rescale_slope = 1.0;
    o->rescale_intercept = 0.0;
    int has_slope = get_ds(ds, DCM_RescaleSlope, v, 1);
    if (has_slope)
        o->rescale_slope = v[0];
    int has_icpt = get_ds(ds, DCM_RescaleIntercept, v, 1);
    if (has_icpt)
        o->rescale_intercept = v[0];
    o->has_rescale = has_slope && has_icpt;
    get_str(ds, DCM_RescaleType, o->rescale_type, sizeof o->rescale_type);

    double c[CXD_MAX_WINDOWS], w[CXD_MAX_WINDOWS];
    int nc = get_ds(ds, DCM_WindowCenter, c, CXD_MAX_WINDOWS);
    int nw = get_ds(ds, DCM_WindowWidth, w, CXD_MAX_WINDOWS);
    o->n_windows = nc < nw ? nc : nw;
    for (int i = 0; i < o->n_windows; i++) {
        o->window_center[i] = c[i];
        o->window_width[i] = w[i];
        OFString ex;
        if (ds->findAndGetOFString(DCM_WindowCenterWidthExplanation, ex, (unsigned long)i).good())
            copy_str(o->window_explanation[i], sizeof o->window_explanation[i], ex);
    }
    get_str(ds, DCM_VOILUTFunction, o->voi_lut_function, sizeof o->voi_lut_function);
    get_str(ds, DCM_PresentationLUTShape, o->presentation_lut_shape, sizeof o->presentation_lut_shape);

    /* PixelSpacing 0\0 (seen on real CRs) means "not calibrated", not zero-sized pixels. */
    if (get_ds(ds, DCM_PixelSpacing, v, 2) == 2 && v[0] > 0 && v[1] > 0) {
        o->has_pixel_spacing = 1;
        o->pixel_spacing[0] = v[0], o->pixel_spacing[1] = v[1];
    } else if (ds->tagExistsWithValue(DCM_PixelSpacing)) {
        o->pixel_spacing_unusable = 1;
    }
    if (ds->tagExistsWithValue(DCM_ImagerPixelSpacing) &&
        !(get_ds(ds, DCM_ImagerPixelSpacing, v, 2) == 2 && v[0] > 0 && v[1] > 0))
        o->imager_pixel_spacing_unusable = 1;
    if (get_ds(ds, DCM_ImagerPixelSpacing, v, 2) == 2 && v[0] > 0 && v[1] > 0) {
        o->has_imager_pixel_spacing = 1;
        o->imager_pixel_spacing[0] = v[0], o->imager_pixel_spacing[1] = v[1];
    }

    get_str(ds, DCM_PatientName, o->patient_name, sizeof o->patient_name);
    get_str(ds, DCM_PatientID, o->patient_id, sizeof o->patient_id);
    get_str(ds, DCM_PatientBirthDate, o->patient_birth_date, sizeof o->patient_birth_date);
    get_str(ds, DCM_PatientSex, o->patient_sex, sizeof o->patient_sex);
    get_str(ds, DCM_StudyDate, o->study_date, sizeof o->study_date);
    get_str(ds, DCM_StudyTime, o->study_time, sizeof o->study_time);
    get_str(ds, DCM_StudyID, o->study_id, sizeof o->study_id);
    get_str(ds, DCM_AccessionNumber, o->accession_number, sizeof o->accession_number);
    get_str(ds, DCM_ReferringPhysicianName, o->referring_physician_name, sizeof o->referring_physician_name);
    get_str(ds, DCM_StudyDescription, o->study_description, sizeof o->study_description);
    get_str(ds, DCM_SpecificCharacterSet, o->specific_character_set, sizeof o->specific_character_set);
    get_str(ds, DCM_SeriesNumber, o->series_number, sizeof o->series_number);
    get_str(ds, DCM_InstanceNumber, o->instance_number, sizeof o->instance_number);
    get_str(ds, DCM_Manufacturer, o->manufacturer, sizeof o->manufacturer);

    cxd_status st = get_lut(ds, DCM_ModalityLUTSequence, "Modality", o->pixel_representation, &o->modality_lut,
                            nullptr, err);
    if (st != CXD_OK)
        return st;
    return get_lut(ds, DCM_VOILUTSequence, "VOI", o->pixel_representation, &o->voi_lut, &o->n_voi_luts, err);
}

extern "C" cxd_status cxd_file_info(const cxd_file *cf, cxd_info *out, cxd_error *err)
{
    if (!cf || !out)
        return cxd_set_error(err, CXD_ERR_INVALID, "info: NULL %s", cf ? "out" : "file");
    cxd_file *f = const_cast<cxd_file *>(cf);
    cxd_info *tmp = (cxd_info *)calloc(1, sizeof *tmp); /* ~6 KB: keep it off small thread stacks */
    if (!tmp)
        return cxd_set_error(err, CXD_ERR_NOMEM, "info: out of memory");
    cxd_status st;
    try {
        std::lock_guard<std::mutex> lock(f->mu);
        st = fill_info(f, tmp, err);
    } catch (const std::bad_alloc &) {
        st = cxd_set_error(err, CXD_ERR_NOMEM, "info: out of memory while reading attributes");
    } catch (...) {
        st = cxd_set_error(err, CXD_ERR_INTERNAL, "info: unexpected exception while reading attributes");
    }
    if (st == CXD_OK)
        *out = *tmp;
    else
        cxd_info_clear(tmp);
    free(tmp);
    return st;
}

extern "C" void cxd_info_clear(cxd_info *info)
{
    if (!info)
        return;
    cxd_dealloc(info->modality_lut.data);
    cxd_dealloc(info->voi_lut.data);
    info->modality_lut.data = nullptr;
    info->voi_lut.data = nullptr;
    info->modality_lut.present = info->voi_lut.present = 0;
}

extern "C" int cxd_info_spacing(const cxd_info *info, double spacing[2], const char **which)
{
    const char *w = "none";
    int ok = 0;
    if (info && info->has_pixel_spacing) {
        spacing[0] = info->pixel_spacing[0], spacing[1] = info->pixel_spacing[1];
        w = "PixelSpacing", ok = 1;
    } else if (info && info->has_imager_pixel_spacing) {
        spacing[0] = info->imager_pixel_spacing[0], spacing[1] = info->imager_pixel_spacing[1];
        w = "ImagerPixelSpacing", ok = 1;
    }
    if (which)
        *which = w;
    return ok;
}

/* cxdicom: the one C header over the C++17/DCMTK layer (dicom/). Reading and decoding source
 * images, writing results (SEG, SR, GSPS, SC) and the network roles (listener, sender) all sit
 * behind this header. No DCMTK type crosses it; every entry point catches all C++ exceptions.
 * dicom/ includes nothing from src/: it has its own status codes and error struct, which the
 * pipeline maps onto cx_error. Ownership: whoever creates frees with the matching _free function;
 * _free(NULL) is a no-op. Out-parameters are written only on success. */
#ifndef CXDICOM_H
#define CXDICOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes; the enum only grows. */
typedef enum cxd_status {
    CXD_OK = 0,
    CXD_ERR_NOMEM = 1,
    CXD_ERR_IO = 2,          /* cannot open/read/write the file */
    CXD_ERR_NOT_DICOM = 3,   /* no DICM preamble and not parseable as a dataset */
    CXD_ERR_MALFORMED = 4,   /* parse error, truncated data, inconsistent attributes */
    CXD_ERR_UNSUPPORTED = 5, /* colour, multi-frame, unknown transfer syntax, ... */
    CXD_ERR_MISSING = 6,     /* a required attribute is absent */
    CXD_ERR_INVALID = 7,     /* bad argument from the caller */
    CXD_ERR_WRITE = 8,       /* building or saving an output object failed */
    CXD_ERR_NETWORK = 9,
    CXD_ERR_INTERNAL = 10
} cxd_status;

typedef struct cxd_error {
    cxd_status code;
    char msg[512]; /* "stage: detail with the numbers" */
} cxd_error;

const char *cxd_status_name(cxd_status s);

/* Library set-up: registers the JPEG/JPEG-LS/RLE decoders and checks the data dictionary.
 * Idempotent and thread-safe; every other entry point calls it implicitly. */
cxd_status cxd_init(cxd_error *err);
/* Optional, once at process end after every other cxd call has returned (no thread may still be
 * decoding): deregisters the codecs cxd_init registered, so leak checkers see nothing left. */
void cxd_shutdown(void);

/* Allocation hook for buffers the layer hands out (decoded pixels, copied strings): tests make
 * the Nth allocation fail. NULL restores malloc/free. */
typedef void *(*cxd_malloc_fn)(size_t n);
typedef void (*cxd_free_fn)(void *p);
void cxd_set_allocator(cxd_malloc_fn m, cxd_free_fn f);

/* DCMTK's own log messages (parse warnings, codec notes) go to this sink instead of stderr;
 * level 0 error, 1 warning, 2 info, 3 debug. NULL (the default) drops them. Thread-safe. */
typedef void (*cxd_log_fn)(int level, const char *msg, void *user);
void cxd_set_log(cxd_log_fn fn, void *user);

/* ---- reading ---- */
/* An opened DICOM object (dataset + meta header), all values in memory. Info and decode calls on
 * one cxd_file may come from several threads (they are serialised); free it from one thread. */
typedef struct cxd_file cxd_file;

cxd_status cxd_file_open(const char *path, cxd_file **out, cxd_error *err);
/* Parses a complete Part 10 file (or a bare dataset) from memory; the buffer is copied. */
cxd_status cxd_file_open_memory(const void *buf, size_t len, cxd_file **out, cxd_error *err);
void cxd_file_free(cxd_file *f);

#define CXD_MAX_WINDOWS 8
#define CXD_STR 128   /* UIDs and short strings */
#define CXD_LSTR 256  /* names and descriptions (UTF-8 after conversion is not attempted) */

/* A LUT (Modality LUT Sequence or VOI LUT Sequence item): descriptor + data. */
typedef struct cxd_lut {
    int present;
    uint32_t entries;      /* descriptor[0], 0 meaning 65536 already resolved */
    int32_t first_mapped;  /* descriptor[1], signed when pixel representation is 1 */
    int bits;              /* descriptor[2] */
    uint16_t *data;        /* `entries` values; owned by the cxd_info */
    char explanation[CXD_LSTR];
    char lut_type[CXD_STR]; /* Modality LUT Type, e.g. "HU" or "OD" */
} cxd_lut;

/* The attributes the pipeline needs. Strings are NUL-terminated, "" when absent.
 * Numeric "has_" flags say whether an attribute was present (and usable). */
typedef struct cxd_info {
    char sop_class_uid[CXD_STR];
    char sop_instance_uid[CXD_STR];
    char study_instance_uid[CXD_STR];
    char series_instance_uid[CXD_STR];
    char transfer_syntax_uid[CXD_STR];
    char transfer_syntax_name[CXD_LSTR];
    char modality[CXD_STR];
    char body_part_examined[CXD_STR];
    char view_position[CXD_STR];
    char laterality[CXD_STR];        /* Laterality or, when absent, ImageLaterality */
    char photometric[CXD_STR];       /* MONOCHROME1, MONOCHROME2, RGB, ... */
    char series_description[CXD_LSTR];
    char patient_orientation[CXD_STR];
    int samples_per_pixel;
    int number_of_frames;            /* 1 when absent, 0 when present but not a number */
    int bits_allocated, bits_stored, high_bit;
    int pixel_representation;        /* 0 unsigned, 1 two's complement */
    int rows, columns;
    int has_rescale;
    double rescale_slope, rescale_intercept;
    char rescale_type[CXD_STR];
    int n_windows;                   /* number of (centre, width) pairs */
    double window_center[CXD_MAX_WINDOWS], window_width[CXD_MAX_WINDOWS];
    char window_explanation[CXD_MAX_WINDOWS][CXD_STR];
    char voi_lut_function[CXD_STR];  /* LINEAR (default when ""), LINEAR_EXACT, SIGMOID */
    cxd_lut modality_lut;            /* first item of the Modality LUT Sequence */
    cxd_lut voi_lut;                 /* first item of the VOI LUT Sequence */
    int n_voi_luts;
    char presentation_lut_shape[CXD_STR]; /* IDENTITY, INVERSE or "" */
    /* Spacing in mm, row spacing first (DICOM order). A value of 0\0 counts as absent. */
    int has_pixel_spacing;
    double pixel_spacing[2];
    int has_imager_pixel_spacing;
    double imager_pixel_spacing[2];
    /* Patient / study attributes a derived object copies. */
    char patient_name[CXD_LSTR];     /* raw value in the source character set */
    char patient_id[CXD_STR];
    char patient_birth_date[CXD_STR];
    char patient_sex[CXD_STR];
    char study_date[CXD_STR], study_time[CXD_STR];
    char study_id[CXD_STR], accession_number[CXD_STR];
    char referring_physician_name[CXD_LSTR];
    char study_description[CXD_LSTR];
    char specific_character_set[CXD_LSTR];
    char series_number[CXD_STR], instance_number[CXD_STR];
    char manufacturer[CXD_LSTR];
    /* 1 when PixelSpacing / ImagerPixelSpacing is present but unusable (0\0, or not two positive
     * numbers): has_..._spacing is then 0; lets `cxrseg info` say "present but treated as absent". */
    int pixel_spacing_unusable, imager_pixel_spacing_unusable;
} cxd_info;

/* Fills *out with the attributes (LUT data is owned by *out: release with cxd_info_clear). */
cxd_status cxd_file_info(const cxd_file *f, cxd_info *out, cxd_error *err);
void cxd_info_clear(cxd_info *info);

/* Which spacing areas are computed with: PixelSpacing if present and non-zero, else
 * ImagerPixelSpacing; returns 0 (and "none") when neither is usable. *which is a static string:
 * "PixelSpacing", "ImagerPixelSpacing" or "none". Spacing in mm, row then column. */
int cxd_info_spacing(const cxd_info *info, double spacing[2], const char **which);

/* Decoded stored pixel values of a single-frame greyscale image, before any LUT: one int32 per
 * pixel, row-major, sign-extended per PixelRepresentation and masked to BitsStored. */
typedef struct cxd_pixels {
    int rows, columns;
    int bits_stored;
    int is_signed;
    int32_t *data; /* rows*columns values, allocated with the cxd allocator */
} cxd_pixels;

/* Decodes the pixel data in any supported transfer syntax: implicit/explicit little endian,
 * explicit big endian, deflated, JPEG baseline/extended/lossless (process 14, SV1), JPEG-LS
 * lossless/near-lossless, RLE, JPEG 2000 lossless/lossy (OpenJPEG). Colour, multi-frame and
 * unknown syntaxes are CXD_ERR_UNSUPPORTED with a message naming what was found. */
cxd_status cxd_file_decode(const cxd_file *f, cxd_pixels *out, cxd_error *err);
void cxd_pixels_clear(cxd_pixels *px);

/* ---- writing results (SEG, TID 1500 SR, GSPS, secondary capture) ----
 * The findings description is independent of the engine: the pipeline fills it from the model's
 * class table and the instances. Masks are at SOURCE resolution, stored box-local. Strings are
 * ASCII (or UTF-8 when the source's character set is ISO_IR 192); other bytes become '?' so that
 * the copied patient/study attributes keep the source's Specific Character Set. */

typedef struct cxd_code {
    char value[64];   /* "" = no code */
    char scheme[32];  /* SCT, DCM, 99CXRSEG, ... */
    char meaning[128];
} cxd_code;

typedef enum cxd_finding_role {
    CXD_ROLE_ANATOMY = 0, /* a lung field: SEG segment + SR area group, no lung share */
    CXD_ROLE_FINDING = 1  /* an abnormality (GGO, consolidation, opacity) */
} cxd_finding_role;

#define CXD_MAX_SHARES 2
typedef struct cxd_lung_share {
    cxd_code laterality; /* 24028007 SCT Right / 7771000 SCT Left */
    double percent;      /* finding pixels inside that lung / lung pixels * 100 */
} cxd_lung_share;

typedef struct cxd_finding {
    cxd_finding_role role;
    char label[64];               /* Segment Label, e.g. "GGO", "Right lung" */
    char description[CXD_LSTR];   /* Segment Description ("" = none) */
    cxd_code category;            /* (49755003 SCT) or (123037004 SCT) */
    cxd_code type;                /* (112120 DCM) GGO, (39607008 SCT) Lung */
    cxd_code type_modifier;       /* laterality of the segmented property; value "" = none */
    cxd_code finding_site;        /* SR Finding Site (e.g. Lung); value "" = none */
    cxd_code site_laterality;     /* SR laterality of the finding site; value "" = none */
    double score;                 /* model score in [0,1]; < 0 = none */
    int x0, y0, w, h;             /* box in source pixels; the mask covers exactly this box */
    const uint8_t *mask;          /* w*h bytes, row-major, non-zero = inside; borrowed */
    uint8_t rgb[3];               /* display colour (sRGB) -> RecommendedDisplayCIELabValue */
    char tracking_id[64];         /* "" = derived: "<label> <n>" */
    char tracking_uid[CXD_STR];   /* "" = derived deterministically (see cxd_derive_uid) */
    int n_shares;                 /* 0..CXD_MAX_SHARES */
    cxd_lung_share shares[CXD_MAX_SHARES];
} cxd_finding;

typedef struct cxd_algorithm {
    char name[64];          /* e.g. "cxrseg Mask R-CNN" */
    char version[64];       /* model version */
    char model_sha256[65];  /* hex digest of the model file; part of every derived UID */
} cxd_algorithm;

/* Where the report-level present/absent answer comes from (cxd_write_options.presence). */
enum { CXD_PRESENCE_FROM_FINDINGS = 0, CXD_PRESENCE_ABSENT = 1, CXD_PRESENCE_PRESENT = 2 };

/* Which outputs cxd_results_write produces (bit mask). */
enum { CXD_OUT_SEG = 1, CXD_OUT_SR = 2, CXD_OUT_GSPS = 4, CXD_OUT_SC = 8 };

/* How the SEG stores its masks (cxd_write_options.seg_encoding).
 * FRACTIONAL: 8 bits per pixel, SegmentationType FRACTIONAL (OCCUPANCY), values 0 or the
 *   MaximumFractionalValue 255 only. Loads in OHIF 3.13.2 at every image size and segment count
 *   (its adapter takes such a SEG as binary; Orthanc serves 8-bit frames at any width). Eight
 *   times the size of BINARY uncompressed.
 * BINARY: 1 bit per pixel, bits packed across frame boundaries (PS3.5 8.1.1). The smaller object,
 *   but OHIF 3.13.2 over Orthanc fails on it whenever the packed pixel data needs DICOM's pad byte
 *   (an odd byte count: rows x columns x frames / 8 rounded up). */
enum { CXD_SEG_FRACTIONAL = 0, CXD_SEG_BINARY = 1 };

/* The SEG file's transfer syntax (cxd_write_options.seg_compression).
 * RLE: a FRACTIONAL SEG is written RLE Lossless (PS3.5 Annex G, one fragment per frame): a mask
 *   frame is mostly runs, so the file is ~50x smaller (18 MB -> 0.3 MB for five 1841 x 1955
 *   frames), which is what writing, fsync, sending and the PACS's storage cost. OHIF 3.13.2 decodes
 *   RLE SEG frames itself; a destination that does not accept RLE gets it uncompressed (the sender
 *   converts). A BINARY SEG is always uncompressed (DCMTK's RLE encoder takes 8 and 16 bits only).
 * UNCOMPRESSED: Explicit VR Little Endian. */
enum { CXD_SEG_UNCOMPRESSED = 0, CXD_SEG_RLE = 1 };

typedef struct cxd_write_options {
    char uid_root[CXD_STR];      /* "" = "2.25" (UUID-derived integers) */
    int series_number;           /* SEG gets this, SR +1, GSPS +2, SC +3; 0 = 900 */
    char series_description[CXD_LSTR]; /* prefix; "" = "cxrseg" */
    char manufacturer[64];       /* "" = "cxrseg project" */
    char software_version[64];   /* "" = PACKAGE_VERSION of cxrseg is not known here: "unknown" */
    int outputs;                 /* CXD_OUT_* mask */
    int seg_without_findings;    /* 1: write a SEG (lungs only) even with no CXD_ROLE_FINDING */
    int seg_encoding;            /* CXD_SEG_FRACTIONAL (the default) or CXD_SEG_BINARY */
    int seg_compression;         /* CXD_SEG_RLE (the default) or CXD_SEG_UNCOMPRESSED */
    /* The report-level present/absent item (SR "Qualitative Evaluations"): its concept name
     * ("" = (112120 DCM GGO)) and its answer. With presence = CXD_PRESENCE_FROM_FINDINGS it is
     * "present" when a CXD_ROLE_FINDING with pixels has the qualitative type code; otherwise it is
     * the caller's answer (the pipeline's: the model's image-level decision rule). */
    cxd_code qualitative;
    int presence;                /* CXD_PRESENCE_* */
    char presence_basis[CXD_LSTR]; /* "" = none; else an SR Comment beside the answer saying how
                                    * it was reached (score, rule) */
    /* The secondary capture's picture, already drawn by the caller (the display image with the
     * findings and a legend burned in; the pipeline makes it with cx_overlay_render, the same
     * picture as the CLI's overlay.png): 8-bit RGB, interleaved, source rows x cols. */
    const uint8_t *display_rgb;  /* borrowed; NULL = no SC */
    int display_rows, display_cols;
    /* Per output (0 SEG, 1 SR, 2 GSPS, 3 SC): series number and description; 0 / "" = derived
     * from series_number and series_description above. */
    int series_numbers[4];
    char series_descriptions[4][CXD_STR];
} cxd_write_options;

void cxd_write_options_default(cxd_write_options *o);

/* What was written. Paths are inside out_dir: seg.dcm, sr.dcm, gsps.dcm, sc.dcm. */
typedef struct cxd_write_result {
    int written;                     /* CXD_OUT_* mask of files actually written */
    char seg_path[1024], sr_path[1024], gsps_path[1024], sc_path[1024];
    char seg_sop_uid[CXD_STR], sr_sop_uid[CXD_STR], gsps_sop_uid[CXD_STR], sc_sop_uid[CXD_STR];
    int n_segments;                  /* segments (= frames) in the SEG */
    int n_regions;                   /* connected regions traced into SR contours */
    int finding_present;             /* the report-level answer written (see cxd_write_options.presence) */
    const char *spacing_used;        /* "PixelSpacing", "ImagerPixelSpacing" or "none" */
    double spacing_mm[2];
} cxd_write_result;

/* Writes the requested outputs for one source image into out_dir (must exist). Files are written
 * to a temporary name and renamed. Never keeps pointers to its arguments. */
cxd_status cxd_results_write(const cxd_file *src, const cxd_finding *findings, size_t n_findings,
                             const cxd_algorithm *alg, const cxd_write_options *opt,
                             const char *out_dir, cxd_write_result *out, cxd_error *err);

/* Deterministic UID: root + "." + decimal digits of SHA-256(source_uid | kind | model_sha256),
 * at most 64 characters. kind names the output ("seg", "seg-series", "track/2", ...). */
cxd_status cxd_derive_uid(const char *root, const char *source_uid, const char *kind,
                          const char *model_sha256, char out[65], cxd_error *err);

/* SHA-256 of a buffer as 64 lowercase hex digits + NUL (for model files and tests). */
void cxd_sha256_hex(const void *data, size_t len, char out[65]);

/* sRGB (0..255) -> DICOM scaled CIELab (L 0..65535 for 0..100, a/b 0..65535 for -128..127). */
void cxd_rgb_to_dicom_lab(const uint8_t rgb[3], uint16_t lab[3]);

/* Contours of the connected regions (8-connected) of a box-local mask, outer boundaries only,
 * in source pixel coordinates of pixel centres (x + 0.5, y + 0.5). points: x,y pairs of every
 * contour concatenated; starts[i] = first point of contour i; n_contours, n_points.
 * Release with cxd_contours_clear. */
typedef struct cxd_contours {
    size_t n_contours, n_points;
    size_t *starts;     /* n_contours + 1 entries; starts[n_contours] = n_points */
    float *points;      /* 2 * n_points */
    size_t *areas;      /* pixels of each region */
} cxd_contours;
cxd_status cxd_mask_contours(const cxd_finding *f, cxd_contours *out, cxd_error *err);
void cxd_contours_clear(cxd_contours *c);

/* ---- network: C-STORE/C-ECHO listener and C-STORE sender (dicom/net*.cc) ----
 * The listener binds its port in cxd_listener_open (so "port in use" is a start-up error), then
 * cxd_listener_run hands every TCP connection to its own thread before reading a byte of it, so no
 * client can hold up another: a connection from an address that already has max_per_host open is
 * closed at once, and so is one beyond the total of max(64, 4 x max_associations); the
 * A-ASSOCIATE-RQ must arrive complete within acse_timeout_s, and on an open association every
 * read or write waits at most dimse_timeout_s (a PDU cut short and left silent is aborted).
 * Associations run up to max_associations at once (more are rejected "transient, local limit
 * exceeded"). Unknown called AE titles are rejected "called AE
 * title not recognized", calling AE titles outside the allow-list "calling AE title not
 * recognized", hosts outside the allow-list "no reason given" (the standard has no host reason).
 * Each C-STORE is received directly into the file the store_begin callback names; the callbacks
 * decide the DIMSE status, so the durability rules stay with the caller. Callbacks run on
 * association threads, concurrently. */
#define CXD_STATUS_SUCCESS 0x0000u
#define CXD_STATUS_OUT_OF_RESOURCES 0xA700u   /* Refused: Out of Resources */
#define CXD_STATUS_NOT_AUTHORIZED 0x0124u     /* Refused: Not Authorized (a filter rule said reject) */
#define CXD_STATUS_CANNOT_UNDERSTAND 0xC000u  /* Error: Cannot understand */
#define CXD_STATUS_NOT_SENT 0xFFFFu           /* cxd_send_files: the file was not transferred */

typedef struct cxd_listener cxd_listener;

/* DICOM TLS (PS3.15 B.9 / BCP 195 profile, TLS 1.2 or later) for the listener or a destination.
 * Files are PEM. verify_peer: CXD_TLS_VERIFY_REQUIRE = the peer must present a certificate that
 * chains to ca_file (the listener asks every client for one: mutual authentication as IHE ATNA
 * requires); CXD_TLS_VERIFY_IF_PRESENTED = a certificate the peer presents must chain to ca_file,
 * none is accepted; CXD_TLS_VERIFY_NONE = any certificate or none (encryption without
 * authentication of the peer). The listener needs certificate and key; a destination needs them
 * only when its peer asks for a client certificate. */
enum { CXD_TLS_VERIFY_REQUIRE = 0, CXD_TLS_VERIFY_IF_PRESENTED = 1, CXD_TLS_VERIFY_NONE = 2 };
typedef struct cxd_tls_params {
    int enabled;                    /* 0: plain TCP (the other fields are ignored) */
    const char *certificate_file;   /* our certificate chain */
    const char *private_key_file;   /* its unencrypted private key */
    const char *ca_file;            /* certificates trusted for the peer (required unless VERIFY_NONE) */
    int verify_peer;                /* CXD_TLS_VERIFY_* */
} cxd_tls_params;

typedef struct cxd_listener_params {
    const char *ae_title;           /* our AE title; associations to another called AE are rejected */
    const char *bind_address;       /* IPv4 address to listen on; NULL, "" or "0.0.0.0": all */
    int port;                       /* 0 = a free port chosen by the system (see cxd_listener_port) */
    unsigned max_pdu;               /* bytes, 4096..131072 (0 = 65536) */
    unsigned acse_timeout_s;        /* association negotiation (0 = 30) */
    unsigned dimse_timeout_s;       /* wait for the next message on an open association (0 = 60) */
    unsigned max_associations;      /* concurrent (0 = 8) */
    unsigned max_per_host;          /* open TCP connections from one address, counted before anything
                                     * is read (0 = 16); more are closed at once */
    const char *const *transfer_syntaxes; /* accepted for storage; NULL = every syntax the decoder reads */
    size_t n_transfer_syntaxes;
    const char *const *calling_aes; /* allow-list; n = 0 accepts any calling AE */
    size_t n_calling_aes;
    const char *const *hosts;       /* allow-list: IPv4 addresses, a.b.c.d/prefix networks or host names
                                     * (resolved when the list is set); n = 0 accepts any host */
    size_t n_hosts;
    int accept_any_called_ae;       /* 1: do not check the called AE title */
    cxd_tls_params tls;             /* fixed when the listener opens (cxd_listener_update ignores it) */
} cxd_listener_params;

/* The association a callback is called for. */
typedef struct cxd_peer {
    char calling_ae[17];
    char called_ae[17];
    char host[64];                  /* IP address */
    unsigned assoc_id;              /* 1, 2, ... per listener, for log lines */
} cxd_peer;

/* What the listener parsed from a received object (header up to the pixel data). */
typedef struct cxd_object_info {
    int parsed;                     /* 0: the header could not be read; parse_error says why */
    char parse_error[256];
    char sop_class_uid[CXD_STR];    /* from the data set (or the C-STORE request when not parsed) */
    char sop_instance_uid[CXD_STR];
    char transfer_syntax_uid[CXD_STR];
    char modality[CXD_STR];
    char body_part_examined[CXD_STR];
    char view_position[CXD_STR];
    char series_description[CXD_LSTR];
    char study_instance_uid[CXD_STR];
    int rows, columns;              /* 0 when absent */
    long long file_size;
} cxd_object_info;

typedef struct cxd_listener_callbacks {
    void *user;
    /* Before the data set is received: write the file path to receive into and return
     * CXD_STATUS_SUCCESS, or return a refusal status (e.g. CXD_STATUS_OUT_OF_RESOURCES; the data set
     * is then read and discarded). *token is passed back to store_end. comment: optional text for
     * the response's Error Comment (max 64 chars). */
    uint16_t (*store_begin)(void *user, const cxd_peer *peer, const char *sop_class_uid,
                            const char *sop_instance_uid, char *path, size_t path_len, void **token,
                            char *comment, size_t comment_len);
    /* After the data set was written to path (received = 1) or the transfer failed (received = 0,
     * obj NULL; the return value is then ignored). Returns the status sent to the SCU. */
    uint16_t (*store_end)(void *user, void *token, const cxd_peer *peer, int received, const cxd_object_info *obj,
                          char *comment, size_t comment_len);
    /* Association events for the log: "accepted", "rejected: <reason>", "released", "aborted",
     * "echo". May be NULL. */
    void (*event)(void *user, const cxd_peer *peer, const char *what);
} cxd_listener_callbacks;

/* Binds the port and prepares the accepted presentation contexts (CR, DX for presentation and
 * processing, Verification). Errors: CXD_ERR_NETWORK "listener: cannot listen on port N: ..." */
cxd_status cxd_listener_open(const cxd_listener_params *p, const cxd_listener_callbacks *cb, cxd_listener **out,
                             cxd_error *err);
int cxd_listener_port(const cxd_listener *l);
/* Replaces the allow-lists and timeouts (SIGHUP); the port and AE title stay. Thread-safe. */
cxd_status cxd_listener_update(cxd_listener *l, const cxd_listener_params *p, cxd_error *err);
/* Accepts associations until cxd_listener_stop; then waits for the open associations to finish. */
cxd_status cxd_listener_run(cxd_listener *l, cxd_error *err);
/* Thread-safe and async-signal-unsafe; run returns within about a second. */
void cxd_listener_stop(cxd_listener *l);
unsigned cxd_listener_active(cxd_listener *l);
void cxd_listener_free(cxd_listener *l);

/* Reads the header of a DICOM file (up to the pixel data) into *out. */
cxd_status cxd_object_peek(const char *path, cxd_object_info *out, cxd_error *err);

typedef struct cxd_send_params {
    const char *calling_ae;         /* our AE title as SCU */
    const char *called_ae;          /* the destination's AE title */
    const char *host;
    int port;
    unsigned max_pdu;               /* 0 = 65536 */
    unsigned connect_timeout_s;     /* 0 = 10 */
    unsigned acse_timeout_s;        /* 0 = 30 */
    unsigned dimse_timeout_s;       /* 0 = 60 */
    cxd_tls_params tls;             /* TLS to the destination; files are read on each send */
} cxd_send_params;

/* Sends the files over one association, proposing each file's SOP class with its own transfer
 * syntax and with explicit/implicit little endian. statuses[i] receives the C-STORE response status
 * of file i (CXD_STATUS_NOT_SENT when it could not be sent). Returns CXD_OK when the association
 * worked (individual files may still have failed: check statuses), CXD_ERR_NETWORK when it could
 * not be opened ("send: association with AE@host:port rejected/failed: ..."). */
cxd_status cxd_send_files(const cxd_send_params *p, const char *const *paths, size_t n, uint16_t *statuses,
                          cxd_error *err);

/* C-ECHO (for `cxrseg-node -t` checks and tests). */
cxd_status cxd_echo(const cxd_send_params *p, cxd_error *err);


#ifdef __cplusplus
}
#endif
#endif

/* Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99) before DCMTK sees it. DCMTK reads a
 * deflated data set through its zlib filter, whose stream has no known end, so a declared element
 * length is believed and allocated however far it runs past the data (1.5 GB from a 1.4 KB file,
 * found by tests/fuzz). Here the data set is inflated first, with zlib, into an anonymous file
 * behind a rewritten meta header that says Explicit VR Little Endian: DCMTK then parses a file of
 * known size, where a length past the end is an error before anything is allocated (see
 * load_path in read.cc). The caller restores the deflated syntax's UID. GPL-3.0-or-later. */
#include "read_internal.h"

#include <cerrno>
#include <cstring>
#include <string>

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

static const char DEFLATED[] = "1.2.840.10008.1.2.1.99";
static const char EXPLICIT_LE[] = "1.2.840.10008.1.2.1";

static unsigned le16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* VRs of explicit VR encoding with a 2-byte length (PS3.5 7.1.2); every other VR, known or not,
 * has 2 reserved bytes and a 4-byte length (PS3.5 6.2.2: so must a VR unknown to the reader). */
static bool short_vr(const unsigned char *vr)
{
    static const char *const l[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                                    "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"};
    for (const char *v : l)
        if (vr[0] == v[0] && vr[1] == v[1])
            return true;
    return false;
}

/* The deflated syntax's UID anywhere in b[from, to). */
static bool mentions_deflated(const unsigned char *b, size_t from, size_t to)
{
    size_t k = sizeof DEFLATED - 1;
    for (size_t i = from; i + k <= to; i++)
        if (b[i] == '1' && memcmp(b + i, DEFLATED, k) == 0)
            return true;
    return false;
}

static bool put_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w, n -= (size_t)w;
    }
    return true;
}

// Walks the group 0002 elements (explicit VR little endian) from byte 132: *meta receives the
// elements other than (0002,0000) with TransferSyntaxUID replaced by Explicit VR Little Endian,
// *deflated whether the syntax was the deflated one, *clean whether the walk could follow the
// header (and met the deflated UID only where it expects it), *pos where the walk stopped.
static void walk_meta(const unsigned char *b, size_t n, std::string &meta, bool &deflated, bool &clean, size_t &pos)
{
    deflated = false;
    clean = true;
    pos = 132;
    while (pos + 8 <= n && le16(b + pos) == 0x0002) {
        unsigned elem = le16(b + pos + 2);
        const unsigned char *vr = b + pos + 4;
        size_t head = 8, len;
        if (vr[0] < 'A' || vr[0] > 'Z' || vr[1] < 'A' || vr[1] > 'Z') {
            clean = false;
            return;
        }
        if (!short_vr(vr)) {
            if (pos + 12 > n) {
                clean = false;
                return;
            }
            head = 12;
            len = le32(b + pos + 8);
        } else {
            len = le16(b + pos + 6);
        }
        if (len > n - pos - head) {
            clean = false;
            return;
        }
        bool is_ts = elem == 0x0010;
        if (is_ts) {
            std::string v((const char *)b + pos + head, len);
            while (!v.empty() && (v.back() == '\0' || v.back() == ' '))
                v.pop_back();
            deflated = v == DEFLATED;
            static const unsigned char ts[8] = {0x02, 0x00, 0x10, 0x00, 'U', 'I', 20, 0};
            meta.append((const char *)ts, 8);
            meta.append(EXPLICIT_LE, sizeof EXPLICIT_LE); /* 19 characters + NUL pad = 20 */
        } else if (elem != 0x0000) {
            meta.append((const char *)b + pos, head + len);
        }
        pos += head + len;
        if (!is_ts && mentions_deflated(b, pos - len, pos))
            clean = false; /* the UID in another meta element: not what this walk expects */
    }
}

// Inflates the zn bytes at z into fd. PS3.5 A.5 says raw deflate (RFC 1951); DCMTK also takes a
// zlib stream (RFC 1950), so does this. A stream cut short ends the copy (DCMTK then finds the data
// set truncated); bytes after the end of the stream are ignored, as DCMTK does.
static cxd_status inflate_into(int fd, const unsigned char *z, size_t zn, size_t pos, const char *what, cxd_error *err)
{
    bool zlib_header = zn >= 2 && (z[0] & 0x0F) == 8 && ((unsigned)z[0] << 8 | z[1]) % 31 == 0;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, zlib_header ? 15 : -15) != Z_OK)
        return cxd_set_error(err, CXD_ERR_NOMEM, "open: out of memory for zlib");
    static const size_t CHUNK = 1 << 16;
    unsigned char *out = new (std::nothrow) unsigned char[CHUNK];
    cxd_status st = out ? CXD_OK : CXD_ERR_NOMEM;
    size_t total = 0;
    s.next_in = const_cast<unsigned char *>(z);
    while (st == CXD_OK) {
        size_t feed = zn - (size_t)(s.next_in - z);
        s.avail_in = feed > 0x40000000u ? 0x40000000u : (uInt)feed;
        s.next_out = out;
        s.avail_out = (uInt)CHUNK;
        int r = inflate(&s, Z_NO_FLUSH);
        size_t got = CHUNK - s.avail_out;
        total += got;
        if (total > (size_t)0xFFFFFFF0u)
            st = cxd_set_error(err, CXD_ERR_UNSUPPORTED, "open: %s inflates to more than 4 GiB", what);
        else if (got && !put_all(fd, out, got))
            st = cxd_set_error(err, CXD_ERR_IO, "open: writing the inflated copy of %s: %s", what, strerror(errno));
        else if (r == Z_STREAM_END)
            break;
        else if (r == Z_BUF_ERROR || (r == Z_OK && got == 0 && s.avail_in == 0))
            break;
        else if (r == Z_MEM_ERROR)
            st = cxd_set_error(err, CXD_ERR_NOMEM, "open: out of memory inflating %s", what);
        else if (r != Z_OK)
            st = cxd_set_error(err, CXD_ERR_MALFORMED, "open: %s: the deflated data set is corrupt at byte %zu (%s)",
                               what, pos + (size_t)(s.next_in - z), s.msg ? s.msg : "zlib error");
    }
    if (st == CXD_ERR_NOMEM && !out)
        cxd_set_error(err, CXD_ERR_NOMEM, "open: out of memory inflating %s", what);
    delete[] out;
    inflateEnd(&s);
    return st;
}

cxd_status cxd_deflated_rewrite(const unsigned char *b, size_t n, const char *what, int *fd_out, cxd_error *err)
{
    *fd_out = -1;
    if (n < 132 || memcmp(b + 128, "DICM", 4) != 0)
        return CXD_OK; /* no meta header: DCMTK does not take a bare data set as deflated */
    /* DCMTK's own reading of a meta header the walk cannot follow, or follows differently, is not
     * predicted: when such a header names the deflated syntax anywhere, the file is refused rather
     * than handed to the inflating stream. */
    std::string meta;
    bool deflated, clean;
    size_t pos;
    walk_meta(b, n, meta, deflated, clean, pos);
    if (!clean || (!deflated && mentions_deflated(b, 132, pos))) {
        if (deflated || mentions_deflated(b, 132, n))
            return cxd_set_error(err, CXD_ERR_MALFORMED,
                                 "open: %s names the deflated transfer syntax in a meta header that cannot be "
                                 "followed (element at byte %zu)", what, pos);
        return CXD_OK;
    }
    if (!deflated)
        return CXD_OK;

    int fd = memfd_create("cxrseg-inflated", MFD_CLOEXEC);
    if (fd < 0)
        return cxd_set_error(err, CXD_ERR_IO, "open: memfd_create: %s", strerror(errno));
    unsigned char head[144];
    memset(head, 0, 128);
    memcpy(head + 128, "DICM", 4);
    static const unsigned char gl[8] = {0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0};
    memcpy(head + 132, gl, 8);
    uint32_t ml = (uint32_t)meta.size();
    for (int i = 0; i < 4; i++)
        head[140 + i] = (unsigned char)(ml >> (8 * i));
    if (!put_all(fd, head, sizeof head) || !put_all(fd, meta.data(), meta.size())) {
        close(fd);
        return cxd_set_error(err, CXD_ERR_IO, "open: writing the inflated copy of %s: %s", what, strerror(errno));
    }
    cxd_status st = inflate_into(fd, b + pos, n - pos, pos, what, err);
    if (st != CXD_OK) {
        close(fd);
        return st;
    }
    *fd_out = fd;
    return CXD_OK;
}

const char *cxd_deflated_uid(void) { return DEFLATED; }

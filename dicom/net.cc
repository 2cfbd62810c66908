// dicom/net.cc: the node's network roles over DCMTK dcmnet, behind the C functions of the
// "network" section of cxdicom.h: the C-STORE/C-ECHO listener (own accept loop + one DcmThreadSCP
// per association) and the C-STORE sender (DcmSCU). No DCMTK type or exception leaves this file.
#include "cxdicom.h"
#include "read_internal.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dcmlayer.h>
#include <dcmtk/dcmnet/dcmtrans.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/dulstruc.h>
#include <dcmtk/dcmnet/scpthrd.h>
#include <dcmtk/dcmnet/scu.h>
#include <dcmtk/dcmtls/tlslayer.h>
#include <dcmtk/oflog/oflog.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

void copy_str(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return;
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
}

// dcmnet logs to stderr by default; a library never prints (the node logs through cx_log).
void quiet_dcmtk()
{
    static std::once_flag once;
    std::call_once(once, [] { OFLog::configure(OFLogger::OFF_LOG_LEVEL); });
}

// Storage classes the node processes (chest radiographs) and what the decoder reads.
const char *const k_storage_classes[] = {
    UID_ComputedRadiographyImageStorage,
    UID_DigitalXRayImageStorageForPresentation,
    UID_DigitalXRayImageStorageForProcessing,
};

// Lossless and uncompressed first: the SCP picks from this order when one context offers several.
const char *const k_default_syntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax,
    UID_JPEG2000LosslessOnlyTransferSyntax,
    UID_JPEGLSLosslessTransferSyntax,
    UID_JPEGProcess14SV1TransferSyntax,
    UID_JPEGProcess14TransferSyntax,
    UID_RLELosslessTransferSyntax,
    UID_DeflatedExplicitVRLittleEndianTransferSyntax,
    UID_JPEG2000TransferSyntax,
    UID_JPEGLSLossyTransferSyntax,
    UID_JPEGProcess1TransferSyntax,
    UID_JPEGProcess2_4TransferSyntax,
    UID_BigEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax,
};

std::string trim(const char *s)
{
    std::string r = s ? s : "";
    while (!r.empty() && (r.back() == ' ' || r.back() == '\0'))
        r.pop_back();
    size_t i = 0;
    while (i < r.size() && r[i] == ' ')
        i++;
    return r.substr(i);
}

// The host part of a DUL presentation address ("host:port" or "host").
std::string host_of(const char *addr)
{
    std::string a = addr ? addr : "";
    size_t c = a.rfind(':');
    if (c != std::string::npos && a.find(':') == c)
        a = a.substr(0, c);
    return a;
}

void get_str(DcmItem *ds, const DcmTagKey &tag, char *dst, size_t cap)
{
    OFString v;
    if (ds->findAndGetOFStringArray(tag, v).good())
        copy_str(dst, cap, trim(v.c_str()).c_str());
    else
        copy_str(dst, cap, "");
}

cxd_status peek(const char *path, cxd_object_info *o, cxd_error *err)
{
    memset(o, 0, sizeof *o);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return cxd_set_error(err, CXD_ERR_IO, "peek: cannot open %s: %s", path, strerror(errno));
    }
    fseek(f, 0, SEEK_END);
    o->file_size = ftell(f);
    fclose(f);
    DcmFileFormat ff;
    OFCondition c = ff.loadFileUntilTag(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect,
                                        DCM_PixelData);
    if (c.bad()) {
        copy_str(o->parse_error, sizeof o->parse_error, c.text());
        return cxd_set_error(err, CXD_ERR_MALFORMED, "peek: %s: %s", path, c.text());
    }
    DcmDataset *ds = ff.getDataset();
    DcmMetaInfo *mi = ff.getMetaInfo();
    get_str(ds, DCM_SOPClassUID, o->sop_class_uid, sizeof o->sop_class_uid);
    get_str(ds, DCM_SOPInstanceUID, o->sop_instance_uid, sizeof o->sop_instance_uid);
    if (mi)
        get_str(mi, DCM_TransferSyntaxUID, o->transfer_syntax_uid, sizeof o->transfer_syntax_uid);
    if (!o->transfer_syntax_uid[0]) {
        DcmXfer x(ds->getOriginalXfer());
        copy_str(o->transfer_syntax_uid, sizeof o->transfer_syntax_uid, x.getXferID());
    }
    get_str(ds, DCM_Modality, o->modality, sizeof o->modality);
    get_str(ds, DCM_BodyPartExamined, o->body_part_examined, sizeof o->body_part_examined);
    get_str(ds, DCM_ViewPosition, o->view_position, sizeof o->view_position);
    get_str(ds, DCM_SeriesDescription, o->series_description, sizeof o->series_description);
    get_str(ds, DCM_StudyInstanceUID, o->study_instance_uid, sizeof o->study_instance_uid);
    Uint16 v = 0;
    if (ds->findAndGetUint16(DCM_Rows, v).good())
        o->rows = v;
    v = 0;
    if (ds->findAndGetUint16(DCM_Columns, v).good())
        o->columns = v;
    if (!o->sop_instance_uid[0]) {
        copy_str(o->parse_error, sizeof o->parse_error, "no SOP Instance UID in the data set");
        return cxd_set_error(err, CXD_ERR_MISSING, "peek: %s: no SOP Instance UID", path);
    }
    o->parsed = 1;
    return CXD_OK;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// TLS

namespace {

// A TLS context for one role from the conf's files: the BCP 195 profile (TLS 1.2 and 1.3, forward
// secrecy only) with 1.2 as the floor set on the context itself, PEM files, the peer-verification
// rule. `who` starts every error ("listener TLS", "send TLS to AE@host:port").
std::unique_ptr<DcmTLSTransportLayer> make_tls(const cxd_tls_params *t, T_ASC_NetworkRole role, const std::string &who,
                                               cxd_error *err)
{
    static std::once_flag once;
    std::call_once(once, [] { DcmTLSTransportLayer::initializeOpenSSL(); });
    std::unique_ptr<DcmTLSTransportLayer> l(new DcmTLSTransportLayer(role, nullptr, OFFalse));
    if (!*l) {
        cxd_set_error(err, CXD_ERR_INTERNAL, "%s: cannot create an OpenSSL context", who.c_str());
        return nullptr;
    }
    OFCondition r = l->setTLSProfile(TSP_Profile_BCP195_ND);
    if (r.good())
        r = l->activateCipherSuites();
    if (r.bad()) {
        cxd_set_error(err, CXD_ERR_INTERNAL, "%s: cipher suites: %s", who.c_str(), r.text());
        return nullptr;
    }
    if (SSL_CTX_set_min_proto_version(l->getNativeHandle(), TLS1_2_VERSION) != 1) {
        cxd_set_error(err, CXD_ERR_INTERNAL, "%s: cannot set TLS 1.2 as the lowest version", who.c_str());
        return nullptr;
    }
    bool has_cert = t->certificate_file && t->certificate_file[0];
    if (has_cert != (t->private_key_file && t->private_key_file[0])) {
        cxd_set_error(err, CXD_ERR_INVALID, "%s: a certificate needs its private key and a key its certificate", who.c_str());
        return nullptr;
    }
    if (has_cert) {
        r = l->setPrivateKeyFile(t->private_key_file, DCF_Filetype_PEM);
        if (r.bad()) {
            cxd_set_error(err, CXD_ERR_INVALID, "%s: private key %s: %s", who.c_str(), t->private_key_file, r.text());
            return nullptr;
        }
        r = l->setCertificateFile(t->certificate_file, DCF_Filetype_PEM);
        if (r.bad()) {
            cxd_set_error(err, CXD_ERR_INVALID, "%s: certificate %s: %s", who.c_str(), t->certificate_file, r.text());
            return nullptr;
        }
        if (!l->checkPrivateKeyMatchesCertificate()) {
            cxd_set_error(err, CXD_ERR_INVALID, "%s: private key %s does not match certificate %s", who.c_str(),
                          t->private_key_file, t->certificate_file);
            return nullptr;
        }
    } else if (role == NET_ACCEPTOR) {
        cxd_set_error(err, CXD_ERR_INVALID, "%s: a listener needs a certificate and its private key", who.c_str());
        return nullptr;
    }
    if (t->ca_file && t->ca_file[0]) {
        r = l->addTrustedCertificateFile(t->ca_file, DCF_Filetype_PEM);
        if (r.bad()) {
            cxd_set_error(err, CXD_ERR_INVALID, "%s: CA file %s: %s", who.c_str(), t->ca_file, r.text());
            return nullptr;
        }
    } else if (t->verify_peer != CXD_TLS_VERIFY_NONE) {
        cxd_set_error(err, CXD_ERR_INVALID, "%s: verifying the peer needs a CA file", who.c_str());
        return nullptr;
    }
    l->setCertificateVerification(t->verify_peer == CXD_TLS_VERIFY_NONE          ? DCV_ignoreCertificate
                                  : t->verify_peer == CXD_TLS_VERIFY_IF_PRESENTED ? DCV_checkCertificate
                                                                                  : DCV_requireCertificate);
    return l;
}

// "CN=...,O=..." of the peer's certificate on a TLS connection, "" when there is none.
std::string peer_subject(T_ASC_Association *assoc)
{
    unsigned long n = ASC_getPeerCertificateLength(assoc);
    if (n == 0)
        return "";
    std::vector<unsigned char> der(n);
    if (ASC_getPeerCertificate(assoc, der.data(), n) != n)
        return "";
    const unsigned char *p = der.data();
    X509 *x = d2i_X509(nullptr, &p, (long)n);
    if (!x)
        return "";
    std::string out;
    BIO *b = BIO_new(BIO_s_mem());
    if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        char *d = nullptr;
        long len = BIO_get_mem_data(b, &d);
        if (len > 0)
            out.assign(d, (size_t)len);
    }
    BIO_free(b);
    X509_free(x);
    return out;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Listener

namespace {
struct Conn;
}

struct cxd_listener {
    cxd_listener_callbacks cb{};
    std::string ae;
    int port = 0;
    unsigned max_assoc = 8;
    int any_called = 0;
    DcmSharedSCPConfig cfg;
    T_ASC_Network *net = nullptr;
    std::mutex mu; // guards the allow-lists and the counters below
    std::condition_variable cv;
    std::set<std::string> calling_aes;
    std::vector<std::pair<uint32_t, uint32_t>> nets; // host allow-list as (address, mask), host order
    bool any_host = true;
    unsigned active = 0;                     // associations past negotiation
    unsigned conns = 0;                      // connection threads (pending + associations)
    unsigned max_per_host = 16;
    unsigned max_conns = 64;
    unsigned acse_s = 30, dimse_s = 60;
    std::map<std::string, unsigned> per_host; // open connections by peer address
    std::map<int, Conn *> pending;           // sockets still before an A-ASSOCIATE-RQ is complete
    std::unique_ptr<DcmTLSTransportLayer> tls; // shared by the connections when listener/tls is on
    unsigned next_id = 0;
    std::atomic<bool> stop{false};
};

namespace {

bool host_allowed(cxd_listener *l, const char *host)
{
    // Called with l->mu held.
    if (l->any_host)
        return true;
    in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1)
        return false;
    uint32_t ip = ntohl(a.s_addr);
    for (auto &n : l->nets)
        if ((ip & n.second) == n.first)
            return true;
    return false;
}

class NodeSCP : public DcmThreadSCP {
  public:
    NodeSCP(cxd_listener *l, unsigned id) : m_l(l) { m_peer.assoc_id = id; }

  protected:
    void event(const char *what)
    {
        if (m_l->cb.event)
            m_l->cb.event(m_l->cb.user, &m_peer, what);
    }

    void notifyAssociationRequest(const T_ASC_Parameters &params, DcmSCPActionType &action) override
    {
        copy_str(m_peer.calling_ae, sizeof m_peer.calling_ae, trim(params.DULparams.callingAPTitle).c_str());
        copy_str(m_peer.called_ae, sizeof m_peer.called_ae, trim(params.DULparams.calledAPTitle).c_str());
        copy_str(m_peer.host, sizeof m_peer.host, host_of(params.DULparams.callingPresentationAddress).c_str());
        std::lock_guard<std::mutex> g(m_l->mu);
        if (!host_allowed(m_l, m_peer.host)) {
            m_rejected = "rejected: calling host not allowed (A-ASSOCIATE-RJ permanent, no reason given)";
            action = DCMSCP_ACTION_REFUSE_ASSOCIATION;
        }
    }

    OFBool checkCalledAETitleAccepted(const OFString &called) override
    {
        if (m_l->any_called || trim(called.c_str()) == m_l->ae)
            return OFTrue;
        m_rejected = "rejected: called AE title not recognized (A-ASSOCIATE-RJ permanent)";
        return OFFalse;
    }

    OFBool checkCallingAETitleAccepted(const OFString &calling) override
    {
        std::lock_guard<std::mutex> g(m_l->mu);
        if (m_l->calling_aes.empty() || m_l->calling_aes.count(trim(calling.c_str())))
            return OFTrue;
        m_rejected = "rejected: calling AE title not recognized (A-ASSOCIATE-RJ permanent)";
        return OFFalse;
    }

    void notifyAssociationAcknowledge() override
    {
        m_accepted = true;
        event("accepted");
    }
    void notifyReleaseRequest() override { event("released"); }
    void notifyAbortRequest() override { event("aborted by the peer"); }
    void notifyDIMSEError(const OFCondition &cond) override
    {
        std::string w = std::string("aborted: ") + cond.text();
        event(w.c_str());
    }
    void notifyAssociationTermination() override {}

    OFCondition handleIncomingCommand(T_DIMSE_Message *msg, const DcmPresentationContextInfo &info) override
    {
        if (msg->CommandField == DIMSE_C_ECHO_RQ) {
            event("echo");
            return DcmThreadSCP::handleIncomingCommand(msg, info);
        }
        if (msg->CommandField != DIMSE_C_STORE_RQ)
            return DcmThreadSCP::handleIncomingCommand(msg, info);
        T_DIMSE_C_StoreRQ &req = msg->msg.CStoreRQ;
        T_ASC_PresentationContextID pc = info.presentationContextID;
        char path[4096] = "";
        char comment[65] = "";
        void *token = nullptr;
        uint16_t st = CXD_STATUS_OUT_OF_RESOURCES;
        if (m_l->cb.store_begin)
            st = m_l->cb.store_begin(m_l->cb.user, &m_peer, req.AffectedSOPClassUID, req.AffectedSOPInstanceUID,
                                     path, sizeof path, &token, comment, sizeof comment);
        if (st != CXD_STATUS_SUCCESS || !path[0]) {
            // Refused before the data arrived: read it and throw it away, then answer.
            OFCondition c = receiveSTORERequest(req, pc, OFString("/dev/null"));
            if (c.bad())
                return c;
            return respond(pc, req, st == CXD_STATUS_SUCCESS ? CXD_STATUS_OUT_OF_RESOURCES : st, comment);
        }
        OFCondition c = receiveSTORERequest(req, pc, OFString(path));
        if (c.bad()) {
            if (m_l->cb.store_end)
                m_l->cb.store_end(m_l->cb.user, token, &m_peer, 0, nullptr, comment, sizeof comment);
            return c;
        }
        cxd_object_info obj;
        cxd_error e{};
        if (peek(path, &obj, &e) != CXD_OK) {
            // Keep the request's identifiers so a corrupt object can still be tracked.
            copy_str(obj.sop_class_uid, sizeof obj.sop_class_uid, req.AffectedSOPClassUID);
            copy_str(obj.sop_instance_uid, sizeof obj.sop_instance_uid, req.AffectedSOPInstanceUID);
            obj.parsed = 0;
        }
        st = m_l->cb.store_end ? m_l->cb.store_end(m_l->cb.user, token, &m_peer, 1, &obj, comment, sizeof comment)
                               : CXD_STATUS_OUT_OF_RESOURCES;
        return respond(pc, req, st, comment);
    }

  public:
    OFCondition go(T_ASC_Association *a)
    {
        OFCondition c = run(a);
        if (!m_accepted)
            event(m_rejected.empty() ? "rejected: no acceptable presentation context or bad request" : m_rejected.c_str());
        return c;
    }

  private:
    OFCondition respond(T_ASC_PresentationContextID pc, const T_DIMSE_C_StoreRQ &req, uint16_t st, const char *comment)
    {
        DcmDataset *detail = nullptr;
        if (st != CXD_STATUS_SUCCESS && comment && comment[0]) {
            detail = new DcmDataset;
            detail->putAndInsertString(DCM_ErrorComment, comment);
        }
        OFCondition c = sendSTOREResponse(pc, req.MessageID, req.AffectedSOPClassUID, req.AffectedSOPInstanceUID, st,
                                          detail);
        delete detail;
        return c;
    }

    cxd_listener *m_l;
    cxd_peer m_peer{};
    bool m_accepted = false;
    std::string m_rejected;
};

// Parses the host allow-list into networks; names are resolved now (at start-up or reload),
// not per association, so a slow DNS never delays a C-STORE.
bool parse_hosts(const cxd_listener_params *p, std::vector<std::pair<uint32_t, uint32_t>> &nets, cxd_error *err)
{
    for (size_t i = 0; i < p->n_hosts; i++) {
        std::string h = trim(p->hosts[i]);
        if (h.empty())
            continue;
        size_t slash = h.find('/');
        in_addr a;
        if (slash != std::string::npos) {
            std::string addr = h.substr(0, slash), pre = h.substr(slash + 1);
            char *end = nullptr;
            long bits = strtol(pre.c_str(), &end, 10);
            if (inet_pton(AF_INET, addr.c_str(), &a) != 1 || !end || *end || pre.empty() || bits < 0 || bits > 32) {
                cxd_set_error(err, CXD_ERR_INVALID, "listener: allowed host \"%s\" is not an IPv4 network a.b.c.d/0..32",
                              h.c_str());
                return false;
            }
            uint32_t mask = bits == 0 ? 0u : 0xFFFFFFFFu << (32 - bits);
            nets.emplace_back(ntohl(a.s_addr) & mask, mask);
        } else if (inet_pton(AF_INET, h.c_str(), &a) == 1) {
            nets.emplace_back(ntohl(a.s_addr), 0xFFFFFFFFu);
        } else {
            addrinfo hints{}, *res = nullptr;
            hints.ai_family = AF_INET;
            int r = getaddrinfo(h.c_str(), nullptr, &hints, &res);
            if (r != 0 || !res) {
                cxd_set_error(err, CXD_ERR_INVALID, "listener: allowed host \"%s\" cannot be resolved: %s", h.c_str(),
                              gai_strerror(r));
                return false;
            }
            for (addrinfo *ai = res; ai; ai = ai->ai_next)
                nets.emplace_back(ntohl(((sockaddr_in *)ai->ai_addr)->sin_addr.s_addr), 0xFFFFFFFFu);
            freeaddrinfo(res);
        }
    }
    return true;
}

bool apply_lists(cxd_listener *l, const cxd_listener_params *p, cxd_error *err)
{
    std::vector<std::pair<uint32_t, uint32_t>> nets;
    if (!parse_hosts(p, nets, err))
        return false;
    std::lock_guard<std::mutex> g(l->mu);
    l->calling_aes.clear();
    for (size_t i = 0; i < p->n_calling_aes; i++)
        if (p->calling_aes[i])
            l->calling_aes.insert(trim(p->calling_aes[i]));
    l->nets = nets;
    l->any_host = p->n_hosts == 0;
    return true;
}

// DCMTK 3.6.7 always binds INADDR_ANY: replace its listening socket by one bound to the
// configured address, on the same descriptor number so DCMTK keeps using it.
bool rebind(T_ASC_Network *net, const char *addr, int port, cxd_error *err)
{
    in_addr a;
    if (inet_pton(AF_INET, addr, &a) != 1) {
        cxd_set_error(err, CXD_ERR_INVALID, "listener: bind address \"%s\" is not an IPv4 address", addr);
        return false;
    }
    int old = (int)static_cast<PRIVATE_NETWORKKEY *>(net->network)->networkSpecific.TCP.listenSocket;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        cxd_set_error(err, CXD_ERR_NETWORK, "listener: socket: %s", strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr = a;
    close(old); // frees the port for the new bind; the number is reused by dup2 below
    if (bind(s, (sockaddr *)&sa, sizeof sa) != 0 || listen(s, 64) != 0) {
        cxd_set_error(err, CXD_ERR_NETWORK, "listener: cannot listen on %s:%d: %s", addr, port, strerror(errno));
        close(s);
        return false;
    }
    if (dup2(s, old) < 0) {
        cxd_set_error(err, CXD_ERR_NETWORK, "listener: dup2: %s", strerror(errno));
        close(s);
        return false;
    }
    close(s);
    return true;
}

// ---- The accept path ----------------------------------------------------------------------
// DCMTK's ASC_receiveAssociation accepts a connection and then reads the whole A-ASSOCIATE-RQ in
// the same call, so an accept loop built on it is held by any client that sends part of a request
// (or nothing). Here the loop only waits for the listening socket to become readable and starts a
// thread; that thread calls ASC_receiveAssociation on a network object of its own that shares the
// listening socket, so the accept and every read of that connection happen on it. The transport
// layer below sees the socket right after accept(): it counts the connection against the caps
// before a byte is read, and its reads and writes wait at most until a deadline (the ACSE timeout
// for the request, then the DIMSE timeout per read or write).

long long now_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// One TCP connection, from accept to close; shared by its thread and its transport objects.
struct Conn {
    cxd_listener *l = nullptr;
    unsigned id = 0;
    int fd = -1;
    std::string host;
    std::atomic<long long> deadline_ms{0}; // absolute end of the request phase; 0 = none
    std::atomic<int> wait_ms{0};           // longest wait of one read or write; 0 = no limit
    std::atomic<bool> timed_out{false};
    bool counted_host = false;
    const char *refused = nullptr;         // why the connection was closed before any read
    // Hand-off with the accept loop: set once accept() has returned (or the attempt ended).
    std::mutex mu;
    std::condition_variable cv;
    bool taken = false;
    void set_taken()
    {
        std::lock_guard<std::mutex> g(mu);
        taken = true;
        cv.notify_all();
    }
};

// Waits until the socket is ready for `events` within the connection's limits.
bool conn_wait(Conn *c, int fd, short events)
{
    for (;;) {
        long long dl = c->deadline_ms.load();
        int per = c->wait_ms.load();
        long long ms = -1;
        if (dl) {
            ms = dl - now_ms();
            if (ms < 0)
                ms = 0;
        }
        if (per > 0 && (ms < 0 || per < ms))
            ms = per;
        pollfd p{fd, events, 0};
        int r = poll(&p, 1, ms < 0 ? -1 : (int)ms);
        if (r > 0)
            return true;
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            c->timed_out.store(true);
            errno = ETIMEDOUT;
        }
        return false;
    }
}

// A DIMSE message goes out as a PDU header and its PDVs in separate writes. With Nagle's algorithm
// the last small write waits until the peer ACKs the previous one, and a Linux peer delays that ACK
// by 40 ms when it has nothing to send: one such stall per message. no_delay() switches Nagle off
// for what we write (DCMTK 3.6.7 does it on sockets it connects only when the environment has
// TCP_NODELAY=1, on accepted ones never); quick_ack(), called before every read, makes our side
// ACK at once, so a peer that still runs Nagle (DCMTK's storescp, which answers each C-STORE in two
// writes) is not held up by us either. Measured: SEG + SR to storescp over one association,
// 140-184 ms with neither, ~100 ms with no_delay, see bench/README.md for the node.
static void no_delay(int s)
{
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void quick_ack(int s)
{
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one); // Linux re-arms it per call only
}

class GuardedConnection : public DcmTCPConnection {
  public:
    GuardedConnection(DcmNativeSocketType s, Conn *c) : DcmTCPConnection(s), m_c(c) {}
    ssize_t read(void *buf, size_t n) override
    {
        if (!ready(POLLIN))
            return -1;
        quick_ack(getSocket());
        return DcmTCPConnection::read(buf, n);
    }
    ssize_t write(void *buf, size_t n) override
    {
        if (!ready(POLLOUT))
            return -1;
        return DcmTCPConnection::write(buf, n);
    }

  private:
    // On a timeout the peer is cut off at once: DCMTK's own clean-up after the failed read may
    // wait for the peer again (an A-ABORT, a drop with its own timeout) before it closes.
    bool ready(short events)
    {
        if (conn_wait(m_c, getSocket(), events))
            return true;
        int e = errno;
        if (m_c->timed_out.load())
            shutdown(getSocket(), SHUT_RDWR);
        errno = e;
        return false;
    }

    Conn *m_c;
};

class GuardedLayer : public DcmTransportLayer {
  public:
    explicit GuardedLayer(Conn *c) : m_c(c) {}
    DcmTransportConnection *createConnection(DcmNativeSocketType s, OFBool secure) override
    {
        Conn *c = m_c;
        c->fd = s;
        no_delay(s);
        sockaddr_in sa{};
        socklen_t n = sizeof sa;
        char ip[INET_ADDRSTRLEN] = "";
        if (getpeername(s, (sockaddr *)&sa, &n) == 0 && sa.sin_family == AF_INET)
            inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
        c->host = ip;
        {
            std::lock_guard<std::mutex> g(c->l->mu);
            unsigned &h = c->l->per_host[c->host];
            if (h >= c->l->max_per_host)
                c->refused = "refused before reading: too many connections from this host (listener/max-connections-per-host)";
            else if (c->l->stop.load())
                c->refused = "refused: the listener is stopping";
            else {
                h++;
                c->counted_host = true;
                c->l->pending[s] = c;
            }
            c->deadline_ms.store(now_ms() + 1000LL * c->l->acse_s);
        }
        if (c->refused)
            shutdown(s, SHUT_RDWR); // the first read fails at once; nothing of the peer's is parsed
        c->set_taken();
        if (!secure)
            return new GuardedConnection(s, c);
        if (!c->l->tls)
            return nullptr;
        // OpenSSL reads and writes the socket itself, so the limits come from the socket: each
        // read or write waits at most the DIMSE timeout, and the accept loop cuts the connection
        // at the request deadline (handshake and A-ASSOCIATE-RQ together).
        timeval tv{(time_t)c->l->dimse_s, 0};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        return c->l->tls->createConnection(s, OFTrue);
    }

  private:
    Conn *m_c;
};

void conn_event(Conn *c, const char *what, const char *calling = nullptr)
{
    if (!c->l->cb.event)
        return;
    cxd_peer peer{};
    peer.assoc_id = c->id;
    copy_str(peer.host, sizeof peer.host, c->host.c_str());
    if (calling)
        copy_str(peer.calling_ae, sizeof peer.calling_ae, calling);
    c->l->cb.event(c->l->cb.user, &peer, what);
}

// Takes the connection's socket off the pending map, only if the entry is still this
// connection's (the number may already belong to a newer connection). Called with l->mu held.
void unpend(Conn *c)
{
    auto p = c->l->pending.find(c->fd);
    if (p != c->l->pending.end() && p->second == c)
        c->l->pending.erase(p);
}

void conn_done(Conn *c)
{
    std::lock_guard<std::mutex> g(c->l->mu);
    if (c->counted_host) {
        auto it = c->l->per_host.find(c->host);
        if (it != c->l->per_host.end() && --it->second == 0)
            c->l->per_host.erase(it);
    }
    unpend(c);
    c->l->conns--;
    c->l->cv.notify_all();
}

// The association that reached negotiation: the association limit, then the SCP.
void serve_association(Conn *c, T_ASC_Association *assoc)
{
    cxd_listener *l = c->l;
    bool full;
    {
        std::lock_guard<std::mutex> g(l->mu);
        full = l->active >= l->max_assoc;
        if (!full)
            l->active++;
    }
    if (full) {
        T_ASC_RejectParameters rej;
        rej.result = ASC_RESULT_REJECTEDTRANSIENT;
        rej.source = ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED;
        rej.reason = ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED;
        ASC_rejectAssociation(assoc, &rej);
        conn_event(c, "rejected: too many associations (A-ASSOCIATE-RJ transient, local limit exceeded)",
                   trim(assoc->params->DULparams.callingAPTitle).c_str());
        ASC_dropSCPAssociation(assoc, 1); // at most 1 s for the peer to read the RJ (the default waits 180 s)
        ASC_destroyAssociation(&assoc);
        return;
    }
    try {
        NodeSCP scp(l, c->id);
        scp.setSharedConfig(l->cfg);
        scp.go(assoc); // takes over the association, frees it
    } catch (...) {
    }
    std::lock_guard<std::mutex> g(l->mu);
    l->active--;
}

// One connection's thread: accept, the request within the ACSE timeout, then the association.
void serve_connection(std::shared_ptr<Conn> c, int listen_fd)
{
    cxd_listener *l = c->l;
    T_ASC_Network *net = nullptr;
    T_ASC_Association *assoc = nullptr;
    OFCondition r = ASC_initializeNetwork(NET_REQUESTOR, 0, (int)l->acse_s, &net);
    int fd = r.good() ? fcntl(listen_fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (fd < 0) {
        if (net)
            ASC_dropNetwork(&net);
        c->set_taken();
        conn_done(c.get());
        return;
    }
    auto *key = static_cast<PRIVATE_NETWORKKEY *>(net->network);
    key->applicationFunction |= DICOM_APPLICATION_ACCEPTOR;
    key->networkSpecific.TCP.listenSocket = fd; // closed by ASC_dropNetwork
    net->role = NET_ACCEPTOR;
    ASC_setTransportLayer(net, new GuardedLayer(c.get()), 1);
    r = ASC_receiveAssociation(net, &assoc, l->cfg->getMaxReceivePDULength(), nullptr, nullptr,
                               l->tls ? OFTrue : OFFalse, DUL_NOBLOCK, 1);
    c->set_taken(); // also when accept() found nothing (another thread took it, or it was reset)
    {
        std::lock_guard<std::mutex> g(l->mu);
        unpend(c.get());
    }
    if (r.good() && !c->refused) {
        c->deadline_ms.store(0);
        c->wait_ms.store(1000 * (int)l->dimse_s);
        if (l->tls) {
            std::string who = peer_subject(assoc);
            conn_event(c.get(), ("TLS: " + (who.empty() ? std::string("the peer sent no certificate")
                                                         : "peer certificate " + who))
                                    .c_str(),
                       trim(assoc->params->DULparams.callingAPTitle).c_str());
        }
        serve_association(c.get(), assoc);
    } else {
        if (c->fd >= 0 && !c->refused && !l->stop.load()) {
            // A failed handshake comes back as DUL's TLS condition or as one of dcmtls's own
            // ("TLS error: ..."), depending on where OpenSSL gave up.
            bool tls_failed = l->tls && (r.code() == DULC_TLSERROR || strncmp(r.text(), "TLS error", 9) == 0);
            std::string why = c->timed_out.load() || r == DUL_READTIMEOUT
                                  ? "closed: no complete A-ASSOCIATE-RQ within " + std::to_string(l->acse_s) +
                                        " s (listener/acse-timeout-seconds)"
                              : tls_failed ? std::string("refused: TLS handshake failed (") + r.text() + ")"
                                           : std::string("closed before an association: ") + r.text();
            conn_event(c.get(), why.c_str());
        } else if (c->refused) {
            conn_event(c.get(), c->refused);
        }
        if (assoc) {
            ASC_dropAssociation(assoc); // not ASC_dropSCPAssociation: it first waits up to 180 s for data
            ASC_destroyAssociation(&assoc);
        }
    }
    ASC_dropNetwork(&net);
    conn_done(c.get());
}

} // namespace

extern "C" cxd_status cxd_listener_open(const cxd_listener_params *p, const cxd_listener_callbacks *cb,
                                        cxd_listener **out, cxd_error *err)
{
    try {
        if (!p || !cb || !out || !p->ae_title || !p->ae_title[0] || strlen(p->ae_title) > 16) {
            return cxd_set_error(err, CXD_ERR_INVALID, "listener: an AE title of 1 to 16 characters is required");
        }
        if (p->port < 0 || p->port > 65535) {
            return cxd_set_error(err, CXD_ERR_INVALID, "listener: port %d out of range 0..65535", p->port);
        }
        unsigned pdu = p->max_pdu ? p->max_pdu : 65536;
        if (pdu < ASC_MINIMUMPDUSIZE || pdu > ASC_MAXIMUMPDUSIZE) {
            return cxd_set_error(err, CXD_ERR_INVALID, "listener: max PDU %u out of range %u..%u", pdu, (unsigned)ASC_MINIMUMPDUSIZE,
                                 (unsigned)ASC_MAXIMUMPDUSIZE);
        }
        quiet_dcmtk();
        std::unique_ptr<cxd_listener> l(new cxd_listener);
        l->cb = *cb;
        l->ae = trim(p->ae_title);
        l->max_assoc = p->max_associations ? p->max_associations : 8;
        l->max_per_host = p->max_per_host ? p->max_per_host : 16;
        l->max_conns = std::max(64u, 4 * l->max_assoc);
        l->acse_s = p->acse_timeout_s ? p->acse_timeout_s : 30;
        l->dimse_s = p->dimse_timeout_s ? p->dimse_timeout_s : 60;
        l->any_called = p->accept_any_called_ae;
        if (!apply_lists(l.get(), p, err))
            return CXD_ERR_INVALID;
        if (p->tls.enabled) {
            l->tls = make_tls(&p->tls, NET_ACCEPTOR, "listener TLS", err);
            if (!l->tls)
                return err ? err->code : CXD_ERR_INVALID;
        }
        DcmSCPConfig &c = *l->cfg;
        c.setAETitle(l->ae.c_str());
        c.setMaxReceivePDULength(pdu);
        c.setACSETimeout(p->acse_timeout_s ? p->acse_timeout_s : 30);
        c.setDIMSETimeout(p->dimse_timeout_s ? p->dimse_timeout_s : 60);
        c.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
        c.setHostLookupEnabled(OFFalse);
        OFList<OFString> xfers;
        if (p->transfer_syntaxes && p->n_transfer_syntaxes) {
            for (size_t i = 0; i < p->n_transfer_syntaxes; i++) {
                DcmXfer x(p->transfer_syntaxes[i]);
                if (x.getXfer() == EXS_Unknown) {
                    return cxd_set_error(err, CXD_ERR_INVALID, "listener: unknown transfer syntax UID \"%s\"", p->transfer_syntaxes[i]);
                }
                xfers.push_back(p->transfer_syntaxes[i]);
            }
        } else {
            for (const char *t : k_default_syntaxes)
                xfers.push_back(t);
        }
        for (const char *sc : k_storage_classes) {
            OFCondition r = c.addPresentationContext(sc, xfers, ASC_SC_ROLE_DEFAULT);
            if (r.bad()) {
                return cxd_set_error(err, CXD_ERR_INTERNAL, "listener: cannot add presentation context %s: %s", sc, r.text());
            }
        }
        OFList<OFString> echo_x;
        echo_x.push_back(UID_LittleEndianExplicitTransferSyntax);
        echo_x.push_back(UID_BigEndianExplicitTransferSyntax);
        echo_x.push_back(UID_LittleEndianImplicitTransferSyntax);
        c.addPresentationContext(UID_VerificationSOPClass, echo_x, ASC_SC_ROLE_DEFAULT);

        // Binding here, not in run(): a port in use must stop the daemon at start-up.
        OFCondition r = ASC_initializeNetwork(NET_ACCEPTOR, p->port, (int)c.getACSETimeout(), &l->net);
        if (r.bad()) {
            l->net = nullptr;
            return cxd_set_error(err, CXD_ERR_NETWORK, "listener: cannot listen on port %d: %s", p->port, r.text());
        }
        l->port = p->port ? p->port : (int)l->net->acceptorPort;
        if (p->bind_address && p->bind_address[0] && strcmp(p->bind_address, "0.0.0.0") != 0 &&
            !rebind(l->net, p->bind_address, l->port, err)) {
            ASC_dropNetwork(&l->net);
            return err ? err->code : CXD_ERR_NETWORK;
        }
        *out = l.release();
        return CXD_OK;
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "listener: out of memory");
    } catch (const std::exception &e) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "listener: %s", e.what());
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "listener: unknown exception");
    }
}

extern "C" int cxd_listener_port(const cxd_listener *l) { return l ? l->port : 0; }

extern "C" cxd_status cxd_listener_update(cxd_listener *l, const cxd_listener_params *p, cxd_error *err)
{
    try {
        if (!l || !p) {
            return cxd_set_error(err, CXD_ERR_INVALID, "listener: update without a listener or parameters");
        }
        if (!apply_lists(l, p, err))
            return CXD_ERR_INVALID;
        std::lock_guard<std::mutex> g(l->mu);
        if (p->max_associations) {
            l->max_assoc = p->max_associations;
            l->max_conns = std::max(64u, 4 * l->max_assoc);
        }
        if (p->max_per_host)
            l->max_per_host = p->max_per_host;
        return CXD_OK;
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "listener: out of memory updating the allow-lists");
    }
}

extern "C" cxd_status cxd_listener_run(cxd_listener *l, cxd_error *err)
{
    if (!l || !l->net) {
        return cxd_set_error(err, CXD_ERR_INVALID, "listener: not open");
    }
    try {
        int lfd = (int)static_cast<PRIVATE_NETWORKKEY *>(l->net->network)->networkSpecific.TCP.listenSocket;
        // Non-blocking, so an accept() racing a reset connection returns instead of waiting.
        fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
        while (!l->stop.load()) {
            pollfd pf{lfd, POLLIN, 0};
            int pr = poll(&pf, 1, 1000); // once a second, so cxd_listener_stop takes effect promptly
            {
                // Requests past their deadline are cut here too: a TLS handshake or request that
                // OpenSSL is reading has no other clock.
                long long now = now_ms();
                std::lock_guard<std::mutex> g(l->mu);
                for (auto &p : l->pending) {
                    long long dl = p.second->deadline_ms.load();
                    if (dl && now > dl && !p.second->timed_out.exchange(true))
                        shutdown(p.first, SHUT_RDWR);
                }
            }
            if (pr <= 0)
                continue;
            auto c = std::make_shared<Conn>();
            c->l = l;
            bool over;
            {
                std::lock_guard<std::mutex> g(l->mu);
                over = l->conns >= l->max_conns;
                if (!over)
                    l->conns++;
                c->id = ++l->next_id;
            }
            if (over) {
                // Every connection thread busy: close the newest at once rather than queue it.
                int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
                if (s >= 0) {
                    close(s);
                    conn_event(c.get(), "refused before reading: too many open connections in total");
                }
                continue;
            }
            try {
                std::thread(serve_connection, c, lfd).detach();
            } catch (...) {
                std::lock_guard<std::mutex> g(l->mu);
                l->conns--;
                continue;
            }
            // Wait until that thread has taken the connection off the queue (accept() returned),
            // so the next readable event is a new connection. Bounded: a thread slow to start
            // costs at most this, never a client's pace.
            std::unique_lock<std::mutex> g(c->mu);
            c->cv.wait_for(g, std::chrono::seconds(2), [&c] { return c->taken; });
        }
        {
            // Connections still negotiating are cut; open associations finish (their objects are
            // being made durable).
            std::lock_guard<std::mutex> g(l->mu);
            for (auto &p : l->pending)
                shutdown(p.first, SHUT_RDWR);
        }
        // Drain: let the open associations finish (their objects are being made durable).
        std::unique_lock<std::mutex> g(l->mu);
        l->cv.wait_for(g, std::chrono::seconds(120), [l] { return l->conns == 0; });
        return CXD_OK;
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "listener: out of memory");
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "listener: unexpected exception in the accept loop");
    }
}

extern "C" void cxd_listener_stop(cxd_listener *l)
{
    if (l)
        l->stop.store(true);
}

extern "C" unsigned cxd_listener_active(cxd_listener *l)
{
    if (!l)
        return 0;
    std::lock_guard<std::mutex> g(l->mu);
    return l->active;
}

extern "C" void cxd_listener_free(cxd_listener *l)
{
    if (!l)
        return;
    {
        // Association threads still hold the pointer until they finish.
        std::unique_lock<std::mutex> g(l->mu);
        l->cv.wait_for(g, std::chrono::seconds(10), [l] { return l->conns == 0; });
    }
    if (l->net)
        ASC_dropNetwork(&l->net);
    delete l;
}

extern "C" cxd_status cxd_object_peek(const char *path, cxd_object_info *out, cxd_error *err)
{
    try {
        if (!path || !out) {
            return cxd_set_error(err, CXD_ERR_INVALID, "peek: no path");
        }
        cxd_object_info o;
        cxd_status st = peek(path, &o, err);
        if (st == CXD_OK)
            *out = o;
        return st;
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "peek: out of memory");
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "peek: unexpected exception");
    }
}

// ---------------------------------------------------------------------------------------------
// Sender

namespace {

// DcmSCU keeps useSecureConnection protected (DcmTLSSCU would bring its own option handling).
class NodeSCU : public DcmSCU {
  public:
    using DcmSCU::useSecureConnection;
};

// The sender's plain TCP: DcmSCU creates its connection through a transport layer only on its
// "secure" path, so this layer stands in there for destinations without TLS and gives the socket
// no_delay and quick_ack (DcmTCPConnection otherwise, nothing else changes on the wire).
class QuickConnection : public DcmTCPConnection {
  public:
    explicit QuickConnection(DcmNativeSocketType s) : DcmTCPConnection(s) { no_delay(s); }
    ssize_t read(void *buf, size_t n) override
    {
        quick_ack(getSocket());
        return DcmTCPConnection::read(buf, n);
    }
};

class QuickLayer : public DcmTransportLayer {
  public:
    DcmTransportConnection *createConnection(DcmNativeSocketType s, OFBool) override
    {
        return new QuickConnection(s);
    }
};

// `tls` receives the transport layer (TLS when the destination uses it, else QuickLayer); it must
// outlive the association.
bool setup_scu(NodeSCU &scu, const cxd_send_params *p, std::unique_ptr<DcmTransportLayer> &tls, cxd_error *err)
{
    if (!p || !p->calling_ae || !p->called_ae || !p->host || !p->calling_ae[0] || !p->called_ae[0] ||
        strlen(p->calling_ae) > 16 || strlen(p->called_ae) > 16 || p->port <= 0 || p->port > 65535) {
        cxd_set_error(err, CXD_ERR_INVALID, "send: destination needs AE titles (1..16 chars), a host and a port 1..65535");
        return false;
    }
    quiet_dcmtk();
    scu.setAETitle(p->calling_ae);
    scu.setPeerAETitle(p->called_ae);
    scu.setPeerHostName(p->host);
    scu.setPeerPort((Uint16)p->port);
    scu.setMaxReceivePDULength(p->max_pdu ? p->max_pdu : 65536);
    scu.setConnectionTimeout((Sint32)(p->connect_timeout_s ? p->connect_timeout_s : 10));
    scu.setACSETimeout(p->acse_timeout_s ? p->acse_timeout_s : 30);
    scu.setDIMSETimeout(p->dimse_timeout_s ? p->dimse_timeout_s : 60);
    scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
    if (p->tls.enabled) {
        tls = make_tls(&p->tls, NET_REQUESTOR,
                       std::string("send TLS to ") + p->called_ae + "@" + p->host + ":" + std::to_string(p->port), err);
        if (!tls)
            return false;
    } else {
        tls.reset(new QuickLayer());
    }
    return true;
}

// The transport layer (TLS or QuickLayer) goes onto the network that initNetwork makes, so after it.
bool open_assoc(NodeSCU &scu, const cxd_send_params *p, DcmTransportLayer *tls, cxd_error *err)
{
    OFCondition c = scu.initNetwork();
    if (c.good() && tls)
        c = scu.useSecureConnection(tls);
    if (c.good())
        c = scu.negotiateAssociation();
    if (c.bad()) {
        cxd_set_error(err, CXD_ERR_NETWORK, "send: association with %s@%s:%d failed: %s", p->called_ae, p->host, p->port,
                      c.text());
        return false;
    }
    return true;
}

} // namespace

static bool is_uncompressed(const std::string &ts)
{
    return ts == UID_LittleEndianExplicitTransferSyntax || ts == UID_LittleEndianImplicitTransferSyntax ||
           ts == UID_BigEndianExplicitTransferSyntax;
}

// The file at path decoded to Explicit VR Little Endian (the codecs cxd_init registered), or
// nullptr with why.
static std::unique_ptr<DcmFileFormat> load_uncompressed(const char *path, std::string &why)
{
    std::unique_ptr<DcmFileFormat> ff(new DcmFileFormat());
    OFCondition c = ff->loadFile(path);
    if (c.bad()) {
        why = c.text();
        return nullptr;
    }
    DcmDataset *ds = ff->getDataset();
    c = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit)) {
        why = c.bad() ? c.text() : "no decoder for its transfer syntax";
        return nullptr;
    }
    return ff;
}

extern "C" cxd_status cxd_send_files(const cxd_send_params *p, const char *const *paths, size_t n, uint16_t *statuses,
                                     cxd_error *err)
{
    try {
        for (size_t i = 0; i < n; i++)
            statuses[i] = CXD_STATUS_NOT_SENT;
        cxd_status ist = cxd_init(err); // the decoders a conversion for the destination needs
        if (ist != CXD_OK)
            return ist;
        std::unique_ptr<DcmTransportLayer> tls; // declared first: outlives the association
        NodeSCU scu;
        if (!setup_scu(scu, p, tls, err))
            return err ? err->code : CXD_ERR_INVALID;
        if (n == 0)
            return CXD_OK;
        std::vector<cxd_object_info> info(n);
        std::map<std::string, std::set<std::string>> contexts; // SOP class -> transfer syntaxes
        for (size_t i = 0; i < n; i++) {
            cxd_error e{};
            if (peek(paths[i], &info[i], &e) != CXD_OK) {
                return cxd_set_error(err, CXD_ERR_MALFORMED, "send: %s", e.msg);
            }
            contexts[info[i].sop_class_uid].insert(info[i].transfer_syntax_uid);
        }
        for (auto &kv : contexts) {
            for (const std::string &ts : kv.second) {
                if (ts == UID_LittleEndianExplicitTransferSyntax || ts == UID_LittleEndianImplicitTransferSyntax)
                    continue;
                OFList<OFString> x;
                x.push_back(ts.c_str());
                scu.addPresentationContext(kv.first.c_str(), x);
            }
            OFList<OFString> x;
            x.push_back(UID_LittleEndianExplicitTransferSyntax);
            x.push_back(UID_LittleEndianImplicitTransferSyntax);
            scu.addPresentationContext(kv.first.c_str(), x);
        }
        if (!open_assoc(scu, p, tls.get(), err))
            return CXD_ERR_NETWORK;
        std::string failures;
        for (size_t i = 0; i < n; i++) {
            T_ASC_PresentationContextID pc = scu.findPresentationContextID(info[i].sop_class_uid, info[i].transfer_syntax_uid);
            // Not accepted as stored (an RLE Lossless SEG to a destination that takes only
            // uncompressed data): DcmSCU does not convert, so the object is decoded here and sent
            // in the uncompressed syntax the destination accepted.
            std::unique_ptr<DcmFileFormat> converted;
            if (pc == 0) {
                pc = scu.findAnyPresentationContextID(info[i].sop_class_uid, UID_LittleEndianExplicitTransferSyntax);
                if (pc != 0 && !is_uncompressed(info[i].transfer_syntax_uid)) {
                    std::string why;
                    converted = load_uncompressed(paths[i], why);
                    if (!converted) {
                        failures += std::string(" ") + info[i].sop_instance_uid + ": the destination does not accept " +
                                    info[i].transfer_syntax_uid + " and it could not be converted: " + why + ";";
                        continue;
                    }
                }
            }
            if (pc == 0) {
                failures += std::string(" ") + info[i].sop_instance_uid + ": SOP class " + info[i].sop_class_uid +
                            " not accepted by the destination;";
                continue;
            }
            Uint16 rsp = 0;
            OFCondition c = converted ? scu.sendSTORERequest(pc, "", converted->getDataset(), rsp)
                                      : scu.sendSTORERequest(pc, paths[i], nullptr, rsp);
            if (c.bad()) {
                failures += std::string(" ") + info[i].sop_instance_uid + ": " + c.text() + ";";
                if (!scu.isConnected())
                    break;
                continue;
            }
            statuses[i] = rsp;
        }
        if (scu.isConnected())
            scu.releaseAssociation();
        if (!failures.empty())
            cxd_set_error(err, CXD_ERR_NETWORK, "send: to %s@%s:%d:%s", p->called_ae, p->host, p->port, failures.c_str());
        return CXD_OK;
    } catch (const std::bad_alloc &) {
        return cxd_set_error(err, CXD_ERR_NOMEM, "send: out of memory");
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "send: unexpected exception");
    }
}

extern "C" cxd_status cxd_echo(const cxd_send_params *p, cxd_error *err)
{
    try {
        std::unique_ptr<DcmTransportLayer> tls;
        NodeSCU scu;
        if (!setup_scu(scu, p, tls, err))
            return err ? err->code : CXD_ERR_INVALID;
        OFList<OFString> x;
        x.push_back(UID_LittleEndianExplicitTransferSyntax);
        x.push_back(UID_LittleEndianImplicitTransferSyntax);
        scu.addPresentationContext(UID_VerificationSOPClass, x);
        if (!open_assoc(scu, p, tls.get(), err))
            return CXD_ERR_NETWORK;
        OFCondition c = scu.sendECHORequest(0);
        scu.releaseAssociation();
        if (c.bad()) {
            return cxd_set_error(err, CXD_ERR_NETWORK, "echo: %s@%s:%d: %s", p->called_ae, p->host, p->port, c.text());
        }
        return CXD_OK;
    } catch (...) {
        return cxd_set_error(err, CXD_ERR_INTERNAL, "echo: unexpected exception");
    }
}

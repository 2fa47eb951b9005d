/* Collateral as a shared, cached, verified resource (lib/collateral).
 *
 * Intel's PCS (or a PCCS, or a mirror) and AMD's KDS serve the collateral
 * that DCAP quotes and SEV-SNP reports need. This module fetches it over
 * libcurl (timeouts, retries with backoff and jitter, Retry-After honoured,
 * one request in flight per item however many callers wait for it, across
 * threads and processes sharing one cache directory), keeps it on disk keyed
 * by what a quote or report needs, and stores an item only after its
 * signatures, issuer chain and dates verified against the trust anchor (the
 * built-in Intel SGX Root CA or AMD ARKs, or an explicitly configured one).
 *
 * An item is refreshed ahead of its nextUpdate; when the upstream fails, the
 * last good item keeps serving until it expires, and cvm_cache_info says so
 * (stale, age, the upstream's error). An expired item is never served.
 *
 * Several processes may share one cache directory: items are written to a
 * temporary file and renamed into place, and a per-item lock (flock)
 * serialises fetches of the same item. Layout and bundle format:
 * docs/collateral.md. */
#ifndef CVMKIT_COLLATERAL_H
#define CVMKIT_COLLATERAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

#include "amd.h"
#include "dcap.h"
#include "report.h"
#include "snp.h"

/* What can be cached: one kind per vendor API resource. */
enum cvm_cache_kind {
	CVM_CACHE_NONE = 0,
	/* Intel PCS / PCCS API v4 */
	CVM_CACHE_TCB_INFO = 1, /* {sgx,tdx}/certification/v4/tcb?fmspc=: tee, fmspc, update */
	CVM_CACHE_QE_ID = 2,    /* sgx: qe/identity (QE), tdx: qe/identity (TD_QE): tee, update */
	CVM_CACHE_QVE_ID = 3,   /* sgx/certification/v4/qve/identity: update */
	CVM_CACHE_PCK_CRL = 4,  /* sgx/certification/v4/pckcrl?ca=: ca */
	CVM_CACHE_ROOT_CRL = 5, /* the Intel SGX Root CA CRL (PCCS: rootcacrl) */
	CVM_CACHE_PCK_CERT = 6, /* sgx/certification/v4/pckcert?encrypted_ppid=&cpusvn=&pcesvn=&pceid= */
	/* AMD KDS */
	CVM_CACHE_VCEK = 7,      /* vcek/v1/{product}/{hwid}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=[&fmcSPL=] */
	CVM_CACHE_AMD_CHAIN = 8, /* {vcek,vlek}/v1/{product}/cert_chain: signer, product */
	CVM_CACHE_AMD_CRL = 9,   /* {vcek,vlek}/v1/{product}/crl: signer, product */
	/* Intel PCS: every PCK certificate of one platform, a JSON array, by
	 * platform manifest (POST sgx/certification/v4/pckcerts: manifest_hash,
	 * pceid) or by encrypted PPID (GET pckcerts?encrypted_ppid=&pceid=:
	 * enc_ppid, pceid). Fetch it with cvm_cache_pck_certs. */
	CVM_CACHE_PCK_CERTS = 10,
};

enum cvm_cache_tee { CVM_CACHE_SGX = 0, CVM_CACHE_TDX = 1 };
enum cvm_cache_ca { CVM_CACHE_CA_PROCESSOR = 0, CVM_CACHE_CA_PLATFORM = 1 };
/* Intel's TCB evaluation data: the standard or the early update. */
enum cvm_cache_update { CVM_CACHE_STANDARD = 0, CVM_CACHE_EARLY = 1 };

#define CVM_CACHE_PPID_MAX 384 /* encrypted PPID, RSA-3072 OAEP */
/* A platform manifest (Intel's PLATFORM_MANIFEST: the platform's keys and
 * each package's pairing data; a few KiB per package, 8 packages at most). */
#define CVM_CACHE_MANIFEST_MAX ((size_t)64 * 1024)
/* The entries of one pckcerts answer (one per TCB level Intel knows for the
 * platform's FMSPC, plus "Not available" ones). */
#define CVM_CACHE_PCK_CERTS_MAX 256

/* struct cvm_cache_key names one item. Only the fields of its kind count
 * (the others must be zero, so that a key can be compared with memcmp
 * after cvm_cache_key_init). */
struct cvm_cache_key {
	enum cvm_cache_kind kind;
	enum cvm_cache_tee tee;       /* TCB_INFO, QE_ID */
	enum cvm_cache_update update; /* TCB_INFO, QE_ID, QVE_ID */
	uint8_t fmspc[6];             /* TCB_INFO */
	enum cvm_cache_ca ca;         /* PCK_CRL */
	/* PCK_CERT: the query */
	uint8_t enc_ppid[CVM_CACHE_PPID_MAX];
	size_t enc_ppid_len;
	uint8_t cpusvn[16];
	uint16_t pcesvn;
	uint8_t pceid[2]; /* PCK_CERT, PCK_CERTS */
	/* PCK_CERTS by platform manifest: its SHA-256 (the manifest itself is
	 * too large for a key; it goes beside the key, to cvm_cache_pck_certs) */
	bool by_manifest;
	uint8_t manifest_hash[32];
	/* AMD */
	enum cvm_snp_product product; /* VCEK, AMD_CHAIN, AMD_CRL */
	enum cvm_snp_signer signer;   /* AMD_CHAIN, AMD_CRL: VCEK (ASK) or VLEK (ASVK) */
	uint8_t hwid[64];             /* VCEK: the chip ID (8 bytes on Turin) */
	size_t hwid_len;
	uint64_t tcb; /* VCEK: the reported TCB_VERSION, raw */
};

/* cvm_cache_key_init zeroes `k` and sets its kind. */
CVM_API void cvm_cache_key_init(struct cvm_cache_key *k, enum cvm_cache_kind kind);
/* cvm_cache_key_name writes a stable, printable name for `k` ("tdx/tcb/00806f050000",
 * "sgx/pckcrl/processor", "amd/vcek/Milan/<hwid hex>/<tcb hex>", ...) into
 * `buf`; it is the item's file name under the cache directory. Returns 0 or
 * CVM_E_INVAL / CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_cache_key_name(const struct cvm_cache_key *k, char *buf, size_t cap);
/* cvm_cache_key_url writes the vendor URL of `k` under `base` (a PCS, PCCS
 * or KDS base URL without a trailing slash). Returns 0, CVM_E_INVAL or
 * CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_cache_key_url(const struct cvm_cache_key *k, const char *base, char *buf,
                                             size_t cap);

/* struct cvm_cache_item is one verified item as the vendor served it. */
struct cvm_cache_item {
	struct cvm_cache_key key;
	uint8_t *body; /* the response body, byte for byte (JSON, DER or PEM) */
	size_t body_len;
	char *issuer_chain; /* PEM, URL-decoded from the response header; NULL if none */
	size_t issuer_chain_len;
	/* PCK_CERT: the response headers that describe the certificate */
	char tcbm[64];       /* SGX-TCBm, hex */
	char fmspc[13];      /* SGX-FMSPC, hex */
	char ca_type[16];    /* SGX-PCK-Certificate-CA-Type: "processor" or "platform" */
	char source[256];    /* where it came from: the URL, or "bundle:<file>", "dir:<path>" */
	int64_t fetched_at;  /* when it was fetched (or imported) */
	int64_t issued_at;   /* issueDate / thisUpdate / notBefore */
	int64_t next_update; /* nextUpdate / notAfter: refresh before */
	int64_t expires;     /* the earliest nextUpdate / notAfter of the item and its chain */
	char anchor[96];     /* the trust anchor it verified against, e.g. "Intel SGX Root CA (built in)" */
};
CVM_API void cvm_cache_item_free(struct cvm_cache_item *it);

/* Where a verdict's collateral came from. */
enum cvm_cache_source {
	CVM_CACHE_FROM_NONE = 0,
	CVM_CACHE_FROM_DISK = 1,     /* cached and current */
	CVM_CACHE_FROM_UPSTREAM = 2, /* fetched for this call (or by a concurrent caller it waited for) */
	CVM_CACHE_FROM_STALE = 3,    /* the refresh failed; the last good item, still unexpired */
};
CVM_API const char *cvm_cache_source_name(enum cvm_cache_source s); /* "none", "cache", "upstream", "stale" */

/* struct cvm_cache_info tells a verdict how its collateral was obtained. It
 * covers every item used; the worst source and the oldest age win. */
struct cvm_cache_info {
	enum cvm_cache_source source;
	size_t items;
	size_t fetched;         /* items fetched from the upstream by this call */
	int64_t age_s;          /* now - fetched_at of the oldest item used */
	int64_t expires;        /* the earliest expiry of the items used */
	char anchor[96];        /* the trust anchor they verified against */
	char upstream[256];     /* the upstream base URL used or tried, "" when none */
	char upstream_err[256]; /* why the last refresh failed (stale), "" otherwise */
};

/* Progress of long operations (fetch, pack, import): `done` of `total`
 * items, `what` names the current one. */
typedef void (*cvm_cache_progress_fn)(void *ctx, size_t done, size_t total, const char *what);

/* struct cvm_cache_opts configures a cache handle. 0 / NULL means the
 * default for every field. */
struct cvm_cache_opts {
	const char *dir;               /* required: the cache directory (made 0755 when missing) */
	const char *intel_url;         /* PCS or PCCS base, e.g. "https://api.trustedservices.intel.com";
	                                  NULL: no Intel upstream (offline) */
	const char *amd_url;           /* KDS base, e.g. "https://kdsintf.amd.com"; NULL: no AMD upstream */
	const char *intel_api_key;     /* Ocp-Apim-Subscription-Key (Intel PCS pckcert only), or NULL */
	const char *tls_ca_file;       /* CA bundle for https upstreams; NULL: the system's */
	unsigned connect_timeout_ms;   /* default 5000 */
	unsigned timeout_ms;           /* whole request, default 15000 */
	unsigned retries;              /* after the first try, default 3 */
	unsigned backoff_ms;           /* first backoff, doubled each retry, with jitter; default 250 */
	unsigned backoff_max_ms;       /* default 8000 */
	unsigned retry_after_max_s;    /* longest Retry-After honoured (longer: give up), default 60 */
	unsigned refresh_s;            /* re-fetch an item older than this, default 86400 */
	unsigned refresh_ahead_s;      /* re-fetch an item this close to next_update, default 7 days */
	bool offline;                  /* never contact an upstream */
	bool background_refresh;       /* a refresher keeps the items current (cvm_cache_refresh_due on
	                                  another handle): calls on this one use a cached item until it
	                                  expires, and fetch only what is missing or expired */
	const uint8_t *intel_root_der; /* NULL: the built-in Intel SGX Root CA */
	size_t intel_root_der_len;
	const char *intel_root_name; /* how verdicts name a configured Intel root */
	const uint8_t *amd_root_der; /* NULL: the built-in ARKs */
	size_t amd_root_der_len;
	const char *amd_root_name;
	cvm_cache_progress_fn progress;
	void *progress_ctx;
};

/* A cache handle. One per thread (it keeps warm verified collateral); any
 * number of handles and processes may share a directory. Opaque. */
struct cvm_cache;

/* cvm_cache_open checks `o` and opens (or makes) the directory. On error
 * `err` (may be NULL) says what is wrong and what to do. Returns 0,
 * CVM_E_INVAL, CVM_E_SYSTEM or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_cache_open(const struct cvm_cache_opts *o, struct cvm_cache **out, char *err,
                                          size_t err_len);
CVM_API void cvm_cache_close(struct cvm_cache *c);

/* Flags for the calls below. */
#define CVM_CACHE_NO_FETCH 1u /* use only what is cached (as opts.offline, for one call) */
#define CVM_CACHE_REFRESH 2u  /* fetch even when the cached item is current */

/* cvm_cache_get returns the item `k` at Unix time `now`: the cached one
 * when it is current; otherwise it fetches, verifies and stores it (waiting
 * for a concurrent fetch of the same item rather than starting another);
 * when that fails, the cached one if it has not expired (info->source
 * STALE). On error `err` says why (the upstream's status, the verification
 * failure, "not cached and no upstream configured"). Returns 0,
 * CVM_E_NOT_FOUND (not cached, no upstream or the upstream has none),
 * CVM_E_EXPIRED, CVM_E_UPSTREAM (the upstream failed and nothing usable is
 * cached), the verification's errors (CVM_E_SIGNATURE, CVM_E_CHAIN, ...),
 * CVM_E_INVAL, CVM_E_NOMEM. `info` may be NULL. */
CVM_API CVM_MUST_CHECK int cvm_cache_get(struct cvm_cache *c, const struct cvm_cache_key *k, int64_t now,
                                         unsigned flags, struct cvm_cache_item **out,
                                         struct cvm_cache_info *info, char *err, size_t err_len);

/* cvm_cache_put verifies `it` (its key, body, issuer chain) at `now` as a
 * fetch would and stores it; source and fetched_at are kept as given.
 * Returns 0 or the verification's error; nothing is stored on error. */
CVM_API CVM_MUST_CHECK int cvm_cache_put(struct cvm_cache *c, const struct cvm_cache_item *it, int64_t now,
                                         char *err, size_t err_len);

/* struct cvm_cache_refresh tells what one refresh pass did. */
struct cvm_cache_refresh {
	size_t items;     /* cached items looked at */
	size_t due;       /* not current: older than refresh_s or near their next update */
	size_t refreshed; /* fetched, verified and stored anew */
	size_t failed;    /* the upstream or the verification failed: the cached item stays */
	size_t skipped;   /* due, but no upstream serves their vendor, expired, or PCK certificates
	                     by platform manifest (the manifest is not kept) */
};

/* cvm_cache_refresh_due fetches anew every cached item that is not current
 * at `now` (as cvm_cache_get would, one flight per item across processes),
 * so that handles opened with background_refresh never wait on an
 * upstream. An item whose refresh fails is kept, to serve until it
 * expires; `err` then says why the last one failed. The handle must not be
 * a background_refresh one. Returns 0 (whatever failed: see `st`),
 * CVM_E_INVAL or CVM_E_SYSTEM (the cache cannot be listed). */
CVM_API CVM_MUST_CHECK int cvm_cache_refresh_due(struct cvm_cache *c, int64_t now,
                                                 struct cvm_cache_refresh *st, char *err, size_t err_len);

/* cvm_cache_pck_certs gets the PCK certificates of one platform: by its
 * platform manifest (`manifest`, raw bytes, at most CVM_CACHE_MANIFEST_MAX)
 * or, when `manifest` is NULL, by its encrypted PPID (`enc_ppid`, 384
 * bytes), with its PCE ID. It is cvm_cache_get for the key of kind
 * CVM_CACHE_PCK_CERTS it makes (written to `key`, may be NULL), with the
 * manifest as the request body when it must fetch. Every certificate of the
 * answer is verified before anything is stored (chain to the anchor, dates,
 * FMSPC, PCE ID, the TCB it is listed under); one bad certificate refuses the
 * whole answer. Returns what cvm_cache_get returns. */
CVM_API CVM_MUST_CHECK int cvm_cache_pck_certs(struct cvm_cache *c, const uint8_t *manifest,
                                               size_t manifest_len, const uint8_t *enc_ppid,
                                               size_t enc_ppid_len, const uint8_t pceid[2], int64_t now,
                                               unsigned flags, struct cvm_cache_key *key,
                                               struct cvm_cache_item **out, struct cvm_cache_info *info,
                                               char *err, size_t err_len);

/* struct cvm_cache_pck_choice is one certificate of a pckcerts answer. */
struct cvm_cache_pck_choice {
	size_t index;  /* its place in the answer's array */
	char tcbm[40]; /* its "tcbm": CPUSVN then PCESVN (little-endian), hex */
	char *pem;     /* the certificate, PEM (URL-decoded), NUL-terminated; owned */
	size_t pem_len;
	uint8_t tcb_svn[16];
	uint16_t pcesvn;
};
CVM_API void cvm_cache_pck_choice_cleanup(struct cvm_cache_pck_choice *ch);

/* cvm_cache_pck_select picks the PCK certificate for the raw TCB (`cpusvn`,
 * `pcesvn`) from a pckcerts answer `body` (a JSON array of {"tcb", "tcbm",
 * "cert"}) as Intel's PCK certificate selection does: among the entries that
 * hold a certificate and whose TCB every component of the raw TCB meets
 * (cpusvn[i] >= sgxtcbcomp(i+1)svn, pcesvn >= pcesvn), the highest by the
 * order of the levels of `ti` (the TCB info of the platform's FMSPC); of
 * equal entries, the first. It is pure: it reads only its arguments and
 * verifies no signature (the answer and the TCB info come verified from the
 * cache). Returns 0, CVM_E_NOT_FOUND (no certificate matches: `err` says
 * so), CVM_E_FORMAT, CVM_E_TOO_LARGE, CVM_E_INVAL or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_cache_pck_select(const uint8_t *body, size_t len,
                                                const struct cvm_tcb_info *ti, const uint8_t cpusvn[16],
                                                uint16_t pcesvn, struct cvm_cache_pck_choice *out, char *err,
                                                size_t err_len);

/* struct cvm_cache_need is the set of items one quote or report needs. */
#define CVM_CACHE_NEED_MAX 4
struct cvm_cache_need {
	struct cvm_cache_key keys[CVM_CACHE_NEED_MAX];
	size_t count;
};

/* cvm_cache_need_quote reads a DCAP quote (SGX v3, TDX v4/v5) just far
 * enough to name what verifying it needs: the TCB info of its FMSPC, the QE
 * identity of its TEE, the PCK CRL of its PCK CA and the root CA CRL (the
 * FMSPC and CA come from the PCK certificate the quote carries). Nothing is
 * verified. Returns 0, CVM_E_FORMAT, CVM_E_TRUNCATED, CVM_E_UNSUPPORTED (no
 * PCK chain in the quote). */
CVM_API CVM_MUST_CHECK int cvm_cache_need_quote(const uint8_t *quote, size_t len, struct cvm_cache_need *out,
                                                char *err, size_t err_len);
/* cvm_cache_need_report names what an SEV-SNP report needs: the VCEK for
 * its chip and reported TCB, the chain and CRL of its product (VLEK-signed
 * reports: the ASVK chain and CRL; the VLEK itself cannot be fetched). The
 * product comes from the report (version 3 and later) or `product` when the
 * report does not say (CVM_SNP_PRODUCT_UNKNOWN: CVM_E_UNSUPPORTED then). */
CVM_API CVM_MUST_CHECK int cvm_cache_need_report(const uint8_t *report, size_t len,
                                                 enum cvm_snp_product product, struct cvm_cache_need *out,
                                                 char *err, size_t err_len);

/* cvm_cache_dcap assembles the collateral a quote needs from the cache
 * (fetching as cvm_cache_get does). The caller frees *out. */
CVM_API CVM_MUST_CHECK int cvm_cache_dcap(struct cvm_cache *c, const uint8_t *quote, size_t len, int64_t now,
                                          unsigned flags, struct cvm_dcap_collateral **out,
                                          struct cvm_cache_info *info, char *err, size_t err_len);
/* cvm_cache_amd is cvm_cache_dcap for an SEV-SNP report. A VLEK-signed
 * report's VLEK must come from `vlek` (DER or PEM; NULL: CVM_E_NOT_FOUND). */
CVM_API CVM_MUST_CHECK int cvm_cache_amd(struct cvm_cache *c, const uint8_t *report, size_t len,
                                         enum cvm_snp_product product, const uint8_t *vlek, size_t vlek_len,
                                         int64_t now, unsigned flags, struct cvm_amd_collateral **out,
                                         struct cvm_cache_info *info, char *err, size_t err_len);

/* cvm_cache_dcap_warm returns verified collateral for `quote`, kept in the
 * handle and re-verified only when an item changes or `now` leaves its
 * window: the daemons' warm path. *out is borrowed from the handle (valid
 * until the next call on it). Steps go to `rep` (may be NULL). */
CVM_API CVM_MUST_CHECK int cvm_cache_dcap_warm(struct cvm_cache *c, const uint8_t *quote, size_t len,
                                               int64_t now, struct cvm_dcap_verified **out,
                                               struct cvm_cache_info *info, struct cvm_report *rep, char *err,
                                               size_t err_len);
/* cvm_cache_amd_warm is cvm_cache_dcap_warm for an SEV-SNP report. */
CVM_API CVM_MUST_CHECK int cvm_cache_amd_warm(struct cvm_cache *c, const uint8_t *report, size_t len,
                                              enum cvm_snp_product product, int64_t now,
                                              struct cvm_amd_verified **out, struct cvm_cache_info *info,
                                              struct cvm_report *rep, char *err, size_t err_len);

/* cvm_cache_list calls `fn` for every cached item (bodies included), in
 * name order. It stops at and returns the first non-zero return of `fn`. */
typedef int (*cvm_cache_list_fn)(void *ctx, const struct cvm_cache_item *it);
CVM_API CVM_MUST_CHECK int cvm_cache_list(struct cvm_cache *c, cvm_cache_list_fn fn, void *ctx);

/* cvm_cache_pack writes every unexpired cached item at `now` into one
 * bundle file `path` (written whole, then renamed into place). *count (may
 * be NULL) is the number of items packed. */
CVM_API CVM_MUST_CHECK int cvm_cache_pack(struct cvm_cache *c, const char *path, int64_t now, size_t *count,
                                          char *err, size_t err_len);
/* cvm_cache_import reads a bundle file, or a folder laid out as the
 * vectors' collateral folders (cvm_dcap_collateral_load_dir,
 * cvm_amd_collateral_load_dir), verifies every item at `now` against this
 * handle's trust anchors by the vendors' own signatures, and stores them
 * all, or, if any item fails, none (err names the item and why). Returns 0,
 * the first failure, or CVM_E_FORMAT (not a bundle). */
CVM_API CVM_MUST_CHECK int cvm_cache_import(struct cvm_cache *c, const char *path, int64_t now, size_t *count,
                                            char *err, size_t err_len);

#endif

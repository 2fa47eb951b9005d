/* Local attestation: the TEE this machine runs in, behind one interface.
 *
 * A struct cvm_tee_dev (not "struct cvm_tee": quote.h's enum cvm_tee holds
 * that tag) is one of three backends:
 *   - Intel TDX guest: quotes through configfs-tsm
 *     (/sys/kernel/config/tsm/report, provider "tdx_guest"); measurements and
 *     RTMR extension through /sys/class/misc/tdx_guest/measurements
 *     (Linux 6.16+), else through /dev/tdx_guest (TDX_CMD_GET_REPORT0 and
 *     TDX_CMD_EXTEND_RTMR where the kernel has it);
 *   - AMD SEV-SNP guest: attestation reports through configfs-tsm (provider
 *     "sev_guest", with the certificate table from auxblob) or through
 *     /dev/sev-guest (SNP_GET_EXT_REPORT, else SNP_GET_REPORT);
 *   - the simulated TEE of `cvm sim init DIR` (docs/simulator.md): TDX v4
 *     quotes, byte for byte, signed through a mock Intel chain kept in DIR,
 *     with MRTD fixed at init and RTMRs kept in DIR/state; and SEV-SNP
 *     attestation reports (version 3, 1184 bytes, byte for byte) signed by a
 *     mock VCEK under a mock ARK and ASK kept in DIR, with MEASUREMENT fixed
 *     at init. Its evidence verifies only against DIR's mock roots, never
 *     against Intel's or AMD's, and cvm_tee_info says is_simulated.
 *
 * Typical use (the agent: quote, extend RTMR3 per runtime event, read the
 * registers for its event log):
 *
 *	struct cvm_tee_dev *tee;
 *	struct cvm_tee_evidence ev;
 *
 *	r = simulator ? cvm_tee_open_sim(dir, CVM_TEE_PLATFORM_TDX, &tee)
 *	              : cvm_tee_detect(NULL, &tee);
 *	r = cvm_tee_extend(tee, 3, event_digest);	// SHA-384 of the event
 *	r = cvm_tee_quote(tee, report_data, &ev);	// ev.data: the quote
 *	...
 *	cvm_tee_evidence_cleanup(&ev);
 *	cvm_tee_free(tee);
 *
 * A struct cvm_tee_dev may be used by several threads and processes at once:
 * each quote uses its own configfs-tsm entry (and checks the entry's
 * generation against racing writers), and the simulator serializes RTMR
 * extensions with a lock file. Every function returns 0 or a negative
 * CVM_E_*; CVM_E_SYSTEM leaves the cause in errno. The library never retries
 * a kernel call more than CVM_TEE_RETRIES times. */
#ifndef CVMKIT_TEE_H
#define CVMKIT_TEE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "snp.h"

#define CVM_TEE_REPORT_DATA_LEN 64u              /* inblob / REPORTDATA / REPORT_DATA */
#define CVM_TEE_MR_LEN 48u                       /* SHA-384: MRTD, RTMRs, SNP MEASUREMENT */
#define CVM_TEE_RTMR_COUNT 4u                    /* RTMR0..RTMR3 */
#define CVM_TEE_EVIDENCE_MAX ((size_t)32 * 1024) /* the kernel's TSM_OUTBLOB_MAX */
#define CVM_TEE_AUX_MAX ((size_t)64 * 1024)      /* SNP certificate table */
#define CVM_TEE_RETRIES 3u                       /* attempts when a racing writer is seen */

enum cvm_tee_platform {
	CVM_TEE_PLATFORM_TDX = 1,
	CVM_TEE_PLATFORM_SNP = 2,
};

/* The kernel interfaces a backend found (struct cvm_tee_info.interfaces). */
#define CVM_TEE_IF_TSM_REPORT (1u << 0)       /* /sys/kernel/config/tsm/report */
#define CVM_TEE_IF_TDX_GUEST (1u << 1)        /* /dev/tdx_guest */
#define CVM_TEE_IF_TDX_MEASUREMENTS (1u << 2) /* /sys/class/misc/tdx_guest/measurements */
#define CVM_TEE_IF_SEV_GUEST (1u << 3)        /* /dev/sev-guest */
#define CVM_TEE_IF_SIMULATOR (1u << 4)        /* a `cvm sim` folder */

/* struct cvm_tee_info describes a backend for people and logs. */
struct cvm_tee_info {
	enum cvm_tee_platform platform;
	bool is_simulated;   /* the simulator: evidence proves nothing about hardware */
	unsigned interfaces; /* CVM_TEE_IF_* */
	char provider[32];   /* configfs-tsm provider ("tdx_guest", "sev_guest"), "cvmkit-sim" or "" */
	char description[256];
};

/* struct cvm_tee_evidence is what one cvm_tee_quote call produced; it owns
 * its buffers (free them with cvm_tee_evidence_cleanup). */
struct cvm_tee_evidence {
	enum cvm_tee_platform platform;
	bool is_simulated;
	uint8_t *data; /* TDX: a DCAP quote (v4, or what the QE makes); SNP: the 1184-byte report */
	size_t data_len;
	uint8_t *aux; /* SNP: the certificate table (GHCB MSG_REPORT_REQ cert_table); else NULL */
	size_t aux_len;
};

/* struct cvm_tee_measurements holds the platform's registers as they are
 * now. TDX fills mrtd and rtmr; SNP fills measurement (the launch digest),
 * host_data and report_data of a fresh report. */
struct cvm_tee_measurements {
	enum cvm_tee_platform platform;
	uint8_t mrtd[CVM_TEE_MR_LEN];
	uint8_t rtmr[CVM_TEE_RTMR_COUNT][CVM_TEE_MR_LEN];
	uint8_t measurement[CVM_TEE_MR_LEN];
	uint8_t host_data[32];
};

struct cvm_tee_dev;

/* cvm_tee_detect finds the TEE of this machine: a TDX guest
 * (/dev/tdx_guest or the tdx_guest measurements folder), an SEV-SNP guest
 * (/dev/sev-guest), or else the provider of configfs-tsm. Every path is
 * taken under `root` (NULL or "" is "/"), so tests can point it at a fake
 * tree. It never picks the simulator. The caller frees `*out` with
 * cvm_tee_free. Returns 0, CVM_E_UNSUPPORTED (no TEE interface found),
 * CVM_E_INVAL, CVM_E_NOMEM or CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_tee_detect(const char *root, struct cvm_tee_dev **out);

/* cvm_tee_open opens the backend of `platform` under `root` (as
 * cvm_tee_detect) without guessing. Returns 0, CVM_E_UNSUPPORTED (none of the
 * platform's interfaces is present), CVM_E_INVAL, CVM_E_NOMEM or
 * CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_tee_open(const char *root, enum cvm_tee_platform platform,
                                        struct cvm_tee_dev **out);

/* cvm_tee_open_sim opens the simulated platform that cvm_tee_sim_init made
 * in `dir`, acting as a TDX guest or as an SEV-SNP guest after `platform`.
 * It loads the mock keys, which must be readable by their owner only
 * (CVM_E_INVAL otherwise). The SNP guest quotes (reports for the VMPL set
 * with cvm_tee_set_privlevel, else 0) and gives its measurements, but
 * cannot extend. Returns 0, CVM_E_INVAL, CVM_E_FORMAT (not a simulator
 * folder, or a damaged one), CVM_E_UNSUPPORTED (SNP on a platform made
 * without it, or a folder format this version does not know), CVM_E_NOMEM,
 * CVM_E_CRYPTO or CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_tee_open_sim(const char *dir, enum cvm_tee_platform platform,
                                            struct cvm_tee_dev **out);

/* cvm_tee_free releases `tee`; NULL is a no-op. */
CVM_API void cvm_tee_free(struct cvm_tee_dev *tee);

/* cvm_tee_info fills `out` with what `tee` is. */
CVM_API void cvm_tee_info(const struct cvm_tee_dev *tee, struct cvm_tee_info *out);

/* cvm_tee_set_privlevel sets the SEV-SNP VMPL (0..3) that later reports
 * are requested for (configfs-tsm privlevel, or the ioctl's vmpl); without
 * it, configfs-tsm's default and VMPL 0 for the ioctl. A level below the
 * provider's privlevel_floor makes later cvm_tee_quote calls fail with
 * CVM_E_INVAL. Returns 0, CVM_E_INVAL (above 3) or CVM_E_UNSUPPORTED (not
 * SNP). */
CVM_API CVM_MUST_CHECK int cvm_tee_set_privlevel(struct cvm_tee_dev *tee, unsigned level);

/* cvm_tee_quote asks the TEE for evidence binding the 64 bytes at
 * `report_data`: a TDX quote, or an SNP attestation report (with its
 * certificate table when the host supplies one). `out` is cleared first and
 * owns the result on success. It checks the size of what the kernel returns
 * but verifies nothing: verify the evidence where it is used. Returns 0,
 * CVM_E_UNSUPPORTED (no interface can quote), CVM_E_FORMAT (the kernel's
 * answer is malformed), CVM_E_TOO_LARGE, CVM_E_NOMEM, CVM_E_CRYPTO
 * (simulator) or CVM_E_SYSTEM (errno EBUSY: another writer kept racing on the
 * report entry). */
CVM_API CVM_MUST_CHECK int cvm_tee_quote(struct cvm_tee_dev *tee,
                                         const uint8_t report_data[CVM_TEE_REPORT_DATA_LEN],
                                         struct cvm_tee_evidence *out);

/* cvm_tee_evidence_cleanup frees what `e` owns and zeroes it. */
CVM_API void cvm_tee_evidence_cleanup(struct cvm_tee_evidence *e);

/* cvm_tee_extend extends TDX RTMR `index` (0..3; the agent uses 3 for
 * runtime events) with the 48-byte `digest`: RTMR := SHA-384(RTMR ||
 * digest). Which registers user space may extend is the kernel's (and the
 * TDX module's) choice; a refusal comes back as CVM_E_SYSTEM. The simulator
 * serializes extensions across processes, so none is lost. Returns 0,
 * CVM_E_INVAL (index), CVM_E_UNSUPPORTED (SNP, or no interface can extend),
 * CVM_E_FORMAT (simulator state damaged) or CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_tee_extend(struct cvm_tee_dev *tee, unsigned index,
                                          const uint8_t digest[CVM_TEE_MR_LEN]);

/* cvm_tee_measurements reads the registers now (see struct
 * cvm_tee_measurements). Values come from the kernel unverified. Returns 0,
 * CVM_E_UNSUPPORTED, CVM_E_FORMAT, CVM_E_NOMEM or CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_tee_measurements(struct cvm_tee_dev *tee, struct cvm_tee_measurements *out);

/* ---- the simulated TEE ---------------------------------------------------- */

/* struct cvm_tee_sim_opts chooses what `cvm sim init` makes. */
struct cvm_tee_sim_opts {
	int64_t now;                      /* Unix time the mock PKIs' windows are centred on */
	uint8_t mrtd[48];                 /* the TD's MRTD (fixed for the platform's life) */
	uint8_t snp_measurement[48];      /* the SNP guest's launch MEASUREMENT (likewise) */
	bool is_debug;                    /* TD attribute DEBUG and SNP POLICY.DEBUG set */
	bool tcb_out_of_date;             /* TDX: a PCE SVN that only the OutOfDate TCB level meets */
	bool with_snp;                    /* also make the SEV-SNP half (mock AMD chain, template) */
	enum cvm_snp_product snp_product; /* Milan, Genoa or Turin: names, TCB layout, CPUID */
	/* What a launch measures besides MRTD: a dev VM's host computes these
	 * from the firmware, kernel, initrd, command line and VM configuration
	 * it boots (`cvm measure`), so that the guest's simulated quotes carry
	 * what a TDX module and TDVF would have measured. All zero by default. */
	uint8_t rtmr_init[3][48];  /* RTMR0..2 after init (RTMR3 starts at zero) */
	uint8_t mr_config_id[48];  /* MRCONFIGID in every quote (the app's, spec §5.7) */
	uint8_t snp_host_data[32]; /* HOST_DATA in every SNP report */
};

/* cvm_tee_sim_opts_init fills `o` for `now` with a random MRTD and SNP
 * measurement, no debug, and an SNP half for Milan. */
CVM_API void cvm_tee_sim_opts_init(struct cvm_tee_sim_opts *o, int64_t now);

/* cvm_tee_sim_init makes a simulated platform in `dir`, which must not exist
 * or be empty, and which is created with mode 0700: the mock Intel PKI
 * (root with the simulated marker, PCK CA, PCK certificate, TCB signer;
 * keys in DIR/keys with mode 0600), collateral in DIR/collateral/tdx/ in the
 * layout `cvm quote verify --collateral` reads (the mock root as
 * intel_sgx_root_ca.der), the platform template, and zeroed RTMRs in
 * DIR/state. With `with_snp` it also makes the mock AMD PKI (ARK with the
 * simulated marker, ASK, VCEK with a random chip ID; keys in DIR/keys with
 * mode 0600), DIR/collateral/snp/ in the layout of the vectors' snp folders
 * (ark.pem, ask.pem, vcek.der, vcek.pem, cert_chain.pem, crl.der) and the
 * SNP template report. Returns 0, CVM_E_INVAL (`dir` is not empty, or an
 * unknown `snp_product`), CVM_E_NOMEM, CVM_E_CRYPTO or CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_tee_sim_init(const char *dir, const struct cvm_tee_sim_opts *o);

/* struct cvm_tee_sim_launch holds what a host measured when it launched one
 * VM on a simulated platform (`cvm sim launch`): the values the guest's
 * simulated evidence then carries. */
struct cvm_tee_sim_launch {
	uint8_t mrtd[48];            /* all zero: keep the platform's */
	uint8_t rtmr_init[3][48];    /* RTMR0..2 as the launch left them (RTMR3 starts at zero) */
	uint8_t mr_config_id[48];    /* MRCONFIGID of every TDX quote */
	uint8_t snp_measurement[48]; /* all zero: keep the platform's */
	uint8_t snp_host_data[32];   /* HOST_DATA of every SNP report */
};

/* cvm_tee_sim_launch makes in `dir` the simulator of one VM launched on the
 * simulated platform in `platform_dir`: the same mock PKIs (DIR/keys and
 * DIR/collateral are byte-for-byte copies, modes kept), so the platform's
 * collateral verifies the VM's evidence, with the launch's registers from
 * `l`. Its TDX template is the platform's with MR_TD (unless l->mrtd is all
 * zero) and MR_CONFIG_ID replaced, re-signed with the platform's mock PCK key;
 * with an SNP half, its SNP template is the platform's with MEASUREMENT
 * (unless all zero) and HOST_DATA replaced, re-signed with the mock VCEK.
 * RTMR0..2 start at l->rtmr_init, RTMR3 at zero. `dir` must not exist or be
 * empty, as for cvm_tee_sim_init; DIR/sim.json is written last, so a folder
 * without it is an unfinished launch, which this function does not remove.
 * The result is itself a platform folder: cvm_tee_open_sim opens it and it
 * can be launched from. `platform_dir` is only read. Returns 0, CVM_E_INVAL
 * (`dir` is not empty, or a platform key file grants access to group or
 * others), CVM_E_FORMAT (`platform_dir` is not a simulator or is damaged),
 * CVM_E_UNSUPPORTED (a simulator format this cvmkit does not know),
 * CVM_E_NOMEM, CVM_E_CRYPTO or CVM_E_SYSTEM. */
CVM_API CVM_MUST_CHECK int cvm_tee_sim_launch(const char *platform_dir, const char *dir,
                                              const struct cvm_tee_sim_launch *l);

/* cvm_tee_sim_refresh re-signs the collateral of the platform in `dir`
 * (CRLs, TCB info, QE identity; the AMD CRL when it has an SNP half) for a
 * window centred on `now`, with the same keys: a simulated platform whose
 * collateral expired verifies again. Returns as cvm_tee_open_sim. */
CVM_API CVM_MUST_CHECK int cvm_tee_sim_refresh(const char *dir, int64_t now);

/* cvm_tee_is_simulated_root is true when the certificate in the `len` bytes
 * at `der` (DER) is a cvmkit simulator root (it carries the marker
 * extension). Use it to label every verdict that was anchored in it. */
CVM_API bool cvm_tee_is_simulated_root(const uint8_t *der, size_t len);

/* cvm_tee_evidence_is_simulated is true when a DCAP quote's embedded PCK
 * chain, or the certificates at `chain` (SNP: PEM text of one or more, such
 * as ark.pem or cert_chain.pem, or one DER certificate; NULL when none),
 * hold a simulator certificate. An SNP report carries no certificate, so
 * for SNP only `chain` can tell. It checks no signature: it only tells a
 * verifier to label its verdict, never to trust anything. */
CVM_API bool cvm_tee_evidence_is_simulated(const uint8_t *quote, size_t quote_len, const uint8_t *chain,
                                           size_t chain_len);

/* CVM_TEE_SIMULATED_BANNER is the first line every verdict over simulated
 * evidence prints. */
#define CVM_TEE_SIMULATED_BANNER \
	"SIMULATED TEE: this evidence comes from cvmkit's simulator, not from hardware"

#endif

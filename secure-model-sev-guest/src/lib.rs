//! # secure-model-sev-guest
//!
//! One job: ask the AMD SEV-SNP firmware, through the Linux guest driver's
//! `/dev/sev-guest` `SNP_GET_EXT_REPORT` ioctl, for an attestation report over 64 bytes of
//! report data plus the host-provided certificate table (VCEK/VLEK, ASK, ARK). It is used on
//! kernels without configfs-tsm (before 6.7); `secure-model-core` parses what it returns.
//!
//! ## Why this crate has unsafe code
//! An ioctl is a raw system call that hands the kernel pointers into our memory; no safe
//! wrapper exists for this driver's request structures. The rest of secure-model forbids
//! `unsafe` (but for the Python package's buffer export); this crate *denies* it and allows
//! it in exactly one private module (`ioctl`), where every block carries a `SAFETY:` comment. The `virtee/sev` crate was not used for this
//! because its `get_ext_report` walks the certificate table through raw pointers at offsets
//! chosen by the hypervisor, without bounds: the host is the adversary of a confidential
//! guest. Here the kernel only ever writes into buffers we sized, and everything it returns
//! is treated as untrusted bytes: the table is returned as bytes, for a bounds-checked parser.
//!
//! Layouts follow `include/uapi/linux/sev-guest.h`; the tests pin the structure sizes and
//! the ioctl number (`0xc0205302`).

#![deny(missing_docs)]

use std::path::Path;

/// The guest device.
pub const DEFAULT_DEVICE: &str = "/dev/sev-guest";
/// The report data the firmware binds (`REPORT_DATA`).
pub const REPORT_DATA_LEN: usize = 64;
/// Size of an attestation report (`ATTESTATION_REPORT`, versions 2 to 5).
pub const REPORT_LEN: usize = 0x4a0;
/// Largest certificate buffer the driver accepts (`SEV_FW_BLOB_MAX_SIZE`; also the size
/// this crate always offers, so one call suffices).
pub const MAX_CERTS_LEN: usize = 0x4000;
/// Size of the firmware response buffer (`struct snp_report_resp`).
pub const RESPONSE_LEN: usize = 4000;
/// `exitinfo2` VMM error: the certificate buffer is too small.
pub const VMM_ERR_INVALID_LEN: u32 = 1;
/// `exitinfo2` VMM error: the host is busy.
pub const VMM_ERR_BUSY: u32 = 2;

/// An extended report: the raw report and the raw certificate table buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtReport {
    /// The attestation report, exactly [`REPORT_LEN`] bytes, unverified.
    pub report: Vec<u8>,
    /// The certificate table as the host wrote it into our [`MAX_CERTS_LEN`] buffer
    /// (GUID/offset/length entries, a zero entry, then the certificates); all zeros when
    /// the host supplied none. Untrusted: parse with bounds checks.
    pub certs: Vec<u8>,
}

/// Errors of [`get_ext_report`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SevGuestError {
    /// The device could not be opened.
    #[error("cannot open the SEV-SNP guest device {path}")]
    Open {
        /// Device path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The ioctl failed.
    #[error("SNP_GET_EXT_REPORT on {path} failed (firmware error {fw_error:#x}, VMM error {vmm_error:#x})")]
    Ioctl {
        /// Device path.
        path: String,
        /// Firmware error code (`exitinfo2` bits 31:0).
        fw_error: u32,
        /// VMM error code (`exitinfo2` bits 63:32).
        vmm_error: u32,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// The host's certificates do not fit the largest buffer the driver accepts.
    #[error("the host's SEV-SNP certificate table needs {needed} bytes; the driver accepts at most {MAX_CERTS_LEN}")]
    CertsTooLarge {
        /// Size the host asked for.
        needed: u64,
    },
    /// The firmware answered with a non-zero status.
    #[error("the SEV-SNP firmware refused the report request (status {status:#x})")]
    Firmware {
        /// `MSG_REPORT_RSP.STATUS`.
        status: u32,
    },
    /// The response does not have the expected shape.
    #[error("malformed SEV-SNP report response: {reason}")]
    Malformed {
        /// What.
        reason: &'static str,
    },
    /// Not Linux.
    #[error("/dev/sev-guest exists only on Linux")]
    Unsupported,
}

/// Splits a firmware `MSG_REPORT_RSP` (status u32, report size u32, 24 reserved bytes, the
/// report) and returns the report, which must be exactly [`REPORT_LEN`] bytes.
///
/// # Errors
/// [`SevGuestError::Firmware`] for a non-zero status, [`SevGuestError::Malformed`] for a
/// size other than [`REPORT_LEN`] or a short buffer.
pub fn parse_report_response(resp: &[u8]) -> Result<Vec<u8>, SevGuestError> {
    let word = |at: usize| -> Result<u32, SevGuestError> {
        resp.get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or(SevGuestError::Malformed {
                reason: "response shorter than its header",
            })
    };
    let status = word(0)?;
    if status != 0 {
        return Err(SevGuestError::Firmware { status });
    }
    let size = word(4)? as usize;
    if size != REPORT_LEN {
        return Err(SevGuestError::Malformed {
            reason: "report size is not 1184 bytes",
        });
    }
    resp.get(0x20..0x20 + REPORT_LEN)
        .map(<[u8]>::to_vec)
        .ok_or(SevGuestError::Malformed {
            reason: "response shorter than the report it announces",
        })
}

/// Requests an extended report over `report_data` at privilege level `vmpl` (0 unless the
/// guest runs under an SVSM) from `device` (normally [`DEFAULT_DEVICE`]). Blocking.
///
/// # Errors
/// [`SevGuestError`]: the device cannot be opened, the ioctl fails (with the firmware and
/// VMM error codes), the firmware refuses, or the response is malformed.
pub fn get_ext_report(
    device: &Path,
    report_data: &[u8; REPORT_DATA_LEN],
    vmpl: u32,
) -> Result<ExtReport, SevGuestError> {
    #[cfg(target_os = "linux")]
    {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .open(device)
            .map_err(|source| SevGuestError::Open {
                path: device.display().to_string(),
                source,
            })?;
        let mut certs = vec![0u8; MAX_CERTS_LEN];
        let mut resp = vec![0u8; RESPONSE_LEN];
        let out = ioctl::ext_report(&file, report_data, vmpl, &mut certs, &mut resp);
        let (fw_error, vmm_error) = (out.exitinfo2 as u32, (out.exitinfo2 >> 32) as u32);
        if vmm_error == VMM_ERR_INVALID_LEN {
            return Err(SevGuestError::CertsTooLarge {
                needed: u64::from(out.certs_len),
            });
        }
        if let Err(errno) = out.result {
            return Err(SevGuestError::Ioctl {
                path: device.display().to_string(),
                fw_error,
                vmm_error,
                source: errno.into(),
            });
        }
        let report = parse_report_response(&resp)?;
        Ok(ExtReport { report, certs })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (device, report_data, vmpl);
        Err(SevGuestError::Unsupported)
    }
}

// Private: the raw request structures and the syscall are not API; `get_ext_report` is.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod ioctl {
    //! The `SNP_GET_EXT_REPORT` request structures and the one `unsafe` call.
    //!
    //! Reason for `unsafe`: `ioctl(2)` passes the kernel raw addresses of our request,
    //! response and certificate buffers. The obligations (the addresses are valid, writable
    //! where the kernel writes, live for the whole call and as large as the structures say)
    //! hold because every buffer is a local or a `&mut` borrow that outlives the call and
    //! whose size is fixed by its type or checked before the call.

    use std::os::fd::AsFd;

    use rustix::ioctl::{opcode, Opcode, Updater};

    /// `struct snp_guest_request_ioctl`.
    #[repr(C)]
    #[derive(Debug, Default)]
    pub struct GuestRequest {
        /// Message version (1).
        pub msg_version: u8,
        /// Address of the request structure.
        pub req_data: u64,
        /// Address of the response structure.
        pub resp_data: u64,
        /// Bits 31:0 firmware error, bits 63:32 VMM error.
        pub exitinfo2: u64,
    }

    /// `struct snp_report_req`.
    #[repr(C)]
    #[derive(Debug)]
    pub struct ReportReq {
        /// Report data.
        pub user_data: [u8; super::REPORT_DATA_LEN],
        /// Requested VMPL.
        pub vmpl: u32,
        /// Must be zero.
        pub rsvd: [u8; 28],
    }

    /// `struct snp_ext_report_req`.
    #[repr(C)]
    #[derive(Debug)]
    pub struct ExtReportReq {
        /// The report request.
        pub data: ReportReq,
        /// Address of the certificate buffer.
        pub certs_address: u64,
        /// Its length (a multiple of the page size, at most `SEV_FW_BLOB_MAX_SIZE`).
        pub certs_len: u32,
    }

    /// `SNP_GET_EXT_REPORT = _IOWR('S', 0x2, struct snp_guest_request_ioctl)`.
    pub const SNP_GET_EXT_REPORT: Opcode = opcode::read_write::<GuestRequest>(b'S', 0x2);

    /// What one call produced.
    #[derive(Debug)]
    pub struct Outcome {
        /// The syscall result.
        pub result: rustix::io::Result<()>,
        /// `exitinfo2` as the kernel left it.
        pub exitinfo2: u64,
        /// `certs_len` as the kernel left it (the size it needs after `INVALID_LEN`).
        pub certs_len: u32,
    }

    /// Issues `SNP_GET_EXT_REPORT` on `fd` with message version 1. `certs` must be exactly
    /// [`super::MAX_CERTS_LEN`] bytes and `resp` exactly [`super::RESPONSE_LEN`] bytes
    /// (checked; a mismatch returns `EINVAL` without a syscall).
    pub fn ext_report(
        fd: impl AsFd,
        report_data: &[u8; super::REPORT_DATA_LEN],
        vmpl: u32,
        certs: &mut [u8],
        resp: &mut [u8],
    ) -> Outcome {
        if certs.len() != super::MAX_CERTS_LEN || resp.len() != super::RESPONSE_LEN {
            return Outcome {
                result: Err(rustix::io::Errno::INVAL),
                exitinfo2: 0,
                certs_len: 0,
            };
        }
        let mut req = ExtReportReq {
            data: ReportReq {
                user_data: *report_data,
                vmpl,
                rsvd: [0; 28],
            },
            certs_address: certs.as_mut_ptr() as u64,
            certs_len: super::MAX_CERTS_LEN as u32,
        };
        let mut guest = GuestRequest {
            msg_version: 1,
            req_data: std::ptr::addr_of_mut!(req) as u64,
            resp_data: resp.as_mut_ptr() as u64,
            exitinfo2: 0,
        };
        // SAFETY: the opcode's direction and size match `GuestRequest` (`_IOWR`, 32 bytes,
        // pinned by a test against the kernel's value). The kernel reads `req`
        // (`sizeof(struct snp_ext_report_req)` bytes, the size of `ExtReportReq`), writes
        // `req.certs_len` back, writes at most `certs_len` (= `certs.len()`) bytes at
        // `certs_address` and `sizeof(struct snp_report_resp)` (= `resp.len()`) bytes at
        // `resp_data`. `req`, `certs` and `resp` are live, exclusively borrowed and not
        // moved until the call returns.
        let result = unsafe {
            let updater = Updater::<'_, SNP_GET_EXT_REPORT, GuestRequest>::new(&mut guest);
            rustix::ioctl::ioctl(fd, updater)
        };
        Outcome {
            result,
            exitinfo2: guest.exitinfo2,
            certs_len: req.certs_len,
        }
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::ioctl::{ExtReportReq, GuestRequest, ReportReq, SNP_GET_EXT_REPORT};
    use super::*;

    #[test]
    fn layouts_match_the_kernel_uapi() {
        // include/uapi/linux/sev-guest.h on x86_64.
        assert_eq!(std::mem::size_of::<GuestRequest>(), 32);
        assert_eq!(std::mem::size_of::<ReportReq>(), 96);
        assert_eq!(std::mem::size_of::<ExtReportReq>(), 112);
        assert_eq!(std::mem::offset_of!(ExtReportReq, certs_address), 96);
        assert_eq!(std::mem::offset_of!(ExtReportReq, certs_len), 104);
        assert_eq!(std::mem::offset_of!(GuestRequest, exitinfo2), 24);
        // _IOWR('S', 0x2, struct snp_guest_request_ioctl) as the kernel headers expand it.
        assert_eq!(SNP_GET_EXT_REPORT, 0xc020_5302);
        assert_eq!(MAX_CERTS_LEN % 4096, 0);
    }

    fn response(status: u32, size: u32) -> Vec<u8> {
        let mut r = vec![0u8; RESPONSE_LEN];
        r[0..4].copy_from_slice(&status.to_le_bytes());
        r[4..8].copy_from_slice(&size.to_le_bytes());
        for (i, b) in r[0x20..0x20 + REPORT_LEN].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        r
    }

    #[test]
    fn response_parsing() {
        let ok = parse_report_response(&response(0, REPORT_LEN as u32)).unwrap();
        assert_eq!(ok.len(), REPORT_LEN);
        assert_eq!(ok[0..3], [0, 1, 2]);
        assert!(matches!(
            parse_report_response(&response(0x16, REPORT_LEN as u32)),
            Err(SevGuestError::Firmware { status: 0x16 })
        ));
        assert!(matches!(
            parse_report_response(&response(0, 4000)),
            Err(SevGuestError::Malformed { .. })
        ));
        assert!(matches!(
            parse_report_response(&response(0, REPORT_LEN as u32)[..100]),
            Err(SevGuestError::Malformed { .. })
        ));
        assert!(matches!(
            parse_report_response(&[]),
            Err(SevGuestError::Malformed { .. })
        ));
    }

    #[test]
    fn missing_device_is_named() {
        let err = get_ext_report(Path::new("/nonexistent/sev-guest"), &[0; 64], 0).unwrap_err();
        assert!(matches!(err, SevGuestError::Open { .. }));
        assert!(err.to_string().contains("/nonexistent/sev-guest"), "{err}");
    }

    #[test]
    fn a_device_that_is_not_sev_guest_refuses_the_real_ioctl() {
        // The real syscall with our structures; /dev/null has no such ioctl (ENOTTY).
        let err = get_ext_report(Path::new("/dev/null"), &[7; 64], 0).unwrap_err();
        match &err {
            SevGuestError::Ioctl {
                source,
                fw_error: 0,
                vmm_error: 0,
                ..
            } => assert_eq!(source.raw_os_error(), Some(25), "{source}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("/dev/null"), "{err}");
    }

    #[test]
    fn wrong_buffer_sizes_never_reach_the_kernel() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let out = ioctl::ext_report(&f, &[0; 64], 0, &mut [0u8; 10], &mut vec![0; RESPONSE_LEN]);
        assert_eq!(out.result, Err(rustix::io::Errno::INVAL));
    }
}

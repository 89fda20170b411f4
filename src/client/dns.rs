//! Why a DNS lookup failed, and the code a Windows client shows for each cause. It lives
//! here, beside the other causes of [`super::outcome`], because the client's outcome maps it;
//! [`crate::discover`] produces it (and re-exports it).

use crate::catalog::hresult::code;

/// Why a DNS lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsCause {
    /// The name does not exist (NXDOMAIN).
    NxDomain,
    /// The name exists but has no record of the type asked (empty answer).
    NoRecords,
    /// The server failed (SERVFAIL).
    ServFail,
    /// The server refused (REFUSED).
    Refused,
    /// No answer within the deadline.
    Timeout,
    /// The server could not be reached (ICMP unreachable, TCP refused).
    Unreachable,
    /// Anything else: a malformed or unexpected answer.
    Other,
}

impl DnsCause {
    /// The cause label in tallies and event rows, e.g. `dns:nxdomain`.
    pub fn label(self) -> &'static str {
        match self {
            Self::NxDomain => "dns:nxdomain",
            Self::NoRecords => "dns:no_records",
            Self::ServFail => "dns:servfail",
            Self::Refused => "dns:refused",
            Self::Timeout => "dns:timeout",
            Self::Unreachable => "dns:unreachable",
            Self::Other => "dns:error",
        }
    }

    /// The code a client shows for it (see the module's table).
    pub fn code(self) -> u32 {
        match self {
            Self::NxDomain => code::DNS_ERROR_RCODE_NAME_ERROR,
            Self::NoRecords => code::DNS_INFO_NO_RECORDS,
            Self::ServFail | Self::Other => code::DNS_ERROR_RCODE_SERVER_FAILURE,
            Self::Refused => code::DNS_ERROR_RCODE_REFUSED,
            Self::Timeout | Self::Unreachable => code::ERROR_TIMEOUT,
        }
    }

    /// What to check, in one sentence.
    pub fn hint(self) -> &'static str {
        match self {
            Self::NxDomain => {
                "no such name: check the domain, and that the KMS host publishes its SRV record (event 12294) or that the record was created by hand"
            }
            Self::NoRecords => {
                "the name exists but holds no SRV record: create _vlmcs._tcp.<domain> SRV 0 0 1688 <host>"
            }
            Self::ServFail => "the DNS server failed: check its logs, forwarders and the zone",
            Self::Refused => {
                "the DNS server refused the query: check which clients and zones it serves"
            }
            Self::Timeout => {
                "the DNS server did not answer in time: check its address and that UDP/TCP 53 reach it"
            }
            Self::Unreachable => "the DNS server cannot be reached: check its address and port",
            Self::Other => "the DNS answer was unusable: check the server",
        }
    }
}

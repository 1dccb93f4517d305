//! The parts of an answer the respond half (`packet::handle`) writes around its body's octets:
//! the header fields and length of a template, or those of an error the OPT record decided
//! (`edns::Built::rcode`: FORMERR, BADCOOKIE, BADVERS), which has an empty body and no
//! template, as the engine writes it (`Engine::error`).

use dns_common::{counter, Answer};

use crate::edns;

/// A template's header fields, length and kind, or an error's.
pub struct Body {
    pub header_flags: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    pub len: usize,
    /// What `handle` returns: the `AnswerKind` (counted by `counter::answered`).
    pub kind: u16,
}

impl Body {
    #[inline(always)]
    pub fn of(answer: &Answer) -> Body {
        Body {
            header_flags: answer.header_flags,
            ancount: answer.ancount,
            nscount: answer.nscount,
            arcount: answer.arcount,
            len: answer.len as usize,
            kind: answer.kind & 0xff,
        }
    }

    /// The engine's answer with the extended RCODE `rcode` that the OPT record's options
    /// decided (`edns::Built::rcode`; its upper bits are in the record): QR and the RCODE's
    /// low four bits (not AA), the question, no records but the OPT.
    #[inline(always)]
    pub fn error(rcode: u32) -> Body {
        Body {
            header_flags: 0x8000 | (rcode & 0xf) as u16,
            ancount: 0,
            nscount: 0,
            arcount: 0,
            len: 0,
            kind: match rcode {
                edns::RCODE_BADCOOKIE => counter::KIND_BADCOOKIE,
                edns::RCODE_BADVERS => counter::KIND_BADVERS,
                _ => counter::KIND_FORMERR,
            },
        }
    }
}

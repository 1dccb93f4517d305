//! A response message with its structure kept (RFC 1035 §4.1): the header fields, the question,
//! the answer, authority and additional sections (the body), the OPT record apart (RFC 6891
//! §6.1.1), where the body's compression pointers are, and whether the size limit left any
//! RRset out. The writer makes it; `Engine::answer` sends its bytes, and the XDP compiler takes
//! its parts, so both come from the same code. `render` rebuilds the bytes from the parts.

/// A response as the writer made it.
#[derive(Clone, Debug)]
pub struct Message {
    pub(super) bytes: Vec<u8>,
    /// Offset of the first octet after the question.
    pub(super) question_end: usize,
    /// Offset of the OPT record, which ends the message.
    pub(super) opt_at: Option<usize>,
    /// Message offsets of the compression pointers written after the question.
    pub(super) pointers: Vec<u16>,
    /// Every RRset the answer has was written (none left out for the size limit).
    pub(super) complete: bool,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl Message {
    /// The message as sent.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn id(&self) -> u16 {
        be16(&self.bytes, 0)
    }

    /// Header flags: QR, opcode, AA, TC, RD, RA, AD, CD and RCODE.
    pub fn flags(&self) -> u16 {
        be16(&self.bytes, 2)
    }

    /// ANCOUNT, NSCOUNT and ARCOUNT, the OPT record not counted.
    pub fn counts(&self) -> [u16; 3] {
        let ar = be16(&self.bytes, 10) - self.opt_at.is_some() as u16;
        [be16(&self.bytes, 6), be16(&self.bytes, 8), ar]
    }

    /// The question as the query sent it (empty when the response has none).
    pub fn question(&self) -> &[u8] {
        &self.bytes[12..self.question_end]
    }

    /// The answer, authority and additional sections: everything after the question, the OPT
    /// record excluded.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.question_end..self.opt_at.unwrap_or(self.bytes.len())]
    }

    /// The OPT record, when the response has one.
    pub fn opt(&self) -> Option<&[u8]> {
        self.opt_at.map(|at| &self.bytes[at..])
    }

    /// Offsets in `body()` of its compression pointers (two octets each), in order.
    pub fn pointers(&self) -> impl Iterator<Item = usize> + '_ {
        self.pointers
            .iter()
            .map(|p| *p as usize - self.question_end)
    }

    /// Whether every RRset of the answer was written: false when the size limit left one out
    /// (TC, or additional data dropped), so that a larger limit would give more.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// The message built again from its parts: header (QDCOUNT from the question, ARCOUNT
    /// with the OPT record), question, body, OPT record. Always equal to `bytes()`.
    pub fn render(&self) -> Vec<u8> {
        let [an, ns, ar] = self.counts();
        let qd = !self.question().is_empty() as u16;
        let ar = ar + self.opt().is_some() as u16;
        let mut m = Vec::with_capacity(self.bytes.len());
        for field in [self.id(), self.flags(), qd, an, ns, ar] {
            m.extend_from_slice(&field.to_be_bytes());
        }
        m.extend_from_slice(self.question());
        m.extend_from_slice(self.body());
        m.extend_from_slice(self.opt().unwrap_or_default());
        m
    }
}

//! PEM encoding of certificates (RFC 7468).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Encode DER as PEM with the given label, 64-character lines.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Encode a certificate.
pub fn certificate(der: &[u8]) -> String {
    encode("CERTIFICATE", der)
}

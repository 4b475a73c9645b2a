//! Card operations with an open card session: raw signatures, CAdES-BES signatures, the per-signature
//! approval they may need, and the card's certificates.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// `POST /api/v1/card/sign`: a raw signature with a card key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CardSignRequest {
    /// `authentication` (default) or `signing` (V2 cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `ecdsa-sha256` (P-256 keys), `rsa-pkcs1-sha256` or `rsa-pss-sha256` (RSA keys); default:
    /// the key's usual scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// The SHA-256 digest to sign, hex (64 characters). Give `digest` or `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The data to sign, base64 (hashed with SHA-256 by the service). Give `digest` or `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Document name shown on the authenticator when the signature needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Id of the approved approval for this very signature (after a 202 answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Name of the registered relying app the signature is made for, if any (audited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// A raw signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardSignature {
    /// The signature, base64 (ECDSA: DER-encoded).
    pub signature: String,
    /// Key used: `authentication` or `signing`.
    pub key: String,
    /// Scheme used.
    pub algorithm: String,
    /// SHA-256 digest signed, hex.
    pub digest: String,
    /// Serial (hex) of the certificate of the key that signed.
    pub certificate_serial: String,
    /// That certificate, PEM.
    pub certificate: String,
}

/// Most digests one batch request may carry.
pub const MAX_BATCH_DIGESTS: usize = 256;

/// `POST /api/v1/card/sign/batch`: raw signatures of several digests with one card key in one
/// request (like the CSC API's signHash) — for keys the policy lets sign within the session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CardSignBatchRequest {
    /// `authentication` (default) or `signing` (V2 cards, only where the policy needs no approval
    /// per signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// As for a single signature; default: the key's usual scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// The SHA-256 digests to sign, hex (64 characters each); 1 to 256 of them.
    pub digests: Vec<String>,
    /// What is being signed, recorded with each signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Name of the registered relying app the signatures are made for, if any (audited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// One signature of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DigestSignature {
    /// The SHA-256 digest signed, hex.
    pub digest: String,
    /// The signature, base64 (ECDSA: DER-encoded).
    pub signature: String,
}

/// The signatures of a batch, in the order of the request's digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardSignatureBatch {
    /// Key used: `authentication` or `signing`.
    pub key: String,
    /// Scheme used.
    pub algorithm: String,
    /// Serial (hex) of the certificate of the key that signed.
    pub certificate_serial: String,
    /// That certificate, PEM.
    pub certificate: String,
    /// One signature per digest, in request order.
    pub signatures: Vec<DigestSignature>,
}

/// `POST /api/v1/card/cades`: a CAdES-BES signature with the V2 signing key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CadesSignRequest {
    /// The content, base64. Required for an attached signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The content's SHA-256 digest, hex (detached signatures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Leave the content out of the signature (default `true`).
    #[serde(default = "yes")]
    pub detached: bool,
    /// Document name shown on the authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Id of the approved approval for this very signature (after a 202 answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Name of the registered relying app the signature is made for, if any (audited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

fn yes() -> bool {
    true
}

/// A CAdES-BES signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CadesSignature {
    /// CMS SignedData (ContentInfo), DER, base64 — a `.p7s` file.
    pub cades: String,
    /// Whether the content is left out.
    pub detached: bool,
    /// SHA-256 of the content, hex.
    pub digest: String,
    /// Serial (hex) of the signing certificate.
    pub certificate_serial: String,
    /// The signing time put in the signature.
    #[serde(with = "time::serde::rfc3339")]
    pub signing_time: OffsetDateTime,
}

/// `202 Accepted` from a signing route: the signature waits for the holder's Yes on an
/// authenticator. Wait on `GET /api/v1/card/approvals/{approval}`, then repeat the request with
/// `approval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// Approval id.
    pub approval: String,
    /// `pending`, `approved`, `denied`, `expired` or `used`.
    pub state: String,
    /// Document name shown to the holder.
    pub document: String,
    /// SHA-256 of the document, hex, shown to the holder.
    pub digest: String,
    /// Key to sign with.
    pub key: String,
    /// With number matching: the number the holder picks on the authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// When the request expires unless answered.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// One certificate of a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardCertificateView {
    /// `authentication` or `signing`.
    pub key: String,
    /// Serial number, hex.
    pub serial: String,
    /// The certificate, PEM.
    pub pem: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// `GET /api/v1/card/certificates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardCertificatesView {
    /// Card serial.
    pub card: String,
    /// `v1` or `v2`.
    #[serde(rename = "type")]
    pub card_type: String,
    /// The card's current certificates (authentication first).
    pub certificates: Vec<CardCertificateView>,
    /// The CA chain: issuing CA then root, PEM.
    pub chain: Vec<String>,
    /// Where relying parties check status.
    pub crl_url: String,
    /// The OCSP responder.
    pub ocsp_url: String,
}

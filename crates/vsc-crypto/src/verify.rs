//! Verification of CAdES / CMS SignedData signatures (RFC 5652) against this service's CA chain,
//! and certificate status from its CRL (RFC 5280 §5).

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
    VerificationAlgorithm,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use yasna::models::ObjectIdentifier;
use yasna::{ASN1Result, BERReader, Tag};

use crate::asn1::{self, oid};
use crate::{RevocationReason, sha256};

/// id-ecPublicKey (some CMS writers put it as the signature algorithm).
const ID_EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
/// rsaEncryption (openssl's signature algorithm for RSA in CMS).
const ID_RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
/// id-at-commonName.
const ID_COMMON_NAME: &[u64] = &[2, 5, 4, 3];
/// id-ce-cRLReasons.
const ID_CRL_REASON: &[u64] = &[2, 5, 29, 21];
/// id-ce-keyUsage.
const ID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
/// keyUsage bit 1, nonRepudiation (contentCommitment), in the first byte of the BIT STRING.
const KEY_USAGE_CONTENT_COMMITMENT: u8 = 0x40;

/// Why a signature or a CRL was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The input is not well-formed DER of the expected structure.
    #[error("{0}")]
    Malformed(String),
    /// A well-formed input uses something this verifier does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A detached signature was given without its content.
    #[error("the signature is detached: the signed content is needed to verify it")]
    MissingContent,
    /// The content's digest differs from the signed messageDigest.
    #[error("the content does not match the signature (message digest differs)")]
    ContentMismatch,
    /// A required signed attribute is absent.
    #[error("the signature has no {0} attribute")]
    MissingAttribute(&'static str),
    /// The content-type attribute differs from the encapsulated content type.
    #[error("the content-type attribute does not match the signed content's type")]
    ContentTypeMismatch,
    /// The signature value does not verify.
    #[error("the signature does not verify with the signer's certificate")]
    BadSignature,
    /// The signer's certificate is not among the certificates of the signature.
    #[error("the signer's certificate is not included in the signature")]
    SignerCertificateMissing,
    /// signing-certificate-v2 names another certificate.
    #[error("the signing-certificate-v2 attribute does not name the signer's certificate")]
    SigningCertificateMismatch,
    /// The signer's certificate is not meant for document signatures (an authentication key's
    /// certificate): it lacks the nonRepudiation/contentCommitment key usage.
    #[error(
        "the signer's certificate ({0}) is not a signing certificate: it has no nonRepudiation (contentCommitment) key usage"
    )]
    NotASigningCertificate(String),
    /// The signer's certificate does not chain to the trusted issuing CA.
    #[error("the signer's certificate is not issued by this service's CA")]
    NotIssuedByCa,
    /// The trusted chain itself does not verify (issuing CA not signed by the root).
    #[error("the CA chain does not verify: {0}")]
    UntrustedChain(String),
    /// A certificate's notAfter is before the check time.
    #[error("certificate expired: {subject} was valid until {not_after}")]
    CertificateExpired {
        /// The certificate's subject CN.
        subject: String,
        /// Its notAfter (RFC 3339).
        not_after: String,
    },
    /// A certificate's notBefore is after the check time.
    #[error("certificate not yet valid: {subject} is valid from {not_before}")]
    CertificateNotYetValid {
        /// The certificate's subject CN.
        subject: String,
        /// Its notBefore (RFC 3339).
        not_before: String,
    },
    /// The signing time is outside the signer certificate's validity.
    #[error("the signing time {0} is outside the signer's certificate validity")]
    SignedOutsideValidity(String),
    /// The CRL is not issued or not signed by the given CA.
    #[error("the CRL is not signed by this service's CA")]
    CrlNotFromCa,
    /// The CRL's nextUpdate has passed.
    #[error("the CRL is out of date (its next update was due {0})")]
    CrlOutdated(String),
}

/// A CMS signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The signer's certificate, DER.
    pub signer_cert_der: Vec<u8>,
    /// Its serial number, lower-case hex (as the server's certificate serials).
    pub serial_hex: String,
    /// Its subject common name (empty when it has none).
    pub subject_cn: String,
    /// The signed signing-time attribute, when present.
    pub signing_time: Option<OffsetDateTime>,
    /// The issuing CA certificate (from the trusted chain) the signer's certificate chains to, DER.
    pub issuer_cert_der: Vec<u8>,
    /// The signer certificate's notAfter.
    pub not_after: OffsetDateTime,
    /// Whether the content was inside the signature (attached).
    pub attached: bool,
}

/// A certificate's status in a CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlStatus {
    /// Not listed.
    Good,
    /// Listed as revoked.
    Revoked {
        /// Revocation date.
        at: OffsetDateTime,
        /// The CRL entry's reason code, if any (and one we know).
        reason: Option<RevocationReason>,
    },
}

/// The result of checking a CRL: the status and the CRL's update times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlReport {
    /// The certificate's status.
    pub status: CrlStatus,
    /// The CRL's thisUpdate.
    pub this_update: OffsetDateTime,
    /// The CRL's nextUpdate, if it has one.
    pub next_update: Option<OffsetDateTime>,
}

/// RFC 3339 text of a time (for messages).
fn show(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn malformed(what: &'static str) -> impl Fn(yasna::ASN1Error) -> VerifyError {
    move |e| VerifyError::Malformed(format!("{what} is not valid DER: {e}"))
}

/// An AlgorithmIdentifier: OID and parameters (DER), if any.
#[derive(Debug, Clone)]
struct Alg {
    id: ObjectIdentifier,
    params: Option<Vec<u8>>,
}

fn read_alg(r: BERReader<'_, '_>) -> ASN1Result<Alg> {
    r.read_sequence(|r| {
        let id = r.next().read_oid()?;
        let params = r.read_optional(|r| r.read_der())?;
        Ok(Alg { id, params })
    })
}

fn read_time(r: BERReader<'_, '_>) -> ASN1Result<OffsetDateTime> {
    let tag = r.lookahead_tag()?;
    if tag == yasna::tags::TAG_UTCTIME {
        Ok(*r.read_utctime()?.datetime())
    } else {
        Ok(*r.read_generalized_time()?.datetime())
    }
}

/// The next element, raw, if it has tag `tag` (`read_der` ignores implicit tags).
fn read_if_tagged(r: BERReader<'_, '_>, tag: Tag) -> ASN1Result<Vec<u8>> {
    if r.lookahead_tag()? == tag { r.read_der() } else { Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid)) }
}

/// The content octets of an INTEGER DER.
fn integer_content(der: &[u8]) -> Result<Vec<u8>, VerifyError> {
    yasna::parse_ber(der, |r| r.read_tagged_der()).map(|t| t.value().to_vec()).map_err(malformed("a serial number"))
}

/// A parsed X.509 certificate.
#[derive(Debug, Clone)]
struct Cert {
    der: Vec<u8>,
    tbs: Vec<u8>,
    serial_der: Vec<u8>,
    issuer: Vec<u8>,
    subject: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key_alg: ObjectIdentifier,
    public_key: Vec<u8>,
    sig_alg: Alg,
    signature: Vec<u8>,
    /// The keyUsage BIT STRING's bytes; `None` when the certificate has no keyUsage extension.
    key_usage: Option<Vec<u8>>,
}

impl Cert {
    fn parse(der: &[u8]) -> Result<Cert, VerifyError> {
        yasna::parse_ber(der, |r| {
            r.read_sequence(|r| {
                let (fields, tbs) = r.next().read_with_buffer(|r| {
                    r.read_sequence(|r| {
                        r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
                        let serial_der = r.next().read_der()?;
                        read_alg(r.next())?;
                        let issuer = r.next().read_der()?;
                        let (not_before, not_after) =
                            r.next().read_sequence(|r| Ok((read_time(r.next())?, read_time(r.next())?)))?;
                        let subject = r.next().read_der()?;
                        let (key_alg, public_key) = r.next().read_sequence(|r| {
                            let alg = read_alg(r.next())?;
                            Ok((alg.id, r.next().read_bitvec_bytes()?.0))
                        })?;
                        // issuerUniqueID [1], subjectUniqueID [2], extensions [3].
                        let mut extensions = None;
                        while let Some(der) = r.read_optional(|r| r.read_der())? {
                            if der.first() == Some(&0xa3) {
                                extensions = Some(der);
                            }
                        }
                        let key_usage = extensions.as_deref().map(key_usage).transpose()?.flatten();
                        Ok((serial_der, issuer, not_before, not_after, subject, key_alg, public_key, key_usage))
                    })
                })?;
                let sig_alg = read_alg(r.next())?;
                let (signature, _) = r.next().read_bitvec_bytes()?;
                let (serial_der, issuer, not_before, not_after, subject, key_alg, public_key, key_usage) = fields;
                Ok(Cert {
                    der: der.to_vec(),
                    tbs: tbs.to_vec(),
                    serial_der,
                    issuer,
                    subject,
                    not_before,
                    not_after,
                    key_alg,
                    public_key,
                    sig_alg,
                    signature,
                    key_usage,
                })
            })
        })
        .map_err(malformed("a certificate"))
    }

    fn common_name(&self) -> String {
        common_name(&self.subject).unwrap_or_default()
    }

    /// Whether the certificate is for document signatures: keyUsage names nonRepudiation
    /// (contentCommitment). A certificate without keyUsage is not taken for one.
    fn commits_to_content(&self) -> bool {
        self.key_usage.as_deref().and_then(<[u8]>::first).is_some_and(|b| b & KEY_USAGE_CONTENT_COMMITMENT != 0)
    }

    fn serial_hex(&self) -> Result<String, VerifyError> {
        Ok(asn1::serial_hex(&integer_content(&self.serial_der)?))
    }

    /// Verify `signature` over `message` with this certificate's key and `alg`.
    fn verifies(&self, alg: &Alg, digest_alg: Option<&ObjectIdentifier>, message: &[u8], signature: &[u8]) -> bool {
        let Ok(algorithm) = signature_algorithm(alg, digest_alg, &self.key_alg) else { return false };
        UnparsedPublicKey::new(algorithm, &self.public_key).verify(message, signature).is_ok()
    }

    /// Whether `issuer` issued this certificate: names match and its key verifies our signature.
    fn issued_by(&self, issuer: &Cert) -> bool {
        self.issuer == issuer.subject && issuer.verifies(&self.sig_alg, None, &self.tbs, &self.signature)
    }

    fn check_validity(&self, at: OffsetDateTime) -> Result<(), VerifyError> {
        if at < self.not_before {
            return Err(VerifyError::CertificateNotYetValid {
                subject: self.common_name(),
                not_before: show(self.not_before),
            });
        }
        if at > self.not_after {
            return Err(VerifyError::CertificateExpired {
                subject: self.common_name(),
                not_after: show(self.not_after),
            });
        }
        Ok(())
    }
}

/// The keyUsage BIT STRING bytes in a certificate's `[3] EXPLICIT Extensions`; `None` without it.
fn key_usage(extensions_der: &[u8]) -> ASN1Result<Option<Vec<u8>>> {
    let mut value = None;
    yasna::parse_der(extensions_der, |r| {
        r.read_tagged(Tag::context(3), |r| {
            r.read_sequence_of(|r| {
                r.read_sequence(|r| {
                    let id = r.next().read_oid()?;
                    r.read_optional(|r| r.read_bool())?;
                    let extn_value = r.next().read_bytes()?;
                    if id == oid(ID_KEY_USAGE) {
                        value = Some(extn_value);
                    }
                    Ok(())
                })
            })
        })
    })?;
    value.map(|v| yasna::parse_der(&v, |r| r.read_bitvec_bytes()).map(|(bits, _)| bits)).transpose()
}

/// The first commonName of a Name DER.
fn common_name(name_der: &[u8]) -> Option<String> {
    let cn = oid(ID_COMMON_NAME);
    yasna::parse_ber(name_der, |r| {
        let mut found = None;
        r.read_sequence_of(|r| {
            r.read_set_of(|r| {
                r.read_sequence(|r| {
                    let id = r.next().read_oid()?;
                    let value = r.next().read_tagged_der()?;
                    if id == cn && found.is_none() {
                        found = Some(String::from_utf8_lossy(value.value()).into_owned());
                    }
                    Ok(())
                })
            })
        })?;
        Ok(found)
    })
    .ok()
    .flatten()
}

/// The aws-lc algorithm for a signature algorithm identifier (with the CMS digest algorithm, for
/// the bare key-algorithm OIDs some writers use) and the signer's key algorithm.
fn signature_algorithm(
    alg: &Alg,
    digest_alg: Option<&ObjectIdentifier>,
    key_alg: &ObjectIdentifier,
) -> Result<&'static dyn VerificationAlgorithm, VerifyError> {
    let sha256_digest = digest_alg.is_none_or(|d| *d == oid(asn1::ID_SHA256));
    let is_ec_key = *key_alg == oid(ID_EC_PUBLIC_KEY);
    let is_rsa_key = *key_alg == oid(ID_RSA_ENCRYPTION) || *key_alg == oid(asn1::ID_RSASSA_PSS);
    let id = &alg.id;
    if *id == oid(asn1::ID_ECDSA_SHA256) || (*id == oid(ID_EC_PUBLIC_KEY) && sha256_digest) {
        if is_ec_key {
            return Ok(&ECDSA_P256_SHA256_ASN1);
        }
    } else if *id == oid(asn1::ID_RSA_SHA256) || (*id == oid(ID_RSA_ENCRYPTION) && sha256_digest) {
        if is_rsa_key {
            return Ok(&RSA_PKCS1_2048_8192_SHA256);
        }
    } else if *id == oid(asn1::ID_RSASSA_PSS) {
        if is_rsa_key && pss_uses_sha256(alg.params.as_deref()) {
            return Ok(&RSA_PSS_2048_8192_SHA256);
        }
        return Err(VerifyError::Unsupported("RSA-PSS other than SHA-256 with a 32-byte salt".into()));
    } else {
        return Err(VerifyError::Unsupported(format!("signature algorithm {id}")));
    }
    Err(VerifyError::Unsupported(format!("signature algorithm {id} with a key of type {key_alg}")))
}

/// RSASSA-PSS-params with hashAlgorithm SHA-256 and saltLength 32.
fn pss_uses_sha256(params: Option<&[u8]>) -> bool {
    let Some(params) = params else { return false };
    yasna::parse_ber(params, |r| {
        r.read_sequence(|r| {
            let hash = r.read_optional(|r| r.read_tagged(Tag::context(0), read_alg))?;
            r.read_optional(|r| r.read_tagged(Tag::context(1), |r| r.read_der()))?;
            let salt = r.read_optional(|r| r.read_tagged(Tag::context(2), |r| r.read_u32()))?;
            r.read_optional(|r| r.read_tagged(Tag::context(3), |r| r.read_der()))?;
            Ok(hash.is_some_and(|h| h.id == oid(asn1::ID_SHA256)) && salt.unwrap_or(20) == 32)
        })
    })
    .unwrap_or(false)
}

/// One SignerInfo.
struct SignerInfo {
    issuer: Vec<u8>,
    serial_der: Vec<u8>,
    digest_alg: ObjectIdentifier,
    /// The signed attributes as they are signed: the DER SET (tag 0x31).
    signed_attrs: Option<Vec<u8>>,
    sig_alg: Alg,
    signature: Vec<u8>,
}

/// The parts of a SignedData we use.
struct SignedData {
    content_type: ObjectIdentifier,
    content: Option<Vec<u8>>,
    certificates: Vec<Vec<u8>>,
    signers: Vec<SignerInfo>,
}

/// A SignerInfo as read: sid DER, digest algorithm, [0] signed attributes, signature algorithm, value.
type RawSignerInfo = (Vec<u8>, Alg, Option<Vec<u8>>, Alg, Vec<u8>);

fn read_signer_info(r: BERReader<'_, '_>) -> ASN1Result<RawSignerInfo> {
    r.read_sequence(|r| {
        r.next().read_u8()?; // version
        let sid = r.next().read_der()?;
        let digest_alg = read_alg(r.next())?;
        let signed_attrs = r.read_optional(|r| r.read_der())?;
        // The optional [0] matched anything: if it was not the attributes it was the algorithm.
        let (signed_attrs, sig_alg) = match signed_attrs {
            Some(a) if a.first() == Some(&0xa0) => (Some(a), read_alg(r.next())?),
            Some(a) => (None, yasna::parse_ber(&a, read_alg)?),
            None => return Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Eof)),
        };
        let signature = r.next().read_bytes()?;
        r.read_optional(|r| r.read_der())?; // unsignedAttrs
        Ok((sid, digest_alg, signed_attrs, sig_alg, signature))
    })
}

fn parse_signed_data(der: &[u8]) -> Result<SignedData, VerifyError> {
    let (content_type, raw) = yasna::parse_ber(der, |r| {
        r.read_sequence(|r| {
            let outer = r.next().read_oid()?;
            if outer != oid(asn1::ID_SIGNED_DATA) {
                return Ok((outer, None));
            }
            let inner = r.next().read_tagged(Tag::context(0), |r| {
                r.read_sequence(|r| {
                    r.next().read_u8()?; // version
                    r.next().read_set_of(|r| read_alg(r).map(|_| ()))?;
                    let (ct, content) = r.next().read_sequence(|r| {
                        let ct = r.next().read_oid()?;
                        let content = r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_bytes()))?;
                        Ok((ct, content))
                    })?;
                    let certificates = r
                        .read_optional(|r| {
                            r.read_tagged_implicit(Tag::context(0), |r| r.collect_set_of(|r| r.read_der()))
                        })?
                        .unwrap_or_default();
                    r.read_optional(|r| read_if_tagged(r, Tag::context(1)))?; // crls
                    let signers = r.next().collect_set_of(read_signer_info)?;
                    Ok((ct, content, certificates, signers))
                })
            })?;
            Ok((outer, Some(inner)))
        })
    })
    .map_err(malformed("the signature (CMS)"))?;
    let Some((content_type, content, certificates, raw_signers)) = raw else {
        return Err(VerifyError::Malformed(format!("the signature is a CMS {content_type}, not SignedData")));
    };
    let signers = raw_signers
        .into_iter()
        .map(|(sid, digest_alg, attrs, sig_alg, signature)| {
            if sid.first() != Some(&0x30) {
                return Err(VerifyError::Unsupported("a signer identified by subject key identifier".into()));
            }
            let (issuer, serial_der) =
                yasna::parse_ber(&sid, |r| r.read_sequence(|r| Ok((r.next().read_der()?, r.next().read_der()?))))
                    .map_err(malformed("the signer identifier"))?;
            let signed_attrs = attrs.map(|mut a| {
                // Signed as a DER SET OF, carried as [0] IMPLICIT.
                if let Some(tag) = a.first_mut() {
                    *tag = 0x31;
                }
                a
            });
            Ok(SignerInfo { issuer, serial_der, digest_alg: digest_alg.id, signed_attrs, sig_alg, signature })
        })
        .collect::<Result<Vec<_>, VerifyError>>()?;
    Ok(SignedData { content_type, content, certificates, signers })
}

/// Signed attributes: (type, values as DER).
/// An attribute: its type and its values, DER.
type Attribute = (ObjectIdentifier, Vec<Vec<u8>>);

fn parse_attributes(set_der: &[u8]) -> Result<Vec<Attribute>, VerifyError> {
    yasna::parse_ber(set_der, |r| {
        r.collect_set_of(|r| {
            r.read_sequence(|r| {
                let id = r.next().read_oid()?;
                let values = r.next().collect_set_of(|r| r.read_der())?;
                Ok((id, values))
            })
        })
    })
    .map_err(malformed("the signed attributes"))
}

/// The single value of attribute `id`, if present.
fn attribute<'a>(attrs: &'a [Attribute], id: &[u64]) -> Option<&'a [u8]> {
    let id = oid(id);
    attrs.iter().find(|(a, _)| *a == id).and_then(|(_, v)| v.first()).map(Vec::as_slice)
}

/// The certHash of the first ESSCertIDv2 of a SigningCertificateV2 (SHA-256 only).
fn signing_certificate_hash(value: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let (alg, hash) = yasna::parse_ber(value, |r| {
        r.read_sequence(|r| {
            let first = r.next().read_sequence(|r| {
                let first = r.next().read_sequence(|r| {
                    let alg = r.read_optional(read_alg)?;
                    let hash = r.next().read_bytes()?;
                    r.read_optional(|r| r.read_der())?; // issuerSerial
                    Ok((alg, hash))
                })?;
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(first)
            })?;
            r.read_optional(|r| r.read_der())?; // policies
            Ok(first)
        })
    })
    .map_err(malformed("the signing-certificate-v2 attribute"))?;
    if alg.is_some_and(|a| a.id != oid(asn1::ID_SHA256)) {
        return Err(VerifyError::Unsupported("signing-certificate-v2 with a hash other than SHA-256".into()));
    }
    Ok(hash)
}

/// Verify a CMS SignedData (DER, e.g. a `.p7s` file) made by the service's CAdES signer or any
/// standard CMS writer: content digest, signed attributes, the signature with the signer's
/// certificate, that certificate's chain to `trusted_chain_der` (issuing CA then root) at `now`,
/// and that it is a signing certificate (nonRepudiation/contentCommitment key usage).
/// `detached_content` is the signed content of a detached signature; given with an attached
/// signature it must equal the content inside.
pub fn verify_cms(
    p7s_der: &[u8],
    detached_content: Option<&[u8]>,
    trusted_chain_der: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<VerifiedSignature, VerifyError> {
    let sd = parse_signed_data(p7s_der)?;
    let attached = sd.content.is_some();
    if let (Some(inside), Some(given)) = (sd.content.as_deref(), detached_content)
        && inside != given
    {
        return Err(VerifyError::ContentMismatch);
    }
    let content = sd.content.as_deref().or(detached_content).ok_or(VerifyError::MissingContent)?;
    let signer = match sd.signers.as_slice() {
        [one] => one,
        [] => return Err(VerifyError::Malformed("the signature has no signer".into())),
        _ => return Err(VerifyError::Unsupported("a signature with several signers".into())),
    };
    if signer.digest_alg != oid(asn1::ID_SHA256) {
        return Err(VerifyError::Unsupported(format!("digest algorithm {}", signer.digest_alg)));
    }

    // The signer's certificate, by IssuerAndSerialNumber.
    let cert = sd
        .certificates
        .iter()
        .filter(|c| c.first() == Some(&0x30))
        .filter_map(|c| Cert::parse(c).ok())
        .find(|c| c.issuer == signer.issuer && c.serial_der == signer.serial_der)
        .ok_or(VerifyError::SignerCertificateMissing)?;

    // Signed attributes.
    let signed = signer.signed_attrs.as_deref().ok_or(VerifyError::MissingAttribute("signed"))?;
    let attrs = parse_attributes(signed)?;
    let content_type = attribute(&attrs, asn1::ID_CONTENT_TYPE).ok_or(VerifyError::MissingAttribute("content-type"))?;
    let content_type = yasna::parse_ber(content_type, |r| r.read_oid()).map_err(malformed("content-type"))?;
    if content_type != sd.content_type {
        return Err(VerifyError::ContentTypeMismatch);
    }
    let digest = attribute(&attrs, asn1::ID_MESSAGE_DIGEST).ok_or(VerifyError::MissingAttribute("message-digest"))?;
    let digest = yasna::parse_ber(digest, |r| r.read_bytes()).map_err(malformed("message-digest"))?;
    if digest != sha256(content) {
        return Err(VerifyError::ContentMismatch);
    }
    let signing_time = attribute(&attrs, asn1::ID_SIGNING_TIME)
        .map(|t| yasna::parse_ber(t, read_time).map_err(malformed("signing-time")))
        .transpose()?;
    if let Some(value) = attribute(&attrs, asn1::ID_SIGNING_CERTIFICATE_V2)
        && signing_certificate_hash(value)? != sha256(&cert.der)
    {
        return Err(VerifyError::SigningCertificateMismatch);
    }

    // The signature over the DER SET of signed attributes.
    signature_algorithm(&signer.sig_alg, Some(&signer.digest_alg), &cert.key_alg)?;
    if !cert.verifies(&signer.sig_alg, Some(&signer.digest_alg), signed, &signer.signature) {
        return Err(VerifyError::BadSignature);
    }

    // The chain: signer → issuing CA → root, all from the trusted list, all valid now.
    let trusted = trusted_chain_der.iter().map(|c| Cert::parse(c)).collect::<Result<Vec<_>, _>>()?;
    let issuer = trusted.iter().find(|ca| cert.issued_by(ca)).ok_or(VerifyError::NotIssuedByCa)?;
    check_ca_chain(issuer, &trusted, now)?;
    cert.check_validity(now)?;
    // A document signature binds its signer: only a certificate issued for that (a V2 card's
    // signing key), never an authentication key's.
    if !cert.commits_to_content() {
        return Err(VerifyError::NotASigningCertificate(cert.common_name()));
    }
    if let Some(t) = signing_time
        && (t < cert.not_before || t > cert.not_after)
    {
        return Err(VerifyError::SignedOutsideValidity(show(t)));
    }

    Ok(VerifiedSignature {
        serial_hex: cert.serial_hex()?,
        subject_cn: cert.common_name(),
        signing_time,
        issuer_cert_der: issuer.der.clone(),
        not_after: cert.not_after,
        signer_cert_der: cert.der,
        attached,
    })
}

/// From the issuing CA up to a self-signed root, every link among `trusted` and valid at `now`.
fn check_ca_chain(issuing: &Cert, trusted: &[Cert], now: OffsetDateTime) -> Result<(), VerifyError> {
    let mut current = issuing;
    for _ in 0..=trusted.len() {
        current.check_validity(now)?;
        if current.subject == current.issuer {
            if current.issued_by(current) {
                return Ok(());
            }
            return Err(VerifyError::UntrustedChain(format!(
                "the self-signature of {} does not verify",
                current.common_name()
            )));
        }
        current = trusted.iter().find(|ca| current.issued_by(ca)).ok_or_else(|| {
            VerifyError::UntrustedChain(format!("{} is not signed by a trusted root", current.common_name()))
        })?;
    }
    Err(VerifyError::UntrustedChain("the chain does not end in a self-signed root".into()))
}

/// One CRL entry: serial content octets, revocation date, reason code.
type CrlEntry = (Vec<u8>, OffsetDateTime, Option<i64>);

/// The parts of a CRL we use.
struct Crl {
    tbs: Vec<u8>,
    issuer: Vec<u8>,
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
    entries: Vec<CrlEntry>,
    sig_alg: Alg,
    signature: Vec<u8>,
}

fn read_reason(r: BERReader<'_, '_>) -> ASN1Result<Option<i64>> {
    let reason = oid(ID_CRL_REASON);
    let mut found = None;
    r.read_sequence_of(|r| {
        r.read_sequence(|r| {
            let id = r.next().read_oid()?;
            r.read_optional(|r| r.read_bool())?;
            let value = r.next().read_bytes()?;
            if id == reason {
                found = Some(yasna::parse_ber(&value, |r| r.read_enum())?);
            }
            Ok(())
        })
    })?;
    Ok(found)
}

fn parse_crl(der: &[u8]) -> Result<Crl, VerifyError> {
    yasna::parse_ber(der, |r| {
        r.read_sequence(|r| {
            let (fields, tbs) = r.next().read_with_buffer(|r| {
                r.read_sequence(|r| {
                    r.read_optional(|r| r.read_u8())?; // version
                    read_alg(r.next())?;
                    let issuer = r.next().read_der()?;
                    let this_update = read_time(r.next())?;
                    let next_update = r.read_optional(read_time)?;
                    let entries = r
                        .read_optional(|r| {
                            r.collect_sequence_of(|r| {
                                r.read_sequence(|r| {
                                    let serial = r.next().read_tagged_der()?.value().to_vec();
                                    let at = read_time(r.next())?;
                                    let reason = r.read_optional(read_reason)?.flatten();
                                    Ok((serial, at, reason))
                                })
                            })
                        })?
                        .unwrap_or_default();
                    r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
                    Ok((issuer, this_update, next_update, entries))
                })
            })?;
            let sig_alg = read_alg(r.next())?;
            let (signature, _) = r.next().read_bitvec_bytes()?;
            let (issuer, this_update, next_update, entries) = fields;
            Ok(Crl { tbs: tbs.to_vec(), issuer, this_update, next_update, entries, sig_alg, signature })
        })
    })
    .map_err(malformed("the CRL"))
}

fn reason_from_code(code: i64) -> Option<RevocationReason> {
    match code {
        0 => Some(RevocationReason::Unspecified),
        1 => Some(RevocationReason::KeyCompromise),
        3 => Some(RevocationReason::AffiliationChanged),
        4 => Some(RevocationReason::Superseded),
        5 => Some(RevocationReason::CessationOfOperation),
        _ => None,
    }
}

/// Check a CRL (DER) signed by `issuer_cert_der` and not past its nextUpdate at `now`, and look up
/// the certificate with serial `serial_hex` (lower- or upper-case hex) in it.
pub fn crl_check(
    crl_der: &[u8],
    issuer_cert_der: &[u8],
    serial_hex: &str,
    now: OffsetDateTime,
) -> Result<CrlReport, VerifyError> {
    let crl = parse_crl(crl_der)?;
    let issuer = Cert::parse(issuer_cert_der)?;
    if crl.issuer != issuer.subject || !issuer.verifies(&crl.sig_alg, None, &crl.tbs, &crl.signature) {
        return Err(VerifyError::CrlNotFromCa);
    }
    if let Some(next) = crl.next_update
        && now >= next
    {
        return Err(VerifyError::CrlOutdated(show(next)));
    }
    let wanted = serial_hex.trim().to_ascii_lowercase();
    let wanted = wanted.trim_start_matches('0');
    let status =
        crl.entries.iter().find(|(serial, _, _)| asn1::serial_hex(serial).trim_start_matches('0') == wanted).map_or(
            CrlStatus::Good,
            |(_, at, reason)| CrlStatus::Revoked { at: *at, reason: reason.and_then(reason_from_code) },
        );
    Ok(CrlReport { status, this_update: crl.this_update, next_update: crl.next_update })
}

/// The status of the certificate with serial `serial_hex` in a CRL checked as [`crl_check`] does.
pub fn crl_status(
    crl_der: &[u8],
    issuer_cert_der: &[u8],
    serial_hex: &str,
    now: OffsetDateTime,
) -> Result<CrlStatus, VerifyError> {
    crl_check(crl_der, issuer_cert_der, serial_hex, now).map(|r| r.status)
}

/// The subject common name of a certificate (DER); empty when it has none.
pub fn certificate_subject_cn(cert_der: &[u8]) -> Result<String, VerifyError> {
    Ok(Cert::parse(cert_der)?.common_name())
}

/// The DER certificates of a PEM bundle (e.g. `GET /api/v1/pki/ca.pem`), in order.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = rest.get(start + BEGIN.len()..).unwrap_or_default();
        let end = after.find(END).ok_or_else(|| VerifyError::Malformed("a PEM certificate has no END line".into()))?;
        let body: String = after.get(..end).unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| VerifyError::Malformed(format!("a PEM certificate is not base64: {e}")))?;
        out.push(der);
        rest = after.get(end + END.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(VerifyError::Malformed("no PEM certificate found".into()));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use time::Duration;
    use vsc_core::KeyPurpose;

    use super::*;
    use crate::crl::RevokedEntry;
    use crate::test_support::{ca, card, now, openssl, p256, write};
    use crate::{CadesContent, CadesRequest, GeneratedKey, IssuingCa, SignatureScheme, cades_bes, pem};

    const CONTENT: &[u8] = b"The quick brown fox signs the contract.\n";

    fn chain(ca: &IssuingCa) -> Vec<Vec<u8>> {
        vec![ca.issuing_cert_der().to_vec(), ca.root_cert_der().to_vec()]
    }

    fn sign(key: &GeneratedKey, cert: &[u8], chain: &[Vec<u8>], content: CadesContent<'_>, detached: bool) -> Vec<u8> {
        let req = CadesRequest {
            content,
            detached,
            signing_time: now(),
            signer_cert_der: cert,
            chain_der: chain,
            scheme: SignatureScheme::default_for(key.algorithm),
        };
        cades_bes(&key.signer().unwrap(), &req).unwrap()
    }

    #[test]
    fn our_cades_signatures_verify_and_a_changed_byte_does_not() {
        let ca = ca();
        let key = p256();
        let cert = card(&ca, &key, KeyPurpose::Signing);
        let trusted = chain(&ca);
        let t = now();

        let digest = sha256(CONTENT);
        for content in [CadesContent::Data(CONTENT), CadesContent::Digest(&digest)] {
            let p7s = sign(&key, &cert.der, &trusted, content, true);
            let v = verify_cms(&p7s, Some(CONTENT), &trusted, t).unwrap();
            assert_eq!(v.serial_hex, cert.serial_hex);
            assert_eq!(v.subject_cn, "Ada Lovelace");
            assert_eq!(v.signer_cert_der, cert.der);
            assert_eq!(v.issuer_cert_der, ca.issuing_cert_der());
            assert!(v.signing_time.is_some() && !v.attached);

            let mut bad = CONTENT.to_vec();
            bad[3] ^= 1;
            assert_eq!(verify_cms(&p7s, Some(&bad), &trusted, t), Err(VerifyError::ContentMismatch));
            assert_eq!(verify_cms(&p7s, None, &trusted, t), Err(VerifyError::MissingContent));
            // Expired by the time of checking.
            let late = verify_cms(&p7s, Some(CONTENT), &trusted, t + Duration::days(400)).unwrap_err();
            assert!(matches!(late, VerifyError::CertificateExpired { .. }), "{late}");
            assert!(late.to_string().starts_with("certificate expired"), "{late}");
        }

        // Attached: the content comes from the signature (any detached content is ignored).
        let p7s = sign(&key, &cert.der, &[], CadesContent::Data(CONTENT), false);
        let v = verify_cms(&p7s, None, &trusted, t).unwrap();
        assert!(v.attached);
        assert!(verify_cms(&p7s, Some(CONTENT), &trusted, t).is_ok());
        assert_eq!(verify_cms(&p7s, Some(b"other"), &trusted, t), Err(VerifyError::ContentMismatch));
        assert_eq!(v.serial_hex, cert.serial_hex);

        // A tampered signature value.
        let mut p7s = sign(&key, &cert.der, &trusted, CadesContent::Data(CONTENT), true);
        let n = p7s.len();
        p7s[n - 3] ^= 0x01;
        let e = verify_cms(&p7s, Some(CONTENT), &trusted, t).unwrap_err();
        assert!(matches!(e, VerifyError::BadSignature | VerifyError::Malformed(_)), "{e}");
        assert!(verify_cms(b"junk", Some(CONTENT), &trusted, t).is_err());
    }

    #[test]
    fn an_authentication_certificate_makes_no_document_signature() {
        let ca = ca();
        let key = p256();
        let trusted = chain(&ca);
        let auth = card(&ca, &key, KeyPurpose::Authentication);
        for detached in [true, false] {
            let p7s = sign(&key, &auth.der, &trusted, CadesContent::Data(CONTENT), detached);
            let e = verify_cms(&p7s, Some(CONTENT), &trusted, now()).unwrap_err();
            assert_eq!(e, VerifyError::NotASigningCertificate("Ada Lovelace".into()));
            assert!(e.to_string().contains("not a signing certificate"), "{e}");
        }
        // The same key under a signing certificate verifies.
        let signing = card(&ca, &key, KeyPurpose::Signing);
        let p7s = sign(&key, &signing.der, &trusted, CadesContent::Data(CONTENT), true);
        assert_eq!(verify_cms(&p7s, Some(CONTENT), &trusted, now()).unwrap().serial_hex, signing.serial_hex);
    }

    #[test]
    fn key_usage_bits_are_read_from_the_extensions() {
        let ca = ca();
        let key = p256();
        let auth = Cert::parse(&card(&ca, &key, KeyPurpose::Authentication).der).unwrap();
        let signing = Cert::parse(&card(&ca, &key, KeyPurpose::Signing).der).unwrap();
        // digitalSignature only, and digitalSignature + contentCommitment.
        assert_eq!(auth.key_usage.as_deref().and_then(|b| b.first()).map(|b| b & 0xc0), Some(0x80));
        assert_eq!(signing.key_usage.as_deref().and_then(|b| b.first()).map(|b| b & 0xc0), Some(0xc0));
        assert!(!auth.commits_to_content() && signing.commits_to_content());
        // The CA certificates carry keyUsage too (keyCertSign), but no contentCommitment.
        let issuing = Cert::parse(ca.issuing_cert_der()).unwrap();
        assert!(issuing.key_usage.is_some() && !issuing.commits_to_content());
    }

    #[test]
    fn rsa_pkcs1_and_pss_signatures_verify() {
        let ca = ca();
        let key = crate::card_signer::tests::rsa_key();
        let cert = card(&ca, &key, KeyPurpose::Signing);
        let trusted = chain(&ca);
        for scheme in [SignatureScheme::RsaPkcs1Sha256, SignatureScheme::RsaPssSha256] {
            let req = CadesRequest {
                content: CadesContent::Data(CONTENT),
                detached: true,
                signing_time: now(),
                signer_cert_der: &cert.der,
                chain_der: &trusted,
                scheme,
            };
            let p7s = cades_bes(&key.signer().unwrap(), &req).unwrap();
            let v = verify_cms(&p7s, Some(CONTENT), &trusted, now()).unwrap();
            assert_eq!(v.serial_hex, cert.serial_hex, "{scheme}");
        }
    }

    #[test]
    fn a_certificate_of_another_ca_is_refused() {
        let ours = ca();
        let theirs = ca();
        let key = p256();
        let cert = card(&theirs, &key, KeyPurpose::Signing);
        let p7s = sign(&key, &cert.der, &chain(&theirs), CadesContent::Data(CONTENT), true);
        let e = verify_cms(&p7s, Some(CONTENT), &chain(&ours), now()).unwrap_err();
        assert_eq!(e, VerifyError::NotIssuedByCa);
        assert_eq!(e.to_string(), "the signer's certificate is not issued by this service's CA");
        // Their issuing CA under our root does not verify either.
        let mixed = vec![theirs.issuing_cert_der().to_vec(), ours.root_cert_der().to_vec()];
        let e = verify_cms(&p7s, Some(CONTENT), &mixed, now()).unwrap_err();
        assert!(matches!(e, VerifyError::UntrustedChain(_)), "{e}");
    }

    #[test]
    fn crl_status_finds_revoked_certificates_and_refuses_other_cas() {
        let ca = ca();
        let cert = card(&ca, &p256(), KeyPurpose::Signing);
        let t = now();
        let issuing = ca.issuing_cert_der();

        let empty = ca.crl(&[], 1, t, t + Duration::days(1)).unwrap();
        assert_eq!(crl_status(&empty, issuing, &cert.serial_hex, t), Ok(CrlStatus::Good));
        let report = crl_check(&empty, issuing, &cert.serial_hex, t).unwrap();
        assert_eq!(report.next_update.map(|n| n.unix_timestamp()), Some((t + Duration::days(1)).unix_timestamp()));

        let revoked_at = t - Duration::minutes(1);
        for reason in [RevocationReason::KeyCompromise, RevocationReason::Unspecified] {
            let entry = RevokedEntry { serial_hex: cert.serial_hex.clone(), revoked_at, reason };
            let crl = ca.crl(&[entry], 2, t, t + Duration::days(1)).unwrap();
            let status = crl_status(&crl, issuing, &cert.serial_hex.to_uppercase(), t).unwrap();
            let want = (reason != RevocationReason::Unspecified).then_some(reason);
            assert_eq!(status, CrlStatus::Revoked { at: revoked_at.replace_nanosecond(0).unwrap(), reason: want });
            // Another serial is good.
            assert_eq!(crl_status(&crl, issuing, "4abc", t), Ok(CrlStatus::Good));
        }

        // Out of date, and from another CA.
        assert!(matches!(
            crl_status(&empty, issuing, &cert.serial_hex, t + Duration::days(2)),
            Err(VerifyError::CrlOutdated(_))
        ));
        let other = crate::test_support::ca();
        let theirs = other.crl(&[], 1, t, t + Duration::days(1)).unwrap();
        assert_eq!(crl_status(&theirs, issuing, &cert.serial_hex, t), Err(VerifyError::CrlNotFromCa));
        assert!(crl_status(b"junk", issuing, &cert.serial_hex, t).is_err());
    }

    #[test]
    fn openssl_cms_signatures_verify() {
        let ca = ca();
        let key = p256();
        let cert = card(&ca, &key, KeyPurpose::Signing);
        let trusted = chain(&ca);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "cert.pem", pem::certificate(&cert.der));
        write(d, "key.pem", pem::encode("PRIVATE KEY", key.pkcs8_der()));
        write(d, "content.txt", CONTENT);
        // Detached is openssl's default; -nodetach puts the content inside.
        for (mode, out) in [("-nosmimecap", "detached.p7s"), ("-nodetach", "attached.p7s")] {
            let args = [
                "cms",
                "-sign",
                "-binary",
                "-md",
                "sha256",
                "-signer",
                "cert.pem",
                "-inkey",
                "key.pem",
                "-in",
                "content.txt",
                "-outform",
                "DER",
                "-out",
                out,
                mode,
            ];
            let (ok, stdout, stderr) = openssl(d, &args);
            assert!(ok, "{stdout}{stderr}");
        }
        let detached = std::fs::read(d.join("detached.p7s")).unwrap();
        let v = verify_cms(&detached, Some(CONTENT), &trusted, now()).unwrap();
        assert_eq!(v.serial_hex, cert.serial_hex);
        assert!(v.signing_time.is_some());
        let mut bad = CONTENT.to_vec();
        bad[0] ^= 1;
        assert_eq!(verify_cms(&detached, Some(&bad), &trusted, now()), Err(VerifyError::ContentMismatch));

        let attached = std::fs::read(d.join("attached.p7s")).unwrap();
        let v = verify_cms(&attached, None, &trusted, now()).unwrap();
        assert!(v.attached);
        assert_eq!(v.subject_cn, "Ada Lovelace");
    }

    #[test]
    fn pem_bundles_split() {
        let ca = ca();
        let certs = pem_certificates(&ca.chain_pem()).unwrap();
        assert_eq!(certs, chain(&ca));
        assert_eq!(certificate_subject_cn(&certs[0]).unwrap(), "Test Org Issuing CA 1");
        assert!(pem_certificates("nothing").is_err());
    }
}

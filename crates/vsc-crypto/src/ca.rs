//! The internal certificate authority: a self-signed root and an issuing CA beneath it, which signs
//! card certificates.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use vsc_core::KeyPurpose;

use crate::{CryptoError, GeneratedKey, pem};

/// Root validity.
const ROOT_YEARS: i64 = 20;
/// Issuing CA validity (must outlive every card it signs).
const ISSUING_YEARS: i64 = 10;

/// A newly created CA pair, to be sealed and stored once.
pub struct CaBundle {
    /// Root certificate DER.
    pub root_cert_der: Vec<u8>,
    /// Root key.
    pub root_key: GeneratedKey,
    /// Issuing CA certificate DER.
    pub issuing_cert_der: Vec<u8>,
    /// Issuing CA key.
    pub issuing_key: GeneratedKey,
}

/// Who a card certificate is for.
#[derive(Debug, Clone)]
pub struct CardSubject {
    /// Holder's forename.
    pub forename: String,
    /// Holder's surname.
    pub surname: String,
    /// Holder's subject CN.
    pub subject_cn: String,
    /// Holder's email (rfc822Name SAN).
    pub email: String,
    /// Organisation name (O).
    pub organisation: String,
    /// Card serial (serialNumber attribute).
    pub card_serial: String,
}

/// A signed certificate and its serial number (hex).
pub struct IssuedCertificate {
    /// Certificate DER.
    pub der: Vec<u8>,
    /// Certificate serial number, lower-case hex.
    pub serial_hex: String,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
}

/// The issuing CA, loaded and ready to sign.
pub struct IssuingCa {
    issuer: Issuer<'static, rcgen::KeyPair>,
    issuing_cert_der: Vec<u8>,
    root_cert_der: Vec<u8>,
}

fn name(cn: String, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    dn
}

fn random_serial() -> SerialNumber {
    let mut b = crate::random::bytes::<16>();
    // A positive, full-length INTEGER.
    b[0] = (b[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&b)
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn ca_params(cn: String, org: &str, path_len: Option<u8>, now: OffsetDateTime, years: i64) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn, org);
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = whole_seconds(now - Duration::minutes(5));
    p.not_after = whole_seconds(now + Duration::days(365 * years));
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = true;
    p
}

fn root_cn(org: &str) -> String {
    format!("{org} Root CA")
}

fn issuing_cn(org: &str) -> String {
    format!("{org} Issuing CA 1")
}

impl CaBundle {
    /// Create a root and an issuing CA named after `org` (the operator's organisation name).
    pub fn create(org: &str, now: OffsetDateTime) -> Result<Self, CryptoError> {
        let root_key = GeneratedKey::generate(vsc_core::KeyAlgorithm::P256)?;
        let mut root_params = ca_params(root_cn(org), org, None, now, ROOT_YEARS);
        root_params.use_authority_key_identifier_extension = false;
        let root_cert = root_params.self_signed(root_key.pair())?;

        let issuing_key = GeneratedKey::generate(vsc_core::KeyAlgorithm::P256)?;
        let issuing_params = ca_params(issuing_cn(org), org, Some(0), now, ISSUING_YEARS);
        let root_issuer = Issuer::from_params(&root_params, root_key.pair());
        let issuing_cert = issuing_params.signed_by(issuing_key.pair(), &root_issuer)?;

        Ok(CaBundle {
            root_cert_der: root_cert.der().to_vec(),
            root_key,
            issuing_cert_der: issuing_cert.der().to_vec(),
            issuing_key,
        })
    }
}

impl IssuingCa {
    /// Load the issuing CA from its stored certificate and (unsealed) key. `org` must be the name
    /// the bundle was created with: the issuer name of every card certificate is rebuilt from it.
    pub fn new(org: &str, issuing_cert_der: Vec<u8>, issuing_key: GeneratedKey, root_cert_der: Vec<u8>) -> Self {
        let params = ca_params(issuing_cn(org), org, Some(0), OffsetDateTime::UNIX_EPOCH, 1);
        let GeneratedKey { pair, .. } = issuing_key;
        IssuingCa { issuer: Issuer::new(params, pair), issuing_cert_der, root_cert_der }
    }

    /// The issuing CA certificate DER.
    pub fn issuing_cert_der(&self) -> &[u8] {
        &self.issuing_cert_der
    }

    /// The root certificate DER.
    pub fn root_cert_der(&self) -> &[u8] {
        &self.root_cert_der
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, rcgen::KeyPair> {
        &self.issuer
    }

    /// The chain to trust, issuing CA then root, in PEM (what `GET /api/v1/pki/ca.pem` serves).
    pub fn chain_pem(&self) -> String {
        format!("{}{}", pem::certificate(&self.issuing_cert_der), pem::certificate(&self.root_cert_der))
    }

    /// Sign a card certificate for `key` with the profile of `purpose`.
    pub fn issue(
        &self,
        subject: &CardSubject,
        key: &GeneratedKey,
        purpose: KeyPurpose,
        now: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCertificate, CryptoError> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, subject.organisation.as_str());
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 42]), subject.forename.as_str());
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 4]), subject.surname.as_str());
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), subject.card_serial.as_str());
        dn.push(DnType::CommonName, subject.subject_cn.as_str());
        p.distinguished_name = dn;
        p.subject_alt_names = vec![SanType::Rfc822Name(
            subject.email.clone().try_into().map_err(|_| CryptoError::Certificate("email is not IA5".into()))?,
        )];
        match purpose {
            KeyPurpose::Authentication => {
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
            KeyPurpose::Signing => {
                p.key_usages = vec![KeyUsagePurpose::ContentCommitment, KeyUsagePurpose::DigitalSignature];
            }
        }
        let serial = random_serial();
        let serial_hex = hex::encode(serial.to_bytes());
        p.serial_number = Some(serial);
        p.not_before = whole_seconds(now - Duration::minutes(5));
        p.not_after = whole_seconds(not_after);
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(key.pair(), &self.issuer)?;
        Ok(IssuedCertificate { der: cert.der().to_vec(), serial_hex, not_before: p.not_before, not_after: p.not_after })
    }
}

//! Small DER helpers shared by the CMS, CRL and OCSP code (built on `yasna`).

use time::OffsetDateTime;
use yasna::models::{GeneralizedTime, ObjectIdentifier, UTCTime};
use yasna::{ASN1Error, DERWriter};

use crate::CryptoError;

/// id-data.
pub(crate) const ID_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];
/// id-signedData.
pub(crate) const ID_SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
/// id-contentType.
pub(crate) const ID_CONTENT_TYPE: &[u64] = &[1, 2, 840, 113549, 1, 9, 3];
/// id-messageDigest.
pub(crate) const ID_MESSAGE_DIGEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 4];
/// id-signingTime.
pub(crate) const ID_SIGNING_TIME: &[u64] = &[1, 2, 840, 113549, 1, 9, 5];
/// id-aa-signingCertificateV2.
pub(crate) const ID_SIGNING_CERTIFICATE_V2: &[u64] = &[1, 2, 840, 113549, 1, 9, 16, 2, 47];
/// id-sha256.
pub(crate) const ID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
/// id-sha1.
pub(crate) const ID_SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
/// ecdsa-with-SHA256.
pub(crate) const ID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
/// sha256WithRSAEncryption.
pub(crate) const ID_RSA_SHA256: &[u64] = &[1, 2, 840, 113549, 1, 1, 11];
/// id-RSASSA-PSS.
pub(crate) const ID_RSASSA_PSS: &[u64] = &[1, 2, 840, 113549, 1, 1, 10];
/// id-mgf1.
pub(crate) const ID_MGF1: &[u64] = &[1, 2, 840, 113549, 1, 1, 8];
/// id-pkix-ocsp-basic.
pub(crate) const ID_OCSP_BASIC: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 1];
/// id-pkix-ocsp-nonce.
pub(crate) const ID_OCSP_NONCE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2];

/// An OID from its arcs.
pub(crate) fn oid(arcs: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(arcs)
}

/// Map a yasna parse error.
pub(crate) fn malformed(what: &str) -> impl Fn(ASN1Error) -> CryptoError + '_ {
    move |e| CryptoError::Malformed(format!("{what} is not valid DER: {e}"))
}

/// The parts of a certificate we need.
pub(crate) struct CertInfo {
    /// Serial number, the whole INTEGER DER.
    pub serial_der: Vec<u8>,
    /// Issuer Name DER.
    pub issuer: Vec<u8>,
    /// Subject Name DER.
    pub subject: Vec<u8>,
    /// subjectPublicKey BIT STRING contents (without the unused-bits octet).
    pub public_key: Vec<u8>,
}

/// Parse the fields of a certificate's TBSCertificate we use.
pub(crate) fn parse_cert(der: &[u8]) -> Result<CertInfo, CryptoError> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let info = r.next().read_sequence(|r| {
                r.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_der()))?;
                let serial_der = r.next().read_der()?;
                r.next().read_der()?; // signature
                let issuer = r.next().read_der()?;
                r.next().read_der()?; // validity
                let subject = r.next().read_der()?;
                let (public_key, _) = r.next().read_sequence(|r| {
                    r.next().read_der()?;
                    r.next().read_bitvec_bytes()
                })?;
                while r.read_optional(|r| r.read_der())?.is_some() {}
                Ok(CertInfo { serial_der, issuer, subject, public_key })
            })?;
            r.next().read_der()?;
            r.next().read_der()?;
            Ok(info)
        })
    })
    .map_err(malformed("certificate"))
}

/// Write a time as RFC 5280 wants: UTCTime through 2049, GeneralizedTime from 2050.
pub(crate) fn write_time(w: DERWriter<'_>, t: OffsetDateTime) {
    let t = whole_utc(t);
    if (1950..2050).contains(&t.year()) {
        w.write_utctime(&UTCTime::from_datetime(t));
    } else {
        w.write_generalized_time(&GeneralizedTime::from_datetime(t));
    }
}

/// Write a GeneralizedTime (whole seconds, UTC).
pub(crate) fn write_generalized_time(w: DERWriter<'_>, t: OffsetDateTime) {
    w.write_generalized_time(&GeneralizedTime::from_datetime(whole_utc(t)));
}

fn whole_utc(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Write an AlgorithmIdentifier with absent parameters (or NULL parameters when `null`).
pub(crate) fn write_alg(w: DERWriter<'_>, arcs: &[u64], null: bool) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(arcs));
        if null {
            w.next().write_null();
        }
    });
}

/// SHA-1 (only for OCSP CertIDs and key hashes, where RFC 6960 mandates it).
pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()
}

/// Lower-case hex of an INTEGER's content octets, without a leading zero octet.
pub(crate) fn serial_hex(content: &[u8]) -> String {
    let mut s = content;
    while let [0, rest @ ..] = s {
        if rest.is_empty() {
            break;
        }
        s = rest;
    }
    hex::encode(s)
}

/// Write the AlgorithmIdentifier of a signature scheme (RSA-PSS with SHA-256, MGF1-SHA-256, salt 32).
pub(crate) fn write_sig_alg(w: DERWriter<'_>, scheme: crate::SignatureScheme) {
    use crate::SignatureScheme as S;
    match scheme {
        S::EcdsaP256Sha256 => write_alg(w, ID_ECDSA_SHA256, false),
        S::RsaPkcs1Sha256 => write_alg(w, ID_RSA_SHA256, true),
        S::RsaPssSha256 => w.write_sequence(|w| {
            w.next().write_oid(&oid(ID_RSASSA_PSS));
            w.next().write_sequence(|w| {
                w.next().write_tagged(yasna::Tag::context(0), |w| write_alg(w, ID_SHA256, true));
                w.next().write_tagged(yasna::Tag::context(1), |w| {
                    w.write_sequence(|w| {
                        w.next().write_oid(&oid(ID_MGF1));
                        write_alg(w.next(), ID_SHA256, true);
                    })
                });
                w.next().write_tagged(yasna::Tag::context(2), |w| w.write_u32(32));
            });
        }),
    }
}

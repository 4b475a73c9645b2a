//! Certificate revocation lists (RFC 5280 §5) signed by the issuing CA.

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use time::OffsetDateTime;

use crate::{CryptoError, IssuingCa};

/// RFC 5280 reason codes we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// unspecified (0).
    Unspecified,
    /// keyCompromise (1).
    KeyCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4).
    Superseded,
    /// cessationOfOperation (5).
    CessationOfOperation,
    /// certificateHold (6): suspended, may be released.
    CertificateHold,
    /// removeFromCRL (8): a held certificate released (listed for one CRL lifetime after).
    RemoveFromCrl,
}

impl RevocationReason {
    /// Parse a snake_case or camelCase name ("key_compromise" / "keyCompromise", ...).
    pub fn parse(s: &str) -> Option<Self> {
        let norm: String = s.trim().chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase();
        match norm.as_str() {
            "unspecified" => Some(RevocationReason::Unspecified),
            "keycompromise" => Some(RevocationReason::KeyCompromise),
            "affiliationchanged" => Some(RevocationReason::AffiliationChanged),
            "superseded" => Some(RevocationReason::Superseded),
            "cessationofoperation" => Some(RevocationReason::CessationOfOperation),
            "certificatehold" => Some(RevocationReason::CertificateHold),
            "removefromcrl" => Some(RevocationReason::RemoveFromCrl),
            _ => None,
        }
    }

    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::AffiliationChanged => "affiliation_changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
            RevocationReason::CertificateHold => "certificate_hold",
            RevocationReason::RemoveFromCrl => "remove_from_crl",
        }
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::RemoveFromCrl => 8,
        }
    }

    fn rcgen(self) -> rcgen::RevocationReason {
        match self {
            RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            RevocationReason::CertificateHold => rcgen::RevocationReason::CertificateHold,
            RevocationReason::RemoveFromCrl => rcgen::RevocationReason::RemoveFromCrl,
        }
    }
}

/// One revoked certificate for a CRL / OCSP answer.
#[derive(Debug, Clone)]
pub struct RevokedEntry {
    /// Serial number, lower-case hex (as `IssuedCertificate::serial_hex`).
    pub serial_hex: String,
    /// When the revocation was processed.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

impl IssuingCa {
    /// A CRL (DER) signed by the issuing CA, with CRL number `number`, thisUpdate `now`, nextUpdate
    /// `next_update` (which must be later than `now`).
    pub fn crl(
        &self,
        revoked: &[RevokedEntry],
        number: u64,
        now: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, CryptoError> {
        let revoked_certs = revoked
            .iter()
            .map(|e| {
                let serial = hex::decode(&e.serial_hex)
                    .map_err(|_| CryptoError::Malformed(format!("serial {:?} is not hex", e.serial_hex)))?;
                if serial.is_empty() {
                    return Err(CryptoError::Malformed("empty serial".into()));
                }
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial),
                    revocation_time: whole_seconds(e.revoked_at),
                    // RFC 5280 §5.3.1: leave the reason out rather than say "unspecified".
                    reason_code: (e.reason != RevocationReason::Unspecified).then(|| e.reason.rcgen()),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, CryptoError>>()?;
        let params = CertificateRevocationListParams {
            this_update: whole_seconds(now),
            next_update: whole_seconds(next_update),
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(self.issuer())?.der().to_vec())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use time::Duration;
    use vsc_core::KeyPurpose;

    use super::*;
    use crate::test_support::{ca, card, openssl, p256, write};

    #[test]
    fn reasons_parse() {
        for r in [
            RevocationReason::Unspecified,
            RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged,
            RevocationReason::Superseded,
            RevocationReason::CessationOfOperation,
            RevocationReason::CertificateHold,
            RevocationReason::RemoveFromCrl,
        ] {
            assert_eq!(RevocationReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(RevocationReason::parse("certificateHold").map(RevocationReason::code), Some(6));
        assert_eq!(RevocationReason::parse("removeFromCRL").map(RevocationReason::code), Some(8));
        assert_eq!(RevocationReason::parse("keyCompromise"), Some(RevocationReason::KeyCompromise));
        assert_eq!(RevocationReason::parse("cessationOfOperation"), Some(RevocationReason::CessationOfOperation));
        assert_eq!(RevocationReason::parse("caCompromise"), None);
    }

    #[test]
    fn openssl_sees_the_revoked_certificate() {
        let ca = ca();
        let good = card(&ca, &p256(), KeyPurpose::Signing);
        let bad = card(&ca, &p256(), KeyPurpose::Authentication);
        let now = crate::test_support::now();
        let revoked = [RevokedEntry {
            serial_hex: bad.serial_hex.clone(),
            revoked_at: now - Duration::minutes(1),
            reason: RevocationReason::KeyCompromise,
        }];
        let crl = ca.crl(&revoked, 7, now, now + Duration::days(1)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "ca.pem", ca.chain_pem());
        write(d, "crl.der", &crl);
        write(d, "good.pem", crate::pem::certificate(&good.der));
        write(d, "bad.pem", crate::pem::certificate(&bad.der));
        let (ok, _, err) = openssl(d, &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"]);
        assert!(ok, "{err}");
        let (ok, out, err) = openssl(d, &["crl", "-in", "crl.pem", "-noout", "-text"]);
        assert!(
            ok && out.contains("Key Compromise") && out.contains("X509v3 CRL Number: \n                7"),
            "{out}{err}"
        );

        let (ok, out, err) =
            openssl(d, &["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", "good.pem"]);
        assert!(ok && out.contains("good.pem: OK"), "{out}{err}");
        let (ok, out, err) =
            openssl(d, &["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", "bad.pem"]);
        assert!(!ok && format!("{out}{err}").contains("certificate revoked"), "{out}{err}");

        assert!(ca.crl(&[], 1, now, now).is_err());
        let junk = [RevokedEntry { serial_hex: "zz".into(), revoked_at: now, reason: RevocationReason::Superseded }];
        assert!(matches!(ca.crl(&junk, 1, now, now + Duration::days(1)), Err(CryptoError::Malformed(_))));
    }

    #[test]
    fn openssl_sees_a_hold_and_a_removal_from_the_crl() {
        let ca = ca();
        let held = card(&ca, &p256(), KeyPurpose::Authentication);
        let released = card(&ca, &p256(), KeyPurpose::Signing);
        let now = crate::test_support::now();
        let entries = [
            RevokedEntry {
                serial_hex: held.serial_hex.clone(),
                revoked_at: now - Duration::minutes(2),
                reason: RevocationReason::CertificateHold,
            },
            RevokedEntry {
                serial_hex: released.serial_hex.clone(),
                revoked_at: now - Duration::minutes(1),
                reason: RevocationReason::RemoveFromCrl,
            },
        ];
        let crl = ca.crl(&entries, 9, now, now + Duration::days(1)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "ca.pem", ca.chain_pem());
        write(d, "crl.der", &crl);
        write(d, "held.pem", crate::pem::certificate(&held.der));
        write(d, "released.pem", crate::pem::certificate(&released.der));
        let (ok, _, err) = openssl(d, &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"]);
        assert!(ok, "{err}");
        let (ok, out, err) = openssl(d, &["crl", "-in", "crl.pem", "-noout", "-text"]);
        assert!(ok && out.contains("Certificate Hold") && out.contains("Remove From CRL"), "{out}{err}");
        let (ok, out, err) =
            openssl(d, &["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", "held.pem"]);
        assert!(!ok && format!("{out}{err}").contains("certificate revoked"), "{out}{err}");
        // OpenSSL treats a removeFromCRL entry as not revoked.
        let (ok, out, err) =
            openssl(d, &["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", "released.pem"]);
        assert!(ok && out.contains("released.pem: OK"), "{out}{err}");
    }
}

//! The OCSP responder side (RFC 6960): parse requests and build responses signed directly by the
//! issuing CA.

use rcgen::{PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, SigningKey};
use time::OffsetDateTime;
use yasna::{BERReaderSeq, Tag};

use crate::asn1::{self, oid};
use crate::{CryptoError, IssuingCa, RevocationReason, SignatureScheme, sha256};

/// One certificate asked about.
#[derive(Debug, Clone)]
pub struct OcspQuery {
    /// Serial, lower-case hex, same format as `IssuedCertificate::serial_hex`.
    pub serial_hex: String,
    /// Whether issuerNameHash/issuerKeyHash match our issuing CA (SHA-1 or SHA-256 CertID).
    pub ours: bool,
    cert_id_der: Vec<u8>,
}

/// A parsed OCSP request.
#[derive(Debug, Clone)]
pub struct OcspRequest {
    /// The certificates asked about, in request order.
    pub queries: Vec<OcspQuery>,
    nonce: Option<Vec<u8>>,
}

impl OcspRequest {
    /// Whether the request carried a nonce (echoed in the response).
    pub fn has_nonce(&self) -> bool {
        self.nonce.is_some()
    }
}

/// What the service knows about one serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by us and not revoked.
    Good,
    /// Revoked.
    Revoked {
        /// When.
        at: OffsetDateTime,
        /// Why.
        reason: RevocationReason,
    },
    /// Not known to us.
    Unknown,
}

/// OCSPResponseStatus malformedRequest.
pub const OCSP_MALFORMED_REQUEST: u8 = 1;
/// OCSPResponseStatus internalError.
pub const OCSP_INTERNAL_ERROR: u8 = 2;
/// OCSPResponseStatus tryLater.
pub const OCSP_TRY_LATER: u8 = 3;
/// OCSPResponseStatus unauthorized.
pub const OCSP_UNAUTHORIZED: u8 = 6;

/// An unsuccessful OCSPResponse with only a status: malformedRequest (1), internalError (2),
/// tryLater (3), sigRequired (5), unauthorized (6).
pub fn ocsp_error(status: u8) -> Vec<u8> {
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_enum(i64::from(status))))
}

struct CaHashes {
    sha1_name: Vec<u8>,
    sha1_key: Vec<u8>,
    sha256_name: Vec<u8>,
    sha256_key: Vec<u8>,
}

fn ca_hashes(ca: &IssuingCa) -> Result<CaHashes, CryptoError> {
    let cert = asn1::parse_cert(ca.issuing_cert_der())?;
    Ok(CaHashes {
        sha1_name: asn1::sha1(&cert.subject),
        sha1_key: asn1::sha1(&cert.public_key),
        sha256_name: sha256(&cert.subject).to_vec(),
        sha256_key: sha256(&cert.public_key).to_vec(),
    })
}

fn skip_optional_extensions(r: &mut BERReaderSeq<'_, '_>, tag: u64) -> yasna::ASN1Result<()> {
    r.read_optional(|r| r.read_tagged(Tag::context(tag), |r| r.read_der()))?;
    Ok(())
}

/// Parse a DER OCSPRequest; malformed → `CryptoError::Malformed`. `ca` is needed to compare the
/// issuer name and key hashes of each CertID.
pub fn parse_request(der: &[u8], ca: &IssuingCa) -> Result<OcspRequest, CryptoError> {
    let hashes = ca_hashes(ca)?;
    let nonce_oid = oid(asn1::ID_OCSP_NONCE);
    let sha1_oid = oid(asn1::ID_SHA1);
    let sha256_oid = oid(asn1::ID_SHA256);
    let (queries, nonce) = yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let tbs = r.next().read_sequence(|r| {
                r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_u8()))?; // version
                r.read_optional(|r| r.read_tagged(Tag::context(1), |r| r.read_der()))?; // requestorName
                let queries = r.next().collect_sequence_of(|r| {
                    r.read_sequence(|r| {
                        let cert_id_der = r.next().read_der()?;
                        skip_optional_extensions(r, 0)?;
                        Ok(cert_id_der)
                    })
                })?;
                let mut nonce = None;
                r.read_optional(|r| {
                    r.read_tagged(Tag::context(2), |r| {
                        r.read_sequence_of(|r| {
                            let ext = r.read_der()?;
                            let id = yasna::parse_der(&ext, |r| {
                                r.read_sequence(|r| {
                                    let id = r.next().read_oid()?;
                                    r.read_optional(|r| r.read_bool())?;
                                    r.next().read_bytes()?;
                                    Ok(id)
                                })
                            })?;
                            if id == nonce_oid {
                                nonce = Some(ext);
                            }
                            Ok(())
                        })
                    })
                })?;
                Ok((queries, nonce))
            })?;
            r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?; // optionalSignature
            Ok(tbs)
        })
    })
    .map_err(asn1::malformed("OCSP request"))?;
    if queries.is_empty() {
        return Err(CryptoError::Malformed("OCSP request asks about no certificate".into()));
    }
    let queries = queries
        .into_iter()
        .map(|cert_id_der| {
            let (alg, name_hash, key_hash, serial) = yasna::parse_der(&cert_id_der, |r| {
                r.read_sequence(|r| {
                    let alg = r.next().read_sequence(|r| {
                        let alg = r.next().read_oid()?;
                        r.read_optional(|r| r.read_null())?;
                        Ok(alg)
                    })?;
                    let name_hash = r.next().read_bytes()?;
                    let key_hash = r.next().read_bytes()?;
                    let (serial, _) = r.next().read_bigint_bytes()?;
                    Ok((alg, name_hash, key_hash, serial))
                })
            })
            .map_err(asn1::malformed("OCSP CertID"))?;
            let ours = if alg == sha1_oid {
                name_hash == hashes.sha1_name && key_hash == hashes.sha1_key
            } else if alg == sha256_oid {
                name_hash == hashes.sha256_name && key_hash == hashes.sha256_key
            } else {
                false
            };
            Ok(OcspQuery { serial_hex: asn1::serial_hex(&serial), ours, cert_id_der })
        })
        .collect::<Result<Vec<_>, CryptoError>>()?;
    Ok(OcspRequest { queries, nonce })
}

impl IssuingCa {
    /// A signed successful OCSPResponse (DER) answering each query with `statuses[i]` (same order),
    /// producedAt/thisUpdate `now`, nextUpdate `next_update`, echoing the request's nonce extension.
    /// The responder is the issuing CA itself (responder id byKey), and its certificate is included.
    pub fn ocsp_response(
        &self,
        req: &OcspRequest,
        statuses: &[CertStatus],
        now: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, CryptoError> {
        if statuses.len() != req.queries.len() {
            return Err(CryptoError::Malformed(format!(
                "{} statuses for {} OCSP queries",
                statuses.len(),
                req.queries.len()
            )));
        }
        let ca = asn1::parse_cert(self.issuing_cert_der())?;
        let key_hash = asn1::sha1(&ca.public_key);
        let key = self.issuer().key();
        let scheme = if key.algorithm() == &PKCS_ECDSA_P256_SHA256 {
            SignatureScheme::EcdsaP256Sha256
        } else if key.algorithm() == &PKCS_RSA_SHA256 {
            SignatureScheme::RsaPkcs1Sha256
        } else {
            return Err(CryptoError::Library("the issuing CA key has an unsupported algorithm".into()));
        };

        let tbs = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_tagged(Tag::context(2), |w| w.write_bytes(&key_hash));
                asn1::write_generalized_time(w.next(), now);
                w.next().write_sequence(|w| {
                    for (q, status) in req.queries.iter().zip(statuses) {
                        w.next().write_sequence(|w| {
                            w.next().write_der(&q.cert_id_der);
                            match status {
                                CertStatus::Good => w.next().write_tagged_implicit(Tag::context(0), |w| w.write_null()),
                                CertStatus::Revoked { at, reason } => {
                                    w.next().write_tagged_implicit(Tag::context(1), |w| {
                                        w.write_sequence(|w| {
                                            asn1::write_generalized_time(w.next(), *at);
                                            if *reason != RevocationReason::Unspecified {
                                                w.next().write_tagged(Tag::context(0), |w| {
                                                    w.write_enum(i64::from(reason.code()))
                                                });
                                            }
                                        })
                                    })
                                }
                                CertStatus::Unknown => {
                                    w.next().write_tagged_implicit(Tag::context(2), |w| w.write_null())
                                }
                            }
                            asn1::write_generalized_time(w.next(), now);
                            w.next().write_tagged(Tag::context(0), |w| asn1::write_generalized_time(w, next_update));
                        });
                    }
                });
                if let Some(nonce) = &req.nonce {
                    w.next().write_tagged(Tag::context(1), |w| w.write_sequence(|w| w.next().write_der(nonce)));
                }
            });
        });
        let signature = key.sign(&tbs)?;

        let basic = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_der(&tbs);
                asn1::write_sig_alg(w.next(), scheme);
                w.next().write_bitvec_bytes(&signature, signature.len() * 8);
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| w.next().write_der(self.issuing_cert_der()))
                });
            });
        });
        Ok(yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_enum(0);
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| {
                        w.next().write_oid(&oid(asn1::ID_OCSP_BASIC));
                        w.next().write_bytes(&basic);
                    })
                });
            });
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use time::Duration;
    use vsc_core::KeyPurpose;

    use super::*;
    use crate::pem;
    use crate::test_support::{ca, card, openssl, p256, write};

    #[test]
    fn openssl_accepts_our_answers() {
        let ca = ca();
        let good = card(&ca, &p256(), KeyPurpose::Signing);
        let bad = card(&ca, &p256(), KeyPurpose::Authentication);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "ca.pem", ca.chain_pem());
        write(d, "issuing.pem", pem::certificate(ca.issuing_cert_der()));
        write(d, "good.pem", pem::certificate(&good.der));
        write(d, "bad.pem", pem::certificate(&bad.der));
        let now = crate::test_support::now();
        let revoked_at = now - Duration::hours(1);

        for (nonce, digest) in [(false, "-sha1"), (true, "-sha1"), (true, "-sha256")] {
            let nonce_flag = if nonce { "-nonce" } else { "-no_nonce" };
            let (ok, _, err) = openssl(
                d,
                &[
                    "ocsp",
                    "-issuer",
                    "issuing.pem",
                    digest,
                    "-cert",
                    "good.pem",
                    "-cert",
                    "bad.pem",
                    "-reqout",
                    "req.der",
                    nonce_flag,
                ],
            );
            assert!(ok, "{err}");
            let req = parse_request(&std::fs::read(d.join("req.der")).unwrap(), &ca).unwrap();
            assert_eq!(req.has_nonce(), nonce);
            assert_eq!(req.queries.len(), 2);
            assert!(req.queries.iter().all(|q| q.ours));
            assert_eq!(req.queries[0].serial_hex, good.serial_hex);
            assert_eq!(req.queries[1].serial_hex, bad.serial_hex);
            let statuses =
                [CertStatus::Good, CertStatus::Revoked { at: revoked_at, reason: RevocationReason::KeyCompromise }];
            let resp = ca.ocsp_response(&req, &statuses, now, now + Duration::hours(1)).unwrap();
            write(d, "resp.der", &resp);
            // Statuses per certificate: -cert makes openssl build its own request (with a fresh
            // nonce), so the nonce check is skipped here and done below against the real request.
            let (ok, out, err) = openssl(
                d,
                &[
                    "ocsp",
                    "-respin",
                    "resp.der",
                    "-issuer",
                    "issuing.pem",
                    digest,
                    "-cert",
                    "good.pem",
                    "-cert",
                    "bad.pem",
                    "-CAfile",
                    "ca.pem",
                    "-no_nonce",
                ],
            );
            let all = format!("{out}{err}");
            assert!(ok, "{all}");
            assert!(all.contains("Response verify OK"), "{all}");
            assert!(out.contains("good.pem: good"), "{all}");
            assert!(out.contains("bad.pem: revoked") && out.contains("Reason: keyCompromise"), "{all}");
            assert!(!all.contains("WARNING"), "{all}");
            if nonce {
                // -reqin alone: openssl compares the nonce of the request with the response's.
                let (ok, out, err) = openssl(
                    d,
                    &["ocsp", "-respin", "resp.der", "-reqin", "req.der", "-CAfile", "ca.pem", "-resp_text"],
                );
                let all = format!("{out}{err}");
                assert!(ok && all.contains("Response verify OK") && !all.contains("WARNING"), "{all}");
                assert!(all.contains("OCSP Nonce") && all.contains("Cert Status: revoked"), "{all}");
                // Another request has another nonce: openssl notices.
                let (ok, _, err) = openssl(
                    d,
                    &["ocsp", "-issuer", "issuing.pem", "-cert", "good.pem", "-cert", "bad.pem", "-reqout", "req2.der"],
                );
                assert!(ok, "{err}");
                let (_, out, err) =
                    openssl(d, &["ocsp", "-respin", "resp.der", "-reqin", "req2.der", "-CAfile", "ca.pem"]);
                assert!(format!("{out}{err}").contains("Nonce Verify error"), "{out}{err}");
            }
        }

        // A CertID from another CA is not ours.
        let other = crate::test_support::ca();
        write(d, "other.pem", pem::certificate(other.issuing_cert_der()));
        let (ok, _, err) =
            openssl(d, &["ocsp", "-issuer", "other.pem", "-cert", "good.pem", "-reqout", "req.der", "-no_nonce"]);
        assert!(ok, "{err}");
        let req = parse_request(&std::fs::read(d.join("req.der")).unwrap(), &ca).unwrap();
        assert!(!req.queries[0].ours);
        let resp = ca.ocsp_response(&req, &[CertStatus::Unknown], now, now + Duration::hours(1)).unwrap();
        write(d, "resp.der", &resp);
        let (_, out, err) = openssl(d, &["ocsp", "-respin", "resp.der", "-resp_text", "-noverify"]);
        assert!(out.contains("Cert Status: unknown"), "{out}{err}");
        assert!(ca.ocsp_response(&req, &[], now, now).is_err());
    }

    #[test]
    fn junk_and_errors() {
        let ca = ca();
        assert!(matches!(parse_request(b"\x30\x03\x02\x01\x01", &ca), Err(CryptoError::Malformed(_))));
        assert!(matches!(parse_request(b"", &ca), Err(CryptoError::Malformed(_))));
        assert_eq!(ocsp_error(OCSP_MALFORMED_REQUEST), vec![0x30, 0x03, 0x0a, 0x01, 0x01]);
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "resp.der", ocsp_error(OCSP_UNAUTHORIZED));
        let (_, out, err) = openssl(dir.path(), &["ocsp", "-respin", "resp.der", "-resp_text", "-noverify"]);
        assert!(format!("{out}{err}").contains("unauthorized"), "{out}{err}");
    }
}

//! CAdES-BES signatures: CMS SignedData (RFC 5652) with the signed attributes of ETSI EN 319 122-1
//! (content-type, message-digest, signing-time and signing-certificate-v2 of RFC 5035).

use time::OffsetDateTime;
use yasna::{DERWriter, Tag};

use crate::asn1::{self, oid};
use crate::{CardSigner, CryptoError, SignatureScheme, sha256};

/// What to sign: the content itself or its SHA-256 digest (detached only).
#[derive(Debug, Clone, Copy)]
pub enum CadesContent<'a> {
    /// The content.
    Data(&'a [u8]),
    /// The SHA-256 digest of the content (32 bytes).
    Digest(&'a [u8]),
}

/// The inputs of one CAdES-BES signature.
#[derive(Debug, Clone)]
pub struct CadesRequest<'a> {
    /// What is signed.
    pub content: CadesContent<'a>,
    /// Leave the content out of the SignedData (detached signature).
    pub detached: bool,
    /// The claimed signing time (signing-time attribute).
    pub signing_time: OffsetDateTime,
    /// The signer's certificate DER (the card's signing certificate).
    pub signer_cert_der: &'a [u8],
    /// Further certificates to include (issuing CA, root), DER.
    pub chain_der: &'a [Vec<u8>],
    /// Signature scheme (default_for the key when the server passes it).
    pub scheme: SignatureScheme,
}

fn attribute(w: DERWriter<'_>, id: &[u64], value: impl FnOnce(DERWriter<'_>)) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(id));
        w.next().write_set(|w| value(w.next()));
    });
}

/// Build a DER ContentInfo(SignedData) — CAdES-BES. Errors: a digest with `detached = false`, or a
/// digest that is not 32 bytes, or a scheme that does not fit the key → `CryptoError::Malformed`.
pub fn cades_bes(signer: &CardSigner, req: &CadesRequest<'_>) -> Result<Vec<u8>, CryptoError> {
    let (digest, attached) = match req.content {
        CadesContent::Data(d) => (sha256(d), (!req.detached).then_some(d)),
        CadesContent::Digest(d) => {
            if !req.detached {
                return Err(CryptoError::Malformed("an attached signature needs the data, not a digest".into()));
            }
            let digest: [u8; 32] = d.try_into().map_err(|_| {
                CryptoError::Malformed(format!("a SHA-256 digest is 32 bytes, this one has {}", d.len()))
            })?;
            (digest, None)
        }
    };
    if !req.scheme.fits(signer.algorithm()) {
        return Err(CryptoError::Malformed(format!(
            "signature scheme {} does not fit a {} key",
            req.scheme.as_str(),
            signer.algorithm().as_str()
        )));
    }
    let cert = asn1::parse_cert(req.signer_cert_der)?;
    let cert_hash = sha256(req.signer_cert_der);

    // The signed attributes, as a DER SET OF (sorted by yasna): this encoding is what is signed.
    let signed_attrs = yasna::construct_der(|w| {
        w.write_set_of(|w| {
            attribute(w.next(), asn1::ID_CONTENT_TYPE, |w| w.write_oid(&oid(asn1::ID_DATA)));
            attribute(w.next(), asn1::ID_MESSAGE_DIGEST, |w| w.write_bytes(&digest));
            attribute(w.next(), asn1::ID_SIGNING_TIME, |w| asn1::write_time(w, req.signing_time));
            attribute(w.next(), asn1::ID_SIGNING_CERTIFICATE_V2, |w| {
                // SigningCertificateV2 { certs SEQUENCE OF ESSCertIDv2 }
                w.write_sequence(|w| {
                    w.next().write_sequence(|w| {
                        // ESSCertIDv2 { hashAlgorithm DEFAULT sha256 (omitted), certHash, issuerSerial }
                        w.next().write_sequence(|w| {
                            w.next().write_bytes(&cert_hash);
                            w.next().write_sequence(|w| {
                                // GeneralNames { directoryName [4] Name }
                                w.next().write_sequence(|w| {
                                    w.next().write_tagged(Tag::context(4), |w| w.write_der(&cert.issuer));
                                });
                                w.next().write_der(&cert.serial_der);
                            });
                        });
                    });
                });
            });
        });
    });
    let signature = signer.sign(req.scheme, &signed_attrs)?;
    // In the SignerInfo the same SET travels as [0] IMPLICIT.
    let mut implicit_attrs = signed_attrs;
    if let Some(tag) = implicit_attrs.first_mut() {
        *tag = 0xa0;
    }

    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_oid(&oid(asn1::ID_SIGNED_DATA));
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1);
                    w.next().write_set_of(|w| asn1::write_alg(w.next(), asn1::ID_SHA256, false));
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(asn1::ID_DATA));
                        if let Some(data) = attached {
                            w.next().write_tagged(Tag::context(0), |w| w.write_bytes(data));
                        }
                    });
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            w.next().write_der(req.signer_cert_der);
                            for c in req.chain_der {
                                w.next().write_der(c);
                            }
                        });
                    });
                    w.next().write_set_of(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_u8(1);
                            w.next().write_sequence(|w| {
                                w.next().write_der(&cert.issuer);
                                w.next().write_der(&cert.serial_der);
                            });
                            asn1::write_alg(w.next(), asn1::ID_SHA256, false);
                            w.next().write_der(&implicit_attrs);
                            asn1::write_sig_alg(w.next(), req.scheme);
                            w.next().write_bytes(&signature);
                        });
                    });
                });
            });
        });
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use vsc_core::KeyPurpose;

    use super::*;
    use crate::test_support::{ca, card, openssl, p256, write};

    const CONTENT: &[u8] = b"The quick brown fox signs the contract.\n";

    fn sign(
        key: &crate::GeneratedKey,
        cert: &[u8],
        chain: &[Vec<u8>],
        content: CadesContent<'_>,
        detached: bool,
    ) -> Vec<u8> {
        let req = CadesRequest {
            content,
            detached,
            signing_time: crate::test_support::now(),
            signer_cert_der: cert,
            chain_der: chain,
            scheme: SignatureScheme::default_for(key.algorithm),
        };
        cades_bes(&key.signer().unwrap(), &req).unwrap()
    }

    fn verify_detached(dir: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec![
            "cms",
            "-verify",
            "-binary",
            "-content",
            "content.txt",
            "-inform",
            "DER",
            "-in",
            "sig.p7s",
            "-CAfile",
            "ca.pem",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-out", "/dev/null"]);
        openssl(dir, &args)
    }

    #[test]
    fn p256_detached_and_attached_verify_with_openssl() {
        let ca = ca();
        let key = p256();
        let cert = card(&ca, &key, KeyPurpose::Signing);
        let chain = vec![ca.issuing_cert_der().to_vec(), ca.root_cert_der().to_vec()];
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "ca.pem", ca.chain_pem());
        write(d, "content.txt", CONTENT);

        for content in [CadesContent::Data(CONTENT), CadesContent::Digest(&sha256(CONTENT))] {
            write(d, "sig.p7s", sign(&key, &cert.der, &chain, content, true));
            let (ok, out, err) = verify_detached(d, &[]);
            assert!(ok && err.contains("Verification successful"), "{out}\n{err}");
            let (ok, out, err) = verify_detached(d, &["-purpose", "any"]);
            assert!(ok && err.contains("Verification successful"), "{out}\n{err}");
        }

        // The signed attributes are all there.
        let (ok, out, err) = openssl(d, &["cms", "-cmsout", "-print", "-inform", "DER", "-in", "sig.p7s"]);
        assert!(ok, "{err}");
        for attr in ["contentType", "messageDigest", "signingTime", "signingCertificateV2"] {
            assert!(out.contains(attr), "{attr} missing:\n{out}");
        }

        // A changed byte breaks it.
        let mut bad = CONTENT.to_vec();
        bad[4] ^= 1;
        write(d, "content.txt", &bad);
        let (ok, _, err) = verify_detached(d, &["-purpose", "any"]);
        assert!(!ok, "{err}");
        write(d, "content.txt", CONTENT);

        // Attached: openssl prints the content. Only the card cert travels; the CA file has the rest.
        write(d, "sig.p7s", sign(&key, &cert.der, &[], CadesContent::Data(CONTENT), false));
        let (ok, out, err) =
            openssl(d, &["cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.p7s", "-CAfile", "ca.pem"]);
        assert!(ok, "{err}");
        assert_eq!(out.as_bytes(), CONTENT);
    }

    #[test]
    fn rsa_pkcs1_and_pss_verify_with_openssl() {
        let ca = ca();
        let key = crate::card_signer::tests::rsa_key();
        let cert = card(&ca, &key, KeyPurpose::Signing);
        let chain = vec![ca.issuing_cert_der().to_vec()];
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "ca.pem", ca.chain_pem());
        write(d, "content.txt", CONTENT);
        write(d, "sig.p7s", sign(&key, &cert.der, &chain, CadesContent::Data(CONTENT), true));
        let (ok, out, err) = verify_detached(d, &[]);
        assert!(ok, "{out}\n{err}");

        let req = CadesRequest {
            content: CadesContent::Data(CONTENT),
            detached: true,
            signing_time: crate::test_support::now(),
            signer_cert_der: &cert.der,
            chain_der: &chain,
            scheme: SignatureScheme::RsaPssSha256,
        };
        write(d, "sig.p7s", cades_bes(&key.signer().unwrap(), &req).unwrap());
        let (ok, out, err) = verify_detached(d, &[]);
        assert!(ok, "{out}\n{err}");
    }

    #[test]
    fn bad_requests_are_refused() {
        let ca = ca();
        let key = p256();
        let cert = card(&ca, &key, KeyPurpose::Signing);
        let signer = key.signer().unwrap();
        let digest = sha256(CONTENT);
        let mut req = CadesRequest {
            content: CadesContent::Digest(&digest),
            detached: false,
            signing_time: crate::test_support::now(),
            signer_cert_der: &cert.der,
            chain_der: &[],
            scheme: SignatureScheme::EcdsaP256Sha256,
        };
        assert!(matches!(cades_bes(&signer, &req), Err(CryptoError::Malformed(m)) if m.contains("needs the data")));
        req.detached = true;
        req.content = CadesContent::Digest(&digest[..31]);
        assert!(matches!(cades_bes(&signer, &req), Err(CryptoError::Malformed(_))));
        req.content = CadesContent::Data(CONTENT);
        req.scheme = SignatureScheme::RsaPkcs1Sha256;
        assert!(matches!(cades_bes(&signer, &req), Err(CryptoError::Malformed(_))));
        req.scheme = SignatureScheme::EcdsaP256Sha256;
        req.signer_cert_der = b"not a certificate";
        assert!(matches!(cades_bes(&signer, &req), Err(CryptoError::Malformed(_))));
    }
}

//! Card operations: CAdES-BES and raw signatures (verified by the real `openssl`), the
//! per-signature approval on the authenticator, certificate status (CRL and OCSP through
//! `openssl`), and renewal.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use vsc_client::Client;
use vsc_client::device::Decision;
use vsc_client::signing::Signed;
use vsc_proto::{ApprovalView, CadesSignRequest, CardSignBatchRequest, CardSignRequest};
use vsc_server::{Principal, Vsc};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use crate::devices::{Holder, TestDevice, enrolled_holder, enrolled_holder_with, post, register_device};

on_both_backends!(
    cades_signatures_wait_for_the_holders_yes_and_openssl_verifies_them,
    raw_signatures_use_the_session_and_refuse_bad_input_and_dead_cards,
    batch_signatures_verify_in_order_are_audited_per_request_and_refuse_bad_input,
    concurrent_signatures_are_each_audited_once_and_stop_at_logout,
    revoked_and_superseded_certificates_show_in_the_crl_and_ocsp,
    an_approval_is_spent_only_by_the_kind_of_signature_it_was_given_for,
);

const CONTENT: &[u8] = b"Discharge letter for patient 943 476 5919\n";

async fn count(vsc: &Vsc, action: &str) -> usize {
    vsc.audit_log(&Principal::Operator, 1000).await.unwrap().iter().filter(|e| e.action == action).count()
}

/// Log in with a push approved on `device` → a client presenting the card session.
async fn session(ts: &TestServer, h: &Holder, device: &TestDevice) -> Client {
    let req = vsc_proto::CardLoginRequest {
        email: h.email.clone(),
        passcode: Some(h.passcode.clone()),
        method: "push".into(),
        client: Some("signing test".into()),
    };
    let login = ts.anon.card_login(&req).await.unwrap();
    let c = device.client(ts).challenges(5).await.unwrap().challenges.remove(0);
    device.client(ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap();
    let s = ts.anon.open_card_session(&login.login, None).await.unwrap();
    ts.anon.with_token(&s.session)
}

/// Approve (or deny) the pending signature approval `a` on `device`, checking what it shows.
async fn answer(ts: &TestServer, device: &TestDevice, a: &ApprovalView, decision: Decision) {
    let list = device.client(ts).challenges(5).await.unwrap().challenges;
    let c = list.iter().find(|c| c.id == a.approval).expect("the approval reaches the device");
    assert_eq!(c.purpose, "signature");
    assert_eq!(c.document.as_deref(), Some(a.document.as_str()));
    assert_eq!(c.digest.as_deref(), Some(a.digest.as_str()));
    let number = if decision == Decision::Approve { a.number } else { None };
    device.client(ts).answer(&c.id, &c.nonce, decision, number).await.unwrap();
}

/// Run `openssl args…` in `dir` → (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

fn cades_req(detached: bool, approval: Option<&str>) -> CadesSignRequest {
    CadesSignRequest {
        data: Some(B64.encode(CONTENT)),
        digest: None,
        detached,
        name: Some("Discharge letter.pdf".into()),
        approval: approval.map(String::from),
        app: None,
    }
}

/// Ask for a CAdES signature, approve it on the device, and fetch it with the approval.
async fn approved_cades(ts: &TestServer, sc: &Client, device: &TestDevice, detached: bool) -> Vec<u8> {
    let Signed::Approval(a) = sc.card_cades(&cades_req(detached, None)).await.unwrap() else {
        panic!("the signing key needs an approval by default")
    };
    answer(ts, device, &a, Decision::Approve).await;
    assert_eq!(sc.card_approval(&a.approval, 5).await.unwrap().state, "approved");
    let Signed::Done(s) = sc.card_cades(&cades_req(detached, Some(&a.approval))).await.unwrap() else {
        panic!("approved")
    };
    assert_eq!(s.detached, detached);
    B64.decode(&s.cades).unwrap()
}

async fn cades_signatures_wait_for_the_holders_yes_and_openssl_verifies_them(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "sign.one@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let sc = session(&ts, &h, &device).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let certs = sc.card_certificates().await.unwrap();
    assert_eq!(certs.card, h.serial);
    assert_eq!(certs.certificates.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["authentication", "signing"]);
    assert_eq!(certs.chain.len(), 2);
    std::fs::write(d.join("ca.pem"), certs.chain.concat()).unwrap();
    std::fs::write(d.join("doc.txt"), CONTENT).unwrap();

    // The approval shows the document's name and digest; a Yes releases exactly one signature.
    let Signed::Approval(a) = sc.card_cades(&cades_req(true, None)).await.unwrap() else { panic!("approval") };
    assert_eq!((a.state.as_str(), a.document.as_str()), ("pending", "Discharge letter.pdf"));
    assert_eq!(a.digest, hex::encode(vsc_crypto::sha256(CONTENT)));
    let early = sc.card_cades(&cades_req(true, Some(&a.approval))).await.unwrap_err();
    assert_eq!(early.status(), Some(422), "not approved yet: {early}");
    answer(&ts, &device, &a, Decision::Approve).await;
    let Signed::Done(s) = sc.card_cades(&cades_req(true, Some(&a.approval))).await.unwrap() else { panic!() };
    let again = sc.card_cades(&cades_req(true, Some(&a.approval))).await.unwrap_err();
    assert_eq!(again.status(), Some(422), "an approval is spent once: {again}");
    assert_eq!(sc.card_approval(&a.approval, 0).await.unwrap().state, "used");
    std::fs::write(d.join("doc.p7s"), B64.decode(&s.cades).unwrap()).unwrap();
    let verify = [
        "cms",
        "-verify",
        "-binary",
        "-content",
        "doc.txt",
        "-inform",
        "DER",
        "-in",
        "doc.p7s",
        "-CAfile",
        "ca.pem",
        "-out",
        "/dev/null",
    ];
    let (ok, out) = openssl(d, &verify);
    assert!(ok, "openssl accepts the CAdES signature: {out}");
    let (_, printed) = openssl(d, &["cms", "-cmsout", "-print", "-inform", "DER", "-in", "doc.p7s"]);
    for attr in ["contentType", "messageDigest", "signingTime", "signingCertificateV2"] {
        assert!(printed.contains(attr), "signed attribute {attr} in {printed}");
    }
    let mut tampered = CONTENT.to_vec();
    tampered[5] ^= 1;
    std::fs::write(d.join("doc.txt"), &tampered).unwrap();
    let (ok, out) = openssl(d, &verify);
    assert!(!ok, "one changed byte fails verification: {out}");
    std::fs::write(d.join("doc.txt"), CONTENT).unwrap();

    // An attached signature carries the content.
    std::fs::write(d.join("att.p7s"), approved_cades(&ts, &sc, &device, false).await).unwrap();
    let (ok, out) = openssl(
        d,
        &["cms", "-verify", "-binary", "-inform", "DER", "-in", "att.p7s", "-CAfile", "ca.pem", "-out", "content.out"],
    );
    assert!(ok, "{out}");
    assert_eq!(std::fs::read(d.join("content.out")).unwrap(), CONTENT);

    // A No, or an approval given for another document, releases nothing.
    let Signed::Approval(a) = sc.card_cades(&cades_req(true, None)).await.unwrap() else { panic!() };
    answer(&ts, &device, &a, Decision::Deny).await;
    assert_eq!(sc.card_approval(&a.approval, 0).await.unwrap().state, "denied");
    assert_eq!(sc.card_cades(&cades_req(true, Some(&a.approval))).await.unwrap_err().status(), Some(422));
    let Signed::Approval(a) = sc.card_cades(&cades_req(true, None)).await.unwrap() else { panic!() };
    answer(&ts, &device, &a, Decision::Approve).await;
    let other = CadesSignRequest { data: Some(B64.encode(b"another document")), ..cades_req(true, Some(&a.approval)) };
    assert_eq!(sc.card_cades(&other).await.unwrap_err().status(), Some(422));
    // By digest (detached only).
    let by_digest =
        CadesSignRequest { data: None, digest: Some(a.digest.clone()), ..cades_req(true, Some(&a.approval)) };
    let Signed::Done(s) = sc.card_cades(&by_digest).await.unwrap() else { panic!() };
    std::fs::write(d.join("doc.p7s"), B64.decode(&s.cades).unwrap()).unwrap();
    let (ok, out) = openssl(d, &verify);
    assert!(ok, "a signature made from the digest verifies too: {out}");
    let attached_digest = CadesSignRequest { detached: false, ..by_digest.clone() };
    assert_eq!(sc.card_cades(&attached_digest).await.unwrap_err().status(), Some(422));

    assert_eq!(count(&ts.vsc, "card.signed").await, 3);
    assert_eq!(count(&ts.vsc, "card.signature_approved").await, 3);
    assert_eq!(count(&ts.vsc, "card.signature_denied").await, 1);

    // A V1 card has no signing key.
    let v1 = enrolled_holder_with(&ts, "sign.v1@example.nhs.uk", "v1").await;
    let v1_device = register_device(&ts, &v1).await;
    let v1c = session(&ts, &v1, &v1_device).await;
    let e = v1c.card_cades(&cades_req(true, None)).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert!(e.to_string().contains("no signing key"), "{e}");
    ts.stop().await;
}

async fn raw_signatures_use_the_session_and_refuse_bad_input_and_dead_cards(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "sign.raw@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let sc = session(&ts, &h, &device).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("challenge.bin"), CONTENT).unwrap();

    // The authentication key signs within the session, without a push.
    let req = CardSignRequest { data: Some(B64.encode(CONTENT)), ..CardSignRequest::default() };
    let Signed::Done(s) = sc.card_sign(&req).await.unwrap() else { panic!("no approval for the authentication key") };
    assert_eq!((s.key.as_str(), s.algorithm.as_str()), ("authentication", "ecdsa-sha256"));
    std::fs::write(d.join("sig.der"), B64.decode(&s.signature).unwrap()).unwrap();
    std::fs::write(d.join("cert.pem"), &s.certificate).unwrap();
    openssl(d, &["x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "pub.pem"]);
    let check = ["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "challenge.bin"];
    let (ok, out) = openssl(d, &check);
    assert!(ok && out.contains("Verified OK"), "{out}");
    // The same by digest.
    let by_digest = CardSignRequest { digest: Some(s.digest.clone()), ..CardSignRequest::default() };
    let Signed::Done(s2) = sc.card_sign(&by_digest).await.unwrap() else { panic!() };
    std::fs::write(d.join("sig.der"), B64.decode(&s2.signature).unwrap()).unwrap();
    assert!(openssl(d, &check).0);

    // The signing key needs a push even for raw signatures.
    let signing = CardSignRequest { key: Some("signing".into()), ..by_digest.clone() };
    assert!(matches!(sc.card_sign(&signing).await.unwrap(), Signed::Approval(_)));

    for (body, field) in [
        (json!({}), "data"),
        (json!({ "digest": "abcd" }), "digest"),
        (json!({ "data": "%%%" }), "data"),
        (json!({ "data": "YQ==", "digest": s.digest }), "digest"),
        (json!({ "data": "YQ==", "key": "master" }), "key"),
        (json!({ "data": "YQ==", "algorithm": "rsa-pkcs1-sha256" }), "algorithm"),
        (json!({ "data": "YQ==", "app": "nope" }), "app"),
    ] {
        let (status, err) = post(&sc, "/api/v1/card/sign", body.clone()).await;
        assert!(status == 422 || status == 404, "{body}: {status} {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    // A registered relying app is recorded with the signature.
    ts.vsc.create_app("ehr").await.unwrap();
    let for_app = CardSignRequest { app: Some("ehr".into()), ..by_digest.clone() };
    assert!(matches!(sc.card_sign(&for_app).await.unwrap(), Signed::Done(_)));
    let log = ts.vsc.audit_log(&Principal::Operator, 50).await.unwrap();
    let signed = log.iter().find(|e| e.action == "card.signed").unwrap();
    assert_eq!(signed.detail["app"], "ehr");
    assert_eq!(signed.detail["key"], "authentication");
    assert_eq!(signed.detail["digest"], s.digest.as_str());
    assert!(signed.detail["session"].is_string());
    assert_eq!(count(&ts.vsc, "card.signed").await, 3);

    // A locked card cannot sign; nor can an ended session.
    let mut conn = ts.vsc.store().conn().await.unwrap();
    vsc_store::cards::lock_active_for_user(&mut conn, &h.user_id).await.unwrap();
    drop(conn);
    let e = sc.card_sign(&by_digest).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert!(e.to_string().contains("locked"), "{e}");
    let mut conn = ts.vsc.store().conn().await.unwrap();
    sqlx::query("UPDATE cards SET state = 'active' WHERE user_id = $1")
        .bind(&h.user_id)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert!(matches!(sc.card_sign(&by_digest).await.unwrap(), Signed::Done(_)));
    sc.card_logout().await.unwrap();
    assert_eq!(sc.card_sign(&by_digest).await.unwrap_err().status(), Some(401));
    assert_eq!(count(&ts.vsc, "card.signed").await, 4);
    ts.stop().await;
}

async fn batch_signatures_verify_in_order_are_audited_per_request_and_refuse_bad_input(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "sign.batch@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let sc = session(&ts, &h, &device).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let contents: Vec<Vec<u8>> = (0..3).map(|i| format!("page {i} of the referral\n").into_bytes()).collect();
    let digests: Vec<String> = contents.iter().map(|c| hex::encode(vsc_crypto::sha256(c))).collect();
    let req = CardSignBatchRequest { digests: digests.clone(), app: None, ..CardSignBatchRequest::default() };
    let batch = sc.card_sign_batch(&req).await.unwrap();
    assert_eq!((batch.key.as_str(), batch.algorithm.as_str()), ("authentication", "ecdsa-sha256"));
    let got: Vec<&str> = batch.signatures.iter().map(|s| s.digest.as_str()).collect();
    assert_eq!(got, digests.iter().map(String::as_str).collect::<Vec<_>>(), "in request order");
    std::fs::write(d.join("cert.pem"), &batch.certificate).unwrap();
    openssl(d, &["x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "pub.pem"]);
    for (i, (content, sig)) in contents.iter().zip(&batch.signatures).enumerate() {
        std::fs::write(d.join(format!("page{i}")), content).unwrap();
        std::fs::write(d.join(format!("page{i}.sig")), B64.decode(&sig.signature).unwrap()).unwrap();
        let (ok, out) = openssl(
            d,
            &["dgst", "-sha256", "-verify", "pub.pem", "-signature", &format!("page{i}.sig"), &format!("page{i}")],
        );
        assert!(ok && out.contains("Verified OK"), "page {i}: {out}");
    }
    // A signature does not verify another page.
    let (ok, _) = openssl(d, &["dgst", "-sha256", "-verify", "pub.pem", "-signature", "page0.sig", "page1"]);
    assert!(!ok);
    // One event for the request, naming every digest.
    let log = ts.vsc.audit_log(&Principal::Operator, 50).await.unwrap();
    let signed: Vec<_> = log.iter().filter(|e| e.action == "card.signed").collect();
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].detail["digests"], json!(digests));
    assert_eq!(signed[0].detail["count"], 3);
    assert_eq!(signed[0].detail["key"], "authentication");
    assert!(signed[0].detail["session"].is_string());

    let many: Vec<String> = (0..257).map(|_| digests[0].clone()).collect();
    for (body, status, field, says) in [
        (json!({ "digests": [] }), 422, "digests", "1 to 256"),
        (json!({ "digests": many }), 422, "digests", "got 257"),
        (json!({ "digests": [digests[0], "abcd"] }), 422, "digests", "digests[1]"),
        (json!({ "digests": [digests[0]], "key": "master" }), 422, "key", "not a card key"),
        (json!({ "digests": [digests[0]], "algorithm": "rsa-pss-sha256" }), 422, "algorithm", "does not fit"),
        (json!({ "digests": [digests[0]], "app": "nope" }), 404, "app", "no relying app"),
        (json!({ "digests": [digests[0]], "key": "signing" }), 409, "", "approval for every signature"),
    ] {
        let (got, err) = post(&sc, "/api/v1/card/sign/batch", body.clone()).await;
        assert_eq!(got, status, "{body}: {err}");
        if !field.is_empty() {
            assert_eq!(err["error"]["field"], field, "{body}: {err}");
        }
        assert!(err["error"]["message"].as_str().unwrap_or_default().contains(says), "{body}: {err}");
    }
    assert_eq!(count(&ts.vsc, "card.signed").await, 1, "refused batches sign nothing");
    // A registered app is recorded; after logout nothing is signed.
    ts.vsc.create_app("ehr").await.unwrap();
    let for_app = CardSignBatchRequest { app: Some("ehr".into()), ..req.clone() };
    assert_eq!(sc.card_sign_batch(&for_app).await.unwrap().signatures.len(), 3);
    let log = ts.vsc.audit_log(&Principal::Operator, 50).await.unwrap();
    assert_eq!(log.iter().find(|e| e.action == "card.signed").unwrap().detail["app"], "ehr");
    sc.card_logout().await.unwrap();
    assert_eq!(sc.card_sign_batch(&req).await.unwrap_err().status(), Some(401));
    assert_eq!(count(&ts.vsc, "card.signed").await, 2);
    ts.stop().await;
}

/// `openssl verify -crl_check` of `cert` against the CA chain and the service's CRL.
async fn crl_verdict(ts: &TestServer, d: &Path, cert: &str) -> (bool, String) {
    std::fs::write(d.join("crl.der"), ts.anon.crl().await.unwrap()).unwrap();
    let (ok, out) = openssl(d, &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"]);
    assert!(ok, "{out}");
    openssl(d, &["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", cert])
}

/// `openssl ocsp` against the service's responder for `cert`.
fn ocsp_verdict(ts: &TestServer, d: &Path, cert: &str) -> String {
    let url = format!("{}/api/v1/pki/ocsp", ts.url);
    let (ok, out) = openssl(d, &["ocsp", "-issuer", "issuing.pem", "-cert", cert, "-url", &url, "-CAfile", "ca.pem"]);
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    out
}

async fn revoked_and_superseded_certificates_show_in_the_crl_and_ocsp(b: Backend) {
    let ts = TestServer::start(b).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let chain = ts.anon.ca_pem().await.unwrap();
    std::fs::write(d.join("ca.pem"), &chain).unwrap();
    let issuing_end = chain.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len();
    std::fs::write(d.join("issuing.pem"), &chain[..issuing_end]).unwrap();

    let keep = enrolled_holder(&ts, "status.keep@example.nhs.uk").await;
    let gone = enrolled_holder(&ts, "status.gone@example.nhs.uk").await;
    let pem = |c: &vsc_proto::CardView| c.certificates.authentication.clone();
    let keep_card = ts.client.card(&keep.serial).await.unwrap();
    std::fs::write(d.join("keep.pem"), pem(&keep_card)).unwrap();
    std::fs::write(d.join("gone.pem"), pem(&ts.client.card(&gone.serial).await.unwrap())).unwrap();
    let (ok, out) = crl_verdict(&ts, &d, "gone.pem").await;
    assert!(ok, "good before revocation: {out}");
    assert!(ocsp_verdict(&ts, &d, "gone.pem").contains("gone.pem: good"));

    ts.client.revoke_card(&gone.serial, Some("key_compromise")).await.unwrap();
    let (ok, out) = crl_verdict(&ts, &d, "gone.pem").await;
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = crl_verdict(&ts, &d, "keep.pem").await;
    assert!(ok, "{out}");
    let out = ocsp_verdict(&ts, &d, "gone.pem");
    assert!(out.contains("gone.pem: revoked") && out.contains("keyCompromise"), "{out}");
    assert!(ocsp_verdict(&ts, &d, "keep.pem").contains("keep.pem: good"));

    // Renewal: new keys and certificates for the same card; the old ones are superseded.
    let device = register_device(&ts, &keep).await;
    let sc = session(&ts, &keep, &device).await;
    let req = CardSignRequest { digest: Some(hex::encode([7u8; 32])), ..CardSignRequest::default() };
    let Signed::Done(before) = sc.card_sign(&req).await.unwrap() else { panic!() };
    assert_eq!(before.certificate.trim(), pem(&keep_card).trim());
    let renewed = ts.client.renew_card(&keep.serial).await.unwrap();
    assert_eq!(renewed.serial, keep.serial);
    assert_ne!(pem(&renewed), pem(&keep_card));
    assert!(renewed.expires_at >= keep_card.expires_at);
    std::fs::write(d.join("new.pem"), pem(&renewed)).unwrap();
    let (ok, out) = crl_verdict(&ts, &d, "keep.pem").await;
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    assert!(crl_verdict(&ts, &d, "new.pem").await.0);
    let out = ocsp_verdict(&ts, &d, "keep.pem");
    assert!(out.contains("keep.pem: revoked") && out.contains("superseded"), "{out}");
    assert!(ocsp_verdict(&ts, &d, "new.pem").contains("new.pem: good"));
    // The open session (whose old key this node had in memory) signs with the new key.
    let Signed::Done(s) = sc.card_sign(&req).await.unwrap() else { panic!() };
    assert_eq!(s.certificate.trim(), pem(&renewed).trim());
    assert_eq!(count(&ts.vsc, "card.renewed").await, 1);
    let e = ts.client.renew_card(&gone.serial).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    // A garbage OCSP request gets an OCSP error response, not an HTTP error.
    let resp = ts.anon.ocsp(b"not DER").await.unwrap();
    assert_eq!(resp, [0x30, 0x03, 0x0a, 0x01, 0x01]);
    ts.stop().await;
}

async fn concurrent_signatures_are_each_audited_once_and_stop_at_logout(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "sign.many@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let sc = session(&ts, &h, &device).await;
    let sign = |i: u8| {
        let sc = sc.clone();
        async move {
            let req = CardSignRequest { digest: Some(hex::encode([i; 32])), ..CardSignRequest::default() };
            sc.card_sign(&req).await
        }
    };
    // Signatures made at the same moment share transactions; each is audited exactly once.
    let all = futures_join((0..40).map(sign)).await;
    assert!(all.iter().all(|r| matches!(r, Ok(Signed::Done(_)))), "{all:?}");
    assert_eq!(count(&ts.vsc, "card.signed").await, 40);
    let log = ts.vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    let mut digests: Vec<String> = log
        .iter()
        .filter(|e| e.action == "card.signed")
        .map(|e| e.detail["digest"].as_str().unwrap().to_string())
        .collect();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), 40);
    // After logout (on this node) nothing more is released, and nothing is audited.
    sc.card_logout().await.unwrap();
    let after = futures_join((40..50).map(sign)).await;
    assert!(after.iter().all(|r| r.as_ref().is_err_and(|e| e.status() == Some(401))), "{after:?}");
    assert_eq!(count(&ts.vsc, "card.signed").await, 40);
    ts.stop().await;
}

async fn an_approval_is_spent_only_by_the_kind_of_signature_it_was_given_for(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "sign.purpose@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let sc = session(&ts, &h, &device).await;
    // A raw signature with the signing key over the same document's digest.
    let raw = |approval: Option<&str>| CardSignRequest {
        key: Some("signing".into()),
        data: Some(B64.encode(CONTENT)),
        name: Some("Discharge letter.pdf".into()),
        approval: approval.map(String::from),
        ..CardSignRequest::default()
    };
    let refused = |e: vsc_client::ClientError| {
        assert_eq!((e.status(), e.field()), (Some(422), Some("approval")), "{e}");
        assert!(e.to_string().contains("raw or CAdES"), "{e}");
    };

    // A Yes to a raw signature does not release a CAdES signature of the same document…
    let Signed::Approval(for_raw) = sc.card_sign(&raw(None)).await.unwrap() else { panic!("approval needed") };
    answer(&ts, &device, &for_raw, Decision::Approve).await;
    refused(sc.card_cades(&cades_req(true, Some(&for_raw.approval))).await.unwrap_err());
    // …and stays unspent for the raw signature it was given for.
    let Signed::Done(s) = sc.card_sign(&raw(Some(&for_raw.approval))).await.unwrap() else { panic!("released") };
    assert_eq!(s.key, "signing");
    assert_eq!(sc.card_approval(&for_raw.approval, 0).await.unwrap().state, "used");

    // A Yes to a CAdES signature does not release a raw one either, and then makes its CAdES.
    let Signed::Approval(for_cades) = sc.card_cades(&cades_req(true, None)).await.unwrap() else {
        panic!("approval needed")
    };
    assert_eq!(for_cades.digest, for_raw.digest, "the same document");
    answer(&ts, &device, &for_cades, Decision::Approve).await;
    refused(sc.card_sign(&raw(Some(&for_cades.approval))).await.unwrap_err());
    let Signed::Done(_) = sc.card_cades(&cades_req(true, Some(&for_cades.approval))).await.unwrap() else {
        panic!("released")
    };
    assert_eq!(count(&ts.vsc, "card.signed").await, 2);
    ts.stop().await;
}

/// Run futures concurrently on the runtime and collect their results in order.
async fn futures_join<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[test]
fn the_card_operation_routes_are_documented() {
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    for (method, path) in [
        ("post", "/api/v1/card/sign"),
        ("post", "/api/v1/card/sign/batch"),
        ("post", "/api/v1/card/cades"),
        ("get", "/api/v1/card/approvals/{id}"),
        ("get", "/api/v1/card/certificates"),
        ("get", "/api/v1/pki/crl.der"),
        ("post", "/api/v1/pki/ocsp"),
        ("post", "/api/v1/cards/{serial}/renew"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
    let cades = &doc["components"]["schemas"]["CadesSignRequest"]["properties"];
    for field in ["data", "digest", "detached", "name", "approval", "app"] {
        assert!(cades[field].is_object(), "CadesSignRequest.{field}");
    }
    assert!(doc["components"]["schemas"]["ChallengeView"]["properties"]["document"].is_object());
    let batch = &doc["components"]["schemas"]["CardSignBatchRequest"]["properties"];
    for field in ["key", "algorithm", "digests", "name", "app"] {
        assert!(batch[field].is_object(), "CardSignBatchRequest.{field}");
    }
}

//! `vsc card sign | verify | certs`: CAdES signatures with the card's signing key (approved on the
//! authenticator), their verification against the service's CA and CRL, and the card's
//! certificates.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use time::OffsetDateTime;
use vsc_client::Client;
use vsc_client::device::system_time;
use vsc_client::signing::{MAX_APPROVAL_WAIT, Signed};
use vsc_crypto::{CrlReport, CrlStatus, VerifiedSignature, crl_check, pem_certificates, sha256, verify_cms};
use vsc_proto::{ApprovalView, CadesSignRequest, CadesSignature, CardCertificatesView, ErrorCode};

use crate::authenticator::rfc3339;
use crate::card::{StoredSession, session_error};

/// The largest file `--attached` sends (the server's request limit leaves room for base64).
const MAX_ATTACHED: u64 = 640 * 1024;

/// What `vsc card sign` was asked.
pub(crate) struct SignOptions {
    /// The file to sign.
    pub(crate) file: PathBuf,
    /// Output path (default FILE.p7s).
    pub(crate) out: Option<PathBuf>,
    /// Attached signature.
    pub(crate) attached: bool,
    /// Name shown on the authenticator.
    pub(crate) name: Option<String>,
    /// JSON output.
    pub(crate) json: bool,
}

/// Lower-case hex.
fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Standard base64 with padding (the wire format).
fn base64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decode standard base64.
fn base64_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    B64.decode(text.trim()).map_err(|_| anyhow!("the server's signature is not base64"))
}

/// The current time from the system clock.
fn now() -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(system_time()).context("the system clock is out of range")
}

/// `FILE.p7s` next to FILE.
fn default_out(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".p7s");
    PathBuf::from(name)
}

/// `vsc card sign`.
pub(crate) async fn sign(dir: &Path, o: SignOptions) -> anyhow::Result<()> {
    let stored = StoredSession::load(dir)?;
    let api = stored.client();
    let data = read_to_sign(&o.file, o.attached)?;
    let digest = to_hex(&sha256(&data));
    let name = o.name.clone().unwrap_or_else(|| {
        o.file.file_name().map_or_else(|| o.file.display().to_string(), |n| n.to_string_lossy().into_owned())
    });
    let req = CadesSignRequest {
        data: o.attached.then(|| base64_encode(&data)),
        digest: (!o.attached).then(|| digest.clone()),
        detached: !o.attached,
        name: Some(name),
        approval: None,
        app: None,
    };
    let signature = cades_with_approval(&api, req).await?;
    let der = base64_decode(&signature.cades)?;
    let out = o.out.clone().unwrap_or_else(|| default_out(&o.file));
    std::fs::write(&out, &der).with_context(|| format!("cannot write {}", out.display()))?;
    if o.json {
        let j = json!({
            "file": o.file.display().to_string(),
            "signature": out.display().to_string(),
            "digest": signature.digest,
            "certificate_serial": signature.certificate_serial,
            "signing_time": rfc3339(signature.signing_time),
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        println!("signed {} → {} (certificate {})", o.file.display(), out.display(), signature.certificate_serial);
    }
    Ok(())
}

/// The file's bytes; an attached signature is refused for files over 640 KiB.
fn read_to_sign(file: &Path, attached: bool) -> anyhow::Result<Vec<u8>> {
    if attached {
        let len = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
        if len > MAX_ATTACHED {
            bail!("{} has {len} bytes: use a detached signature for files over 640 KiB", file.display());
        }
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Ask for the signature; when it needs approval, show what to approve, wait for the answer and
/// ask again with the approval.
async fn cades_with_approval(api: &Client, mut req: CadesSignRequest) -> anyhow::Result<CadesSignature> {
    let approval = match api.card_cades(&req).await.map_err(sign_error)? {
        Signed::Done(signature) => return Ok(signature),
        Signed::Approval(approval) => approval,
    };
    let pick = approval.number.map(|n| format!(" (pick {n:02})")).unwrap_or_default();
    eprintln!("Approve \"{}\" on your authenticator{pick}", approval.document);
    eprintln!("  SHA-256 {}", approval.digest);
    let id = approval.approval.clone();
    let answered = wait_for_approval(api, approval).await?;
    match answered.state.as_str() {
        "approved" => {}
        "denied" => bail!("the signature was denied on the authenticator; nothing was written"),
        "expired" => bail!("the approval expired before it was answered; nothing was written"),
        other => bail!("the approval ended in state {other}; nothing was written"),
    }
    req.approval = Some(id);
    match api.card_cades(&req).await.map_err(sign_error)? {
        Signed::Done(signature) => Ok(signature),
        Signed::Approval(_) => bail!("the server asked for another approval after this one was approved"),
    }
}

/// Long-poll an approval until it is no longer pending (or well past its expiry).
async fn wait_for_approval(api: &Client, mut approval: ApprovalView) -> anyhow::Result<ApprovalView> {
    let give_up = approval.expires_at.unix_timestamp().saturating_add(30);
    while approval.state == "pending" {
        if system_time() > give_up {
            bail!("the approval is still pending after its expiry; nothing was written");
        }
        let asked = tokio::time::Instant::now();
        approval = api
            .card_approval(&approval.approval, MAX_APPROVAL_WAIT)
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot follow the approval"))?;
        if approval.state == "pending" && asked.elapsed() < std::time::Duration::from_secs(1) {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    Ok(approval)
}

fn sign_error(e: vsc_client::ClientError) -> anyhow::Error {
    match e.code() {
        Some(ErrorCode::Unauthenticated) => session_error(e),
        _ => anyhow::Error::new(e).context("signing failed"),
    }
}

/// `vsc card verify`.
pub(crate) async fn verify(
    dir: &Path,
    file: &Path,
    signature: &Path,
    server: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let server = match server {
        Some(s) => s,
        None => StoredSession::load(dir)
            .map(|s| s.server)
            .map_err(|_| anyhow!("no server: pass --server URL (or log in with `vsc card login`)"))?,
    };
    let content = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let p7s = std::fs::read(signature).with_context(|| format!("cannot read {}", signature.display()))?;
    let api = Client::new(&server);
    let chain_pem = api.ca_pem().await.with_context(|| format!("cannot fetch the CA chain from {server}"))?;
    let chain = pem_certificates(&chain_pem).context("the server's CA chain")?;
    let now = now()?;

    let verified = match verify_cms(&p7s, Some(&content), &chain, now) {
        Ok(v) => v,
        Err(e) => {
            if json {
                let j = json!({"valid": false, "revoked": null, "signer": null, "certificate_serial": null,
                    "signing_time": null, "reason": e.to_string()});
                println!("{}", serde_json::to_string_pretty(&j)?);
            }
            bail!("invalid: {e}");
        }
    };
    let crl = api.crl().await.with_context(|| format!("valid signature, but cannot fetch the CRL from {server}"))?;
    let report = crl_check(&crl, &verified.issuer_cert_der, &verified.serial_hex, now)
        .map_err(|e| anyhow!("valid signature, but the CRL cannot be used: {e}"))?;
    report_verification(&verified, &report, json)
}

/// Print the outcome of a verification; an error when revoked.
fn report_verification(v: &VerifiedSignature, report: &CrlReport, json: bool) -> anyhow::Result<()> {
    let at = v.signing_time.map(rfc3339);
    let signed_at = at.as_deref().map(|t| format!(" at {t}")).unwrap_or_default();
    let (revoked, reason) = match report.status {
        CrlStatus::Good => (false, None),
        CrlStatus::Revoked { at, reason } => {
            let why = reason.map_or("no reason given", |r| r.as_str());
            (true, Some(format!("certificate {} revoked at {} ({why})", v.serial_hex, rfc3339(at))))
        }
    };
    if json {
        let mut j = json!({
            "valid": true,
            "revoked": revoked,
            "signer": v.subject_cn,
            "certificate_serial": v.serial_hex,
            "signing_time": at,
            "revocation_checked_with": "crl",
            "crl_this_update": rfc3339(report.this_update),
        });
        if let (Some(reason), Some(obj)) = (&reason, j.as_object_mut()) {
            obj.insert("reason".into(), json!(reason));
        }
        println!("{}", serde_json::to_string_pretty(&j)?);
    }
    if let Some(reason) = reason {
        bail!("revoked: {reason}");
    }
    if !json {
        println!(
            "valid: signed by {} (certificate {}){signed_at}; certificate good (CRL of {})",
            v.subject_cn,
            v.serial_hex,
            rfc3339(report.this_update)
        );
    }
    Ok(())
}

/// `vsc card certs`.
pub(crate) async fn certs(dir: &Path, json: bool, out_dir: Option<&Path>) -> anyhow::Result<()> {
    let stored = StoredSession::load(dir)?;
    let view = stored.client().card_certificates().await.map_err(session_error)?;
    if let Some(out) = out_dir {
        write_pems(&view, out)?;
    }
    if json {
        print_certs_json(&view)?;
    } else {
        print_certs(&view);
    }
    Ok(())
}

/// The subject CN of a PEM certificate, or `?`.
fn subject_of(pem: &str) -> String {
    pem_certificates(pem)
        .ok()
        .and_then(|c| c.first().and_then(|der| vsc_crypto::certificate_subject_cn(der).ok()))
        .unwrap_or_else(|| "?".into())
}

fn print_certs(view: &CardCertificatesView) {
    println!("card {} ({})", view.card, view.card_type);
    for c in &view.certificates {
        println!(
            "  {:<15} serial {}  not after {}  subject {}",
            c.key,
            c.serial,
            rfc3339(c.not_after),
            subject_of(&c.pem)
        );
    }
    println!("chain:");
    for pem in &view.chain {
        println!("  {}", subject_of(pem));
    }
    println!("CRL  {}", view.crl_url);
    println!("OCSP {}", view.ocsp_url);
}

fn print_certs_json(view: &CardCertificatesView) -> anyhow::Result<()> {
    let mut j = serde_json::to_value(view)?;
    if let Some(list) = j.get_mut("certificates").and_then(|c| c.as_array_mut()) {
        for (entry, cert) in list.iter_mut().zip(&view.certificates) {
            if let Some(obj) = entry.as_object_mut() {
                obj.insert("subject".into(), json!(subject_of(&cert.pem)));
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&j)?);
    Ok(())
}

/// authentication.pem, signing.pem (when the card has one) and ca.pem in `out`.
fn write_pems(view: &CardCertificatesView, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    for c in &view.certificates {
        match c.key.as_str() {
            "authentication" | "signing" => write(&format!("{}.pem", c.key), &c.pem)?,
            _ => {}
        }
    }
    write("ca.pem", &view.chain.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_in_the_standard_alphabet() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"\xfb\xff\xfe", b"any carnal pleas"] {
            let s = base64_encode(data);
            assert_eq!(s.len() % 4, 0, "{s}");
            assert!(!s.contains('-') && !s.contains('_'), "{s}");
            assert_eq!(base64_decode(&s).unwrap(), data);
        }
        assert_eq!(base64_encode(b"\xfb\xff"), "+/8=");
        assert_eq!(default_out(Path::new("dir/doc.txt")), PathBuf::from("dir/doc.txt.p7s"));
    }
}

//! Signatures with an open card session: raw signatures with the authentication or signing key,
//! CAdES-BES signatures with a V2 card's signing key, and the card's certificates. A signature is
//! released only after one transaction has checked that the session and card are still good (and
//! spent the holder's approval, where the policy asks for one) and written its audit event.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use vsc_core::{DomainError, KeyAlgorithm, KeyPurpose};
use vsc_crypto::cades::{CadesContent, CadesRequest};
use vsc_crypto::{CardSigner, SealedKey, SignatureScheme, TokenHash};
use vsc_proto::{
    ApprovalView, CadesSignRequest, CadesSignature, CardCertificateView, CardCertificatesView, CardSignBatchRequest,
    CardSignRequest, CardSignature, CardSignatureBatch, DigestSignature, MAX_BATCH_DIGESTS,
};
use vsc_store::signing::{self, Authorisation, SigningContext, SigningKey};
use vsc_store::{StoreError, apps, cards, logins};

use super::approvals::{ApprovalAsk, Releasing, document_name};
use super::cards::card_key_context;
use super::login::RequestOrigin;
use super::signer_cache::CachedSigner;
use super::{Vsc, ts};
use crate::ServiceError;

/// Session use is recorded at most this often (seconds).
const TOUCH_EVERY_SECONDS: i64 = 30;

/// Largest content a signing request may carry (decoded; base64 of it stays under the 1 MiB body
/// limit). Larger documents are signed by digest (detached).
pub const MAX_CONTENT_BYTES: usize = 640 * 1024;

/// A signature, or the approval it waits for.
#[derive(Debug, Clone)]
pub enum SignOutcome<T> {
    /// Signed and audited.
    Signed(T),
    /// The policy asks the holder to approve this signature on an authenticator first.
    NeedsApproval(ApprovalView),
}

/// The SHA-256 digest of a request: of `data` (base64), or `digest` itself (hex); exactly one.
fn digest_of(data: Option<&str>, digest: Option<&str>) -> Result<([u8; 32], Option<Vec<u8>>), ServiceError> {
    match (data, digest) {
        (Some(_), Some(_)) => Err(DomainError::invalid("digest", "give data or digest, not both").into()),
        (None, None) => Err(DomainError::invalid("data", "give the data (base64) or its SHA-256 digest (hex)").into()),
        (Some(d), None) => {
            let bytes = B64.decode(d.trim()).map_err(|_| DomainError::invalid("data", "data is not valid base64"))?;
            if bytes.len() > MAX_CONTENT_BYTES {
                return Err(DomainError::invalid(
                    "data",
                    "data is larger than 640 KiB; sign its SHA-256 digest instead (detached)",
                )
                .into());
            }
            Ok((vsc_crypto::sha256(&bytes), Some(bytes)))
        }
        (None, Some(h)) => {
            let bytes = hex::decode(h.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| DomainError::invalid("digest", "digest must be a SHA-256 digest: 64 hex characters"))?;
            Ok((bytes, None))
        }
    }
}

fn purpose_of(key: Option<&str>) -> Result<KeyPurpose, ServiceError> {
    match key.map(str::trim).unwrap_or("authentication") {
        "authentication" => Ok(KeyPurpose::Authentication),
        "signing" => Ok(KeyPurpose::Signing),
        other => {
            Err(DomainError::invalid("key", format!("{other:?} is not a card key (authentication or signing)")).into())
        }
    }
}

/// What a signature is for, as its audit event records it.
struct SignatureRecord<'a> {
    operation: &'static str,
    purpose: KeyPurpose,
    scheme: SignatureScheme,
    digest_hex: &'a str,
    document: &'a str,
    app: Option<&'a str>,
    approval: Option<&'a str>,
}

/// What a signature request asks for, before it is admitted.
struct Ask<'a> {
    purpose: KeyPurpose,
    operation: &'static str,
    digest: &'a [u8; 32],
    name: Option<&'a str>,
    fallback: &'static str,
}

/// A signature request admitted to be signed.
struct Admitted {
    digest_hex: String,
    document: String,
    app: Option<String>,
}

impl Vsc {
    /// Check what a request names (its relying app) and admit it to be signed — or, when the
    /// policy asks for the holder's approval and none is given, ask for it.
    async fn admit(
        &self,
        ctx: &SigningContext,
        ask: &Ask<'_>,
        app: Option<&str>,
        approval: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<Result<Admitted, ApprovalView>, ServiceError> {
        let digest_hex = hex::encode(ask.digest);
        let document = document_name(ask.name, ask.fallback);
        let app = self.check_app(app).await?;
        if self.approval_needed(ask.purpose) && approval.is_none() {
            let approval = ApprovalAsk {
                purpose: ask.purpose.as_str(),
                operation: ask.operation,
                digest_hex: &digest_hex,
                document: &document,
                client: app.as_deref().unwrap_or("card client"),
            };
            return Ok(Err(self.request_approval(ctx, &approval, origin).await?));
        }
        Ok(Ok(Admitted { digest_hex, document, app }))
    }

    /// The live session behind a token, with its card and the card's `purpose` key unsealed:
    /// from the node's cache, or read, checked and unsealed.
    async fn signer_for(&self, token: &str, purpose: KeyPurpose) -> Result<CachedSigner, ServiceError> {
        let presented = TokenHash::of(token);
        if let Some(c) = self.signers.get(&presented.0, purpose) {
            self.check_live(&c.ctx)?;
            return Ok(c);
        }
        let unauth = || ServiceError::Unauthenticated("no open card session: unknown session; log in again".into());
        let ctx = {
            let mut conn = self.store.conn().await?;
            signing::context(&mut conn, &presented.0, purpose.as_str()).await?
        }
        .filter(|c| TokenHash::from_slice(&c.token_hash).is_some_and(|h| h.matches(&presented)))
        .ok_or_else(unauth)?;
        self.check_live(&ctx)?;
        let key = self.key_of(&ctx, purpose)?.clone();
        let signer = self.card_signer(&ctx, &key, purpose)?;
        Ok(self.signers.put(presented.0, purpose, ctx, key, signer))
    }

    /// Whether a session (as last read) can still sign: not ended, expired or idle, its card
    /// active and unexpired. The authorising transaction checks all of it again.
    fn check_live(&self, ctx: &SigningContext) -> Result<(), ServiceError> {
        let now = self.now().unix_timestamp();
        let unauth = |why: &str| ServiceError::Unauthenticated(format!("no open card session: {why}; log in again"));
        if ctx.ended_at.is_some() {
            return Err(unauth("the session was logged out"));
        }
        if ctx.expires_at <= now || ctx.last_seen_at + ctx.idle_seconds <= now {
            return Err(unauth("the session has expired"));
        }
        if ctx.card_state != "active" || ctx.card_expires_at <= now {
            let state = if ctx.card_expires_at <= now { "expired" } else { ctx.card_state.as_str() };
            return Err(DomainError::InvalidState(format!("the card is {state}: it cannot sign")).into());
        }
        Ok(())
    }

    fn approval_needed(&self, purpose: KeyPurpose) -> bool {
        match purpose {
            KeyPurpose::Signing => self.config.signing.approve_signing_key,
            KeyPurpose::Authentication => self.config.signing.approve_authentication_key,
        }
    }

    /// Unseal a card key and make a signer of it.
    fn card_signer(
        &self,
        ctx: &SigningContext,
        key: &SigningKey,
        purpose: KeyPurpose,
    ) -> Result<CardSigner, ServiceError> {
        let algorithm = key_algorithm(key)?;
        let der =
            SealedKey(key.sealed_private_key.clone()).open(&self.kek, &card_key_context(&ctx.card_id, purpose))?;
        Ok(CardSigner::from_pkcs8(algorithm, &der)?)
    }

    /// Check the relying app a request names.
    async fn check_app(&self, app: Option<&str>) -> Result<Option<String>, ServiceError> {
        let Some(name) = app.map(str::trim).filter(|a| !a.is_empty()) else { return Ok(None) };
        let mut conn = self.store.conn().await?;
        match apps::by_name(&mut conn, name).await? {
            Some(a) => Ok(Some(a.name)),
            None => Err(ServiceError::not_found("app", format!("no relying app named {name:?}"))),
        }
    }

    /// Release a signature: in one transaction spend the approval (if any), check the session
    /// and card once more and write the audit event; a failure releases nothing.
    async fn authorise(
        &self,
        ctx: &SigningContext,
        key: &SigningKey,
        rec: &SignatureRecord<'_>,
    ) -> Result<(), ServiceError> {
        let now = self.now().unix_timestamp();
        let event = signed_event(ctx, key, rec);
        if rec.approval.is_none() {
            return self.authorise_group(ctx, key, rec.purpose, event).await;
        }
        let mut tx = self.store.begin().await?;
        if let Some(id) = rec.approval {
            let releasing =
                Releasing { purpose: rec.purpose.as_str(), operation: rec.operation, digest_hex: rec.digest_hex };
            self.spend_approval(&mut tx, id, ctx, &releasing, now).await?;
        }
        let auth = Authorisation {
            session_id: &ctx.session_id,
            now,
            purpose: rec.purpose.as_str(),
            cert_serial: &key.cert_serial,
        };
        if !signing::audit_if_authorised(&mut tx, &event, &auth).await? {
            return Err(ServiceError::Unauthenticated(
                "the card session ended or the card changed while signing; log in again".into(),
            ));
        }
        if now - ctx.last_seen_at >= TOUCH_EVERY_SECONDS {
            logins::touch_session(&mut tx, &ctx.session_id, now).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Release a request's signature(s) that need no approval: authorised and audited by `event`
    /// in the node's next group commit.
    async fn authorise_group(
        &self,
        ctx: &SigningContext,
        key: &SigningKey,
        purpose: KeyPurpose,
        event: vsc_core::AuditRecord,
    ) -> Result<(), ServiceError> {
        let item = signing::BatchItem {
            event,
            session_id: ctx.session_id.clone(),
            purpose: purpose.as_str(),
            cert_serial: key.cert_serial.clone(),
            touch: true,
        };
        if !self.authorise_in_batch(item, TOUCH_EVERY_SECONDS).await? {
            return Err(ServiceError::Unauthenticated(
                "the card session ended or the card changed while signing; log in again".into(),
            ));
        }
        Ok(())
    }

    /// `POST /api/v1/card/sign/batch`: raw signatures of up to 256 digests with one card key,
    /// released together once authorised and audited (one `card.signed` event naming every
    /// digest, in request order).
    /// Refused for a key whose policy asks for the holder's approval of every signature.
    pub async fn card_sign_batch(
        &self,
        token: &str,
        req: &CardSignBatchRequest,
    ) -> Result<CardSignatureBatch, ServiceError> {
        let purpose = purpose_of(req.key.as_deref())?;
        if req.digests.is_empty() || req.digests.len() > MAX_BATCH_DIGESTS {
            return Err(DomainError::invalid(
                "digests",
                format!("give 1 to {MAX_BATCH_DIGESTS} SHA-256 digests (hex); got {}", req.digests.len()),
            )
            .into());
        }
        let digests = req
            .digests
            .iter()
            .enumerate()
            .map(|(i, d)| {
                digest_of(None, Some(d)).map(|(digest, _)| digest).map_err(|_| {
                    DomainError::invalid("digests", format!("digests[{i}] is not a SHA-256 digest: 64 hex characters"))
                        .into()
                })
            })
            .collect::<Result<Vec<[u8; 32]>, ServiceError>>()?;
        if self.approval_needed(purpose) {
            return Err(DomainError::InvalidState(format!(
                "the {} key needs the holder's approval for every signature: sign one digest at a time with \
                 POST /api/v1/card/sign",
                purpose.as_str()
            ))
            .into());
        }
        self.with_signer(token, purpose, |c| {
            let digests = digests.clone();
            async move { self.raw_batch(&c, req, purpose, digests).await }
        })
        .await
    }

    async fn raw_batch(
        &self,
        c: &CachedSigner,
        req: &CardSignBatchRequest,
        purpose: KeyPurpose,
        digests: Vec<[u8; 32]>,
    ) -> Result<CardSignatureBatch, ServiceError> {
        let (ctx, key) = (c.ctx.as_ref(), c.key.as_ref());
        let scheme = scheme_for(key, req.algorithm.as_deref())?;
        let app = self.check_app(req.app.as_deref()).await?;
        let document = document_name(req.name.as_deref(), "data to sign");
        let signer = c.signer.clone();
        // Off the async threads: up to 256 signatures (RSA: tens of milliseconds).
        let (digests, signatures) = tokio::task::spawn_blocking(move || {
            let signatures = digests.iter().map(|d| signer.sign_digest(scheme, d)).collect::<Result<Vec<_>, _>>();
            (digests, signatures)
        })
        .await
        .map_err(|e| ServiceError::Startup(format!("signing task failed: {e}")))?;
        let signatures = signatures?;
        let hexes: Vec<String> = digests.iter().map(hex::encode).collect();
        // One event for the request, naming every digest it signed.
        let rec = SignatureRecord {
            operation: "raw",
            purpose,
            scheme,
            digest_hex: "",
            document: &document,
            app: app.as_deref(),
            approval: None,
        };
        let mut detail = signed_detail(ctx, key, &rec);
        if let Some(d) = detail.as_object_mut() {
            d.remove("digest");
            d.insert("digests".into(), hexes.clone().into());
            d.insert("count".into(), hexes.len().into());
        }
        self.authorise_group(ctx, key, purpose, event_with(ctx, detail)).await?;
        Ok(CardSignatureBatch {
            key: purpose.as_str().into(),
            algorithm: scheme.as_str().into(),
            certificate_serial: key.cert_serial.clone(),
            certificate: vsc_crypto::pem::certificate(&key.cert_der),
            signatures: hexes
                .into_iter()
                .zip(signatures)
                .map(|(digest, s)| DigestSignature { digest, signature: B64.encode(s) })
                .collect(),
        })
    }

    /// `POST /api/v1/card/sign`: a raw signature with a card key.
    pub async fn card_sign(
        &self,
        token: &str,
        req: &CardSignRequest,
        origin: &RequestOrigin,
    ) -> Result<SignOutcome<CardSignature>, ServiceError> {
        let purpose = purpose_of(req.key.as_deref())?;
        let (digest, _) = digest_of(req.data.as_deref(), req.digest.as_deref())?;
        self.with_signer(token, purpose, |c| async move { self.raw_signature(&c, req, purpose, digest, origin).await })
            .await
    }

    /// Run `sign` with the session's key; when the authorising check fails because the session or
    /// card changed since the key was cached (a renewal, a lock, a logout elsewhere), read it again
    /// — which says precisely why, or signs with the new key — once.
    async fn with_signer<T, F, Fut>(&self, token: &str, purpose: KeyPurpose, sign: F) -> Result<T, ServiceError>
    where
        F: Fn(CachedSigner) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        let c = self.signer_for(token, purpose).await?;
        match sign(c).await {
            Err(ServiceError::Unauthenticated(_)) => {
                self.signers.forget(&TokenHash::of(token).0);
                sign(self.signer_for(token, purpose).await?).await
            }
            other => other,
        }
    }

    async fn raw_signature(
        &self,
        c: &CachedSigner,
        req: &CardSignRequest,
        purpose: KeyPurpose,
        digest: [u8; 32],
        origin: &RequestOrigin,
    ) -> Result<SignOutcome<CardSignature>, ServiceError> {
        let (ctx, key) = (c.ctx.as_ref(), c.key.as_ref());
        let algorithm = key_algorithm(key)?;
        let scheme = scheme_for(key, req.algorithm.as_deref())?;
        let ask =
            Ask { purpose, operation: "raw", digest: &digest, name: req.name.as_deref(), fallback: "data to sign" };
        let Admitted { digest_hex, document, app } =
            match self.admit(ctx, &ask, req.app.as_deref(), req.approval.as_deref(), origin).await? {
                Ok(a) => a,
                Err(pending) => return Ok(SignOutcome::NeedsApproval(pending)),
            };
        let signer = c.signer.clone();
        let signature = run_signer(algorithm, move || signer.sign_digest(scheme, &digest)).await?;
        let rec = SignatureRecord {
            operation: "raw",
            purpose,
            scheme,
            digest_hex: &digest_hex,
            document: &document,
            app: app.as_deref(),
            approval: req.approval.as_deref(),
        };
        self.authorise(ctx, key, &rec).await?;
        Ok(SignOutcome::Signed(CardSignature {
            signature: B64.encode(signature),
            key: purpose.as_str().into(),
            algorithm: scheme.as_str().into(),
            digest: digest_hex,
            certificate_serial: key.cert_serial.clone(),
            certificate: vsc_crypto::pem::certificate(&key.cert_der),
        }))
    }

    fn key_of<'c>(&self, ctx: &'c SigningContext, purpose: KeyPurpose) -> Result<&'c SigningKey, ServiceError> {
        ctx.key.as_ref().ok_or_else(|| match purpose {
            KeyPurpose::Signing => DomainError::InvalidState(format!(
                "card {} is a V1 card: it has no signing key (AdES signatures need a V2 card)",
                ctx.card_serial
            ))
            .into(),
            KeyPurpose::Authentication => {
                ServiceError::Store(StoreError::Corrupt(format!("card {} has no authentication key", ctx.card_serial)))
            }
        })
    }

    /// `POST /api/v1/card/cades`: a CAdES-BES signature with the V2 signing key.
    pub async fn card_cades(
        &self,
        token: &str,
        req: &CadesSignRequest,
        origin: &RequestOrigin,
    ) -> Result<SignOutcome<CadesSignature>, ServiceError> {
        let (digest, data) = digest_of(req.data.as_deref(), req.digest.as_deref())?;
        if data.is_none() && !req.detached {
            return Err(DomainError::invalid("data", "an attached signature (detached: false) needs the data").into());
        }
        let data = data.as_deref();
        self.with_signer(token, KeyPurpose::Signing, |c| async move {
            self.cades_signature(&c, req, digest, data.map(<[u8]>::to_vec), origin).await
        })
        .await
    }

    async fn cades_signature(
        &self,
        c: &CachedSigner,
        req: &CadesSignRequest,
        digest: [u8; 32],
        data: Option<Vec<u8>>,
        origin: &RequestOrigin,
    ) -> Result<SignOutcome<CadesSignature>, ServiceError> {
        let purpose = KeyPurpose::Signing;
        let (ctx, key) = (c.ctx.as_ref(), c.key.as_ref());
        let algorithm = key_algorithm(key)?;
        let ask = Ask { purpose, operation: "cades", digest: &digest, name: req.name.as_deref(), fallback: "document" };
        let Admitted { digest_hex, document, app } =
            match self.admit(ctx, &ask, req.app.as_deref(), req.approval.as_deref(), origin).await? {
                Ok(a) => a,
                Err(pending) => return Ok(SignOutcome::NeedsApproval(pending)),
            };
        let signer = c.signer.clone();
        let scheme = SignatureScheme::default_for(algorithm);
        let signing_time = self.now();
        let cert_der = key.cert_der.clone();
        let chain = vec![self.ca.issuing_cert_der().to_vec(), self.ca.root_cert_der().to_vec()];
        let detached = req.detached;
        let cades = run_signer(algorithm, move || {
            let content = match &data {
                Some(d) => CadesContent::Data(d),
                None => CadesContent::Digest(&digest),
            };
            vsc_crypto::cades::cades_bes(
                &signer,
                &CadesRequest {
                    content,
                    detached,
                    signing_time,
                    signer_cert_der: &cert_der,
                    chain_der: &chain,
                    scheme,
                },
            )
        })
        .await?;
        let rec = SignatureRecord {
            operation: "cades",
            purpose,
            scheme,
            digest_hex: &digest_hex,
            document: &document,
            app: app.as_deref(),
            approval: req.approval.as_deref(),
        };
        self.authorise(ctx, key, &rec).await?;
        Ok(SignOutcome::Signed(CadesSignature {
            cades: B64.encode(cades),
            detached,
            digest: digest_hex,
            certificate_serial: key.cert_serial.clone(),
            signing_time,
        }))
    }

    /// `GET /api/v1/card/certificates`: the session's card's certificates and the CA chain.
    pub async fn card_certificates(&self, token: &str) -> Result<CardCertificatesView, ServiceError> {
        let c = self.card_session(token).await?;
        let keys = {
            let mut conn = self.store.conn().await?;
            cards::keys(&mut conn, &c.card.id).await?
        };
        let base = self.config.public_url();
        Ok(CardCertificatesView {
            card: c.card.serial,
            card_type: c.card.card_type,
            certificates: keys
                .iter()
                .map(|k| CardCertificateView {
                    key: k.purpose.clone(),
                    serial: k.cert_serial.clone(),
                    pem: vsc_crypto::pem::certificate(&k.cert_der),
                    not_before: ts(k.not_before),
                    not_after: ts(k.not_after),
                })
                .collect(),
            chain: vec![
                vsc_crypto::pem::certificate(self.ca.issuing_cert_der()),
                vsc_crypto::pem::certificate(self.ca.root_cert_der()),
            ],
            crl_url: format!("{base}/api/v1/pki/crl.der"),
            ocsp_url: format!("{base}/api/v1/pki/ocsp"),
        })
    }
}

/// A card key's algorithm.
fn key_algorithm(key: &SigningKey) -> Result<KeyAlgorithm, ServiceError> {
    Ok(KeyAlgorithm::parse("key_algorithm", &key.algorithm)
        .map_err(|_| StoreError::Corrupt(format!("card key algorithm {:?}", key.algorithm)))?)
}

/// The scheme a request asks for (`None` or blank: the key's usual one), if it fits the key.
fn scheme_for(key: &SigningKey, asked: Option<&str>) -> Result<SignatureScheme, ServiceError> {
    let algorithm = key_algorithm(key)?;
    match asked.map(str::trim).filter(|a| !a.is_empty()) {
        None => Ok(SignatureScheme::default_for(algorithm)),
        Some(a) => SignatureScheme::parse(a).filter(|s| s.fits(algorithm)).ok_or_else(|| {
            DomainError::invalid(
                "algorithm",
                format!(
                    "{a:?} does not fit this {} key (use {})",
                    algorithm.as_str(),
                    SignatureScheme::default_for(algorithm).as_str()
                ),
            )
            .into()
        }),
    }
}

/// The `card.signed` audit event of one signature.
fn signed_event(ctx: &SigningContext, key: &SigningKey, rec: &SignatureRecord<'_>) -> vsc_core::AuditRecord {
    event_with(ctx, signed_detail(ctx, key, rec))
}

/// What a `card.signed` event records of a signature.
fn signed_detail(ctx: &SigningContext, key: &SigningKey, rec: &SignatureRecord<'_>) -> serde_json::Value {
    serde_json::json!({
        "session": ctx.session_id, "card": ctx.card_serial, "key": rec.purpose.as_str(),
        "operation": rec.operation, "algorithm": rec.scheme.as_str(), "digest": rec.digest_hex,
        "document": rec.document, "certificate": key.cert_serial, "app": rec.app, "approval": rec.approval,
    })
}

/// A `card.signed` event of the session's holder with `detail`.
fn event_with(ctx: &SigningContext, detail: serde_json::Value) -> vsc_core::AuditRecord {
    vsc_core::AuditRecord {
        actor: vsc_core::Actor::Holder(ctx.email.clone()),
        action: "card.signed",
        org_id: Some(ctx.org_id.clone()),
        target: Some(format!("user:{}", ctx.user_id)),
        detail: detail.to_string(),
    }
}

/// Run a signing closure: inline for P-256 (microseconds), on the blocking pool for RSA.
async fn run_signer<T, F>(algorithm: KeyAlgorithm, f: F) -> Result<T, ServiceError>
where
    F: FnOnce() -> Result<T, vsc_crypto::CryptoError> + Send + 'static,
    T: Send + 'static,
{
    if algorithm == KeyAlgorithm::P256 {
        return Ok(f()?);
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Startup(format!("signing task failed: {e}")))?
        .map_err(ServiceError::from)
}

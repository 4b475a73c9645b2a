//! Card signatures with an open card session (the session as bearer token): raw and CAdES
//! signatures, the approvals they may wait for, the card's certificates, and the public
//! certificate-status services (CRL, OCSP).

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vsc_proto::{
    ApprovalView, CadesSignRequest, CadesSignature, CardCertificatesView, CardSignBatchRequest, CardSignRequest,
    CardSignature, CardSignatureBatch,
};

use crate::{Client, ClientError, decode, segment};

/// The longest wait the server grants on a pending approval, in seconds.
pub const MAX_APPROVAL_WAIT: u32 = 60;

/// A signature, or the approval it waits for (`202`).
#[derive(Debug, Clone)]
pub enum Signed<T> {
    /// The signature.
    Done(T),
    /// The holder must approve on an authenticator first; repeat the request with its id.
    Approval(ApprovalView),
}

impl Client {
    async fn sign_call<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Signed<T>, ClientError> {
        let resp = self.request(Method::POST, path, Some(body)).send().await?;
        if resp.status() == StatusCode::ACCEPTED {
            return Ok(Signed::Approval(decode(resp).await?));
        }
        Ok(Signed::Done(decode(resp).await?))
    }

    /// `POST /api/v1/card/sign`: a raw signature (or the approval it needs).
    pub async fn card_sign(&self, req: &CardSignRequest) -> Result<Signed<CardSignature>, ClientError> {
        self.sign_call("/api/v1/card/sign", req).await
    }

    /// `POST /api/v1/card/sign/batch`: raw signatures of several digests with one key.
    pub async fn card_sign_batch(&self, req: &CardSignBatchRequest) -> Result<CardSignatureBatch, ClientError> {
        self.call(Method::POST, "/api/v1/card/sign/batch", Some(req)).await
    }

    /// `POST /api/v1/card/cades`: a CAdES-BES signature (or the approval it needs).
    pub async fn card_cades(&self, req: &CadesSignRequest) -> Result<Signed<CadesSignature>, ClientError> {
        self.sign_call("/api/v1/card/cades", req).await
    }

    /// `GET /api/v1/card/approvals/{id}?wait=S`: an approval's state, waiting while it is pending.
    pub async fn card_approval(&self, id: &str, wait: u32) -> Result<ApprovalView, ClientError> {
        let path = format!("/api/v1/card/approvals/{}?wait={}", segment(id)?, wait.min(MAX_APPROVAL_WAIT));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// `GET /api/v1/card/certificates`: the card's certificates and the CA chain.
    pub async fn card_certificates(&self) -> Result<CardCertificatesView, ClientError> {
        self.call::<(), _>(Method::GET, "/api/v1/card/certificates", None).await
    }

    /// `GET /api/v1/pki/crl.der`: the current CRL, DER.
    pub async fn crl(&self) -> Result<Vec<u8>, ClientError> {
        let resp = self.request::<()>(Method::GET, "/api/v1/pki/crl.der", None).send().await?;
        binary(resp).await
    }

    /// `POST /api/v1/pki/ocsp`: an OCSP response (DER) for a DER request.
    pub async fn ocsp(&self, request_der: &[u8]) -> Result<Vec<u8>, ClientError> {
        let resp = self
            .http
            .post(format!("{}/api/v1/pki/ocsp", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
            .body(request_der.to_vec())
            .send()
            .await?;
        binary(resp).await
    }
}

async fn binary(resp: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    let status = resp.status().as_u16();
    if status == 200 {
        return Ok(resp.bytes().await?.to_vec());
    }
    Err(ClientError::Unexpected { status, text: resp.text().await.unwrap_or_default() })
}

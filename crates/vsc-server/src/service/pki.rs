//! Certificate status: every card certificate is recorded with its revocation status; the issuing
//! CA signs a CRL whenever a certificate is revoked (in the same transaction) and on a schedule,
//! and answers OCSP requests (RFC 6960) from the same records.

use time::{Duration, OffsetDateTime};
use vsc_crypto::{CertStatus, RevocationReason, RevokedEntry};
use vsc_store::cards::CardKeyRow;
use vsc_store::certificates::{self, CertificateRow};
use vsc_store::crls::{self, CrlRow};
use vsc_store::{Conn, StoreError};

use super::{Vsc, ts};
use crate::ServiceError;

/// How long an OCSP answer may be cached by a relying party.
const OCSP_VALID_MINUTES: i64 = 60;

/// The certificate record of a newly issued card key.
pub(super) fn certificate_record(key: &CardKeyRow, issued_at: i64) -> CertificateRow {
    CertificateRow {
        serial_hex: key.cert_serial.clone(),
        card_id: key.card_id.clone(),
        purpose: key.purpose.clone(),
        cert_der: key.cert_der.clone(),
        not_before: key.not_before,
        not_after: key.not_after,
        issued_at,
        revoked_at: None,
        revocation_reason: None,
        released_at: None,
    }
}

/// The RFC 5280 reason of a stored revocation reason name (`unspecified` when unknown).
pub(super) fn reason_code(reason: Option<&str>) -> RevocationReason {
    reason.and_then(RevocationReason::parse).unwrap_or(RevocationReason::Unspecified)
}

/// The RFC 5280 reason for a revocation reason typed by RA staff: one of the reason names when it
/// is one, `unspecified` otherwise. A revocation is for good, so it never reads as a hold or a
/// release (those only come from suspending and resuming).
pub(super) fn revocation_reason_code(reason: Option<&str>) -> RevocationReason {
    match reason_code(reason) {
        RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl => RevocationReason::Unspecified,
        r => r,
    }
}

impl Vsc {
    /// Sign and store a new CRL of every revoked (or held), unexpired certificate, plus those
    /// released from hold within one CRL lifetime as removeFromCRL (inside the caller's
    /// transaction, after its revocations).
    pub(super) async fn publish_crl(&self, conn: &mut Conn, now: OffsetDateTime) -> Result<CrlRow, ServiceError> {
        let number = crls::next_number(conn).await?;
        let released_since = now.unix_timestamp() - self.config.pki.crl_hours * 3600;
        let listed = certificates::revoked_unexpired(conn, now.unix_timestamp(), released_since).await?;
        let entries: Vec<RevokedEntry> = listed
            .iter()
            .map(|c| match c.revoked_at {
                Some(at) => RevokedEntry {
                    serial_hex: c.serial_hex.clone(),
                    revoked_at: ts(at),
                    reason: reason_code(c.revocation_reason.as_deref()),
                },
                None => RevokedEntry {
                    serial_hex: c.serial_hex.clone(),
                    revoked_at: ts(c.released_at.unwrap_or(now.unix_timestamp())),
                    reason: RevocationReason::RemoveFromCrl,
                },
            })
            .collect();
        let next_update = now + Duration::hours(self.config.pki.crl_hours);
        let number_u = u64::try_from(number).map_err(|_| StoreError::Corrupt(format!("CRL number {number}")))?;
        let der = self.ca.crl(&entries, number_u, now, next_update)?;
        let row = CrlRow { number, der, this_update: now.unix_timestamp(), next_update: next_update.unix_timestamp() };
        crls::insert(conn, &row).await?;
        Ok(row)
    }

    /// The current CRL (DER). A missing CRL, or one past half its lifetime, is replaced first.
    pub async fn crl(&self) -> Result<Vec<u8>, ServiceError> {
        let now = self.now();
        {
            let mut conn = self.store.conn().await?;
            if let Some(c) = crls::latest(&mut conn).await?
                && !self.crl_due(&c, now)
            {
                return Ok(c.der);
            }
        }
        Ok(self.refresh_crl(false).await?.der)
    }

    fn crl_due(&self, c: &CrlRow, now: OffsetDateTime) -> bool {
        let half = self.config.pki.crl_hours * 3600 / 2;
        now.unix_timestamp() >= c.this_update + half || now.unix_timestamp() >= c.next_update
    }

    /// Sign a new CRL when none exists or the newest is past half its lifetime (or always, with
    /// `force`); returns the newest CRL. Several nodes may race here: the CRL number lock in the
    /// store makes the loser re-check and reuse the winner's CRL.
    pub async fn refresh_crl(&self, force: bool) -> Result<CrlRow, ServiceError> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        // Take the CRL writer lock before looking, so a CRL signed meanwhile is seen.
        let _ = crls::next_number(&mut tx).await?;
        if !force
            && let Some(c) = crls::latest(&mut tx).await?
            && !self.crl_due(&c, now)
        {
            return Ok(c);
        }
        let row = self.publish_crl(&mut tx, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(row)
    }

    /// Answer a DER OCSP request with a signed DER OCSP response. A request that does not parse
    /// gets a `malformedRequest` response, as RFC 6960 asks.
    pub async fn ocsp(&self, request_der: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let req = match vsc_crypto::ocsp::parse_request(request_der, &self.ca) {
            Ok(r) => r,
            Err(_) => return Ok(vsc_crypto::ocsp::ocsp_error(1)),
        };
        if req.queries.is_empty() || req.queries.len() > 20 {
            return Ok(vsc_crypto::ocsp::ocsp_error(1));
        }
        let serials: Vec<String> = req.queries.iter().filter(|q| q.ours).map(|q| q.serial_hex.clone()).collect();
        let known = {
            let mut conn = self.store.conn().await?;
            certificates::by_serials(&mut conn, &serials).await?
        };
        let statuses: Vec<CertStatus> = req
            .queries
            .iter()
            .map(|q| match known.iter().find(|c| q.ours && c.serial_hex == q.serial_hex) {
                None => CertStatus::Unknown,
                Some(c) => match c.revoked_at {
                    Some(at) => CertStatus::Revoked { at: ts(at), reason: reason_code(c.revocation_reason.as_deref()) },
                    None => CertStatus::Good,
                },
            })
            .collect();
        let now = self.now();
        Ok(self.ca.ocsp_response(&req, &statuses, now, now + Duration::minutes(OCSP_VALID_MINUTES))?)
    }
}

//! Card issuance (keys + certificates in one transaction), reading and revocation.

use time::OffsetDateTime;
use vsc_core::card::card_expiry;
use vsc_core::{AuditRecord, CardSerial, CardState, CardType, DomainError, KeyAlgorithm, KeyPurpose, RoleCode};
use vsc_crypto::{CardSubject, GeneratedKey, SealedKey, SystemRng};
use vsc_proto::{CardView, IssueCardRequest};
use vsc_store::cards::{self, CardKeyRow, NewCard};
use vsc_store::{Conn, StoreError, certificates, organisations, users};

use super::{Principal, Vsc, key_pool, new_id, pki, views};
use crate::ServiceError;

/// A validated card issuance request.
#[derive(Debug, Clone)]
pub struct IssueCard {
    /// V1 or V2.
    pub card_type: CardType,
    /// Catalogue roles.
    pub roles: Vec<RoleCode>,
    /// Key algorithm of the card profile.
    pub algorithm: KeyAlgorithm,
}

impl IssueCard {
    /// Validate a wire request.
    pub fn parse(req: &IssueCardRequest) -> Result<Self, DomainError> {
        Ok(IssueCard {
            card_type: CardType::parse("type", &req.card_type)?,
            roles: RoleCode::parse_list("roles", &req.roles)?,
            algorithm: req
                .key_algorithm
                .as_deref()
                .map(|a| KeyAlgorithm::parse("key_algorithm", a))
                .transpose()?
                .unwrap_or(KeyAlgorithm::P256),
        })
    }
}

/// A card just written by [`Vsc::insert_card`].
pub(super) struct IssuedCard {
    /// The stored card.
    pub(super) row: cards::CardRow,
    /// Its role codes.
    pub(super) roles: Vec<String>,
    /// Its keys with their certificates.
    pub(super) keys: Vec<CardKeyRow>,
}

/// Context string binding a sealed card key to its row.
pub(crate) fn card_key_context(card_id: &str, purpose: KeyPurpose) -> String {
    format!("card:{card_id}:{}", purpose.as_str())
}

/// Who a card's certificates name.
pub(super) fn card_subject(user: &users::UserRow, organisation: &str, serial: &str) -> CardSubject {
    CardSubject {
        forename: user.forename.clone(),
        surname: user.surname.clone(),
        subject_cn: user.subject_cn.clone(),
        email: user.email.clone(),
        organisation: organisation.to_string(),
        card_serial: serial.to_string(),
    }
}

/// P-256 keys take microseconds: make them before taking the write lock (RSA keys come from the
/// pool inside the transaction).
pub(super) fn fresh_keys(algorithm: KeyAlgorithm, n: usize) -> Result<Vec<GeneratedKey>, ServiceError> {
    if algorithm != KeyAlgorithm::P256 {
        return Ok(Vec::new());
    }
    (0..n).map(|_| GeneratedKey::generate(KeyAlgorithm::P256).map_err(ServiceError::from)).collect()
}

impl Vsc {
    /// Certify and seal one card key: the stored key row with its new certificate.
    pub(super) fn certify_key(
        &self,
        subject: &CardSubject,
        key: &GeneratedKey,
        card_id: &str,
        purpose: KeyPurpose,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<CardKeyRow, ServiceError> {
        let cert = self.ca.issue(subject, key, purpose, now, expires_at)?;
        let sealed = SealedKey::seal(&self.kek, &card_key_context(card_id, purpose), key.pkcs8_der())?;
        Ok(CardKeyRow {
            card_id: card_id.to_string(),
            purpose: purpose.as_str().into(),
            algorithm: key.algorithm.as_str().into(),
            public_key_der: key.public_key_der(),
            sealed_private_key: sealed.0,
            cert_der: cert.der,
            cert_serial: cert.serial_hex,
            not_before: cert.not_before.unix_timestamp(),
            not_after: cert.not_after.unix_timestamp(),
        })
    }

    /// Issue a card to a user: new key pairs, certificates from the issuing CA, sealed keys, roles
    /// and the audit event, all in one transaction; any failure leaves nothing behind.
    pub async fn issue_card(&self, who: &Principal, user_id: &str, req: &IssueCard) -> Result<CardView, ServiceError> {
        let now = self.now();
        let mut fresh = fresh_keys(req.algorithm, req.card_type.key_purposes().len())?;

        let mut tx = self.store.begin().await?;
        let user = self.visible_user(&mut tx, who, user_id).await?;
        let org = organisations::by_id(&mut tx, &user.org_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("user {} has no organisation", user.id)))?;
        let issued = self.insert_card(&mut tx, who, &user, &org.name, req, &mut fresh, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        views::card(&issued.row, issued.roles, &issued.keys, now)
    }

    /// Write a new card for `user` inside the caller's transaction: serial, card row, roles, keys
    /// (from `fresh`, else the key pool), certificates, the `card.issued` audit event and the
    /// invitation email (outbox). The caller commits and then wakes the outbox.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn insert_card(
        &self,
        tx: &mut Conn,
        who: &Principal,
        user: &users::UserRow,
        org_name: &str,
        req: &IssueCard,
        fresh: &mut Vec<GeneratedKey>,
        now: OffsetDateTime,
    ) -> Result<IssuedCard, ServiceError> {
        let expires_at = card_expiry(now, self.config.card_validity_days);
        let purposes = req.card_type.key_purposes();
        let serial = loop {
            let s = CardSerial::generate(req.card_type, &mut SystemRng);
            if !cards::serial_taken(tx, s.as_str()).await? {
                break s;
            }
        };
        let card_id = new_id();
        cards::insert(
            tx,
            &NewCard {
                id: &card_id,
                serial: serial.as_str(),
                user_id: &user.id,
                card_type: req.card_type.as_str(),
                state: CardState::Issued.as_str(),
                key_algorithm: req.algorithm.as_str(),
                issued_at: now.unix_timestamp(),
                expires_at: expires_at.unix_timestamp(),
            },
        )
        .await?;
        for role in &req.roles {
            if !cards::add_role(tx, &card_id, role.as_str()).await? {
                // Dropping the caller's transaction rolls back the card row written above.
                return Err(
                    DomainError::invalid("roles", format!("{} is not in the role catalogue", role.as_str())).into()
                );
            }
        }
        let subject = card_subject(user, org_name, serial.as_str());
        let mut keys = Vec::with_capacity(purposes.len());
        for &purpose in purposes {
            let key = match fresh.pop() {
                Some(k) => k,
                None => key_pool::take_or_generate(tx, &self.kek, req.algorithm).await?,
            };
            let row = self.certify_key(&subject, &key, &card_id, purpose, now, expires_at)?;
            cards::insert_key(tx, &row).await?;
            certificates::insert(tx, &pki::certificate_record(&row, now.unix_timestamp())).await?;
            keys.push(row);
        }
        let roles: Vec<String> = req.roles.iter().map(|r| r.as_str().to_string()).collect();
        self.audit(
            tx,
            AuditRecord {
                actor: who.actor(),
                action: "card.issued",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("card:{serial}")),
                detail: serde_json::json!({
                    "user_id": user.id,
                    "type": req.card_type.as_str(),
                    "roles": roles,
                    "key_algorithm": req.algorithm.as_str(),
                    "certificates": keys.iter().map(|k| &k.cert_serial).collect::<Vec<_>>(),
                })
                .to_string(),
            },
        )
        .await?;
        let row =
            cards::by_serial(tx, serial.as_str()).await?.ok_or_else(|| StoreError::Corrupt("card vanished".into()))?;
        self.start_enrolment(tx, &row, user).await?;
        Ok(IssuedCard { row, roles, keys })
    }

    pub(super) async fn visible_card(
        &self,
        conn: &mut Conn,
        who: &Principal,
        serial: &str,
    ) -> Result<cards::CardRow, ServiceError> {
        let serial = CardSerial::parse("serial", serial)?;
        match cards::by_serial(conn, serial.as_str()).await? {
            Some(c) if self.ensure_org(conn, who, &c.org_id).await? => Ok(c),
            _ => Err(ServiceError::not_found("serial", format!("no card {serial}"))),
        }
    }

    /// Read a card.
    pub async fn get_card(&self, who: &Principal, serial: &str) -> Result<CardView, ServiceError> {
        let mut conn = self.store.conn().await?;
        let card = self.visible_card(&mut conn, who, serial).await?;
        views::load_card(&mut conn, &card, self.now()).await
    }

    /// Revoke a card, recording the time and reason.
    pub async fn revoke_card(
        &self,
        who: &Principal,
        serial: &str,
        reason: Option<&str>,
    ) -> Result<CardView, ServiceError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(DomainError::invalid("reason", "a revocation reason has at most 500 characters").into());
        }
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let card = self.visible_card(&mut tx, who, serial).await?;
        let state =
            CardState::parse(&card.state).ok_or_else(|| StoreError::Corrupt(format!("card state {:?}", card.state)))?;
        state.revoke()?;
        if !cards::revoke(&mut tx, &card.id, now.unix_timestamp(), reason).await? {
            return Err(DomainError::InvalidState("the card is already revoked".into()).into());
        }
        certificates::revoke_for_card(
            &mut tx,
            &card.id,
            now.unix_timestamp(),
            pki::revocation_reason_code(reason).as_str(),
        )
        .await?;
        self.publish_crl(&mut tx, now).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "card.revoked",
                org_id: Some(card.org_id.clone()),
                target: Some(format!("card:{}", card.serial)),
                detail: serde_json::json!({ "reason": reason, "previous_state": card.state }).to_string(),
            },
        )
        .await?;
        let row = cards::by_serial(&mut tx, &card.serial)
            .await?
            .ok_or_else(|| StoreError::Corrupt("card vanished".into()))?;
        let view = views::load_card(&mut tx, &row, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(view)
    }
}

//! Card renewal: new keys and certificates for the same card before it expires; the old
//! certificates are revoked as superseded once the new ones are in place, and a new CRL is signed
//! — all in one transaction.

use time::OffsetDateTime;
use vsc_core::card::card_expiry;
use vsc_core::{AuditRecord, CardState, DomainError, KeyAlgorithm, KeyPurpose};
use vsc_crypto::RevocationReason;
use vsc_proto::CardView;
use vsc_store::cards::CardKeyRow;
use vsc_store::{Conn, StoreError, cards, certificates, organisations, users};

use super::cards::{card_subject, fresh_keys};
use super::verified_channels::EMAIL_UNCONFIRMED_RENEWAL;
use super::{Principal, Vsc, key_pool, pki, views};
use crate::ServiceError;

impl Vsc {
    /// Renew a card that is not revoked or expired, whose holder's email address is confirmed and
    /// on whom no change request waits (409 otherwise): every key gets a new key pair and
    /// certificate, the card a new expiry.
    pub async fn renew_card(&self, who: &Principal, serial: &str) -> Result<CardView, ServiceError> {
        let now = self.now();
        let expires_at = card_expiry(now, self.config.card_validity_days);
        let mut tx = self.store.begin().await?;
        let card = self.visible_card(&mut tx, who, serial).await?;
        let state =
            CardState::parse(&card.state).ok_or_else(|| StoreError::Corrupt(format!("card state {:?}", card.state)))?;
        match state.effective(super::ts(card.expires_at), now) {
            "revoked" => {
                return Err(DomainError::InvalidState("the card is revoked: issue a new card instead".into()).into());
            }
            "suspended" => {
                return Err(DomainError::InvalidState("the card is suspended: resume it before renewing".into()).into());
            }
            "expired" => {
                return Err(DomainError::InvalidState("the card has expired: issue a new card instead".into()).into());
            }
            _ => {}
        }
        // Renewal certifies the holder's identity as it stands: confirmed email, no change waiting.
        self.require_confirmed_email(&mut tx, &card.user_id, EMAIL_UNCONFIRMED_RENEWAL).await?;
        self.refuse_if_change_pending(&mut tx, &card.user_id).await?;
        let (old, renewed) = self.rekey(&mut tx, &card, now, expires_at).await?;
        cards::set_expiry(&mut tx, &card.id, expires_at.unix_timestamp()).await?;
        self.publish_crl(&mut tx, now).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "card.renewed",
                org_id: Some(card.org_id.clone()),
                target: Some(format!("card:{}", card.serial)),
                detail: serde_json::json!({
                    "superseded": old.iter().map(|k| &k.cert_serial).collect::<Vec<_>>(),
                    "certificates": renewed.iter().map(|k| &k.cert_serial).collect::<Vec<_>>(),
                    "previous_expiry": super::ts(card.expires_at),
                    "expires_at": expires_at,
                })
                .to_string(),
            },
        )
        .await?;
        let row = cards::by_id(&mut tx, &card.id).await?.ok_or_else(|| StoreError::Corrupt("card vanished".into()))?;
        let view = views::load_card(&mut tx, &row, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(view)
    }

    /// New key pairs and certificates for every key of `card` (the old certificates revoked as
    /// superseded; the caller publishes the CRL and sets the expiry) → (old keys, new keys).
    pub(super) async fn rekey(
        &self,
        conn: &mut Conn,
        card: &cards::CardRow,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(Vec<CardKeyRow>, Vec<CardKeyRow>), ServiceError> {
        let algorithm = KeyAlgorithm::parse("key_algorithm", &card.key_algorithm)
            .map_err(|_| StoreError::Corrupt(format!("card key algorithm {:?}", card.key_algorithm)))?;
        let user = users::by_id(conn, &card.user_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("card {} has no holder", card.serial)))?;
        let org = organisations::by_id(conn, &user.org_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("user {} has no organisation", user.id)))?;
        let subject = card_subject(&user, &org.name, &card.serial);
        let old = cards::keys(conn, &card.id).await?;
        let mut fresh = fresh_keys(algorithm, old.len())?;
        let mut renewed = Vec::with_capacity(old.len());
        for o in &old {
            let purpose = match o.purpose.as_str() {
                "signing" => KeyPurpose::Signing,
                _ => KeyPurpose::Authentication,
            };
            let key = match fresh.pop() {
                Some(k) => k,
                None => key_pool::take_or_generate(conn, &self.kek, algorithm).await?,
            };
            let row = self.certify_key(&subject, &key, &card.id, purpose, now, expires_at)?;
            cards::replace_key(conn, &row).await?;
            certificates::insert(conn, &pki::certificate_record(&row, now.unix_timestamp())).await?;
            certificates::revoke(conn, &o.cert_serial, now.unix_timestamp(), RevocationReason::Superseded.as_str())
                .await?;
            renewed.push(row);
        }
        Ok((old, renewed))
    }
}

//! Stored rows to wire views.

use time::OffsetDateTime;
use vsc_core::CardState;
use vsc_proto::{CardCertificates, CardView, OrganisationView, UserView};
use vsc_store::cards::{CardKeyRow, CardRow};
use vsc_store::organisations::OrganisationRow;
use vsc_store::users::UserRow;
use vsc_store::{Conn, StoreError};

use super::ts;
use crate::ServiceError;

/// A stored UUID (a bad one is corrupt data).
pub(super) fn uuid(s: &str) -> Result<uuid::Uuid, ServiceError> {
    uuid::Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("bad uuid {s:?}")).into())
}

pub(super) fn organisation(o: OrganisationRow) -> Result<OrganisationView, ServiceError> {
    Ok(OrganisationView { id: uuid(&o.id)?, code: o.code, name: o.name, email_domains: o.email_domains })
}

pub(super) fn card(
    c: &CardRow,
    roles: Vec<String>,
    keys: &[CardKeyRow],
    now: OffsetDateTime,
) -> Result<CardView, ServiceError> {
    let pem_of =
        |purpose: &str| keys.iter().find(|k| k.purpose == purpose).map(|k| vsc_crypto::pem::certificate(&k.cert_der));
    let state = CardState::parse(&c.state).ok_or_else(|| StoreError::Corrupt(format!("card state {:?}", c.state)))?;
    Ok(CardView {
        serial: c.serial.clone(),
        card_type: c.card_type.clone(),
        state: state.effective(ts(c.expires_at), now).to_string(),
        roles,
        user_id: uuid(&c.user_id)?,
        key_algorithm: c.key_algorithm.clone(),
        issued_at: ts(c.issued_at),
        expires_at: ts(c.expires_at),
        revoked_at: c.revoked_at.map(ts),
        revocation_reason: c.revocation_reason.clone(),
        suspended_at: c.suspended_at.map(ts),
        suspension_reason: c.suspended_reason.clone(),
        certificates: CardCertificates {
            authentication: pem_of("authentication")
                .ok_or_else(|| StoreError::Corrupt(format!("card {} has no authentication key", c.serial)))?,
            signing: pem_of("signing"),
        },
    })
}

pub(super) async fn load_card(conn: &mut Conn, c: &CardRow, now: OffsetDateTime) -> Result<CardView, ServiceError> {
    let roles = vsc_store::cards::roles(conn, &c.id).await?;
    let keys = vsc_store::cards::keys(conn, &c.id).await?;
    card(c, roles, &keys, now)
}

pub(super) async fn load_user(conn: &mut Conn, u: UserRow, now: OffsetDateTime) -> Result<UserView, ServiceError> {
    let verified = vsc_store::channels::verified(conn, &u.id).await?;
    let mut cards = Vec::new();
    for c in vsc_store::cards::for_user(conn, &u.id).await? {
        cards.push(load_card(conn, &c, now).await?);
    }
    Ok(UserView {
        id: uuid(&u.id)?,
        display_name: vsc_core::names::display_name(&u.forename, &u.surname, &u.subject_cn),
        organisation: u.org_code,
        forename: u.forename,
        surname: u.surname,
        email: u.email,
        mobile: u.mobile,
        email_verified: verified.email(),
        mobile_verified: verified.mobile(),
        subject_cn: u.subject_cn,
        created_at: ts(u.created_at),
        cards,
    })
}

//! Creating and reading card holders.

use vsc_core::{AuditRecord, DomainError, EmailAddress, Mobile, PersonName, SubjectCn};
use vsc_crypto::SystemRng;
use vsc_proto::{CreateUserRequest, UserView};
use vsc_store::organisations::{self, OrganisationRow};
use vsc_store::users;

use super::{Principal, Vsc, new_id, views};
use crate::ServiceError;

/// The directory account rule of creating a user: blank is none; otherwise up to 64 letters,
/// digits, dots, hyphens, underscores, @ or \\ (trimmed).
pub(super) fn directory_account_name(name: &str) -> Result<Option<&str>, DomainError> {
    let d = name.trim();
    if d.is_empty() {
        return Ok(None);
    }
    if d.chars().count() > 64 || !d.chars().all(|c| c.is_ascii_alphanumeric() || "._-\\@".contains(c)) {
        return Err(DomainError::invalid(
            "directory_account",
            "a directory account name has up to 64 letters, digits, dots, hyphens, underscores, @ or \\",
        ));
    }
    Ok(Some(d))
}

/// The organisation allows the email's domain.
pub(super) fn allowed_email_domain(org: &OrganisationRow, email: &EmailAddress) -> Result<(), DomainError> {
    let domain = email.domain();
    if org.email_domains.iter().any(|d| d == domain.as_str()) {
        return Ok(());
    }
    Err(DomainError::invalid(
        "email",
        format!(
            "the email domain {} is not allowed for organisation {} (allowed: {})",
            domain.as_str(),
            org.code,
            org.email_domains.join(", ")
        ),
    ))
}

impl Vsc {
    /// The 409 for an email a user of organisation `holder_org` has: specific within the caller's
    /// own organisations, neutral (naming nobody) when another organisation's user holds it.
    pub(super) async fn email_taken(
        &self,
        conn: &mut vsc_store::Conn,
        who: &Principal,
        holder_org: &str,
        email: &EmailAddress,
    ) -> Result<ServiceError, ServiceError> {
        Ok(if self.ensure_org(conn, who, holder_org).await? {
            ServiceError::conflict("email", format!("a user with email {email} already exists"))
        } else {
            ServiceError::conflict("email", super::staff_auth::EMAIL_UNUSABLE)
        })
    }

    /// Create a user in one of the principal's organisations. The email's domain must be allowed
    /// by the organisation and the email must be unique (case-insensitively).
    pub async fn create_user(&self, who: &Principal, req: &CreateUserRequest) -> Result<UserView, ServiceError> {
        let forename = PersonName::parse("forename", &req.forename)?;
        let surname = PersonName::parse("surname", &req.surname)?;
        let email = EmailAddress::parse("email", &req.email)?;
        let mobile =
            req.mobile.as_deref().filter(|m| !m.trim().is_empty()).map(|m| Mobile::parse("mobile", m)).transpose()?;
        let given_cn = req.subject_cn.as_deref().map(|c| SubjectCn::parse("subject_cn", c)).transpose()?;
        let org_code = vsc_core::OrgCode::parse("organisation", &req.organisation)?;
        let directory_account = req.directory_account.as_deref().map(directory_account_name).transpose()?.flatten();
        let now = self.now();

        let mut tx = self.store.begin().await?;
        let org = match organisations::by_code(&mut tx, org_code.as_str()).await? {
            Some(o) if self.ensure_org(&mut tx, who, &o.id).await? => o,
            _ => {
                return Err(ServiceError::not_found("organisation", format!("no organisation {org_code} among yours")));
            }
        };
        allowed_email_domain(&org, &email)?;
        if let Some(other) = users::by_email_key(&mut tx, &email.key()).await? {
            return Err(self.email_taken(&mut tx, who, &other.org_id, &email).await?);
        }
        let subject_cn = match given_cn {
            Some(cn) => {
                if users::subject_cn_taken(&mut tx, cn.as_str()).await? {
                    return Err(ServiceError::conflict("subject_cn", format!("subject CN {} is taken", cn.as_str())));
                }
                cn
            }
            None => loop {
                let cn = SubjectCn::generate(&mut SystemRng);
                if !users::subject_cn_taken(&mut tx, cn.as_str()).await? {
                    break cn;
                }
            },
        };
        let id = new_id();
        users::insert(
            &mut tx,
            &users::NewUser {
                id: &id,
                org_id: &org.id,
                forename: forename.as_str(),
                surname: surname.as_str(),
                email: email.as_str(),
                email_key: &email.key(),
                mobile: mobile.as_ref().map(Mobile::as_str),
                subject_cn: subject_cn.as_str(),
                created_at: now.unix_timestamp(),
            },
        )
        .await?;
        if let Some(d) = directory_account {
            vsc_store::holders::add_directory_account(&mut tx, &id, d, now.unix_timestamp()).await?;
        }
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "user.created",
                org_id: Some(org.id.clone()),
                target: Some(format!("user:{id}")),
                detail: serde_json::json!({ "email": email.as_str(), "subject_cn": subject_cn.as_str() }).to_string(),
            },
        )
        .await?;
        let row = users::by_id(&mut tx, &id).await?.ok_or_else(|| ServiceError::Startup("user vanished".into()))?;
        let view = views::load_user(&mut tx, row, now).await?;
        tx.commit().await.map_err(vsc_store::StoreError::from)?;
        Ok(view)
    }

    /// Read a user (with cards) in one of the principal's organisations.
    pub async fn get_user(&self, who: &Principal, id: &str) -> Result<UserView, ServiceError> {
        let mut conn = self.store.conn().await?;
        let row = self.visible_user(&mut conn, who, id).await?;
        views::load_user(&mut conn, row, self.now()).await
    }

    /// Find a user by email (operator CLI).
    pub async fn user_by_email(&self, who: &Principal, email: &str) -> Result<UserView, ServiceError> {
        let email = EmailAddress::parse("email", email)?;
        let mut conn = self.store.conn().await?;
        let row = users::by_email_key(&mut conn, &email.key()).await?;
        let id =
            row.map(|r| r.id).ok_or_else(|| ServiceError::not_found("email", format!("no user with email {email}")))?;
        let row = self.visible_user(&mut conn, who, &id).await?;
        views::load_user(&mut conn, row, self.now()).await
    }

    pub(super) async fn visible_user(
        &self,
        conn: &mut vsc_store::Conn,
        who: &Principal,
        id: &str,
    ) -> Result<users::UserRow, ServiceError> {
        let not_found = || ServiceError::not_found("id", format!("no user {id}"));
        let id = uuid::Uuid::parse_str(id).map_err(|_| vsc_core::DomainError::invalid("id", "a user id is a UUID"))?;
        match users::by_id(conn, &id.to_string()).await? {
            Some(u) if self.ensure_org(conn, who, &u.org_id).await? => Ok(u),
            _ => Err(not_found()),
        }
    }
}

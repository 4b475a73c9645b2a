//! RA staff sign-in to the vRA Manager: a one-time link sets the password (Argon2id); sign-in is
//! email + password, then a TOTP code (set up at the first sign-in with a QR code and a confirm
//! code, its secret sealed under the key-encryption key). Every check of a password or code
//! reserves its attempt before it runs, so concurrent failures are counted exactly; the fifth
//! failure in a row locks the account's sign-in for 15 minutes. Sessions end after 30 minutes
//! idle or 12 hours in all, or at sign-out.

use vsc_core::{Actor, AuditRecord, DomainError, EmailAddress, OrgCode, PersonName, StaffRole};
use vsc_crypto::totp::{DIGITS, STEP_SECONDS, TotpSecret};
use vsc_crypto::{SealedKey, SecretToken, TokenHash};
use vsc_store::{Conn, StoreError, organisations, staff, staff_auth};

use super::devices::qr_svg;
use super::{Principal, Vsc, new_id};
use crate::ServiceError;

/// A password link works this long.
pub const PASSWORD_LINK_SECONDS: i64 = 24 * 60 * 60;
/// Failed sign-ins in a row that lock an account's sign-in.
pub const SIGN_IN_MAX_FAILURES: i64 = 5;
/// How long a locked sign-in stays locked.
pub const SIGN_IN_LOCK_SECONDS: i64 = 15 * 60;
/// The TOTP step (or set-up) must follow the password within this time.
pub const SIGN_IN_STEP_SECONDS: i64 = 10 * 60;
/// A session ends after this long without a request.
pub const SESSION_IDLE_SECONDS: i64 = 30 * 60;
/// A session ends this long after sign-in, however busy.
pub const SESSION_ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;
/// Shortest password.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest password.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// A conflict with another organisation's user or staff account: it names nobody.
pub const EMAIL_UNUSABLE: &str = "this email address cannot be used";

/// The one answer to a failed sign-in, whatever failed.
const SIGN_IN_FAILED: &str =
    "the email address or password is wrong, or sign-in is locked for 15 minutes after repeated failures";
/// The answer when the TOTP step cannot go on.
const START_AGAIN: &str = "this sign-in has expired or is locked; sign in again";

/// What `vsc admin staff invite` did.
#[derive(Debug)]
pub struct StaffInvite {
    /// Staff email.
    pub email: String,
    /// `manager` / `agent`.
    pub role: String,
    /// Whether the account was created now.
    pub created: bool,
    /// Whether the organisation was granted now.
    pub granted: bool,
    /// Whether the account is an operator.
    pub operator: bool,
    /// The one-time link to set the password.
    pub password_link: String,
}

/// A staff member to add: who, in which role, granted which organisations.
pub(crate) struct NewStaff<'a> {
    /// Email.
    pub email: &'a EmailAddress,
    /// Display name (needed for a new account).
    pub name: Option<&'a str>,
    /// Manager or agent.
    pub role: StaffRole,
    /// Organisations to grant (the first one names the audit events).
    pub orgs: &'a [organisations::OrganisationRow],
}

/// What [`Vsc::add_staff`] did.
pub(crate) struct AddedStaff {
    /// Staff id.
    pub id: String,
    /// Whether the account was created now.
    pub created: bool,
    /// Codes of the organisations granted now.
    pub granted: Vec<String>,
    /// The one-time link to set the password.
    pub password_link: String,
}

/// The first step of a sign-in succeeded.
#[derive(Debug)]
pub struct StaffSignInStart {
    /// The sign-in token (for the TOTP step).
    pub token: String,
    /// Whether the TOTP second factor still has to be set up.
    pub totp_setup: bool,
}

/// What the TOTP set-up page shows.
#[derive(Debug)]
pub struct TotpSetupView {
    /// The staff member's email.
    pub email: String,
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://` URI the QR code carries.
    pub uri: String,
    /// The QR code (SVG).
    pub qr_svg: String,
}

/// A signed-in staff member.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffMember {
    /// Staff id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Manager or agent.
    pub role: StaffRole,
    /// Granted organisations: (code, name).
    pub organisations: Vec<(String, String)>,
    /// Whether the account is an operator (service-wide).
    pub operator: bool,
}

impl StaffMember {
    /// The principal that acts for this staff member.
    pub fn principal(&self) -> Principal {
        Principal::Staff { id: self.id.clone(), email: self.email.clone(), role: self.role, operator: self.operator }
    }

    /// Whether the account may manage staff: a manager or an operator.
    pub fn manages_staff(&self) -> bool {
        self.role == StaffRole::Manager || self.operator
    }
}

/// Check a new password: 12–128 characters, not the email address, typed the same twice.
pub fn check_password(password: &str, confirm: &str, email: &str) -> Result<(), DomainError> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(DomainError::invalid("password", format!("use at least {PASSWORD_MIN_CHARS} characters")));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(DomainError::invalid("password", format!("use at most {PASSWORD_MAX_CHARS} characters")));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(DomainError::invalid("password", "the password must not be your email address"));
    }
    if password != confirm {
        return Err(DomainError::invalid("confirm", "the two passwords are not the same"));
    }
    Ok(())
}

/// The URI authenticator apps take (Google Authenticator key-URI format).
pub fn otpauth_uri(email: &str, secret_base32: &str) -> String {
    let label: String = email
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "otpauth://totp/vsc:{label}?secret={secret_base32}&issuer=vsc&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
    )
}

fn totp_context(staff_id: &str) -> String {
    format!("staff-totp:{staff_id}")
}

fn staff_event(email: &str, action: &'static str, detail: serde_json::Value) -> AuditRecord {
    AuditRecord {
        actor: Actor::Staff(email.to_string()),
        action,
        org_id: None,
        target: Some(format!("staff:{email}")),
        detail: detail.to_string(),
    }
}

fn link_invalid() -> ServiceError {
    ServiceError::not_found("token", "this link is not valid: it may be mistyped, or a newer link replaced it")
}

fn start_again() -> ServiceError {
    ServiceError::SignInFailed(START_AGAIN.into())
}

impl Vsc {
    /// Replace the account's password link with a new one (in the caller's transaction, audited
    /// as `who`); returns the absolute link.
    pub(crate) async fn issue_password_link(
        &self,
        conn: &mut Conn,
        who: &Principal,
        staff_id: &str,
        email: &str,
        org_id: Option<&str>,
    ) -> Result<String, ServiceError> {
        let now = self.now().unix_timestamp();
        let token = SecretToken::generate("vsp");
        staff_auth::replace_password_link(conn, staff_id, &token.hash().0, now, now + PASSWORD_LINK_SECONDS).await?;
        self.audit(
            conn,
            AuditRecord {
                actor: who.actor(),
                action: "staff.password_link_issued",
                org_id: org_id.map(str::to_string),
                target: Some(format!("staff:{email}")),
                detail: serde_json::json!({ "valid_seconds": PASSWORD_LINK_SECONDS }).to_string(),
            },
        )
        .await?;
        Ok(format!("{}/ra/set-password/{}", self.config.public_url(), token.expose()))
    }

    /// Create (when new) the staff account of `email` in `role`, grant it `orgs` and issue it a
    /// password link, audited as `who` in the caller's transaction. An existing account with
    /// another role is a conflict, and so is any existing one when `existing_ok` is false.
    pub(crate) async fn add_staff(
        &self,
        conn: &mut Conn,
        who: &Principal,
        new: &NewStaff<'_>,
        existing_ok: bool,
    ) -> Result<AddedStaff, ServiceError> {
        let email = new.email;
        let first_org = new.orgs.first().map(|o| o.id.clone());
        let (id, created) = match staff::by_email_key(conn, &email.key()).await? {
            Some(s) if !existing_ok => {
                // Specific only about an account the caller may see (sharing an organisation);
                // another organisation's staff is named to nobody.
                let in_reach = match who.staff_id() {
                    Some(viewer) if !who.is_operator() => !staff::visible(conn, viewer, &s.id).await?.is_empty(),
                    _ => true,
                };
                if !in_reach {
                    return Err(ServiceError::conflict("email", EMAIL_UNUSABLE));
                }
                return Err(ServiceError::conflict(
                    "email",
                    format!("{email} already has a staff account ({})", s.role),
                ));
            }
            Some(s) if s.role == new.role.as_str() => (s.id, false),
            Some(s) => {
                return Err(ServiceError::conflict("role", format!("{email} is already an RA {}", s.role)));
            }
            None => {
                let display =
                    new.name.ok_or_else(|| DomainError::invalid("name", "give the name of a new staff member"))?;
                let id = new_id();
                let at = self.now().unix_timestamp();
                staff::insert(conn, &id, email.as_str(), &email.key(), display, new.role.as_str(), at).await?;
                self.audit(
                    conn,
                    AuditRecord {
                        actor: who.actor(),
                        action: "staff.created",
                        org_id: first_org.clone(),
                        target: Some(format!("staff:{email}")),
                        detail: serde_json::json!({ "role": new.role.as_str(), "name": display }).to_string(),
                    },
                )
                .await?;
                (id, true)
            }
        };
        let mut granted = Vec::new();
        for org in new.orgs {
            if staff::grant(conn, &id, &org.id).await? {
                self.audit(
                    conn,
                    AuditRecord {
                        actor: who.actor(),
                        action: "staff.granted",
                        org_id: Some(org.id.clone()),
                        target: Some(format!("staff:{email}")),
                        detail: serde_json::json!({ "organisation": org.code }).to_string(),
                    },
                )
                .await?;
                granted.push(org.code.clone());
            }
        }
        let password_link = self.issue_password_link(conn, who, &id, email.as_str(), first_org.as_deref()).await?;
        Ok(AddedStaff { id, created, granted, password_link })
    }

    /// Create (when new) a staff account granted `org_code`, and issue it a password link
    /// (operator). A new link voids the previous one.
    pub async fn invite_staff(
        &self,
        email: &str,
        org_code: &str,
        role: &str,
        name: Option<&str>,
    ) -> Result<StaffInvite, ServiceError> {
        self.invite_staff_as(email, org_code, role, name, false).await
    }

    /// [`Vsc::invite_staff`], making the account an operator too when `operator` is set (in the
    /// same transaction; `vsc admin staff invite --operator`).
    pub async fn invite_staff_as(
        &self,
        email: &str,
        org_code: &str,
        role: &str,
        name: Option<&str>,
        operator: bool,
    ) -> Result<StaffInvite, ServiceError> {
        let email = EmailAddress::parse("email", email)?;
        let code = OrgCode::parse("org", org_code)?;
        let role = StaffRole::parse("role", role)?;
        let name = name.map(|n| PersonName::parse("name", n).map(|n| n.as_str().to_string())).transpose()?;
        let mut tx = self.store.begin().await?;
        let org = organisations::by_code(&mut tx, code.as_str())
            .await?
            .ok_or_else(|| ServiceError::not_found("org", format!("no organisation {code}")))?;
        let new = NewStaff { email: &email, name: name.as_deref(), role, orgs: std::slice::from_ref(&org) };
        let added = self.add_staff(&mut tx, &Principal::Operator, &new, true).await?;
        if operator {
            self.grant_operator(&mut tx, &Principal::Operator, &added.id, email.as_str(), true).await?;
        }
        let is_operator = staff::by_email_key(&mut tx, &email.key()).await?.is_some_and(|s| s.operator);
        tx.commit().await.map_err(StoreError::from)?;
        Ok(StaffInvite {
            email: email.to_string(),
            role: role.as_str().into(),
            created: added.created,
            granted: !added.granted.is_empty(),
            operator: is_operator,
            password_link: added.password_link,
        })
    }

    /// The live password link `token` → the account's email (expired, used and unknown links fail).
    async fn live_password_link(
        &self,
        conn: &mut Conn,
        token: &str,
    ) -> Result<(staff_auth::PasswordLink, staff_auth::StaffCredentials), ServiceError> {
        let presented = TokenHash::of(token);
        let link = staff_auth::password_link(conn, &presented.0).await?.ok_or_else(link_invalid)?;
        if !TokenHash::from_slice(&link.token_hash).is_some_and(|s| s.matches(&presented)) {
            return Err(link_invalid());
        }
        if link.used_at.is_some() {
            return Err(ServiceError::LinkUsed("this link to set your password has already been used".into()));
        }
        if link.expires_at <= self.now().unix_timestamp() {
            return Err(ServiceError::LinkExpired("this link to set your password has expired".into()));
        }
        let s = staff_auth::by_id(conn, &link.staff_id).await?.filter(|s| !s.disabled).ok_or_else(link_invalid)?;
        Ok((link, s))
    }

    /// The email whose password a live link sets.
    pub async fn staff_password_link(&self, token: &str) -> Result<String, ServiceError> {
        let mut conn = self.store.conn().await?;
        Ok(self.live_password_link(&mut conn, token).await?.1.email)
    }

    /// Set a staff password from a one-time link (spending it).
    pub async fn set_staff_password(&self, token: &str, password: &str, confirm: &str) -> Result<(), ServiceError> {
        let email = self.staff_password_link(token).await?;
        check_password(password, confirm, &email)?;
        let hash = self.hash_secret(password).await?;
        let mut tx = self.store.begin().await?;
        let (link, s) = self.live_password_link(&mut tx, token).await?;
        if !staff_auth::use_password_link(&mut tx, &link.token_hash, self.now().unix_timestamp()).await? {
            return Err(ServiceError::LinkUsed("this link to set your password has already been used".into()));
        }
        staff_auth::set_password(&mut tx, &s.id, &hash).await?;
        // Whoever held the old password is out: its sessions end and its pending sign-ins stop.
        // The TOTP second factor stays as it was (only `vsc admin staff reset-totp` clears it).
        let now = self.now().unix_timestamp();
        let sessions = staff_auth::end_sessions(&mut tx, &s.id, now).await?;
        staff_auth::end_sign_ins(&mut tx, &s.id, now).await?;
        let detail = serde_json::json!({ "sessions_ended": sessions });
        self.audit(&mut tx, staff_event(&s.email, "staff.password_set", detail)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Clear an account's TOTP second factor so that its next sign-in sets one up again; its
    /// sessions and pending sign-ins end (operator).
    pub async fn reset_staff_totp(&self, email: &str) -> Result<(), ServiceError> {
        let email = EmailAddress::parse("email", email)?;
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let s = staff_auth::by_email_key(&mut tx, &email.key())
            .await?
            .ok_or_else(|| ServiceError::not_found("email", format!("no RA account with email {email}")))?;
        let cleared = staff_auth::clear_totp(&mut tx, &s.id).await?;
        let sessions = staff_auth::end_sessions(&mut tx, &s.id, now).await?;
        staff_auth::end_sign_ins(&mut tx, &s.id, now).await?;
        let detail = serde_json::json!({ "had_totp": cleared, "sessions_ended": sessions });
        self.audit(
            &mut tx,
            AuditRecord {
                actor: Principal::Operator.actor(),
                action: "staff.totp_reset",
                org_id: None,
                target: Some(format!("staff:{}", s.email)),
                detail: detail.to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Make the account of `email` an operator (`on`) or withdraw it (operator; audited when it
    /// changes). Returns whether it changed.
    pub async fn set_staff_operator(&self, email: &str, on: bool) -> Result<bool, ServiceError> {
        let email = EmailAddress::parse("email", email)?;
        let mut tx = self.store.begin().await?;
        let s = staff::by_email_key(&mut tx, &email.key())
            .await?
            .ok_or_else(|| ServiceError::not_found("email", format!("no RA account with email {email}")))?;
        let changed = self.grant_operator(&mut tx, &Principal::Operator, &s.id, &s.email, on).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(changed)
    }

    /// Set the operator flag of a staff account in the caller's transaction, audited as `who`
    /// when it changes.
    pub(crate) async fn grant_operator(
        &self,
        conn: &mut Conn,
        who: &Principal,
        staff_id: &str,
        email: &str,
        on: bool,
    ) -> Result<bool, ServiceError> {
        if !staff::set_operator(conn, staff_id, on).await? {
            return Ok(false);
        }
        let action = if on { "staff.operator_granted" } else { "staff.operator_withdrawn" };
        let rec = AuditRecord {
            actor: who.actor(),
            action,
            org_id: None,
            target: Some(format!("staff:{email}")),
            detail: serde_json::json!({ "operator": on }).to_string(),
        };
        self.audit(conn, rec).await?;
        Ok(true)
    }

    async fn audit_staff(
        &self,
        email: &str,
        action: &'static str,
        detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        self.audit(&mut tx, staff_event(email, action, detail)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// A reserved check failed: audit it, and at the limit (the reservation has locked sign-in
    /// already) end pending sign-ins and audit the lock (one transaction).
    async fn staff_check_failed(
        &self,
        s: &staff_auth::StaffCredentials,
        failures: i64,
        reason: &'static str,
    ) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        self.audit(
            &mut tx,
            staff_event(
                &s.email,
                "staff.sign_in_failed",
                serde_json::json!({ "reason": reason, "failures": failures }),
            ),
        )
        .await?;
        if failures >= SIGN_IN_MAX_FAILURES {
            self.staff_locked(&mut tx, s).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// The reservation that reached the limit locked sign-in: pending sign-ins end, audited.
    async fn staff_locked(
        &self,
        tx: &mut vsc_store::Conn,
        s: &staff_auth::StaffCredentials,
    ) -> Result<(), ServiceError> {
        let now = self.now().unix_timestamp();
        staff_auth::end_sign_ins(tx, &s.id, now).await?;
        // About when the reservation's lock runs out (set a moment ago with its own clock read).
        let until = now + SIGN_IN_LOCK_SECONDS;
        self.audit(tx, staff_event(&s.email, "staff.sign_in_locked", serde_json::json!({ "locked_until": until })))
            .await?;
        Ok(())
    }

    /// Sign-in step 1: email and password. Unknown email, wrong password and a locked account
    /// answer alike and take the same time (one Argon2id verification each).
    pub async fn staff_sign_in(&self, email: &str, password: &str) -> Result<StaffSignInStart, ServiceError> {
        let now = self.now().unix_timestamp();
        let key = EmailAddress::parse("email", email).map(|e| e.key()).unwrap_or_default();
        let found = if key.is_empty() {
            None
        } else {
            let mut conn = self.store.conn().await?;
            staff_auth::by_email_key(&mut conn, &key).await?
        };
        let Some(s) = found.filter(|s| s.password_hash.is_some()) else {
            self.verify_secret(password, None).await?;
            // What was typed, bounded: the audit log is no place for unbounded input.
            let typed: String = email.trim().chars().take(254).collect();
            self.audit_staff(
                &typed,
                "staff.sign_in_failed",
                serde_json::json!({ "reason": "unknown email or no password set" }),
            )
            .await?;
            return Err(ServiceError::SignInFailed(SIGN_IN_FAILED.into()));
        };
        if s.disabled {
            // Disabled by a manager: the same answer, after the same work, as a wrong password.
            self.verify_secret(password, None).await?;
            self.audit_staff(&s.email, "staff.sign_in_failed", serde_json::json!({ "reason": "disabled" })).await?;
            return Err(ServiceError::SignInFailed(SIGN_IN_FAILED.into()));
        }
        let slot = self.hash_slot()?;
        let reserved = {
            let mut conn = self.store.writer().await?;
            staff_auth::reserve_attempt(&mut conn, &s.id, now, SIGN_IN_MAX_FAILURES, now + SIGN_IN_LOCK_SECONDS).await?
        };
        let Some(failures) = reserved else {
            self.verify_secret_in(slot, password, None).await?;
            self.audit_staff(&s.email, "staff.sign_in_failed", serde_json::json!({ "reason": "locked" })).await?;
            return Err(ServiceError::SignInFailed(SIGN_IN_FAILED.into()));
        };
        if !self.verify_secret_in(slot, password, s.password_hash.clone()).await? {
            self.staff_check_failed(&s, failures, "wrong password").await?;
            return Err(ServiceError::SignInFailed(SIGN_IN_FAILED.into()));
        }
        if failures >= SIGN_IN_MAX_FAILURES {
            // The right password, but on the check that reached the limit: the lock it set
            // stands (the code step could not run under it), and runs out as any lock does.
            let mut tx = self.store.begin().await?;
            let detail = serde_json::json!({ "reason": "locked at this attempt", "failures": failures });
            self.audit(&mut tx, staff_event(&s.email, "staff.sign_in_failed", detail)).await?;
            self.staff_locked(&mut tx, &s).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(ServiceError::SignInFailed(SIGN_IN_FAILED.into()));
        }
        // The password is right, but the failures stay counted until the TOTP step succeeds:
        // a stolen password must not reset the throttle on guessing codes.
        let token = SecretToken::generate("vrs");
        let offered = match s.sealed_totp {
            Some(_) => None,
            None => Some(SealedKey::seal(&self.kek, &totp_context(&s.id), TotpSecret::generate().expose())?),
        };
        let totp_setup = offered.is_some();
        let mut tx = self.store.begin().await?;
        staff_auth::create_sign_in(
            &mut tx,
            &token.hash().0,
            &s.id,
            offered.as_ref().map(|k| k.0.as_slice()),
            now,
            now + SIGN_IN_STEP_SECONDS,
        )
        .await?;
        self.audit(
            &mut tx,
            staff_event(&s.email, "staff.sign_in_password_ok", serde_json::json!({ "totp_setup": totp_setup })),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(StaffSignInStart { token: token.expose().to_string(), totp_setup })
    }

    /// A live sign-in awaiting its TOTP step, with its account.
    async fn live_staff_sign_in(
        &self,
        conn: &mut Conn,
        token: &str,
    ) -> Result<(staff_auth::PendingSignIn, staff_auth::StaffCredentials), ServiceError> {
        let presented = TokenHash::of(token);
        let p = staff_auth::sign_in(conn, &presented.0).await?.ok_or_else(start_again)?;
        if !TokenHash::from_slice(&p.token_hash).is_some_and(|s| s.matches(&presented))
            || p.completed_at.is_some()
            || p.expires_at <= self.now().unix_timestamp()
        {
            return Err(start_again());
        }
        let s = staff_auth::by_id(conn, &p.staff_id).await?.filter(|s| !s.disabled).ok_or_else(start_again)?;
        Ok((p, s))
    }

    /// Whether a live sign-in sets up TOTP (rather than asking for a code).
    pub async fn staff_sign_in_sets_up_totp(&self, token: &str) -> Result<bool, ServiceError> {
        let mut conn = self.store.conn().await?;
        let (p, _) = self.live_staff_sign_in(&mut conn, token).await?;
        Ok(p.sealed_totp.is_some())
    }

    /// The TOTP secret a first sign-in offers, as a QR code and text.
    pub async fn staff_totp_setup(&self, token: &str) -> Result<TotpSetupView, ServiceError> {
        let mut conn = self.store.conn().await?;
        let (p, s) = self.live_staff_sign_in(&mut conn, token).await?;
        let sealed =
            p.sealed_totp.ok_or_else(|| DomainError::InvalidState("two-step sign-in is already set up".into()))?;
        let secret = TotpSecret::from_bytes(&SealedKey(sealed).open(&self.kek, &totp_context(&s.id))?);
        let base32 = secret.base32();
        let uri = otpauth_uri(&s.email, &base32);
        let qr_svg = qr_svg(&uri)?;
        Ok(TotpSetupView { email: s.email, secret: base32, uri, qr_svg })
    }

    /// Sign-in step 2: the TOTP code (confirming the offered secret at the first sign-in), each
    /// step accepted once → a session token.
    pub async fn staff_verify_code(&self, token: &str, code: &str) -> Result<String, ServiceError> {
        let now = self.now().unix_timestamp();
        let (p, s) = {
            let mut conn = self.store.conn().await?;
            self.live_staff_sign_in(&mut conn, token).await?
        };
        let setup = p.sealed_totp.is_some();
        let Some(sealed) = p.sealed_totp.clone().or_else(|| s.sealed_totp.clone()) else {
            return Err(start_again());
        };
        let secret = TotpSecret::from_bytes(&SealedKey(sealed.clone()).open(&self.kek, &totp_context(&s.id))?);
        let reserved = {
            let mut conn = self.store.writer().await?;
            staff_auth::reserve_attempt(&mut conn, &s.id, now, SIGN_IN_MAX_FAILURES, now + SIGN_IN_LOCK_SECONDS).await?
        };
        let Some(failures) = reserved else {
            self.audit_staff(&s.email, "staff.sign_in_failed", serde_json::json!({ "reason": "locked" })).await?;
            return Err(start_again());
        };
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let step = secret.verify(&digits, now, 1);
        let mut tx = self.store.begin().await?;
        let accepted = match step {
            Some(step) if setup => step > s.totp_last_step,
            Some(step) => staff_auth::use_totp_step(&mut tx, &s.id, step).await?,
            None => false,
        };
        if !accepted {
            drop(tx);
            let reason = if step.is_some() { "code already used" } else { "wrong code" };
            self.staff_check_failed(&s, failures, reason).await?;
            let left = SIGN_IN_MAX_FAILURES - failures;
            if left <= 0 {
                return Err(start_again());
            }
            return Err(DomainError::invalid(
                "code",
                format!("the code is wrong or was used already; {left} attempt(s) left"),
            )
            .into());
        }
        if !staff_auth::complete_sign_in(&mut tx, &p.token_hash, now).await? {
            return Err(start_again());
        }
        if let (true, Some(step)) = (setup, step) {
            staff_auth::set_totp(&mut tx, &s.id, &sealed, step).await?;
            self.audit(&mut tx, staff_event(&s.email, "staff.totp_set_up", serde_json::json!({}))).await?;
        }
        staff_auth::clear_failures(&mut tx, &s.id).await?;
        let session = SecretToken::generate("vra");
        staff_auth::create_session(&mut tx, &session.hash().0, &s.id, now).await?;
        self.audit(&mut tx, staff_event(&s.email, "staff.signed_in", serde_json::json!({ "method": "totp" }))).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(session.expose().to_string())
    }

    /// The staff member of a live session (which counts as activity).
    pub async fn staff_session(&self, token: &str) -> Result<StaffMember, ServiceError> {
        let now = self.now().unix_timestamp();
        let presented = TokenHash::of(token);
        let unauth = || ServiceError::Unauthenticated("sign in to the vRA Manager".into());
        let found = {
            let mut conn = self.store.writer().await?;
            staff_auth::touch_session(
                &mut conn,
                &presented.0,
                now,
                now - SESSION_IDLE_SECONDS,
                now - SESSION_ABSOLUTE_SECONDS,
            )
            .await?
        };
        let (staff_id, stored) = found.ok_or_else(unauth)?;
        if !TokenHash::from_slice(&stored).is_some_and(|s| s.matches(&presented)) {
            return Err(unauth());
        }
        let mut conn = self.store.conn().await?;
        let s = staff_auth::by_id(&mut conn, &staff_id).await?.filter(|s| !s.disabled).ok_or_else(unauth)?;
        let organisations = staff_auth::organisations(&mut conn, &staff_id).await?;
        Ok(StaffMember {
            id: s.id,
            email: s.email,
            name: s.display_name,
            role: StaffRole::parse("role", &s.role)?,
            organisations,
            operator: s.operator,
        })
    }

    /// End a staff session (audited when it was live).
    pub async fn staff_sign_out(&self, token: &str) -> Result<(), ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        if let Some(staff_id) = staff_auth::end_session(&mut tx, &TokenHash::of(token).0, now).await?
            && let Some(s) = staff_auth::by_id(&mut tx, &staff_id).await?
        {
            self.audit(&mut tx, staff_event(&s.email, "staff.signed_out", serde_json::json!({}))).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_the_rules() {
        assert!(check_password("correct horse battery", "correct horse battery", "a@b.org").is_ok());
        let short = check_password("short", "short", "a@b.org").unwrap_err();
        assert!(short.to_string().contains("at least 12"));
        let long = "x".repeat(129);
        assert!(check_password(&long, &long, "a@b.org").is_err());
        assert!(check_password(&"é".repeat(128), &"é".repeat(128), "a@b.org").is_ok());
        assert!(check_password("Fiona@Example.org", "Fiona@Example.org", "fiona@example.org").is_err());
        assert!(matches!(
            check_password("correct horse battery", "correct horse batterz", "a@b.org"),
            Err(DomainError::Invalid { field: "confirm", .. })
        ));
    }

    #[test]
    fn the_otpauth_uri_names_the_account_and_issuer() {
        assert_eq!(
            otpauth_uri("ra@example.org", "JBSWY3DPEHPK3PXP"),
            "otpauth://totp/vsc:ra@example.org?secret=JBSWY3DPEHPK3PXP&issuer=vsc&algorithm=SHA1&digits=6&period=30"
        );
        assert!(otpauth_uri("o'neil+x@example.org", "A").contains("vsc:o%27neil%2Bx@example.org?"));
    }
}

//! Dual control over an enrolled holder's identity. For a holder with an enrolled card (active,
//! locked or suspended) in an organisation with `dual_control` on, the sensitive RA actions —
//! email, mobile, deleting the last active authenticator, unlock, restart, resume — are recorded
//! as change requests (an intent with exactly what to apply) instead of being applied. A second
//! staff member commits the intent: a manager covering the holder's organisation, or an operator,
//! never the requester. The approval re-checks the intent against the holder as they are now,
//! applies it, tells the holder at the old address (and old mobile) with a "This was not me" link,
//! and audits requester, approver, old and new values — all in one transaction. Requests expire
//! after 72 hours. The `vsc admin` console is the installation's root and acts at once.

mod apply;
mod notice;
mod policy;

use vsc_core::change_request::{self as rules, ApprovalRefusal, Approver, ChangeAction, ChangeState};
use vsc_core::{AuditRecord, DomainError, StaffRole};
use vsc_proto::{ChangeApproved, ChangeRequestView};
use vsc_store::change_requests::{self as store, ChangeRequestRow, NewChangeRequest};
use vsc_store::users::UserRow;
use vsc_store::{Conn, StoreError};

use super::views::uuid;
use super::{Principal, Vsc, new_id, ts};
use crate::ServiceError;
use crate::error::DualControlRefusal;

pub use notice::NotMePage;

/// Requests a list shows at most.
const LIST_LIMIT: i64 = 200;

/// What a dual-controlled action did: applied now, or waiting for approval.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Applied at once (dual control off, holder not enrolled, or the operator's console).
    Done(T),
    /// Recorded as change requests (one per sensitive change).
    Requested(Vec<ChangeRequestView>),
}

impl<T> Outcome<T> {
    /// The applied result; a request waiting for approval is an error here (for callers that
    /// always act at once, such as the operator's console).
    pub fn applied(self) -> Result<T, ServiceError> {
        match self {
            Outcome::Done(v) => Ok(v),
            Outcome::Requested(_) => {
                Err(DomainError::InvalidState("the action waits for approval by another staff member".into()).into())
            }
        }
    }
}

/// A string field of a request payload's `detail` (what approvers see: old, new, name …).
fn detail_str<'a>(payload: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    payload.get("detail").and_then(|d| d.get(name)).and_then(serde_json::Value::as_str)
}

/// The wire view of a stored request (`now` decides whether a pending one has expired).
pub(crate) fn view(r: &ChangeRequestRow, now: i64) -> Result<ChangeRequestView, ServiceError> {
    let state = ChangeState::parse("state", &r.state)?.effective(r.expires_at, now);
    let payload: serde_json::Value = serde_json::from_str(&r.payload).unwrap_or_default();
    Ok(ChangeRequestView {
        id: uuid(&r.id)?,
        action: r.action.clone(),
        state: state.as_str().to_string(),
        user_id: uuid(&r.user_id)?,
        user_name: r.user_name.clone(),
        organisation: r.org_code.clone(),
        target: r.target.clone(),
        detail: payload.get("detail").cloned().unwrap_or_default(),
        requested_by: r.requested_by_email.clone(),
        requested_at: ts(r.requested_at),
        expires_at: ts(r.expires_at),
        decided_by: r.decided_by_email.clone(),
        decided_at: r.decided_at.map(ts),
        reason: r.reason.clone(),
    })
}

fn staff_email(who: &Principal) -> String {
    match who {
        Principal::Operator => "operator".into(),
        Principal::Staff { email, .. } => email.clone(),
    }
}

fn not_found() -> ServiceError {
    ServiceError::not_found("id", "there is no change request with this id in your organisations")
}

impl Vsc {
    /// Whether an RA action by `who` on this holder needs a second staff member: the holder has an
    /// enrolled card and their organisation has dual control on. The console acts at once.
    pub(crate) async fn needs_approval(
        &self,
        conn: &mut Conn,
        who: &Principal,
        user: &UserRow,
    ) -> Result<bool, ServiceError> {
        if matches!(who, Principal::Operator) {
            return Ok(false);
        }
        Ok(store::dual_control(conn, &user.org_id).await? && store::holder_enrolled(conn, &user.id).await?)
    }

    /// Record a change request by `who` on `user` (caller's transaction, audited
    /// `change_request.created`). `payload` carries what the approval applies; its `detail` is
    /// what approvers see. A live request for the same action and target is a conflict.
    pub(crate) async fn request_change(
        &self,
        tx: &mut Conn,
        who: &Principal,
        user: &UserRow,
        action: ChangeAction,
        target: &str,
        payload: serde_json::Value,
    ) -> Result<ChangeRequestView, ServiceError> {
        let now = self.now().unix_timestamp();
        store::expire_stale(tx, &user.id, action.as_str(), target, now).await?;
        if store::live(tx, &user.id, action.as_str(), target, now).await?.is_some() {
            return Err(ServiceError::conflict(
                "change_request",
                format!("a request to {} is already waiting for approval", action.label().to_lowercase()),
            ));
        }
        let id = new_id();
        let requester = staff_email(who);
        let payload_text = payload.to_string();
        store::insert(
            tx,
            &NewChangeRequest {
                id: &id,
                org_id: &user.org_id,
                user_id: &user.id,
                action: action.as_str(),
                target,
                payload: &payload_text,
                requested_by: who.staff_id().unwrap_or(""),
                requested_by_email: &requester,
                requested_at: now,
                expires_at: now + rules::PENDING_SECONDS,
            },
        )
        .await?;
        self.audit(
            tx,
            AuditRecord {
                actor: who.actor(),
                action: "change_request.created",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({
                    "change_request": id,
                    "action": action.as_str(),
                    "target": target,
                    "requested_by": requester,
                    "detail": payload.get("detail"),
                })
                .to_string(),
            },
        )
        .await?;
        let row = store::by_id(tx, &id).await?.ok_or_else(|| StoreError::Corrupt("change request vanished".into()))?;
        view(&row, now)
    }

    /// The viewer filter of the store: "" (every organisation) for operators, else the staff id.
    fn change_viewer<'a>(&self, who: &'a Principal) -> &'a str {
        if who.is_operator() { "" } else { who.staff_id().unwrap_or("") }
    }

    /// Change requests in the caller's organisations (every organisation for operators) in
    /// `state` (default `pending`), newest first.
    pub async fn list_change_requests(
        &self,
        who: &Principal,
        state: Option<&str>,
    ) -> Result<Vec<ChangeRequestView>, ServiceError> {
        let state = ChangeState::parse("state", state.unwrap_or("pending"))?;
        let now = self.now().unix_timestamp();
        let mut conn = self.store.conn().await?;
        let rows = store::list(&mut conn, self.change_viewer(who), state.as_str(), now, LIST_LIMIT).await?;
        rows.iter().map(|r| view(r, now)).collect()
    }

    /// How many pending requests the staff member of a vRA Manager session sees (0 without a live
    /// session); reads the session without counting it as activity.
    pub async fn pending_change_count_for_session(&self, token: &str) -> Result<i64, ServiceError> {
        use super::staff_auth::{SESSION_ABSOLUTE_SECONDS, SESSION_IDLE_SECONDS};
        let now = self.now().unix_timestamp();
        let mut conn = self.store.conn().await?;
        Ok(store::pending_count_for_session(
            &mut conn,
            &vsc_crypto::TokenHash::of(token).0,
            now,
            now - SESSION_IDLE_SECONDS,
            now - SESSION_ABSOLUTE_SECONDS,
        )
        .await?)
    }

    /// A request the caller may see, in the caller's transaction.
    async fn visible_change(
        &self,
        conn: &mut Conn,
        who: &Principal,
        id: &str,
    ) -> Result<ChangeRequestRow, ServiceError> {
        let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| not_found())?.to_string();
        let row = store::by_id(conn, &id).await?.ok_or_else(not_found)?;
        if who.is_operator() || self.ensure_org(conn, who, &row.org_id).await? {
            return Ok(row);
        }
        Err(not_found())
    }

    /// Approve a pending request: dual control's rule (not the requester; a manager covering the
    /// holder's organisation, or an operator) is checked, then committed by a conditional update
    /// in this transaction, the intent is re-checked and applied, the holder is told at the old
    /// address, and the approval is audited with requester, approver, old and new values.
    pub async fn approve_change_request(&self, who: &Principal, id: &str) -> Result<ChangeApproved, ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let row = self.visible_change(&mut tx, who, id).await?;
        let state = ChangeState::parse("state", &row.state)?.effective(row.expires_at, now);
        if state != ChangeState::Pending {
            return Err(ServiceError::dual_control(
                DualControlRefusal::NotPending,
                format!("this request is {}, not pending", state.as_str()),
            ));
        }
        let covers = match who.staff_id() {
            Some(staff) => vsc_store::staff::is_granted(&mut tx, staff, &row.org_id).await?,
            None => true,
        };
        let approver = Approver {
            staff_id: who.staff_id(),
            manager: matches!(who, Principal::Staff { role: StaffRole::Manager, .. }),
            operator: who.is_operator(),
            covers_organisation: covers,
        };
        match rules::check_approver(&row.requested_by, approver) {
            Ok(()) => {}
            Err(ApprovalRefusal::OwnRequest) => {
                return Err(ServiceError::dual_control(
                    DualControlRefusal::OwnRequest,
                    "you asked for this change: another RA manager must approve it",
                ));
            }
            Err(ApprovalRefusal::NotAnApprover) => {
                return Err(ServiceError::dual_control(
                    DualControlRefusal::NotAnApprover,
                    "only an RA manager of the holder's organisation, or an operator, approves changes",
                ));
            }
        }
        let approver_email = staff_email(who);
        if !store::approve(&mut tx, &row.id, who.staff_id().unwrap_or(""), &approver_email, now).await? {
            return Err(ServiceError::dual_control(
                DualControlRefusal::NotPending,
                "this request was decided or expired meanwhile",
            ));
        }
        let action = ChangeAction::parse(&row.action)
            .ok_or_else(|| StoreError::Corrupt(format!("change request action {:?}", row.action)))?;
        let payload: serde_json::Value = serde_json::from_str(&row.payload)
            .map_err(|e| StoreError::Corrupt(format!("change request payload: {e}")))?;
        let user = vsc_store::users::by_id(&mut tx, &row.user_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("change request without holder".into()))?;
        let result = self.apply_change(&mut tx, who, &user, action, &row.target, &payload).await?;
        self.notify_change_approved(&mut tx, &user, &row, action, &payload).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "change_request.approved",
                org_id: Some(row.org_id.clone()),
                target: Some(format!("user:{}", row.user_id)),
                detail: serde_json::json!({
                    "change_request": row.id,
                    "action": row.action,
                    "target": row.target,
                    "requested_by": row.requested_by_email,
                    "approved_by": approver_email,
                    "detail": payload.get("detail"),
                })
                .to_string(),
            },
        )
        .await?;
        let decided = store::by_id(&mut tx, &row.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("change request vanished".into()))?;
        let change_request = view(&decided, now)?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(ChangeApproved { change_request, result })
    }

    /// Reject a pending request with a reason (a manager covering the holder's organisation or an
    /// operator), or withdraw one's own; audited with the reason.
    pub async fn reject_change_request(
        &self,
        who: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<ChangeRequestView, ServiceError> {
        let reason = rules::rejection_reason(reason)?;
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let row = self.visible_change(&mut tx, who, id).await?;
        let own = who.staff_id().is_some_and(|s| s == row.requested_by);
        let manager = matches!(who, Principal::Staff { role: StaffRole::Manager, .. });
        if !own && !manager && !who.is_operator() {
            return Err(ServiceError::dual_control(
                DualControlRefusal::NotAnApprover,
                "only an RA manager of the holder's organisation, an operator, or the requester rejects a request",
            ));
        }
        let by = staff_email(who);
        if !store::reject(&mut tx, &row.id, &by, now, &reason).await? {
            let state = ChangeState::parse("state", &row.state)?.effective(row.expires_at, now);
            return Err(ServiceError::dual_control(
                DualControlRefusal::NotPending,
                format!("this request is {}, not pending", state.as_str()),
            ));
        }
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: if own { "change_request.withdrawn" } else { "change_request.rejected" },
                org_id: Some(row.org_id.clone()),
                target: Some(format!("user:{}", row.user_id)),
                detail: serde_json::json!({
                    "change_request": row.id,
                    "action": row.action,
                    "requested_by": row.requested_by_email,
                    "rejected_by": by,
                    "reason": reason,
                })
                .to_string(),
            },
        )
        .await?;
        let decided = store::by_id(&mut tx, &row.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("change request vanished".into()))?;
        let out = view(&decided, now)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(out)
    }

    /// Renewal certifies verified identity only: refused while a change request on the holder waits.
    pub(crate) async fn refuse_if_change_pending(&self, conn: &mut Conn, user_id: &str) -> Result<(), ServiceError> {
        if store::has_pending(conn, user_id, self.now().unix_timestamp()).await? {
            return Err(DomainError::InvalidState(
                "a change to this holder is waiting for approval; approve or reject it before renewing".into(),
            )
            .into());
        }
        Ok(())
    }
}

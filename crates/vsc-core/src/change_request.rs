//! Dual control over a holder's identity: a sensitive RA action on an enrolled holder is an
//! intent (a change request) that a second staff member commits. The rules of who may approve
//! live here; the service applies them with a conditional update inside the approval's
//! transaction, so two approvers cannot both commit and the requester never can.

use crate::DomainError;

/// How long a change request waits for its approval.
pub const PENDING_SECONDS: i64 = 72 * 60 * 60;
/// How long the "This was not me" link in the holder's notice works.
pub const NOT_ME_SECONDS: i64 = 7 * 24 * 60 * 60;

/// The RA actions that need a second staff member for an enrolled holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    /// A new email address.
    Email,
    /// A new (or no) mobile number.
    Mobile,
    /// Deleting the holder's last active authenticator.
    DeleteLastDevice,
    /// An RA unlock: a reset link that skips the security questions.
    Unlock,
    /// Restarting the issuance of a card (new keys, new invitation).
    Restart,
    /// Resuming a suspended card.
    Resume,
}

impl ChangeAction {
    /// Every action, in the order pages list them.
    pub const ALL: [ChangeAction; 6] = [
        ChangeAction::Email,
        ChangeAction::Mobile,
        ChangeAction::DeleteLastDevice,
        ChangeAction::Unlock,
        ChangeAction::Restart,
        ChangeAction::Resume,
    ];

    /// Stored / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Email => "email_change",
            ChangeAction::Mobile => "mobile_change",
            ChangeAction::DeleteLastDevice => "device_delete",
            ChangeAction::Unlock => "unlock",
            ChangeAction::Restart => "restart",
            ChangeAction::Resume => "resume",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        ChangeAction::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// What the action does, for people ("change the email address").
    pub fn label(self) -> &'static str {
        match self {
            ChangeAction::Email => "Change the email address",
            ChangeAction::Mobile => "Change the mobile number",
            ChangeAction::DeleteLastDevice => "Delete the last authenticator",
            ChangeAction::Unlock => "Unlock the card",
            ChangeAction::Restart => "Restart the card's issuance",
            ChangeAction::Resume => "Resume the suspended card",
        }
    }
}

/// Where a change request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeState {
    /// Waiting for a second staff member.
    Pending,
    /// Approved and applied.
    Approved,
    /// Rejected (or withdrawn by its requester).
    Rejected,
    /// Not approved within [`PENDING_SECONDS`].
    Expired,
}

impl ChangeState {
    /// Stored / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeState::Pending => "pending",
            ChangeState::Approved => "approved",
            ChangeState::Rejected => "rejected",
            ChangeState::Expired => "expired",
        }
    }

    /// Parse a stored or requested name.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, DomainError> {
        Ok(match s.trim() {
            "pending" => ChangeState::Pending,
            "approved" => ChangeState::Approved,
            "rejected" => ChangeState::Rejected,
            "expired" => ChangeState::Expired,
            other => {
                return Err(DomainError::invalid(
                    field,
                    format!("{other:?} is not a state (pending, approved, rejected or expired)"),
                ));
            }
        })
    }

    /// The state shown: a pending request past its expiry reads `expired`.
    pub fn effective(self, expires_at: i64, now: i64) -> ChangeState {
        if self == ChangeState::Pending && now >= expires_at { ChangeState::Expired } else { self }
    }
}

/// The staff member who would approve.
#[derive(Debug, Clone, Copy)]
pub struct Approver<'a> {
    /// Their staff id (`None`: the installation's operator at the command line).
    pub staff_id: Option<&'a str>,
    /// An RA manager.
    pub manager: bool,
    /// A service-wide operator.
    pub operator: bool,
    /// They are granted the holder's organisation.
    pub covers_organisation: bool,
}

/// Why a staff member may not approve a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalRefusal {
    /// The requester cannot approve their own request.
    OwnRequest,
    /// Only a manager of the holder's organisation, or an operator, approves.
    NotAnApprover,
}

/// Dual control's rule: the approver is not the requester, and is an operator or a manager
/// covering the holder's organisation.
pub fn check_approver(requested_by: &str, approver: Approver<'_>) -> Result<(), ApprovalRefusal> {
    if approver.staff_id == Some(requested_by) {
        return Err(ApprovalRefusal::OwnRequest);
    }
    if approver.operator || (approver.manager && approver.covers_organisation) {
        return Ok(());
    }
    Err(ApprovalRefusal::NotAnApprover)
}

/// A rejection reason: 1 to 500 characters after trimming.
pub fn rejection_reason(input: &str) -> Result<String, DomainError> {
    let r = input.trim();
    if r.is_empty() || r.chars().count() > 500 || r.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DomainError::invalid("reason", "give a reason of 1 to 500 characters"));
    }
    Ok(r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approver(id: &str, manager: bool, operator: bool, covers: bool) -> Approver<'_> {
        Approver { staff_id: Some(id), manager, operator, covers_organisation: covers }
    }

    #[test]
    fn the_requester_never_approves_their_own_request() {
        assert_eq!(check_approver("a", approver("a", true, true, true)), Err(ApprovalRefusal::OwnRequest));
        assert_eq!(check_approver("a", approver("a", false, false, true)), Err(ApprovalRefusal::OwnRequest));
    }

    #[test]
    fn managers_of_the_organisation_and_operators_approve() {
        assert_eq!(check_approver("a", approver("b", true, false, true)), Ok(()));
        assert_eq!(check_approver("a", approver("b", false, true, false)), Ok(()));
        assert_eq!(check_approver("a", approver("b", true, false, false)), Err(ApprovalRefusal::NotAnApprover));
        assert_eq!(check_approver("a", approver("b", false, false, true)), Err(ApprovalRefusal::NotAnApprover));
        let console = Approver { staff_id: None, manager: false, operator: true, covers_organisation: true };
        assert_eq!(check_approver("a", console), Ok(()));
    }

    #[test]
    fn names_round_trip_and_pending_expires() {
        for a in ChangeAction::ALL {
            assert_eq!(ChangeAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(ChangeAction::parse("email"), None);
        assert_eq!(ChangeState::Pending.effective(100, 99), ChangeState::Pending);
        assert_eq!(ChangeState::Pending.effective(100, 100), ChangeState::Expired);
        assert_eq!(ChangeState::Approved.effective(100, 200), ChangeState::Approved);
        assert!(ChangeState::parse("state", "done").is_err());
        assert!(rejection_reason("  ").is_err());
        assert_eq!(rejection_reason(" not verified ").ok().as_deref(), Some("not verified"));
        assert!(rejection_reason(&"x".repeat(501)).is_err());
    }
}

//! The RA's reports (`/ra/pending`, `/ra/expiring` and their JSON mirrors under
//! `/api/v1/reports`), limited to the caller's organisations.

use vsc_core::DomainError;
use vsc_proto::{ExpiringCard, ExpiringQuery, ExpiringReport, PendingReport, PendingUser};
use vsc_store::Conn;
use vsc_store::organisations;
use vsc_store::ra_reports::{self, ExpiringSort};

use super::{Principal, Vsc, ts};
use crate::ServiceError;

/// The most rows a report holds (the rest is flagged as truncated).
pub const REPORT_ROWS: i64 = 10_000;
/// The expiring-cards window when none is given, in days.
pub const DEFAULT_EXPIRY_DAYS: u32 = 30;
/// The longest expiring-cards window, in days.
pub const MAX_EXPIRY_DAYS: u32 = 365;

const DAY: i64 = 86_400;

/// Parse the expiring-cards window: empty means the default, otherwise a whole number 1–365.
pub fn expiry_days(v: Option<&str>) -> Result<u32, DomainError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_EXPIRY_DAYS),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_EXPIRY_DAYS).contains(&n) => Ok(n),
            _ => Err(DomainError::invalid("days", format!("days must be a whole number from 1 to {MAX_EXPIRY_DAYS}"))),
        },
    }
}

/// Parse the expiring-cards order: (`expiry` | `name`, `asc` | `desc`), default soonest first.
pub fn expiry_sort(sort: Option<&str>, dir: Option<&str>) -> Result<(ExpiringSort, bool), DomainError> {
    let sort = match sort.map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("expiry") => ExpiringSort::Expiry,
        Some("name") => ExpiringSort::Name,
        Some(_) => return Err(DomainError::invalid("sort", "sort must be expiry or name")),
    };
    let descending = match dir.map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(DomainError::invalid("dir", "dir must be asc or desc")),
    };
    Ok((sort, descending))
}

impl Vsc {
    /// The organisation ids the principal may see (all, for the operator).
    async fn report_org_ids(&self, conn: &mut Conn, who: &Principal) -> Result<Vec<String>, ServiceError> {
        let orgs = match who.staff_id() {
            Some(staff) => organisations::for_staff(conn, staff).await?,
            None => organisations::all(conn).await?,
        };
        Ok(orgs.into_iter().map(|o| o.id).collect())
    }

    /// Users of the caller's organisations with a card issued but not yet enrolled, newest
    /// invitation first.
    pub async fn pending_report(&self, who: &Principal) -> Result<PendingReport, ServiceError> {
        let mut conn = self.store.conn().await?;
        let org_ids = self.report_org_ids(&mut conn, who).await?;
        let found = ra_reports::pending(&mut conn, &org_ids, REPORT_ROWS).await?;
        Ok(PendingReport {
            users: found
                .rows
                .into_iter()
                .map(|r| PendingUser {
                    user_id: r.user_id,
                    name: r.display_name,
                    email: r.email,
                    organisation: r.org_code,
                    serial: r.serial,
                    card_type: r.card_type,
                    invited_at: ts(r.invited_at),
                    reminded_at: r.reminded_at.map(ts),
                    link_expires_at: ts(r.link_expires_at),
                })
                .collect(),
            truncated: found.truncated,
        })
    }

    /// Cards (not revoked) of the caller's organisations expiring within `days` days.
    pub async fn expiring_report(&self, who: &Principal, q: &ExpiringQuery) -> Result<ExpiringReport, ServiceError> {
        let days = expiry_days(q.days.as_deref())?;
        let (sort, descending) = expiry_sort(q.sort.as_deref(), q.dir.as_deref())?;
        let now = self.now().unix_timestamp();
        let until = now.saturating_add(i64::from(days).saturating_mul(DAY));
        let mut conn = self.store.conn().await?;
        let org_ids = self.report_org_ids(&mut conn, who).await?;
        let found = ra_reports::expiring(&mut conn, &org_ids, now, until, sort, descending, REPORT_ROWS).await?;
        Ok(ExpiringReport {
            days,
            cards: found
                .rows
                .into_iter()
                .map(|r| ExpiringCard {
                    user_id: r.user_id,
                    name: r.display_name,
                    email: r.email,
                    organisation: r.org_code,
                    serial: r.serial,
                    card_type: r.card_type,
                    state: r.state,
                    expires_at: ts(r.expires_at),
                    days_left: r.expires_at.saturating_sub(now).div_euclid(DAY),
                })
                .collect(),
            truncated: found.truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_and_bounds() {
        assert_eq!(expiry_days(None).unwrap(), 30);
        assert_eq!(expiry_days(Some(" ")).unwrap(), 30);
        assert_eq!(expiry_days(Some("1")).unwrap(), 1);
        assert_eq!(expiry_days(Some("365")).unwrap(), 365);
        for bad in ["0", "366", "-1", "abc", "7.5"] {
            assert!(expiry_days(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn sort_parses() {
        assert_eq!(expiry_sort(None, None).unwrap(), (ExpiringSort::Expiry, false));
        assert_eq!(expiry_sort(Some("name"), Some("desc")).unwrap(), (ExpiringSort::Name, true));
        assert!(expiry_sort(Some("email"), None).is_err());
        assert!(expiry_sort(None, Some("up")).is_err());
    }
}

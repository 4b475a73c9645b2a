//! The RA's users search (`GET /api/v1/users`), limited to the caller's organisations.

use vsc_core::DomainError;
use vsc_proto::{UserCardSummary, UserListItem, UserSearchPage, UserSearchQuery};
use vsc_store::organisations;
use vsc_store::user_search::{self, EnrolmentFilter, MAX_PER_PAGE, MIN_TEXT_CHARS, UserQuery, UserSort};

use super::{Principal, Vsc, ts};
use crate::ServiceError;

/// The largest page number (deeper pages cost more than a search refined by text or filters).
const MAX_PAGE: u32 = 10_000;

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn one_of(field: &'static str, v: &Option<String>, allowed: &[&str]) -> Result<Option<String>, DomainError> {
    match given(v) {
        None => Ok(None),
        Some(s) if allowed.contains(&s) => Ok(Some(s.to_string())),
        Some(_) => Err(DomainError::invalid(field, format!("{field} must be one of {}", allowed.join(", ")))),
    }
}

fn number(field: &'static str, v: &Option<String>, default: u32, max: u32) -> Result<u32, DomainError> {
    match given(v) {
        None => Ok(default),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(DomainError::invalid(field, format!("{field} must be a number from 1 to {max}"))),
        },
    }
}

impl Vsc {
    /// Search the users of the caller's organisations (all organisations for the operator).
    pub async fn search_users(&self, who: &Principal, p: &UserSearchQuery) -> Result<UserSearchPage, ServiceError> {
        let text = given(&p.q).map(str::to_string);
        if let Some(t) = &text
            && t.chars().count() < MIN_TEXT_CHARS
        {
            return Err(DomainError::invalid("q", format!("search for at least {MIN_TEXT_CHARS} characters")).into());
        }
        let sort = match given(&p.sort) {
            None => UserSort::Name,
            Some(s) => UserSort::parse(s).ok_or_else(|| {
                DomainError::invalid(
                    "sort",
                    "sort must be one of name, email, organisation, created, last_active, card_expiry",
                )
            })?,
        };
        let descending = match given(&p.dir) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(DomainError::invalid("dir", "dir must be asc or desc").into()),
        };
        let enrolment = match given(&p.enrolment) {
            None => None,
            Some(s) => Some(EnrolmentFilter::parse(s).ok_or_else(|| {
                DomainError::invalid("enrolment", "enrolment must be one of pending, enrolled, none")
            })?),
        };
        let card_state = one_of("card_state", &p.card_state, &["issued", "active", "locked", "suspended", "revoked"])?;
        let card_type = one_of("card_type", &p.card_type, &["v1", "v2"])?;
        let page = number("page", &p.page, 1, MAX_PAGE)?;
        let per_page = number("per_page", &p.per_page, 50, MAX_PER_PAGE)?;

        let mut conn = self.store.conn().await?;
        let mine = match who.staff_id() {
            Some(staff) => Some(organisations::for_staff(&mut conn, staff).await?),
            None => None,
        };
        let org_ids = match given(&p.organisation) {
            Some(code) => {
                let org = organisations::by_code(&mut conn, code)
                    .await?
                    .filter(|o| mine.as_ref().is_none_or(|mine| mine.iter().any(|m| m.id == o.id)));
                match org {
                    Some(o) => Some(vec![o.id]),
                    None => {
                        return Err(ServiceError::not_found(
                            "organisation",
                            format!("no organisation {code} among yours"),
                        ));
                    }
                }
            }
            None => mine.map(|m| m.into_iter().map(|o| o.id).collect()),
        };
        let query = UserQuery { text, org_ids, card_state, card_type, enrolment, sort, descending, page, per_page };
        let found = user_search::search(&mut conn, &query).await?;
        Ok(UserSearchPage {
            users: found
                .rows
                .into_iter()
                .map(|r| UserListItem {
                    id: r.id,
                    forename: r.forename,
                    surname: r.surname,
                    subject_cn: r.subject_cn,
                    display_name: r.display_name,
                    email: r.email,
                    organisation: r.org_code,
                    created_at: ts(r.created_at),
                    last_active_at: r.last_active_at.map(ts),
                    next_card_expiry: r.next_card_expiry.map(ts),
                    cards: r
                        .cards
                        .into_iter()
                        .map(|c| UserCardSummary {
                            serial: c.serial,
                            state: c.state,
                            card_type: c.card_type,
                            expires_at: ts(c.expires_at),
                        })
                        .collect(),
                })
                .collect(),
            total: found.total,
            total_capped: found.total_capped,
            page,
            per_page,
        })
    }
}

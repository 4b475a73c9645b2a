//! The parts of the users list that are not HTTP: the search as the page's links carry it,
//! sortable column headers, table rows and the pagination summary.

use vsc_proto::{UserListItem, UserSearchQuery};

use crate::portals::{date, date_time};

/// A column of a sortable table: its heading and the sort key its header link asks for.
pub struct Column {
    /// Heading.
    pub label: &'static str,
    /// Sort key (`sort=`).
    pub key: &'static str,
}

/// A column header: a link sorting by the column (the other way round when it is the sort
/// column), with `aria-sort` and an arrow on the active one.
pub struct SortHeader {
    /// Heading.
    pub label: &'static str,
    /// Where the link goes.
    pub href: String,
    /// `ascending` / `descending` on the sort column.
    pub aria_sort: Option<&'static str>,
    /// `▲` / `▼` on the sort column.
    pub arrow: &'static str,
    /// What the link does, for screen readers.
    pub action: String,
}

/// The search as filled in (trimmed; empty when not given), from which every link is built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    /// Text.
    pub q: String,
    /// Organisation code.
    pub organisation: String,
    /// Card state.
    pub card_state: String,
    /// Card type.
    pub card_type: String,
    /// Enrolment state.
    pub enrolment: String,
    /// Sort key (`name` when not given).
    pub sort: String,
    /// `asc` / `desc`.
    pub dir: String,
    /// Page as written.
    pub page: String,
}

fn given(v: &Option<String>) -> String {
    v.as_deref().map(str::trim).unwrap_or_default().to_string()
}

impl From<&UserSearchQuery> for Search {
    fn from(q: &UserSearchQuery) -> Self {
        let sort = given(&q.sort);
        let dir = given(&q.dir);
        Search {
            q: given(&q.q),
            organisation: given(&q.organisation),
            card_state: given(&q.card_state),
            card_type: given(&q.card_type),
            enrolment: given(&q.enrolment),
            sort: if sort.is_empty() { "name".into() } else { sort },
            dir: if dir == "desc" { dir } else { "asc".into() },
            page: given(&q.page),
        }
    }
}

/// Percent-encode a query value (everything but RFC 3986 unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Search {
    /// The 1-based page asked for (1 when missing or not a number).
    pub fn page_number(&self) -> u32 {
        self.page.parse::<u32>().ok().filter(|p| *p >= 1).unwrap_or(1)
    }

    /// Whether any text or filter narrows the list.
    pub fn is_filtered(&self) -> bool {
        [&self.q, &self.organisation, &self.card_state, &self.card_type, &self.enrolment].iter().any(|v| !v.is_empty())
    }

    /// The list with this search, sorted by `sort` in `dir`, at `page` (defaults left out).
    pub fn href(&self, sort: &str, dir: &str, page: u32) -> String {
        let page = page.to_string();
        let pairs = [
            ("q", self.q.as_str()),
            ("organisation", &self.organisation),
            ("card_state", &self.card_state),
            ("card_type", &self.card_type),
            ("enrolment", &self.enrolment),
            ("sort", if sort == "name" { "" } else { sort }),
            ("dir", if dir == "asc" { "" } else { dir }),
            ("page", if page == "1" { "" } else { &page }),
        ];
        let query: Vec<String> =
            pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", encode(v))).collect();
        if query.is_empty() { "/ra".to_string() } else { format!("/ra?{}", query.join("&")) }
    }
}

/// The headers of `columns` for the list sorted as in `search` (a new sort starts on page 1).
pub fn sort_headers(search: &Search, columns: &[Column]) -> Vec<SortHeader> {
    columns
        .iter()
        .map(|c| {
            let active = c.key == search.sort;
            let descending = search.dir == "desc";
            let next_dir = if active && !descending { "desc" } else { "asc" };
            let (aria_sort, arrow) = match (active, descending) {
                (false, _) => (None, ""),
                (true, false) => (Some("ascending"), "▲"),
                (true, true) => (Some("descending"), "▼"),
            };
            let order = if next_dir == "asc" { "ascending" } else { "descending" };
            SortHeader {
                label: c.label,
                href: search.href(c.key, next_dir, 1),
                aria_sort,
                arrow,
                action: format!("Sort by {} {order}", c.label.to_lowercase()),
            }
        })
        .collect()
}

/// A card in a row of the users list.
pub struct CardCell {
    /// Serial.
    pub serial: String,
    /// `V1` / `V2`.
    pub card_type: String,
    /// Stored state.
    pub state: String,
    /// Expiry date.
    pub expires: String,
}

/// A row of the users list.
pub struct UserLine {
    /// User id (for the link to the user page).
    pub id: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub name: String,
    /// Email.
    pub email: String,
    /// Organisation code.
    pub organisation: String,
    /// The user's cards.
    pub cards: Vec<CardCell>,
    /// Creation date.
    pub created: String,
    /// Last card login, or "Never".
    pub last_active: String,
}

impl From<&UserListItem> for UserLine {
    fn from(u: &UserListItem) -> Self {
        UserLine {
            id: u.id.clone(),
            name: u.display_name.clone(),
            email: u.email.clone(),
            organisation: u.organisation.clone(),
            cards: u
                .cards
                .iter()
                .map(|c| CardCell {
                    serial: c.serial.clone(),
                    card_type: c.card_type.to_uppercase(),
                    state: c.state.clone(),
                    expires: date(c.expires_at),
                })
                .collect(),
            created: date(u.created_at),
            last_active: u.last_active_at.map_or_else(|| "Never".to_string(), date_time),
        }
    }
}

/// Pages needed for `total` rows.
pub fn page_count(total: i64, per_page: u32) -> i64 {
    let per_page = i64::from(per_page.max(1));
    (total + per_page - 1) / per_page
}

/// "12 users · page 1 of 1", or "10000+ users · page 3" when the count is capped.
pub fn summary(total: i64, capped: bool, page: u32, pages: i64) -> String {
    let users = if total == 1 { "user" } else { "users" };
    if capped {
        format!("{total}+ users · page {page}")
    } else {
        format!("{total} {users} · page {page} of {}", pages.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_search_and_leave_out_defaults() {
        let s = Search {
            q: "o'neill & co".into(),
            card_type: "v2".into(),
            sort: "name".into(),
            dir: "asc".into(),
            ..Search::default()
        };
        assert_eq!(s.href("name", "asc", 1), "/ra?q=o%27neill%20%26%20co&card_type=v2");
        assert_eq!(s.href("email", "desc", 3), "/ra?q=o%27neill%20%26%20co&card_type=v2&sort=email&dir=desc&page=3");
        assert_eq!(Search::default().href("name", "asc", 1), "/ra");
    }

    #[test]
    fn the_sort_column_toggles_and_others_start_ascending() {
        let s = Search { sort: "email".into(), dir: "asc".into(), ..Search::default() };
        let cols = [Column { label: "Name", key: "name" }, Column { label: "Email", key: "email" }];
        let h = sort_headers(&s, &cols);
        assert_eq!(h.len(), 2);
        assert!(
            h.iter().any(|x| x.label == "Email" && x.aria_sort == Some("ascending") && x.href.contains("dir=desc"))
        );
        assert!(h.iter().any(|x| x.label == "Name" && x.aria_sort.is_none() && x.href == "/ra"));
    }

    #[test]
    fn summaries_say_when_the_count_is_capped() {
        assert_eq!(page_count(0, 25), 0);
        assert_eq!(page_count(26, 25), 2);
        assert_eq!(summary(26, false, 2, 2), "26 users · page 2 of 2");
        assert_eq!(summary(0, false, 1, 0), "0 users · page 1 of 1");
        assert_eq!(summary(10_000, true, 3, 400), "10000+ users · page 3");
    }
}

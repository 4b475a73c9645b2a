//! The RA's users search: one text matched anywhere (case-insensitively) in
//! `<FORENAME> <SURNAME> (<SUBJECTCN>)`, email, UUID and card serials; filters; sorting by any
//! column; pages. It stays fast at a million users:
//!
//! - with text, the candidates come from a trigram index (an FTS5 `trigram` table on SQLite,
//!   `pg_trgm` GIN on PostgreSQL, both kept by triggers of migrations 0009 and 0014), so the text
//!   needs at least [`MIN_TEXT_CHARS`] characters (shorter text is refused, never scanned). On
//!   SQLite the index returns only the caller's organisations (each one a range of document
//!   numbers) and a page is sorted on the narrow search documents, which carry the sort columns;
//!   on PostgreSQL the GIN index covers the organisation too, so it returns only theirs;
//! - without text, each of the caller's organisations is read in sort order from an index led by
//!   the organisation (one per sortable column), only as far as the page, and the branches merged.
//!
//! `total` is exact up to [`COUNT_CAP`] matches; beyond that it is the cap and `total_capped` is set.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Column, Row};

use crate::{Backend, Conn, StoreError};

/// Search text shorter than this cannot use a trigram index, so it is refused.
pub const MIN_TEXT_CHARS: usize = 3;
/// Matches are counted up to this many (counting more costs time and helps nobody).
pub const COUNT_CAP: i64 = 10_000;
/// The largest page.
pub const MAX_PER_PAGE: u32 = 200;

/// Column to sort by; ties are broken by the user's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    /// Surname, then forename.
    #[default]
    Name,
    /// Email (case-insensitively).
    Email,
    /// Organisation code, then surname and forename.
    Organisation,
    /// Creation time.
    Created,
    /// Last successful card login (never-active users first when ascending).
    LastActive,
    /// Earliest expiry among the user's cards that are not revoked (users without one first).
    CardExpiry,
}

impl UserSort {
    /// Parse the wire name (`name`, `email`, `organisation`, `created`, `last_active`, `card_expiry`).
    pub fn parse(s: &str) -> Option<UserSort> {
        Some(match s {
            "name" => UserSort::Name,
            "email" => UserSort::Email,
            "organisation" => UserSort::Organisation,
            "created" => UserSort::Created,
            "last_active" => UserSort::LastActive,
            "card_expiry" => UserSort::CardExpiry,
            _ => return None,
        })
    }

    /// Result columns, most significant first; the id comes last.
    fn columns(self) -> &'static [&'static str] {
        match self {
            UserSort::Name => &["surname", "forename", "id"],
            UserSort::Email => &["email_key", "id"],
            UserSort::Organisation => &["org_code", "surname", "forename", "id"],
            UserSort::Created => &["created_at", "id"],
            UserSort::LastActive => &["last_active_at", "id"],
            UserSort::CardExpiry => &["next_card_expiry", "id"],
        }
    }
}

/// Enrolment state filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentFilter {
    /// Has a card issued but not yet enrolled.
    Pending,
    /// Has an enrolled card (active or locked).
    Enrolled,
    /// Has no card at all.
    NoCard,
}

impl EnrolmentFilter {
    /// Parse the wire name (`pending`, `enrolled`, `none`).
    pub fn parse(s: &str) -> Option<EnrolmentFilter> {
        Some(match s {
            "pending" => EnrolmentFilter::Pending,
            "enrolled" => EnrolmentFilter::Enrolled,
            "none" => EnrolmentFilter::NoCard,
            _ => return None,
        })
    }
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Text matched anywhere, case-insensitively; at least [`MIN_TEXT_CHARS`] characters.
    pub text: Option<String>,
    /// Organisation ids to search in (`None`: all organisations).
    pub org_ids: Option<Vec<String>>,
    /// Only users with a card in this state (`issued`, `active`, `locked`, `suspended`, `revoked`).
    pub card_state: Option<String>,
    /// Only users with a card of this type (`v1`, `v2`); with `card_state`, the same card.
    pub card_type: Option<String>,
    /// Enrolment state.
    pub enrolment: Option<EnrolmentFilter>,
    /// Sort column.
    pub sort: UserSort,
    /// Sort descending.
    pub descending: bool,
    /// 1-based page.
    pub page: u32,
    /// Rows per page, 1..=[`MAX_PER_PAGE`].
    pub per_page: u32,
}

/// One of a user's cards, as the users list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CardSummary {
    /// Serial.
    pub serial: String,
    /// Stored state.
    pub state: String,
    /// `v1` / `v2`.
    pub card_type: String,
    /// Expiry time.
    pub expires_at: i64,
}

/// A user in the results.
#[derive(Debug, Clone, PartialEq)]
pub struct UserHit {
    /// UUID.
    pub id: String,
    /// Forename.
    pub forename: String,
    /// Surname.
    pub surname: String,
    /// Subject CN.
    pub subject_cn: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Organisation code.
    pub org_code: String,
    /// Creation time.
    pub created_at: i64,
    /// Last successful card login.
    pub last_active_at: Option<i64>,
    /// Earliest expiry among the cards that are not revoked.
    pub next_card_expiry: Option<i64>,
    /// The user's cards, oldest first.
    pub cards: Vec<CardSummary>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    /// The rows of the page.
    pub rows: Vec<UserHit>,
    /// Number of matches, exact up to [`COUNT_CAP`].
    pub total: i64,
    /// Whether there are more than [`COUNT_CAP`] matches (then `total` is the cap).
    pub total_capped: bool,
}

/// Record a successful card login.
pub async fn set_last_active(conn: &mut Conn, user_id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET last_active_at = $2 WHERE id = $1").bind(user_id).bind(at).execute(conn).await?;
    Ok(())
}

/// When the user last logged in with a card, if ever.
pub async fn last_active(conn: &mut Conn, user_id: &str) -> Result<Option<i64>, StoreError> {
    let r = sqlx::query("SELECT last_active_at FROM users WHERE id = $1").bind(user_id).fetch_optional(conn).await?;
    Ok(match r {
        Some(r) => r.try_get("last_active_at")?,
        None => None,
    })
}

/// SQL text with its text binds, numbered as they are added.
#[derive(Default)]
struct Sql {
    binds: Vec<String>,
}

impl Sql {
    fn bind(&mut self, v: &str) -> String {
        self.binds.push(v.to_string());
        format!("${}", self.binds.len())
    }
}

const COLUMNS: &str = "u.id, u.forename, u.surname, u.subject_cn, u.email, u.email_key, o.code AS org_code, \
                       u.created_at, u.last_active_at, u.next_card_expiry";

/// The condition that picks text matches on PostgreSQL (column `u.search_text`, GIN-indexed with
/// the organisation).
fn postgres_match(text: &str, sql: &mut Sql) -> String {
    // The GIN index reads one posting list per trigram of the pattern, and trigrams every row
    // shares (an organisation's email domain) cost most: the index looks for a short, selective
    // probe and the whole text is checked on the rows it finds (`|| ''` keeps that check out of
    // the index).
    let probe = index_probe(text);
    let p = sql.bind(&like_pattern(probe));
    if probe == text {
        format!("u.search_text ILIKE {p}")
    } else {
        let whole = sql.bind(&like_pattern(text));
        format!("u.search_text ILIKE {p} AND (u.search_text || '') ILIKE {whole}")
    }
}

/// The FTS5 rowids (`r`) matching `text` on SQLite and, for a set of organisations, the condition
/// on `m.r` that keeps theirs: document numbers are `(search_no << 32) + n` (migration 0014), so
/// the index reads only the span of the organisations' ranges and the rest are dropped by number,
/// before any document is looked up. Each trigram's posting list is read once.
fn sqlite_matches(text: &str, numbers: Option<&[i64]>, sql: &mut Sql) -> (String, Option<String>) {
    // A quoted FTS5 string: with the trigram tokenizer, a case-insensitive substring.
    let quoted = sql.bind(&format!("\"{}\"", text.replace('"', "\"\"")));
    let all = format!("SELECT rowid AS r FROM user_search WHERE body MATCH {quoted}");
    match numbers {
        None => (all, None),
        Some(nos) => {
            let (lo, hi) = (nos.iter().min().copied().unwrap_or(0), nos.iter().max().copied().unwrap_or(-1));
            let span = format!("{all} AND rowid >= {} AND rowid < {}", lo << 32, (hi + 1) << 32);
            let list = nos.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            (span, Some(format!("(m.r >> 32) IN ({list})")))
        }
    }
}

/// The search numbers (migration 0014) of organisations.
async fn search_numbers(conn: &mut Conn, org_ids: &[String]) -> Result<Vec<i64>, StoreError> {
    let mut sql = Sql::default();
    let list = in_list(org_ids, &mut sql);
    let text = format!("SELECT search_no FROM organisations WHERE id IN ({list}) AND search_no IS NOT NULL");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
    for b in &sql.binds {
        query = query.bind(b.as_str());
    }
    query.fetch_all(conn).await?.iter().map(|r| Ok(r.try_get::<i64, _>("search_no")?)).collect()
}

/// Characters of the probe: a dozen characters give 10 trigrams, selective enough to leave few rows.
const PROBE_CHARS: usize = 12;

/// The part of `text` the trigram index looks for on PostgreSQL: for an email, the local part with
/// its `@` (the domain is shared by a whole organisation); then at most its last [`PROBE_CHARS`]
/// characters (the end of a local part or serial is the most selective).
fn index_probe(text: &str) -> &str {
    let base = match text.find('@') {
        Some(i) if text.get(..i).is_some_and(|local| local.chars().count() >= MIN_TEXT_CHARS) => {
            text.get(..=i).unwrap_or(text)
        }
        _ => text,
    };
    let n = base.chars().count();
    if n <= PROBE_CHARS {
        return base;
    }
    base.char_indices().nth(n - PROBE_CHARS).and_then(|(i, _)| base.get(i..)).unwrap_or(base)
}

/// An `ILIKE` pattern matching `text` anywhere, with `\`, `%` and `_` taken literally.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// The card filters as conditions on the user whose id is in `user`.
fn card_conditions(q: &UserQuery, user: &str, sql: &mut Sql) -> Vec<String> {
    let mut out = Vec::new();
    if q.card_state.is_some() || q.card_type.is_some() {
        let mut c = format!("EXISTS (SELECT 1 FROM cards c WHERE c.user_id = {user}");
        if let Some(s) = &q.card_state {
            c.push_str(&format!(" AND c.state = {}", sql.bind(s)));
        }
        if let Some(t) = &q.card_type {
            c.push_str(&format!(" AND c.card_type = {}", sql.bind(t)));
        }
        c.push(')');
        out.push(c);
    }
    match q.enrolment {
        Some(EnrolmentFilter::Pending) => {
            out.push(format!("EXISTS (SELECT 1 FROM cards c WHERE c.user_id = {user} AND c.state = 'issued')"));
        }
        Some(EnrolmentFilter::Enrolled) => out.push(format!(
            "EXISTS (SELECT 1 FROM cards c WHERE c.user_id = {user} AND c.state IN ('active', 'locked', 'suspended'))"
        )),
        Some(EnrolmentFilter::NoCard) => {
            out.push(format!("NOT EXISTS (SELECT 1 FROM cards c WHERE c.user_id = {user})"))
        }
        None => {}
    }
    out
}

/// `ORDER BY` terms over `columns`, each qualified by `qualify`. Missing times sort first when
/// ascending on both backends (SQLite's natural order; PostgreSQL is told so).
fn order_by(backend: Backend, columns: &[&str], descending: bool, qualify: impl Fn(&str) -> String) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    let nulls = match (backend, descending) {
        (Backend::Sqlite, _) => "",
        (Backend::Postgres, false) => " NULLS FIRST",
        (Backend::Postgres, true) => " NULLS LAST",
    };
    columns
        .iter()
        .map(|c| {
            let n = if matches!(*c, "last_active_at" | "next_card_expiry") { nulls } else { "" };
            format!("{} {dir}{n}", qualify(c))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn qualified(column: &str) -> String {
    if column == "org_code" { "o.code".into() } else { format!("u.{column}") }
}

fn in_list(ids: &[String], sql: &mut Sql) -> String {
    ids.iter().map(|id| sql.bind(id)).collect::<Vec<_>>().join(", ")
}

fn text_of(q: &UserQuery) -> Result<Option<&str>, StoreError> {
    match q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if t.chars().count() < MIN_TEXT_CHARS => {
            Err(StoreError::Config(format!("search text needs at least {MIN_TEXT_CHARS} characters")))
        }
        Some(t) => Ok(Some(t)),
    }
}

/// Search users: one page in the requested order, and the (capped) number of matches.
pub async fn search(conn: &mut Conn, q: &UserQuery) -> Result<UserPage, StoreError> {
    let backend = Backend::of(conn);
    let text = text_of(q)?;
    let per_page = i64::from(q.per_page.clamp(1, MAX_PER_PAGE));
    let offset = i64::from(q.page.max(1) - 1) * per_page;
    let org_ids = match &q.org_ids {
        Some(ids) => ids.clone(),
        None if text.is_none() => sqlx::query("SELECT id FROM organisations")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    if q.org_ids.as_ref().is_some_and(Vec::is_empty) {
        return Ok(UserPage { rows: Vec::new(), total: 0, total_capped: false });
    }
    let sort = q.sort.columns();
    let outer_order = order_by(backend, sort, q.descending, |c| format!("m.{c}"));

    let mut page_sql = Sql::default();
    let mut count_sql = Sql::default();
    let (page_query, count_query) = match text {
        Some(text) if backend == Backend::Sqlite => {
            // Matches come from the trigram index already limited to the organisations' ranges;
            // a page is sorted on the narrow search documents, then only its users are read.
            let numbers = match &q.org_ids {
                Some(ids) => Some(search_numbers(conn, ids).await?),
                None => None,
            };
            let (matches, in_orgs) = sqlite_matches(text, numbers.as_deref(), &mut page_sql);
            let mut conds: Vec<String> = in_orgs.into_iter().collect();
            conds.push("d.docid = m.r".to_string());
            conds.extend(card_conditions(q, "d.user_id", &mut page_sql));
            let doc_order = order_by(backend, sort, q.descending, |c| match c {
                "id" => "d.user_id".into(),
                "org_code" => "o.code".into(),
                other => format!("d.{other}"),
            });
            let page = format!(
                "SELECT u.id, u.forename, u.surname, u.subject_cn, u.email, u.email_key, p.org_code, u.created_at, \
                 u.last_active_at, u.next_card_expiry FROM (SELECT d.user_id AS id, d.surname, d.forename, \
                 d.email_key, o.code AS org_code, d.created_at, d.last_active_at, d.next_card_expiry \
                 FROM ({matches}) AS m CROSS JOIN user_search_docs d JOIN organisations o ON o.id = d.org_id \
                 WHERE {} ORDER BY {doc_order} LIMIT {per_page} OFFSET {offset}) AS p CROSS JOIN users u \
                 WHERE u.id = p.id ORDER BY {}",
                conds.join(" AND "),
                order_by(backend, sort, q.descending, |c| format!("p.{c}"))
            );
            let (matches, in_orgs) = sqlite_matches(text, numbers.as_deref(), &mut count_sql);
            let mut conds: Vec<String> = in_orgs.into_iter().collect();
            let card_conds = card_conditions(q, "d.user_id", &mut count_sql);
            let docs = if card_conds.is_empty() {
                ""
            } else {
                conds.push("d.docid = m.r".to_string());
                conds.extend(card_conds);
                " CROSS JOIN user_search_docs d"
            };
            let filter = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
            let count = format!("SELECT 1 AS one FROM ({matches}) AS m{docs}{filter}");
            (page, count)
        }
        Some(text) => {
            // PostgreSQL: the organisation + trigram index finds the matches in the caller's
            // organisations (the GIN index serves the text alone for the operator), then they are
            // sorted. (Walking a sort index per organisation instead is a trap here: the planner
            // cannot tell how rare the text is, and a rare one walks the whole organisation.)
            let build = |sql: &mut Sql| {
                let mut conds = vec![postgres_match(text, sql)];
                if q.org_ids.is_some() {
                    conds.push(format!("u.org_id IN ({})", in_list(&org_ids, sql)));
                }
                conds.extend(card_conditions(q, "u.id", sql));
                conds.join(" AND ")
            };
            // Every match is read to sort it, so the page counts them too (`total_matches`): no
            // second pass for the total. `OFFSET 0` plans the matches on their own, so the sort's
            // order can never tempt the planner into walking a whole organisation in index order.
            let page = format!(
                "SELECT *, COUNT(*) OVER () AS total_matches FROM (SELECT {COLUMNS} FROM users u \
                 JOIN organisations o ON o.id = u.org_id WHERE {} OFFSET 0) AS m \
                 ORDER BY {outer_order} LIMIT {per_page} OFFSET {offset}",
                build(&mut page_sql)
            );
            (page, format!("SELECT 1 AS one FROM users u WHERE {}", build(&mut count_sql)))
        }
        None => {
            // Each organisation in index order, only as far as this page reaches; then merged.
            let branch_order = {
                let cols: Vec<&str> = sort.iter().copied().filter(|c| *c != "org_code").collect();
                order_by(backend, &cols, q.descending, qualified)
            };
            let reach = offset + per_page;
            let branches = org_ids
                .iter()
                .enumerate()
                .map(|(i, org)| {
                    let mut conds = vec![format!("u.org_id = {}", page_sql.bind(org))];
                    conds.extend(card_conditions(q, "u.id", &mut page_sql));
                    format!(
                        "SELECT * FROM (SELECT {COLUMNS} FROM users u JOIN organisations o ON o.id = u.org_id \
                         WHERE {} ORDER BY {branch_order} LIMIT {reach}) AS b{i}",
                        conds.join(" AND ")
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            if branches.is_empty() {
                return Ok(UserPage { rows: Vec::new(), total: 0, total_capped: false });
            }
            let page =
                format!("SELECT * FROM ({branches}) AS m ORDER BY {outer_order} LIMIT {per_page} OFFSET {offset}");
            let mut conds = vec![format!("u.org_id IN ({})", in_list(&org_ids, &mut count_sql))];
            conds.extend(card_conditions(q, "u.id", &mut count_sql));
            let count = format!("SELECT 1 AS one FROM users u WHERE {}", conds.join(" AND "));
            (page, count)
        }
    };

    let mut query = sqlx::query(sqlx::AssertSqlSafe(page_query));
    for b in &page_sql.binds {
        query = query.bind(b.as_str());
    }
    let found = query.fetch_all(&mut *conn).await?;
    let mut rows = found.iter().map(hit).collect::<Result<Vec<_>, _>>()?;

    // The PostgreSQL text page counted its matches as it read them all to sort them.
    let counted_with_page = match found.first() {
        Some(r) if r.columns().iter().any(|c| c.name() == "total_matches") => Some(r.try_get("total_matches")?),
        _ => None,
    };
    let counted: i64 = match counted_with_page {
        Some(n) => n,
        None => {
            let count_query = format!("SELECT COUNT(*) AS n FROM ({count_query} LIMIT {}) AS t", COUNT_CAP + 1);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(count_query));
            for b in &count_sql.binds {
                query = query.bind(b.as_str());
            }
            query.fetch_one(&mut *conn).await?.try_get("n")?
        }
    };

    attach_cards(conn, &mut rows).await?;
    Ok(UserPage { rows, total: counted.min(COUNT_CAP), total_capped: counted > COUNT_CAP })
}

fn hit(r: &AnyRow) -> Result<UserHit, StoreError> {
    let forename: String = r.try_get("forename")?;
    let surname: String = r.try_get("surname")?;
    let subject_cn: String = r.try_get("subject_cn")?;
    Ok(UserHit {
        id: r.try_get("id")?,
        display_name: format!("{forename} {surname} ({subject_cn})"),
        forename,
        surname,
        subject_cn,
        email: r.try_get("email")?,
        org_code: r.try_get("org_code")?,
        created_at: r.try_get("created_at")?,
        last_active_at: r.try_get("last_active_at")?,
        next_card_expiry: r.try_get("next_card_expiry")?,
        cards: Vec::new(),
    })
}

/// Fill in the cards of a page's users with one query.
async fn attach_cards(conn: &mut Conn, rows: &mut [UserHit]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let placeholders = (1..=rows.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT user_id, serial, state, card_type, expires_at FROM cards WHERE user_id IN ({placeholders}) \
         ORDER BY issued_at, serial"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in rows.iter() {
        query = query.bind(r.id.as_str());
    }
    let mut by_user: HashMap<String, Vec<CardSummary>> = HashMap::new();
    for r in query.fetch_all(&mut *conn).await? {
        by_user.entry(r.try_get("user_id")?).or_default().push(CardSummary {
            serial: r.try_get("serial")?,
            state: r.try_get("state")?,
            card_type: r.try_get("card_type")?,
            expires_at: r.try_get("expires_at")?,
        });
    }
    for row in rows.iter_mut() {
        row.cards = by_user.remove(&row.id).unwrap_or_default();
    }
    Ok(())
}

/// A user for [`insert_users_bulk`], with their last activity.
#[derive(Debug, Clone)]
pub struct BulkUser<'a> {
    /// The user.
    pub user: crate::users::NewUser<'a>,
    /// Last successful card login.
    pub last_active_at: Option<i64>,
}

/// Insert many users, a few hundred rows per statement (bulk loads such as the search
/// benchmark); the search triggers index each row as usual. On SQLite the connection's page cache
/// is raised first (to 256 MiB), as random-id inserts into a million-row table would otherwise
/// wait on reads.
pub async fn insert_users_bulk(conn: &mut Conn, users: &[BulkUser<'_>]) -> Result<(), StoreError> {
    if Backend::of(conn) == Backend::Sqlite {
        sqlx::query("PRAGMA cache_size = -262144").execute(&mut *conn).await?;
    }
    let rows: Vec<_> = users.iter().map(|b| (&b.user, b.last_active_at)).collect();
    crate::users::insert_rows(conn, &rows).await
}

/// Insert many card rows (no keys) with one statement per 1,000, for bulk loads.
pub async fn insert_cards_bulk(conn: &mut Conn, cards: &[crate::cards::NewCard<'_>]) -> Result<(), StoreError> {
    for chunk in cards.chunks(1000) {
        let sql = format!(
            "INSERT INTO cards (id, serial, user_id, card_type, state, key_algorithm, issued_at, expires_at) \
             VALUES {}",
            crate::user_import::value_lists(chunk.len(), 8)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            q = q
                .bind(c.id)
                .bind(c.serial)
                .bind(c.user_id)
                .bind(c.card_type)
                .bind(c.state)
                .bind(c.key_algorithm)
                .bind(c.issued_at)
                .bind(c.expires_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// After a bulk load, bring PostgreSQL's tables to the state autovacuum would leave them in:
/// statistics for the planner, and rows marked visible (else the first reads of each row write).
pub async fn refresh_statistics(conn: &mut Conn) -> Result<(), StoreError> {
    if Backend::of(conn) == Backend::Postgres {
        // The simple protocol: VACUUM runs outside any transaction block.
        sqlx::Executor::execute(&mut *conn, "VACUUM ANALYZE users").await?;
        sqlx::Executor::execute(&mut *conn, "VACUUM ANALYZE cards").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::index_probe;

    #[test]
    fn probes_are_short_and_skip_the_email_domain() {
        assert_eq!(index_probe("smith"), "smith");
        assert_eq!(index_probe("anna.smithson.42@example.nhs.uk"), "smithson.42@");
        assert_eq!(index_probe("ab@example.org"), "@example.org");
        assert_eq!(index_probe("fce3e2df-e29f-4730-9756-f7bb1154718a"), "f7bb1154718a");
        assert_eq!(index_probe("1500000553617290"), "000553617290");
        assert_eq!(index_probe("Ó Súilleabháin-Ó Súilleabháin"), "Súilleabháin");
    }
}

//! CSV import of users, each optionally with a card. Every row is checked first, with the rules
//! of creating a user and issuing a card one at a time; when any row fails, the problems come
//! back (row, column, reason) and nothing is written. Otherwise all users, their cards, the
//! invitation emails and the audit events are written in one transaction, with bulk statements
//! for the users. An import started from the vRA Manager runs in the background and reports its
//! progress to the staff member who started it (kept in this node's memory).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vsc_core::{
    AuditRecord, CardType, DomainError, EmailAddress, KeyAlgorithm, Mobile, OrgCode, PersonName, RoleCode, SubjectCn,
};
use vsc_crypto::SystemRng;
use vsc_proto::{ImportRowError, UserImportResult};
use vsc_store::organisations::{self, OrganisationRow};
use vsc_store::users::NewUser;
use vsc_store::{StoreError, roles, user_import, users};

use super::cards::{IssueCard, fresh_keys};
use super::{Principal, Vsc, new_id};
use crate::ServiceError;

/// Most user rows in one file.
pub const MAX_IMPORT_ROWS: usize = 20_000;
/// Largest file accepted (5 MiB).
pub const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;
/// The columns of an import file, in the order of the sample.
pub const IMPORT_COLUMNS: [&str; 9] =
    ["organisation", "forename", "surname", "email", "mobile", "subject_cn", "directory_account", "card_type", "roles"];
/// Columns every file must have.
const REQUIRED_COLUMNS: [&str; 4] = ["organisation", "forename", "surname", "email"];
/// Rows between two progress reports.
const PROGRESS_STEP: usize = 500;
/// How long a finished import's result stays readable.
const KEEP_FINISHED: Duration = Duration::from_secs(3600);

/// Where an import is.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportState {
    /// Checking rows: `done` of `total`.
    Validating {
        /// Rows checked.
        done: usize,
        /// Rows in the file.
        total: usize,
    },
    /// Writing users: `done` of `total`.
    Importing {
        /// Users written.
        done: usize,
        /// Users to write.
        total: usize,
    },
    /// Issuing the cards asked for: `done` of `total`.
    IssuingCards {
        /// Cards issued.
        done: usize,
        /// Cards to issue.
        total: usize,
    },
    /// Every row was imported.
    Done(UserImportResult),
    /// The file has problems; nothing was imported.
    Rejected(Vec<ImportRowError>),
    /// The server failed; nothing was imported.
    Failed(String),
}

impl ImportState {
    /// Whether the import has ended (done, rejected or failed).
    pub fn finished(&self) -> bool {
        matches!(self, ImportState::Done(_) | ImportState::Rejected(_) | ImportState::Failed(_))
    }
}

struct Job {
    owner: String,
    started: Instant,
    state: ImportState,
}

/// The imports running or recently finished on this node, by random id.
#[derive(Clone, Default)]
pub struct ImportJobs(Arc<Mutex<HashMap<String, Job>>>);

impl ImportJobs {
    fn set(&self, id: &str, state: ImportState) {
        if let Ok(mut jobs) = self.0.lock()
            && let Some(job) = jobs.get_mut(id)
        {
            job.state = state;
        }
    }

    fn start(&self, owner: &str) -> String {
        let id = vsc_crypto::SecretToken::generate("imp").expose().to_string();
        if let Ok(mut jobs) = self.0.lock() {
            jobs.retain(|_, j| !j.state.finished() || j.started.elapsed() < KEEP_FINISHED);
            let state = ImportState::Validating { done: 0, total: 0 };
            jobs.insert(id.clone(), Job { owner: owner.to_string(), started: Instant::now(), state });
        }
        id
    }

    fn get(&self, owner: &str, id: &str) -> Option<ImportState> {
        let jobs = self.0.lock().ok()?;
        jobs.get(id).filter(|j| j.owner == owner).map(|j| j.state.clone())
    }
}

/// Reports progress of one import (or nothing, for a synchronous import).
struct Progress<'a> {
    jobs: Option<(&'a ImportJobs, &'a str)>,
}

impl Progress<'_> {
    fn report(&self, state: ImportState) {
        if let Some((jobs, id)) = self.jobs {
            jobs.set(id, state);
        }
    }
}

/// A row that passed the checks that need no database.
struct Candidate<'o> {
    row: usize,
    org: &'o OrganisationRow,
    forename: PersonName,
    surname: PersonName,
    email: EmailAddress,
    mobile: Option<Mobile>,
    subject_cn: Option<SubjectCn>,
    directory_account: Option<String>,
    card: Option<IssueCard>,
}

/// A candidate about to be written, with its new id, email key and subject CN.
struct Planned<'c, 'o> {
    c: &'c Candidate<'o>,
    id: String,
    email_key: String,
    subject_cn: String,
}

/// The reason of a domain error, without its field name.
fn reason(e: DomainError) -> String {
    match e {
        DomainError::Invalid { message, .. } => message,
        other => other.to_string(),
    }
}

/// Column positions of the header row.
struct Header {
    at: HashMap<&'static str, usize>,
}

impl Header {
    fn parse(record: &csv::StringRecord, errors: &mut Vec<ImportRowError>) -> Header {
        let mut at = HashMap::new();
        for (i, name) in record.iter().enumerate() {
            let name = name.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
            match IMPORT_COLUMNS.iter().find(|c| **c == name) {
                Some(c) if at.contains_key(c) => errors.push(problem(1, c, "this column appears twice")),
                Some(c) => {
                    at.insert(*c, i);
                }
                None if name.is_empty() && i + 1 == record.len() => {}
                None => errors.push(problem(
                    1,
                    &name,
                    format!("unknown column; the columns are {}", IMPORT_COLUMNS.join(", ")),
                )),
            }
        }
        for c in REQUIRED_COLUMNS {
            if !at.contains_key(c) {
                errors.push(problem(1, c, "this column is missing from the header row"));
            }
        }
        Header { at }
    }

    fn get<'r>(&self, record: &'r csv::StringRecord, column: &str) -> &'r str {
        self.at.get(column).and_then(|&i| record.get(i)).unwrap_or("")
    }
}

fn problem(row: usize, column: &str, reason: impl Into<String>) -> ImportRowError {
    ImportRowError { row, column: column.to_string(), reason: reason.into() }
}

/// Split a roles cell on spaces, commas or semicolons.
fn role_list(s: &str) -> Vec<String> {
    s.split([' ', ';', ',']).map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect()
}

type Records = (csv::StringRecord, Vec<(usize, csv::StringRecord)>);

/// Read the file into its header and its user records with their row numbers (rows left
/// entirely empty, as spreadsheets export them, are skipped); problems of the file as a whole
/// end it here.
fn read_records(csv_bytes: &[u8]) -> Result<Records, Vec<ImportRowError>> {
    if csv_bytes.len() > MAX_IMPORT_BYTES {
        return Err(vec![problem(0, "", format!("the file is larger than {} MiB", MAX_IMPORT_BYTES / 1024 / 1024))]);
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(false).from_reader(csv_bytes);
    let mut records = Vec::new();
    for (i, r) in reader.records().enumerate() {
        match r {
            Ok(rec) => records.push(rec),
            Err(e) => {
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => {
                        "this row is not UTF-8 text (save the file as CSV UTF-8)".to_string()
                    }
                    _ => format!("this row cannot be read: {e}"),
                };
                return Err(vec![problem(i + 1, "", reason)]);
            }
        }
        if records.len() > MAX_IMPORT_ROWS + 1 {
            return Err(vec![problem(
                i + 1,
                "",
                format!("too many rows: a file has at most {MAX_IMPORT_ROWS} users (split it into several files)"),
            )]);
        }
    }
    // Blank lines (a lone empty field) are skipped by the reader; what remains must have a header.
    let mut records = records.into_iter().enumerate();
    let header = records.next().ok_or_else(|| vec![problem(1, "", "the file is empty: it needs a header row")])?.1;
    let body: Vec<_> =
        records.filter(|(_, r)| r.iter().any(|f| !f.trim().is_empty())).map(|(i, r)| (i + 1, r)).collect();
    if body.is_empty() {
        return Err(vec![problem(2, "", "the file has a header row but no users")]);
    }
    Ok((header, body))
}

impl Vsc {
    /// Import users from CSV in one go (the JSON API): `Ok(Err(errors))` when the file has
    /// problems, in which case nothing was imported.
    pub async fn import_users(
        &self,
        who: &Principal,
        csv_bytes: &[u8],
    ) -> Result<Result<UserImportResult, Vec<ImportRowError>>, ServiceError> {
        self.run_import(who, csv_bytes, &Progress { jobs: None }).await
    }

    /// Start an import in the background for a staff member; returns its id, for
    /// [`Vsc::user_import_state`].
    pub fn start_user_import(&self, who: &Principal, csv_bytes: Vec<u8>) -> String {
        let owner = who.staff_id().unwrap_or("").to_string();
        let id = self.imports.start(&owner);
        let (vsc, who, job) = (self.clone(), who.clone(), id.clone());
        tokio::spawn(async move {
            let progress = Progress { jobs: Some((&vsc.imports, &job)) };
            let end = match vsc.run_import(&who, &csv_bytes, &progress).await {
                Ok(Ok(done)) => ImportState::Done(done),
                Ok(Err(errors)) => ImportState::Rejected(errors),
                Err(e) => {
                    tracing::error!(error = %e, "user import failed");
                    ImportState::Failed(e.to_string())
                }
            };
            progress.report(end);
        });
        id
    }

    /// A sample import file for the principal's first organisation: three users with emails in
    /// its first allowed domain (numbered afresh each time, so the sample imports as it is), one
    /// of them with a V2 card.
    pub async fn user_import_sample(&self, who: &Principal) -> Result<String, ServiceError> {
        let mut conn = self.store.conn().await?;
        let orgs = match who.staff_id() {
            Some(staff) => organisations::for_staff(&mut conn, staff).await?,
            None => organisations::all(&mut conn).await?,
        };
        let (code, domain) = orgs
            .iter()
            .find_map(|o| o.email_domains.first().map(|d| (o.code.clone(), d.clone())))
            .ok_or_else(|| ServiceError::not_found("organisation", "you have no organisation to import users into"))?;
        let role = roles::list(&mut conn).await?.into_iter().next().map(|r| r.code).unwrap_or_else(|| "R8000".into());
        let n = u16::from_be_bytes(vsc_crypto::random::bytes::<2>()) % 9000 + 1000;
        let rows: [[String; 9]; 3] = [
            [&code, "Ada", "Lovelace", &format!("ada.lovelace.{n}@{domain}"), "+447700900123", "", "", "", ""]
                .map(str::to_string),
            [&code, "Alan", "Turing", &format!("alan.turing.{n}@{domain}"), "", "", &format!("aturing{n}"), "", ""]
                .map(str::to_string),
            [&code, "Grace", "O'Hopper", &format!("grace.ohopper.{n}@{domain}"), "", "", "", "v2", &role]
                .map(str::to_string),
        ];
        let mut out = csv::Writer::from_writer(Vec::new());
        let io = |e: csv::Error| ServiceError::Startup(format!("cannot write the sample CSV: {e}"));
        out.write_record(IMPORT_COLUMNS).map_err(io)?;
        for r in &rows {
            out.write_record(r).map_err(io)?;
        }
        let bytes = out.into_inner().map_err(|e| ServiceError::Startup(format!("cannot write the sample CSV: {e}")))?;
        String::from_utf8(bytes).map_err(|e| ServiceError::Startup(format!("sample CSV: {e}")))
    }

    /// The state of an import started by this principal on this node (`None`: no such import,
    /// or someone else's).
    pub fn user_import_state(&self, who: &Principal, id: &str) -> Option<ImportState> {
        self.imports.get(who.staff_id().unwrap_or(""), id)
    }

    async fn run_import(
        &self,
        who: &Principal,
        csv_bytes: &[u8],
        progress: &Progress<'_>,
    ) -> Result<Result<UserImportResult, Vec<ImportRowError>>, ServiceError> {
        let (header, records) = match read_records(csv_bytes) {
            Ok(r) => r,
            Err(errors) => return Ok(Err(errors)),
        };
        let total = records.len();
        let started = Instant::now();
        progress.report(ImportState::Validating { done: 0, total });
        let mut errors = Vec::new();
        let header = Header::parse(&header, &mut errors);
        if !errors.is_empty() {
            return Ok(Err(errors));
        }

        let (orgs, catalogue) = {
            let mut conn = self.store.conn().await?;
            let orgs = match who.staff_id() {
                Some(staff) => organisations::for_staff(&mut conn, staff).await?,
                None => organisations::all(&mut conn).await?,
            };
            let catalogue: HashSet<String> = roles::list(&mut conn).await?.into_iter().map(|r| r.code).collect();
            (orgs, catalogue)
        };
        let mut candidates = Vec::with_capacity(total);
        let mut seen_emails: HashMap<String, usize> = HashMap::new();
        let mut seen_cns: HashMap<String, usize> = HashMap::new();
        for (i, (row, record)) in records.iter().enumerate() {
            if let Some(c) = check_row(*row, &header, record, &orgs, &catalogue, &mut errors) {
                if let Some(first) = seen_emails.insert(c.email.key(), c.row) {
                    errors.push(problem(c.row, "email", format!("the same email as row {first}")));
                }
                if let Some(cn) = &c.subject_cn
                    && let Some(first) = seen_cns.insert(cn.as_str().to_string(), c.row)
                {
                    errors.push(problem(c.row, "subject_cn", format!("the same subject CN as row {first}")));
                }
                candidates.push(c);
            }
            if (i + 1) % PROGRESS_STEP == 0 {
                progress.report(ImportState::Validating { done: i + 1, total });
            }
        }

        // The checks against stored users, inside the transaction that writes (no race).
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let keys: Vec<String> = candidates.iter().map(|c| c.email.key()).collect();
        let taken_emails = user_import::existing_email_keys(&mut tx, &keys).await?;
        let given: Vec<String> =
            candidates.iter().filter_map(|c| c.subject_cn.as_ref().map(|s| s.as_str().to_string())).collect();
        let taken_cns = user_import::existing_subject_cns(&mut tx, &given).await?;
        for c in &candidates {
            if let Some(holder_org) = taken_emails.get(&c.email.key()) {
                // Specific within the caller's organisations; another organisation's user is named to nobody.
                let message = if orgs.iter().any(|o| &o.id == holder_org) {
                    format!("a user with email {} already exists", c.email)
                } else {
                    super::staff_auth::EMAIL_UNUSABLE.to_string()
                };
                errors.push(problem(c.row, "email", message));
            }
            if let Some(cn) = &c.subject_cn
                && taken_cns.contains(cn.as_str())
            {
                errors.push(problem(c.row, "subject_cn", format!("subject CN {} is taken", cn.as_str())));
            }
        }
        progress.report(ImportState::Validating { done: total, total });
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.row);
            return Ok(Err(errors));
        }

        progress.report(ImportState::Importing { done: 0, total });
        let checked = started.elapsed();
        let cns = self.subject_cns(&mut tx, &candidates).await?;
        let planned: Vec<Planned<'_, '_>> = candidates
            .iter()
            .zip(cns)
            .map(|(c, subject_cn)| Planned { c, id: new_id(), email_key: c.email.key(), subject_cn })
            .collect();
        let rows: Vec<NewUser<'_>> = planned
            .iter()
            .map(|p| NewUser {
                id: &p.id,
                org_id: &p.c.org.id,
                forename: p.c.forename.as_str(),
                surname: p.c.surname.as_str(),
                email: p.c.email.as_str(),
                email_key: &p.email_key,
                mobile: p.c.mobile.as_ref().map(Mobile::as_str),
                subject_cn: &p.subject_cn,
                created_at: now.unix_timestamp(),
            })
            .collect();
        for (n, chunk) in rows.chunks(PROGRESS_STEP).enumerate() {
            user_import::insert_users(&mut tx, chunk).await?;
            progress.report(ImportState::Importing { done: n * PROGRESS_STEP + chunk.len(), total });
        }
        let accounts: Vec<(&str, &str)> =
            planned.iter().filter_map(|p| p.c.directory_account.as_deref().map(|d| (p.id.as_str(), d))).collect();
        user_import::add_directory_accounts(&mut tx, &accounts, now.unix_timestamp()).await?;
        let created: Vec<AuditRecord> = planned
            .iter()
            .map(|p| AuditRecord {
                actor: who.actor(),
                action: "user.created",
                org_id: Some(p.c.org.id.clone()),
                target: Some(format!("user:{}", p.id)),
                detail: serde_json::json!({ "email": p.c.email.as_str(), "subject_cn": p.subject_cn, "import": true })
                    .to_string(),
            })
            .collect();
        user_import::append_audit(&mut tx, now.unix_timestamp(), &created).await?;

        let with_cards = candidates.iter().filter(|c| c.card.is_some()).count();
        progress.report(ImportState::IssuingCards { done: 0, total: with_cards });
        let mut cards = 0;
        for p in &planned {
            if let Some(card) = &p.c.card {
                let user = users::UserRow {
                    id: p.id.clone(),
                    org_id: p.c.org.id.clone(),
                    org_code: p.c.org.code.clone(),
                    forename: p.c.forename.as_str().to_string(),
                    surname: p.c.surname.as_str().to_string(),
                    email: p.c.email.as_str().to_string(),
                    mobile: p.c.mobile.as_ref().map(|m| m.as_str().to_string()),
                    subject_cn: p.subject_cn.clone(),
                    created_at: now.unix_timestamp(),
                };
                let mut fresh = fresh_keys(card.algorithm, card.card_type.key_purposes().len())?;
                self.insert_card(&mut tx, who, &user, &p.c.org.name, card, &mut fresh, now).await?;
                cards += 1;
                if cards % 50 == 0 {
                    progress.report(ImportState::IssuingCards { done: cards, total: with_cards });
                }
            }
        }
        let by_org = candidates.iter().fold(HashMap::<&str, usize>::new(), |mut m, c| {
            *m.entry(c.org.code.as_str()).or_default() += 1;
            m
        });
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "users.imported",
                org_id: candidates.first().filter(|_| by_org.len() == 1).map(|c| c.org.id.clone()),
                target: None,
                detail: serde_json::json!({ "users": total, "cards": cards, "organisations": by_org }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        if cards > 0 {
            self.wake_outbox();
        }
        let check_ms = checked.as_millis();
        let write_ms = started.elapsed().saturating_sub(checked).as_millis();
        tracing::info!(users = total, cards, check_ms, write_ms, "users imported");
        Ok(Ok(UserImportResult { imported: total, cards }))
    }

    /// Each candidate's subject CN: the given one, or a generated one that no user has.
    async fn subject_cns(
        &self,
        conn: &mut vsc_store::Conn,
        candidates: &[Candidate<'_>],
    ) -> Result<Vec<String>, ServiceError> {
        let mut cns: Vec<Option<String>> =
            candidates.iter().map(|c| c.subject_cn.as_ref().map(|s| s.as_str().to_string())).collect();
        let mut used: HashSet<String> = cns.iter().flatten().cloned().collect();
        loop {
            let mut fresh = Vec::new();
            for cn in cns.iter_mut().filter(|c| c.is_none()) {
                let g = loop {
                    let g = SubjectCn::generate(&mut SystemRng).as_str().to_string();
                    if used.insert(g.clone()) {
                        break g;
                    }
                };
                fresh.push(g.clone());
                *cn = Some(g);
            }
            if fresh.is_empty() {
                break;
            }
            let taken = user_import::existing_subject_cns(conn, &fresh).await?;
            if taken.is_empty() {
                break;
            }
            for cn in cns.iter_mut() {
                if cn.as_ref().is_some_and(|c| taken.contains(c)) {
                    *cn = None;
                }
            }
        }
        Ok(cns.into_iter().flatten().collect())
    }
}

/// Check one row with the rules that need no database beyond the caller's organisations and the
/// role catalogue; problems go to `errors`.
fn check_row<'o>(
    row: usize,
    header: &Header,
    record: &csv::StringRecord,
    orgs: &'o [OrganisationRow],
    catalogue: &HashSet<String>,
    errors: &mut Vec<ImportRowError>,
) -> Option<Candidate<'o>> {
    let before = errors.len();
    let cell = |c: &str| header.get(record, c);
    if record.len() > header.at.len() && record.iter().skip(header.at.len()).any(|f| !f.trim().is_empty()) {
        errors.push(problem(
            row,
            "",
            format!("this row has {} values; the header has {}", record.len(), header.at.len()),
        ));
    }
    fn field<T>(errors: &mut Vec<ImportRowError>, row: usize, column: &str, r: Result<T, DomainError>) -> Option<T> {
        r.map_err(|e| errors.push(problem(row, column, reason(e)))).ok()
    }
    let org = field(errors, row, "organisation", OrgCode::parse("organisation", cell("organisation")));
    let forename = field(errors, row, "forename", PersonName::parse("forename", cell("forename")));
    let surname = field(errors, row, "surname", PersonName::parse("surname", cell("surname")));
    let email = field(errors, row, "email", EmailAddress::parse("email", cell("email")));
    let mobile = match cell("mobile").trim() {
        "" => Some(None),
        m => field(errors, row, "mobile", Mobile::parse("mobile", m)).map(Some),
    };
    let subject_cn = match cell("subject_cn").trim() {
        "" => Some(None),
        s => field(errors, row, "subject_cn", SubjectCn::parse("subject_cn", s)).map(Some),
    };
    let role_cell = role_list(cell("roles"));
    let card = match cell("card_type").trim() {
        "" => {
            if !role_cell.is_empty() {
                errors.push(problem(row, "roles", "roles are for a card: give a card_type (v1 or v2) too"));
            }
            Some(None)
        }
        t => {
            let card_type = field(errors, row, "card_type", CardType::parse("card_type", t));
            let roles = field(errors, row, "roles", RoleCode::parse_list("roles", &role_cell));
            if let Some(roles) = &roles {
                for r in roles.iter().filter(|r| !catalogue.contains(r.as_str())) {
                    errors.push(problem(row, "roles", format!("{} is not in the role catalogue", r.as_str())));
                }
            }
            card_type
                .zip(roles)
                .map(|(card_type, roles)| Some(IssueCard { card_type, roles, algorithm: KeyAlgorithm::P256 }))
        }
    };
    let directory_account = field(
        errors,
        row,
        "directory_account",
        super::users::directory_account_name(cell("directory_account")).map(|d| d.map(str::to_string)),
    );
    let org = org.and_then(|code| match orgs.iter().find(|o| o.code == code.as_str()) {
        Some(o) => Some(o),
        None => {
            errors.push(problem(row, "organisation", format!("no organisation {code} among yours")));
            None
        }
    });
    if let (Some(org), Some(email)) = (org, &email) {
        field(errors, row, "email", super::users::allowed_email_domain(org, email));
    }
    if errors.len() > before {
        return None;
    }
    Some(Candidate {
        row,
        org: org?,
        forename: forename?,
        surname: surname?,
        email: email?,
        mobile: mobile?,
        subject_cn: subject_cn?,
        directory_account: directory_account?,
        card: card?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_split_on_spaces_and_semicolons() {
        assert_eq!(role_list(" R8000;R8003  r8004 "), vec!["R8000", "R8003", "r8004"]);
        assert!(role_list("  ").is_empty());
    }

    #[test]
    fn unknown_and_missing_columns_are_reported_on_row_one() {
        let mut errors = Vec::new();
        Header::parse(&csv::StringRecord::from(vec!["Organisation", "forename", "e-mail"]), &mut errors);
        let cols: Vec<_> = errors.iter().map(|e| (e.row, e.column.as_str())).collect();
        assert_eq!(cols, vec![(1, "e-mail"), (1, "surname"), (1, "email")]);
    }

    #[test]
    fn an_empty_file_and_a_header_alone_are_refused() {
        assert_eq!(read_records(b"").err().map(|e| e[0].row), Some(1));
        assert_eq!(read_records(b"organisation,forename,surname,email\n").err().map(|e| e[0].row), Some(2));
    }
}

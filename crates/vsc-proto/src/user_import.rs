//! CSV import of users (with optional card issuance).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One problem found in an import file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportRowError {
    /// Row as a spreadsheet numbers it: the header is row 1, the first user row 2.
    pub row: usize,
    /// Column name at fault (empty when the whole row or file is at fault).
    pub column: String,
    /// What is wrong, in words.
    pub reason: String,
}

/// `POST /api/v1/users/import` succeeded: every row was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserImportResult {
    /// Users created.
    pub imported: usize,
    /// Cards issued (rows with a card type).
    pub cards: usize,
}

/// `POST /api/v1/users/import` refused the file: nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserImportErrors {
    /// Every problem found, in row order.
    pub errors: Vec<ImportRowError>,
}

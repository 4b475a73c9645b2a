//! `/api/v1/audit`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use vsc_core::DomainError;
use vsc_proto::{AuditPage, ErrorBody};

use super::auth::Staff;
use super::errors::ApiError;
use crate::Vsc;

/// Audit events of the caller's organisations, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "ra", security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "1–1000, default 100")),
    responses((status = 200, body = AuditPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = match q.get("limit") {
        None => 100,
        Some(s) => s.trim().parse::<i64>().map_err(|_| DomainError::invalid("limit", "limit must be a number"))?,
    };
    Ok(Json(AuditPage { events: vsc.audit_log(&who, limit).await? }))
}

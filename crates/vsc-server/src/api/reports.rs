//! `/api/v1/reports`: the RA's pending-users and expiring-cards reports.

use axum::Json;
use axum::extract::{Query, State};
use vsc_proto::{ErrorBody, ExpiringQuery, ExpiringReport, PendingReport};

use super::auth::Staff;
use super::errors::ApiError;
use crate::Vsc;

/// Users of the caller's organisations with a card issued but not yet enrolled: invited when,
/// reminded when, link expiry; newest invitation first.
#[utoipa::path(get, path = "/api/v1/reports/pending", tag = "ra", security(("bearer" = [])),
    responses((status = 200, body = PendingReport), (status = 401, body = ErrorBody)))]
pub async fn pending(State(vsc): State<Vsc>, Staff(who): Staff) -> Result<Json<PendingReport>, ApiError> {
    Ok(Json(vsc.pending_report(&who).await?))
}

/// Cards (not revoked) of the caller's organisations expiring within `days` days (default 30).
#[utoipa::path(get, path = "/api/v1/reports/expiring", tag = "ra", security(("bearer" = [])),
    params(ExpiringQuery),
    responses(
        (status = 200, body = ExpiringReport),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Invalid parameter, named in the error")))]
pub async fn expiring(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Query(q): Query<ExpiringQuery>,
) -> Result<Json<ExpiringReport>, ApiError> {
    Ok(Json(vsc.expiring_report(&who, &q).await?))
}

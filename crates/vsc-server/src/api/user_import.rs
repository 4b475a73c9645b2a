//! `POST /api/v1/users/import`: the CSV import of users, synchronously (the vRA Manager runs the
//! same import in the background with a progress page). Also the request size limits of the
//! whole server, since the two import routes are the ones allowed a larger body.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vsc_proto::{ErrorBody, ErrorCode, UserImportErrors, UserImportResult};

use super::auth::Staff;
use super::errors::ApiError;
use crate::Vsc;
use crate::service::MAX_IMPORT_BYTES;

/// Largest request body anywhere else.
const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Largest body of an import request: the file, plus a form around it on the portal.
const IMPORT_BODY_LIMIT: usize = MAX_IMPORT_BYTES + 1024 * 1024;
/// The routes that take an import file.
const IMPORT_PATHS: [&str; 2] = ["/api/v1/users/import", "/ra/import"];

/// Middleware: refuse a request body over its route's limit (413), by its declared length at
/// once and by what is actually read otherwise.
pub async fn limit_body(req: Request, next: Next) -> Response {
    let limit = if req.method() == Method::POST && IMPORT_PATHS.contains(&req.uri().path()) {
        IMPORT_BODY_LIMIT
    } else {
        DEFAULT_BODY_LIMIT
    };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large(limit);
    }
    next.run(req.map(|b| Body::new(http_body_util::Limited::new(b, limit)))).await
}

fn too_large(limit: usize) -> Response {
    let mib = limit / 1024 / 1024;
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::InvalidInput,
        format!("the request body is larger than {mib} MiB"),
        None,
    )
    .into_response()
}

/// Import users (and issue cards) from a CSV file: every row is checked first; any problem
/// refuses the whole file (422, each problem with its row, column and reason) and nothing is
/// imported. Otherwise all rows are imported in one transaction.
#[utoipa::path(post, path = "/api/v1/users/import", tag = "ra", security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv",
        description = "Header row `organisation,forename,surname,email[,mobile,subject_cn,directory_account,card_type,roles]`, \
                       then one user per row (at most 20,000 rows, 5 MiB)"),
    responses(
        (status = 200, body = UserImportResult, description = "Every row imported"),
        (status = 413, body = ErrorBody, description = "File over 5 MiB"),
        (status = 422, body = UserImportErrors, description = "Problems by row and column; nothing imported")))]
pub async fn import(State(vsc): State<Vsc>, Staff(who): Staff, body: Body) -> Result<Response, ApiError> {
    let Ok(bytes) = axum::body::to_bytes(body, IMPORT_BODY_LIMIT).await else {
        return Ok(too_large(IMPORT_BODY_LIMIT));
    };
    Ok(match vsc.import_users(&who, &bytes).await? {
        Ok(done) => Json(done).into_response(),
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, Json(UserImportErrors { errors })).into_response(),
    })
}

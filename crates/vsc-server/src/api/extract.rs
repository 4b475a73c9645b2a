//! A JSON body extractor whose rejections use our error format and name the field at fault.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use vsc_proto::ErrorCode;

use super::errors::ApiError;

/// `axum::Json` with our rejection.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(reject(&rejection)),
        }
    }
}

fn reject(rejection: &JsonRejection) -> ApiError {
    let text = rejection.body_text();
    let field = field_of(&text);
    let status = match rejection {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, ErrorCode::MalformedRequest, text, field.as_deref())
}

/// The field a serde error names: `missing field `x``, or the `path: ` prefix axum adds.
fn field_of(text: &str) -> Option<String> {
    if let Some(rest) = text.split("missing field `").nth(1) {
        return rest.split('`').next().map(str::to_string);
    }
    let detail = text.split("target type: ").nth(1)?;
    let (path, _) = detail.split_once(": ")?;
    (!path.contains(' ') && !path.is_empty() && path != ".").then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn fields_are_found_in_serde_messages() {
        assert_eq!(
            field_of(
                "Failed to deserialize the JSON body into the target type: missing field `email` at line 1 column 2"
            )
            .as_deref(),
            Some("email")
        );
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: roles: invalid type: string")
                .as_deref(),
            Some("roles")
        );
        assert_eq!(field_of("Failed to parse the request body as JSON: expected value"), None);
    }
}

//! Confirming the holder's email address: "Resend verification email" on the home page, and the
//! page the emailed link opens (it confirms only for the signed-in holder it was sent for).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{HOME_PATH, SignedIn, see_other};
use crate::api::holder::MaybeHolder;
use crate::portals::errors::{PageError, SIGN_IN_PATH};
use crate::{ServiceError, Vsc};

/// `POST /self-service/email-verification`: send the confirmation link again.
pub async fn resend(State(vsc): State<Vsc>, SignedIn { holder }: SignedIn) -> Result<Response, PageError> {
    vsc.send_email_verification(&holder).await?;
    Ok(see_other("/self-service/?done=email-sent", &[], vsc.config()))
}

/// `GET /self-service/verify-email/{token}`: the link from the email, opened by the signed-in
/// holder (otherwise a page asks them to sign in and open it again).
pub async fn verify(State(vsc): State<Vsc>, MaybeHolder(holder): MaybeHolder, Path(token): Path<String>) -> Response {
    let home = Some((HOME_PATH, "Go to the Self-Service Portal"));
    match vsc.verify_email(&token, holder.as_ref()).await {
        Ok(email) => PageError::message_page(
            StatusCode::OK,
            "Email address confirmed",
            format!("thank you: {email} is confirmed as your email address"),
            home,
        ),
        Err(ServiceError::LinkExpired(m)) => PageError::message_page(
            StatusCode::GONE,
            "This link has expired",
            format!("{m}: sign in and choose \"Resend verification email\""),
            home,
        ),
        Err(ServiceError::LinkUsed(m)) => {
            PageError::message_page(StatusCode::GONE, "This link has already been used", m, home)
        }
        Err(ServiceError::NotFound { message, .. }) => {
            PageError::message_page(StatusCode::NOT_FOUND, "This link is not valid", message, home)
        }
        Err(ServiceError::Unauthenticated(m)) => PageError::message_page(
            StatusCode::UNAUTHORIZED,
            "Sign in to confirm your email address",
            m,
            Some((SIGN_IN_PATH, "Sign in to the Self-Service Portal")),
        ),
        Err(e) => PageError::from(e),
    }
    .into_response()
}

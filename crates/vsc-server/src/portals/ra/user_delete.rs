//! Deleting a user from the vRA Manager (`POST /ra/users/{id}/delete`): the form on the user page
//! must carry the confirmation box ("I understand the cards will be revoked"); the service revokes
//! the cards, removes devices and directory accounts and deletes the user, then the staff member is
//! sent to the users list with a notice.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::users::{is_missing, no_such_user};
use super::{HOME_PATH, MessagePage, StaffSignedIn};
use crate::Vsc;
use crate::portals::csrf::PortalForm;
use crate::portals::errors::PageError;
use crate::portals::render;
use crate::portals::self_service::see_other;

/// Where the users list says a user was deleted.
pub const DELETED_PATH: &str = "/ra?done=user_deleted";

/// The delete form: `confirm` is the confirmation checkbox.
#[derive(Deserialize)]
pub struct DeleteUserForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /ra/users/{id}/delete` (the CSRF middleware has checked the form).
pub async fn submit(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Path(id): Path<String>,
    PortalForm(form): PortalForm<DeleteUserForm>,
) -> Result<Response, PageError> {
    let who = staff.principal();
    // The user first: staff of another organisation get the same 404 whatever they post.
    match vsc.staff_user_page(&who, &id).await {
        Ok(_) => {}
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    }
    if form.confirm.as_deref().is_none_or(str::is_empty) {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &MessagePage {
                title: "Confirm the deletion",
                message: "The user was not deleted: tick “I understand the cards will be revoked” to delete them.",
                advice: Some("Go back to the user page, tick the box and press “Delete user” again."),
                link: (HOME_PATH, "Go to the users list"),
            },
        );
    }
    match vsc.delete_user(&who, &id).await {
        Ok(()) => Ok(see_other(DELETED_PATH, &[], vsc.config())),
        Err(e) if is_missing(&e) => no_such_user(),
        Err(e) => Err(e.into()),
    }
}

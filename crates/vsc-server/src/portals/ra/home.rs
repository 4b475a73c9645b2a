//! The staff member's home page (`/ra`): who they are and their organisations.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::StaffSignedIn;
use crate::portals::csrf::Csrf;
use crate::portals::errors::PageError;
use crate::portals::render;
use crate::service::StaffMember;

#[derive(Template)]
#[template(path = "ra/home.html")]
struct HomePage<'a> {
    csrf: &'a str,
    staff: &'a StaffMember,
    role: &'static str,
}

/// `GET /ra`.
pub async fn show(StaffSignedIn { staff }: StaffSignedIn, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    let role = match staff.role {
        vsc_core::StaffRole::Manager => "RA Manager",
        vsc_core::StaffRole::Agent => "RA Agent",
    };
    render(StatusCode::OK, &HomePage { csrf: &csrf, staff: &staff, role })
}

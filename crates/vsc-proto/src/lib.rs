//! Wire types shared by the server, the client and the CLI: request and response bodies and the
//! coded error format. Nothing here does IO.

pub mod audit;
pub mod card;
pub mod change_request;
pub mod device;
pub mod error;
pub mod holder;
pub mod login;
pub mod organisation;
pub mod pin;
pub mod ra_reports;
pub mod reset;
pub mod settings;
pub mod signing;
pub mod staff;
pub mod user;
pub mod user_import;
pub mod user_search;

pub use audit::{AuditEventView, AuditPage};
pub use card::{
    CardCertificates, CardView, IssueCardRequest, RevokeCardRequest, SelfBlockRequest, SelfBlocked, SuspendCardRequest,
};
pub use change_request::{
    ChangeApproved, ChangeRequestList, ChangeRequestQuery, ChangeRequestView, ChangeRequested, DualControlView,
    NotMeOutcome, RejectChangeRequest, SetDualControl,
};
pub use device::{
    AddDeviceRequest, AnswerOutcome, AuthenticatorView, ChallengeAnswer, ChallengeList, ChallengeView, DeviceCreated,
    DeviceList, DeviceRegistrationView, DeviceView, RegisterDeviceRequest, RegisteredDevice, TotpParameters,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use holder::{
    AnswerInput, ChangeQuestionsRequest, CodeRequest, CodeSent, EnrolmentRequest, EnrolmentView, HolderView,
    QuestionView, SessionView, SignInRequest, SignInStateView, SignInView,
};
pub use login::{
    AppCreated, CardLoginRequest, CardLoginView, CardSessionStatus, CardSessionView, LoginRole, LoginStateView,
    OpenSessionRequest, TicketOrganisation, TicketRequest, TicketValidation, TicketView, ValidateTicketRequest,
};
pub use organisation::{CreateOrganisationRequest, OrganisationView, RenameOrganisationRequest};
pub use pin::{DeviceResetPasscodeRequest, PinResetIssued, PinResetRequest, SetPinRequest};
pub use ra_reports::{ExpiringCard, ExpiringQuery, ExpiringReport, PendingReport, PendingUser};
pub use reset::{ResetAccepted, ResetAnswersRequest, ResetFactorView, ResetPasscodeRequest, ResetRequest, ResetView};
pub use settings::{
    AddEmailDomainRequest, CreateQuestionRequest, CreateRoleRequest, EffectivePolicy, OrganisationPolicy,
    OrganisationPolicyView, RenameRoleRequest, RoleView, SecurityQuestionView, UpdateQuestionRequest,
};
pub use signing::{
    ApprovalView, CadesSignRequest, CadesSignature, CardCertificateView, CardCertificatesView, CardSignBatchRequest,
    CardSignRequest, CardSignature, CardSignatureBatch, DigestSignature, MAX_BATCH_DIGESTS,
};
pub use staff::{InviteStaffRequest, StaffInvited, StaffLinkSent, StaffList, StaffView, UpdateStaffRequest};
pub use user::{CreateUserRequest, UserView};
pub use user_import::{ImportRowError, UserImportErrors, UserImportResult};
pub use user_search::{UserCardSummary, UserListItem, UserSearchPage, UserSearchQuery};

//! The messages vsc sends, rendered from askama templates in `templates/email/` (a plain-text
//! and an HTML version of each email), and [`redact`] for keeping delivered messages.

use askama::Template;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use vsc_core::CardType;

use super::email::EmailMessage;
use super::sms::SmsMessage;

/// Dates as in "7 December 2026".
const DATE: &[FormatItem<'static>] = format_description!("[day padding:none] [month repr:long] [year]");
/// Times as in "14:05".
const TIME: &[FormatItem<'static>] = format_description!("[hour]:[minute]");

/// What every email about one card needs.
struct CardMail<'a> {
    subject: String,
    holder_name: &'a str,
    /// The card can also make advanced electronic signatures.
    v2: bool,
    serial: &'a str,
    link: &'a str,
    /// Pre-formatted expiry date of the link (invitation and reminder only).
    expires: String,
}

/// What the portal-locked and email-verification emails need.
struct LockedMail<'a> {
    subject: String,
    holder_name: &'a str,
    /// Pre-formatted time and date, e.g. "14:05 UTC on 7 December 2026".
    until: String,
    link: &'a str,
    /// The card was locked by wrong second-factor codes, not by wrong passcodes.
    by_codes: bool,
}

#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationText<'a> {
    m: &'a CardMail<'a>,
}

#[derive(Template)]
#[template(path = "email/invitation.html")]
struct InvitationHtml<'a> {
    m: &'a CardMail<'a>,
}

#[derive(Template)]
#[template(path = "email/reminder.txt")]
struct ReminderText<'a> {
    m: &'a CardMail<'a>,
}

#[derive(Template)]
#[template(path = "email/reminder.html")]
struct ReminderHtml<'a> {
    m: &'a CardMail<'a>,
}

#[derive(Template)]
#[template(path = "email/setup_complete.txt")]
struct SetupCompleteText<'a> {
    m: &'a CardMail<'a>,
}

#[derive(Template)]
#[template(path = "email/setup_complete.html")]
struct SetupCompleteHtml<'a> {
    m: &'a CardMail<'a>,
}

#[derive(Template)]
#[template(path = "email/email_verification.txt")]
struct EmailVerificationText<'a> {
    m: &'a LockedMail<'a>,
}

#[derive(Template)]
#[template(path = "email/email_verification.html")]
struct EmailVerificationHtml<'a> {
    m: &'a LockedMail<'a>,
}

#[derive(Template)]
#[template(path = "email/card_locked.txt")]
struct CardLockedText<'a> {
    m: &'a LockedMail<'a>,
}

#[derive(Template)]
#[template(path = "email/card_locked.html")]
struct CardLockedHtml<'a> {
    m: &'a LockedMail<'a>,
}

/// What the reset-link email needs.
struct ResetMail<'a> {
    subject: String,
    holder_name: &'a str,
    /// Pre-formatted expiry, e.g. "14:05 UTC on 7 December 2026".
    until: String,
    link: &'a str,
    /// Sent by an RA unlock (no security questions).
    by_ra: bool,
}

#[derive(Template)]
#[template(path = "email/passcode_reset.txt")]
struct PasscodeResetText<'a> {
    m: &'a ResetMail<'a>,
}

#[derive(Template)]
#[template(path = "email/passcode_reset.html")]
struct PasscodeResetHtml<'a> {
    m: &'a ResetMail<'a>,
}

#[derive(Template)]
#[template(path = "email/passcode_changed.txt")]
struct PasscodeChangedText<'a> {
    m: &'a LockedMail<'a>,
}

#[derive(Template)]
#[template(path = "email/passcode_changed.html")]
struct PasscodeChangedHtml<'a> {
    m: &'a LockedMail<'a>,
}

/// What the add-a-device email needs.
struct CodeMail<'a> {
    subject: String,
    holder_name: &'a str,
    device: &'a str,
    code: &'a str,
}

#[derive(Template)]
#[template(path = "email/device_code.txt")]
struct DeviceCodeText<'a> {
    m: &'a CodeMail<'a>,
}

#[derive(Template)]
#[template(path = "email/device_code.html")]
struct DeviceCodeHtml<'a> {
    m: &'a CodeMail<'a>,
}

/// Subject suffix naming what a V2 card adds.
const V2_PURPOSE: &str = "for authentication and e-signatures";

/// Invitation to enrol a newly issued card (distinct wording for V1 = authentication-only card
/// and V2 = card that can also make advanced electronic signatures). `link` is absolute;
/// `expires` is shown as a date (e.g. "7 December 2026").
pub fn invitation(
    to: &str,
    holder_name: &str,
    card_type: CardType,
    serial: &str,
    link: &str,
    expires: OffsetDateTime,
) -> Result<EmailMessage, String> {
    let m =
        card_mail(card_subject("Set up your virtual smartcard", "", card_type), holder_name, card_type, serial, link)?;
    let m = CardMail { expires: date(expires)?, ..m };
    finish(to, &m.subject, InvitationText { m: &m }.render(), InvitationHtml { m: &m }.render())
}

/// Reminder for a holder who has not enrolled yet (V1/V2 wording), same link and expiry.
pub fn reminder(
    to: &str,
    holder_name: &str,
    card_type: CardType,
    serial: &str,
    link: &str,
    expires: OffsetDateTime,
) -> Result<EmailMessage, String> {
    let subject = card_subject("Reminder: set up your virtual smartcard", "", card_type);
    let m = card_mail(subject, holder_name, card_type, serial, link)?;
    let m = CardMail { expires: date(expires)?, ..m };
    finish(to, &m.subject, ReminderText { m: &m }.render(), ReminderHtml { m: &m }.render())
}

/// "Your virtual smartcard is ready" after enrolment (V1/V2 wording), with a link to the
/// portal home.
pub fn setup_complete(
    to: &str,
    holder_name: &str,
    card_type: CardType,
    serial: &str,
    portal_link: &str,
) -> Result<EmailMessage, String> {
    let subject = card_subject("Your virtual smartcard", " is ready", card_type);
    let m = card_mail(subject, holder_name, card_type, serial, portal_link)?;
    finish(to, &m.subject, SetupCompleteText { m: &m }.render(), SetupCompleteHtml { m: &m }.render())
}

/// "Confirm your email address" with a single-use link valid until `expires`.
pub fn email_verification(
    to: &str,
    holder_name: &str,
    link: &str,
    expires: OffsetDateTime,
) -> Result<EmailMessage, String> {
    check_link(link)?;
    let m = LockedMail {
        subject: "Confirm your email address for your virtual smartcard".into(),
        holder_name: holder_name.trim(),
        until: time_and_date(expires)?,
        link,
        by_codes: false,
    };
    finish(to, &m.subject, EmailVerificationText { m: &m }.render(), EmailVerificationHtml { m: &m }.render())
}

/// Why a holder's cards were locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockCause {
    /// 3 wrong passcodes in a row.
    Passcode,
    /// 10 wrong second-factor codes within 24 hours.
    SecondFactor,
}

/// "Your card is locked" (by `cause`), locked at `at`, with the link that resets the passcode, or
/// (`None`: the address is not confirmed, or codes locked the card and a reset needs a code) the
/// advice to contact the RA.
pub fn card_locked(
    to: &str,
    holder_name: &str,
    at: OffsetDateTime,
    reset_link: Option<&str>,
    cause: LockCause,
) -> Result<EmailMessage, String> {
    if let Some(link) = reset_link {
        check_link(link)?;
    }
    let m = LockedMail {
        subject: "Your virtual smartcard is locked".into(),
        holder_name: holder_name.trim(),
        until: time_and_date(at)?,
        link: reset_link.unwrap_or_default(),
        by_codes: cause == LockCause::SecondFactor,
    };
    finish(to, &m.subject, CardLockedText { m: &m }.render(), CardLockedHtml { m: &m }.render())
}

/// "Reset your passcode": a single-use link valid until `expires` (`by_ra`: an RA unlock, which
/// skips the security questions).
pub fn passcode_reset(
    to: &str,
    holder_name: &str,
    link: &str,
    expires: OffsetDateTime,
    by_ra: bool,
) -> Result<EmailMessage, String> {
    check_link(link)?;
    let m = ResetMail {
        subject: if by_ra { "Unlock your virtual smartcard" } else { "Reset the passcode of your virtual smartcard" }
            .into(),
        holder_name: holder_name.trim(),
        until: time_and_date(expires)?,
        link,
        by_ra,
    };
    finish(to, &m.subject, PasscodeResetText { m: &m }.render(), PasscodeResetHtml { m: &m }.render())
}

/// "Your passcode was changed" at `at` (card unlocked, card sessions ended).
pub fn passcode_changed(
    to: &str,
    holder_name: &str,
    at: OffsetDateTime,
    portal_link: &str,
) -> Result<EmailMessage, String> {
    check_link(portal_link)?;
    let m = LockedMail {
        subject: "The passcode of your virtual smartcard was changed".into(),
        holder_name: holder_name.trim(),
        until: time_and_date(at)?,
        link: portal_link,
        by_codes: false,
    };
    finish(to, &m.subject, PasscodeChangedText { m: &m }.render(), PasscodeChangedHtml { m: &m }.render())
}

/// What the card suspended / resumed emails need.
struct SuspensionMail<'a> {
    subject: String,
    holder_name: &'a str,
    serial: &'a str,
    /// Pre-formatted time and date of the change.
    at: String,
    /// Resumed (else suspended).
    resumed: bool,
    /// Resumed into the locked state it was suspended from.
    locked: bool,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/card_suspension.txt")]
struct CardSuspensionText<'a> {
    m: &'a SuspensionMail<'a>,
}

#[derive(Template)]
#[template(path = "email/card_suspension.html")]
struct CardSuspensionHtml<'a> {
    m: &'a SuspensionMail<'a>,
}

/// "Your card was suspended" (`resumed_to` `None`) or "… resumed" (back to `active` / `locked`) by
/// the RA at `at`.
pub fn card_suspension(
    to: &str,
    holder_name: &str,
    serial: &str,
    at: OffsetDateTime,
    resumed_to: Option<&str>,
    portal_link: &str,
) -> Result<EmailMessage, String> {
    check_link(portal_link)?;
    let m = SuspensionMail {
        subject: if resumed_to.is_some() {
            "Your virtual smartcard was resumed"
        } else {
            "Your virtual smartcard was suspended"
        }
        .into(),
        holder_name: holder_name.trim(),
        serial,
        at: time_and_date(at)?,
        resumed: resumed_to.is_some(),
        locked: resumed_to == Some("locked"),
        link: portal_link,
    };
    finish(to, &m.subject, CardSuspensionText { m: &m }.render(), CardSuspensionHtml { m: &m }.render())
}

/// What the staff-invitation email needs.
struct StaffInvitationMail<'a> {
    subject: String,
    holder_name: &'a str,
    /// "RA Manager" / "RA Agent".
    role: &'a str,
    /// The organisations granted, e.g. "ORG1 (Test Trust)".
    organisations: &'a str,
    link: &'a str,
    /// Pre-formatted expiry, e.g. "14:05 UTC on 7 December 2026".
    until: String,
    /// A new link for an existing invitation.
    resent: bool,
}

#[derive(Template)]
#[template(path = "email/staff_invitation.txt")]
struct StaffInvitationText<'a> {
    m: &'a StaffInvitationMail<'a>,
}

#[derive(Template)]
#[template(path = "email/staff_invitation.html")]
struct StaffInvitationHtml<'a> {
    m: &'a StaffInvitationMail<'a>,
}

/// "You have been invited to the vRA Manager as `role` for `organisations`" (or, `resent`, a new
/// link), with the one-time link to set the password, valid until `expires`.
pub fn staff_invitation(
    to: &str,
    name: &str,
    role: &str,
    organisations: &str,
    link: &str,
    expires: OffsetDateTime,
    resent: bool,
) -> Result<EmailMessage, String> {
    check_link(link)?;
    let m = StaffInvitationMail {
        subject: if resent {
            "Your new link to set your vRA Manager password"
        } else {
            "You are invited to the vRA Manager"
        }
        .into(),
        holder_name: name.trim(),
        role,
        organisations,
        link,
        until: time_and_date(expires)?,
        resent,
    };
    finish(to, &m.subject, StaffInvitationText { m: &m }.render(), StaffInvitationHtml { m: &m }.render())
}

/// "14:05 UTC on 7 December 2026".
pub(crate) fn time_and_date(at: OffsetDateTime) -> Result<String, String> {
    let at = at.to_offset(UtcOffset::UTC);
    let time = at.format(TIME).map_err(|e| format!("formatting a time: {e}"))?;
    Ok(format!("{time} UTC on {}", date(at)?))
}

/// The 6-digit code (valid 10 minutes) that confirms adding the device named `device`.
pub fn device_code(to: &str, holder_name: &str, device: &str, code: &str) -> Result<EmailMessage, String> {
    let m = CodeMail {
        subject: "Confirm the new authenticator device for your virtual smartcard".into(),
        holder_name: holder_name.trim(),
        device,
        code,
    };
    finish(to, &m.subject, DeviceCodeText { m: &m }.render(), DeviceCodeHtml { m: &m }.render())
}

/// The SMS carrying a 6-digit verification code (valid 10 minutes).
pub fn sms_code(to: &str, code: &str) -> SmsMessage {
    // Plain ASCII keeps the message in one GSM-7 segment.
    SmsMessage {
        to: to.to_string(),
        body: format!("Your vsc verification code is {code}. It is valid for 10 minutes. Do not share it with anyone."),
    }
}

/// Remove links (http/https URLs) and 6-digit codes from a delivered message body, leaving the
/// rest readable: URLs become "[link removed]" and standalone 6-digit numbers "[code removed]".
/// Longer or shorter digit runs (card serials, years) and digits inside words are kept.
pub fn redact(body: &str) -> String {
    const LINK: &str = "[link removed]";
    const CODE: &str = "[code removed]";
    let mut out = String::with_capacity(body.len());
    let mut prev: Option<char> = None;
    let mut pos = 0;
    while let Some(rest) = body.get(pos..) {
        let Some(c) = rest.chars().next() else { break };
        let after_word = prev.is_some_and(char::is_alphanumeric);
        if !after_word && let Some(len) = url_len(rest) {
            out.push_str(LINK);
            prev = rest.get(..len).and_then(|u| u.chars().next_back());
            pos += len;
            continue;
        }
        if c.is_ascii_digit() && !after_word {
            let run = rest.bytes().take_while(u8::is_ascii_digit).count();
            let digits = rest.get(..run).unwrap_or_default();
            let before_word = rest.get(run..).and_then(|s| s.chars().next()).is_some_and(char::is_alphanumeric);
            out.push_str(if run == 6 && !before_word { CODE } else { digits });
            prev = digits.chars().next_back();
            pos += run;
            continue;
        }
        out.push(c);
        prev = Some(c);
        pos += c.len_utf8();
    }
    out
}

/// Byte length of the http(s) URL `text` begins with, if it begins with one. The URL runs up
/// to white space or a quote or angle bracket; punctuation that ends a sentence is left out.
fn url_len(text: &str) -> Option<usize> {
    let scheme = ["https://", "http://"]
        .into_iter()
        .find(|s| text.get(..s.len()).is_some_and(|head| head.eq_ignore_ascii_case(s)))?;
    let end = text.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`')).unwrap_or(text.len());
    let url = text.get(..end)?.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
    (url.len() > scheme.len()).then_some(url.len())
}

/// "Set up your virtual smartcard" + " for authentication and e-signatures" (V2) + `tail`.
fn card_subject(head: &str, tail: &str, card_type: CardType) -> String {
    match card_type {
        CardType::V1 => format!("{head}{tail}"),
        CardType::V2 => format!("{head} {V2_PURPOSE}{tail}"),
    }
}

fn card_mail<'a>(
    subject: String,
    holder_name: &'a str,
    card_type: CardType,
    serial: &'a str,
    link: &'a str,
) -> Result<CardMail<'a>, String> {
    check_link(link)?;
    Ok(CardMail {
        subject,
        holder_name: holder_name.trim(),
        v2: card_type == CardType::V2,
        serial: serial.trim(),
        link,
        expires: String::new(),
    })
}

/// Links in emails must be absolute. The link itself is not quoted: it may hold a token.
fn check_link(link: &str) -> Result<(), String> {
    let ok = url_len(link) == Some(link.len());
    if ok { Ok(()) } else { Err("a link in an email must be an absolute http:// or https:// URL".into()) }
}

fn date(at: OffsetDateTime) -> Result<String, String> {
    at.to_offset(UtcOffset::UTC).format(DATE).map_err(|e| format!("formatting a date: {e}"))
}

fn finish(
    to: &str,
    subject: &str,
    text: askama::Result<String>,
    html: askama::Result<String>,
) -> Result<EmailMessage, String> {
    let text = text.map_err(|e| format!("rendering the text of {subject:?}: {e}"))?;
    let html = html.map_err(|e| format!("rendering the HTML of {subject:?}: {e}"))?;
    Ok(EmailMessage { to: to.trim().to_string(), subject: subject.to_string(), text, html })
}

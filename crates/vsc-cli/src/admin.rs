//! `vsc admin …`: operator commands on the data dir / database, without a running server.

use std::sync::Arc;

use vsc_proto::{CardView, CreateUserRequest, IssueCardRequest, UserView};
use vsc_server::clock::SystemClock;
use vsc_server::service::IssueCard;
use vsc_server::{Principal, Vsc};

use crate::cli::{
    AdminCommand, AppCommand, CardCommand, DeviceCommand, Global, OrgCommand, StaffCommand, TokenCommand, UserCommand,
};

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_user(u: &UserView) {
    println!("user {}  {}", u.id, u.display_name);
    println!("  email {}  organisation {}  mobile {}", u.email, u.organisation, u.mobile.as_deref().unwrap_or("-"));
    for c in &u.cards {
        print!("  ");
        print_card(c);
    }
}

fn print_card(c: &CardView) {
    println!(
        "card {} {} {} roles {} expires {}",
        c.serial,
        c.card_type,
        c.state,
        c.roles.join(","),
        c.expires_at.date()
    );
}

/// Run an admin command.
pub async fn run(global: &Global, cmd: AdminCommand) -> anyhow::Result<()> {
    let config = global.load()?;
    // Only bootstrap starts an installation: any other command on a data dir without a database
    // (a mistyped --data-dir) fails instead of creating a new key-encryption key and CA there.
    if config.database_url.is_none() && !matches!(cmd, AdminCommand::Bootstrap(_)) {
        anyhow::ensure!(
            vsc_store::sqlite_path(&config.data_dir).exists(),
            "no vsc database in {}: check --data-dir (or VSC_DATA_DIR); `vsc admin bootstrap` or `vsc serve` creates one",
            config.data_dir.display()
        );
    }
    let vsc = Vsc::open(config, Arc::new(SystemClock)).await?;
    let op = Principal::Operator;
    let result = dispatch(&vsc, &op, cmd).await;
    vsc.store().close().await;
    result
}

async fn dispatch(vsc: &Vsc, op: &Principal, cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Bootstrap(a) => {
            let out = vsc.bootstrap(&a.org, &a.org_name, &a.email_domains, &a.ra_email, &a.ra_name).await?;
            if a.json {
                print_json(&serde_json::json!({
                    "organisation": out.organisation,
                    "organisation_created": out.organisation_created,
                    "ra_email": out.ra_email,
                    "staff_created": out.staff_created,
                    "operator": out.operator,
                    "token": out.token,
                    "password_link": out.password_link,
                }))?;
            } else {
                let org = if out.organisation_created { "created" } else { "exists" };
                let staff = if out.staff_created { "created" } else { "exists" };
                eprintln!("organisation {} ({org}); RA manager {} ({staff}), operator", out.organisation, out.ra_email);
                eprintln!("API token (shown once; use it as `Authorization: Bearer <token>`):");
                println!("{}", out.token);
                eprintln!("Link to set the manager's vRA Manager password (works once, for 24 hours):");
                eprintln!("{}", out.password_link);
            }
        }
        AdminCommand::Staff(StaffCommand::Invite { email, org, role, name, operator, json }) => {
            let out = vsc.invite_staff_as(&email, &org, &role, name.as_deref(), operator).await?;
            if json {
                print_json(&serde_json::json!({
                    "email": out.email,
                    "role": out.role,
                    "created": out.created,
                    "granted": out.granted,
                    "operator": out.operator,
                    "password_link": out.password_link,
                }))?;
            } else {
                let account = if out.created { "created" } else { "exists" };
                eprintln!(
                    "RA {} {} ({account}); link to set the password (works once, for 24 hours):",
                    out.role, out.email
                );
                println!("{}", out.password_link);
            }
        }
        AdminCommand::Staff(StaffCommand::Operator { email, state }) => {
            let on = state == "on";
            let changed = vsc.set_staff_operator(&email, on).await?;
            let what = if on { "is an operator" } else { "is not an operator" };
            eprintln!("{email} {what}{}", if changed { "" } else { " (unchanged)" });
        }
        AdminCommand::Staff(StaffCommand::ResetTotp { email }) => {
            vsc.reset_staff_totp(&email).await?;
            eprintln!("{email}: two-step sign-in cleared and sessions ended; the next sign-in sets it up again");
        }
        AdminCommand::Staff(StaffCommand::Disable { email }) => {
            let s = vsc.set_staff_disabled(&email, true).await?;
            eprintln!("RA {} {} disabled", s.role, s.email);
        }
        AdminCommand::Staff(StaffCommand::Enable { email }) => {
            let s = vsc.set_staff_disabled(&email, false).await?;
            eprintln!("RA {} {} enabled", s.role, s.email);
        }
        AdminCommand::Token(TokenCommand::Create { email, json }) => {
            let token = vsc.create_token(&email).await?;
            if json {
                print_json(&serde_json::json!({ "email": email, "token": token }))?;
            } else {
                println!("{token}");
            }
        }
        AdminCommand::User(UserCommand::Create {
            org,
            forename,
            surname,
            email,
            mobile,
            subject_cn,
            directory_account,
            json,
        }) => {
            let req = CreateUserRequest {
                organisation: org,
                forename,
                surname,
                email,
                mobile,
                subject_cn,
                directory_account,
            };
            let u = vsc.create_user(op, &req).await?;
            if json { print_json(&u)? } else { print_user(&u) }
        }
        AdminCommand::User(UserCommand::Show { email, json }) => {
            let u = vsc.user_by_email(op, &email).await?;
            if json { print_json(&u)? } else { print_user(&u) }
        }
        AdminCommand::Card(CardCommand::Issue { email, card_type, roles, key_algorithm, json }) => {
            let req = IssueCard::parse(&IssueCardRequest { card_type, roles, key_algorithm })?;
            let user = vsc.user_by_email(op, &email).await?;
            let c = vsc.issue_card(op, &user.id.to_string(), &req).await?;
            // Send the invitation now when this command has an SMTP server; otherwise the running
            // server sends it (or keeps it in the local outbox).
            vsc.deliver_due_if_configured().await?;
            if json { print_json(&c)? } else { print_card(&c) }
        }
        AdminCommand::Card(CardCommand::Show { serial, json }) => {
            let c = vsc.get_card(op, &serial).await?;
            if json { print_json(&c)? } else { print_card(&c) }
        }
        AdminCommand::Card(CardCommand::Resend { serial, json }) => {
            let c = vsc.resend_invitation(op, &serial).await?;
            // Send now when this command has an SMTP server; otherwise the running server does.
            vsc.deliver_due_if_configured().await?;
            if json { print_json(&c)? } else { print_card(&c) }
        }
        AdminCommand::Card(CardCommand::Unlock { serial, json }) => {
            let c = vsc.issue_reset_link_for_unlock(op, &serial).await?.applied()?;
            // Send now when this command has an SMTP server; otherwise the running server does.
            vsc.deliver_due_if_configured().await?;
            if json { print_json(&c)? } else { print_card(&c) }
        }
        AdminCommand::Device(DeviceCommand::PinReset { device_id, json }) => {
            let issued = vsc.issue_pin_reset(op, &device_id).await?;
            if json {
                print_json(&issued)?;
            } else {
                let until =
                    issued.expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                eprintln!(
                    "PIN-reset token for device {} (works once, until {until}; older ones are void):",
                    issued.device_id
                );
                println!("{}", issued.token);
            }
        }
        AdminCommand::Outbox { to, limit, json } => {
            for m in vsc.outbox(to.as_deref(), limit).await? {
                if json {
                    println!("{}", serde_json::to_string(&m)?);
                } else {
                    let at = m.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                    println!("--- {at} {} to {} [{}] {}", m.channel, m.to, m.status, m.kind);
                    if let Some(s) = &m.subject {
                        println!("Subject: {s}");
                    }
                    println!("{}\n", m.body.trim_end());
                }
            }
        }
        AdminCommand::Remind { json } => {
            let n = vsc.send_reminders().await?;
            vsc.deliver_due_if_configured().await?;
            if json {
                println!("{}", serde_json::json!({ "reminders_sent": n }))
            } else {
                println!("{n} reminder(s) sent")
            }
        }
        AdminCommand::Card(CardCommand::Renew { serial, json }) => {
            let c = vsc.renew_card(op, &serial).await?;
            if json { print_json(&c)? } else { print_card(&c) }
        }
        AdminCommand::Card(CardCommand::Revoke { serial, reason, json }) => {
            let c = vsc.revoke_card(op, &serial, reason.as_deref()).await?;
            if json { print_json(&c)? } else { print_card(&c) }
        }
        AdminCommand::Org(OrgCommand::List { json }) => {
            let orgs = vsc.list_organisations(op).await?;
            if json {
                print_json(&orgs)?;
            } else {
                for o in orgs {
                    println!("{}  {}  domains {}", o.code, o.name, o.email_domains.join(", "));
                }
            }
        }
        AdminCommand::Org(OrgCommand::Policy { code, push_only, dual_control }) => {
            if let Some(push_only) = push_only {
                let on = push_only == "on";
                vsc.set_push_only(op, &code, on).await?;
                println!("{code}: push-only card login {}", if on { "allowed" } else { "off" });
            }
            if let Some(dual) = dual_control {
                let on = dual == "on";
                vsc.set_dual_control(op, &code, on).await?;
                println!("{code}: dual control {}", if on { "on" } else { "off" });
            }
        }
        AdminCommand::App(AppCommand::Create { name, json }) => {
            let app = vsc.create_app(&name).await?;
            if json {
                print_json(&app)?;
            } else {
                println!("app {} registered; its API key (shown once):\n{}", app.name, app.key);
            }
        }
        AdminCommand::Audit { limit, json } => {
            let events = vsc.audit_log(op, limit).await?;
            if json {
                print_json(&events)?;
            } else {
                for e in events {
                    println!(
                        "{} {} {} {} {}",
                        e.at,
                        e.actor,
                        e.action,
                        e.organisation.as_deref().unwrap_or("-"),
                        e.target.as_deref().unwrap_or("-")
                    );
                }
            }
        }
    }
    Ok(())
}

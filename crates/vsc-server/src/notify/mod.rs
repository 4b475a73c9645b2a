//! Outgoing messages: email over SMTP (lettre), SMS through a gateway, and their templates.
//! (Being written — see the task description.)

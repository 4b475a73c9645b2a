//! Card login: push, number matching, code and QR fallbacks, lockout, sessions and tickets.

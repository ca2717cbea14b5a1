//! TOTP secrets and recovery codes of mailboxes and administrators.

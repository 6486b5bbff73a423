//! Templated mail (verification code, password reset, temporary password, early-access
//! invitation) sent over SMTP with lettre, or written to files when no SMTP server is configured.

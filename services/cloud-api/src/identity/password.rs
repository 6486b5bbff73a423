//! Password rules from configuration. A password is never logged or echoed; a refusal says which
//! rule failed, not what was typed.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use web::{ApiError, ErrorCode};

use crate::config::PasswordRules;

/// The configured rules.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    rules: PasswordRules,
}

impl PasswordPolicy {
    /// The policy of `rules`.
    pub fn new(rules: PasswordRules) -> Self {
        Self { rules }
    }

    /// Checks `password` (of the account `email`); a failure is 422 `weak_password` with the
    /// broken rules in `details.password`.
    pub fn check(&self, password: &SecretString, email: &str) -> Result<(), ApiError> {
        let password = password.expose_secret();
        let length = password.chars().count();
        let mut broken = Vec::new();
        if length < self.rules.min_length {
            broken.push(format!(
                "must be at least {} characters long",
                self.rules.min_length
            ));
        }
        if length > self.rules.max_length {
            broken.push(format!(
                "must be at most {} characters long",
                self.rules.max_length
            ));
        }
        if self.rules.require_letter_and_digit
            && !(password.chars().any(char::is_alphabetic)
                && password.chars().any(|c| c.is_ascii_digit()))
        {
            broken.push("must contain a letter and a digit".to_owned());
        }
        let local = email.split('@').next().unwrap_or_default().to_lowercase();
        if local.len() >= 3 && password.to_lowercase().contains(&local) {
            broken.push("must not contain the email address".to_owned());
        }
        if broken.is_empty() {
            return Ok(());
        }
        Err(ApiError::named(
            ErrorCode::ValidationFailed,
            "weak_password",
            "The password is too weak.",
        )
        .details(json!({ "password": broken })))
    }
}

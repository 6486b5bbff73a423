//! A function's environment variables (SPEC §3.2): replaced as a whole, stored sealed with
//! AES-256-GCM (`functions.env_ciphertext`, `env_nonce`) and bound to the function's id, so a
//! ciphertext copied onto another function's row does not open. Reads show the names only:
//! every value is masked the same way, so neither a value nor its length leaks.

use std::collections::BTreeMap;

use db::FunctionId;
use db::FunctionStatus;
use db::functions::EncryptedEnv;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use web::{ApiError, Caller, ErrorCode};

use super::Functions;

/// What every value reads as.
pub const MASK: &str = "********";

/// The prefix reserved for the variables the platform sets itself.
pub const RESERVED_PREFIX: &str = "CONTAINERPUB_";

/// `PUT /api/functions/:id/env`: the complete new set of variables (`{}` removes them all).
/// Names and sizes are checked by [`Functions::replace_env`], which reports each bad name
/// under `vars.<NAME>`.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct EnvUpdate {
    /// Name → value.
    #[garde(skip)]
    pub vars: BTreeMap<String, String>,
}

/// The variables as the API shows them: names, with masked values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvView {
    /// Name → [`MASK`].
    pub vars: BTreeMap<String, &'static str>,
}

impl EnvView {
    fn masked<V>(vars: &BTreeMap<String, V>) -> Self {
        Self {
            vars: vars.keys().map(|name| (name.clone(), MASK)).collect(),
        }
    }
}

impl Functions {
    /// The caller's function's variables, masked.
    pub async fn env(&self, caller: &Caller, id: FunctionId) -> Result<EnvView, ApiError> {
        let function = self.owned(caller, id).await?;
        let vars = self.env_vars(function.id).await?;
        Ok(EnvView::masked(&vars))
    }

    /// Replaces the caller's function's variables with `update.vars` (an empty set removes
    /// them). 422 `validation_failed` with `details` keyed by `vars.<NAME>` (or `vars` for the
    /// limits); 410 while the function is scheduled for deletion. Instances started afterwards
    /// get the new values; no rebuild is needed.
    pub async fn replace_env(
        &self,
        caller: &Caller,
        id: FunctionId,
        update: EnvUpdate,
    ) -> Result<EnvView, ApiError> {
        check_vars(
            &update.vars,
            self.config.max_env_vars,
            self.config.max_env_bytes,
        )?;
        let function = self.owned(caller, id).await?;
        if function.status == FunctionStatus::PendingDeletion {
            return Err(ApiError::named(
                ErrorCode::Gone,
                "function_pending_deletion",
                "The function is scheduled for deletion.",
            ));
        }
        let sealed = if update.vars.is_empty() {
            None
        } else {
            let plaintext = serde_json::to_vec(&update.vars).map_err(ApiError::internal)?;
            let sealed = self
                .env
                .seal(&plaintext, &context(function.id))
                .map_err(ApiError::internal)?;
            Some(EncryptedEnv {
                ciphertext: sealed.ciphertext,
                nonce: sealed.nonce,
            })
        };
        let mut conn = self.conn().await?;
        if !db::functions::set_function_env(&mut conn, function.id, sealed.as_ref()).await? {
            return Err(ApiError::not_found("function"));
        }
        tracing::info!(function.id = %function.id, vars = update.vars.len(), "environment replaced");
        Ok(EnvView::masked(&update.vars))
    }

    /// The variables of function `id`, in clear, for starting its instances (whoever the
    /// caller: check access first). Empty when it has none.
    pub async fn env_vars(&self, id: FunctionId) -> Result<BTreeMap<String, String>, ApiError> {
        let mut conn = self.conn().await?;
        let Some(stored) = db::functions::function_env(&mut conn, id).await? else {
            return Ok(BTreeMap::new());
        };
        drop(conn);
        let sealed = signing::Sealed {
            ciphertext: stored.ciphertext,
            nonce: stored.nonce,
        };
        let plaintext = self
            .env
            .open(&sealed, &context(id))
            .map_err(ApiError::internal)?;
        serde_json::from_slice(&plaintext).map_err(ApiError::internal)
    }
}

/// The associated data a function's variables are sealed with: their purpose and the function.
fn context(id: FunctionId) -> Vec<u8> {
    format!("containerpub.function-env:{id}").into_bytes()
}

/// Checks names and limits: names `[A-Z_][A-Z0-9_]*` outside [`RESERVED_PREFIX`], values
/// without NUL (an environment cannot hold one), at most `max_vars` variables and `max_bytes`
/// bytes of names plus values.
fn check_vars(
    vars: &BTreeMap<String, String>,
    max_vars: usize,
    max_bytes: usize,
) -> Result<(), ApiError> {
    let invalid = |details: Map<String, Value>| {
        Err(ApiError::new(ErrorCode::ValidationFailed).details(Value::Object(details)))
    };
    let mut limits = Vec::new();
    if vars.len() > max_vars {
        limits.push(format!(
            "at most {max_vars} variables are allowed; got {}",
            vars.len()
        ));
    }
    let bytes: usize = vars
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if bytes > max_bytes {
        limits.push(format!(
            "names and values may take at most {max_bytes} bytes; got {bytes}"
        ));
    }
    if !limits.is_empty() {
        return invalid(Map::from_iter([("vars".to_owned(), json!(limits))]));
    }
    let mut fields = Map::new();
    for (name, value) in vars {
        let mut problems = Vec::new();
        if !is_valid_name(name) {
            problems.push("must start with A-Z or _ and contain only A-Z, 0-9 and _".to_owned());
        } else if name.starts_with(RESERVED_PREFIX) {
            problems.push(format!(
                "the prefix {RESERVED_PREFIX} is reserved for the platform"
            ));
        }
        if value.contains('\0') {
            problems.push("the value must not contain a NUL character".to_owned());
        }
        if !problems.is_empty() {
            fields.insert(format!("vars.{name}"), json!(problems));
        }
    }
    if fields.is_empty() {
        Ok(())
    } else {
        invalid(fields)
    }
}

/// `^[A-Z_][A-Z0-9_]*$`.
fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_uppercase() || first == b'_')
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn details(result: Result<(), ApiError>) -> Value {
        let err = result.expect_err("refused");
        assert_eq!(err.code(), ErrorCode::ValidationFailed);
        let response = actix_web::ResponseError::error_response(&err);
        assert_eq!(response.status(), 422);
        let bytes = actix_web::body::MessageBody::try_into_bytes(response.into_body())
            .expect("a complete body");
        let body: Value = serde_json::from_slice(&bytes).expect("a JSON body");
        body["details"].clone()
    }

    #[test]
    fn names_follow_the_pattern() {
        for good in ["A", "_", "API_TOKEN", "X9", "_LEADING", "A_1_B"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "a", "9X", "API-TOKEN", "api_token", "A B", "É", "A.B"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn bad_names_and_the_reserved_prefix_are_named_in_details() {
        let d = details(check_vars(
            &vars(&[("ok", "1"), ("CONTAINERPUB_X", "2"), ("GOOD", "3")]),
            10,
            1000,
        ));
        assert!(d.get("vars.ok").is_some(), "{d}");
        assert!(d.get("vars.CONTAINERPUB_X").is_some(), "{d}");
        assert!(d.get("vars.GOOD").is_none(), "{d}");
    }

    #[test]
    fn limits_are_enforced() {
        let d = details(check_vars(&vars(&[("A", "1"), ("B", "2")]), 1, 1000));
        assert!(
            d["vars"][0]
                .as_str()
                .unwrap()
                .contains("at most 1 variables"),
            "{d}"
        );
        let d = details(check_vars(&vars(&[("A", "12345")]), 10, 5));
        assert!(
            d["vars"][0].as_str().unwrap().contains("at most 5 bytes"),
            "{d}"
        );
        assert!(check_vars(&vars(&[("A", "1234")]), 1, 5).is_ok());
        assert!(check_vars(&BTreeMap::new(), 0, 0).is_ok());
    }

    #[test]
    fn a_nul_in_a_value_is_refused() {
        let d = details(check_vars(&vars(&[("A", "x\0y")]), 10, 100));
        assert!(d.get("vars.A").is_some(), "{d}");
    }
}

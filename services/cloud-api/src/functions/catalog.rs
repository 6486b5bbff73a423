//! Creating, listing and describing functions.

use db::functions::{Function, NewFunction};
use serde_json::{Value, json};
use web::{ApiError, Caller, PageQuery};

use super::{FunctionView, Functions};

impl Functions {
    /// Creates the caller's function `name`, or returns the existing one of that name
    /// (`false`: it already existed).
    pub async fn init(
        &self,
        caller: &Caller,
        name: &str,
        skip_signing: bool,
    ) -> Result<(Function, bool), ApiError> {
        let mut conn = self.conn().await?;
        if let Some(existing) =
            db::functions::find_function_by_name(&mut conn, caller.id(), name).await?
        {
            return Ok((existing, false));
        }
        match db::functions::insert_function(
            &mut conn,
            &NewFunction::new(caller.id(), name, skip_signing),
        )
        .await
        {
            Ok(function) => Ok((function, true)),
            // A concurrent init of the same name won the race: answer as for an existing one.
            Err(err) if err.is_conflict_on(db::functions::NAME_UNIQUE) => {
                let existing = db::functions::find_function_by_name(&mut conn, caller.id(), name)
                    .await?
                    .ok_or_else(|| ApiError::internal(err))?;
                Ok((existing, false))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// One page of the caller's functions, newest first, and the total.
    pub async fn list(
        &self,
        caller: &Caller,
        page: &PageQuery,
    ) -> Result<(Vec<FunctionView>, i64), ApiError> {
        let mut conn = self.conn().await?;
        let found =
            db::functions::list_functions_for_owner(&mut conn, caller.id(), page.db_page()).await?;
        let active: Vec<_> = found
            .items
            .iter()
            .filter_map(|f| f.active_deployment_id)
            .collect();
        let versions = db::builds::versions_of(&mut conn, &active).await?;
        let version_of = |f: &Function| {
            f.active_deployment_id
                .and_then(|id| versions.iter().find(|(d, _)| *d == id).map(|(_, v)| *v))
        };
        let items = found
            .items
            .iter()
            .map(|f| FunctionView::new(f, version_of(f)))
            .collect();
        Ok((items, found.total))
    }

    /// The limits that apply to the caller's functions (their tier's).
    pub async fn limits_for(&self, caller: &Caller) -> Result<Value, ApiError> {
        let mut conn = self.conn().await?;
        let tier = db::tiers::effective_tier(&mut conn, caller.id())
            .await?
            .ok_or_else(|| ApiError::internal("no default tier exists"))?;
        Ok(json!({
            "tier": tier.name,
            "memory_mb": tier.max_memory_mb,
            "timeout_s": tier.max_timeout_s,
            "max_concurrency": tier.max_concurrency,
            "invocations_per_minute": tier.invocations_per_minute,
            "max_archive_mb": tier.max_archive_mb,
            "min_warm": tier.min_warm,
            "network_egress": tier.network_egress,
        }))
    }
}

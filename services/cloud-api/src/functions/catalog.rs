//! Creating, listing and describing functions.

use db::functions::{Function, NewFunction};
use diesel_async::AsyncConnection;
use serde_json::{Value, json};
use web::{ApiError, Caller, PageQuery};

use super::{FunctionView, Functions};

impl Functions {
    /// Creates the caller's function `name`, or returns the existing one of that name
    /// (`false`: it already existed). A new function must fit the caller's tier's
    /// `max_functions` (403 `tier_limit_exceeded` otherwise); the count and the insert run under
    /// a per-owner lock, so two concurrent inits cannot both take the last place.
    pub async fn init(
        &self,
        caller: &Caller,
        name: &str,
        skip_signing: bool,
    ) -> Result<(Function, bool), ApiError> {
        let mut conn = self.conn().await?;
        let owner = caller.id();
        conn.transaction::<_, ApiError, _>(async |conn| {
            db::limits::lock_owner_functions(conn, owner).await?;
            if let Some(existing) = db::functions::find_function_by_name(conn, owner, name).await? {
                return Ok((existing, false));
            }
            let tier = crate::tiers::effective(conn, owner).await?;
            let owned = db::limits::count_owned_functions(conn, owner).await?;
            if owned >= i64::from(tier.max_functions) {
                return Err(crate::tiers::exceeded(
                    &tier,
                    "max_functions",
                    tier.max_functions.into(),
                    Some(owned + 1),
                ));
            }
            let function =
                db::functions::insert_function(conn, &NewFunction::new(owner, name, skip_signing))
                    .await?;
            Ok((function, true))
        })
        .await
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
        let tier = crate::tiers::effective(&mut conn, caller.id()).await?;
        Ok(json!({
            "tier": tier.name,
            "memory_mb": tier.max_memory_mb,
            "timeout_s": tier.max_timeout_s,
            "max_concurrency": tier.max_concurrency,
            "invocations_per_minute": tier.invocations_per_minute,
            "max_archive_mb": tier.max_archive_mb,
            "min_warm": tier.min_warm,
            // Functions always run with network `none` here: a tier that allows egress is
            // reported as such, but the function gets none (docs/TIERS.md).
            "network_egress": false,
            "network_egress_in_tier": tier.network_egress,
        }))
    }
}

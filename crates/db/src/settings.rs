//! `platform_settings`: the single row (id = 1) of platform-wide settings — whether
//! registration is open, and the early-access capacity.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::schema::platform_settings;

/// The settings row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = platform_settings, check_for_backend(diesel::pg::Pg))]
pub struct PlatformSettings {
    /// `true`: anyone may register; `false`: approved early-access emails only, within capacity.
    pub registration_open: bool,
    /// How many early-access requests may be approved; `None`: no limit.
    pub early_access_capacity: Option<i32>,
    /// The admin who changed them last.
    pub updated_by: Option<String>,
    /// When.
    pub updated_at: OffsetDateTime,
}

/// Reads the settings.
pub async fn get(conn: &mut AsyncPgConnection) -> Result<PlatformSettings> {
    Ok(platform_settings::table
        .find(1_i16)
        .select(PlatformSettings::as_select())
        .first(conn)
        .await?)
}

/// Reads the settings and locks the row until the transaction ends: approvals and
/// registrations decided against the capacity serialise on it.
pub async fn lock(conn: &mut AsyncPgConnection) -> Result<PlatformSettings> {
    Ok(platform_settings::table
        .find(1_i16)
        .for_update()
        .select(PlatformSettings::as_select())
        .first(conn)
        .await?)
}

/// Writes both settings.
pub async fn update(
    conn: &mut AsyncPgConnection,
    registration_open: bool,
    early_access_capacity: Option<i32>,
    updated_by: &str,
) -> Result<PlatformSettings> {
    Ok(diesel::update(platform_settings::table.find(1_i16))
        .set((
            platform_settings::registration_open.eq(registration_open),
            platform_settings::early_access_capacity.eq(early_access_capacity),
            platform_settings::updated_by.eq(updated_by),
        ))
        .returning(PlatformSettings::as_returning())
        .get_result(conn)
        .await?)
}

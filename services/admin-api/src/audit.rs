//! Recording admin writes in the audit log, inside the transaction of the change.

use crate::auth::Admin;

/// Records one admin write; call it inside the transaction of the change.
pub async fn record(
    conn: &mut db::AsyncPgConnection,
    admin: &Admin,
    action: &str,
    target_type: &str,
    target_id: Option<String>,
    details: serde_json::Value,
) -> db::Result<()> {
    db::audit::insert(
        conn,
        &db::audit::NewAuditEntry {
            actor_subject: &admin.subject,
            actor_username: Some(&admin.username),
            actor_role: Some(admin.role.as_str()),
            action,
            target_type,
            target_id: target_id.as_deref(),
            details: &details,
            request_id: None,
            client_addr: None,
        },
    )
    .await
}

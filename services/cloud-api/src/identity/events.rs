//! The authentication audit trail, and invalidations every replica must hear about.

use std::time::Duration;

use db::identity::{AuthEventContext, AuthEventKind};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use web::{ClientInfo, Users};

/// The PostgreSQL channel that carries invalidations between replicas.
const CHANNEL: &str = "containerpub_auth";

/// Records an authentication event. A failure to record is logged, not raised: the audit trail
/// must not turn a successful login into an error for the user.
pub(super) async fn record(
    conn: &mut AsyncPgConnection,
    kind: AuthEventKind,
    user_id: Option<db::UserId>,
    reason: Option<&str>,
    client: &ClientInfo,
) {
    let context = AuthEventContext {
        user_id,
        reason,
        client_addr: client.addr.as_deref(),
        user_agent: client.user_agent.as_deref(),
        request_id: Some(client.request_id.as_str()),
    };
    if let Err(err) = db::identity::insert_auth_event(conn, kind, &context).await {
        tracing::error!(event = kind.as_str(), error = %err, "could not record an authentication event");
    }
}

/// Announces and applies cache invalidations through PostgreSQL `LISTEN/NOTIFY`, so a logout or
/// a block on one replica stops the token or account on all of them at once.
///
/// Other caches subscribe to payloads of their own prefix ([`Invalidations::subscribe`]) and
/// announce with [`Invalidations::announce`]; the API-key cache does.
#[derive(Clone)]
pub struct Invalidations {
    users: Users,
    hooks: std::sync::Arc<std::sync::RwLock<Vec<(&'static str, Hook)>>>,
}

/// Called with the rest of a payload after its prefix, or `None` when every entry must go
/// (the listener reconnected and may have missed announcements).
pub type Hook = std::sync::Arc<dyn Fn(Option<&str>) + Send + Sync>;

impl Invalidations {
    pub(super) fn new(users: Users) -> Self {
        Self {
            users,
            hooks: std::sync::Arc::default(),
        }
    }

    /// Calls `hook` for every payload `<prefix><rest>` (with `rest`), here and from other
    /// replicas, and with `None` after a reconnection.
    pub fn subscribe(&self, prefix: &'static str, hook: Hook) {
        if let Ok(mut hooks) = self.hooks.write() {
            hooks.push((prefix, hook));
        }
    }

    /// Announces `payload` to every replica (this one included, through its listener).
    pub async fn announce(&self, conn: &mut AsyncPgConnection, payload: &str) {
        self.notify(conn, payload).await;
    }

    fn run_hooks(&self, payload: Option<&str>) {
        let Ok(hooks) = self.hooks.read() else {
            return;
        };
        for (prefix, hook) in hooks.iter() {
            match payload {
                None => hook(None),
                Some(p) => {
                    if let Some(rest) = p.strip_prefix(prefix) {
                        hook(Some(rest));
                    }
                }
            }
        }
    }

    /// Drops `token` from this replica's caches now and tells the others (by its hash).
    pub async fn token_revoked(&self, conn: &mut AsyncPgConnection, token: &str) {
        self.users.authenticator().forget(token).await;
        let hash = auth::secret::TokenHash::of(token).to_hex();
        self.notify(conn, &format!("token:{hash}")).await;
    }

    /// Drops the cached account row of `subject` here and on the other replicas.
    pub async fn account_changed(&self, conn: &mut AsyncPgConnection, subject: &str) {
        self.users.forget(subject).await;
        self.notify(conn, &format!("subject:{subject}")).await;
    }

    async fn notify(&self, conn: &mut AsyncPgConnection, payload: &str) {
        let sent = diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(CHANNEL)
            .bind::<diesel::sql_types::Text, _>(payload)
            .execute(conn)
            .await;
        if let Err(err) = sent {
            tracing::error!(error = %err, "could not announce an invalidation to other replicas");
        }
    }

    async fn apply(&self, payload: &str) {
        if let Some(hex) = payload.strip_prefix("token:") {
            if let (Some(hash), Some(keycloak)) = (
                auth::secret::TokenHash::from_hex(hex),
                self.users.authenticator().keycloak(),
            ) {
                keycloak.forget_hash(&hash).await;
            }
        } else if let Some(subject) = payload.strip_prefix("subject:") {
            self.users.forget(subject).await;
        } else {
            self.run_hooks(Some(payload));
        }
    }

    /// Listens for invalidations until the process ends, reconnecting after a failure (and then
    /// dropping every cached account, since announcements may have been missed meanwhile).
    pub async fn listen(self, database_url: String) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.listen_once(&database_url).await {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(err) => {
                    tracing::warn!(error = %err, "invalidation listener disconnected; reconnecting");
                }
            }
            self.users.forget_all();
            self.run_hooks(None);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    async fn listen_once(&self, database_url: &str) -> Result<(), diesel::result::Error> {
        let mut conn = AsyncPgConnection::establish(database_url)
            .await
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut conn)
            .await?;
        let mut notifications = std::pin::pin!(conn.notifications_stream());
        while let Some(notification) = notifications.next().await {
            self.apply(&notification?.payload).await;
        }
        Ok(())
    }
}

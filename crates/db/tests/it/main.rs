//! Integration tests of the data layer against a real PostgreSQL: each test gets its own
//! database from `db::testing::TestDatabase`.

mod api_keys;
mod deployments;
mod functions;
mod limits;
mod migrations;
mod observability;
mod organizations;
mod registration;
mod schema_rules;
mod tiers;
mod users;

use db::users::{NewUser, insert_user};
use db::{AsyncPgConnection, UserId};

/// Inserts a user with a unique email and returns its id.
pub async fn some_user(conn: &mut AsyncPgConnection) -> UserId {
    let id = UserId::new();
    let mut new = NewUser::new(format!("user-{id}@example.com"), "Ada", "Lovelace");
    new.id = id;
    insert_user(conn, &new).await.expect("insert user").id
}

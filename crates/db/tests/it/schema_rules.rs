//! Rules every migration must keep: indexed foreign keys, TIMESTAMPTZ only, `updated_at`
//! triggers, and CHECK constraints that accept exactly the Rust enums' strings.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use db::AsyncPgConnection;
use db::enums::*;
use db::testing::TestDatabase;

#[derive(QueryableByName, Debug)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

async fn lines(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    let mut lines: Vec<String> = diesel::sql_query(sql)
        .load::<Line>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|l| l.line)
        .collect();
    lines.sort();
    lines
}

/// Tables, views, sequences, functions and types left in schema `public`.
pub async fn public_objects(conn: &mut AsyncPgConnection) -> Vec<String> {
    lines(
        conn,
        "SELECT CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'v' THEN 'view ' WHEN 'S' THEN 'sequence ' \
                ELSE c.relkind::text || ' ' END || c.relname AS line
           FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'm', 'p')
            AND NOT (c.relkind = 'S' AND c.relname LIKE '\\_\\_diesel%')
         UNION ALL
         SELECT 'function ' || p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
         UNION ALL
         SELECT 'type ' || t.typname FROM pg_type t
          WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'c')
            AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)",
    )
    .await
}

/// Foreign-key columns that are not the leading column of any (non-partial) index.
const UNINDEXED_FK_COLUMNS: &str = "
    SELECT c.conrelid::regclass::text || '.' || a.attname || ' (' || c.conname || ')' AS line
      FROM pg_constraint c
      CROSS JOIN LATERAL unnest(c.conkey) AS k(attnum)
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
     WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_index i
                        WHERE i.indrelid = c.conrelid AND i.indkey[0] = k.attnum AND i.indpred IS NULL)";

#[tokio::test]
async fn every_foreign_key_column_leads_an_index() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    assert_eq!(
        lines(&mut conn, UNINDEXED_FK_COLUMNS).await,
        Vec::<String>::new()
    );

    // The check does catch an unindexed foreign key.
    diesel::sql_query("CREATE TABLE probe (user_id UUID REFERENCES users (id))")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        lines(&mut conn, UNINDEXED_FK_COLUMNS).await,
        vec!["probe.user_id (probe_user_id_fkey)".to_owned()]
    );
}

#[tokio::test]
async fn timestamps_are_timestamptz_and_updated_at_is_maintained() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let naive = lines(
        &mut conn,
        "SELECT table_name || '.' || column_name AS line FROM information_schema.columns
          WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'
            AND table_name <> '__diesel_schema_migrations'",
    )
    .await;
    assert_eq!(naive, Vec::<String>::new(), "TIMESTAMPTZ everywhere");

    let without_trigger = lines(
        &mut conn,
        "SELECT c.table_name AS line FROM information_schema.columns c
          WHERE c.table_schema = 'public' AND c.column_name = 'updated_at'
            AND NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                             WHERE t.tgrelid = ('public.' || c.table_name)::regclass
                               AND p.proname = 'set_updated_at')",
    )
    .await;
    assert_eq!(
        without_trigger,
        Vec::<String>::new(),
        "every updated_at has its trigger"
    );
}

/// The quoted values of a CHECK constraint, sorted.
async fn check_values(conn: &mut AsyncPgConnection, constraint: &str) -> Vec<String> {
    let def = lines(
        conn,
        &format!("SELECT pg_get_constraintdef(oid) AS line FROM pg_constraint WHERE conname = '{constraint}'"),
    )
    .await;
    assert_eq!(def.len(), 1, "constraint {constraint} exists once");
    let mut values: Vec<String> = def[0]
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    values.sort();
    values
}

fn sorted(values: impl IntoIterator<Item = &'static str>) -> Vec<String> {
    let mut v: Vec<String> = values.into_iter().map(str::to_owned).collect();
    v.sort();
    v
}

#[tokio::test]
async fn check_constraints_match_the_rust_enums() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "users_status_check",
            sorted(UserStatus::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "users_admin_role_check",
            sorted(AdminRole::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "functions_status_check",
            sorted(FunctionStatus::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "functions_deletion_status_check",
            sorted(DeletionStatus::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "deployments_status_check",
            sorted(DeploymentStatus::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "executions_status_check",
            sorted(ExecutionStatus::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "api_keys_validity_check",
            sorted(ApiKeyValidity::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "early_access_requests_status_check",
            sorted(EarlyAccessStatus::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "logs_level_check",
            sorted(LogLevel::ALL.iter().map(|v| v.as_str())),
        ),
        (
            "execution_logs_level_check",
            sorted(LogLevel::ALL.iter().map(|v| v.as_str())),
        ),
    ];
    for (constraint, expected) in cases {
        assert_eq!(
            check_values(&mut conn, constraint).await,
            expected,
            "{constraint}"
        );
    }
}

#[test]
fn enums_round_trip_through_their_strings() {
    for v in FunctionStatus::ALL {
        assert_eq!(v.as_str().parse::<FunctionStatus>().unwrap(), *v);
        assert_eq!(
            serde_json::to_string(v).unwrap(),
            format!("\"{}\"", v.as_str())
        );
    }
    assert_eq!(
        "1w".parse::<ApiKeyValidity>().unwrap(),
        ApiKeyValidity::OneWeek
    );
    let err = "archived".parse::<DeploymentStatus>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "`archived` is not a valid DeploymentStatus"
    );
}

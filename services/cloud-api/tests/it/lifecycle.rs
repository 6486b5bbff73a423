//! The binary as an operator runs it.

#[tokio::test]
async fn refuses_pending_migrations_then_migrates_serves_and_stops_on_sigterm() {
    web::testing::assert_operator_lifecycle(
        env!("CARGO_BIN_EXE_cloud-api"),
        "cloud-api",
        "CLOUD_API_",
    )
    .await;
}

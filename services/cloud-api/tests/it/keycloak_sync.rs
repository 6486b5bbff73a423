//! Keycloak → PostgreSQL: a profile change made in Keycloak reaches the platform's row at the
//! next login, and through reconciliation for users who do not log in.

use auth::keycloak::KeycloakUserId;

use crate::support::{PASSWORD, TestApp, keycloak_available, unique_email};

#[tokio::test]
async fn email_verified_in_keycloak_is_pulled_at_login_and_by_reconciliation() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let (by_login, by_reconcile) = (unique_email("sync-login"), unique_email("sync-reconcile"));
    for email in [&by_login, &by_reconcile] {
        app.register(email).await;
        let row = app.user_by_email(email).await.expect("the row");
        assert!(!row.is_email_verified);
        let kc_id = KeycloakUserId::new(row.keycloak_user_id.expect("linked"));
        app.keycloak_client()
            .admin()
            .set_email_verified(&kc_id, true)
            .await
            .expect("verify in Keycloak");
    }

    let tokens = app.login(&by_login, PASSWORD).await;
    let me = app.me(&tokens.access).await;
    assert_eq!(
        me.body["is_email_verified"], true,
        "pulled at login: {me:?}"
    );

    assert!(
        !app.user_by_email(&by_reconcile)
            .await
            .expect("row")
            .is_email_verified
    );
    let changed = app.state.identity.reconcile().await.expect("reconcile");
    assert!(changed >= 1, "reconciliation changed the row");
    assert!(
        app.user_by_email(&by_reconcile)
            .await
            .expect("row")
            .is_email_verified,
        "pulled by reconciliation"
    );

    for email in [&by_login, &by_reconcile] {
        app.delete_keycloak_user(email).await;
    }
}

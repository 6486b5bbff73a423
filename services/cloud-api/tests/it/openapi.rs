//! `GET /openapi.json` serves the generated document (the one committed under docs/openapi/).

use crate::support::TestApp;

#[actix_web::test]
async fn openapi_json_serves_the_generated_document() {
    let app = TestApp::builtin().start().await;
    let resp = app
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(resp.status, 200);
    let served = resp.body;
    let generated: serde_json::Value =
        serde_json::from_str(&cloud_api::openapi::DOCUMENT).expect("the document is JSON");
    assert_eq!(served, generated);
    assert_eq!(served["openapi"], "3.1.0");
    assert!(served["paths"]["/api/functions/deploy"]["post"].is_object());
}

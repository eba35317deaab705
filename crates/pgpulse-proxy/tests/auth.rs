//! Client authentication through pgpulse: SCRAM and md5, right and wrong
//! passwords, unknown users, `auth_query` users with SCRAM pass-through.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Setup, TestProxy, cluster, connect};
use pgpulse_proxy::{ClientAuthMethod, UserOptions};

fn code(e: &tokio_postgres::Error) -> Option<String> {
    e.code().map(|c| c.code().to_owned())
}

async fn try_login(proxy: &TestProxy, user: &str, password: &str) -> Result<String, String> {
    let mut c = proxy.tokio_config("postgres");
    c.user(user).password(password);
    match c.connect(tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            let row = client
                .query_one("SELECT current_user::text", &[])
                .await
                .unwrap();
            Ok(row.get(0))
        }
        Err(e) => Err(code(&e).unwrap_or_else(|| e.to_string())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_login_right_and_wrong_password() {
    let proxy = tokio::task::spawn_blocking(|| TestProxy::start(Setup::default()))
        .await
        .unwrap();
    // Others stay connected and working while a login fails.
    let bystander = connect(&proxy.tokio_config("postgres")).await;
    assert_eq!(
        try_login(&proxy, &proxy.user, &proxy.password)
            .await
            .unwrap(),
        proxy.user
    );
    assert_eq!(
        try_login(&proxy, &proxy.user, "wrong").await.unwrap_err(),
        "28P01"
    );
    assert_eq!(
        try_login(&proxy, "nobody_here", "x").await.unwrap_err(),
        "28P01"
    );
    let one: i32 = bystander.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    tokio::task::spawn_blocking(move || drop(proxy))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_login_right_and_wrong_password() {
    let pg = cluster();
    pg.psql(
        "postgres",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'md5user') THEN \
         CREATE ROLE md5user LOGIN PASSWORD 'md5secret'; END IF; END $$",
    )
    .unwrap();
    let proxy = tokio::task::spawn_blocking(|| {
        TestProxy::start(Setup {
            auth: ClientAuthMethod::Md5,
            extra_users: vec![UserOptions {
                name: "md5user".into(),
                secret: "md5secret".into(),
                pool_mode: None,
                pool_size: None,
            }],
            ..Setup::default()
        })
    })
    .await
    .unwrap();
    assert_eq!(
        try_login(&proxy, "md5user", "md5secret").await.unwrap(),
        "md5user"
    );
    assert_eq!(
        try_login(&proxy, "md5user", "nope").await.unwrap_err(),
        "28P01"
    );
    tokio::task::spawn_blocking(move || drop(proxy))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_query_user_logs_in_with_scram_pass_through() {
    // A user that is not in pgpulse's configuration: pgpulse finds its SCRAM
    // verifier with auth_query and logs in to the server with the client's
    // own proof, never knowing the password.
    let pg = cluster();
    pg.psql(
        "postgres",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aq_user') THEN \
         CREATE ROLE aq_user LOGIN PASSWORD 'aq-secret'; END IF; END $$",
    )
    .unwrap();
    let proxy = tokio::task::spawn_blocking(|| TestProxy::start(Setup::default()))
        .await
        .unwrap();
    assert_eq!(
        try_login(&proxy, "aq_user", "aq-secret").await.unwrap(),
        "aq_user"
    );
    assert_eq!(
        try_login(&proxy, "aq_user", "bad").await.unwrap_err(),
        "28P01"
    );
    tokio::task::spawn_blocking(move || drop(proxy))
        .await
        .unwrap();
}

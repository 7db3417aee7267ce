//! Test support for MySQL/MariaDB: a server from `MYSQL_URL` (default the local one) and
//! a database per test, dropped with lethe's work databases afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::TryStreamExt;
use sqlx::mysql::MySqlRow;
use sqlx::{AssertSqlSafe, Connection, MySqlConnection, Row, ValueRef};

/// The server tests create and drop databases on.
pub fn server_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
}

pub async fn connect() -> MySqlConnection {
    MySqlConnection::connect(&server_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach MySQL/MariaDB at MYSQL_URL (or mysql://root@127.0.0.1:3306): {e}\n\
             start it (Debian: service mariadb start, or mysqld_safe &), or point MYSQL_URL at a \
             server where this user may create and drop databases"
            )
        })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database for one test, dropped (with lethe's work databases) afterwards.
pub struct MyDb {
    /// Its name.
    pub name: String,
}

impl MyDb {
    pub async fn create(tag: &str) -> Self {
        let name = format!(
            "lethe_t_{tag}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", server_url().trim_end_matches('/'), self.name)
    }

    /// Runs statements (several allowed) with this database selected.
    pub async fn exec(&self, sql: &str) {
        let mut conn = connect().await;
        let sql = format!(
            "CREATE DATABASE IF NOT EXISTS `{0}` CHARACTER SET utf8mb4; USE `{0}`; {sql}",
            self.name
        );
        sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("SQL failed on {}: {e}\n{sql}", self.name));
    }

    /// The rows of a query, every field as text (NULL as `None`).
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut conn = connect().await;
        let full = format!("USE `{}`; {sql}", self.name);
        let rows: Vec<MySqlRow> = sqlx::raw_sql(AssertSqlSafe(full))
            .fetch(&mut conn)
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("query failed on {}: {e}\n{sql}", self.name));
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        if r.try_get_raw(i).unwrap().is_null() {
                            None
                        } else {
                            let b: &[u8] = r.try_get_unchecked(i).unwrap();
                            Some(String::from_utf8_lossy(b).into_owned())
                        }
                    })
                    .collect()
            })
            .collect()
    }

    pub async fn one(&self, sql: &str) -> String {
        self.rows(sql).await[0][0].clone().unwrap_or_default()
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = server_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = MySqlConnection::connect(&url).await.ok()?;
                for db in [
                    name.clone(),
                    format!("{name}_lethe_shadow"),
                    format!("{name}_lethe_prev"),
                ] {
                    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{db}`")))
                        .execute(&mut conn)
                        .await
                        .ok()?;
                }
                Some(())
            })
        })
        .join();
    }
}

//! The leak check of a shadow before its swap (`verify = true` on a target), for the
//! engines that have one: PostgreSQL today (`crate::verify`).

use std::future::Future;

use super::Error;
use crate::engine::mysql::Mysql;
use crate::engine::postgres::Postgres;
use crate::engine::sqlite::Sqlite;
use crate::engine::{self, Engine};
use crate::mask::MaskingKey;
use crate::plan::Plan;
use crate::verify::{self, TargetCopy, VerifyOptions};

/// An engine's leak check of the shadow against the source snapshot.
pub trait LeakCheck: Engine {
    /// Whether the engine has one; `verify = true` is refused before anything moves when
    /// it has not.
    const LEAK_CHECK: bool;

    /// How many masked columns of the shadow hold real source values.
    fn leaking_columns(
        plan: &Plan,
        schemas: &[String],
        source: &Self::Snapshot,
        target: &Self::Target,
        key: &MaskingKey,
    ) -> impl Future<Output = Result<usize, Error>> + Send;
}

impl LeakCheck for Postgres {
    const LEAK_CHECK: bool = true;

    async fn leaking_columns(
        plan: &Plan,
        schemas: &[String],
        source: &Self::Snapshot,
        target: &Self::Target,
        key: &MaskingKey,
    ) -> Result<usize, Error> {
        let report = verify::verify_copy(
            plan,
            schemas,
            source,
            target.target(),
            TargetCopy::Shadow(target.map()),
            key,
            &VerifyOptions::default(),
        )
        .await?;
        Ok(report.leaking_columns())
    }
}

/// The engines without a leak check refuse `verify = true` (see [`LeakCheck::LEAK_CHECK`]).
macro_rules! no_leak_check {
    ($($engine:ty),*) => {$(
        impl LeakCheck for $engine {
            const LEAK_CHECK: bool = false;

            async fn leaking_columns(
                _: &Plan,
                _: &[String],
                _: &Self::Snapshot,
                _: &Self::Target,
                _: &MaskingKey,
            ) -> Result<usize, Error> {
                Err(unsupported::<$engine>().into())
            }
        }
    )*};
}

no_leak_check!(Mysql, Sqlite);

/// The refusal of `verify = true` on an engine without a leak check.
pub(super) fn unsupported<E: Engine>() -> engine::Error {
    engine::Error::Unsupported {
        engine: E::NAME,
        what: "verify = true (the leak check before the swap)",
    }
}

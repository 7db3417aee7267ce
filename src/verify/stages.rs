//! The passes of a check, table by table on a few workers: sample the source, read the
//! target, and explain the hits of the columns that have any.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::VerifyError as Error;
use super::explain::explain;
use super::jobs::Job;
use super::read::{Conns, Ctx, source_scan, target_scan};

/// Which part of a table's work a pass does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Sample the source only (`--deep` needs every sample before the target is read).
    Source,
    /// Read the target, then tell leaks from coincidences.
    Target,
    /// Both, table by table.
    All,
}

/// Runs one stage of every job on `conns.len()` workers, largest tables first.
pub(super) async fn run_stage(
    conns: Vec<Conns>,
    jobs: Vec<Job>,
    stage: Stage,
    ctx: Arc<Ctx>,
) -> Result<(Vec<Conns>, Vec<Job>), Error> {
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let mut tasks = tokio::task::JoinSet::new();
    for conns in conns {
        let (queue, ctx) = (Arc::clone(&queue), Arc::clone(&ctx));
        tasks.spawn(worker(conns, queue, stage, ctx));
    }
    let mut conns = Vec::new();
    let mut done = Vec::new();
    // The first failure ends the run: returning drops the set, which aborts the others.
    while let Some(finished) = tasks.join_next().await {
        let (worker_conns, mut worker_jobs) = finished??;
        conns.push(worker_conns);
        done.append(&mut worker_jobs);
    }
    done.sort_by_key(|j| std::cmp::Reverse(j.size));
    Ok((conns, done))
}

/// Takes tables from `queue` until it is empty; gives back its connections and the
/// tables it did.
async fn worker(
    mut conns: Conns,
    queue: Arc<Mutex<VecDeque<Job>>>,
    stage: Stage,
    ctx: Arc<Ctx>,
) -> Result<(Conns, Vec<Job>), Error> {
    let mut done = Vec::new();
    loop {
        let next = queue.lock().ok().and_then(|mut q| q.pop_front());
        let Some(mut job) = next else {
            return Ok((conns, done));
        };
        if stage != Stage::Target {
            source_scan(&mut conns.reader, &mut job, &ctx).await?;
        }
        if stage != Stage::Source {
            target_scan(&mut conns.target, &mut job, &ctx).await?;
            explain(&mut conns, &mut job, &ctx).await?;
        }
        done.push(job);
    }
}

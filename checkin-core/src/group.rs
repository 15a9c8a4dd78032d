//! Group commit, once for every queue that has it (the SMS inbox, the web's
//! code confirmations): one task takes whatever jobs are waiting, up to a
//! bound, and commits them together, so the store's one SQLite writer spends
//! its time writing rather than handing its connection from caller to caller.

use std::future::Future;

use tokio::sync::mpsc;

/// What commits one group of jobs and answers each job's caller.
pub(crate) trait Group {
    type Job: Send;
    /// Commits `jobs` (never empty) and answers each of them.
    fn commit(&mut self, jobs: Vec<Self::Job>) -> impl Future<Output = ()> + Send;
}

/// Takes everything queued (up to `batch_max`) and commits it as one group.
/// Under load the queue fills while a commit runs, so groups grow by
/// themselves; when idle a lone job commits at once, with no added wait.
/// Ends when every sender is dropped, or once `stop` resolved: then what is
/// already queued still commits and later sends fail (the queue is closed).
pub(crate) async fn run_groups<G: Group>(
    mut rx: mpsc::Receiver<G::Job>,
    batch_max: usize,
    stop: impl Future<Output = ()>,
    mut group: G,
) {
    let batch_max = batch_max.max(1);
    let mut stop = std::pin::pin!(stop);
    let mut jobs = Vec::with_capacity(batch_max);
    let mut closed = false;
    loop {
        let got = tokio::select! {
            got = rx.recv_many(&mut jobs, batch_max) => got,
            _ = &mut stop, if !closed => {
                // No new jobs; what is queued still commits.
                rx.close();
                closed = true;
                continue;
            }
        };
        if got == 0 {
            break;
        }
        group.commit(std::mem::take(&mut jobs)).await;
        jobs.reserve(batch_max);
    }
}

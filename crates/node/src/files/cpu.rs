//! A small, fixed pool of threads for the file pipeline's CPU and disk work.
//!
//! Every stripe is sealed or opened, hashed and written here rather than on tokio's
//! blocking pool. Two reasons: the work is bounded to [`THREADS`] cores whatever the
//! number of transfers, and its megabyte buffers are allocated by few threads. With
//! glibc's per-thread arenas, the blocking pool's many threads each kept their own
//! freed stripes: a node receiving 100 MiB peaked at ~150 MiB of RSS, against ~85
//! MiB with the work on few threads (`bench file`, docs/benchmarks.md).

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

/// Threads in the pool.
const THREADS: usize = 2;
/// Jobs waiting before submitters wait.
const QUEUE: usize = 32;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A handle to the pool. Cheap to clone; the threads stop when every handle is gone.
#[derive(Clone)]
pub(crate) struct Cpu {
    jobs: mpsc::Sender<Job>,
}

impl Cpu {
    /// Starts the pool's threads.
    pub(crate) fn start() -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..THREADS {
            let queue = queue.clone();
            std::thread::Builder::new().name(format!("communitas-files-{n}")).spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = match queue.lock() {
                        Ok(mut q) => q.blocking_recv(),
                        Err(_) => None,
                    };
                    match job {
                        Some(job) => job(),
                        None => break,
                    }
                }
            })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `job` on the pool and waits for its result; `None` if the pool is gone.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(job());
        });
        self.jobs.send(job).await.ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn jobs_run_and_return() {
        let cpu = super::Cpu::start().unwrap();
        let results = futures::future::join_all((0..100).map(|i| cpu.run(move || i * 2))).await;
        assert_eq!(results, (0..100).map(|i| Some(i * 2)).collect::<Vec<_>>());
    }
}

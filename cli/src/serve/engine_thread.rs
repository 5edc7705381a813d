//! The one thread that owns the [`Backend`]: wgpu work blocks, so it never
//! runs on a tokio worker. It takes [`Command`]s over a channel, steps while
//! there is work (blocking on the channel when idle), and forwards each
//! request's events to that request's receiver; a receiver dropped (the
//! client left) cancels the request at the next step.
//!
//! Under `mpirun` (rank 0, the other ranks following its engine) it also
//! keeps the followers waiting while idle ([`Backend::keep_alive`]),
//! releases them as it ends ([`Backend::release`]), and ends at the first
//! engine error, since the ranks may then be out of step.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvError, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use seam_runtime::serving::{EngineStats, Finish, Request, RequestId};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

use super::backend::Backend;

/// What the engine thread tells one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// A generated token.
    Token(i32),
    /// The request ended (after its last token, if any).
    Finished(Finish),
    /// The engine refused the request (it does not fit): a client error.
    Refused(String),
    /// The engine failed while running it: a server error.
    Failed(String),
}

/// An instruction to the engine thread.
enum Command {
    /// Start a request; its updates go to `updates`.
    Submit {
        id: RequestId,
        request: Request,
        updates: UnboundedSender<Update>,
    },
    /// Stop a request (a stop string was generated).
    Cancel(RequestId),
}

/// The engine's counters as last published by the engine thread.
#[derive(Copy, Clone, Debug, Default)]
pub struct Snapshot {
    /// The backend's counters.
    pub stats: EngineStats,
    /// Wall time spent in steps since start.
    pub busy: Duration,
}

/// The server's handle on the engine thread; cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    commands: Sender<Command>,
    snapshot: Arc<Mutex<Snapshot>>,
    /// Closed when the engine thread ends.
    ended: watch::Receiver<()>,
}

impl EngineHandle {
    /// Submits `request` under `id`; its updates arrive on the receiver
    /// returned (dropping it cancels the request).
    pub fn submit(&self, id: RequestId, request: Request) -> UnboundedReceiver<Update> {
        let (updates, receiver) = unbounded_channel();
        let refused = Command::Submit {
            id,
            request,
            updates,
        };
        if let Err(mpsc::SendError(Command::Submit { updates, .. })) = self.commands.send(refused) {
            let _ = updates.send(Update::Failed("the engine has stopped".into()));
        }
        receiver
    }

    /// Cancels request `id` (no-op if it already ended).
    pub fn cancel(&self, id: RequestId) {
        let _ = self.commands.send(Command::Cancel(id));
    }

    /// The counters last published.
    pub fn snapshot(&self) -> Snapshot {
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once the engine thread has ended (which, while handles
    /// live, only an engine error under `mpirun` or a panic does).
    pub async fn stopped(&self) {
        let mut ended = self.ended.clone();
        while ended.changed().await.is_ok() {}
    }
}

/// What the engine thread returns: the engine error that ended it, under
/// `mpirun`, or the followers' release failing.
pub type Ended = Result<(), seam_runtime::Error>;

/// Starts the engine thread over `backend`. The thread ends once every
/// [`EngineHandle`] is dropped, releasing the other ranks if any; join the
/// handle returned to wait for it. With `lead` (under `mpirun`, rank 0),
/// the thread calls [`Backend::keep_alive`] when `lead` has passed without
/// a step, and ends at the first engine error, failing the requests in
/// flight with it.
pub fn spawn(
    backend: impl Backend,
    lead: Option<Duration>,
) -> std::io::Result<(EngineHandle, JoinHandle<Ended>)> {
    let (commands, receiver) = mpsc::channel();
    let snapshot = Arc::new(Mutex::new(Snapshot {
        stats: backend.stats(),
        busy: Duration::ZERO,
    }));
    let published = Arc::clone(&snapshot);
    let (alive, ended) = watch::channel(());
    let thread = std::thread::Builder::new()
        .name("seam-engine".into())
        .spawn(move || {
            let result = drive(backend, &receiver, &published, lead);
            drop(alive);
            result
        })?;
    let handle = EngineHandle {
        commands,
        snapshot,
        ended,
    };
    Ok((handle, thread))
}

/// The engine thread's loop.
fn drive(
    mut backend: impl Backend,
    commands: &Receiver<Command>,
    snapshot: &Mutex<Snapshot>,
    lead: Option<Duration>,
) -> Ended {
    let mut live: HashMap<RequestId, UnboundedSender<Update>> = HashMap::new();
    let mut busy = Duration::ZERO;
    let mut last_error: Option<String> = None;
    // When the followers last heard from this engine.
    let mut told = Instant::now();
    loop {
        let next = if live.is_empty() && backend.is_idle() {
            match lead {
                Some(every) => {
                    let left = (told + every).saturating_duration_since(Instant::now());
                    match commands.recv_timeout(left) {
                        Ok(command) => Ok(command),
                        Err(RecvTimeoutError::Timeout) => {
                            backend.keep_alive()?;
                            told = Instant::now();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => Err(TryRecvError::Disconnected),
                    }
                }
                None => commands
                    .recv()
                    .map_err(|RecvError| TryRecvError::Disconnected),
            }
        } else {
            commands.try_recv()
        };
        match next {
            Ok(command) => {
                apply(&mut backend, &mut live, command);
                continue;
            }
            Err(TryRecvError::Disconnected) if live.is_empty() => break,
            Err(_) => {}
        }
        live.retain(|&id, updates| {
            let gone = updates.is_closed();
            if gone {
                tracing::info!(id, "client left; request cancelled");
                backend.cancel(id);
            }
            !gone
        });
        if !backend.is_idle() {
            let started = Instant::now();
            let result = backend.step();
            busy += started.elapsed();
            told = Instant::now();
            match result {
                Ok(events) => {
                    for e in events {
                        let Some(updates) = live.get(&e.id) else {
                            continue;
                        };
                        if let Some(token) = e.token {
                            let _ = updates.send(Update::Token(token));
                        }
                        match e.finish {
                            Some(Finish::Failed) => {
                                let message = last_error.clone().unwrap_or_else(|| {
                                    "the model's logits could not be sampled (NaN)".into()
                                });
                                let _ = updates.send(Update::Failed(message));
                                live.remove(&e.id);
                            }
                            Some(finish) => {
                                let _ = updates.send(Update::Finished(finish));
                                live.remove(&e.id);
                            }
                            None => {}
                        }
                    }
                }
                Err(e) if lead.is_some() => {
                    // The ranks may be out of step: serving cannot go on.
                    tracing::error!("engine step failed, the ranks stop: {e}");
                    for (_, updates) in live.drain() {
                        let _ = updates.send(Update::Failed(e.to_string()));
                    }
                    return Err(e);
                }
                Err(e) => {
                    // The engine dropped the failed step's requests; the
                    // next step reports them with `Finish::Failed`, and
                    // they get this message.
                    tracing::error!("engine step failed: {e}");
                    last_error = Some(e.to_string());
                }
            }
        } else if !live.is_empty() {
            // The backend dropped requests without finishing them.
            for (_, updates) in live.drain() {
                let _ = updates.send(Update::Failed("the engine dropped the request".into()));
            }
        }
        *snapshot.lock().unwrap_or_else(PoisonError::into_inner) = Snapshot {
            stats: backend.stats(),
            busy,
        };
    }
    backend.release()
}

/// Carries out one command.
fn apply(
    backend: &mut impl Backend,
    live: &mut HashMap<RequestId, UnboundedSender<Update>>,
    command: Command,
) {
    match command {
        Command::Submit {
            id,
            request,
            updates,
        } => match backend.submit(id, request) {
            Ok(()) => {
                live.insert(id, updates);
            }
            Err(e) => {
                let _ = updates.send(Update::Refused(e.to_string()));
            }
        },
        Command::Cancel(id) => {
            backend.cancel(id);
            live.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::testing::FakeBackend;
    use seam_runtime::generate::Sampling;

    fn request(max_new_tokens: usize) -> Request {
        Request {
            prompt: vec![1, 2],
            max_new_tokens,
            sampling: Sampling::Greedy,
            stop_ids: vec![],
        }
    }

    #[test]
    fn tokens_reach_their_request_and_a_dropped_receiver_cancels() {
        let fake = FakeBackend::new(1 << 20);
        let cancelled = fake.cancelled();
        let (handle, thread) = spawn(fake, None).unwrap();
        let mut rx = handle.submit(1, request(3));
        let mut got = Vec::new();
        while let Some(u) = rx.blocking_recv() {
            got.push(u);
        }
        assert_eq!(
            got,
            [
                Update::Token(3),
                Update::Token(4),
                Update::Token(5),
                Update::Finished(Finish::Length)
            ]
        );
        let rx = handle.submit(2, request(1 << 19));
        drop(rx);
        let started = Instant::now();
        while !cancelled.lock().unwrap().contains(&2) {
            assert!(started.elapsed() < Duration::from_secs(10), "not cancelled");
            std::thread::yield_now();
        }
        let refused = handle.submit(3, request(0)).blocking_recv();
        assert!(matches!(refused, Some(Update::Refused(_))), "{refused:?}");
        drop(handle);
        thread.join().unwrap().unwrap();
    }

    #[test]
    fn a_leading_engine_keeps_followers_alive_and_stops_at_an_error() {
        let fake = FakeBackend::new(1 << 20);
        let kept = fake.kept_alive();
        let (handle, thread) = spawn(fake, Some(Duration::from_millis(5))).unwrap();
        let started = Instant::now();
        while kept.load(std::sync::atomic::Ordering::Relaxed) < 3 {
            assert!(started.elapsed() < Duration::from_secs(10), "no keep-alive");
            std::thread::sleep(Duration::from_millis(1));
        }
        // A step failing ends the thread: the request fails with the error.
        let mut failing = request(4);
        failing.prompt[0] = crate::serve::testing::FAIL;
        let mut rx = handle.submit(1, failing);
        assert!(matches!(rx.blocking_recv(), Some(Update::Failed(m)) if m.contains("fake device")));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), handle.stopped())
                .await
                .expect("the server is told the engine stopped")
        });
        assert!(thread.join().unwrap().is_err());
        let late = handle.submit(2, request(1)).blocking_recv();
        assert!(matches!(late, Some(Update::Failed(_))), "{late:?}");
    }
}

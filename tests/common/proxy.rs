//! A TCP proxy between lethe and a server, for fault tests: it forwards bytes until the
//! test makes it stall (it stops forwarding but keeps every connection open, as a stuck
//! network or middlebox does) or cuts it (it closes every connection at once). It
//! starts paced: it forwards at most a small chunk per millisecond each way until it is first cut, so that
//! a copy through it lasts long enough for a test to act in its middle on any machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; dropping it closes every connection.
pub struct Proxy {
    /// Where lethe connects instead of the server.
    pub addr: SocketAddr,
    stall: watch::Sender<bool>,
    cut: watch::Sender<u64>,
    paced: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `server`, on
    /// a thread and runtime of its own, so that a test blocked on a `lethe` it runs
    /// cannot stop the proxy lethe talks through.
    ///
    /// It starts paced, at about 4 MB/s each way per connection, until the first
    /// [`Proxy::cut`]: a copy of a few MB through it then takes seconds however fast the
    /// machine (the fault lands in its middle, never after its end), and the next run
    /// after the fault goes at full speed.
    pub fn start(server: SocketAddr) -> Self {
        let paced = Arc::new(AtomicBool::new(true));
        let pacing = Arc::clone(&paced);
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("the proxy cannot listen: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the proxy has no address: {e}"));
        let (stall, stall_rx) = watch::channel(false);
        let (cut, cut_rx) = watch::channel(0u64);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("the proxy's runtime: {e}"));
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)
                    .unwrap_or_else(|e| panic!("the proxy cannot listen: {e}"));
                let accept = async {
                    while let Ok((client, _)) = listener.accept().await {
                        let (stall_rx, cut_rx) = (stall_rx.clone(), cut_rx.clone());
                        let pacing = Arc::clone(&pacing);
                        tokio::spawn(async move {
                            // A connection opened while stalled reaches nothing until released.
                            let mut waiting = stall_rx.clone();
                            if waiting.wait_for(|s| !*s).await.is_err() {
                                return;
                            }
                            let Ok(server) = TcpStream::connect(server).await else {
                                return;
                            };
                            pipe(client, server, stall_rx, cut_rx, pacing).await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection's task, closing its sockets.
        });
        Self {
            addr,
            stall,
            cut,
            paced,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `url` (a `postgres://` or `mysql://` URL to the server) pointed at the proxy.
    pub fn url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        url.set_host(Some("127.0.0.1"))
            .unwrap_or_else(|e| panic!("{e}"));
        url.set_port(Some(self.addr.port()))
            .unwrap_or_else(|()| panic!("cannot set the port"));
        url.to_string()
    }

    /// Stops forwarding, in both directions, keeping every connection open.
    pub fn stall(&self) {
        let _ = self.stall.send(true);
    }

    /// Closes every connection open now (new ones are forwarded), and forwards again.
    pub fn cut(&self) {
        self.paced.store(false, Ordering::Relaxed);
        self.cut.send_modify(|n| *n += 1);
        let _ = self.stall.send(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_modify(|n| *n += 1);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Forwards between the two until either closes, the proxy is cut, or (while stalled)
/// forwards nothing at all.
async fn pipe(
    client: TcpStream,
    server: TcpStream,
    stall: watch::Receiver<bool>,
    mut cut: watch::Receiver<u64>,
    paced: Arc<AtomicBool>,
) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = forward(client_read, server_write, stall.clone(), Arc::clone(&paced));
    let down = forward(server_read, client_write, stall, paced);
    cut.mark_unchanged();
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {}
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stall: watch::Receiver<bool>,
    paced: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // While stalled nothing is read, so the sender's buffers fill and it blocks.
        if stall.wait_for(|s| !*s).await.is_err() {
            return;
        }
        let pace = paced.load(Ordering::Relaxed);
        let chunk = if pace { PACED_CHUNK } else { buffer.len() };
        let n = tokio::select! {
            read = from.read(&mut buffer[..chunk]) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = stall.wait_for(|s| *s) => continue,
        };
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
        if pace {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// What a paced proxy forwards each way per millisecond at most.
const PACED_CHUNK: usize = 4 * 1024;

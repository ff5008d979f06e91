//! An impairment proxy from the command line, for scripts (`scripts/lossy-run`).
//!
//! ```text
//! impair_proxy --target 127.0.0.1:PORT [--tcp] [--delay-ms 50] [--jitter-ms 0]
//!              [--loss 0.05] [--seed 1] [--report-ms 1000]
//! ```
//!
//! Listens on 127.0.0.1 (a free port) and prints `listening 127.0.0.1:PORT`, then one
//! line of counters as JSON every `--report-ms` (0: never) and a last one when stopped
//! by SIGTERM or SIGINT. UDP unless `--tcp`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use communitas_testkit::impair::{Flow, Impairment, TcpProxy, UdpProxy};
use tokio::signal::unix::{SignalKind, signal};

struct Args {
    target: SocketAddr,
    tcp: bool,
    impairment: Impairment,
    report: Duration,
}

fn parse() -> Result<Args> {
    let mut target = None;
    let mut tcp = false;
    let mut impairment = Impairment::default();
    let mut report = Duration::from_secs(1);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--tcp" {
            tcp = true;
            continue;
        }
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        let ms = || value.parse().map(Duration::from_millis).with_context(|| flag.clone());
        match flag.as_str() {
            "--target" => target = Some(value.parse().context("--target ADDR:PORT")?),
            "--delay-ms" => impairment.delay = ms()?,
            "--jitter-ms" => impairment.jitter = ms()?,
            "--report-ms" => report = ms()?,
            "--loss" => impairment.loss = value.parse().context("--loss 0.0..=1.0")?,
            "--seed" => impairment.seed = value.parse().context("--seed N")?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    let target = target.context("--target ADDR:PORT is required")?;
    Ok(Args { target, tcp, impairment, report })
}

enum Proxy {
    Udp(UdpProxy),
    Tcp(TcpProxy),
}

impl Proxy {
    fn report(&self) -> String {
        let flow = |f: Flow| {
            format!(
                r#"{{"received":{},"forwarded":{},"dropped":{}}}"#,
                f.received, f.forwarded, f.dropped
            )
        };
        match self {
            Proxy::Udp(p) => {
                let s = p.stats();
                format!(
                    r#"{{"to_target":{},"to_client":{}}}"#,
                    flow(s.to_target),
                    flow(s.to_client)
                )
            }
            Proxy::Tcp(p) => {
                let s = p.stats();
                format!(
                    r#"{{"connections":{},"refused":{},"bytes_to_target":{},"bytes_to_client":{}}}"#,
                    s.connections, s.refused, s.bytes_to_target, s.bytes_to_client
                )
            }
        }
    }

    async fn shutdown(self) -> std::io::Result<()> {
        match self {
            Proxy::Udp(p) => p.shutdown().await,
            Proxy::Tcp(p) => p.shutdown().await,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = parse()?;
    let proxy = if args.tcp {
        Proxy::Tcp(TcpProxy::start(args.target, args.impairment).await?)
    } else {
        Proxy::Udp(UdpProxy::start(args.target, args.impairment).await?)
    };
    let addr = match &proxy {
        Proxy::Udp(p) => p.local_addr(),
        Proxy::Tcp(p) => p.local_addr(),
    };
    let mut out = std::io::stdout();
    writeln!(out, "listening {addr}")?;
    out.flush()?;

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(if args.report.is_zero() {
        Duration::from_secs(3600)
    } else {
        args.report
    });
    tick.tick().await;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick(), if !args.report.is_zero() => {
                writeln!(out, "{}", proxy.report())?;
                out.flush()?;
            }
        }
    }
    writeln!(out, "{}", proxy.report())?;
    out.flush()?;
    proxy.shutdown().await?;
    Ok(())
}

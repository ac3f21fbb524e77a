//! `zk-server [zoo.cfg]`: a standalone ZooKeeper server.

#[cfg(madsim)]
fn main() {
    eprintln!(
        "zk-server was built for the simulator (the default build).\n\
         Run the real server with: cargo real run -p server -- [path/to/zoo.cfg]"
    );
    std::process::exit(2);
}

#[cfg(not(madsim))]
fn main() {
    use std::sync::Arc;
    use zkserver::{clock::SystemClock, config::Config, fsdisk::FsDisk, run};
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/zoo.cfg").to_string());
    let cfg = match Config::load(std::path::Path::new(&path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-server: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let res = rt.block_on(async move {
        let (disk, dirs) = FsDisk::for_dirs(&cfg.data_dir, &cfg.data_log_dir)?;
        run::run(cfg, Arc::new(disk), dirs, Arc::new(SystemClock)).await
    });
    if let Err(e) = res {
        eprintln!("zk-server: {e:#}");
        std::process::exit(1);
    }
}

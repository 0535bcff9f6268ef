//! `vantage data update DATASET [--from FILE|URL]...` and `vantage data status`: install the
//! offline data sets into the data directory and show what is installed. Downloads show their
//! progress on stderr; nothing installed changes unless the new data were fetched and checked.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vantage_lookup::update::{self, Dataset, UpdateOptions};
use vantage_lookup::{DataDir, DatasetInfo};

use super::lookups::{fail, json_line, open, print_block};
use crate::cli::{DataCommand, DataStatusArgs, DataUpdateArgs};
use crate::output::{EXIT_OK, usage_error};

pub async fn run(c: DataCommand) -> u8 {
    match c {
        DataCommand::Update(a) => update(a).await.unwrap_or_else(|code| code),
        DataCommand::Status(a) => status(a).unwrap_or_else(|code| code),
    }
}

fn progress_bar() -> Arc<ProgressBar> {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {bytes}/{total_bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Arc::new(pb)
}

async fn update(a: DataUpdateArgs) -> Result<u8, u8> {
    let ds: Dataset = a.dataset.parse().map_err(|e| fail(&e))?;
    if !(a.timeout > 0.0 && a.timeout <= 86_400.0) {
        return Err(usage_error("--timeout must be between 0 and 86400 seconds"));
    }
    let dir = DataDir::new(&a.data.data_dir);
    let pb = progress_bar();
    let bar = pb.clone();
    let opts = UpdateOptions {
        sources: a.from.clone(),
        timeout: Duration::from_secs_f64(a.timeout),
        licence: a.licence.clone(),
        attribution: a.attribution.clone(),
        progress: Some(Arc::new(move |src: &str, got: u64, total: Option<u64>| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_message(src.rsplit('/').next().unwrap_or(src).to_string());
            bar.set_position(got);
        })),
        ..UpdateOptions::default()
    };
    if a.from.is_empty() {
        let srcs = update::default_sources(ds, chrono::Utc::now());
        eprintln!("vantage: fetching {} from {}", ds.name(), srcs.join(", "));
    }
    let report = update::update(&dir, ds, opts).await;
    pb.finish_and_clear();
    let report = report.map_err(|e| fail(&e))?;
    if a.json {
        json_line(&report)?;
    } else {
        let files: Vec<String> = report
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        println!("Installed {} into {}", ds.name(), files.join(", "));
        print_info(&report.info);
    }
    Ok(EXIT_OK)
}

fn print_info(i: &DatasetInfo) {
    let counts: Vec<String> = i.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    print_block(&[
        ("  Format", i.format.clone()),
        ("  Sources", i.sources.join(", ")),
        (
            "  Installed",
            i.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        (
            "  Data date",
            i.data_date
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        ),
        ("  Size", counts.join(", ")),
        ("  Licence", i.licence.clone().unwrap_or_default()),
        ("  Attribution", i.attribution.clone().unwrap_or_default()),
    ]);
}

fn status(a: DataStatusArgs) -> Result<u8, u8> {
    let lookup = open(&a.data.data_dir)?;
    let list = lookup.datasets().map_err(|e| fail(&e))?;
    if a.json {
        for s in &list {
            json_line(s)?;
        }
        return Ok(EXIT_OK);
    }
    println!("Data directory: {}", a.data.data_dir.display());
    for s in &list {
        match &s.info {
            Some(i) => {
                println!("{}: installed", s.dataset);
                print_info(i);
            }
            None if s.installed => println!("{}: installed (no description file)", s.dataset),
            None => println!("{}: not installed; using {}", s.dataset, s.fallback),
        }
    }
    let overrides = lookup.overrides().list().len();
    println!("asn overrides: {overrides} local AS names");
    Ok(EXIT_OK)
}

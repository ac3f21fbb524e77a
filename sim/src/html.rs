//! `report.html`: one self-contained page per run (inline CSS and SVG, no
//! external assets, no script), readable offline and attachable to an issue.
//!
//! Top to bottom: the verdict and the replay command; a table of checks
//! (verdict, notes, violations); the workload's numbers (operations by
//! outcome, throughput, latency percentiles); the servers' final status
//! (role, epoch, last zxid, digest); the faults as they happened; the
//! fail-overs (faults of the leader: election and first-write times, see
//! [`crate::failover`]); the plots of [`crate::plot`]; and, for each
//! failed check that names a witness, the history events that prove the
//! violation (also marked in the plots).

use crate::check::{CheckResult, Verdict};
use crate::history::{Event, Ty};
use crate::plot::{self, Data};
use crate::probe::{BoardSample, Sample};
use crate::report::Summary;
use std::collections::BTreeSet;
use std::fmt::Write;

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

const STYLE: &str = "
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1340px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
td, th { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
code, .mono { font-family: monospace; font-size: 12.5px; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #c62828; font-weight: bold; }
.skipped { color: #777; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 4px; color: white; }
.badge.pass { background: #1a7f37; color: white; }
.badge.fail { background: #c62828; color: white; }
.replay { background: #f6f8fa; border: 1px solid #ddd; padding: 6px 10px; display: inline-block; }
.plot { margin: 10px 0 18px 0; }
.kv td:first-child { color: #555; }
.legend { font-size: 13px; margin-left: 112px; }
.legend span { margin-right: 18px; white-space: nowrap; }
.legend i { display: inline-block; width: 14px; height: 10px; margin-right: 5px; vertical-align: middle; }
ul.v { margin: 2px 0; padding-left: 18px; }
tr.ev-ok td.ty { color: #1a7f37; } tr.ev-fail td.ty { color: #1e64dc; } tr.ev-info td.ty { color: #c62828; }
td.from-invoke { color: #888; }
";

fn verdict_class(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Pass => ("pass", "PASS"),
        Verdict::Fail => ("fail", "FAIL"),
        Verdict::Skipped => ("skipped", "skipped"),
    }
}

/// The whole page.
pub fn render(s: &Summary, events: &[Event], samples: &[Sample], board: &[BoardSample]) -> String {
    let witness: BTreeSet<usize> = s
        .checks
        .iter()
        .flat_map(|c| c.witness.iter().copied())
        .collect();
    let data = Data::new(events, samples, board, witness);
    let mut h = String::new();
    let (cls, word) = verdict_class(s.verdict);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{} seed {} — {word}</title><style>{STYLE}</style></head><body>\n",
        esc(&s.scenario),
        s.seed
    );
    let _ = writeln!(
        h,
        "<h1>{} · seed {} <span class=\"badge {cls}\">{word}</span></h1>",
        esc(&s.scenario),
        s.seed
    );
    if !s.description.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(&s.description));
    }
    let _ = writeln!(
        h,
        "<p>Replay: <code class=\"replay\">{}</code></p>",
        esc(&s.replay)
    );
    header(&mut h, s);
    checks(&mut h, &s.checks);
    replicas(&mut h, s);
    faults(&mut h, s, &data);
    failover(&mut h, &data);
    plots(&mut h, &data);
    witnesses(&mut h, &s.checks, events);
    h.push_str("</body></html>\n");
    h
}

fn header(h: &mut String, s: &Summary) {
    let faults = if s.faults.is_empty() {
        "none".to_string()
    } else {
        s.faults
            .iter()
            .map(|(k, v)| format!("{k} × {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = [
        ("commit", s.commit.clone()),
        (
            "servers",
            if s.servers == 1 {
                "1 (standalone)".to_string()
            } else {
                format!("{} (an ensemble)", s.servers)
            },
        ),
        ("history hash", s.history_hash.clone()),
        (
            "operations",
            format!(
                "{} total: {} ok, {} ZooKeeper error, {} unknown",
                s.ops.total, s.ops.ok, s.ops.fail, s.ops.unknown
            ),
        ),
        (
            "throughput",
            format!(
                "{:.1} answered ops per simulated second",
                s.throughput_ops_per_s
            ),
        ),
        (
            "latency (answered ops)",
            format!(
                "p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
                s.latency.p50_ms, s.latency.p99_ms, s.latency.max_ms
            ),
        ),
        ("faults", faults),
        (
            "simulated / wall",
            format!(
                "{:.1} s simulated in {:.2} s wall ({:.0} sim-s per wall-s)",
                s.sim_duration_ms as f64 / 1000.0,
                s.wall_ms as f64 / 1000.0,
                s.sim_s_per_wall_s
            ),
        ),
    ];
    h.push_str("<table class=\"kv\">\n");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    }
    h.push_str("</table>\n");
}

fn checks(h: &mut String, checks: &[CheckResult]) {
    h.push_str("<h2>Checks</h2>\n<table>\n<tr><th>check</th><th>verdict</th><th>details</th><th>witness</th></tr>\n");
    for c in checks {
        let (cls, word) = verdict_class(c.verdict);
        let mut details = String::new();
        for n in &c.notes {
            let _ = write!(details, "{}<br>", esc(n));
        }
        if !c.violations.is_empty() {
            details.push_str("<ul class=\"v\">");
            for v in &c.violations {
                let _ = write!(details, "<li class=\"mono\">{}</li>", esc(v));
            }
            details.push_str("</ul>");
        }
        let wit = if c.witness.is_empty() {
            String::new()
        } else {
            format!(
                "<a href=\"#witness-{}\">{} events</a>",
                esc(&c.name),
                c.witness.len()
            )
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"{cls}\">{word}</td><td>{details}</td><td>{wit}</td></tr>",
            esc(&c.name)
        );
    }
    h.push_str("</table>\n");
}

/// The servers' final status, as the `replicas` check saw it.
fn replicas(h: &mut String, s: &Summary) {
    h.push_str("<h2>Servers at the end</h2>\n");
    if s.replicas.is_empty() {
        h.push_str("<p>No final status (the run did not reach its end).</p>\n");
        return;
    }
    h.push_str("<table>\n<tr><th>server</th><th>running</th><th>role</th><th>epoch</th><th>last zxid</th><th>tree digest</th><th>serving</th></tr>\n");
    for r in &s.replicas {
        if !r.running {
            let _ = writeln!(
                h,
                "<tr><td>server{}</td><td class=\"fail\">no</td><td colspan=\"5\"></td></tr>",
                r.server
            );
            continue;
        }
        let _ = writeln!(
            h,
            "<tr><td>server{}</td><td>yes</td><td>{}</td><td>{}</td><td class=\"mono\">0x{:x}</td><td class=\"mono\">0x{:016x}</td><td>{}</td></tr>",
            r.server,
            esc(&r.role),
            r.epoch,
            r.last_zxid as u64,
            r.digest,
            if r.serving { "yes" } else { "no" }
        );
    }
    h.push_str("</table>\n");
}

fn faults(h: &mut String, s: &Summary, d: &Data<'_>) {
    h.push_str("<h2>Faults</h2>\n");
    if d.faults.is_empty() {
        h.push_str("<p>No faults.</p>\n");
        return;
    }
    let _ = writeln!(
        h,
        "<p>{} faults. Times are simulated seconds since the start of the run (the plots' x axis).</p>",
        s.faults.values().sum::<u64>()
    );
    h.push_str("<table>\n<tr><th>#</th><th>kind</th><th>target</th><th>start (s)</th><th>end (s)</th><th>what happened</th></tr>\n");
    for w in &d.faults {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td class=\"mono\">{}</td></tr>",
            w.id,
            esc(&w.kind),
            esc(&w.target),
            w.start_s,
            w.end_s,
            esc(w.detail.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
}

/// The faults of the leader: election and write-resumption times.
fn failover(h: &mut String, d: &Data<'_>) {
    if d.failover.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"failover\">Fail-over</h2>\n<p>Each fault that took down or cut off the server leading when it started, measured from the fault's start: <b>election</b> until the first status board sample showing a leader serving in a higher epoch (the board is sampled every {} ms, so these are late by up to {} ms; the timeline marks the moment with ▼), <b>first write</b> until the first successful write invoked after the fault started (history time), and the <b>longest write gap</b>: the longest stretch without a successful write until {} s after the election. Report only: no check uses these numbers. — : not reached.</p>",
        crate::probe::BOARD_MS,
        crate::probe::BOARD_MS,
        crate::failover::GAP_AFTER_MS / 1000
    );
    h.push_str("<table>\n<tr><th>#</th><th>kind</th><th>start (s)</th><th>old leader</th><th>new leader</th><th>new epoch</th><th>election (ms)</th><th>first write (ms)</th><th>longest write gap (ms)</th></tr>\n");
    let ms = |v: Option<u64>| v.map_or("—".to_string(), |v| v.to_string());
    for f in &d.failover {
        let old = match f.old_epoch {
            Some(e) => format!("server{} (epoch {e})", f.old_leader),
            None => format!("server{}", f.old_leader),
        };
        let new = f.new_leader.map_or("—".to_string(), |l| {
            if l == f.old_leader {
                format!("server{l} (again)")
            } else {
                format!("server{l}")
            }
        });
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.fault_id,
            esc(&f.kind),
            f.at_ms as f64 / 1000.0,
            esc(&old),
            esc(&new),
            ms(f.new_epoch),
            ms(f.election_ms),
            ms(f.first_write_ms),
            ms(f.unavailable_ms)
        );
    }
    h.push_str("</table>\n");
}

fn plots(h: &mut String, d: &Data<'_>) {
    h.push_str("<h2>Plots</h2>\n<p>Shaded: fault windows (colour by kind, <code>#N</code> = fault number). Black vertical lines and rings: the events of a violation's witness.</p>\n");
    for (name, svg) in [
        ("timeline", plot::timeline(d)),
        ("latency", plot::latency(d)),
        ("throughput", plot::throughput(d)),
        ("zxid", plot::zxid(d)),
    ] {
        match svg {
            Ok(svg) => {
                let _ = writeln!(h, "<div class=\"plot\" id=\"plot-{name}\">{svg}");
                if name == "timeline" {
                    h.push_str("<div class=\"legend\">");
                    for (color, label) in plot::timeline_legend(d) {
                        let _ = write!(
                            h,
                            "<span><i style=\"background:{color}\"></i>{}</span>",
                            esc(&label)
                        );
                    }
                    h.push_str("</div>");
                }
                h.push_str("</div>\n");
            }
            Err(e) => {
                let _ = writeln!(h, "<p class=\"fail\">{name}: {}</p>", esc(&e));
            }
        }
    }
}

fn cell<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| esc(&x.to_string())).unwrap_or_default()
}

fn witnesses(h: &mut String, checks: &[CheckResult], events: &[Event]) {
    for c in checks.iter().filter(|c| !c.witness.is_empty()) {
        let _ = writeln!(
            h,
            "<h2 id=\"witness-{0}\">Witness: {0}</h2>\n<p>The {1} history events that prove the first violation (<code>line</code> = line of <code>history.jsonl</code>):</p>\n<p class=\"mono\">{2}</p>",
            esc(&c.name),
            c.witness.len(),
            esc(c.violations.first().map_or("", String::as_str))
        );
        h.push_str("<table>\n<tr><th>line</th><th>t (ms)</th><th>type</th><th>client</th><th>session</th><th>op id</th><th>op</th><th>path</th><th>value</th><th>version</th><th>mzxid</th><th>zxid</th><th>error / detail</th></tr>\n");
        for &i in &c.witness {
            let Some(e) = events.get(i) else {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td colspan=\"12\">(no such event)</td></tr>",
                    i + 1
                );
                continue;
            };
            let ty = format!("{:?}", e.ty).to_lowercase();
            // A completion names no op or path: take them from its invoke (grey).
            let inv = e.op_id.filter(|_| e.op.is_none()).and_then(|id| {
                events
                    .iter()
                    .find(|x| x.ty == Ty::Invoke && x.op_id == Some(id))
            });
            let op = e.op.or(inv.and_then(|x| x.op));
            let path = e.path.as_deref().or(inv.and_then(|x| x.path.as_deref()));
            let grey = if inv.is_some() { " from-invoke" } else { "" };
            let mut extra = e
                .error
                .clone()
                .or_else(|| e.detail.clone())
                .unwrap_or_default();
            if let Some(x) = e.exists {
                extra.push_str(&format!(" exists={x}"));
            }
            if let Some(c) = &e.children {
                extra.push_str(&format!(" children={c:?}"));
            }
            for r in e.replicas.iter().flatten() {
                extra.push_str(&format!("; {}", r.describe()));
            }
            let _ = writeln!(
                h,
                "<tr class=\"ev-{ty}\"><td>{}</td><td>{:.3}</td><td class=\"ty\">{ty}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"{grey}\">{}</td><td class=\"mono{grey}\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                i + 1,
                e.t_ms(),
                cell(e.client),
                cell(e.session.map(|s| format!("0x{:x}", s as u64))),
                cell(e.op_id),
                cell(op.map(|o| format!("{o:?}"))),
                cell(path),
                cell(e.value.as_deref()),
                cell(e.version),
                cell(e.mzxid),
                cell(e.zxid),
                esc(extra.trim())
            );
        }
        h.push_str("</table>\n");
    }
}

//! The report's plots, as inline SVG strings (plotters' SVG backend: no
//! fonts needed, the browser draws the text).
//!
//! Every plot shares the x axis (simulated seconds since the run started,
//! the history's clock), shades each fault window in its kind's colour and
//! marks the events of a violation's witness:
//!
//! - [`timeline`]: one lane per server (answering `srvr` / down / paused /
//!   isolated / no answer, from the `srvr` probes of [`crate::probe`]; under
//!   it a thin band of its role from the status board samples: leader,
//!   follower, looking, standalone or no status; labelled with role and
//!   epoch where they change; a ▼ tick where a new leader first served
//!   after a fault of the leader, see [`crate::failover`]), then the
//!   faults, one bar each, labelled;
//! - [`latency`]: one point per completed workload operation, coloured by
//!   outcome (ok / ZooKeeper error / unknown), log scale;
//! - [`throughput`]: completions per 1 s bucket, by outcome;
//! - [`zxid`]: each server's last-applied zxid (from the status board, or
//!   from `srvr` when there are no board samples), and the largest reply
//!   zxid the clients had seen, for comparison.
//!
//! Plot functions return the SVG text or a message saying why not (a plot
//! never fails the run).

use crate::check::pair_ops;
use crate::failover::{names_server, Failover};
use crate::history::{Event, Ty};
use crate::probe::{BoardSample, Sample};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

pub const WIDTH: u32 = 1300;
const FONT: &str = "sans-serif";
/// The same on every plot, so that their time axes line up.
const Y_AREA: u32 = 100;

/// A fault as it happened: from its `fault_start` to its `fault_end` (or
/// the end of the run).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub id: u32,
    pub kind: String,
    pub target: String,
    pub start_s: f64,
    pub end_s: f64,
    pub detail: Option<String>,
}

impl Window {
    pub fn label(&self) -> String {
        format!("#{} {} {}", self.id, self.kind, self.target)
    }

    /// Does this fault take `server` (1-based) down or away? (Its target
    /// names it: `server` for the only one, `server:N`, or in a list.)
    fn hits_server(&self, server: u32) -> bool {
        names_server(&self.target, server)
    }
}

/// The fault windows of a history, in start order.
pub fn windows(events: &[Event]) -> Vec<Window> {
    let end_s = end_s(events);
    let mut out: Vec<Window> = Vec::new();
    for e in events {
        match e.ty {
            Ty::FaultStart => out.push(Window {
                id: e.fault_id.unwrap_or(0),
                kind: e.fault.clone().unwrap_or_default(),
                target: e.target.clone().unwrap_or_default(),
                start_s: secs(e.t_us),
                end_s,
                detail: e.detail.clone(),
            }),
            Ty::FaultEnd => {
                if let Some(w) = out.iter_mut().rev().find(|w| Some(w.id) == e.fault_id) {
                    w.end_s = secs(e.t_us);
                }
            }
            _ => {}
        }
    }
    out
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

fn end_s(events: &[Event]) -> f64 {
    events.last().map_or(1.0, |e| secs(e.t_us)).max(1.0)
}

fn fault_color(kind: &str) -> RGBColor {
    match kind {
        "partition" => RGBColor(255, 152, 0),
        "isolate" => RGBColor(156, 39, 176),
        "pause" => RGBColor(33, 150, 243),
        "crash" => RGBColor(229, 57, 53),
        "power_loss" => RGBColor(121, 0, 0),
        _ => RGBColor(120, 120, 120),
    }
}

const OK: RGBColor = RGBColor(46, 160, 67);
const ERR: RGBColor = RGBColor(30, 100, 220);
const UNKNOWN: RGBColor = RGBColor(220, 30, 30);
const WITNESS: RGBColor = RGBColor(0, 0, 0);
/// The fail-over tick on the timeline.
const NEW_LEADER: RGBColor = RGBColor(25, 25, 25);

/// What the plots are drawn from.
pub struct Data<'a> {
    pub events: &'a [Event],
    pub samples: &'a [Sample],
    pub board: &'a [BoardSample],
    pub faults: Vec<Window>,
    /// History indices to highlight (a violation's witness).
    pub witness: BTreeSet<usize>,
    pub servers: u32,
    pub end_s: f64,
    /// Faults of the leader and the elections after them (report only).
    pub failover: Vec<Failover>,
}

impl<'a> Data<'a> {
    pub fn new(
        events: &'a [Event],
        samples: &'a [Sample],
        board: &'a [BoardSample],
        witness: BTreeSet<usize>,
    ) -> Self {
        let servers = samples
            .iter()
            .map(|s| s.server)
            .chain(board.iter().map(|s| s.server))
            .max()
            .unwrap_or(1);
        Data {
            events,
            samples,
            board,
            faults: windows(events),
            witness,
            servers,
            end_s: end_s(events),
            failover: crate::failover::measure(events, board),
        }
    }

    fn witness_times(&self) -> Vec<f64> {
        let t: BTreeSet<u64> = self
            .witness
            .iter()
            .filter_map(|i| self.events.get(*i))
            .map(|e| e.t_us)
            .collect();
        t.into_iter().map(secs).collect()
    }
}

type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("plot failed: {e}")
}

/// Render with `draw` into an SVG string of `WIDTH` x `height`.
fn svg(height: u32, draw: impl FnOnce(&Area<'_>) -> Result<(), String>) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

const CAPTION: (&str, u32) = (FONT, 18);

/// Shade fault windows over `y0..y1`, and draw witness times as lines.
fn backdrop<Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, '_, Y>,
    d: &Data<'_>,
    y0: f64,
    y1: f64,
) -> Result<(), String> {
    chart
        .draw_series(d.faults.iter().map(|w| {
            Rectangle::new(
                [(w.start_s, y0), (w.end_s, y1)],
                fault_color(&w.kind).mix(0.14).filled(),
            )
        }))
        .map_err(err)?;
    for w in &d.faults {
        let c = fault_color(&w.kind);
        chart
            .draw_series(
                [w.start_s, w.end_s]
                    .map(|x| PathElement::new(vec![(x, y0), (x, y1)], c.mix(0.5).stroke_width(1))),
            )
            .map_err(err)?;
    }
    let wt = d.witness_times();
    if !wt.is_empty() {
        chart
            .draw_series(wt.iter().map(|x| {
                PathElement::new(vec![(*x, y0), (*x, y1)], WITNESS.mix(0.7).stroke_width(1))
            }))
            .map_err(err)?
            .label("violation witness")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y - 6), (x, y + 6)], WITNESS.stroke_width(2))
            });
    }
    Ok(())
}

/// A chart over simulated time with a linear y axis from 0 to `ymax`, its
/// mesh drawn, fault windows shaded and tagged.
fn time_chart<'a, 'b>(
    root: &'a Area<'b>,
    d: &Data<'_>,
    caption: &str,
    y_desc: &str,
    ymax: f64,
) -> Result<Chart<'a, 'b, RangedCoordf64>, String> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, CAPTION)
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(Y_AREA)
        .build_cartesian_2d(0f64..d.end_s, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc(y_desc)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(err)?;
    backdrop(&mut chart, d, 0.0, ymax)?;
    fault_tags(&mut chart, d, ymax * 0.97)?;
    Ok(chart)
}

/// Small "#id" tags for the fault windows, at the top of a chart.
fn fault_tags<Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, '_, Y>,
    d: &Data<'_>,
    y: f64,
) -> Result<(), String> {
    chart
        .draw_series(d.faults.iter().map(|w| {
            Text::new(
                format!("#{}", w.id),
                (w.start_s, y),
                (FONT, 12).into_font().color(&fault_color(&w.kind)),
            )
        }))
        .map_err(err)?;
    Ok(())
}

fn legend<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, 'b, Y>,
    pos: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(pos)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(err)
}

/// What a server was doing between two probes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Serving { mode: String, epoch: u32 },
    Down,
    Paused,
    Isolated,
    NoAnswer,
}

impl State {
    fn color(&self) -> RGBColor {
        match self {
            State::Serving { .. } => OK,
            State::Down => fault_color("crash"),
            State::Paused => fault_color("pause"),
            State::Isolated => fault_color("isolate"),
            State::NoAnswer => RGBColor(150, 150, 150),
        }
    }
    fn name(&self) -> &'static str {
        match self {
            State::Serving { .. } => "answers srvr (label: role, epoch)",
            State::Down => "down (crash / power loss)",
            State::Paused => "paused",
            State::Isolated => "isolated",
            State::NoAnswer => "no answer",
        }
    }
}

/// Merged state segments of one server: (from, to, state).
fn segments(d: &Data<'_>, server: u32) -> Vec<(f64, f64, State)> {
    let samples: Vec<&Sample> = d.samples.iter().filter(|s| s.server == server).collect();
    let mut out: Vec<(f64, f64, State)> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let from = secs(s.t_us);
        let to = samples.get(i + 1).map_or(d.end_s, |n| secs(n.t_us));
        let st = match (&s.mode, s.epoch()) {
            (Some(mode), Some(epoch)) => State::Serving {
                mode: mode.clone(),
                epoch,
            },
            _ => {
                let at = |k: &[&str]| {
                    d.faults.iter().any(|w| {
                        k.contains(&w.kind.as_str())
                            && w.hits_server(server)
                            && w.start_s <= to
                            && from <= w.end_s
                    })
                };
                if at(&["crash", "power_loss"]) {
                    State::Down
                } else if at(&["pause"]) {
                    State::Paused
                } else if at(&["isolate"]) {
                    State::Isolated
                } else {
                    State::NoAnswer
                }
            }
        };
        match out.last_mut() {
            Some(last) if last.2 == st => last.1 = to,
            _ => out.push((from, to, st)),
        }
    }
    out
}

/// A server's status board entry: its role and epoch; `None`: no status.
type Role = Option<(String, u64)>;

fn role_color(role: &Role) -> RGBColor {
    match role.as_ref().map(|r| r.0.as_str()) {
        Some("leader") => RGBColor(74, 20, 140),
        Some("follower") => RGBColor(126, 87, 194),
        Some("looking") => RGBColor(255, 179, 0),
        Some("standalone") => RGBColor(0, 121, 107),
        Some(_) => RGBColor(120, 120, 120),
        None => RGBColor(60, 60, 60),
    }
}

fn role_name(role: &Role) -> String {
    match role {
        Some((r, _)) => format!("status board: {r}"),
        None => "status board: no status (down, stopped, recovering)".into(),
    }
}

/// Merged role segments of one server from the board samples: (from, to, role).
fn role_segments(d: &Data<'_>, server: u32) -> Vec<(f64, f64, Role)> {
    let samples: Vec<&BoardSample> = d.board.iter().filter(|s| s.server == server).collect();
    let mut out: Vec<(f64, f64, Role)> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let from = secs(s.t_us);
        let to = samples.get(i + 1).map_or(d.end_s, |n| secs(n.t_us));
        let role = s.role.clone().map(|r| (r, s.epoch));
        match out.last_mut() {
            Some(last) if last.2 == role => last.1 = to,
            _ => out.push((from, to, role)),
        }
    }
    out
}

/// Greedy rows for fault bars so that neither overlapping windows nor
/// their labels (about 7 px a character) collide. `s_per_px`: the x scale.
fn fault_rows(faults: &[Window], s_per_px: f64) -> (Vec<usize>, usize) {
    let mut row_end: Vec<f64> = Vec::new();
    let mut rows = Vec::new();
    for w in faults {
        let free = row_end.iter().position(|e| *e <= w.start_s);
        let r = free.unwrap_or(row_end.len());
        let label_end = w.start_s + (w.label().len() as f64 * 7.0 + 12.0) * s_per_px;
        let label_end = w.end_s.max(label_end);
        if r == row_end.len() {
            row_end.push(label_end);
        } else {
            row_end[r] = label_end;
        }
        rows.push(r);
    }
    (rows, row_end.len())
}

/// (a) One lane per server, then one row per concurrent fault.
pub fn timeline(d: &Data<'_>) -> Result<String, String> {
    let (rows, nrows) = fault_rows(&d.faults, d.end_s / (WIDTH - 150) as f64);
    let lanes = d.servers as usize + nrows.max(1);
    let height = 140 + 46 * lanes as u32;
    svg(height, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Servers (bar: srvr probes; band and labels: status board role, epoch) and faults",
                CAPTION,
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(0f64..d.end_s, 0f64..lanes as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .y_label_formatter(&|_| String::new())
            .x_desc("simulated time (s)")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(err)?;
        backdrop(&mut chart, d, 0.0, lanes as f64)?;
        // Servers, top down.
        let lane_y = |i: usize| (lanes - 1 - i) as f64;
        for s in 1..=d.servers {
            let y = lane_y(s as usize - 1);
            let segs = segments(d, s);
            chart
                .draw_series(segs.iter().map(|(from, to, st)| {
                    Rectangle::new(
                        [(*from, y + 0.22), (*to, y + 0.78)],
                        st.color().mix(0.85).filled(),
                    )
                }))
                .map_err(err)?;
            // The role band (status board), under the srvr bar.
            let roles = role_segments(d, s);
            chart
                .draw_series(roles.iter().map(|(from, to, role)| {
                    Rectangle::new(
                        [(*from, y + 0.04), (*to, y + 0.18)],
                        role_color(role).filled(),
                    )
                }))
                .map_err(err)?;
            // Role and epoch where they change: from the board, else srvr.
            let labels: Vec<(f64, String)> = if roles.is_empty() {
                let mut last: Option<(String, u32)> = None;
                let mut v = Vec::new();
                for (from, _, st) in &segs {
                    if let State::Serving { mode, epoch } = st {
                        let cur = (mode.clone(), *epoch);
                        if last.as_ref() != Some(&cur) {
                            v.push((*from, format!("{mode}, epoch {epoch}")));
                            last = Some(cur);
                        }
                    }
                }
                v
            } else {
                // Only where the label fits in its segment (roles can
                // change every few hundred ms during an election; the band
                // shows those).
                let s_per_px = d.end_s / (WIDTH - 150) as f64;
                roles
                    .iter()
                    .filter_map(|(from, to, role)| {
                        let (r, epoch) = role.as_ref()?;
                        let text = format!("{r}, epoch {epoch}");
                        let width = (text.len() as f64 * 7.5 + 8.0) * s_per_px;
                        (to - from >= width).then_some((*from, text))
                    })
                    .collect()
            };
            chart
                .draw_series(labels.into_iter().map(|(from, text)| {
                    Text::new(
                        text,
                        (from + d.end_s * 0.003, y + 0.64),
                        (FONT, 13).into_font().color(&WHITE),
                    )
                }))
                .map_err(err)?;
            if segs.is_empty() {
                chart
                    .draw_series(std::iter::once(Text::new(
                        "no srvr samples",
                        (d.end_s * 0.01, y + 0.6),
                        (FONT, 12).into_font(),
                    )))
                    .map_err(err)?;
            }
            // A server that stopped on an error.
            let exits = d.events.iter().filter(|e| {
                e.ty == Ty::ServerExit && names_server(e.target.as_deref().unwrap_or("server"), s)
            });
            chart
                .draw_series(
                    exits.map(|e| Cross::new((secs(e.t_us), y + 0.5), 7, BLACK.stroke_width(2))),
                )
                .map_err(err)?;
        }
        // Fail-overs: a tick where the new leader first shows on the
        // board (serving, higher epoch), on its lane, tagged with the fault
        // number and the time since the fault started.
        let s_per_px = d.end_s / (WIDTH - 150) as f64;
        for f in &d.failover {
            let (Some(l), Some(e)) = (f.new_leader, f.election_ms) else {
                continue;
            };
            if l == 0 || l > d.servers {
                continue;
            }
            let x = (f.at_ms + e) as f64 / 1000.0;
            let y = lane_y(l as usize - 1);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, y + 0.02), (x, y + 0.86)],
                    NEW_LEADER.stroke_width(2),
                )))
                .map_err(err)?;
            let dx = 5.0 * s_per_px;
            chart
                .draw_series(std::iter::once(Polygon::new(
                    vec![(x - dx, y + 0.99), (x + dx, y + 0.99), (x, y + 0.84)],
                    NEW_LEADER.filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("#{} new leader +{e} ms", f.fault_id),
                    (x + 2.0 * dx, y + 1.0),
                    (FONT, 11).into_font().color(&NEW_LEADER),
                )))
                .map_err(err)?;
        }
        // Faults, one bar each.
        for (w, r) in d.faults.iter().zip(&rows) {
            let y = lane_y(d.servers as usize + r);
            let c = fault_color(&w.kind);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(w.start_s, y + 0.3), (w.end_s, y + 0.7)],
                    c.mix(0.8).filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    w.label(),
                    (w.start_s, y + 0.95),
                    (FONT, 12).into_font().color(&c),
                )))
                .map_err(err)?;
        }
        // Lane names, left of the plotting area.
        for s in 1..=d.servers {
            let (px, py) = chart.backend_coord(&(0.0, lane_y(s as usize - 1) + 0.5));
            root.draw(&Text::new(
                format!("server{s}"),
                (px - 92, py - 7),
                (FONT, 14).into_font(),
            ))
            .map_err(err)?;
        }
        if nrows > 0 {
            let (px, py) = chart.backend_coord(&(0.0, lane_y(d.servers as usize) + 0.5));
            root.draw(&Text::new(
                "faults",
                (px - 92, py - 7),
                (FONT, 14).into_font(),
            ))
            .map_err(err)?;
        }
        Ok(())
    })
}

/// The timeline's legend (drawn by the page: it would cover a lane).
pub fn timeline_legend(d: &Data<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let hex = |c: RGBColor| format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2);
    let mut states: Vec<State> = Vec::new();
    for s in 1..=d.servers {
        for (_, _, st) in segments(d, s) {
            let key = match st {
                State::Serving { .. } => State::Serving {
                    mode: String::new(),
                    epoch: 0,
                },
                other => other,
            };
            if !states.contains(&key) {
                states.push(key);
            }
        }
    }
    for st in states {
        out.push((hex(st.color()), st.name().to_string()));
    }
    let mut roles: Vec<(String, String)> = Vec::new();
    for s in 1..=d.servers {
        for (_, _, role) in role_segments(d, s) {
            let key = (hex(role_color(&role)), role_name(&role));
            if !roles.contains(&key) {
                roles.push(key);
            }
        }
    }
    out.extend(roles);
    let mut seen = BTreeSet::new();
    for w in &d.faults {
        if seen.insert(w.kind.as_str()) {
            out.push((hex(fault_color(&w.kind)), format!("fault: {}", w.kind)));
        }
    }
    if d.failover
        .iter()
        .any(|f| f.new_leader.is_some() && f.election_ms.is_some())
    {
        out.push((
            hex(NEW_LEADER),
            "▼ new leader after a fault of the leader (#fault +ms since it started; board sampled every 100 ms)".into(),
        ));
    }
    if !d.witness.is_empty() {
        out.push(("#000000".into(), "violation witness (vertical line)".into()));
    }
    out
}

/// Outcome of a workload operation, for colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Error,
    Unknown,
}

/// (completion s, latency ms, outcome, is witness) per completed workload op.
fn completions(d: &Data<'_>) -> Vec<(f64, f64, Outcome, bool)> {
    let (ops, _) = pair_ops(d.events);
    ops.iter()
        .filter(|o| o.client() != 0)
        .filter_map(|o| {
            let done = o.done?;
            let outcome = match done.ty {
                Ty::Ok => Outcome::Ok,
                Ty::Fail => Outcome::Error,
                _ => Outcome::Unknown,
            };
            let lat = (done.t_us.saturating_sub(o.invoke_us())) as f64 / 1000.0;
            let w = o.at().any(|i| d.witness.contains(&i));
            Some((secs(done.t_us), lat, outcome, w))
        })
        .collect()
}

/// (b) Latency of every completed operation over time.
pub fn latency(d: &Data<'_>) -> Result<String, String> {
    let pts = completions(d);
    // Faster points (an op failed at once, e.g. its connection was gone)
    // sit on the floor.
    let fastest = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let floor = if fastest < 1.0 { 0.1 } else { 0.5 };
    let max = pts.iter().map(|p| p.1).fold(10.0f64, f64::max) * 1.6;
    svg(420, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Operation latency (one point per completed operation, by completion time)",
                CAPTION,
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(0f64..d.end_s, (floor..max).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc("latency (ms, log)")
            .y_label_formatter(&|v| {
                if *v >= 1.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            })
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(BLACK.mix(0.04))
            .draw()
            .map_err(err)?;
        backdrop(&mut chart, d, floor, max)?;
        fault_tags(&mut chart, d, max / 1.15)?;
        for (o, c, name) in [
            (Outcome::Ok, OK, "ok"),
            (Outcome::Error, ERR, "ZooKeeper error (definite)"),
            (
                Outcome::Unknown,
                UNKNOWN,
                "unknown (timeout, lost connection, not sent)",
            ),
        ] {
            let n = pts.iter().filter(|p| p.2 == o).count();
            chart
                .draw_series(
                    pts.iter()
                        .filter(|p| p.2 == o)
                        .map(|p| Circle::new((p.0, p.1.max(floor)), 2, c.mix(0.75).filled())),
                )
                .map_err(err)?
                .label(format!("{name}: {n}"))
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
        }
        let wit: Vec<_> = pts.iter().filter(|p| p.3).collect();
        if !wit.is_empty() {
            chart
                .draw_series(
                    wit.iter()
                        .map(|p| Circle::new((p.0, p.1.max(floor)), 7, WITNESS.stroke_width(2))),
                )
                .map_err(err)?
                .label("witness operation")
                .legend(|(x, y)| Circle::new((x + 7, y), 5, WITNESS.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// (c) Completions per 1 s bucket, by outcome.
pub fn throughput(d: &Data<'_>) -> Result<String, String> {
    let pts = completions(d);
    let n = d.end_s.ceil().max(1.0) as usize;
    let mut buckets: BTreeMap<Outcome, Vec<u32>> = BTreeMap::new();
    for o in [Outcome::Ok, Outcome::Error, Outcome::Unknown] {
        buckets.insert(o, vec![0; n]);
    }
    for p in &pts {
        let b = (p.0.floor() as usize).min(n - 1);
        buckets.get_mut(&p.2).expect("all outcomes")[b] += 1;
    }
    // Per second: the last bucket may be shorter than 1 s.
    let width = |i: usize| (d.end_s - i as f64).clamp(0.05, 1.0);
    let rate = |v: &[u32]| -> Vec<f64> {
        v.iter()
            .enumerate()
            .map(|(i, c)| *c as f64 / width(i))
            .collect()
    };
    let sums: Vec<u32> = (0..n)
        .map(|i| buckets.values().map(|v| v[i]).sum())
        .collect();
    let total = rate(&sums);
    let ymax = total.iter().copied().fold(1.0f64, f64::max) * 1.25;
    svg(340, |root| {
        let mut chart = time_chart(
            root,
            d,
            "Throughput (completions per 1 s of simulated time)",
            "completions per s",
            ymax,
        )?;
        let step = |v: &[f64]| -> Vec<(f64, f64)> {
            let mut out = Vec::with_capacity(2 * v.len());
            for (i, c) in v.iter().enumerate() {
                out.push((i as f64, *c));
                out.push((((i + 1) as f64).min(d.end_s), *c));
            }
            out
        };
        chart
            .draw_series(LineSeries::new(step(&total), BLACK.stroke_width(2)))
            .map_err(err)?
            .label("all completions")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
        for (o, c, name) in [
            (Outcome::Ok, OK, "ok"),
            (Outcome::Error, ERR, "ZooKeeper error"),
            (Outcome::Unknown, UNKNOWN, "unknown"),
        ] {
            chart
                .draw_series(LineSeries::new(
                    step(&rate(&buckets[&o])),
                    c.stroke_width(2),
                ))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

const SERVER_COLORS: [RGBColor; 5] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
];

/// (t, (zxid counter, epoch)), or no zxid.
type ZxidPoint = (f64, Option<(u32, u64)>);

/// One server's last-applied zxid over time: (t, (counter, epoch) or
/// `None` where it had none: down, or no answer). From the status board
/// when there are board samples, else from `srvr`.
fn zxid_points(d: &Data<'_>, server: u32) -> Vec<ZxidPoint> {
    if d.board.is_empty() {
        d.samples
            .iter()
            .filter(|x| x.server == server)
            .map(|x| {
                let v = x.counter().zip(x.epoch()).map(|(c, e)| (c, e as u64));
                (secs(x.t_us), v)
            })
            .collect()
    } else {
        d.board
            .iter()
            .filter(|x| x.server == server)
            .map(|x| (secs(x.t_us), x.counter().map(|c| (c, x.epoch))))
            .collect()
    }
}

/// (d) Last-applied zxid per server (status board, else srvr), and the
/// clients' view.
pub fn zxid(d: &Data<'_>) -> Result<String, String> {
    // Client view: running max of reply zxids (counter part), stepwise.
    let mut seen: Vec<(f64, f64)> = Vec::new();
    let mut max = i64::MIN;
    for e in d.events.iter().filter(|e| e.is_determinate()) {
        if let Some(z) = e.zxid {
            if z > max {
                max = z;
                let t = secs(e.t_us);
                if let Some(last) = seen.last().copied() {
                    seen.push((t, last.1));
                }
                seen.push((t, (z as u64 as u32) as f64));
            }
        }
    }
    if let Some(last) = seen.last().copied() {
        seen.push((d.end_s, last.1));
    }
    let points: Vec<Vec<ZxidPoint>> = (1..=d.servers).map(|s| zxid_points(d, s)).collect();
    let ymax = points
        .iter()
        .flatten()
        .filter_map(|p| p.1.map(|v| v.0 as f64))
        .chain(seen.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.12;
    let (source, caption) = if d.board.is_empty() {
        (
            "srvr",
            "Last-applied zxid per server (srvr \"Zxid\", sampled every 200 ms) and the largest reply zxid seen by clients",
        )
    } else {
        (
            "board",
            "Last-applied zxid per server (status board, sampled every 100 ms) and the largest reply zxid seen by clients",
        )
    };
    svg(380, |root| {
        let mut chart = time_chart(root, d, caption, "zxid counter (low 32 bits)", ymax)?;
        for (s, pts) in (1..=d.servers).zip(&points) {
            let c = SERVER_COLORS[(s as usize - 1) % SERVER_COLORS.len()];
            // Contiguous runs with a zxid become one step line each.
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            let mut epochs: Vec<(f64, f64, u64)> = Vec::new();
            let mut last_epoch = None;
            for (t, v) in pts {
                match v {
                    Some((cnt, ep)) => {
                        let run = runs.last_mut().expect("non-empty");
                        if let Some(prev) = run.last().copied() {
                            run.push((*t, prev.1));
                        }
                        run.push((*t, *cnt as f64));
                        // Label epoch changes (the first epoch is in the legend).
                        if last_epoch.is_some_and(|e| e != *ep) {
                            epochs.push((*t, *cnt as f64, *ep));
                        }
                        last_epoch = Some(*ep);
                    }
                    None => {
                        if !runs.last().expect("non-empty").is_empty() {
                            runs.push(Vec::new());
                        }
                    }
                }
            }
            let first_epoch = pts.iter().find_map(|p| p.1.map(|v| v.1)).unwrap_or(0);
            let mut first = true;
            for run in runs.into_iter().filter(|r| !r.is_empty()) {
                let ann = chart
                    .draw_series(LineSeries::new(run, c.stroke_width(2)))
                    .map_err(err)?;
                if first {
                    ann.label(format!(
                        "server{s} last applied ({source}), epoch {first_epoch} at first"
                    ))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                    });
                    first = false;
                }
            }
            chart
                .draw_series(epochs.iter().map(|(t, v, ep)| {
                    Text::new(
                        format!("epoch {ep}"),
                        (*t, *v + ymax * 0.03),
                        (FONT, 12).into_font().color(&c),
                    )
                }))
                .map_err(err)?;
        }
        if !seen.is_empty() {
            let style = BLACK.mix(0.8).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(seen.clone(), 4, 4, style))
                .map_err(err)?
                .label("max reply zxid seen by clients")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_rows_separate_overlaps() {
        let w = |id, a, b| Window {
            id,
            kind: "partition".into(),
            target: "client:1".into(),
            start_s: a,
            end_s: b,
            detail: None,
        };
        let (rows, n) = fault_rows(&[w(1, 1.0, 3.0), w(2, 2.0, 4.0), w(3, 5.0, 6.0)], 0.001);
        assert_eq!((rows, n), (vec![0, 1, 0], 2));
    }

    #[test]
    fn role_segments_merge_and_break_on_changes() {
        let b = |t_ms: u64, role: Option<&str>, epoch: u64| BoardSample {
            t_us: t_ms * 1000,
            server: 1,
            role: role.map(String::from),
            epoch,
            last_zxid: 0,
            serving: role.is_some(),
        };
        let board = vec![
            b(0, Some("looking"), 0),
            b(100, Some("leader"), 1),
            b(200, Some("leader"), 1),
            b(300, None, 0),
            b(400, Some("follower"), 2),
        ];
        let d = Data::new(&[], &[], &board, BTreeSet::new());
        let segs = role_segments(&d, 1);
        let roles: Vec<Role> = segs.iter().map(|s| s.2.clone()).collect();
        assert_eq!(
            roles,
            vec![
                Some(("looking".into(), 0)),
                Some(("leader".into(), 1)),
                None,
                Some(("follower".into(), 2)),
            ]
        );
        assert_eq!((segs[1].0, segs[1].1), (0.1, 0.3));
        assert!(timeline(&d).unwrap().contains("leader, epoch 1"));
        assert!(zxid(&d).is_ok());
    }
}

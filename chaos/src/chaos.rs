//! The chaos driver: independent lanes, one per thing that can go wrong
//! (the agent, the broker, each printer, the spool disk, the users'
//! devices), each injecting a fault, holding it for a while and healing it,
//! at random moments, until the submitter is done.
//!
//! Lanes run side by side, so faults overlap as they do in the field (a
//! printer jams while the broker is down and the disk is full). Each lane
//! draws from its own RNG seeded from the run's seed, so a seed replays the
//! same sequence of decisions in every lane; the interleaving with the
//! jobs still depends on timing, which no seed can pin down.
//!
//! A lane only ever stops between faults or cuts a hold short: whatever it
//! broke it repairs before it returns, so after the lanes end the
//! installation is whole again and every job can reach its final state.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Fault, Ledger};
use crate::printers::{IppBox, RawPrinter};
use crate::rig::{Rig, STOPPED_DEADLINE};

/// How long an armed "kill on arrival" waits for a job to arrive before it
/// kills the agent anyway.
const ARRIVAL_WAIT: Duration = Duration::from_secs(15);
/// How often the armed kill looks at the printers.
const ARRIVAL_POLL: Duration = Duration::from_millis(5);
/// How often the supervisor checks the agent is alive.
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);

/// Runs `f` on the blocking pool: the support helpers wait for processes.
pub async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a blocking chaos step panicked")
}

fn secs(rng: &mut StdRng, range: Range<f64>) -> Duration {
    Duration::from_secs_f64(rng.random_range(range))
}

/// Waits `d`; false if the run is over (then the lane stops).
async fn idle(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Holds a fault for `d`, or less if the run ends meanwhile.
async fn hold(stop: &CancellationToken, d: Duration) {
    let _ = idle(stop, d).await;
}

/// Picks one of `choices` with probability proportional to its weight.
fn pick<T: Copy>(rng: &mut StdRng, choices: &[(T, u32)]) -> T {
    choices
        .choose_weighted(rng, |(_, weight)| *weight)
        .expect("fault weights are positive")
        .0
}

/// Jobs the real printers have seen arrive so far: IPP jobs started,
/// connections to raw printers.
fn arrivals(rig: &Rig) -> usize {
    let ipp: usize = rig
        .ipp
        .iter()
        .map(|p| p.printer().started_jobs().len())
        .sum();
    let raw: usize = rig.raw.iter().map(|p| p.sink.connections()).sum();
    ipp + raw
}

/// SIGKILLs the agent now or the moment a printer sees a job arrive, and
/// starts it again after a short outage.
pub async fn agent_lane(rig: Arc<Rig>, ledger: Ledger, mut rng: StdRng, stop: CancellationToken) {
    while idle(&stop, secs(&mut rng, 4.0..12.0)).await {
        let on_arrival = rng.random_bool(0.5);
        let outage = secs(&mut rng, 0.1..2.5);
        let (r, l, s) = (rig.clone(), ledger.clone(), stop.clone());
        blocking(move || {
            let mut arrived = false;
            if on_arrival {
                let before = arrivals(&r);
                let armed = Instant::now();
                while armed.elapsed() < ARRIVAL_WAIT && !s.is_cancelled() {
                    if arrivals(&r) != before {
                        arrived = true;
                        break;
                    }
                    std::thread::sleep(ARRIVAL_POLL);
                }
            }
            if s.is_cancelled() {
                return;
            }
            let fault = if arrived {
                Fault::AgentKillOnArrival
            } else {
                Fault::AgentKill
            };
            let index = l.fault(fault, "agent");
            r.agent_held.store(true, Ordering::SeqCst);
            r.agent().kill9();
            std::thread::sleep(outage);
            r.agent().restart();
            r.agent_held.store(false, Ordering::SeqCst);
            l.healed(index);
        })
        .await;
    }
}

/// Plays systemd's `Restart=on-failure` for the agent: one that exited by
/// itself is started again. Exiting is allowed in one case only: at start,
/// on a full disk (the agent cannot open its journal; it says so and exits
/// non-zero). Any other exit is a crash, and an incident.
pub async fn supervisor_lane(rig: Arc<Rig>, ledger: Ledger, stop: CancellationToken) {
    while idle(&stop, SUPERVISE_EVERY).await {
        let (r, l) = (rig.clone(), ledger.clone());
        blocking(move || {
            let mut agent = r.agent();
            // Checked under the agent's lock: the agent lane raises the flag
            // before it takes the lock to kill.
            if r.agent_held.load(Ordering::SeqCst) || agent.is_running() {
                return;
            }
            let log = agent.log();
            let last = log.lines().last().unwrap_or_default().to_owned();
            if last.contains("disk is full") || last.contains("No space left") {
                l.agent_start_refused();
            } else {
                l.incident(format!(
                    "the agent exited by itself; its last words: {last}"
                ));
            }
            agent.restart();
        })
        .await;
    }
}

/// Restarts, kills or freezes mosquitto.
pub async fn broker_lane(rig: Arc<Rig>, ledger: Ledger, mut rng: StdRng, stop: CancellationToken) {
    while idle(&stop, secs(&mut rng, 12.0..30.0)).await {
        let fault = pick(
            &mut rng,
            &[
                (Fault::BrokerRestart, 1),
                (Fault::BrokerKill, 1),
                (Fault::BrokerFreeze, 1),
            ],
        );
        let index = ledger.fault(fault, "mosquitto");
        let r = rig.clone();
        match fault {
            Fault::BrokerRestart => {
                blocking(move || {
                    let mut broker = r.broker();
                    broker.stop();
                    broker.start_again();
                })
                .await;
            }
            Fault::BrokerKill => {
                let down = secs(&mut rng, 0.2..3.0);
                blocking(move || {
                    r.broker().kill();
                    std::thread::sleep(down);
                    r.broker().start_again();
                })
                .await;
            }
            _ => {
                // Beyond 1.5x the 5 s keep-alive the clients give up on the
                // link and reconnect once it thaws; below it they just wait.
                let frozen = secs(&mut rng, 1.0..10.0);
                let r2 = r.clone();
                blocking(move || r2.broker().pause()).await;
                hold(&stop, frozen).await;
                blocking(move || r.broker().resume()).await;
            }
        }
        ledger.healed(index);
    }
}

/// A printer the chaos driver can break and repair. Every call may block
/// (processes, SNMP), so lanes make them on the blocking pool.
pub trait Breakable: Send + Sync + 'static {
    fn id(&self) -> &str;
    /// The faults it suffers, each with its weight.
    fn faults(&self) -> &'static [(Fault, u32)];
    /// How long `fault` is held before it is healed.
    fn hold_for(&self, fault: Fault, rng: &mut StdRng) -> Duration {
        let _ = fault;
        secs(rng, 1.0..7.0)
    }
    /// Waits for the moment `fault` should strike (by default: now).
    fn wait_for_moment(&self, fault: Fault, stop: &CancellationToken) {
        let _ = (fault, stop);
    }
    /// Injects (`on`) or heals the fault.
    fn set(&self, fault: Fault, on: bool);
}

/// One printer's lane: pick a fault, strike, hold, heal, again.
pub async fn printer_lane<P: Breakable>(
    printer: Arc<P>,
    ledger: Ledger,
    mut rng: StdRng,
    stop: CancellationToken,
) {
    while idle(&stop, secs(&mut rng, 3.0..9.0)).await {
        let fault = pick(&mut rng, printer.faults());
        let held = printer.hold_for(fault, &mut rng);
        let (p, s) = (printer.clone(), stop.clone());
        blocking(move || p.wait_for_moment(fault, &s)).await;
        let index = ledger.fault(fault, printer.id());
        let p = printer.clone();
        blocking(move || p.set(fault, true)).await;
        hold(&stop, held).await;
        let p = printer.clone();
        blocking(move || p.set(fault, false)).await;
        ledger.healed(index);
    }
}

impl Breakable for IppBox {
    fn id(&self) -> &str {
        &self.id
    }

    fn faults(&self) -> &'static [(Fault, u32)] {
        &[
            (Fault::IppFail, 4),
            (Fault::IppJam, 3),
            (Fault::IppJamForever, 1),
            (Fault::IppSlow, 2),
            (Fault::IppMediaEmpty, 3),
            (Fault::IppHang, 3),
            (Fault::IppVanish, 3),
        ]
    }

    fn hold_for(&self, fault: Fault, rng: &mut StdRng) -> Duration {
        match fault {
            // A job stuck for good costs the printer a whole stopped
            // deadline: let only a job or two start into it.
            Fault::IppJamForever => secs(rng, 0.3..1.0),
            Fault::IppVanish => secs(rng, 0.3..3.0),
            _ => secs(rng, 1.0..7.0),
        }
    }

    fn set(&self, fault: Fault, on: bool) {
        let mut p = self.printer();
        let forced = match fault {
            Fault::IppFail => Some("fail"),
            Fault::IppJam => Some("jam"),
            Fault::IppJamForever => Some("jamforever"),
            Fault::IppSlow => Some("slow"),
            _ => None,
        };
        match (fault, on) {
            _ if forced.is_some() => p.force_scenario(forced.filter(|_| on)),
            (Fault::IppMediaEmpty, true) => p.set_media_empty(),
            (Fault::IppMediaEmpty, false) => p.refill_media(),
            (Fault::IppHang, true) => p.pause(),
            (Fault::IppHang, false) => p.resume(),
            (_, true) => p.kill(),
            (_, false) => p.start_again(),
        }
    }
}

impl Breakable for RawPrinter {
    fn id(&self) -> &str {
        &self.id
    }

    fn faults(&self) -> &'static [(Fault, u32)] {
        &[
            (Fault::RawJam, 4),
            (Fault::RawPaperOut, 3),
            (Fault::RawPaperOutLong, 2),
            (Fault::RawStall, 3),
            (Fault::RawReset, 3),
            (Fault::RawRefuse, 3),
            (Fault::RawSnmpSilent, 3),
        ]
    }

    fn hold_for(&self, fault: Fault, rng: &mut StdRng) -> Duration {
        match fault {
            // Past the stopped deadline: the agent gives up on a job whose
            // data the printer may still print once it has paper again.
            Fault::RawPaperOutLong => STOPPED_DEADLINE + secs(rng, 3.0..10.0),
            _ => secs(rng, 1.0..6.0),
        }
    }

    fn wait_for_moment(&self, fault: Fault, stop: &CancellationToken) {
        if fault != Fault::RawPaperOutLong {
            return;
        }
        // Out of paper in the middle of a page: the printer has the job's
        // data, and will print it once someone loads paper.
        let armed = Instant::now();
        while !self.is_printing() && armed.elapsed() < ARRIVAL_WAIT && !stop.is_cancelled() {
            std::thread::sleep(ARRIVAL_POLL);
        }
    }

    fn set(&self, fault: Fault, on: bool) {
        match fault {
            Fault::RawJam => self.set_jammed(on),
            Fault::RawPaperOut | Fault::RawPaperOutLong => self.set_paper_out(on),
            Fault::RawStall => self.sink.set_stall(on),
            Fault::RawReset => self.sink.set_reset(on),
            Fault::RawRefuse => self.sink.set_accepting(!on),
            _ => self.set_snmp_paused(on),
        }
    }
}

/// Fills the agent's spool disk and frees it again.
pub async fn disk_lane(rig: Arc<Rig>, ledger: Ledger, mut rng: StdRng, stop: CancellationToken) {
    if rig.disk().unavailable().is_some() {
        return;
    }
    while idle(&stop, secs(&mut rng, 10.0..25.0)).await {
        let held = secs(&mut rng, 2.0..8.0);
        let index = ledger.fault(Fault::DiskFull, "agent spool");
        let r = rig.clone();
        if let Err(e) = blocking(move || r.disk().fill()).await {
            ledger.incident(format!("filling the spool disk: {e}"));
        }
        hold(&stop, held).await;
        let r = rig.clone();
        if let Err(e) = blocking(move || r.disk().free()).await {
            ledger.incident(format!("freeing the spool disk: {e}"));
        }
        ledger.healed(index);
    }
}

/// Puts a random device's notification stream to sleep and wakes it again
/// (it resumes with `Last-Event-ID`).
pub async fn device_lane(rig: Arc<Rig>, ledger: Ledger, mut rng: StdRng, stop: CancellationToken) {
    while idle(&stop, secs(&mut rng, 3.0..8.0)).await {
        let user = rng.random_range(0..rig.streams.len());
        let mut streams = rig.streams[user].lock().await;
        let device = rng.random_range(0..streams.len());
        let stream = &mut streams[device];
        let index = ledger.fault(
            Fault::DeviceSleep,
            &format!("{}/{}", stream.session.user, stream.session.device),
        );
        stream.sleep();
        drop(streams);
        hold(&stop, secs(&mut rng, 0.5..6.0)).await;
        let mut streams = rig.streams[user].lock().await;
        if let Err(e) = streams[device].wake().await {
            ledger.incident(format!("a device could not resume its stream: {e:#}"));
        }
        ledger.healed(index);
    }
}

//! Abstract resources: at most `capacity` units of each kind held at once.
//!
//! A runtime is built with capacities (`gpu: 2`); a task annotated with needs (`gpu: 1`) takes
//! its units before it runs and gives them back when it ends. A task whose units are not free
//! is parked here, ordered by priority, and the worker moves on to other work, so tasks without
//! needs keep every core busy. Releasing units hands them straight to the best parked tasks
//! that now fit, and returns those tasks to the caller to be queued.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

/// Units of each resource kind a task needs: `(resource index, units)`.
pub(crate) type Needs = SmallVec<[(u16, u32); 2]>;

pub(crate) struct ResourceGate<J> {
    names: Vec<Arc<str>>,
    capacity: Vec<u32>,
    state: Mutex<GateState<J>>,
}

struct GateState<J> {
    in_use: Vec<u32>,
    parked: BinaryHeap<Parked<J>>,
    seq: u64,
}

struct Parked<J> {
    order: Reverse<(u32, u64)>,
    needs: Needs,
    job: J,
}

impl<J> PartialEq for Parked<J> {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order
    }
}
impl<J> Eq for Parked<J> {}
impl<J> PartialOrd for Parked<J> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<J> Ord for Parked<J> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order.cmp(&other.order)
    }
}

impl<J> ResourceGate<J> {
    pub(crate) fn new(capacities: &[(String, u32)]) -> Self {
        ResourceGate {
            names: capacities
                .iter()
                .map(|(n, _)| Arc::from(n.as_str()))
                .collect(),
            capacity: capacities.iter().map(|(_, c)| *c).collect(),
            state: Mutex::new(GateState {
                in_use: vec![0; capacities.len()],
                parked: BinaryHeap::new(),
                seq: 0,
            }),
        }
    }

    /// Index and capacity of a resource kind.
    pub(crate) fn lookup(&self, name: &str) -> Option<(u16, u32)> {
        self.names
            .iter()
            .position(|n| &**n == name)
            .map(|i| (i as u16, self.capacity[i]))
    }

    pub(crate) fn capacities(&self) -> Vec<(String, u32)> {
        self.names
            .iter()
            .zip(&self.capacity)
            .map(|(n, c)| (n.to_string(), *c))
            .collect()
    }

    /// Takes the units if free; otherwise parks `job` (built by `park`) and returns false.
    pub(crate) fn acquire_or_park(
        &self,
        needs: &Needs,
        priority: u32,
        park: impl FnOnce() -> J,
    ) -> bool {
        let mut st = self.state.lock();
        if fits(&st.in_use, &self.capacity, needs) {
            for &(r, n) in needs {
                st.in_use[r as usize] += n;
            }
            return true;
        }
        st.seq += 1;
        let seq = st.seq;
        st.parked.push(Parked {
            order: Reverse((priority, seq)),
            needs: needs.clone(),
            job: park(),
        });
        false
    }

    /// Gives units back and grants them to parked jobs that now fit, best first.
    pub(crate) fn release(&self, needs: &Needs, woken: &mut Vec<J>) {
        let mut st = self.state.lock();
        for &(r, n) in needs {
            st.in_use[r as usize] -= n;
        }
        // Grant in priority order; stop at the first that does not fit so a big request is not
        // starved by a stream of small ones behind it.
        while let Some(top) = st.parked.peek() {
            if !fits(&st.in_use, &self.capacity, &top.needs) {
                break;
            }
            let Some(p) = st.parked.pop() else { break };
            for &(r, n) in &p.needs {
                st.in_use[r as usize] += n;
            }
            woken.push(p.job);
        }
    }
}

impl<J> ResourceGate<J> {
    /// Drops parked jobs for which `dead` holds (those of a computation that ended); they
    /// hold no units.
    pub(crate) fn forget(&self, dead: impl Fn(&J) -> bool) {
        self.state.lock().parked.retain(|p| !dead(&p.job));
    }
}

fn fits(in_use: &[u32], capacity: &[u32], needs: &Needs) -> bool {
    needs
        .iter()
        .all(|&(r, n)| in_use[r as usize] + n <= capacity[r as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parks_and_wakes_in_priority_order() {
        let gate: ResourceGate<&'static str> = ResourceGate::new(&[("gpu".into(), 1)]);
        let (gpu, cap) = gate.lookup("gpu").unwrap();
        assert_eq!(cap, 1);
        let needs: Needs = smallvec::smallvec![(gpu, 1)];
        assert!(gate.acquire_or_park(&needs, 0, || "first"));
        assert!(!gate.acquire_or_park(&needs, 5, || "late"));
        assert!(!gate.acquire_or_park(&needs, 1, || "early"));
        let mut woken = Vec::new();
        gate.release(&needs, &mut woken);
        assert_eq!(woken, ["early"]);
        gate.release(&needs, &mut woken);
        assert_eq!(woken, ["early", "late"]);
    }
}

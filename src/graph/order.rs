//! TEMPORARY stand-in (replaced by the ordering work): a depth-first topological order.
use super::csr::Csr;
/// Priority per task (0 first).
pub fn order(deps: &Csr, dependents: &Csr, _tie: &dyn Fn(u32, u32) -> std::cmp::Ordering) -> Vec<u32> {
    let n = deps.len();
    let mut missing: Vec<u32> = (0..n as u32).map(|i| deps.row_len(i) as u32).collect();
    let mut stack: Vec<u32> = (0..n as u32).rev().filter(|&i| missing[i as usize] == 0).collect();
    let mut prio = vec![0u32; n];
    let mut next = 0;
    while let Some(t) = stack.pop() {
        prio[t as usize] = next;
        next += 1;
        for &c in dependents.row(t).iter().rev() {
            missing[c as usize] -= 1;
            if missing[c as usize] == 0 { stack.push(c); }
        }
    }
    prio
}
